"""The compiled JSON encoder: every kind of field, fields named like Python
keywords, and Timestamps written exactly as `Timestamp.ToJsonString` does."""

from __future__ import annotations

import random
from typing import Any

import pytest
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, timestamp_pb2
from google.protobuf.message import Message

from service.codec import encoder, timestamp_json

F = descriptor_pb2.FieldDescriptorProto


def _messages() -> type[Message]:
    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(timestamp_pb2.DESCRIPTOR.serialized_pb))
    fp = descriptor_pb2.FileDescriptorProto(
        name="tests/unit/protojson_encode.proto",
        package="protojson_encode_test",
        syntax="proto3",
        dependency=["google/protobuf/timestamp.proto"],
    )
    color = fp.enum_type.add(name="Color")
    for name, number in (("COLOR_UNSPECIFIED", 0), ("RED", 1)):
        color.value.add(name=name, number=number)
    leaf = fp.message_type.add(name="Leaf")
    leaf.field.add(name="v", number=1, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    msg = fp.message_type.add(name="Every")
    entry = msg.nested_type.add(name="TagsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    msg.oneof_decl.add(name="choice")
    msg.oneof_decl.add(name="_note")
    opt, rep = F.LABEL_OPTIONAL, F.LABEL_REPEATED
    fields = [
        ("from", F.TYPE_STRING, opt, ""),  # a Python keyword
        ("class", F.TYPE_INT64, opt, ""),
        ("color", F.TYPE_ENUM, opt, ".protojson_encode_test.Color"),
        ("raw", F.TYPE_BYTES, opt, ""),
        ("at", F.TYPE_MESSAGE, opt, ".google.protobuf.Timestamp"),
        ("leaf", F.TYPE_MESSAGE, opt, ".protojson_encode_test.Leaf"),
        ("leaves", F.TYPE_MESSAGE, rep, ".protojson_encode_test.Leaf"),
        ("names", F.TYPE_STRING, rep, ""),
        ("tags", F.TYPE_MESSAGE, rep, ".protojson_encode_test.Every.TagsEntry"),
        ("text", F.TYPE_STRING, opt, ""),
        ("number", F.TYPE_INT32, opt, ""),
        ("note", F.TYPE_STRING, opt, ""),
    ]
    for number, (name, ftype, label, type_name) in enumerate(fields, start=1):
        fd = msg.field.add(name=name, number=number, type=ftype, label=label)
        if type_name:
            fd.type_name = type_name
        if name in ("text", "number"):
            fd.oneof_index = 0
        if name == "note":
            fd.oneof_index = 1
            fd.proto3_optional = True
    pool.Add(fp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("protojson_encode_test.Every"))


Every: Any = _messages()


def test_every_kind_of_field_is_written() -> None:
    msg = Every(color=1, raw=b"\x00\x01", names=["a", "b"], text="chosen", note="n")
    setattr(msg, "from", "here")  # `from` and `class` are keywords
    setattr(msg, "class", 2**40)
    msg.at.FromMicroseconds(1_763_932_769_123_000)
    msg.leaf.v = 7
    msg.leaves.add(v=1)
    msg.tags["x"] = 3
    assert encoder(Every.DESCRIPTOR, True)(msg) == {
        "from": "here",
        "class": 2**40,
        "color": "RED",
        "raw": "AAE=",
        "at": "2025-11-23T21:19:29.123Z",
        "leaf": {"v": 7},
        "leaves": [{"v": 1}],
        "names": ["a", "b"],
        "tags": {"x": 3},
        "text": "chosen",
        "note": "n",
    }


def test_unset_fields_are_null_or_left_out() -> None:
    empty = Every()
    written = encoder(Every.DESCRIPTOR, True)(empty)
    assert written == {
        "from": "",
        "class": 0,
        "color": "COLOR_UNSPECIFIED",
        "raw": "",
        "at": None,
        "leaf": None,
        "leaves": [],
        "names": [],
        "tags": {},
        "note": None,
    }
    omitted = encoder(Every.DESCRIPTOR, True, True)(empty)
    assert "at" not in omitted and "leaf" not in omitted and "note" not in omitted
    assert "text" not in omitted and "number" not in omitted  # an unset oneof
    assert list(encoder(Every.DESCRIPTOR, False)(Every(number=0))) == [
        "from",
        "class",
        "color",
        "raw",
        "at",
        "leaf",
        "leaves",
        "names",
        "tags",
        "number",
        "note",
    ]


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (0, 0),
        (1, 1),
        (59, 999_999_999),
        (1_763_932_769, 0),
        (1_763_932_769, 123_000_000),
        (1_763_932_769, 123_456_000),
        (1_763_932_769, 123_456_789),
        (951_782_400, 500),  # 2000-02-29
        (253_402_300_799, 999_999_999),  # the last representable instant
        (-1, 0),  # before 1970: the library's path
        (-62_135_596_800, 0),
    ],
)
def test_timestamps_are_written_as_the_library_writes_them(seconds: int, nanos: int) -> None:
    ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    assert timestamp_json(ts) == ts.ToJsonString()


def test_random_timestamps_agree_with_the_library() -> None:
    rng = random.Random(7)
    for _ in range(5000):
        nanos = rng.choice(
            [0, rng.randrange(1000) * 1_000_000, rng.randrange(10**6) * 1000, rng.randrange(10**9)]
        )
        ts = timestamp_pb2.Timestamp(seconds=rng.randrange(0, 253_402_300_800), nanos=nanos)
        assert timestamp_json(ts) == ts.ToJsonString()


@pytest.mark.parametrize(("seconds", "nanos"), [(253_402_300_800, 0), (0, -1), (0, 1_000_000_000)])
def test_invalid_timestamps_are_refused_as_the_library_refuses_them(seconds: int, nanos: int) -> None:
    ts = timestamp_pb2.Timestamp(seconds=seconds, nanos=nanos)
    with pytest.raises(ValueError, match="Timestamp is not valid"):
        timestamp_json(ts)
