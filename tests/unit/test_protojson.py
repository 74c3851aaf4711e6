"""The compiled JSON decoder against json_format.ParseDict(ignore_unknown_fields=True).

Valid inputs must build the message ParseDict builds; invalid inputs must be
refused by both, ours with a ParseError that names the field.
"""

from __future__ import annotations

import copy
import random
import re
from typing import Any

import pytest
from agentplane.v1 import log_pb2, runtime_pb2
from google.protobuf import (
    any_pb2,
    descriptor_pb2,
    descriptor_pool,
    duration_pb2,
    empty_pb2,
    field_mask_pb2,
    json_format,
    message_factory,
    struct_pb2,
    timestamp_pb2,
    wrappers_pb2,
)
from google.protobuf.message import Message

from service import codec as protojson
from service.codec import ParseError, decode, from_dict, merge_dict

F = descriptor_pb2.FieldDescriptorProto


def _field(
    name: str,
    number: int,
    ftype: int,
    *,
    label: int = F.LABEL_OPTIONAL,
    type_name: str = "",
    oneof: int | None = None,
    json_name: str = "",
    proto3_optional: bool = False,
) -> F:
    fd = F(name=name, number=number, type=ftype, label=label)  # type: ignore[arg-type]
    if type_name:
        fd.type_name = type_name
    if oneof is not None:
        fd.oneof_index = oneof
    if json_name:
        fd.json_name = json_name
    if proto3_optional:
        fd.proto3_optional = True
    return fd


def _map_entry(name: str, key_type: int, value_type: int, value_type_name: str = "") -> Any:
    entry = descriptor_pb2.DescriptorProto(name=name)
    entry.options.map_entry = True
    entry.field.append(_field("key", 1, key_type))
    entry.field.append(_field("value", 2, value_type, type_name=value_type_name))
    return entry


