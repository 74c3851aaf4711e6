"""Many live followers of `/v1/log:watch` in one cheap process.

A load generator that parses every line of 100 streams costs about as much
CPU as the server that writes them, and on a small machine it takes that
from the server. So the followers do not parse: every follower that opened
at the same cursor receives the same entries, byte for byte, so each one's
de-chunked body is compared (memcmp) against one shared reference, the
first copy of those bytes to arrive. The reference alone is parsed, once,
at the end. A follower that missed, repeated, reordered or altered an entry
(or was ended early, say as a slow consumer) differs from the reference and
is reported. Heartbeat chunks, which carry the server's time and so differ
per follower, are skipped.

`follow(port, n, pipe)` is a process's target: it opens n followers from
"now" (`after_seq=-1`), sends the parent each one's start cursor, then
reads until the parent sends the last seq it expects, and answers with
`Report`s.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import selectors
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

SEQ = re.compile(rb'"entry":\{"seq":"?(\d+)')
_HEARTBEAT = b'{"result":{"heartbeat"'
_CURSOR = re.compile(rb'"cursor":"?(\d+)')
_WAIT = 120.0  # seconds the followers may take to receive the last entry once it is known


@dataclass
class Reference:
    """The entries every follower opened at `start` must receive: the first copy of each byte."""

    start: int
    data: bytearray = field(default_factory=bytearray)

    def seqs(self) -> list[int] | str:
        """The entries' seqs in the order received, or what else the stream held."""
        seqs = [int(s) for s in SEQ.findall(self.data)]
        lines = self.data.count(b"\n")
        if lines != len(seqs):
            return f"{lines - len(seqs)} of its {lines} lines are not entries"
        return seqs

    def end_of(self, seq: int) -> int | None:
        """The offset just past the line of entry `seq`, if it has arrived."""
        at = self.data.find(b'"entry":{"seq":%d,' % seq)
        if at < 0:
            at = self.data.find(b'"entry":{"seq":"%d",' % seq)
        return None if at < 0 else self.data.index(b"\n", at) + 1


class Follower:
    """One stream: its HTTP/1.1 chunked body is de-chunked as it arrives and
    compared with the reference at the same offset."""

    def __init__(self, sock: socket.socket, ref: Reference, rest: bytes) -> None:
        self.sock = sock
        self.ref = ref
        self.pos = 0  # bytes of entries received (and matched)
        self.mismatch: str | None = None
        self.ended = False  # the server ended the body
        self._remaining = 0  # bytes left in the current chunk
        self._skip = False  # the current chunk is a heartbeat
        self._pending = b""
        self.feed(memoryview(rest))

    def feed(self, data: memoryview) -> None:
        if self._pending:
            data = memoryview(self._pending + bytes(data))
            self._pending = b""
        i, n = 0, len(data)
        while i < n and not self.ended:
            if self._remaining:
                take = min(self._remaining, n - i)
                if not self._skip and self.mismatch is None:
                    self._match(data[i : i + take])
                i += take
                self._remaining -= take
                continue
            # A chunk header: [CRLF ending the previous chunk] size CRLF, and
            # enough of the chunk to tell a heartbeat from entries.
            if data[i : i + 2] == b"\r\n":
                i += 2
            eol = bytes(data[i : min(n, i + 20)]).find(b"\r\n")
            if eol < 0:
                self._pending = bytes(data[i:])
                return
            size = int(bytes(data[i : i + eol]), 16)
            if size == 0:
                self.ended = True
                return
            start = i + eol + 2
            if n - start < min(size, len(_HEARTBEAT)):
                self._pending = bytes(data[i:])
                return
            self._skip = bytes(data[start : start + len(_HEARTBEAT)]) == _HEARTBEAT
            self._remaining = size
            i = start

    def _match(self, part: memoryview) -> None:
        ref, pos = self.ref.data, self.pos
        common = min(len(part), len(ref) - pos)
        if common > 0 and not ref.startswith(part[:common], pos):
            self.mismatch = f"differs from the other followers after {pos} bytes of entries"
            return
        if common < len(part):
            ref += part[common:]
        self.pos = pos + len(part)


@dataclass
class Report:
    """A follower's outcome: its start cursor, the entries it received (the
    reference's, if it matched it to the end), or what went wrong."""

    start: int
    seqs: list[int] | None
    problem: str | None


