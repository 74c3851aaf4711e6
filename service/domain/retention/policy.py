"""A workspace's retention and quotas: the server's defaults (Settings), a
workspace's own policy set by an admin (SetRetention), and the values in
force, kept in memory for the writer, which asks for a workspace's quotas on
every write. Each process reloads the policies at each retention pass, so a
change made through another replica applies there within a pass interval
(at once in the process that made it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime

from service.base.errors import FieldViolation, InvalidArgument
from service.domain.retention.reasons import RetentionReason
from service.store.log import Tx
from service.store.retention import purge as q
from service.store.retention.purge import Usage
from service.store.retention.usage import day_end, day_of
from service.store.store import Store

# Upper bounds that keep the arithmetic and the database's BIGINT safe.
_MAX = {
    "retention_seconds": 100 * 366 * 86400,
    "retention_bytes": 2**62,
    "quota_events_per_day": 2**62,
    "quota_stored_bytes": 2**62,
}


@dataclass(frozen=True)
class Limits:
    """Values in force; 0 is "none" for each."""

    retention_seconds: int = 0
    retention_bytes: int = 0
    quota_events_per_day: int = 0
    quota_stored_bytes: int = 0

    @property
    def removes(self) -> bool:
        return bool(self.retention_seconds or self.retention_bytes)


# A workspace's own policy: a value per field, None to follow the default.
Own = dict[str, int | None]


@dataclass(frozen=True)
class RetentionView:
    workspace: str
    own: Own
    effective: Limits
    usage: Usage
    day_resets_at: datetime


def check_policy(own: Own) -> None:
    violations = [
        FieldViolation(f"policy.{name}", f"must be between 0 and {_MAX[name]} (0: none)")
        for name, value in own.items()
        if value is not None and not 0 <= value <= _MAX[name]
    ]
    if violations:
        raise InvalidArgument(
            "; ".join(f"{v.field}: {v.description}" for v in violations),
            reason=RetentionReason.INVALID_RETENTION_POLICY,
            violations=violations,
        )


class Policies:
    def __init__(self, store: Store, defaults: Limits) -> None:
        self._store = store
        self.defaults = defaults
        self._own: dict[str, Own] = {}
        self._limits: dict[str, Limits] = {}
        self._quotas: dict[str, tuple[int, int]] = {}
        self._default_quotas = (defaults.quota_events_per_day, defaults.quota_stored_bytes)

    def of(self, workspace: str) -> Limits:
        return self._limits.get(workspace, self.defaults)

    def quotas(self, workspace: str) -> tuple[int, int]:
        """(entries a day, stored payload) for the writer: a dict lookup per write."""
        return self._quotas.get(workspace, self._default_quotas)

    def _in_force(self, own: Own) -> Limits:
        chosen: dict[str, int] = {}
        for f in fields(Limits):
            value = own.get(f.name)
            chosen[f.name] = value if value is not None else getattr(self.defaults, f.name)
        return Limits(**chosen)

    def _apply(self, own: dict[str, Own]) -> None:
        limits = {workspace: self._in_force(values) for workspace, values in own.items()}
        self._own, self._limits = own, limits
        self._quotas = {w: (v.quota_events_per_day, v.quota_stored_bytes) for w, v in limits.items()}

    async def load(self) -> None:
        self._apply(await self._store.read(q.policies))

    async def view(self, workspace: str) -> RetentionView:
        usage = await self._store.read(lambda conn: q.usage(conn, workspace))
        now = self._store.clock.now()
        if usage is None:
            usage = Usage(workspace, day_of(now), 0, 0, 0, None)
        elif usage.day != day_of(now):
            usage = Usage(workspace, day_of(now), 0, usage.stored_bytes, usage.horizon_seq, usage.purged_at)
        own = self._own.get(workspace, dict.fromkeys(_MAX))
        return RetentionView(workspace, own, self.of(workspace), usage, day_end(now))

    async def set(self, workspace: str, own: Own) -> RetentionView:
        check_policy(own)
        now = self._store.clock.now()

        def op(tx: Tx) -> None:
            tx.unmetered = True  # an admin lifting a quota is not refused by it
            q.put_policy(tx, workspace, own, now)
            tx.append("retention.policy_set", workspace, {"policy": own})

        await self._store.write(op)
        self._apply({**self._own, workspace: own})
        return await self.view(workspace)


def defaults_from(retention_seconds: int, retention_bytes: int, events_per_day: int, stored: int) -> Limits:
    limits = Limits(retention_seconds, retention_bytes, events_per_day, stored)
    check_policy(asdict(limits))
    return limits
