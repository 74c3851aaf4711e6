"""google.api.http bindings: reading them from descriptors, and building a
request message from a path, a query string and a body as grpc-gateway does.

- `body: "*"`: the JSON body fills every field the path does not; the query
  string is ignored.
- `body: "field"`: the JSON body is that field; other fields come from the query.
- no body: every field the path does not bind may come from the query, by
  proto or JSON name, dotted for nested fields, repeated keys for lists;
  unknown keys are ignored.
Path variables win over the body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from google.api import annotations_pb2, http_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import FieldDescriptor, MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from service.api.bad_fields import every_violation
from service.codec import ParseError, from_dict
from service.rpc.dispatch import method_path
from service.rpc.service_config import service_config

_VAR = re.compile(r"\{([a-zA-Z0-9_.]+)(?:=([^}]*))?\}")
_VERBS = ("get", "put", "post", "delete", "patch")


@dataclass(frozen=True)
class Binding:
    method: MethodDescriptor
    verb: str
    template: str
    # The Starlette route path: `{a.b}` becomes `{a__b}`, `{x=**}` becomes `{x:path}`.
    route_path: str
    # (route parameter, dotted field path) for each path variable.
    path_fields: tuple[tuple[str, str], ...]
    body: str
    response_body: str
    input: type[Message]
    output: type[Message]

    @property
    def path(self) -> str:
        """The RPC's gRPC path, `/package.Service/Method`."""
        return method_path(self.method)

    @property
    def streaming(self) -> bool:
        return bool(self.method.server_streaming)


def _route_path(template: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    fields: list[tuple[str, str]] = []

    def repl(m: re.Match[str]) -> str:
        field_path, pattern = m.group(1), m.group(2)
        param = field_path.replace(".", "__")
        fields.append((param, field_path))
        return f"{{{param}:path}}" if pattern and "**" in pattern else f"{{{param}}}"

    return _VAR.sub(repl, template), tuple(fields)


def _rules(md: MethodDescriptor) -> Iterable[http_pb2.HttpRule]:
    """The method's bindings: its `google.api.http` option, else the rule a
    service config gives it (services whose protos are not ours)."""
    opts = md.GetOptions()
    if opts.HasExtension(annotations_pb2.http):
        rule = opts.Extensions[annotations_pb2.http]
    else:
        found = service_config().http_rules.get(md.full_name)
        if found is None:
            return []
        rule = found
    return [rule, *rule.additional_bindings]


def bindings(services: Sequence[ServiceDescriptor]) -> list[Binding]:
    found: list[Binding] = []
    for sd in services:
        for md in sd.methods:
            for rule in _rules(md):
                kind = rule.WhichOneof("pattern")
                if kind == "custom":
                    verb, template = rule.custom.kind.upper(), rule.custom.path
                elif kind in _VERBS:
                    verb, template = kind.upper(), getattr(rule, kind)
                else:
                    continue
                route_path, path_fields = _route_path(template)
                found.append(
                    Binding(
                        md,
                        verb,
                        template,
                        route_path,
                        path_fields,
                        rule.body,
                        rule.response_body,
                        message_factory.GetMessageClass(md.input_type),
                        message_factory.GetMessageClass(md.output_type),
                    )
                )
    return found


def leaf_field(md: Any, dotted: str) -> Any:
    fd: FieldDescriptor | None = None
    for part in dotted.split("."):
        fd = md.fields_by_name[part]
        if fd.message_type is not None:
            md = fd.message_type
    assert fd is not None
    return fd


@cache
def query_fields(md: Any, depth: int = 3) -> dict[str, tuple[str, Any]]:
    """Query keys a message accepts (proto and JSON names, dotted) -> (proto path, leaf field)."""
    out: dict[str, tuple[str, Any]] = {}
    for fd in md.fields:
        if fd.type == FieldDescriptor.TYPE_MESSAGE:
            is_map = fd.message_type.GetOptions().map_entry
            if (
                fd.is_repeated
                or is_map
                or depth <= 1
                or fd.message_type.full_name.startswith("google.protobuf.")
            ):
                continue
            for key, (path, leaf) in query_fields(fd.message_type, depth - 1).items():
                for prefix in {fd.name, fd.json_name}:
                    out[f"{prefix}.{key}"] = (f"{fd.name}.{path}", leaf)
            continue
        out[fd.name] = out[fd.json_name] = (fd.name, fd)
    return out


_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}
_INTS = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}


def _scalar(fd: Any, raw: str, name: str) -> Any:
    try:
        if fd.type == FieldDescriptor.TYPE_BOOL:
            low = raw.lower()
            if low in _TRUE:
                return True
            if low in _FALSE:
                return False
            raise ValueError(raw)
        if fd.type in _INTS:
            return int(raw)
        if fd.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
            return float(raw)
    except ValueError:
        raise ParseError(f"{name}: invalid value {raw!r} for a {_type_name(fd)}") from None
    return raw


def _type_name(fd: Any) -> str:
    if fd.type == FieldDescriptor.TYPE_BOOL:
        return "boolean"
    return "number" if fd.type not in _INTS else "integer"


def _put(data: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        nxt = data.get(part)
        if not isinstance(nxt, dict):
            nxt = data[part] = {}
        data = nxt
    data[last] = value


def build_request(
    b: Binding,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: Any,
    *,
    keep_free_form: bool = False,
) -> Message:
    """The request message for a call; raises ParseError for input that does
    not fit. `keep_free_form`: see protojson.keeping_free_form."""
    data: dict[str, Any] = {}
    md: Any = b.input.DESCRIPTOR
    if b.body == "*":
        if not isinstance(body, dict):
            raise ParseError("the request body must be a JSON object")
        data.update(body)
    elif b.body:
        fd = md.fields_by_name[b.body]
        if (
            fd.type == FieldDescriptor.TYPE_MESSAGE
            and not fd.is_repeated
            and not isinstance(body, dict)
            and not fd.message_type.full_name.startswith("google.protobuf.")
        ):
            raise ParseError("the request body must be a JSON object")
        data[b.body] = body
    if b.body != "*":
        accepted = query_fields(md)
        bound = {path for _, path in b.path_fields} | ({b.body} if b.body else set())
        collected: dict[str, list[Any]] = {}
        for key, raw in query:
            hit = accepted.get(key)
            if hit is None or hit[0] in bound or hit[0].split(".")[0] in bound:
                continue
            collected.setdefault(hit[0], []).append(_scalar(hit[1], raw, key))
        for path, values in collected.items():
            _put(data, path, values if leaf_field(md, path).is_repeated else values[-1])
    for param, path in b.path_fields:
        _put(data, path, _scalar(leaf_field(md, path), path_params[param], path))
    try:
        return from_dict(data, b.input, keep_free_form=keep_free_form)
    except ParseError as exc:  # name every bad field, not only the first
        raise ParseError(str(exc), every_violation(b.path, data, b.input)) from None
