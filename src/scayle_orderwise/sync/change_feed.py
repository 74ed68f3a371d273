"""Reading OrderWise order changes: the ``order_changes`` export from a watermark, row helpers.

Shared by the fulfilment flow (despatches) and the cancellations flow (cancelled orders and lines):
each keeps its own watermark under its own store cursor, so one flow failing never holds the
other back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ..alerts import AlertKind
from ..errors import ConnectorError
from ..mapping import parse_external_reference
from ..orderwise.models import OrderChangeRow
from ..orderwise.statuses import CanonicalStatus, canonical_status
from .bad_rows import BadRows
from .context import FlowContext, SyncResult
from .orders import ORDER_KIND

__all__ = ["ChangeFeed", "note_unknown_statuses", "scayle_order_id", "whole_units"]


def scayle_order_id(ctx: FlowContext, row: OrderChangeRow) -> int | None:
    """The SCAYLE order id of an OrderWise order-change row (from its e-commerce reference)."""
    if row.external_ref:
        return parse_external_reference(row.external_ref, ctx.mapper.config)
    return None


def whole_units(value: Decimal | None) -> int:
    """A quantity as whole units (fractions are dropped: SCAYLE items are single units)."""
    if value is None or value <= 0:
        return 0
    return int(value)


def note_unknown_statuses(ctx: FlowContext, rows: Iterable[OrderChangeRow]) -> int:
    """Raise :attr:`AlertKind.STATUS_UNKNOWN` once per status text not in the status map."""
    raised = 0
    seen: set[str] = set()
    for row in rows:
        text = (row.status_text or "").strip()
        if not text or text in seen:
            continue
        seen.add(text)
        if canonical_status(text, ctx.status_map) is CanonicalStatus.UNKNOWN:
            subject = " ".join(text.split()).casefold()
            if ctx.alerts.raise_alert(
                AlertKind.STATUS_UNKNOWN,
                subject,
                f"OrderWise status text {text!r} (order {row.ow_order_number or row.ow_order_id})"
                " is not in the status map; add it to the [orderwise] status_map setting",
                cause="unmapped",
                details={"status_text": text},
            ):
                raised += 1
    return raised


class ChangeFeed:
    """Reads the ``order_changes`` export from a watermark with an overlap window.

    The watermark is the latest OrderWise timestamp seen (OrderWise's own clock, the one its export
    filters on), kept under the store cursor ``name``; each read asks for rows since
    ``watermark - poll_overlap_seconds``. Before the first read it starts at the oldest order in the
    ledger. :meth:`commit` moves the watermark after the rows were recorded. A feed that has not been
    read successfully for ``sync_stalled_after_seconds`` raises :attr:`AlertKind.SYNC_STALLED`.
    A malformed row is skipped, counted ``bad_rows`` and alerted (see :mod:`.bad_rows`); the rows
    after it and the watermark go on.
    """

    def __init__(self, ctx: FlowContext, name: str, flow: str) -> None:
        self.ctx = ctx
        self.name = name
        self.flow = flow
        self._state: dict[str, Any] = {}
        self._rows: list[OrderChangeRow] = []
        self._read_at: datetime | None = None

    def _load(self) -> dict[str, Any]:
        raw = self.ctx.store.get_cursor(self.name)
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _save(self, state: Mapping[str, Any]) -> None:
        self.ctx.store.set_cursor(self.name, json.dumps(dict(state), sort_keys=True))

    @staticmethod
    def _time(state: Mapping[str, Any], key: str) -> datetime | None:
        value = state.get(key)
        return datetime.fromisoformat(value) if isinstance(value, str) else None

    def since(self, state: Mapping[str, Any], now: datetime) -> datetime:
        """Where the next read starts."""
        overlap = timedelta(seconds=self.ctx.flows.poll_overlap_seconds)
        watermark = self._time(state, "watermark")
        if watermark is not None:
            return watermark - overlap
        first = next(iter(self.ctx.store.records(kind=ORDER_KIND)), None)
        start = first.created_at if first is not None else now
        return start - overlap

    def read(self, result: SyncResult) -> list[OrderChangeRow] | None:
        """The rows since the watermark, or ``None`` when the export could not be read."""
        ctx = self.ctx
        state = self._load()
        now = ctx.clock()
        since = self.since(state, now)
        bad = BadRows(ctx, self.flow, result)
        try:
            rows = list(ctx.orderwise.iter_order_changes(since, on_invalid=bad))
        except ConnectorError as exc:
            result.add("poll_failed")
            result.errors.append(f"{self.name}: {type(exc).__name__}: {exc}")
            if "polled_at" not in state and "failing_since" not in state:
                state["failing_since"] = now.isoformat()
                self._save(state)
            self.check_stalled(now, state, str(exc))
            return None
        self._state, self._rows, self._read_at = state, rows, now
        result.add("rows_read", len(rows) + len(bad.rows))
        bad.finish()
        return rows

    def commit(self) -> None:
        """Advance the watermark past the rows of the last :meth:`read` and note the success."""
        if self._read_at is None:
            return
        state = self._state
        old = self._time(state, "watermark")
        seen = [
            t
            for row in self._rows
            for t in (row.last_amended, row.despatched_at, row.order_date)
            if t is not None
        ]
        if seen:
            newest = max(t.astimezone(UTC) for t in seen)
            watermark = max(newest, old) if old is not None else newest
        elif old is not None:
            watermark = old
        else:
            watermark = self.since(state, self._read_at) + timedelta(
                seconds=self.ctx.flows.poll_overlap_seconds
            )
        self._save({"watermark": watermark.isoformat(), "polled_at": self._read_at.isoformat()})
        self.ctx.alerts.resolve(AlertKind.SYNC_STALLED, self.flow)
        self._read_at = None

    def check_stalled(self, now: datetime, state: Mapping[str, Any], why: str) -> bool:
        """Raise :attr:`AlertKind.SYNC_STALLED` when the last good read is too old."""
        last = self._time(state, "polled_at") or self._time(state, "failing_since")
        if last is None:
            return False
        if now - last <= timedelta(seconds=self.ctx.flows.sync_stalled_after_seconds):
            return False
        return self.ctx.alerts.raise_alert(
            AlertKind.SYNC_STALLED,
            self.flow,
            f"the {self.flow} sync has not read OrderWise order changes since "
            f"{last:%Y-%m-%d %H:%M} UTC ({why})",
            cause="stalled",
            details={"cursor": self.name, "last_success": state.get("polled_at")},
        )