def _build_test_protos() -> dict[str, type[Message]]:
    """Messages with every kind of field, added to the default pool (Any needs it)."""
    rep = F.LABEL_REPEATED
    p3 = descriptor_pb2.FileDescriptorProto(
        name="tests/unit/protojson_kitchen.proto",
        package="protojson_test",
        syntax="proto3",
        dependency=[
            "google/protobuf/struct.proto",
            "google/protobuf/timestamp.proto",
            "google/protobuf/duration.proto",
            "google/protobuf/field_mask.proto",
            "google/protobuf/wrappers.proto",
            "google/protobuf/empty.proto",
            "google/protobuf/any.proto",
        ],
    )
    color = p3.enum_type.add(name="Color")
    for n, v in (("COLOR_UNSPECIFIED", 0), ("RED", 1), ("GREEN", 2)):
        color.value.add(name=n, number=v)
    node = p3.message_type.add(name="Node")
    node.field.extend(
        [
            _field("v", 1, F.TYPE_INT32),
            _field("child", 2, F.TYPE_MESSAGE, type_name=".protojson_test.Node"),
            _field("children", 3, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Node"),
        ]
    )
    k = p3.message_type.add(name="Kitchen")
    k.nested_type.extend(
        [
            _map_entry("StrIntEntry", F.TYPE_STRING, F.TYPE_INT32),
            _map_entry("IntStrEntry", F.TYPE_INT64, F.TYPE_STRING),
            _map_entry("UintBytesEntry", F.TYPE_UINT32, F.TYPE_BYTES),
            _map_entry("BoolNodeEntry", F.TYPE_BOOL, F.TYPE_MESSAGE, ".protojson_test.Node"),
            _map_entry("StrValueEntry", F.TYPE_STRING, F.TYPE_MESSAGE, ".google.protobuf.Value"),
            _map_entry("StrColorEntry", F.TYPE_STRING, F.TYPE_ENUM, ".protojson_test.Color"),
            _map_entry("StrTsEntry", F.TYPE_STRING, F.TYPE_MESSAGE, ".google.protobuf.Timestamp"),
        ]
    )
    k.oneof_decl.add(name="choice")
    k.oneof_decl.add(name="_opt_int")
    k.field.extend(
        [
            _field("i32", 1, F.TYPE_INT32),
            _field("i64", 2, F.TYPE_INT64),
            _field("u32", 3, F.TYPE_UINT32),
            _field("u64", 4, F.TYPE_UINT64),
            _field("s32", 5, F.TYPE_SINT32),
            _field("s64", 6, F.TYPE_SINT64),
            _field("f32", 7, F.TYPE_FIXED32),
            _field("f64", 8, F.TYPE_FIXED64),
            _field("sf32", 9, F.TYPE_SFIXED32),
            _field("sf64", 10, F.TYPE_SFIXED64),
            _field("flt", 11, F.TYPE_FLOAT),
            _field("dbl", 12, F.TYPE_DOUBLE),
            _field("flag", 13, F.TYPE_BOOL),
            _field("text", 14, F.TYPE_STRING),
            _field("blob", 15, F.TYPE_BYTES),
            _field("color", 16, F.TYPE_ENUM, type_name=".protojson_test.Color"),
            _field("node", 17, F.TYPE_MESSAGE, type_name=".protojson_test.Node"),
            _field("ints", 18, F.TYPE_INT32, label=rep),
            _field("texts", 19, F.TYPE_STRING, label=rep),
            _field("colors", 20, F.TYPE_ENUM, label=rep, type_name=".protojson_test.Color"),
            _field("nodes", 21, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Node"),
            _field("values", 22, F.TYPE_MESSAGE, label=rep, type_name=".google.protobuf.Value"),
            _field("blobs", 23, F.TYPE_BYTES, label=rep),
            _field("dbls", 24, F.TYPE_DOUBLE, label=rep),
            _field("str_int", 25, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Kitchen.StrIntEntry"),
            _field("int_str", 26, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Kitchen.IntStrEntry"),
            _field(
                "uint_bytes",
                27,
                F.TYPE_MESSAGE,
                label=rep,
                type_name=".protojson_test.Kitchen.UintBytesEntry",
            ),
            _field(
                "bool_node", 28, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Kitchen.BoolNodeEntry"
            ),
            _field(
                "str_value", 29, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Kitchen.StrValueEntry"
            ),
            _field(
                "str_color", 30, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Kitchen.StrColorEntry"
            ),
            _field("str_ts", 31, F.TYPE_MESSAGE, label=rep, type_name=".protojson_test.Kitchen.StrTsEntry"),
            _field("pick_text", 32, F.TYPE_STRING, oneof=0),
            _field("pick_node", 33, F.TYPE_MESSAGE, oneof=0, type_name=".protojson_test.Node"),
            _field("pick_int", 34, F.TYPE_INT32, oneof=0),
            _field("opt_int", 35, F.TYPE_INT32, oneof=1, proto3_optional=True),
            _field("ts", 40, F.TYPE_MESSAGE, type_name=".google.protobuf.Timestamp"),
            _field("dur", 41, F.TYPE_MESSAGE, type_name=".google.protobuf.Duration"),
            _field("mask", 42, F.TYPE_MESSAGE, type_name=".google.protobuf.FieldMask"),
            _field("st", 43, F.TYPE_MESSAGE, type_name=".google.protobuf.Struct"),
            _field("val", 44, F.TYPE_MESSAGE, type_name=".google.protobuf.Value"),
            _field("lst", 45, F.TYPE_MESSAGE, type_name=".google.protobuf.ListValue"),
            _field("empty", 46, F.TYPE_MESSAGE, type_name=".google.protobuf.Empty"),
            _field("anything", 47, F.TYPE_MESSAGE, type_name=".google.protobuf.Any"),
            _field("null", 48, F.TYPE_ENUM, type_name=".google.protobuf.NullValue"),
            _field("w_dbl", 50, F.TYPE_MESSAGE, type_name=".google.protobuf.DoubleValue"),
            _field("w_flt", 51, F.TYPE_MESSAGE, type_name=".google.protobuf.FloatValue"),
            _field("w_i64", 52, F.TYPE_MESSAGE, type_name=".google.protobuf.Int64Value"),
            _field("w_u64", 53, F.TYPE_MESSAGE, type_name=".google.protobuf.UInt64Value"),
            _field("w_i32", 54, F.TYPE_MESSAGE, type_name=".google.protobuf.Int32Value"),
            _field("w_u32", 55, F.TYPE_MESSAGE, type_name=".google.protobuf.UInt32Value"),
            _field("w_bool", 56, F.TYPE_MESSAGE, type_name=".google.protobuf.BoolValue"),
            _field("w_str", 57, F.TYPE_MESSAGE, type_name=".google.protobuf.StringValue"),
            _field("w_bytes", 58, F.TYPE_MESSAGE, type_name=".google.protobuf.BytesValue"),
            _field("w_i64s", 59, F.TYPE_MESSAGE, label=rep, type_name=".google.protobuf.Int64Value"),
            _field("custom", 60, F.TYPE_STRING, json_name="renamed"),
            _field("timestamps", 61, F.TYPE_MESSAGE, label=rep, type_name=".google.protobuf.Timestamp"),
        ]
    )
    p2 = descriptor_pb2.FileDescriptorProto(
        name="tests/unit/protojson_legacy.proto", package="protojson_test", syntax="proto2"
    )
    shade = p2.enum_type.add(name="Shade")
    shade.value.add(name="LIGHT", number=1)
    shade.value.add(name="DARK", number=2)
    legacy = p2.message_type.add(name="Legacy")
    legacy.field.extend(
        [
            _field("shade", 1, F.TYPE_ENUM, type_name=".protojson_test.Shade"),
            _field("shades", 2, F.TYPE_ENUM, label=rep, type_name=".protojson_test.Shade"),
            _field("name", 3, F.TYPE_STRING),
        ]
    )
    ext = p2.message_type.add(name="Extendable")
    ext.field.append(_field("name", 1, F.TYPE_STRING))
    ext.extension_range.add(start=100, end=200)
    p2.extension.append(_field("ext_int", 100, F.TYPE_INT32))
    p2.extension[0].extendee = ".protojson_test.Extendable"

    pool = descriptor_pool.Default()
    classes: dict[str, type[Message]] = {}
    for fdp in (p3, p2):
        try:
            pool.FindFileByName(fdp.name)
        except KeyError:
            pool.Add(fdp)
        for name in [m.name for m in fdp.message_type]:
            classes[name] = message_factory.GetMessageClass(
                pool.FindMessageTypeByName(f"protojson_test.{name}")
            )
    return classes


_CLASSES = _build_test_protos()
Kitchen = _CLASSES["Kitchen"]
Node = _CLASSES["Node"]
Legacy = _CLASSES["Legacy"]
Extendable = _CLASSES["Extendable"]
Event = runtime_pb2.Event
BENCH = {
    "event_type": "post_tool",
    "session_id": "s1",
    "session_name": "bench",
    "timestamp": "2026-01-01T00:00:00Z",
    "tool_name": "Read",
    "tool_input": {"file_path": "/src/app.py", "limit": 100},
    "tool_output": "x" * 200,
    "extra_unknown": 1,
}


def nested(depth: int) -> Any:
    """A JSON value of `depth` nested objects."""
    value: Any = 1
    for _ in range(depth):
        value = {"k": value}
    return value


def nested_list(depth: int) -> Any:
    """A JSON value of `depth` nested arrays."""
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def reference(data: Any, cls: type[Message], into: Message | None = None) -> Message:
    msg = cls() if into is None else into
    json_format.ParseDict(copy.deepcopy(data), msg, ignore_unknown_fields=True)
    return msg


VALID: list[tuple[type[Message], Any]] = [
    # the project's messages
    (Event, BENCH),
    (Event, {}),
    (
        Event,
        {
            "eventType": "session_stop",
            "sessionId": "s",
            "sessionName": "n",
            "toolName": "Bash",
            "toolInput": {"command": "ls", "args": ["-l", 2, True, None], "env": {}},
            "exitCode": 3,
            "role": "",
        },
    ),
    (Event, {"tool_name": None, "exit_code": None, "tool_input": None, "tool_output": None, "content": None}),
    (Event, {"tool_output": None}),
    (Event, {"tool_output": {"a": [1, {"b": None}], "c": 1.5}}),
    (Event, {"tool_output": []}),
    (Event, {"tool_output": {}}),
    (Event, {"tool_output": 0}),
    (Event, {"tool_output": False}),
    (Event, {"tool_output": -1e300}),
    (Event, {"tool_output": ""}),
    (Event, {"tool_input": {}}),
    (Event, {"tool_input": {"": None, "nested": {"deeper": {"x": [[], {}, ""]}}}}),
    (Event, {"content": [{"type": "text", "text": "hi"}, "plain", None, 7]}),
    (Event, {"content": ({"type": "text"},)}),
    (Event, {"content": []}),
    (Event, {"exit_code": "42"}),
    (Event, {"exit_code": 42.0}),
    (Event, {"exit_code": "1e2"}),
    (Event, {"exit_code": "-2147483648"}),
    (Event, {"exit_code": 2147483647}),
    (Event, {"exit_code": "1_000"}),
    (Event, {"exit_code": 0}),
    (Event, {"session_id": "proto", "sessionId": "json"}),  # not a oneof: the last wins
    (Event, {"tool_input": {"a": 1}, "toolInput": {"b": 2}}),
    (Event, {"exit_code": None, "exitCode": 5}),
    (Event, {"unknown": {"deep": [1, 2]}, "also_unknown": None, "[": 1}),
    (Event, {"tool_input": nested(48)}),
    (runtime_pb2.StoredEvent, {"id": 7, "session_id": "s", "tool_output": {"ok": True}}),
    (runtime_pb2.AddSessionEventRequest, {"session_id": "s", "event": BENCH}),
    (runtime_pb2.AddSessionEventRequest, {"event": None}),
    (runtime_pb2.AddSessionEventRequest, {"event": {}}),
    (runtime_pb2.UpdateSessionMetadataRequest, {"session_id": "s", "agent_name": "a", "projectDir": "/p"}),
    (log_pb2.LogEntry, {"seq": 9007199254740993, "recorded_at": "2026-01-01T00:00:00Z", "data": {"x": 1}}),
    (log_pb2.LogEntry, {"seq": "9223372036854775807", "recordedAt": "2026-01-01T10:00:00.123456789+02:00"}),
    (log_pb2.LogEntry, {"seq": -9223372036854775808, "recorded_at": None}),
    (log_pb2.WatchLogRequest, {"after_seq": "12", "types": ["a", "b"], "stop_at_end": True}),
    (log_pb2.WatchLogRequest, {"types": []}),
    (log_pb2.WatchLogResponse, {"entry": {"seq": 1, "type": "t"}}),
    (log_pb2.WatchLogResponse, {"heartbeat": {"cursor": "5", "time": "1970-01-01T00:00:00Z"}}),
    (log_pb2.WatchLogResponse, {"entry": None, "heartbeat": {"cursor": 1}}),
    (log_pb2.WatchLogResponse, {"entry": {"seq": 1}, "heartbeat": None}),
    # well-known types as the top-level message
    (struct_pb2.Struct, {"a": [1, "b", None, {"c": False}]}),
    (struct_pb2.Value, "text"),
    (struct_pb2.Value, None),
    (struct_pb2.Value, [1, [2, [3]]]),
    (struct_pb2.ListValue, [{"a": 1}, None]),
    (timestamp_pb2.Timestamp, "2026-06-01T12:30:00.5Z"),
    (duration_pb2.Duration, "-1.25s"),
    (field_mask_pb2.FieldMask, "fooBar,baz.quxQuux"),
    (empty_pb2.Empty, {}),
    (empty_pb2.Empty, {"ignored": 1}),
    (wrappers_pb2.Int64Value, "123"),
    (wrappers_pb2.BoolValue, False),
    (wrappers_pb2.DoubleValue, "Infinity"),
    (wrappers_pb2.DoubleValue, True),  # float(True): ParseDict takes it
    (wrappers_pb2.BytesValue, "aGk="),
    (any_pb2.Any, {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "2s"}),
    (any_pb2.Any, {}),
    # integers of every width and encoding
    (
        Kitchen,
        {
            "i32": -5,
            "i64": "-9223372036854775808",
            "u32": 4294967295,
            "u64": "18446744073709551615",
            "s32": "-7",
            "s64": 8.0,
            "f32": "1e3",
            "f64": 18446744073709551615,
            "sf32": -2147483648,
            "sf64": "12",
        },
    ),
    # floats
    (Kitchen, {"flt": 1.5, "dbl": -0.25}),
    (Kitchen, {"flt": "NaN", "dbl": "-Infinity"}),
    (Kitchen, {"flt": "Infinity", "dbl": "NaN"}),
    (Kitchen, {"flt": "1e39", "dbl": "1e308"}),  # a string is not range-checked: float32 gets inf
    (Kitchen, {"flt": 3, "dbl": "  2.5 "}),
    (Kitchen, {"flt": 3.4028234663852886e38, "dbl": 1e308}),
    (Kitchen, {"dbls": [1, 2.5, "NaN", "-1e3"]}),
    (Kitchen, {"flag": True, "text": "héllo ✓", "custom": "by proto name"}),
    (Kitchen, {"renamed": "by json name"}),
    # bytes
    (Kitchen, {"blob": "aGVsbG8="}),
    (Kitchen, {"blob": "aGVsbG8"}),
    (Kitchen, {"blob": "-_8="}),
    (Kitchen, {"blob": "+/8="}),
    (Kitchen, {"blob": ""}),
    (Kitchen, {"blobs": ["YQ", "YWI=", "YWJj"]}),
    # enums
    (Kitchen, {"color": "RED"}),
    (Kitchen, {"color": 2}),
    (Kitchen, {"color": "2"}),
    (Kitchen, {"color": 99}),  # open enum: unknown numbers are kept
    (Kitchen, {"color": "PURPLE"}),  # unknown names are skipped under ignore_unknown_fields
    (Kitchen, {"color": "GREEN", "colors": ["RED", "PURPLE", 2, 7]}),
    (Kitchen, {"null": None}),
    (Kitchen, {"null": "NULL_VALUE"}),
    (Kitchen, {"null": 0}),
    (Legacy, {"shade": "DARK", "shades": ["LIGHT", "NOPE", 2], "name": "n"}),
    (Legacy, {"shade": "UNKNOWN"}),
    # repeated
    (Kitchen, {"ints": [1, "2", 3.0], "texts": ["a", ""], "nodes": [{"v": 1}, {}]}),
    (Kitchen, {"values": [None, 1, "a", [], {}]}),
    (Kitchen, {"ints": [], "texts": None}),
    (Kitchen, {"ints": (1, 2)}),
    (Kitchen, {"w_i64s": ["1", 2], "timestamps": ["2026-01-01T00:00:00Z"]}),
    # maps
    (Kitchen, {"str_int": {"a": 1, "b": "2", "": 0}}),
    (Kitchen, {"int_str": {"1": "one", "-3": "minus three", "9223372036854775807": "max"}}),
    (Kitchen, {"uint_bytes": {"4294967295": "YWJj"}}),
    (Kitchen, {"bool_node": {"true": {"v": 1}, "false": {}}}),
    (Kitchen, {"str_value": {"a": None, "b": [1], "c": {"d": "e"}}}),
    (Kitchen, {"str_color": {"a": "RED", "b": 2, "c": "PURPLE"}}),
    (Kitchen, {"str_ts": {"a": "2026-01-01T00:00:00Z"}}),
    (Kitchen, {"strInt": {"x": 1}, "str_int": {"y": 2}}),
    (Kitchen, {"str_int": {}}),
    # oneofs and optional
    (Kitchen, {"pick_text": "t"}),
    (Kitchen, {"pickNode": {"v": 3}}),
    (Kitchen, {"pick_int": 0}),
    (Kitchen, {"pick_text": None, "pick_int": 5}),
    (Kitchen, {"pick_int": 5, "pick_text": None}),
    (Kitchen, {"opt_int": 0}),
    (Kitchen, {"opt_int": None}),
    # nested and recursive messages
    (Kitchen, {"node": {"v": 1, "child": {"v": 2, "children": [{"v": 3}, {"child": {}}]}}}),
    (Kitchen, {"node": {}}),
    (Kitchen, {"node": None}),
    (Kitchen, {"node": {"v": 1}, "Node": {"v": 2}}),
    # well-known types as fields
    (
        Kitchen,
        {
            "ts": "2026-01-01T00:00:00Z",
            "dur": "1.5s",
            "mask": "a,bC.d",
            "st": {"a": 1},
            "val": [1, "x"],
            "lst": [None, True],
            "empty": {},
            "anything": {"@type": "type.googleapis.com/agentplane.v1.Session", "session_id": "x"},
        },
    ),
    (Kitchen, {"val": None, "st": None, "lst": None, "ts": None, "anything": None}),
    (Kitchen, {"anything": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": {"a": [1]}}}),
    (Kitchen, {"anything": {}}),
    (Kitchen, {"lst": []}),
    (Kitchen, {"mask": ""}),
    # wrappers
    (
        Kitchen,
        {
            "w_dbl": "NaN",
            "w_flt": 1.5,
            "w_i64": "-5",
            "w_u64": 18446744073709551615,
            "w_i32": 0,
            "w_u32": "7",
            "w_bool": False,
            "w_str": "",
            "w_bytes": "AAE=",
        },
    ),
    (Kitchen, {"w_i32": None, "w_str": None}),
    # a message with extensions is left to json_format
    (Extendable, {"name": "n", "[protojson_test.ext_int]": 5, "unknown": 1}),
]


def _id(case: Any) -> str:
    # Without memory addresses, so every pytest-xdist worker collects the same ids.
    text = re.sub(r" at 0x[0-9a-f]+", "", repr(case))
    return text if len(text) < 80 else text[:77] + "..."


@pytest.mark.parametrize(("cls", "data"), VALID, ids=_id)
def test_valid_input_builds_what_parsedict_builds(cls: type[Message], data: Any) -> None:
    expected = reference(data, cls)
    before = copy.deepcopy(data)
    got = from_dict(data, cls)
    assert got == expected
    assert got.SerializeToString(deterministic=True) == expected.SerializeToString(deterministic=True)
    assert data == before or data != data  # not mutated (NaN compares unequal to itself)


MERGE_STARTS: dict[type[Message], dict[str, Any]] = {
    Event: {"session_id": "old", "tool_input": {"old": 1}, "exit_code": 1, "content": [1], "tool_output": 1},
    Kitchen: {"ints": [9], "node": {"v": 9, "child": {"v": 8}}, "str_int": {"old": 1}, "pick_int": 4},
}


@pytest.mark.parametrize(("cls", "data"), [c for c in VALID if c[0] in MERGE_STARTS], ids=_id)
def test_merge_into_an_existing_message_matches_parsedict(cls: type[Message], data: Any) -> None:
    start = MERGE_STARTS[cls]
    expected = reference(data, cls, reference(start, cls))
    got = from_dict(start, cls)
    merge_dict(data, got)
    assert got == expected


# (message, input, text the error must contain: the field path)
INVALID: list[tuple[type[Message], Any, str]] = [
    # not an object at the top
    (Event, None, "Event: expected a JSON object"),
    (Event, 5, "Event: expected a JSON object"),
    (Event, ["session_id"], "Event: expected a JSON object"),
    # integers
    (Event, {"exit_code": "abc"}, "exit_code: expected an integer, got 'abc'"),
    (Event, {"exitCode": "abc"}, "exitCode: expected an integer"),
    (Event, {"exit_code": 1.5}, "exit_code: expected an integer"),
    (Event, {"exit_code": "1.5"}, "exit_code: expected an integer"),
    (Event, {"exit_code": True}, "exit_code: expected an integer"),
    (Event, {"exit_code": "1 2"}, "exit_code: expected an integer"),
    (Event, {"exit_code": [1]}, "exit_code: expected an integer"),
    (Event, {"exit_code": {}}, "exit_code: expected an integer"),
    (Event, {"exit_code": float("nan")}, "exit_code: expected an integer"),
    (Event, {"exit_code": "Infinity"}, "exit_code: expected an integer"),
    (Event, {"exit_code": 2**31}, "exit_code: 2147483648 is out of range for int32"),
    (Event, {"exit_code": "-2147483649"}, "exit_code: -2147483649 is out of range"),
    (Event, {"exit_code": 1e10}, "exit_code: 10000000000 is out of range"),
    (Kitchen, {"u32": -1}, "u32: -1 is out of range for uint32"),
    (Kitchen, {"u64": 2**64}, "u64: 18446744073709551616 is out of range for uint64"),
    (Kitchen, {"i64": "9223372036854775808"}, "i64: 9223372036854775808 is out of range for int64"),
    (Kitchen, {"f32": 2**32}, "f32:"),
    (log_pb2.LogEntry, {"seq": "x"}, "seq: expected an integer"),
    (log_pb2.WatchLogRequest, {"afterSeq": None, "after_seq": 1.25}, "after_seq: expected an integer"),
    # strings and bools
    (Event, {"event_type": 5}, "event_type: expected a string, got 5"),
    (Event, {"event_type": ["x"]}, "event_type: expected a string"),
    (Event, {"event_type": b"x"}, "event_type: expected a string"),
    (Event, {"tool_name": True}, "tool_name: expected a string"),
    (Event, {"event_type": "a\ud800"}, "event_type:"),
    (log_pb2.WatchLogRequest, {"stop_at_end": "true"}, "stop_at_end: expected true or false"),
    (log_pb2.WatchLogRequest, {"stop_at_end": 1}, "stop_at_end: expected true or false"),
    # floats
    (Kitchen, {"dbl": float("nan")}, 'dbl: NaN must be given as the string "NaN"'),
    (Kitchen, {"dbl": float("inf")}, "dbl: infinities"),
    (Kitchen, {"dbl": "nan"}, 'dbl: expected "NaN"'),
    (Kitchen, {"dbl": "one"}, "dbl: expected a number, got 'one'"),
    (Kitchen, {"dbl": [1.0]}, "dbl: expected a number"),
    (Kitchen, {"dbl": 10**400}, "dbl: expected a number"),
    (Kitchen, {"flt": 1e39}, "flt: 1e+39 is out of range for float"),
    (Kitchen, {"dbls": [1, None]}, "dbls[1]: null is not allowed"),
    (Kitchen, {"dbls": [1, "x"]}, "dbls[1]: expected a number"),
    # bytes
    (Kitchen, {"blob": "a"}, "blob: invalid base64"),
    (Kitchen, {"blob": "a=b"}, "blob: invalid base64"),
    (Kitchen, {"blob": 5}, "blob: expected a base64 string"),
    (Kitchen, {"blobs": ["YQ", 1]}, "blobs[1]: expected a base64 string"),
    # enums
    (Kitchen, {"color": None, "colors": [None]}, "colors[0]: null is not allowed"),
    (Kitchen, {"color": [1]}, "color: expected an enum name or number"),
    (Kitchen, {"color": 2**64 + 1}, "color: 18446744073709551617 is out of range"),
    (Kitchen, {"sf64": " 12"}, "sf64: expected an integer"),
    (Legacy, {"shade": 7}, "shade: 7 is not a value of protojson_test.Shade"),
    (Legacy, {"shades": [1, 9]}, "shades[1]: 9 is not a value"),
    # Struct, Value, ListValue
    (Event, {"tool_input": "abc"}, "tool_input: expected a JSON object"),
    (Event, {"toolInput": [1]}, "toolInput: expected a JSON object"),
    (Event, {"tool_input": 5}, "tool_input: expected a JSON object"),
    (Event, {"tool_input": {"a": {"b": {1, 2}}}}, "tool_input.a.b: expected a JSON value, got set"),
    (Event, {"tool_input": {"a": "\ud800"}}, "tool_input.a:"),
    (Event, {"tool_input": {"a": 10**400}}, "tool_input.a:"),
    (Event, {"tool_output": [1, [2, object()]]}, "tool_output[1][1]: expected a JSON value"),
    (Event, {"content": {"a": 1}}, "content: expected a JSON array"),
    (Event, {"content": "x"}, "content: expected a JSON array"),
    (Event, {"content": [{"a": [b"x"]}]}, "content[0].a[0]: expected a JSON value, got bytes"),
    (Event, {"tool_input": nested(50)}, "message too deep"),
    (Event, {"content": nested_list(60)}, "too deep"),
    # oneofs, and the same proto3 `optional` field given twice
    (Event, {"exit_code": 1, "exitCode": 2}, "exitCode: the field is given twice (also as 'exit_code')"),
    (
        log_pb2.WatchLogResponse,
        {"entry": {}, "heartbeat": {}},
        "heartbeat: oneof 'kind' is already set by 'entry'",
    ),
    (Kitchen, {"pick_text": "a", "pickInt": 1}, "pickInt: oneof 'choice' is already set by 'pick_text'"),
    (Kitchen, {"pick_node": {}, "pick_int": 0}, "pick_int: oneof 'choice'"),
    # keys
    (Event, {1: "x"}, "1: object keys must be strings"),
    (Event, {"[ext]": 1}, "[ext]: agentplane.v1.Event has no extensions"),
    (Kitchen, {"str_int": {1: 1}}, "str_int[1]: expected a string"),
    (Kitchen, {"int_str": {"x": "y"}}, "int_str['x']: expected an integer"),
    (Kitchen, {"int_str": {"9223372036854775808": "y"}}, "int_str['9223372036854775808']: "),
    (Kitchen, {"uint_bytes": {"-1": "YQ"}}, "uint_bytes['-1']: -1 is out of range for uint32"),
    (Kitchen, {"bool_node": {"yes": {}}}, """bool_node['yes']: expected "true" or "false", got 'yes'"""),
    (Kitchen, {"bool_node": {True: {}}}, "bool_node[True]: expected"),
    # maps: values and shape
    (Kitchen, {"str_int": {"a": "b"}}, "str_int['a']: expected an integer"),
    (Kitchen, {"str_int": {"a": None}}, "str_int['a']: expected an integer"),
    (Kitchen, {"str_int": [["a", 1]]}, "str_int: expected a JSON object"),
    (Kitchen, {"bool_node": {"true": {"v": "x"}}}, "bool_node['true'].v: expected an integer"),
    (Kitchen, {"bool_node": {"true": None}}, "bool_node['true']: expected a JSON object"),
    (Kitchen, {"str_ts": {"a": "yesterday"}}, "str_ts['a']: "),
    (Kitchen, {"str_ts": {"a": None}}, "str_ts['a']: expected a string"),
    (Kitchen, {"str_color": {"a": None}}, "str_color['a']: expected an enum"),
    # repeated: shape and nulls
    (Kitchen, {"ints": 1}, "ints: expected a JSON array"),
    (Kitchen, {"ints": {"a": 1}}, "ints: expected a JSON array"),
    (Kitchen, {"ints": [1, None]}, "ints[1]: null is not allowed"),
    (Kitchen, {"texts": ["a", 2]}, "texts[1]: expected a string"),
    (Kitchen, {"nodes": [{}, None]}, "nodes[1]: null is not allowed"),
    (Kitchen, {"nodes": [{}, {"child": {"v": "x"}}]}, "nodes[1].child.v: expected an integer"),
    (Kitchen, {"w_i64s": [None]}, "w_i64s[0]: null is not allowed"),
    (Kitchen, {"timestamps": ["2026-01-01T00:00:00Z", 5]}, "timestamps[1]: expected a string"),
    (Kitchen, {"values": None}, "values: null is not allowed"),
    # nested messages
    (Kitchen, {"node": 5}, "node: expected a JSON object, got 5"),
    (
        Kitchen,
        {"node": {"child": {"children": [{"v": []}]}}},
        "node.child.children[0].v: expected an integer",
    ),
    (
        Event,
        {"tool_input": {"a": [{"b": {}}, {"c": {1: 2}}]}},
        "tool_input.a[1].c.1: object keys must be strings",
    ),
    (
        runtime_pb2.AddSessionEventRequest,
        {"event": {"exit_code": "x"}},
        "event.exit_code: expected an integer",
    ),
    # well-known types
    (log_pb2.LogEntry, {"recorded_at": "yesterday"}, "recorded_at: "),
    (log_pb2.LogEntry, {"recordedAt": 1700000000}, "recordedAt: expected a string"),
    (log_pb2.LogEntry, {"data": [1]}, "data: expected a JSON object"),
    (log_pb2.WatchLogResponse, {"heartbeat": {"time": "2026-13-01T00:00:00Z"}}, "heartbeat.time: "),
    (Kitchen, {"dur": "1.5"}, "dur: "),
    (Kitchen, {"dur": 1.5}, "dur: expected a string"),
    (Kitchen, {"mask": ["a"]}, "mask: expected a string"),
    (Kitchen, {"lst": {"a": 1}}, "lst: expected a JSON array"),
    (Kitchen, {"w_i32": "x"}, "w_i32: expected an integer"),
    (Kitchen, {"w_bool": "true"}, "w_bool: expected true or false"),
    (Kitchen, {"w_str": 1}, "w_str: expected a string"),
    (Kitchen, {"w_u32": -1}, "w_u32: -1 is out of range"),
    (Kitchen, {"null": "NOT_NULL", "val": {1: 1}}, "val.1:"),
    (Kitchen, {"anything": {"value": "1s"}}, "anything: "),
    (Kitchen, {"anything": {"@type": "type.googleapis.com/no.such.Type"}}, "anything: "),
    (
        Kitchen,
        {"anything": {"@type": "type.googleapis.com/google.protobuf.Duration", "value": 5}},
        "anything: ",
    ),
    (Kitchen, {"anything": 5}, "anything: "),
    (struct_pb2.Struct, [1], "Struct: expected a JSON object"),
    (struct_pb2.ListValue, {"a": 1}, "ListValue: expected a JSON array"),
    (timestamp_pb2.Timestamp, 5, "Timestamp: expected a string"),
    (wrappers_pb2.Int32Value, "x", "Int32Value: expected an integer"),
    (Extendable, {"name": 5}, "Extendable: "),
]


def _parsedict_refuses(data: Any, cls: type[Message]) -> bool:
    try:
        reference(data, cls)
    except Exception:  # json_format leaks TypeError, AttributeError, OverflowError, ...
        return True
    return False


@pytest.mark.parametrize(("cls", "data", "text"), INVALID, ids=_id)
def test_invalid_input_is_refused_with_the_field_path(cls: type[Message], data: Any, text: str) -> None:
    assert _parsedict_refuses(data, cls)
    with pytest.raises(ParseError) as err:
        from_dict(data, cls)
    assert text in str(err.value)


# ParseDict iterates whatever it is given as a message, so it takes strings
# and lists of unknown names, and empty lists; we refuse them.
@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Event, []),
        (Event, "xyz"),
        (Event, "event_type"),
        (Event, ["unknown"]),
        (Kitchen, {"node": "abc"}),
        (runtime_pb2.AddSessionEventRequest, {"event": "text"}),
        (Extendable, []),
    ],
    ids=_id,
)
def test_a_message_must_be_an_object_where_parsedict_is_lax(cls: type[Message], data: Any) -> None:
    reference(data, cls)  # accepted there
    with pytest.raises(ParseError, match="expected a JSON object"):
        from_dict(data, cls)


# ParseDict looks enum numbers up modulo 2**32 (upb's values_by_number), so
# 2**32 + 1 reads as 1 and 2**40 as 0; we refuse numbers outside int32.
@pytest.mark.parametrize(
    ("cls", "data"),
    [
        (Kitchen, {"color": 2**32 + 1}),
        (Kitchen, {"colors": [2**40]}),
        (Kitchen, {"str_color": {"a": -(2**32) + 2}}),
        (Legacy, {"shade": 2**32 + 2}),
    ],
    ids=_id,
)
def test_enum_numbers_outside_int32_are_refused_where_parsedict_wraps_them(
    cls: type[Message], data: Any
) -> None:
    assert reference(data, cls) != cls()  # accepted there, as some other value
    with pytest.raises(ParseError, match="out of range for an enum"):
        from_dict(data, cls)


def chain(depth: int) -> dict[str, Any]:
    """A Node `depth` children deep."""
    node: dict[str, Any] = {"v": 1}
    for _ in range(depth):
        node = {"child": node}
    return node


@pytest.mark.parametrize("depth", range(44, 54))
def test_the_depth_limit_is_parsedicts(depth: int) -> None:
    cases: list[tuple[type[Message], Any]] = [
        (Event, {"tool_input": nested(depth)}),
        (Event, {"tool_output": nested(depth)}),
        (Event, {"content": nested_list(depth * 2)}),
        (Kitchen, {"node": chain(depth * 2)}),
        (Kitchen, {"nodes": [{"children": [chain(depth * 2 - 2)]}]}),
        (
            Kitchen,
            {"anything": {"@type": "type.googleapis.com/google.protobuf.Struct", "value": nested(depth)}},
        ),
    ]
    for cls, data in cases:
        if _parsedict_refuses(data, cls):
            with pytest.raises(ParseError, match="too deep"):
                from_dict(data, cls)
        else:
            assert from_dict(data, cls) == reference(data, cls)


def test_parse_error_is_a_value_error() -> None:
    assert issubclass(ParseError, ValueError)
    with pytest.raises(ValueError, match="exit_code"):
        from_dict({"exit_code": "abc"}, Event)


def test_decoders_are_compiled_once_per_type() -> None:
    md = Kitchen.DESCRIPTOR
    assert decode._decoder(md) is decode._decoder(md)
    assert decode._decoder(Node.DESCRIPTOR) is decode._decoder(Node.DESCRIPTOR)
    assert not decode._building


def test_merge_dict_into_a_sub_message() -> None:
    req = runtime_pb2.AddSessionEventRequest(session_id="s")
    merge_dict({"event_type": "message", "role": "user", "content": [{"type": "text"}]}, req.event)
    assert req.HasField("event") and req.event.role == "user"
    assert req.event.content.values[0].struct_value["type"] == "text"


_POOL: list[Any] = [
    None, True, False, 0, 1, -1, 1.5, 2.0, 2**31, 2**63, -(2**63) - 1, 2**64, 10**30, 1e39, 3.4e38,
    float("nan"), float("inf"), "0", "1", "-1", "1.5", "1e3", " 1", "\t1", "abc", "", "NaN", "nan",
    "Infinity", "-Infinity", "inf", "RED", "PURPLE", "true", "false", "YWJj", "a", "-_8",
    "2026-01-01T00:00:00Z", "1s", "a,b", [], [1], [None], ["RED", 2], [{}], [[1]], {}, {"a": 1},
    {"v": 1}, {"true": {"v": 1}}, {"1": "x"}, {"a": None}, {"a": "RED"}, {"v": "2", "child": {"v": None}},
    {"@type": "type.googleapis.com/google.protobuf.Duration", "value": "1s"},
]  # fmt: skip


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    r = rng.random()
    if r < 0.75 or depth > 2:
        return copy.deepcopy(rng.choice(_POOL))
    if r < 0.87:
        return [_random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    keys = ["a", "v", "child", "1", "true"]
    return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}


@pytest.mark.parametrize("cls", [Kitchen, Event, Legacy, log_pb2.LogEntry, log_pb2.WatchLogResponse, Node])
def test_random_inputs_agree_with_parsedict(cls: type[Message]) -> None:
    """Both accept with the same bytes, or both refuse (but for the documented laxities)."""
    rng = random.Random(cls.DESCRIPTOR.full_name)
    keys = [n for fd in cls.DESCRIPTOR.fields for n in (fd.name, fd.json_name)] + ["unknown"]
    for _ in range(600):
        data = {rng.choice(keys): _random_value(rng) for _ in range(rng.randint(1, 3))}
        ours: Message | ParseError
        try:
            ours = from_dict(copy.deepcopy(data), cls)
        except ParseError as exc:
            ours = exc
        if _parsedict_refuses(data, cls):
            assert isinstance(ours, ParseError), data
        elif isinstance(ours, ParseError):
            assert "expected a JSON object" in str(ours) or "out of range for an enum" in str(ours), data
        else:
            expected = reference(data, cls).SerializeToString(deterministic=True)
            assert ours.SerializeToString(deterministic=True) == expected, data


# Free-form JSON kept as parsed (protojson.keeping_free_form): what the
# gateway does for requests it serves in this process. Whatever a servicer
# reads must be what a full decode gives, and what a full decode refuses
# must be refused with the same words.


_FREE_FORM_READERS = {
    "google.protobuf.Struct": protojson.struct_to_python,
    "google.protobuf.Value": protojson.value_to_python,
    "google.protobuf.ListValue": protojson.list_to_python,
}


def _read(msg: Any) -> Any:
    """Everything set in `msg`, free-form fields through protojson's readers
    (as servicers read them); recursive types welcome."""
    md = msg.DESCRIPTOR
    reader = _FREE_FORM_READERS.get(md.full_name)
    if reader is not None:
        return reader(msg)
    out: dict[str, Any] = {}
    for fd in md.fields:
        value = getattr(msg, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            sub = fd.message_type.fields_by_name["value"].message_type
            out[fd.name] = {k: _read(v) if sub else v for k, v in value.items()}
        elif fd.is_repeated:
            out[fd.name] = [_read(v) if fd.message_type else v for v in value]
        elif fd.message_type is not None:
            out[fd.name] = _read(value) if msg.HasField(fd.name) else None
        else:
            out[fd.name] = value
    return out


def _full(data: Any, cls: type[Message]) -> Any:
    return _read(from_dict(data, cls))


def _kept(data: Any, cls: type[Message]) -> Any:
    with protojson.keeping_free_form():
        return _read(from_dict(data, cls, keep_free_form=True))


def _numbers_as_doubles(value: Any) -> Any:
    """A Struct holds numbers as doubles; kept JSON holds what was sent (an
    integer beyond 2**53 stays exact). Compare them as doubles (and arrays
    given as tuples, which the decoder also takes, as lists)."""
    if isinstance(value, dict):
        return {k: _numbers_as_doubles(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers_as_doubles(v) for v in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "nan" if value != value else float(value)
    return value


@pytest.mark.parametrize(("cls", "data"), VALID, ids=_id)
def test_kept_free_form_reads_as_the_decoded_message(cls: type[Message], data: Any) -> None:
    full = _full(copy.deepcopy(data), cls)
    assert _numbers_as_doubles(_kept(copy.deepcopy(data), cls)) == _numbers_as_doubles(full)


@pytest.mark.parametrize(("cls", "data", "text"), INVALID, ids=_id)
def test_kept_free_form_refuses_what_decoding_refuses(cls: type[Message], data: Any, text: str) -> None:
    with pytest.raises(ParseError) as full:
        from_dict(data, cls)
    with pytest.raises(ParseError) as kept:
        _kept(data, cls)
    assert str(kept.value) == str(full.value)


@pytest.mark.parametrize("depth", range(44, 54))
def test_kept_free_form_has_the_same_depth_limit(depth: int) -> None:
    for data in ({"tool_input": nested(depth)}, {"content": nested_list(depth * 2)}):
        try:
            full: Any = _full(data, Event)
        except ParseError as exc:
            full = str(exc)
        try:
            kept: Any = _kept(data, Event)
        except ParseError as exc:
            kept = str(exc)
        assert kept == full


def test_kept_free_form_is_the_parsed_json_and_builds_no_struct() -> None:
    payload = {"tool": "Read", "args": {"path": "/a", "n": [1, 2]}}
    data = {"event": {"event_type": "post_tool", "tool_input": payload}}
    with protojson.keeping_free_form():
        req = from_dict(data, runtime_pb2.AddSessionEventRequest, keep_free_form=True)
        assert req.event.HasField("tool_input")
        assert protojson.struct_to_python(req.event.tool_input) is payload
        assert len(req.event.tool_input.fields) == 0  # nothing was built
    # Outside the context the same call decodes in full.
    req = from_dict(data, runtime_pb2.AddSessionEventRequest, keep_free_form=True)
    assert protojson.struct_to_python(req.event.tool_input) == payload
    assert len(req.event.tool_input.fields) == 2


def test_messages_built_while_keeping_are_decoded_in_full() -> None:
    """Only requests are kept: a servicer may copy the messages it builds."""
    with protojson.keeping_free_form():
        built = from_dict({"tool_input": {"a": 1}}, Event)
        copied = Event()
        copied.CopyFrom(built)
    assert protojson.struct_to_python(copied.tool_input) == {"a": 1}


@pytest.mark.parametrize("cls", [Kitchen, Event, Legacy, log_pb2.LogEntry, Node])
def test_random_inputs_read_the_same_kept_or_decoded(cls: type[Message]) -> None:
    rng = random.Random("kept " + cls.DESCRIPTOR.full_name)
    keys = [n for fd in cls.DESCRIPTOR.fields for n in (fd.name, fd.json_name)] + ["unknown"]
    for _ in range(600):
        data = {rng.choice(keys): _random_value(rng) for _ in range(rng.randint(1, 3))}
        try:
            full: Any = _numbers_as_doubles(_full(copy.deepcopy(data), cls))
        except ParseError as exc:
            full = str(exc)
        try:
            kept: Any = _numbers_as_doubles(_kept(copy.deepcopy(data), cls))
        except ParseError as exc:
            kept = str(exc)
        assert kept == full, data
