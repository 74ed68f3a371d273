"""Package bookkeeping: OrderWise despatches → one ledger record per package.

Every OrderWise delivery with a consignment number becomes one ledger record
``shipment:<SCAYLE order id>:<consignment>`` holding what OrderWise despatched (units per variant
code, courier, time); the consignment is the package's SCAYLE ``shipmentKey``. Re-reading the same
delivery in the feed's overlap window finds the record already there. The odd cases (a consignment
number used again, a despatch without one) are described in :mod:`..fulfilment`.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from datetime import datetime
from typing import Any

import attrs

from ...alerts import AlertKind
from ...errors import StoreError
from ...orderwise.models import OrderChangeRow
from ...store import Record, State
from ..change_feed import note_unknown_statuses, scayle_order_id, whole_units
from ..context import FlowContext, SyncResult
from ..order_units import SHIPMENT_KIND

__all__ = [
    "NO_CONSIGNMENT_REASON",
    "Despatch",
    "PackageBook",
    "consignment_of",
    "package_key",
    "package_subject",
    "shipment_key",
]

NO_CONSIGNMENT_REASON = (
    "no_consignment: despatched in OrderWise without a consignment number; SCAYLE needs one as "
    "the shipmentKey. Enter it in OrderWise, or create the shipment in SCAYLE by hand"
)


def shipment_key(order_id: int | str, consignment: str, delivery_number: str | None = None) -> str:
    """The ledger key of one package: ``shipment:<SCAYLE order id>:<consignment>``, or with
    ``#<delivery number>`` appended for a further delivery under a consignment already recorded
    (and, with an empty consignment, for a despatch without a consignment number)."""
    base = f"shipment:{order_id}:{consignment}"
    return f"{base}#{delivery_number}" if delivery_number else base


def consignment_of(record: Record) -> str:
    """The OrderWise consignment number of a package record."""
    return str((record.payload or {}).get("consignment") or record.key.split(":", 2)[-1])


def package_key(record: Record) -> str:
    """The package's SCAYLE ``shipmentKey``: the consignment, or ``<consignment>-<delivery>`` for a
    further delivery under a consignment already used."""
    data = record.payload or {}
    return str(data.get("shipment_key") or consignment_of(record))


def package_subject(record: Record) -> str:
    """The subject of the :attr:`AlertKind.FULFILMENT_UNACKNOWLEDGED` alert about a package."""
    data = record.payload or {}
    if data.get("no_consignment"):
        return f"{record.subject}:no-consignment:{data.get('despatch_id')}"
    return f"{record.subject}:{package_key(record)}"


def _delivery_sort_key(number: str) -> tuple[int, int, str]:
    """Delivery numbers in OrderWise's order (numerically when they are numbers)."""
    text = number.strip()
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


@attrs.define
class Despatch:
    """One OrderWise delivery of a SCAYLE order, gathered from its export rows."""

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
        """Take in one more export row of this delivery."""
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
        """The package record's payload."""
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


class PackageBook:
    """Records despatches read from OrderWise as package records (idempotent)."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

    def record_deliveries(self, rows: Sequence[OrderChangeRow], result: SyncResult) -> None:
        """One ledger record per OrderWise delivery with a consignment found in ``rows``
        (idempotent); a despatch without a consignment is counted and parked (see
        :mod:`..fulfilment`)."""
        ctx = self.ctx
        if note_unknown_statuses(ctx, rows):
            result.add("unknown_status_alerts")
        deliveries: dict[tuple[int, str, str], Despatch] = {}
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
                delivery = Despatch(
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
        per_consignment: dict[tuple[int, str], list[Despatch]] = {}
        for (order_id, consignment, _number), delivery in deliveries.items():
            if not consignment:
                self._record_without_consignment(delivery, result)
                continue
            per_consignment.setdefault((order_id, consignment), []).append(delivery)
        for (order_id, consignment), group_deliveries in per_consignment.items():
            self._record_consignment(order_id, consignment, group_deliveries, result)

    def _record_consignment(
        self, order_id: int, consignment: str, deliveries: list[Despatch], result: SyncResult
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
            further_key = f"{consignment}-{delivery.number}"
            ctx.store.ensure(
                key,
                kind=SHIPMENT_KIND,
                subject=str(order_id),
                payload=delivery.payload(further_key),
                reason=f"despatched in OrderWise (delivery {delivery.number}, a further package "
                f"under consignment {consignment}: shipmentKey {further_key})",
            )
            result.add("packages_recorded")
            result.add("consignment_reused")
            ctx.log(
                "fulfilment.recorded",
                order_id=order_id,
                consignment=consignment,
                delivery=delivery.number,
                shipment_key=further_key,
            )

    def _check_more_units(self, record: Record, delivery: Despatch, result: SyncResult) -> None:
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

    def _record_without_consignment(self, delivery: Despatch, result: SyncResult) -> None:
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
            reason=NO_CONSIGNMENT_REASON,
        )
        ctx.log(
            "fulfilment.no_consignment", order_id=delivery.order_id, despatch=delivery.despatch_id
        )

    def _consignment_arrived(self, delivery: Despatch) -> None:
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
        ctx.alerts.resolve(AlertKind.FULFILMENT_UNACKNOWLEDGED, package_subject(parked))
