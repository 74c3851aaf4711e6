"""The OpenAPI document, derived from the same descriptors as the routes.

Schemas follow the JSON the gateway writes (proto or JSON names per family,
unset messages and `optional` fields as null, 64-bit integers as numbers);
descriptions are the proto comments, read from the descriptor set that
`make gen` writes beside the stubs. The families that leave unset fields out
instead of writing null (`Family.omit_unset`) have their responses described
so: such a field is optional and never null. Requests keep null, which the
decoder takes as absent. Those response schemas are components of their own
(suffix `.out`), since a message may be read in one form and written in the other.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from agentplane.v1 import options_pb2
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2
from google.protobuf.descriptor import FieldDescriptor

from gateway.families import STATUS_SCHEMA, Family
from gateway.httprule import Binding, leaf_field, query_fields
from gateway.input_checks import needs_body
from service.codec import field_key
from service.domain.idempotency import MAX_KEY_LENGTH
from service.rpc.idempotency import is_write
from service.rpc.limits import max_bytes, max_items

_SCALARS: dict[int, dict[str, Any]] = {
    FieldDescriptor.TYPE_STRING: {"type": "string"},
    FieldDescriptor.TYPE_BOOL: {"type": "boolean"},
    FieldDescriptor.TYPE_BYTES: {"type": "string", "format": "byte"},
    FieldDescriptor.TYPE_DOUBLE: {"type": "number"},
    FieldDescriptor.TYPE_FLOAT: {"type": "number"},
    FieldDescriptor.TYPE_INT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_UINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SINT64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_FIXED64: {"type": "integer", "format": "int64"},
    FieldDescriptor.TYPE_SFIXED64: {"type": "integer", "format": "int64"},
}
_WKT: dict[str, dict[str, Any]] = {
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {"description": "any JSON value"},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]+)?s$"},
}


def field_limits(fd: Any) -> dict[str, Any]:
    """A bounded string's limit (`agentplane.v1.max_bytes`): `maxLength` counts
    characters, the server UTF-8 bytes, so both are stated."""
    limit = max_bytes(fd)
    return {"maxLength": limit, "x-max-bytes": limit} if limit else {}


def batch_limit(fd: Any) -> dict[str, Any]:
    """A repeated field's most elements (`agentplane.v1.max_items`)."""
    limit = max_items(fd)
    return {"maxItems": limit} if limit else {}


def _message_paths(msgs: Any, path: tuple[int, ...], scope: str, names: dict[tuple[int, ...], str]) -> None:
    """Source-info paths of messages and fields (4 = message_type, 2 = field, 3 = nested_type)."""
    for i, m in enumerate(msgs):
        name = f"{scope}.{m.name}"
        names[(*path, i)] = name
        for j, fd in enumerate(m.field):
            names[(*path, i, 2, j)] = f"{name}.{fd.name}"
        _message_paths(m.nested_type, (*path, i, 3), name, names)


@cache
def comments() -> dict[str, str]:
    """Full proto name -> its leading comment."""
    data = resources.files("agentplane.v1").joinpath("descriptors.binpb").read_bytes()
    fds = descriptor_pb2.FileDescriptorSet.FromString(data)
    out: dict[str, str] = {}
    for f in fds.file:
        names: dict[tuple[int, ...], str] = {}
        _message_paths(f.message_type, (4,), f.package, names)
        for i, s in enumerate(f.service):
            names[(6, i)] = f"{f.package}.{s.name}"
            for j, m in enumerate(s.method):
                names[(6, i, 2, j)] = f"{f.package}.{s.name}.{m.name}"
        for loc in f.source_code_info.location:
            name = names.get(tuple(loc.path))
            if name and loc.leading_comments.strip():
                out[name] = " ".join(line.strip() for line in loc.leading_comments.strip().splitlines())
    return out


class SchemaBuilder:
    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def message(self, md: Any, proto_names: bool, omit_unset: bool = False) -> dict[str, Any]:
        """A message's schema; `omit_unset`: as written by a family that omits unset fields."""
        if md.full_name in _WKT:
            return dict(_WKT[md.full_name])
        name = md.full_name if proto_names else f"{md.full_name}.json"
        if omit_unset:
            name += ".out"
        if name not in self.components:
            self.components[name] = {}  # placeholder for recursive types
            props: dict[str, Any] = {}
            required: list[str] = []
            for fd in md.fields:
                key = field_key(fd, proto_names)
                schema = self.field(fd, proto_names, omit_unset)
                doc = comments().get(f"{md.full_name}.{fd.name}")
                if doc:
                    schema = {**schema, "description": doc}
                props[key] = schema
                if (
                    field_behavior_pb2.REQUIRED
                    in fd.GetOptions().Extensions[field_behavior_pb2.field_behavior]
                ):
                    required.append(key)
            schema_obj: dict[str, Any] = {"type": "object", "properties": props}
            if required:
                schema_obj["required"] = required
            if md.full_name in comments():
                schema_obj["description"] = comments()[md.full_name]
            self.components[name] = schema_obj
        return {"$ref": f"#/components/schemas/{name}"}

    def _single(self, fd: Any, proto_names: bool, omit_unset: bool) -> dict[str, Any]:
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            return self.message(fd.message_type, proto_names, omit_unset)
        if fd.type == FieldDescriptor.TYPE_ENUM:
            return {"type": "string", "enum": [v.name for v in fd.enum_type.values]}
        return dict(_SCALARS.get(fd.type, {"type": "integer"}))

    def field(self, fd: Any, proto_names: bool, omit_unset: bool = False) -> dict[str, Any]:
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            value = self._single(fd.message_type.fields_by_name["value"], proto_names, omit_unset)
            return {"type": "object", "additionalProperties": value}
        single = {**self._single(fd, proto_names, omit_unset), **field_limits(fd)}
        if fd.is_repeated:
            return {"type": "array", "items": single, **batch_limit(fd)}
        if (fd.has_presence and fd.message_type is None) or fd.type == FieldDescriptor.TYPE_MESSAGE:
            # Unset: null, or left out (not in `required`) by the families that omit it.
            return single if omit_unset else {"anyOf": [single, {"type": "null"}]}
        return single


