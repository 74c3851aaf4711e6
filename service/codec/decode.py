"""JSON-ready Python values to proto messages.

Decoding accepts what `json_format.ParseDict(..., ignore_unknown_fields=True)`
accepts and builds the same message, but runs a decoder compiled once per
message type from its descriptor instead of ParseDict's reflective walk.
Both proto and JSON names are accepted and unknown keys are ignored (so hooks
that send extra fields keep working). The differences from ParseDict: a
message must be given as a JSON object (ParseDict iterates whatever it gets,
so it accepts, say, a string or a list of unknown names), and errors are
always ParseError with a message naming the field path.

Free-form JSON (Struct, Value and ListValue fields) can be kept as parsed,
for a request served in this process: see `codec.free_form.keeping_free_form`.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
import reprlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from google.protobuf import descriptor_pool, json_format, message_factory, struct_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message

from service.codec import free_form as ff
from service.codec.encode import is_proto3_optional

M = TypeVar("M", bound=Message)


class ParseError(ValueError):
    """The JSON does not fit the message; the text says where (the first
    problem). `violations`: every problem, as (path, what is wrong), when
    they were looked for (see `type_violations`)."""

    def __init__(self, text: str, violations: list[tuple[str, str]] | None = None) -> None:
        super().__init__(text)
        self.violations = violations or []


# Decoding. A decoder is `decode(js, msg, depth)`: it merges the JSON value `js`
# into `msg`, whose nesting depth (counted in messages, as ParseDict counts
# them) is `depth`. Failures raise _Fail; each level adds its step to the
# path on the way out, so the happy path never builds path strings.

_Decoder = Callable[[Any, Any, int], None]
_Conv = Callable[[Any], Any]
_Setter = Callable[[Any, Any, int], None]
_Nuller = Callable[[Any], None]
# (setter, null handler, oneof name or None, the oneof is proto3 `optional`'s)
_Entry = tuple[_Setter, _Nuller, str | None, bool]

_MAX_DEPTH = 100  # ParseDict's default max_recursion_depth
_LIST_LIKE = (list, tuple)
_SKIP = object()  # an unknown enum name: ParseDict(ignore_unknown_fields=True) skips it
_EXTENSION_KEY = re.compile(r"\[[a-zA-Z0-9\._]*\]$")  # json_format's _VALID_EXTENSION_NAME
_FLOAT_MAX = float.fromhex("0x1.fffffep+127")
_ANY = "google.protobuf.Any"
_JSON_STRING_WKTS = {ff.WKT_TIMESTAMP, ff.WKT_DURATION, "google.protobuf.FieldMask"}
_NULL_VALUE_ENUM = "google.protobuf.NullValue"
_CPP = FieldDescriptor
_INT_RANGES = {
    _CPP.CPPTYPE_INT32: ("int32", -(2**31), 2**31 - 1),
    _CPP.CPPTYPE_UINT32: ("uint32", 0, 2**32 - 1),
    _CPP.CPPTYPE_INT64: ("int64", -(2**63), 2**63 - 1),
    _CPP.CPPTYPE_UINT64: ("uint64", 0, 2**64 - 1),
}


class _Fail(Exception):
    """A decoding failure; `path` collects the steps, innermost first."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text
        self.path: list[str] = []

    def render(self, root: str) -> str:
        where = "".join(reversed(self.path))
        if where.startswith("."):
            where = where[1:]
        return f"{where or root}: {self.text}"


_repr = reprlib.Repr()
_repr.maxstring = _repr.maxother = 60


def _show(v: Any) -> str:
    """A short repr of a rejected value (without walking all of a big one)."""
    return _repr.repr(v)


def _fail_from(exc: BaseException, step: str) -> _Fail:
    fail = _Fail(str(exc) or type(exc).__name__)
    fail.path.append(step)
    return fail


def _too_deep() -> _Fail:
    return _Fail(f"message too deep (the limit is {_MAX_DEPTH} levels)")