def _heartbeat_end(data: bytes) -> tuple[int, int] | None:
    """The opening heartbeat's cursor and the offset just past its line, once both have arrived."""
    body = data.find(b"\r\n\r\n")
    cursor = _CURSOR.search(data, body) if body >= 0 else None
    if cursor is None:
        return None
    end = data.find(b"\n", cursor.end())
    return None if end < 0 else (int(cursor.group(1)), end + 1)


def _open(port: int, n: int) -> list[tuple[socket.socket, int, bytes]]:
    """n watch streams from now: each one's socket, start cursor and what was read past its heartbeat."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /v1/log:watch?after_seq=-1 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        socks.append(s)
    opened = []
    for s in socks:
        data = b""
        while (found := _heartbeat_end(data)) is None:
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError(f"a follower's stream ended before its heartbeat: {data[:300]!r}")
            data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"a follower was answered {data[:200]!r}")
        cursor, end = found
        s.setblocking(False)
        opened.append((s, cursor, data[end:]))
    return opened


def follow(port: int, n: int, pipe: Connection) -> None:
    opened = _open(port, n)
    refs: dict[int, Reference] = {}
    followers = [Follower(s, refs.setdefault(start, Reference(start)), rest) for s, start, rest in opened]
    pipe.send([f.ref.start for f in followers])
    sel = selectors.DefaultSelector()
    for f in followers:
        sel.register(f.sock, selectors.EVENT_READ, f)
    sel.register(pipe, selectors.EVENT_READ, None)
    buf = bytearray(1 << 20)
    view = memoryview(buf)
    last: int | None = None
    deadline = float("inf")
    ends: dict[int, int | None] = {}
    reading = len(followers)
    while reading:
        for key, _ in sel.select(timeout=1.0):
            f = key.data
            if f is None:
                last, deadline = pipe.recv(), time.monotonic() + _WAIT
                sel.unregister(pipe)
                continue
            got = f.sock.recv_into(buf)
            if got:
                f.feed(view[:got])
            else:
                f.ended = True
            if f.ended or f.mismatch:
                sel.unregister(f.sock)
                reading -= 1
        if last is not None:
            for start, ref in refs.items():
                if ends.get(start) is None:
                    ends[start] = ref.end_of(last)
            done = all((end := ends[f.ref.start]) is not None and f.pos >= end for f in followers)
            if done or time.monotonic() > deadline:
                break
    seqs = {start: ref.seqs() for start, ref in refs.items()}
    reports = []
    for f in followers:
        end = ends.get(f.ref.start)
        got = seqs[f.ref.start]
        if f.mismatch is not None:
            reports.append(Report(f.ref.start, None, f.mismatch))
        elif isinstance(got, str):
            reports.append(Report(f.ref.start, None, got))
        elif end is None or f.pos < end:
            reports.append(
                Report(f.ref.start, None, f"received {f.pos} bytes of entries, not up to seq {last}")
            )
        else:
            reports.append(Report(f.ref.start, got, None))
        f.sock.close()
    pipe.send(reports)


class Followers:
    """`follow` in a process of its own (spawned, so the server's loop is
    not its parent's): `starts` once every stream is open; `finish(last)`
    the reports, once each has received everything up to seq `last`;
    `cpu_seconds()` the process's CPU so far (it shares the machine with
    the server)."""

    def __init__(self, port: int, n: int) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, child = ctx.Pipe()
        self._proc = ctx.Process(target=follow, args=(port, n, child))
        self._proc.start()
        self.starts: list[int] = self._pipe.recv()

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self._proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def finish(self, last: int) -> list[Report]:
        try:
            self._pipe.send(last)
            reports: list[Report] = self._pipe.recv()
            return reports
        finally:
            self.close()

    def close(self) -> None:
        self._proc.join(30)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join()


def problems(reports: list[Report], expected: list[int]) -> list[str]:
    """What each follower missed: every one must have received, in order,
    every entry of `expected` (the log's seqs) after its start."""
    out = []
    for r in reports:
        want = [s for s in expected if s > r.start]
        if r.seqs != want:
            got = f"{len(r.seqs):,} entries" if r.seqs is not None else r.problem
            out.append(f"a follower from seq {r.start}: {got}; {len(want):,} entries expected in order")
    return out
