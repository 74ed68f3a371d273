"""``/metrics``: Prometheus metrics of the service (prometheus-client), all prefixed ``scayle_orderwise_``.

Two sources: counters this process keeps (webhooks, passes, orders and stock outcomes, API calls
and 429s per scope, fed by the HTTP core's call observer) and figures read from the ledger at
scrape time (records by kind and state, pending reference write-backs, open alerts, last passes,
the last reconciliation's exceptions by tier), which every process sharing the ledger reports
alike.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .._http import CallEvent, add_call_observer
from ..alerts import AlertDispatcher
from ..store import IdempotencyStore, Kind, State
from ..sync.context import SyncResult
from .passes import PassLog
from .reports import last_reconciliation

if TYPE_CHECKING:
    from ..connector import Connector

__all__ = ["KNOWN_KINDS", "REFERENCE_WRITE_KIND", "ServiceMetrics"]

logger = logging.getLogger("scayle_orderwise.service.metrics")

REFERENCE_WRITE_KIND = "reference_write"
"""Ledger kind of a SCAYLE reference write-back waiting durably (written by the orders flow)."""
KNOWN_KINDS = (*(str(k) for k in Kind), REFERENCE_WRITE_KIND, "alert")
_NOT_DONE = (State.PENDING, State.IN_FLIGHT, State.SENT, State.FAILED, State.QUARANTINED)


class ServiceMetrics:
    """The service's registry and the counters the app and the scheduler feed."""

    def __init__(self, connector: Connector, flows: Iterable[str]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.webhooks = Counter(
            "scayle_orderwise_webhooks",
            "Webhook requests by outcome (recorded, duplicate, ignored, malformed, unauthorised, too_large, error).",
            ["outcome"],
            registry=r,
        )
        self.orders = Counter(
            "scayle_orderwise_orders",
            "Orders handled by the order flow's passes in this process, by outcome (pushed, adopted, quarantined, deferred, failed, ...).",
            ["outcome"],
            registry=r,
        )
        self.pass_duration = Histogram(
            "scayle_orderwise_pass_duration_seconds",
            "Duration of each flow pass run by this process.",
            ["flow"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.pass_failures = Counter(
            "scayle_orderwise_pass_failures",
            "Flow passes that failed as a whole (the flow could not run), per flow.",
            ["flow"],
            registry=r,
        )
        self.api_calls = Counter(
            "scayle_orderwise_api_calls",
            "API call attempts made by this process, per API and rate-limit scope.",
            ["api", "scope"],
            registry=r,
        )
        self.api_rate_limited = Counter(
            "scayle_orderwise_api_rate_limited",
            "API answers 429 (rate limited), per API and scope.",
            ["api", "scope"],
            registry=r,
        )
        self.stock_pushes = Counter(
            "scayle_orderwise_stock_pushes",
            "Stock figures pushed to SCAYLE by this process.",
            registry=r,
        )
        self.stock_stale_echoes = Counter(
            "scayle_orderwise_stock_stale_echoes",
            "Stock pushes SCAYLE answered with a newer figure (stale echo: not counted as sent).",
            registry=r,
        )
        for flow in flows:
            self.pass_duration.labels(flow)
            self.pass_failures.labels(flow)
        r.register(_LedgerCollector(connector, list(flows)))
        self._remove_observer = add_call_observer(self.observe_call)

    def observe_call(self, event: CallEvent) -> None:
        """Count one API call attempt (the HTTP core's observer)."""
        scope = event.scope or "-"
        self.api_calls.labels(event.service, scope).inc()
        if event.status_code == 429:
            self.api_rate_limited.labels(event.service, scope).inc()

    def observe_pass(
        self, flow: str, result: SyncResult | None, seconds: float, error: str | None
    ) -> None:
        """Count one finished pass (the scheduler's ``on_pass``)."""
        self.pass_duration.labels(flow).observe(seconds)
        if error is not None:
            self.pass_failures.labels(flow).inc()
        if result is None:
            return
        if flow == "orders":
            for outcome, n in result.counts.items():
                if n:
                    self.orders.labels(outcome).inc(n)
        elif flow == "inventory":
            self.stock_pushes.inc(result["pushed"])
            self.stock_stale_echoes.inc(result["stale_rejected"])

    def render(self) -> bytes:
        """The Prometheus text exposition."""
        return generate_latest(self.registry)

    def close(self) -> None:
        """Stop observing API calls."""
        self._remove_observer()


class _LedgerCollector(Collector):
    """Figures read from the ledger at scrape time."""

    def __init__(self, connector: Connector, flows: list[str]) -> None:
        self.connector = connector
        self.flows = flows

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        store: IdempotencyStore = self.connector.store
        up = GaugeMetricFamily(
            "scayle_orderwise_ledger_up", "1 when the ledger answered this scrape, else 0."
        )
        try:
            families = list(self._from_ledger(store))
        except Exception as exc:  # a scrape must answer even when the ledger does not
            logger.warning("metrics: the ledger did not answer: %s", exc)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _from_ledger(self, store: IdempotencyStore) -> Iterator[Metric]:
        records = GaugeMetricFamily(
            "scayle_orderwise_ledger_records",
            "Ledger records by kind and state.",
            labels=["kind", "state"],
        )
        total = store.counts()
        known: dict[State, int] = dict.fromkeys(State, 0)
        pending_writes = 0
        for kind in KNOWN_KINDS:
            counts = store.counts(kind=kind)
            for state in State:
                records.add_metric([kind, str(state)], counts.get(state, 0))
                known[state] += counts.get(state, 0)
            if kind == REFERENCE_WRITE_KIND:
                pending_writes = sum(counts.get(s, 0) for s in _NOT_DONE)
        for state in State:
            records.add_metric(["other", str(state)], max(0, total.get(state, 0) - known[state]))
        yield records

        writes = GaugeMetricFamily(
            "scayle_orderwise_pending_reference_writes",
            "SCAYLE reference write-backs recorded in the ledger and not yet acknowledged.",
        )
        writes.add_metric([], pending_writes)
        yield writes

        alerts = GaugeMetricFamily(
            "scayle_orderwise_open_alerts", "Open alerts by kind.", labels=["kind"]
        )
        open_by_kind: dict[str, int] = {}
        for kind, _subject, _cause in AlertDispatcher(state=store).open_alerts():
            open_by_kind[kind] = open_by_kind.get(kind, 0) + 1
        from ..alerts import AlertKind

        for kind in sorted({*map(str, AlertKind), *open_by_kind}):
            alerts.add_metric([kind], open_by_kind.get(kind, 0))
        yield alerts

        last = GaugeMetricFamily(
            "scayle_orderwise_last_pass_timestamp_seconds",
            "When each flow last finished a pass (any process sharing the ledger), Unix time.",
            labels=["flow"],
        )
        good = GaugeMetricFamily(
            "scayle_orderwise_last_good_pass_timestamp_seconds",
            "When each flow last finished a pass without failing, Unix time.",
            labels=["flow"],
        )
        log = PassLog(store)
        for flow in self.flows:
            info = log.get(flow)
            if info.last_at is not None:
                last.add_metric([flow], info.last_at.timestamp())
            if info.last_good_at is not None:
                good.add_metric([flow], info.last_good_at.timestamp())
        yield last
        yield good

        recon = GaugeMetricFamily(
            "scayle_orderwise_reconciliation_exceptions",
            "Exceptions of the latest scheduled reconciliation, by tier.",
            labels=["tier"],
        )
        latest = last_reconciliation(store)
        if latest is not None:
            for tier, n in sorted(latest.by_tier.items()):
                recon.add_metric([tier], n)
        yield recon