# Scalars: each converter returns the value to store or raises _Fail; they
# follow json_format._ConvertScalarFieldValue case by case.


def _int_converter(cpp_type: int) -> _Conv:
    kind, lo, hi = _INT_RANGES[cpp_type]

    def conv(v: Any) -> Any:
        if type(v) is not int:
            v = _to_int(v)
        if lo <= v <= hi:
            return v
        raise _Fail(f"{v} is out of range for {kind}")

    return conv


def _to_int(v: Any) -> int:
    # json_format._ConvertInteger: integers, integer-valued floats, and strings
    # of either (as int() or float() read them, but without spaces); never bools.
    if (isinstance(v, float) and not v.is_integer()) or isinstance(v, bool):
        raise _not_an_integer(v)
    if isinstance(v, str) and " " in v:
        raise _not_an_integer(v)
    try:
        return int(v)
    except ValueError:
        try:
            f = float(v)
        except ValueError:
            raise _not_an_integer(v) from None
        if not f.is_integer():
            raise _not_an_integer(v) from None
        return int(f)
    except (TypeError, OverflowError):
        raise _not_an_integer(v) from None


def _not_an_integer(v: Any) -> _Fail:
    return _Fail(f"expected an integer, got {_show(v)}")


def _float_converter(cpp_type: int) -> _Conv:
    single = cpp_type == _CPP.CPPTYPE_FLOAT

    def conv(v: Any) -> Any:
        # json_format._ConvertFloat: numbers (bools too, as float() takes them)
        # and numeric strings, "NaN", "Infinity", "-Infinity".
        if isinstance(v, float):
            if math.isnan(v):
                raise _Fail('NaN must be given as the string "NaN"')
            if math.isinf(v):
                raise _Fail('infinities must be given as the strings "Infinity" or "-Infinity"')
            if single and not -_FLOAT_MAX <= v <= _FLOAT_MAX:
                raise _Fail(f"{v} is out of range for float")
            return v
        if v == "nan":
            raise _Fail('expected "NaN", got "nan"')
        try:
            return float(v)
        except (TypeError, ValueError, OverflowError):
            raise _Fail(f"expected a number, got {_show(v)}") from None

    return conv


def _to_bool(v: Any) -> Any:
    if v is True or v is False:
        return v
    raise _Fail(f"expected true or false, got {_show(v)}")


def _to_bool_key(v: Any) -> Any:
    if v == "true":
        return True
    if v == "false":
        return False
    raise _Fail(f'expected "true" or "false", got {_show(v)}')


def _to_str(v: Any) -> Any:
    # Lone surrogates are refused by the message itself (UnicodeEncodeError).
    if isinstance(v, str):
        return v
    raise _Fail(f"expected a string, got {_show(v)}")


def _to_bytes(v: Any) -> Any:
    # As json_format: base64, standard or URL-safe, padding optional.
    if isinstance(v, str):
        raw = v.encode()
    elif isinstance(v, bytes | bytearray):
        raw = bytes(v)
    else:
        raise _Fail(f"expected a base64 string, got {_show(v)}")
    try:
        return base64.urlsafe_b64decode(raw + b"=" * (4 - len(raw) % 4))
    except (binascii.Error, ValueError) as exc:
        raise _Fail(f"invalid base64: {exc}") from None


def _custom_enum_names(ed: Any) -> dict[str, int]:
    """Names set with the `pb.enumvalue.json` option, when it is loaded."""
    try:
        ext = descriptor_pool.Default().FindExtensionByName("pb.enumvalue.json")
    except KeyError:
        return {}
    names: dict[str, int] = {}
    for ev in ed.values:
        options = ev.GetOptions()
        if options.HasExtension(ext) and options.Extensions[ext].HasField("string"):
            names[options.Extensions[ext].string] = ev.number
    return names


