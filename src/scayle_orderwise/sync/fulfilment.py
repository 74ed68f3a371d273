"""Despatches in OrderWise → shipments in SCAYLE, exactly once per package.

A pass has three steps:

1. **Poll** the ``order_changes`` export definition from a watermark (minus
   ``flows.poll_overlap_seconds``, so late commits are not missed). Every OrderWise delivery with a
   consignment number becomes one ledger record ``shipment:<SCAYLE order id>:<consignment>`` holding
   what OrderWise despatched (units per variant code, courier, time) and sent with
   ``shipmentKey`` = the consignment (the tracking number). Re-reading the same delivery in the
   overlap window finds the record already there. Status texts are mapped through the configured
   status map; an unknown text raises :attr:`AlertKind.STATUS_UNKNOWN` once. Odd cases:

   - **A consignment number used again** by a later delivery of the same order (a collection
     reference, a reused label): told apart by the OrderWise ``deliveryNumber``. The first delivery
     keeps the plain key; each further one gets ``shipment:<order>:<consignment>#<delivery number>``
     and ``shipmentKey`` ``<consignment>-<delivery number>`` (counted ``consignment_reused``): SCAYLE
     keys packages by ``shipmentKey``, so reusing the consignment would be taken for the first
     package. The storefront's tracking link of such a package carries the suffix. Without a
     ``deliveryNumber`` column deliveries cannot be told apart: units a known consignment gains are
     counted ``units_beyond_package`` and raise :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED`
     (subject ``<order>:<consignment>:more_units``) instead of being sent.
   - **A despatch without a consignment number** (a delivery number or despatch time but no
     consignment) cannot be sent: SCAYLE needs the ``shipmentKey``. It is counted
     ``no_consignment`` and parked as a ``quarantined`` record
     ``shipment:<order>:#<delivery number>`` (or ``#at-<despatch time>``); the watch step raises
     :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED` (subject ``<order>:no-consignment:<id>``, once)
     when it is older than ``flows.fulfilment_ack_timeout_seconds``, which leaves the warehouse
     time to enter the number. If the delivery shows up with a consignment later, it is recorded
     as a normal package and the parked record is cancelled (its alert resolved).
   - **Malformed rows** are skipped, counted ``bad_rows`` and alerted (see :mod:`.bad_rows`).
2. **Send** every due package: while the SCAYLE order is not acknowledged in the ledger (a despatch
   seen before the order push finished) the package waits. Otherwise the SCAYLE order is read: a
   package with the same ``shipmentKey`` already there is adopted (a lost response or a crash never
   sends twice), else the despatched units are mapped back to SCAYLE item ids through the lines the
   ledger kept at push time (variant code → item ids), skipping units that are shipped, cancelled
   or reserved by another package, and ``POST /fulfillment/shipments`` is sent with one item per
   unit (``returnKey`` = the item id). An unclear outcome leaves the record ``sent``; the next pass
   looks at the order's packages first.
3. **Watch**: a package not acknowledged by SCAYLE within ``flows.fulfilment_ack_timeout_seconds``
   raises :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED`; a change feed that has not been read
   successfully for ``flows.sync_stalled_after_seconds`` raises :attr:`AlertKind.SYNC_STALLED`.

The courier → SCAYLE carrier key mapping is :data:`DEFAULT_CARRIER_MAP` merged with
``FlowSettings.carrier_map``; unknown couriers use ``FlowSettings.default_carrier`` or the courier
name in upper case. The carrier keys are configured per SCAYLE tenant (``GET /carriers``), so check
the defaults against yours.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from ..alerts import AlertKind
from ..config import FlowSettings
from ..errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConnectorError,
    MappingError,
    NotFoundError,
    StoreError,
)
from ..mapping import parse_external_reference
from ..mapping.sku import variant_code_for
from ..orderwise.models import OrderChangeRow
from ..orderwise.statuses import CanonicalStatus, canonical_status, is_shipped
from ..scayle.models import Order
from ..store import Record, State
from .bad_rows import BadRows
from .context import FlowContext, SyncResult
from .orders import ORDER_KIND, order_key

__all__ = [
    "DEFAULT_CARRIER_MAP",
    "LOCK_KIND",
    "SHIPMENT_KIND",
    "ChangeFeed",
    "FulfilmentSync",
    "LedgerLine",
    "carrier_for",
    "claim_due",
    "hold_order",
    "ledger_lines",
    "note_unknown_statuses",
    "scayle_order_id",
    "shipment_key",
]

SHIPMENT_KIND = "shipment"
LOCK_KIND = "fulfilment_lock"
CURSOR = "fulfilment:order_changes"

DEFAULT_CARRIER_MAP: Mapping[str, str] = {
    "Royal Mail": "ROYAL_MAIL",
    "Parcelforce": "PARCELFORCE",
    "DPD": "DPD",
    "DHL": "DHL",
    "Evri": "EVRI",
    "Hermes": "HERMES",
    "UPS": "UPS",
    "FedEx": "FEDEX",
    "Yodel": "YODEL",
}
"""OrderWise courier names → SCAYLE carrier keys (a guess at common UK couriers; override it)."""

_OPEN_SHIPMENT_STATES = (State.PENDING, State.SENT, State.FAILED, State.IN_FLIGHT)
_NO_CONSIGNMENT_REASON = (
    "no_consignment: despatched in OrderWise without a consignment number; SCAYLE needs one as "
    "the shipmentKey. Enter it in OrderWise, or create the shipment in SCAYLE by hand"
)


def shipment_key(order_id: int | str, consignment: str, delivery_number: str | None = None) -> str:
    """The ledger key of one package: ``shipment:<SCAYLE order id>:<consignment>``, or with
    ``#<delivery number>`` appended for a further delivery under a consignment already recorded
    (and, with an empty consignment, for a despatch without a consignment number)."""
    base = f"shipment:{order_id}:{consignment}"
    return f"{base}#{delivery_number}" if delivery_number else base


def _courier_key(name: str) -> str:
    return re.sub(r"[^0-9a-z]", "", name.casefold())


def carrier_for(courier: str | None, flows: FlowSettings) -> str | None:
    """The SCAYLE carrier key of an OrderWise courier name (``None`` when nothing fits)."""
    table = {_courier_key(k): v for k, v in DEFAULT_CARRIER_MAP.items()}
    table.update({_courier_key(k): v for k, v in flows.carrier_map.items()})
    if courier and courier.strip():
        found = table.get(_courier_key(courier))
        if found:
            return found
        if flows.default_carrier:
            return flows.default_carrier
        return re.sub(r"\s+", "_", courier.strip()).upper()
    return flows.default_carrier


# ------------------------------------------------------------------------------ ledger → item ids


@attrs.frozen
class LedgerLine:
    """A line as pushed to OrderWise: SCAYLE SKU, OrderWise variant code and SCAYLE item ids."""

    sku: str
    variant_code: str
    item_ids: tuple[int, ...]


def _code_for(ctx: FlowContext, sku: str) -> str:
    try:
        return variant_code_for(sku, ctx.mapper.config)
    except MappingError:
        return sku


def _remap(ctx: FlowContext, order: Order) -> list[LedgerLine]:
    try:
        mapped = ctx.mapper.map(order)
        body = mapped.to_orderwise()
    except (MappingError, ValueError, TypeError):
        return []
    codes = {ol.e_commerce_item_id: ol.variant_code for ol in body.order_lines}
    return [
        LedgerLine(line.sku, codes.get(str(line.key)) or _code_for(ctx, line.sku), line.item_ids)
        for line in mapped.lines
    ]


def ledger_lines(ctx: FlowContext, order_record: Record | None, order: Order) -> list[LedgerLine]:
    """The lines of an order as pushed: from the order record's payload (``lines``), else by
    mapping the SCAYLE order again (the mapping is deterministic), else grouped by SKU."""
    raw = (order_record.payload or {}).get("lines") if order_record is not None else None
    entries = [
        e for e in (raw if isinstance(raw, list) else []) if isinstance(e, dict) and e.get("sku")
    ]
    if entries:
        remapped: dict[str, str] | None = None
        lines: list[LedgerLine] = []
        for entry in entries:
            sku = str(entry["sku"])
            code = entry.get("variant_code")
            if not isinstance(code, str) or not code:
                if remapped is None:
                    remapped = {ln.sku: ln.variant_code for ln in _remap(ctx, order)}
                code = remapped.get(sku) or _code_for(ctx, sku)
            ids = tuple(int(i) for i in entry.get("item_ids") or ())
            lines.append(LedgerLine(sku, code, ids))
        return lines
    mapped_lines = _remap(ctx, order)
    if mapped_lines:
        return mapped_lines
    groups: dict[str, list[int]] = {}
    for item in order.items or []:
        sku = (item.sku or "").strip()
        if sku:
            groups.setdefault(sku, []).append(item.id)
    return [LedgerLine(sku, _code_for(ctx, sku), tuple(sorted(ids))) for sku, ids in groups.items()]


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


# ------------------------------------------------------------------------------ shared machinery


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


def claim_due(ctx: FlowContext, kind: str) -> Iterator[list[Record]]:
    """Claim due records of ``kind`` in batches; each record is yielded once per pass.

    A record claimed again in the same pass (it became due again, e.g. ``sent`` after an unclear
    outcome) is released at once for the next pass.
    """
    seen: set[str] = set()
    while True:
        batch = ctx.store.claim_next(
            kind, owner=ctx.worker_id, lease=ctx.lease, limit=ctx.flows.batch_size
        )
        fresh = [r for r in batch if r.key not in seen]
        for record in batch:
            if record.key in seen:
                ctx.store.transition(
                    record.key,
                    State.SENT if record.may_have_been_sent else State.PENDING,
                    owner=ctx.worker_id,
                    reason="left for the next pass",
                )
        if not fresh:
            return
        seen.update(r.key for r in fresh)
        yield fresh


@contextmanager
def hold_order(ctx: FlowContext, order_id: int | str) -> Iterator[bool]:
    """Hold the per-order fulfilment lock (a ledger claim); yields ``False`` if another worker has it.

    Shipments and cancellations of one SCAYLE order choose item ids under this lock, so two workers
    never pick the same unit for two packages.
    """
    key = f"{LOCK_KIND}:{order_id}"
    ctx.store.ensure(key, kind=LOCK_KIND, subject=str(order_id))
    claimed = ctx.store.claim(key, owner=ctx.worker_id, lease=ctx.lease)
    if claimed is None:
        yield False
        return
    try:
        yield True
    finally:
        # If the lease ran out and another worker took the lock, there is nothing to release.
        with suppress(StoreError):
            ctx.store.transition(key, State.PENDING, owner=ctx.worker_id, reason="released")


def open_reservations(ctx: FlowContext, order_id: int, exclude: str | None = None) -> set[int]:
    """Item ids held by packages of ``order_id`` that may have been (or are being) sent."""
    taken: set[int] = set()
    for record in ctx.store.records(states=_OPEN_SHIPMENT_STATES, kind=SHIPMENT_KIND):
        if record.subject != str(order_id) or record.key == exclude:
            continue
        taken.update(int(i) for i in (record.payload or {}).get("item_ids") or ())
    return taken


# ------------------------------------------------------------------------------------- the flow


@attrs.define
class _Delivery:
    order_id: int
    consignment: str
    ow_order_id: int | None
    ow_order_number: str | None
    reference: str | None
    courier: str | None
    despatched_at: datetime | None
    tracking_url: str | None
    status_text: str | None
    delivery_numbers: set[str] = attrs.field(factory=set)
    units: dict[str, int] | None = attrs.field(factory=dict)
    lines_seen: set[tuple[str, str]] = attrs.field(factory=set)

    def add(self, row: OrderChangeRow) -> None:
        if row.delivery_number:
            self.delivery_numbers.add(row.delivery_number)
        when = row.despatched_at
        if when is not None and (self.despatched_at is None or when > self.despatched_at):
            self.despatched_at = when
        self.courier = self.courier or row.courier
        self.tracking_url = self.tracking_url or row.tracking_url
        if self.units is None:
            return
        if row.variant_code is None or row.quantity_in_delivery is None:
            self.units = None  # no line detail: "everything still to send"
            return
        line_id = str(row.item_number) if row.item_number is not None else row.variant_code
        marker = (row.delivery_number or "", line_id)
        if marker in self.lines_seen:
            return
        self.lines_seen.add(marker)
        qty = whole_units(row.quantity_in_delivery)
        if qty:
            self.units[row.variant_code] = self.units.get(row.variant_code, 0) + qty

    @property
    def number(self) -> str:
        """The OrderWise delivery number ("" when the export has none)."""
        return min(self.delivery_numbers, key=_delivery_sort_key, default="")

    @property
    def despatch_id(self) -> str:
        """What tells this despatch apart without a consignment: the delivery number, else the
        despatch time."""
        if self.number:
            return self.number
        return f"at-{self.despatched_at.isoformat()}" if self.despatched_at else "unknown"

    def payload(self, package_key: str | None = None) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "consignment": self.consignment or None,
            "shipment_key": package_key,
            "ow_order_id": self.ow_order_id,
            "ow_order_number": self.ow_order_number,
            "reference": self.reference,
            "courier": self.courier,
            "despatched_at": self.despatched_at.isoformat() if self.despatched_at else None,
            "tracking_url": self.tracking_url,
            "status_text": self.status_text,
            "delivery_numbers": sorted(self.delivery_numbers),
            "units": dict(sorted(self.units.items())) if self.units is not None else None,
        }


def _delivery_sort_key(number: str) -> tuple[int, int, str]:
    """Delivery numbers in OrderWise's order (numerically when they are numbers)."""
    text = number.strip()
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