def _param_schema(fd: Any) -> dict[str, Any]:
    if fd.type == FieldDescriptor.TYPE_ENUM:
        return {"type": "string", "enum": [v.name for v in fd.enum_type.values]}
    return {**_SCALARS.get(fd.type, {"type": "integer"}), **field_limits(fd)}


# On every write (service.rpc.idempotency decides which RPCs are writes).
IDEMPOTENCY_KEY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH},
    "description": "Sent again with the same request within the window (24 h by default), the "
    "write returns its first answer and writes nothing; the same key with another request is a "
    "409. Per workspace and operation.",
}


def _protobuf(family: Family, md: Any) -> dict[str, Any]:
    """The binary protobuf body of a family that reads and writes one (OTLP)."""
    if not family.binary_protobuf:
        return {}
    schema = {"type": "string", "format": "binary", "description": f"{md.full_name}, binary protobuf"}
    return {"application/x-protobuf": {"schema": schema}}


def document(
    routes: list[tuple[Binding, Family]],
    *,
    title: str,
    version: str,
    description: str,
    limits: dict[str, int] | None = None,
) -> dict[str, Any]:
    """The document; `limits`: the server's own (body size...), stated in
    `info.x-agentplane-limits` beside those of the protos (field_limits)."""
    sb = SchemaBuilder()
    paths: dict[str, Any] = {}
    for b, family in routes:
        md = b.input.DESCRIPTOR
        params = [
            {
                "name": param,
                "in": "path",
                "required": True,
                "schema": _param_schema(leaf_field(md, field)),
                "description": comments().get(f"{md.full_name}.{field}", ""),
            }
            for param, field in b.path_fields
        ]
        if b.body != "*":
            bound = {f for _, f in b.path_fields} | {b.body}
            for key, (path, fd) in sorted(query_fields(md).items()):
                if key != path or path.split(".")[0] in bound:
                    continue
                schema = _param_schema(fd)
                if fd.is_repeated:
                    schema = {"type": "array", "items": schema}
                params.append(
                    {
                        "name": key,
                        "in": "query",
                        "required": False,
                        "schema": schema,
                        "description": comments().get(f"{md.full_name}.{path}", ""),
                    }
                )
        if is_write(b.method):
            params.append(IDEMPOTENCY_KEY_PARAMETER)
        op: dict[str, Any] = {
            "operationId": f"{b.method.containing_service.name}_{b.method.name}_{b.verb.lower()}",
            "summary": b.method.name,
            "description": comments().get(b.method.full_name, ""),
            "tags": [b.method.containing_service.name],
            "parameters": params,
        }
        if b.body:
            body_fd = md.fields_by_name.get(b.body)
            if body_fd is None:  # body "*": the request message
                body_schema = sb.message(md, family.proto_names)
            elif body_fd.message_type is not None and not body_fd.is_repeated:
                body_schema = sb.message(body_fd.message_type, family.proto_names)
            else:
                body_schema = sb.field(body_fd, family.proto_names)
            content = {"application/json": {"schema": body_schema}, **_protobuf(family, md)}
            op["requestBody"] = {"required": needs_body(b), "content": content}
        out_md = b.output.DESCRIPTOR
        payload = (
            sb.field(out_md.fields_by_name[b.response_body], family.proto_names, family.omit_unset)
            if b.response_body
            else sb.message(out_md, family.proto_names, family.omit_unset)
        )
        if b.streaming:
            content = {
                "application/x-ndjson": {
                    "schema": {
                        "description": "one JSON object per line",
                        "type": "object",
                        "properties": {"result": payload, "error": STATUS_SCHEMA},
                    }
                }
            }
        else:
            content = {
                "application/json": {"schema": family.success_schema(payload)},
                **_protobuf(family, out_md),
            }
        # A success status other than 200 (agentplane.v1.http_success_code); 204: an empty reply.
        success = b.method.GetOptions().Extensions[options_pb2.http_success_code] or 200
        op["responses"] = {
            str(200 if success == 204 else success): {"description": "OK", "content": content},
            **({"204": {"description": "No Content: nothing to return"}} if success == 204 else {}),
            "default": {
                "description": f"An error, in the {family.name} error body",
                "content": {"application/json": {"schema": family.error_schema()}},
            },
        }
        paths.setdefault(b.route_path.replace(":path}", "}"), {})[b.verb.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": description,
            **({"x-agentplane-limits": limits} if limits else {}),
        },
        "paths": paths,
        "components": {"schemas": sb.components},
    }