def _enum_converter(ed: Any) -> _Conv:
    names = {**_custom_enum_names(ed), **{ev.name: ev.number for ev in ed.values}}
    numbers = frozenset(ev.number for ev in ed.values)
    closed = ed.is_closed
    full_name = ed.full_name

    def conv(v: Any) -> Any:
        try:
            number = names.get(v)
        except TypeError:
            number = None
        if number is not None:
            return number
        try:
            number = int(v)
        except ValueError:
            return _SKIP  # an unknown name
        except (TypeError, OverflowError):
            raise _Fail(f"expected an enum name or number, got {_show(v)}") from None
        if not -(2**31) <= number < 2**31:
            # ParseDict's lookup wraps these to 32 bits (2**32 + 1 reads as 1)
            raise _Fail(f"{number} is out of range for an enum")
        if closed and number not in numbers:
            raise _Fail(f"{number} is not a value of {full_name}")
        return number

    return conv


def _converter(fd: Any, *, key: bool = False) -> _Conv:
    cpp = fd.cpp_type
    if cpp in _INT_RANGES:
        return _int_converter(cpp)
    if cpp in (_CPP.CPPTYPE_DOUBLE, _CPP.CPPTYPE_FLOAT):
        return _float_converter(cpp)
    if cpp == _CPP.CPPTYPE_BOOL:
        return _to_bool_key if key else _to_bool
    if cpp == _CPP.CPPTYPE_ENUM:
        return _enum_converter(fd.enum_type)
    if fd.type == _CPP.TYPE_BYTES:
        return _to_bytes
    return _to_str


# Well-known types.