class _Skip(Exception):
    """Internal: the package was dealt with (deferred, quarantined ...); stop processing it."""


class FulfilmentSync:
    """One pass of the fulfilment flow; see the module docstring."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.feed = ChangeFeed(ctx, CURSOR, "fulfilment")

    def run(self) -> SyncResult:
        """Poll despatches, send due packages, raise alerts for unacknowledged ones."""
        result = SyncResult("fulfilments")
        rows = self.feed.read(result)
        if rows is not None:
            self.record_deliveries(rows, result)
            self.feed.commit()
        self.send_due(result)
        self.check_unacknowledged(result)
        return result

    # ------------------------------------------------------------------------------------ poll

    def record_deliveries(self, rows: Sequence[OrderChangeRow], result: SyncResult) -> None:
        """One ledger record per OrderWise delivery with a consignment found in ``rows``
        (idempotent); a despatch without a consignment is counted and parked (see the module
        docstring)."""
        ctx = self.ctx
        if note_unknown_statuses(ctx, rows):
            result.add("unknown_status_alerts")
        deliveries: dict[tuple[int, str, str], _Delivery] = {}
        for row in rows:
            despatched = row.delivery_number or row.despatched_at is not None
            if not row.has_consignment and not despatched:
                continue  # a line not (yet) in a delivery
            order_id = scayle_order_id(ctx, row)
            if order_id is None:
                result.add("not_ours")
                continue
            consignment = (row.consignment or "").strip() if row.has_consignment else ""
            group = (order_id, consignment, (row.delivery_number or "").strip())
            if not consignment and not group[2]:
                # Without a delivery number the despatch time tells despatches apart.
                when = row.despatched_at.isoformat() if row.despatched_at else ""
                group = (order_id, "", f"at-{when}")
            delivery = deliveries.get(group)
            if delivery is None:
                delivery = _Delivery(
                    order_id=order_id,
                    consignment=consignment,
                    ow_order_id=row.ow_order_id,
                    ow_order_number=row.ow_order_number,
                    reference=row.external_ref,
                    courier=row.courier,
                    despatched_at=row.despatched_at,
                    tracking_url=row.tracking_url,
                    status_text=row.status_text,
                )
                deliveries[group] = delivery
            delivery.add(row)
        per_consignment: dict[tuple[int, str], list[_Delivery]] = {}
        for (order_id, consignment, _number), delivery in deliveries.items():
            if not consignment:
                self._record_without_consignment(delivery, result)
                continue
            per_consignment.setdefault((order_id, consignment), []).append(delivery)
        for (order_id, consignment), group_deliveries in per_consignment.items():
            self._record_consignment(order_id, consignment, group_deliveries, result)

    def _record_consignment(
        self, order_id: int, consignment: str, deliveries: list[_Delivery], result: SyncResult
    ) -> None:
        """Record the deliveries sharing one consignment number, the first one under the plain
        key and shipmentKey, each further one under ``#<delivery number>``."""
        ctx = self.ctx
        base = shipment_key(order_id, consignment)
        first = ctx.store.get(base)
        for delivery in sorted(deliveries, key=lambda d: _delivery_sort_key(d.number)):
            self._consignment_arrived(delivery)
            if first is None:
                first = ctx.store.ensure(
                    base,
                    kind=SHIPMENT_KIND,
                    subject=str(order_id),
                    payload=delivery.payload(consignment),
                    reason="despatched in OrderWise",
                )
                if first.payload == delivery.payload(consignment):
                    result.add("packages_recorded")
                    ctx.log("fulfilment.recorded", order_id=order_id, consignment=consignment)
                    continue
            known = [str(n) for n in (first.payload or {}).get("delivery_numbers") or ()]
            if not delivery.number or not known:
                self._check_more_units(first, delivery, result)  # cannot tell deliveries apart
                continue
            if delivery.number in known:
                continue
            key = shipment_key(order_id, consignment, delivery.number)
            if ctx.store.get(key) is not None:
                continue
            package_key = f"{consignment}-{delivery.number}"
            ctx.store.ensure(
                key,
                kind=SHIPMENT_KIND,
                subject=str(order_id),
                payload=delivery.payload(package_key),
                reason=f"despatched in OrderWise (delivery {delivery.number}, a further package "
                f"under consignment {consignment}: shipmentKey {package_key})",
            )
            result.add("packages_recorded")
            result.add("consignment_reused")
            ctx.log(
                "fulfilment.recorded",
                order_id=order_id,
                consignment=consignment,
                delivery=delivery.number,
                shipment_key=package_key,
            )

    def _check_more_units(self, record: Record, delivery: _Delivery, result: SyncResult) -> None:
        """Without delivery numbers a second despatch under a known consignment cannot be told
        apart: alert when the consignment now holds units the recorded package does not."""
        recorded = (record.payload or {}).get("units")
        if recorded is None or delivery.units is None:
            return
        extra = {
            code: qty - int(recorded.get(code, 0))
            for code, qty in sorted(delivery.units.items())
            if qty > int(recorded.get(code, 0))
        }
        if not extra:
            return
        result.add("units_beyond_package", sum(extra.values()))
        self.ctx.alerts.raise_alert(
            AlertKind.FULFILMENT_UNACKNOWLEDGED,
            f"{record.subject}:{delivery.consignment}:more_units",
            f"consignment {delivery.consignment} of order {record.subject} now holds units the "
            f"package sent for it does not ({extra}); the export has no delivery numbers, so they "
            "were not sent to SCAYLE: ship them by hand or add deliveryNumber to the export",
            cause="more_units:" + ",".join(f"{k}={v}" for k, v in extra.items()),
            details={"order_id": record.subject, "consignment": delivery.consignment},
        )

    def _record_without_consignment(self, delivery: _Delivery, result: SyncResult) -> None:
        """Park a despatch without a consignment number as a quarantined record; the watch step
        alerts on it after ``flows.fulfilment_ack_timeout_seconds``."""
        ctx = self.ctx
        result.add("no_consignment")
        key = shipment_key(delivery.order_id, "", delivery.despatch_id)
        if ctx.store.get(key) is not None:
            return
        ctx.store.ensure(
            key,
            kind=SHIPMENT_KIND,
            subject=str(delivery.order_id),
            payload={
                **delivery.payload(None),
                "no_consignment": True,
                "despatch_id": delivery.despatch_id,
            },
            state=State.QUARANTINED,
            reason=_NO_CONSIGNMENT_REASON,
        )
        ctx.log(
            "fulfilment.no_consignment", order_id=delivery.order_id, despatch=delivery.despatch_id
        )

    def _consignment_arrived(self, delivery: _Delivery) -> None:
        """A despatch parked without a consignment now has one: close the parked record."""
        ctx = self.ctx
        parked = ctx.store.get(shipment_key(delivery.order_id, "", delivery.despatch_id))
        if parked is None or parked.state != State.QUARANTINED:
            return
        with suppress(StoreError):
            ctx.store.mark(
                parked.key,
                State.CANCELLED,
                reason=f"consignment {delivery.consignment} arrived; recorded as its package",
            )
        ctx.alerts.resolve(AlertKind.FULFILMENT_UNACKNOWLEDGED, _subject(parked))

    # ------------------------------------------------------------------------------------ send

    def send_due(self, result: SyncResult) -> None:
        """Claim due packages and send them, grouped per SCAYLE order."""
        for batch in claim_due(self.ctx, SHIPMENT_KIND):
            by_order: dict[str, list[Record]] = {}
            for record in batch:
                by_order.setdefault(record.subject, []).append(record)
            for order_id, records in by_order.items():
                self._send_order(int(order_id), records, result)

    def _send_order(self, order_id: int, records: list[Record], result: SyncResult) -> None:
        ctx = self.ctx
        order_record = ctx.store.get(order_key(order_id))
        if order_record is None or order_record.state != State.ACKNOWLEDGED:
            state = order_record.state if order_record is not None else "unknown"
            for record in records:
                self.ctx.defer(record, f"the order is not acknowledged in the ledger yet ({state})")
                result.add("deferred")
            return
        with hold_order(ctx, order_id) as held:
            if not held:
                for record in records:
                    self.ctx.defer(record, "another worker holds this order", delay=False)
                    result.add("deferred")
                return
            order: Order | None = None
            taken: set[int] | None = None
            for record in sorted(records, key=lambda r: r.created_at):
                try:
                    if order is None:
                        order = ctx.scayle.get_order(order_id)
                        taken = open_reservations(ctx, order_id)
                    assert taken is not None
                    self._send_one(record, order_record, order, taken, result)
                except _Skip:
                    continue
                except AuthenticationError:
                    self.ctx.release(record, "authentication failed; the pass stops")
                    raise
                except ConfigError:
                    self.ctx.release(record, "configuration error; the pass stops")
                    raise
                except NotFoundError:
                    self._quarantine(record, "order_not_found: the order does not exist in SCAYLE")
                    result.add("quarantined")
                except Exception as exc:  # a pass never dies on one bad package
                    ctx.release_after_error(record, exc, result)

    def _send_one(
        self,
        record: Record,
        order_record: Record,
        order: Order,
        taken: set[int],
        result: SyncResult,
    ) -> None:
        ctx = self.ctx
        data = record.payload or {}
        if data.get("no_consignment"):  # released by a person: still nothing to send it under
            self._quarantine(record, _NO_CONSIGNMENT_REASON)
            result.add("quarantined")
            return
        consignment = _package_key(record)  # the shipmentKey SCAYLE gets for this package

        # 1. Already in SCAYLE (a lost answer, a crash, or someone else sent it): adopt it.
        package = next((p for p in order.packages if p.shipment_key == consignment), None)
        if package is not None:
            ids = [
                i.id for i in order.items if package.id is not None and i.package_id == package.id
            ]
            ids = ids or [int(i) for i in data.get("item_ids") or ()]
            taken.update(ids)
            self._acknowledge(record, consignment, ids, "found in SCAYLE's packages; adopted")
            result.add("adopted")
            return

        # 2. Which units: what was reserved before an unclear outcome, else chosen now.
        shipped_or_cancelled = {i.id for i in order.items if i.is_shipped or i.is_cancelled}
        reserved = [int(i) for i in data.get("item_ids") or ()]
        if record.may_have_been_sent and reserved:
            items = [i for i in reserved if i not in shipped_or_cancelled]
            shortfall: dict[str, int] = dict(data.get("shortfall") or {})
        else:
            unavailable = (taken - set(reserved)) | shipped_or_cancelled
            items, shortfall = self._choose_items(record, order_record, order, unavailable)
        if not items:
            ctx.store.transition(
                record.key,
                State.CANCELLED,
                owner=ctx.worker_id,
                reason="nothing to ship: the units are already shipped or cancelled in SCAYLE",
                payload={**data, "item_ids": [], "shortfall": shortfall},
            )
            ctx.alerts.resolve(AlertKind.FULFILMENT_UNACKNOWLEDGED, _subject(record))
            result.add("nothing_to_ship")
            return

        carrier = carrier_for(data.get("courier"), ctx.flows)
        if carrier is None:
            self._quarantine(
                record,
                "no_carrier: the despatch names no courier and no default_carrier is configured",
            )
            result.add("quarantined")
            return

        # 3. Send, keeping the chosen units with the record if the outcome is unclear.
        taken.update(items)
        sent = {**data, "item_ids": items, "shortfall": shortfall, "carrier": carrier}
        when = data.get("despatched_at")
        try:
            ctx.scayle.create_shipment(
                int(record.subject),
                items,
                carrier=carrier,
                shipment_key=consignment,
                delivery_date=datetime.fromisoformat(when).astimezone(UTC) if when else None,
            )
        except AmbiguousOutcomeError as exc:
            ctx.store.transition(
                record.key,
                State.SENT,
                owner=ctx.worker_id,
                reason=f"outcome unclear ({exc}); look at the order's packages before re-sending",
                payload={**sent, "sent_at": ctx.clock().isoformat()},
            )
            result.add("ambiguous")
            return
        except BadRequestError as exc:
            taken.difference_update(items)
            self._quarantine(record, f"rejected_by_scayle: {exc}", payload=sent)
            result.add("quarantined")
            return
        except NotFoundError:
            raise
        except ConnectorError:
            taken.difference_update(items)
            raise
        self._acknowledge(record, consignment, items, "shipment created in SCAYLE", sent)
        result.add("shipped")
        if shortfall:  # despatched units the ledger cannot match (e.g. a substituted variant)
            result.add("units_unmatched", sum(shortfall.values()))
            ctx.log("fulfilment.units_unmatched", key=record.key, shortfall=shortfall)

    def _choose_items(
        self, record: Record, order_record: Record, order: Order, unavailable: set[int]
    ) -> tuple[list[int], dict[str, int]]:
        data = record.payload or {}
        units = data.get("units")
        lines = ledger_lines(self.ctx, order_record, order)
        if units is None:
            status = canonical_status(data.get("status_text"), self.ctx.status_map)
            if not is_shipped(status):
                self._quarantine(
                    record,
                    "no_line_detail: the despatch has no line quantities and the order is only "
                    "partly despatched; add line columns to the order_changes export",
                )
                raise _Skip
            all_ids = [i for line in lines for i in line.item_ids if i not in unavailable]
            return sorted(set(all_ids), key=all_ids.index), {}
        chosen: list[int] = []
        shortfall: dict[str, int] = {}
        services = _service_codes(self.ctx)
        for code, qty in sorted(units.items()):
            if code in services:  # delivery and fee service lines carry no SCAYLE units
                continue
            pool = [
                i
                for line in lines
                if line.variant_code == code
                for i in line.item_ids
                if i not in unavailable and i not in chosen
            ]
            chosen.extend(pool[: int(qty)])
            if len(pool) < int(qty):
                shortfall[code] = int(qty) - len(pool)
        return chosen, shortfall

    # --------------------------------------------------------------------------------- helpers

    def _acknowledge(
        self,
        record: Record,
        consignment: str,
        items: list[int],
        reason: str,
        payload: Mapping[str, Any] | None = None,
    ) -> None:
        ctx = self.ctx
        data = dict(payload if payload is not None else record.payload or {})
        data["item_ids"] = items
        data["acknowledged_at"] = ctx.clock().isoformat()
        ctx.store.transition(
            record.key,
            State.ACKNOWLEDGED,
            owner=ctx.worker_id,
            reason=reason,
            external_id=consignment,
            payload=data,
        )
        ctx.alerts.resolve(AlertKind.FULFILMENT_UNACKNOWLEDGED, _subject(record))
        ctx.log("fulfilment.acknowledged", key=record.key, items=len(items))

    def _quarantine(
        self, record: Record, reason: str, payload: Mapping[str, Any] | None = None
    ) -> None:
        ctx = self.ctx
        ctx.store.transition(
            record.key, State.QUARANTINED, owner=ctx.worker_id, reason=reason, payload=payload
        )
        ctx.alerts.raise_alert(
            AlertKind.FULFILMENT_UNACKNOWLEDGED,
            _subject(record),
            f"package {_package_key(record)} of order {record.subject} was not sent to SCAYLE: "
            f"{reason}",
            cause=str(State.QUARANTINED),
            details={"order_id": record.subject, "consignment": _consignment(record)},
        )

    # ----------------------------------------------------------------------------------- watch

    def check_unacknowledged(self, result: SyncResult) -> None:
        """Alert on packages SCAYLE has not acknowledged within the configured time."""
        ctx = self.ctx
        limit = timedelta(seconds=ctx.flows.fulfilment_ack_timeout_seconds)
        now = ctx.clock()
        states = (*_OPEN_SHIPMENT_STATES, State.QUARANTINED)
        for record in ctx.store.records(states=states, kind=SHIPMENT_KIND):
            if now - record.created_at <= limit:
                continue
            age = int((now - record.created_at).total_seconds())
            data = record.payload or {}
            if data.get("no_consignment"):
                number = data.get("ow_order_number") or data.get("reference") or "?"
                message = (
                    f"order {record.subject} (OrderWise {number}) has a despatch "
                    f"({data.get('despatch_id')}) without a consignment number for {age} s: SCAYLE "
                    "does not know those units shipped. Enter the consignment in OrderWise, or "
                    "create the shipment in SCAYLE by hand"
                )
                cause = "no_consignment"
            else:
                message = (
                    f"package {_package_key(record)} of order {record.subject} despatched in "
                    f"OrderWise is not acknowledged by SCAYLE after {age} s ({record.state}: "
                    f"{record.reason or 'no reason recorded'})"
                )
                cause = str(record.state)
            if ctx.alerts.raise_alert(
                AlertKind.FULFILMENT_UNACKNOWLEDGED,
                _subject(record),
                message,
                cause=cause,
                details={"order_id": record.subject, "consignment": data.get("consignment")},
            ):
                result.add("unacknowledged_alerts")


def _consignment(record: Record) -> str:
    return str((record.payload or {}).get("consignment") or record.key.split(":", 2)[-1])


def _package_key(record: Record) -> str:
    """The package's SCAYLE ``shipmentKey``: the consignment, or ``<consignment>-<delivery>`` for a
    further delivery under a consignment already used."""
    data = record.payload or {}
    return str(data.get("shipment_key") or _consignment(record))


def _subject(record: Record) -> str:
    data = record.payload or {}
    if data.get("no_consignment"):
        return f"{record.subject}:no-consignment:{data.get('despatch_id')}"
    return f"{record.subject}:{_package_key(record)}"


def _service_codes(ctx: FlowContext) -> frozenset[str]:
    """OrderWise codes of the service lines the mapper adds (delivery parts and fees)."""
    config = ctx.mapper.config
    codes = set(config.fee_variant_codes.values())
    if config.delivery_variant_code is not None:
        codes.add(config.delivery_variant_code)
    return frozenset(codes)
