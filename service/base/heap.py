"""The process's heap after a burst of requests: given back to the system.

CPython keeps objects of up to 512 bytes in its own allocator, pymalloc, which
takes memory in 1 MiB arenas and returns an arena only once every object in it
is gone. A burst of large batches fills arenas with short-lived objects, and
the few long-lived ones made at the same time (a cached entry, a free-list
slot, a pooled connection) pin those arenas for the rest of the process:
after a 20 s overload burst, 50 arenas more than idle (50 MB) stayed for a few
hundred live objects; clearing the caches and connection pools freed 4 of 44
(a like run).

So while a burst lasts, small objects come from glibc's malloc instead, whose
free pages `malloc_trim` returns wherever its survivors sit; at the end of the
burst pymalloc is put back, since malloc costs the write path about 7% more
instructions (callgrind: 735k -> 791k per runtime event, 137k -> 147k per
Trenchcoat event). Either allocator's objects may be freed under the other:
pymalloc hands a pointer it did not allocate to the raw allocator (as it does
for every object over 512 bytes), and the switch keeps pymalloc's free and
realloc. It happens only on CPython 3.11 and 3.12 (read for this) with plain
pymalloc in place: not under PYTHONMALLOC=malloc, debug hooks or tracemalloc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from collections.abc import Callable

# PyMemAllocatorDomain
_RAW, _MEM, _OBJ = 0, 1, 2


class _Allocator(ctypes.Structure):
    """PyMemAllocatorEx."""

    _fields_ = [(name, ctypes.c_void_p) for name in ("ctx", "malloc", "calloc", "realloc", "free")]


class _Switch:
    """Moves the MEM and OBJ domains' allocations to the raw allocator (malloc) and back."""

    def __init__(self, name: Callable[[], bytes | None]) -> None:
        api = ctypes.pythonapi  # a PyDLL: calls hold the GIL, as these must
        for fn in (api.PyMem_GetAllocator, api.PyMem_SetAllocator):
            fn.argtypes = [ctypes.c_int, ctypes.POINTER(_Allocator)]
            fn.restype = None
        self._get, self._set, self._name = api.PyMem_GetAllocator, api.PyMem_SetAllocator, name
        self._saved: dict[int, _Allocator] = {}

    @staticmethod
    def find() -> _Switch | None:
        if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info[:2] <= (3, 12):
            return None
        try:
            name = ctypes.pythonapi._PyMem_GetCurrentAllocatorName
        except AttributeError:
            return None
        name.restype = ctypes.c_char_p
        return _Switch(name)

    def to_malloc(self) -> None:
        # Asked each time: tracemalloc may have been started since.
        if self._name() != b"pymalloc":
            return
        raw = _Allocator()
        self._get(_RAW, ctypes.byref(raw))
        for domain in (_MEM, _OBJ):
            mine = _Allocator()
            self._get(domain, ctypes.byref(mine))
            self._saved[domain] = mine
            self._set(
                domain, ctypes.byref(_Allocator(mine.ctx, raw.malloc, raw.calloc, mine.realloc, mine.free))
            )

    def switched(self) -> bool:
        return bool(self._saved)

    def back(self) -> None:
        for domain, allocator in self._saved.items():
            self._set(domain, ctypes.byref(allocator))
        self._saved.clear()


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), or None where there is no glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


_switch = _Switch.find()
_trim = _malloc_trim()
_bursts = 0  # the allocator is the process's: bursts of every budget in it count


def burst_begins() -> None:
    """Small objects come from malloc until every burst begun has ended."""
    global _bursts
    _bursts += 1
    if _bursts == 1 and _switch is not None:
        _switch.to_malloc()


def burst_ends() -> None:
    global _bursts
    _bursts -= 1
    if _bursts == 0 and _switch is not None:
        _switch.back()


def small_objects_from_malloc() -> bool:
    return _switch is not None and _switch.switched()


def give_back() -> None:
    """Free the garbage left behind and return the free heap to the system."""
    # The young generation is collected rarely (see cli._tune_runtime):
    # cycles left by a burst would keep their memory until then.
    gc.collect()
    if _trim is not None:
        _trim()
