"""The dashboard's view of the ledger, exceptions first: what needs a person, then how the flows do.

Built from the store alone (so any process sharing the ledger shows the same page): quarantined
records with reason, age and history; records waiting longer than their alert threshold (stalled
orders, unacknowledged parcels, open cancellations, reference write-backs); open alerts; each flow's
last pass and last good pass; the latest scheduled reconciliation; ledger counts by kind and state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from itertools import islice

import attrs

from ..alerts import AlertDispatcher
from ..config import ConnectorSettings
from ..store import IdempotencyStore, Record, State
from .actions import alert_record_key
from .metrics import KNOWN_KINDS, REFERENCE_WRITE_KIND
from .passes import PassInfo, PassLog
from .reports import LastReconciliation, last_reconciliation

__all__ = ["AlertRow", "DashboardView", "FlowRow", "build_view", "describe_age"]

MAX_ROWS = 200
_OPEN = (State.PENDING, State.IN_FLIGHT, State.SENT, State.FAILED)


@attrs.frozen
class AlertRow:
    """One open alert."""

    kind: str
    subject: str
    cause: str
    record_key: str | None
    history_key: str


@attrs.frozen
class FlowRow:
    """One flow's passes."""

    info: PassInfo
    interval: float | None
    enabled: bool
    stalled: bool


@attrs.frozen
class DashboardView:
    """Everything the dashboard page shows."""

    now: datetime
    quarantined: list[Record]
    quarantined_more: bool
    waiting: list[tuple[Record, str]]
    waiting_more: bool
    alerts: list[AlertRow]
    flows: list[FlowRow]
    reconciliation: LastReconciliation | None
    counts: dict[str, dict[str, int]]
    states: list[str]


def describe_age(now: datetime, then: datetime | None) -> str:
    """``3 d 4 h``, ``12 min`` ...: how long ago, for people."""
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
    if seconds < 120:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 120:
        return f"{minutes} min"
    hours = minutes // 60
    if hours < 48:
        return f"{hours} h {minutes % 60} min"
    return f"{hours // 24} d {hours % 24} h"


def _record_for_alert(kind: str, subject: str) -> str | None:
    """The order an alert is about, when its subject starts with an order id."""
    first = subject.split(":", 1)[0]
    return f"order:{first}" if first.isascii() and first.isdigit() else None


def build_view(
    store: IdempotencyStore,
    settings: ConnectorSettings,
    *,
    clock: Callable[[], datetime],
    flows: list[str],
) -> DashboardView:
    """Read the ledger into a :class:`DashboardView`."""
    now = clock()
    quarantined = list(islice(store.records(states=[State.QUARANTINED]), MAX_ROWS + 1))
    quarantined = [r for r in quarantined if r.kind != "alert"]
    f = settings.flows
    thresholds = {
        "order": f.order_stalled_after_seconds,
        "shipment": f.fulfilment_ack_timeout_seconds,
        "cancellation": f.order_stalled_after_seconds,
        REFERENCE_WRITE_KIND: f.order_stalled_after_seconds,
    }
    waiting: list[tuple[Record, str]] = []
    waiting_more = False
    for kind, seconds in thresholds.items():
        limit = timedelta(seconds=seconds)
        for record in store.records(states=_OPEN, kind=kind):
            if now - record.created_at <= limit:
                break  # records come oldest first: the rest are younger still
            if len(waiting) >= MAX_ROWS:
                waiting_more = True
                break
            waiting.append((record, _waiting_label(record)))
    waiting.sort(key=lambda pair: pair[0].created_at)

    alerts = [
        AlertRow(
            kind, subject, cause, _record_for_alert(kind, subject), alert_record_key(kind, subject)
        )
        for kind, subject, cause in AlertDispatcher(state=store).open_alerts()
    ]
    log = PassLog(store)
    service = settings.service
    rows = []
    for name in flows:
        schedule = getattr(service, name, None)
        info = log.get(name)
        stall = (
            schedule.stall_after_seconds
            if schedule is not None and schedule.stall_after_seconds
            else f.sync_stalled_after_seconds
        )
        stalled = name != "reconciliation" and (
            info.last_good_at is None or now - info.last_good_at > timedelta(seconds=stall)
        )
        rows.append(
            FlowRow(
                info,
                schedule.interval_seconds if schedule is not None else None,
                bool(schedule.enabled) if schedule is not None else False,
                stalled,
            )
        )
    counts: dict[str, dict[str, int]] = {}
    for kind in KNOWN_KINDS:
        by_state = {str(s): n for s, n in store.counts(kind=kind).items()}
        if any(by_state.values()):
            counts[kind] = by_state
    return DashboardView(
        now=now,
        quarantined=quarantined[:MAX_ROWS],
        quarantined_more=len(quarantined) > MAX_ROWS,
        waiting=waiting,
        waiting_more=waiting_more,
        alerts=alerts,
        flows=rows,
        reconciliation=last_reconciliation(store),
        counts=counts,
        states=[str(s) for s in State],
    )


def _waiting_label(record: Record) -> str:
    return {
        "order": "order not yet in OrderWise",
        "shipment": "parcel not acknowledged by SCAYLE",
        "cancellation": "cancellation not finished",
        REFERENCE_WRITE_KIND: "reference not yet written back to SCAYLE",
    }.get(record.kind, record.kind)
