"""ApiKeyService: an admin key manages the keys of its own workspace."""

from __future__ import annotations

from datetime import datetime, timedelta

from agentplane.v1 import apikeys_pb2 as pb
from google.protobuf.timestamp_pb2 import Timestamp

from service.domain import apikeys
from service.rpc.auth import KeyCache
from service.rpc.context import CallContext
from service.store.apikeys import ApiKeyRecord
from service.store.store import Store


def _timestamp(moment: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def api_key_pb(record: ApiKeyRecord) -> pb.ApiKey:
    msg = pb.ApiKey(
        key_id=record.key_id,
        name=record.name,
        workspace=record.workspace,
        scopes=record.scopes,
        prefix=record.prefix,
        created_at=_timestamp(record.created_at),
    )
    if record.expires_at is not None:
        msg.expires_at.CopyFrom(_timestamp(record.expires_at))
    if record.revoked_at is not None:
        msg.revoked_at.CopyFrom(_timestamp(record.revoked_at))
    return msg


class ApiKeyServicer:
    service = pb.DESCRIPTOR.services_by_name["ApiKeyService"]

    def __init__(self, store: Store, cache: KeyCache | None = None) -> None:
        self.store = store
        # The running server's key cache, so that its changes apply at once.
        self.cache = cache

    async def CreateApiKey(self, req: pb.CreateApiKeyRequest, ctx: CallContext) -> pb.CreateApiKeyResponse:
        expires_in: timedelta | None = req.expires_in.ToTimedelta() if req.HasField("expires_in") else None
        record, secret = await apikeys.create_key(
            self.store, ctx.workspace, req.name, list(req.scopes), expires_in, created_by=ctx.key_id
        )
        return pb.CreateApiKeyResponse(api_key=api_key_pb(record), key=secret)

    async def ListApiKeys(self, req: pb.ListApiKeysRequest, ctx: CallContext) -> pb.ListApiKeysResponse:
        records = await apikeys.list_keys(self.store, ctx.workspace)
        return pb.ListApiKeysResponse(api_keys=[api_key_pb(r) for r in records])

    async def RevokeApiKey(self, req: pb.RevokeApiKeyRequest, ctx: CallContext) -> pb.RevokeApiKeyResponse:
        record = await apikeys.revoke_key(self.store, ctx.workspace, req.key_id)
        if self.cache is not None:
            self.cache.forget(record.key_id)
        return pb.RevokeApiKeyResponse(api_key=api_key_pb(record))