def _decode_value(v: Any, msg: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    t = type(v)
    if t is str:
        msg.string_value = v
    elif t is int or t is float:
        msg.number_value = v
    elif t is bool:
        msg.bool_value = v
    elif v is None:
        msg.null_value = 0
    elif isinstance(v, dict):
        _decode_struct(v, msg.struct_value, depth + 1)
    elif isinstance(v, _LIST_LIKE):
        _decode_list(v, msg.list_value, depth + 1)
    elif isinstance(v, bool):
        msg.bool_value = v
    elif isinstance(v, str):
        msg.string_value = v
    elif isinstance(v, int | float):
        msg.number_value = v
    else:
        raise _Fail(f"expected a JSON value, got {type(v).__name__}")


def _decode_struct(js: Any, msg: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if not isinstance(js, dict):
        raise _Fail(f"expected a JSON object, got {_show(js)}")
    msg.Clear()  # marks it present even when empty
    fields = msg.fields
    key: Any = None
    try:
        for key, v in js.items():
            _decode_value(v, fields[key], depth + 1)
    except _Fail as fail:
        fail.path.append(f".{key}")
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        if not isinstance(key, str):
            raise _fail_from(TypeError("object keys must be strings"), f".{key}") from exc
        raise _fail_from(exc, f".{key}") from exc


def _decode_list(js: Any, msg: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if not isinstance(js, _LIST_LIKE):
        raise _Fail(f"expected a JSON array, got {_show(js)}")
    msg.ClearField("values")
    add = msg.values.add
    i = 0
    try:
        for i, v in enumerate(js):  # noqa: B007 (i names the item on failure)
            _decode_value(v, add(), depth + 1)
    except _Fail as fail:
        fail.path.append(f"[{i}]")
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise _fail_from(exc, f"[{i}]") from exc


# What decoding a free-form value checks, without building it: the same
# shapes, errors and depth count (a Struct and each Value in it are a level).
_JSON_SCALARS = (str, int, float, bool, type(None))


def _check_text(text: str) -> None:
    """A string the runtime refuses (a lone surrogate) fails as it would."""
    if not text.isascii():
        struct_pb2.Value().string_value = text


def _check_int(n: int) -> None:
    """An integer beyond a double's range fails as it would."""
    if n.bit_length() > 1000:
        struct_pb2.Value().number_value = n


def _check_value(v: Any, msg: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if type(v) is str:
        _check_text(v)
    elif type(v) is int:
        _check_int(v)
    elif isinstance(v, dict):
        _check_struct(v, msg, depth + 1)
    elif isinstance(v, _LIST_LIKE):
        _check_list(v, msg, depth + 1)
    elif not isinstance(v, _JSON_SCALARS):
        raise _Fail(f"expected a JSON value, got {type(v).__name__}")


def _check_item(v: Any, msg: Any, depth: int) -> None:
    """A value in a Struct or ListValue (scalars, the most, without a call)."""
    t = type(v)
    if t not in _JSON_SCALARS:
        _check_value(v, msg, depth)
    elif depth > _MAX_DEPTH:
        raise _too_deep()
    elif t is str:
        _check_text(v)
    elif t is int:
        _check_int(v)


def _check_struct(js: Any, msg: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if not isinstance(js, dict):
        raise _Fail(f"expected a JSON object, got {_show(js)}")
    key: Any = None
    try:
        for key, v in js.items():
            if type(key) is not str:
                raise _Fail("object keys must be strings")
            _check_text(key)
            _check_item(v, msg, depth + 1)
    except _Fail as fail:
        fail.path.append(f".{key}")
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise _fail_from(exc, f".{key}") from exc


def _check_list(js: Any, msg: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if not isinstance(js, _LIST_LIKE):
        raise _Fail(f"expected a JSON array, got {_show(js)}")
    i = 0
    try:
        for i, v in enumerate(js):  # noqa: B007 (i names the item on failure)
            _check_item(v, msg, depth + 1)
    except _Fail as fail:
        fail.path.append(f"[{i}]")
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise _fail_from(exc, f"[{i}]") from exc


_FREE_FORM_CHECKS: dict[str, _Decoder] = {
    ff.WKT_STRUCT: _check_struct,
    ff.WKT_VALUE: _check_value,
    ff.WKT_LIST: _check_list,
}


def _decode_json_string(js: Any, msg: Any, depth: int) -> None:
    """Timestamp, Duration, FieldMask."""
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if not isinstance(js, str):
        raise _Fail(f"expected a string, got {_show(js)}")
    try:
        msg.FromJsonString(js)
    except ValueError as exc:
        raise _Fail(str(exc)) from None


def _decode_with_json_format(js: Any, msg: Any, depth: int) -> None:
    """Any, and messages with extensions: left to ParseDict, with the depth left."""
    if depth > _MAX_DEPTH:
        raise _too_deep()
    if msg.DESCRIPTOR.full_name != _ANY and not isinstance(js, dict):
        raise _Fail(f"expected a JSON object, got {_show(js)}")
    try:
        json_format.ParseDict(js, msg, ignore_unknown_fields=True, max_recursion_depth=_MAX_DEPTH - depth + 1)
    except (json_format.Error, TypeError, ValueError, KeyError, AttributeError, OverflowError) as exc:
        raise _Fail(str(exc)) from None


def _wrapper_decoder(conv: _Conv) -> _Decoder:
    def decode(js: Any, msg: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _too_deep()
        v = conv(js)
        if v is not _SKIP:
            msg.value = v

    return decode


# Fields of ordinary messages.


def _scalar_setter(name: str, conv: _Conv) -> _Setter:
    def set_(msg: Any, v: Any, depth: int) -> None:
        c = conv(v)
        if c is not _SKIP:
            setattr(msg, name, c)

    return set_


def _string_setter(name: str) -> _Setter:
    def set_(msg: Any, v: Any, depth: int) -> None:
        setattr(msg, name, v if type(v) is str else _to_str(v))

    return set_


def _message_setter(name: str, decode: _Decoder) -> _Setter:
    def set_(msg: Any, v: Any, depth: int) -> None:
        sub = getattr(msg, name)
        sub.SetInParent()
        decode(v, sub, depth + 1)

    return set_


def _free_form_setter(name: str, decode: _Decoder, check: _Decoder) -> _Setter:
    """A singular Struct, Value or ListValue field: decoded, or kept as
    parsed after `check` (see `keeping_free_form`)."""

    def set_(msg: Any, v: Any, depth: int) -> None:
        sub = getattr(msg, name)
        sub.SetInParent()
        kept = ff.keep_into.get()
        if kept is None:
            decode(v, sub, depth + 1)
        else:
            check(v, sub, depth + 1)
            kept[id(sub)] = (sub, v)

    return set_


def _repeated_scalar_setter(name: str, conv: _Conv) -> _Setter:
    def set_(msg: Any, v: Any, depth: int) -> None:
        msg.ClearField(name)
        if not isinstance(v, _LIST_LIKE):
            raise _Fail(f"expected a JSON array, got {_show(v)}")
        append = getattr(msg, name).append
        i = 0
        try:
            for i, x in enumerate(v):  # noqa: B007 (i names the item on failure)
                if x is None:
                    raise _Fail("null is not allowed in a repeated field")
                c = conv(x)
                if c is not _SKIP:
                    append(c)
        except _Fail as fail:
            fail.path.append(f"[{i}]")
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise _fail_from(exc, f"[{i}]") from exc

    return set_


def _repeated_message_setter(name: str, decode: _Decoder, null_ok: bool) -> _Setter:
    def set_(msg: Any, v: Any, depth: int) -> None:
        msg.ClearField(name)
        if not isinstance(v, _LIST_LIKE):
            raise _Fail(f"expected a JSON array, got {_show(v)}")
        add = getattr(msg, name).add
        i = 0
        try:
            for i, x in enumerate(v):  # noqa: B007 (i names the item on failure)
                sub = add()
                if x is None and not null_ok:
                    raise _Fail("null is not allowed in a repeated field")
                decode(x, sub, depth + 1)
        except _Fail as fail:
            fail.path.append(f"[{i}]")
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise _fail_from(exc, f"[{i}]") from exc

    return set_


def _map_setter(name: str, key_conv: _Conv, value_conv: _Conv | None, decode: _Decoder | None) -> _Setter:
    def set_(msg: Any, v: Any, depth: int) -> None:
        msg.ClearField(name)
        if not isinstance(v, dict):
            raise _Fail(f"expected a JSON object, got {_show(v)}")
        entries = getattr(msg, name)
        k: Any = None
        try:
            for k, x in v.items():
                key = key_conv(k)
                if decode is not None:
                    decode(x, entries[key], depth + 1)
                else:
                    c = value_conv(x)  # type: ignore[misc]
                    if c is not _SKIP:
                        entries[key] = c
        except _Fail as fail:
            fail.path.append(f"[{k!r}]")
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise _fail_from(exc, f"[{k!r}]") from exc

    return set_


def _clearer(name: str) -> _Nuller:
    def clear(msg: Any) -> None:
        msg.ClearField(name)

    return clear


def _null_value_setter(name: str) -> _Nuller:
    def set_null(msg: Any) -> None:
        getattr(msg, name).null_value = 0

    return set_null


def _null_enum_setter(name: str) -> _Nuller:
    def set_null(msg: Any) -> None:
        setattr(msg, name, 0)

    return set_null


def _null_refuser(msg: Any) -> None:
    raise _Fail("null is not allowed here")


def _entry(fd: Any) -> _Entry:
    name = fd.name
    mt = fd.message_type
    # null: as ParseDict, a Value takes null_value, a NullValue enum 0, and
    # anything else is cleared (a repeated Value field fails there too).
    nuller: _Nuller
    if mt is not None and mt.full_name == ff.WKT_VALUE:
        nuller = _null_refuser if fd.is_repeated else _null_value_setter(name)
    elif fd.enum_type is not None and fd.enum_type.full_name == _NULL_VALUE_ENUM:
        nuller = _null_refuser if fd.is_repeated else _null_enum_setter(name)
    else:
        nuller = _clearer(name)
    setter: _Setter
    if mt is not None and mt.GetOptions().map_entry:
        key_fd = mt.fields_by_name["key"]
        value_fd = mt.fields_by_name["value"]
        if value_fd.message_type is not None:
            setter = _map_setter(name, _converter(key_fd, key=True), None, _decoder(value_fd.message_type))
        else:
            setter = _map_setter(name, _converter(key_fd, key=True), _converter(value_fd), None)
    elif fd.is_repeated:
        if mt is not None:
            setter = _repeated_message_setter(name, _decoder(mt), mt.full_name == ff.WKT_VALUE)
        else:
            setter = _repeated_scalar_setter(name, _converter(fd))
    elif mt is not None and mt.full_name in _FREE_FORM_CHECKS:
        setter = _free_form_setter(name, _decoder(mt), _FREE_FORM_CHECKS[mt.full_name])
    elif mt is not None:
        setter = _message_setter(name, _decoder(mt))
    elif fd.cpp_type == _CPP.CPPTYPE_STRING and fd.type != _CPP.TYPE_BYTES:
        setter = _string_setter(name)
    else:
        setter = _scalar_setter(name, _converter(fd))
    oneof = fd.containing_oneof
    return (setter, nuller, oneof.name if oneof is not None else None, is_proto3_optional(fd))


def _message_decoder(md: Any) -> _Decoder:
    table: dict[str, _Entry] = {}
    full_name = md.full_name

    def decode(js: Any, msg: Any, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise _too_deep()
        if not isinstance(js, dict):
            raise _Fail(f"expected a JSON object, got {_show(js)}")
        seen: dict[str, str] | None = None
        key: Any = None
        try:
            for key, value in js.items():
                entry = table.get(key)
                if entry is None:
                    # Unknown keys are skipped, but as in ParseDict a key must
                    # be a string and an extension key fails: there are none.
                    if not isinstance(key, str):
                        raise _Fail("object keys must be strings")
                    if key.startswith("[") and _EXTENSION_KEY.match(key):
                        raise _Fail(f"{full_name} has no extensions")
                    continue
                if value is None:
                    entry[1](msg)
                    continue
                oneof = entry[2]
                if oneof is not None:
                    if seen is None:
                        seen = {oneof: key}
                    elif oneof in seen:
                        if entry[3]:
                            raise _Fail(f"the field is given twice (also as {seen[oneof]!r})")
                        raise _Fail(f"oneof {oneof!r} is already set by {seen[oneof]!r}")
                    else:
                        seen[oneof] = key
                entry[0](msg, value, depth)
        except _Fail as fail:
            fail.path.append(f".{key}")
            raise
        except (TypeError, ValueError, OverflowError) as exc:
            raise _fail_from(exc, f".{key}") from exc

    _building[md] = decode  # visible to recursive fields before the table is filled
    for fd in md.fields:
        table[fd.name] = _entry(fd)
    for fd in md.fields:
        table[fd.json_name] = table[fd.name]  # JSON names win, as in ParseDict
    return decode


def _compile(md: Any) -> _Decoder:
    name = md.full_name
    if name == ff.WKT_STRUCT:
        return _decode_struct
    if name == ff.WKT_VALUE:
        return _decode_value
    if name == ff.WKT_LIST:
        return _decode_list
    if name in _JSON_STRING_WKTS:
        return _decode_json_string
    if name in ff.WRAPPERS or name == "google.protobuf.BytesValue":
        return _wrapper_decoder(_converter(md.fields_by_name["value"]))
    if name == _ANY or md.is_extendable:
        return _decode_with_json_format
    return _message_decoder(md)


_ready: dict[Any, _Decoder] = {}
_building: dict[Any, _Decoder] = {}
_compiling = threading.RLock()


def _decoder(md: Any) -> _Decoder:
    """The decoder for messages of type `md`, compiled on first use.

    Compiling a type compiles the types of its message fields too, so it
    runs under a lock and is published only when complete; a recursive type
    finds its own half-built decoder in `_building`.
    """
    decode = _ready.get(md)
    if decode is not None:
        return decode
    with _compiling:
        decode = _ready.get(md) or _building.get(md)
        if decode is not None:
            return decode
        outermost = not _building
        try:
            decode = _building[md] = _compile(md)
            if outermost:
                _ready.update(_building)
        finally:
            if outermost:
                _building.clear()
    return decode


def _decode_into(data: Any, msg: Message) -> None:
    md = msg.DESCRIPTOR
    try:
        (_ready.get(md) or _decoder(md))(data, msg, 1)
    except _Fail as fail:
        raise ParseError(fail.render(md.name)) from None
    except (TypeError, ValueError, OverflowError) as exc:  # a well-known type at the top
        raise ParseError(f"{md.name}: {exc}") from exc


def from_dict(data: Any, cls: type[M], *, keep_free_form: bool = False) -> M:
    """Parse JSON-ready data into a new message of `cls`; unknown keys are
    ignored. `keep_free_form`: within `keeping_free_form()`, keep free-form
    JSON as parsed (see there); `data` is then read as given, so it should
    be JSON as a parser returns it."""
    msg = cls()
    table = ff.kept_table.get() if keep_free_form else None
    if table is None:
        _decode_into(data, msg)
        return msg
    token = ff.keep_into.set(table)
    try:
        _decode_into(data, msg)
    finally:
        ff.keep_into.reset(token)
    return msg


def type_violations(data: Any, cls: type[Message]) -> list[tuple[str, str]]:
    """Every place JSON `data` does not fit `cls`, as (path, what is wrong) in
    the decoder's words, not only the first as from_dict reports: each field
    is decoded alone, and a failing object or list of objects is searched
    item by item. For the error path only: it decodes every field again."""
    found: list[tuple[str, str]] = []
    _search(data, cls.DESCRIPTOR, "", found)
    return found


def _problem(data: Any, md: Any) -> str | None:
    try:
        _decode_into(data, message_factory.GetMessageClass(md)())
    except ParseError as exc:
        return str(exc)
    return None


def _search(data: Any, md: Any, path: str, found: list[tuple[str, str]]) -> None:
    """Add the problems of `data`, read as an `md` at `path`, to `found`."""
    problem = _problem(data, md)
    if problem is None:
        return
    if not isinstance(data, dict) or md.full_name.startswith("google.protobuf."):
        found.append(_located(problem, md, path))
        return
    fields = {key: fd for fd in md.fields for key in (fd.name, fd.json_name)}
    before = len(found)
    for key, value in data.items():
        fd = fields.get(key)
        alone = _problem({key: value}, md) if fd is not None else None
        if fd is None or alone is None:
            continue
        at = f"{path}.{key}" if path else key
        is_object = fd.type == FieldDescriptor.TYPE_MESSAGE and not fd.message_type.GetOptions().map_entry
        if is_object and fd.is_repeated and isinstance(value, list):
            for i, item in enumerate(value):
                _search(item, fd.message_type, f"{at}[{i}]", found)
        elif is_object and not fd.is_repeated and isinstance(value, dict):
            _search(value, fd.message_type, at, found)
        else:
            found.append(_located(alone, md, path))
    if len(found) == before:  # a problem of the whole (too deep, say)
        found.append(_located(problem, md, path))


def _located(problem: str, md: Any, path: str) -> tuple[str, str]:
    """(path, text) of a decoder message `<where>: <text>` found at `path`."""
    where, _, text = problem.partition(": ")
    if where == md.name:
        return path, text
    return (f"{path}.{where}" if path else where), text


def merge_dict(data: Any, msg: Message) -> None:
    """Parse JSON-ready data into an existing message (or a sub-message of one)."""
    _decode_into(data, msg)
