"""What every flow needs (clients, store, mapper, alerts, settings, clock) and its result type."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import attrs

from ..alerts import AlertDispatcher
from ..config import FlowSettings, InventorySettings
from ..errors import ConnectorError, TransientError
from ..store import Record, State
from .tenant_setup import TenantSetupCache

if TYPE_CHECKING:
    from ..mapping import OrderMapper
    from ..orderwise.client import OrderwiseClient
    from ..scayle.client import ScayleClient
    from ..store import IdempotencyStore

__all__ = ["FlowContext", "SyncResult", "utcnow"]


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@attrs.define
class FlowContext:
    """Shared dependencies of the flows; built by the connector."""

    scayle: ScayleClient
    orderwise: OrderwiseClient
    store: IdempotencyStore
    mapper: OrderMapper
    alerts: AlertDispatcher
    worker_id: str
    flows: FlowSettings = attrs.field(factory=FlowSettings)
    inventory: InventorySettings = attrs.field(factory=InventorySettings)
    status_map: dict[str, Any] | None = None
    clock: Callable[[], datetime] = utcnow
    logger: logging.Logger = attrs.field(factory=lambda: logging.getLogger("scayle_orderwise.sync"))
    tenant: TenantSetupCache = attrs.field(factory=TenantSetupCache)
    """The SCAYLE tenant's warehouses and carriers, read once (see :mod:`.tenant_setup`)."""

    @property
    def lease(self) -> timedelta:
        """How long a claim is held before another worker may take it."""
        return timedelta(seconds=self.flows.lease_seconds)

    def backoff(self, attempts: int) -> timedelta:
        """Exponential backoff for a record that failed ``attempts`` times (capped)."""
        base = self.flows.backoff_base_seconds
        seconds = min(self.flows.backoff_max_seconds, base * (2 ** max(0, attempts - 1)))
        return timedelta(seconds=seconds)

    def release(
        self, record: Record, reason: str, *, backoff: bool = False, maybe_sent: bool = False
    ) -> None:
        """Give a claim back after a failure this worker could not finish.

        ``sent`` stays ``sent`` (the remote side may have it: look up first), anything else goes
        back to ``pending``, or to ``failed`` after ``max_attempts``; either way it is retried
        after the backoff. ``maybe_sent``: this attempt may itself have reached the remote side.
        A no-op when this worker no longer holds the claim.
        """
        current = self.store.get(record.key)
        if current is None or current.state != State.IN_FLIGHT or current.owner != self.worker_id:
            return
        to_state = State.SENT if record.may_have_been_sent or maybe_sent else State.PENDING
        if to_state == State.PENDING and record.attempts >= self.flows.max_attempts:
            to_state = State.FAILED
        delay = self.backoff(record.attempts) if backoff else timedelta(0)
        self.store.transition(
            record.key,
            to_state,
            owner=self.worker_id,
            reason=reason,
            next_attempt_at=self.clock() + delay,
        )

    def release_after_error(
        self, record: Record, exc: Exception, result: SyncResult, *, maybe_sent: bool = False
    ) -> None:
        """Release a claim after an error that concerns this record only, and count it.

        Transient errors count as ``deferred``, everything else as ``failed`` (with the error in
        ``result.errors``); either way the record is retried after the backoff, so a pass never
        dies on one bad record. Call it from inside the ``except`` block.
        """
        if isinstance(exc, TransientError):
            self.release(record, f"transient error: {exc}", backoff=True, maybe_sent=maybe_sent)
            result.add("deferred")
            return
        if isinstance(exc, ConnectorError):
            reason, error = f"{type(exc).__name__}: {exc}", f"{record.key}: {exc}"
        else:
            self.logger.exception("unexpected error on %s", record.key)
            reason = f"unexpected {type(exc).__name__}: {exc}"
            error = f"{record.key}: {type(exc).__name__}: {exc}"
        self.release(record, reason, backoff=True, maybe_sent=maybe_sent)
        result.add("failed")
        result.errors.append(error)

    def defer(self, record: Record, reason: str, *, delay: bool = True) -> None:
        """Put a claimed record back to wait (e.g. for the order to be acknowledged first)."""
        seconds = self.flows.backoff_base_seconds if delay else 0
        self.store.transition(
            record.key,
            State.SENT if record.may_have_been_sent else State.PENDING,
            owner=self.worker_id,
            reason=reason,
            next_attempt_at=self.clock() + timedelta(seconds=seconds),
        )

    def log(self, event: str, **fields: Any) -> None:
        """One structured log line: ``event`` plus key=value fields (also in ``extra``)."""
        text = " ".join(f"{k}={v}" for k, v in fields.items())
        self.logger.info("%s %s", event, text, extra={"event": event, **fields})


@attrs.define
class SyncResult:
    """Counts per outcome of one pass of a flow, e.g. ``result["pushed"]`` or ``result.pushed``."""

    flow: str
    counts: Counter[str] = attrs.field(factory=Counter)
    errors: list[str] = attrs.field(factory=list)

    def add(self, outcome: str, n: int = 1) -> None:
        """Count ``n`` more of ``outcome``."""
        self.counts[outcome] += n

    def __getitem__(self, outcome: str) -> int:
        return self.counts[outcome]

    def __getattr__(self, name: str) -> int:
        if name.startswith("_") or name in {"flow", "counts", "errors"}:
            raise AttributeError(name)
        return self.counts[name]

    def merge(self, other: SyncResult) -> SyncResult:
        """Add another result's counts and errors to this one."""
        self.counts.update(other.counts)
        self.errors.extend(other.errors)
        return self

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "flow": self.flow,
            "counts": dict(sorted(self.counts.items())),
            "errors": list(self.errors),
        }

    def __str__(self) -> str:
        parts = ", ".join(f"{k}={v}" for k, v in sorted(self.counts.items()) if v)
        return f"{self.flow}: {parts or 'nothing to do'}"
