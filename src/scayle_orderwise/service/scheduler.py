"""The in-process flow scheduler of ``scayle-orderwise serve``: each flow on its own thread and interval.

Each enabled flow (orders, cancellations, fulfilments, inventory, reconciliation) runs one pass,
records it in the ledger (:mod:`.passes`, so ``/readyz`` and the dashboard of any process sharing the
ledger see it), then asks its :class:`Pacer` how long to wait before the next pass. The default
pacer waits the configured ``interval_seconds``; a flow that can tell when it should look again (for
example adaptive inventory polling) supplies its own pacer::

    class BusyInventory:
        def next_delay(self, result, interval):
            return 5.0 if result is not None and result["pushed"] else interval

    FlowScheduler(connector, pacers={"inventory": BusyInventory()})

:meth:`FlowScheduler.wake` starts a flow's next pass early (the webhook endpoint wakes the order
and cancellation flows when it records an event), after the flow's ``wake_delay_seconds`` so that a
burst of events shares one pass. A pass the webhooks woke pushes what they recorded; only the
passes on the flow's own interval walk SCAYLE's order list (the safety-net poll), so a webhook never
costs a walk of the whole list.

Stopping (SIGTERM): :meth:`FlowScheduler.stop` closes the claim gate first, so a running pass takes no
new record from the ledger and finishes the ones it holds; it waits up to the grace period, then
releases the claims this worker still holds as ``sent`` (their requests may be in flight, so the next
claimer looks them up before sending again). Several processes may share one PostgreSQL ledger: the
ledger's claims keep them apart, so the same flow may run in each.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from ..config import FlowSchedule
from ..errors import ConnectorError, StoreError
from ..store import IdempotencyStore, Record, State
from ..sync.context import SyncResult
from .passes import PassLog

if TYPE_CHECKING:
    from ..connector import Connector

__all__ = [
    "FLOW_NAMES",
    "SYNC_FLOWS",
    "ClaimGate",
    "FixedPacer",
    "FlowScheduler",
    "Pacer",
    "default_pacers",
]

logger = logging.getLogger("scayle_orderwise.service.scheduler")

SYNC_FLOWS = ("orders", "cancellations", "fulfilments", "inventory")
"""The flows whose stall makes the service not ready."""
FLOW_NAMES = (*SYNC_FLOWS, "reconciliation")


@runtime_checkable
class Pacer(Protocol):
    """Decides how long a flow waits before its next pass."""

    def next_delay(self, result: SyncResult | None, interval: float) -> float:
        """Seconds until the next pass, given the last pass's result (``None``: it failed) and the
        configured ``interval``."""
        ...


class FixedPacer:
    """The configured interval, always."""

    def next_delay(self, result: SyncResult | None, interval: float) -> float:
        return interval


def default_pacers(connector: Connector) -> dict[str, Pacer]:
    """The pacers ``scayle-orderwise serve`` uses for flows that know better than a fixed interval
    (none yet: every flow waits its ``interval_seconds``)."""
    return {}


class ClaimGate:
    """A store wrapper that refuses new claims once closed; every other call goes through.

    The scheduler puts it between the flows and the ledger, so stopping needs no help from the
    flows: a running pass sees an empty queue, finishes the records it holds, and returns.
    """

    def __init__(self, store: IdempotencyStore) -> None:
        self._store = store
        self.closed = threading.Event()

    def claim(self, key: str, **kwargs: Any) -> Record | None:
        if self.closed.is_set():
            return None
        return self._store.claim(key, **kwargs)

    def claim_next(self, kind: str, **kwargs: Any) -> list[Record]:
        if self.closed.is_set():
            return []
        return self._store.claim_next(kind, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def __repr__(self) -> str:
        return f"ClaimGate({self._store!r})"


class _FlowThread:
    def __init__(
        self,
        name: str,
        run: Callable[[bool], SyncResult],
        schedule: FlowSchedule,
        pacer: Pacer,
    ) -> None:
        self.name = name
        self.run = run
        self.schedule = schedule
        self.pacer = pacer
        self.wake = threading.Event()
        self.busy = threading.Event()
        self.thread: threading.Thread | None = None
        self.next_at: float | None = None


class FlowScheduler:
    """Runs the connector's flows on their intervals in background threads (see the module doc).

    ``schedules`` defaults to the connector's ``settings.service``; ``pacers`` maps a flow name to
    its :class:`Pacer` (default :func:`default_pacers`; flows without one use :class:`FixedPacer`); ``on_pass`` is called after every pass with ``(flow, result or None,
    seconds, error or None)`` (the service's metrics use it).
    """

    def __init__(
        self,
        connector: Connector,
        *,
        schedules: Mapping[str, FlowSchedule] | None = None,
        pacers: Mapping[str, Pacer] | None = None,
        on_pass: Callable[[str, SyncResult | None, float, str | None], None] | None = None,
        reconcile: Callable[[], SyncResult] | None = None,
    ) -> None:
        self.connector = connector
        service = connector.settings.service
        self.schedules: dict[str, FlowSchedule] = dict(
            schedules or {name: cast(FlowSchedule, getattr(service, name)) for name in FLOW_NAMES}
        )
        self.pacers = dict(default_pacers(connector) if pacers is None else pacers)
        self.on_pass = on_pass
        self.passes = PassLog(
            connector.store, clock=connector.context.clock, worker=connector.worker_id
        )
        self._ungated = connector.context.store
        self.gate = ClaimGate(self._ungated)
        connector.context.store = cast(IdempotencyStore, self.gate)
        # Each runner takes whether webhooks woke the pass: a woken orders pass skips the poll.
        runs: dict[str, Callable[[bool], SyncResult]] = {
            "orders": lambda woken: connector.sync_orders(poll=not woken),
            "cancellations": lambda _woken: connector.sync_cancellations(),
            "fulfilments": lambda _woken: connector.sync_fulfilments(),
            "inventory": lambda _woken: connector.sync_inventory(),
        }
        if reconcile is not None:
            runs["reconciliation"] = lambda _woken: reconcile()
        self._flows = {
            name: _FlowThread(name, run, self.schedules[name], self.pacers.get(name, FixedPacer()))
            for name, run in runs.items()
            if name in self.schedules and self.schedules[name].enabled
        }
        self._stopping = threading.Event()

    @property
    def flows(self) -> list[str]:
        """Names of the scheduled flows."""
        return list(self._flows)

    def start(self) -> FlowScheduler:
        """Start one daemon thread per scheduled flow; each runs its first pass at once."""
        for flow in self._flows.values():
            flow.thread = threading.Thread(
                target=self._loop, args=(flow,), name=f"flow-{flow.name}", daemon=True
            )
            flow.thread.start()
        return self

    def wake(self, name: str) -> None:
        """Run ``name``'s next pass now (no-op for a flow that is not scheduled)."""
        flow = self._flows.get(name)
        if flow is not None:
            flow.wake.set()

    def busy(self) -> list[str]:
        """Flows running a pass right now."""
        return [f.name for f in self._flows.values() if f.busy.is_set()]

    def next_runs(self) -> dict[str, float | None]:
        """Seconds until each flow's next pass (``None`` while it runs)."""
        now = time.monotonic()
        return {
            f.name: None if f.next_at is None else max(0.0, f.next_at - now)
            for f in self._flows.values()
        }

    def run_pass(self, name: str, *, woken: bool = False) -> SyncResult | None:
        """Run one pass of ``name`` on the calling thread, record and report it.

        ``woken``: webhooks started this pass (the orders flow then skips its poll).
        """
        flow = self._flows[name]
        started = time.monotonic()
        flow.busy.set()
        result: SyncResult | None = None
        error: str | None = None
        try:
            result = flow.run(woken)
        except ConnectorError as exc:
            error = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # a pass must never kill its thread
            logger.exception("pass of %s failed unexpectedly", name)
            error = f"unexpected {type(exc).__name__}: {exc}"
        finally:
            flow.busy.clear()
        seconds = time.monotonic() - started
        if result is not None and result["failed_pass"]:
            error = error or "; ".join(result.errors) or "failed pass"
        ok = error is None
        try:
            self.passes.record(
                name, ok=ok, seconds=seconds, counts=result.counts if result else {}, error=error
            )
        except StoreError as exc:
            logger.error("could not record the %s pass in the ledger: %s", name, exc)
        _log_pass(name, result, seconds, error)
        if self.on_pass is not None:
            self.on_pass(name, result, seconds, error)
        return result if ok else None

    def _loop(self, flow: _FlowThread) -> None:
        woken = False
        while not self._stopping.is_set():
            flow.next_at = None
            result = self.run_pass(flow.name, woken=woken)
            if self._stopping.is_set():
                return
            try:
                delay = float(flow.pacer.next_delay(result, flow.schedule.interval_seconds))
            except Exception:
                logger.exception("pacer of %s failed; using the interval", flow.name)
                delay = flow.schedule.interval_seconds
            delay = max(0.0, delay)
            flow.next_at = time.monotonic() + delay
            woken = flow.wake.wait(delay)
            flow.wake.clear()
            if woken and not self._stopping.is_set():
                # Let the rest of a burst arrive, so its events share one pass.
                self._stopping.wait(flow.schedule.wake_delay_seconds)
                flow.wake.clear()

    def stop(self, grace: float | None = None) -> bool:
        """Stop taking work, let running passes finish for up to ``grace`` seconds (default
        ``service.shutdown_grace_seconds``), then release the claims still held. True when every
        pass finished in time (the connector's flows then claim work again when called directly)."""
        grace = self.connector.settings.service.shutdown_grace_seconds if grace is None else grace
        self.gate.closed.set()
        self._stopping.set()
        for flow in self._flows.values():
            flow.wake.set()
        deadline = time.monotonic() + grace
        for flow in self._flows.values():
            if flow.thread is not None:
                flow.thread.join(timeout=max(0.0, deadline - time.monotonic()))
        finished = not any(
            f.thread is not None and f.thread.is_alive() for f in self._flows.values()
        )
        released = self.release_held_claims()
        if finished:  # the connector's own flow methods work again, e.g. for a last manual pass
            self.connector.context.store = self._ungated
        logger.info(
            "scheduler stopped: passes %s, %d claim(s) released",
            "finished" if finished else "cut short",
            released,
            extra={"event": "scheduler_stopped", "outcome": "finished" if finished else "released"},
        )
        return finished

    def release_held_claims(self) -> int:
        """Give back every ``in_flight`` record this worker holds, as ``sent`` (safe: the next
        claimer looks the object up before sending it again). Returns how many."""
        store = self.connector.store
        owner = self.connector.worker_id
        released = 0
        for record in _held(store, owner):
            try:
                store.transition(
                    record.key,
                    State.SENT,
                    owner=owner,
                    reason="released at shutdown: look up before sending again",
                    next_attempt_at=self.connector.context.clock(),
                )
                released += 1
            except StoreError:  # finished or taken over meanwhile
                continue
        return released


def _held(store: IdempotencyStore, owner: str) -> Iterator[Record]:
    return (r for r in list(store.records(states=[State.IN_FLIGHT])) if r.owner == owner)


def _log_pass(name: str, result: SyncResult | None, seconds: float, error: str | None) -> None:
    outcome = "ok" if error is None else "failed"
    counts = dict(result.counts) if result is not None else {}
    text = ", ".join(f"{k}={v}" for k, v in sorted(counts.items()) if v) or "nothing to do"
    log = logger.info if error is None else logger.warning
    log(
        "%s pass %s in %.2fs: %s%s",
        name,
        outcome,
        seconds,
        text,
        f" ({error})" if error else "",
        extra={
            "event": "pass",
            "flow": name,
            "outcome": outcome,
            "duration_seconds": round(seconds, 3),
            "counts": counts,
        },
    )
