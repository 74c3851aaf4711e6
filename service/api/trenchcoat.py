"""TrenchcoatService: the Trenchcoat family's batch ingest (seed 002)."""

from __future__ import annotations

from typing import Any

from agentplane.v1 import trenchcoat_pb2 as pb

from service.codec import NOT_KEPT, free_form, value_to_python
from service.domain.trenchcoat import ingest as trenchcoat
from service.rpc.context import CallContext
from service.store.store import Store


def _data(struct: Any) -> dict[str, Any]:
    """A Struct as Python values; the flat scalars most payloads hold take a
    shorter path than protojson.struct_to_python (this runs a thousand times
    a request, and iterating the map by key is a third cheaper than by
    `items()`), anything else goes through it. Kept JSON (see
    protojson.keeping_free_form) is returned as it is."""
    kept = free_form(struct)
    if kept is not NOT_KEPT:
        return kept
    fields = struct.fields
    out: dict[str, Any] = {}
    for key in fields:
        value = fields[key]
        kind = value.WhichOneof("kind")
        if kind == "string_value":
            out[key] = value.string_value
        elif kind == "bool_value":
            out[key] = value.bool_value
        else:
            out[key] = value_to_python(value)
    return out


def raw_event(msg: pb.TrenchcoatEvent) -> trenchcoat.RawEvent:
    return trenchcoat.RawEvent(
        msg.event_type,
        msg.session_id,
        msg.timestamp,
        _data(msg.data),
        msg.event,
        msg.ts,
        msg.seq if msg.HasField("seq") else None,
    )


class TrenchcoatServicer:
    service = pb.DESCRIPTOR.services_by_name["TrenchcoatService"]

    def __init__(self, store: Store) -> None:
        self.store = store

    async def IngestTrenchcoatEvents(
        self, req: pb.IngestTrenchcoatEventsRequest, ctx: CallContext
    ) -> pb.IngestTrenchcoatEventsResponse:
        trenchcoat.check_size(len(req.events))
        accepted = await trenchcoat.ingest(self.store, ctx.workspace, [raw_event(e) for e in req.events])
        return pb.IngestTrenchcoatEventsResponse(accepted=accepted, rejected=0)
