"""AGH's identity step of the call chain: on every agent route
(`/api/agent/*`, the AghAgentService and AghChannelService RPCs) the caller is
resolved from its headers before the request is looked at, so a call without
a valid identity hears 401 (or 403 for another workspace), never a complaint
about its body. The gateway runs it before reading a body it cannot parse."""

from __future__ import annotations

from google.protobuf.descriptor import MethodDescriptor

from service.domain.agh import identity
from service.rpc.context import CallContext
from service.store.store import Store

AGENT_SERVICES = frozenset({"agentplane.v1.AghAgentService", "agentplane.v1.AghChannelService"})


class AghIdentity:
    """The interceptor (after auth, which sets the workspace)."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def __call__(self, ctx: CallContext, method: MethodDescriptor) -> None:
        if method.containing_service.full_name in AGENT_SERVICES:
            await identity.identify(self.store, ctx.workspace, ctx.metadata)
