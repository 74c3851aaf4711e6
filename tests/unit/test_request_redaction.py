"""The request walk of service.rpc.redaction on shapes the contract does not
use yet (maps, recursive messages, repeated JSON values), so that a later
feature that adds them is redacted too, and ids are left as sent."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory, struct_pb2
from google.protobuf.descriptor import Descriptor

from service.rpc.redaction import _message_walk, _redact

F = descriptor_pb2.FieldDescriptorProto
SECRET = "password=hunter22 and AKIAIOSFODNN7EXAMPLE"
CLEAN = "password=[REDACTED] and [REDACTED]"


def _descriptor() -> Descriptor:
    """message Node { string text; string node_id; repeated string tags; map<string,string> labels;
    map<string,Node> children; repeated google.protobuf.Value values; Node next; }"""
    file = descriptor_pb2.FileDescriptorProto(
        name="redaction_walk_test.proto", package="walktest", syntax="proto3"
    )
    file.dependency.append("google/protobuf/struct.proto")
    node = file.message_type.add(name="Node")
    for name, number, kind, label, type_name in (
        ("text", 1, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
        ("node_id", 2, F.TYPE_STRING, F.LABEL_OPTIONAL, ""),
        ("tags", 3, F.TYPE_STRING, F.LABEL_REPEATED, ""),
        ("labels", 4, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".walktest.Node.LabelsEntry"),
        ("children", 5, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".walktest.Node.ChildrenEntry"),
        ("values", 6, F.TYPE_MESSAGE, F.LABEL_REPEATED, ".google.protobuf.Value"),
        ("next", 7, F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".walktest.Node"),
    ):
        field = node.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name
    for entry, value_type, value_name in (
        ("LabelsEntry", F.TYPE_STRING, ""),
        ("ChildrenEntry", F.TYPE_MESSAGE, ".walktest.Node"),
    ):
        nested = node.nested_type.add(name=entry)
        nested.options.map_entry = True
        nested.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        value = nested.field.add(name="value", number=2, type=value_type, label=F.LABEL_OPTIONAL)
        if value_name:
            value.type_name = value_name
    pool = descriptor_pool.DescriptorPool()
    struct = descriptor_pb2.FileDescriptorProto()
    struct_pb2.DESCRIPTOR.CopyToProto(struct)
    pool.Add(struct)
    pool.Add(file)
    return pool.FindMessageTypeByName("walktest.Node")


def test_every_shape_of_free_text_is_redacted_and_ids_kept() -> None:
    cls = message_factory.GetMessageClass(_descriptor())
    data = {
        "text": SECRET,
        "node_id": SECRET,
        "tags": ["plain", SECRET],
        "labels": {"env": SECRET, "api_token": "plainvalue77"},
        "children": {"a": {"text": SECRET, "next": {"text": SECRET}}},
        "values": [SECRET, {"password": "x1"}],
        "next": {"next": {"text": SECRET, "node_id": "n-1"}},
    }
    msg = json_format.ParseDict(data, cls())
    _redact(msg, _message_walk(msg.DESCRIPTOR))
    assert json_format.MessageToDict(msg, preserving_proto_field_name=True) == {
        "text": CLEAN,
        "node_id": SECRET,  # an id: as sent
        "tags": ["plain", CLEAN],
        "labels": {"env": CLEAN, "api_token": "[REDACTED]"},
        "children": {"a": {"text": CLEAN, "next": {"text": CLEAN}}},
        "values": [CLEAN, {"password": "[REDACTED]"}],
        "next": {"next": {"text": CLEAN, "node_id": "n-1"}},
    }
