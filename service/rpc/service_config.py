"""Service configs: bindings and options for services whose protos are not ours.

agentplane serves the OpenTelemetry collector services as opentelemetry-proto
defines them (their full method names must be OTLP's, so real exporters
work), and their descriptors carry no `google.api.http` binding nor any of
options.proto's options. `proto/otlp_http.yaml`, a google.api.Service as
grpc-gateway reads one (copied beside the generated code by `make gen`),
states them as data: `http.rules` (HttpRule, keyed by method) and
`agentplane.rules` (`route_family` of a service, `required_scope` of a
method). The call chain asks `required_scope` of it, the gateway its rules and
families; descriptors' own options win where both speak.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml  # type: ignore[import-untyped]
from agentplane.v1 import options_pb2
from google.api import http_pb2
from google.protobuf import descriptor_pool, json_format
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor

CONFIG_FILES = ("otlp_http.yaml",)


@dataclass(frozen=True)
class ServiceConfig:
    # Method full name -> its HttpRule.
    http_rules: dict[str, http_pb2.HttpRule]
    # Service full name -> its RouteFamily value.
    route_families: dict[str, int]
    # Method full name -> the scope it needs.
    scopes: dict[str, str]

    def services(self) -> list[ServiceDescriptor]:
        """The services the configs name, in the order they name them."""
        names = dict.fromkeys(
            [*self.route_families, *(m.rsplit(".", 1)[0] for m in (*self.http_rules, *self.scopes))]
        )
        return [_service(name) for name in names]


def _service(full_name: str) -> ServiceDescriptor:
    """A service descriptor by name, importing its package's `_pb2` modules
    (as the gateway imports agentplane.v1's) when the pool lacks it."""
    pool = descriptor_pool.Default()
    try:
        return pool.FindServiceByName(full_name)
    except KeyError:
        package = importlib.import_module(full_name.rsplit(".", 1)[0])
        for mod in pkgutil.iter_modules(package.__path__):
            if mod.name.endswith("_pb2"):
                importlib.import_module(f"{package.__name__}.{mod.name}")
        return pool.FindServiceByName(full_name)


def parse(documents: list[dict[str, Any]]) -> ServiceConfig:
    rules: dict[str, http_pb2.HttpRule] = {}
    families: dict[str, int] = {}
    scopes: dict[str, str] = {}
    for doc in documents:
        http = json_format.ParseDict(doc.get("http") or {}, http_pb2.Http())
        for rule in http.rules:
            rules[rule.selector] = rule
        for item in (doc.get("agentplane") or {}).get("rules") or ():
            selector = item["selector"]
            if "route_family" in item:
                families[selector] = options_pb2.RouteFamily.Value(item["route_family"])
            if "required_scope" in item:
                scopes[selector] = str(item["required_scope"])
    return ServiceConfig(rules, families, scopes)


@cache
def service_config() -> ServiceConfig:
    """The configs `make gen` put beside the generated agentplane.v1 code."""
    folder = resources.files("agentplane.v1")
    return parse([yaml.safe_load(folder.joinpath(name).read_text()) for name in CONFIG_FILES])


def config_scope(md: MethodDescriptor) -> str:
    """The scope a service config gives a method ("" when none does)."""
    return service_config().scopes.get(md.full_name, "")
