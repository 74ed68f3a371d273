"""SCAYLE shipments: send every due package record once, as ``POST /fulfillment/shipments``.

While the SCAYLE order is not acknowledged in the ledger (a despatch seen before the order push
finished) the package waits. Otherwise the SCAYLE order is read: a package with the same
``shipmentKey`` already there is adopted (a lost response or a crash never sends twice), else the
despatched units are mapped back to SCAYLE item ids through the lines the ledger kept at push time
(variant code → item ids), skipping units that are shipped, cancelled or reserved by another
package, and the shipment is sent with one item per unit (``returnKey`` = the item id). An unclear
outcome leaves the record ``sent``; the next pass looks at the order's packages first.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from ...alerts import AlertKind
from ...errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConnectorError,
    NotFoundError,
)
from ...orderwise.statuses import canonical_status, is_shipped
from ...scayle.models import Order
from ...store import Record, State
from ..claims import claim_due
from ..context import FlowContext, SyncResult
from ..order_hold import hold_order
from ..order_units import SHIPMENT_KIND, ledger_lines, removed_item_ids, service_codes
from ..orders import order_key
from .carriers import carrier_for
from .packages import NO_CONSIGNMENT_REASON, consignment_of, package_key, package_subject

__all__ = ["ShipmentSender"]


class _Skip(Exception):
    """Internal: the package was dealt with (deferred, quarantined ...); stop processing it."""


class ShipmentSender:
    """Sends the due package records of one pass to SCAYLE."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx

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
                ctx.defer(record, f"the order is not acknowledged in the ledger yet ({state})")
                result.add("deferred")
            return
        with hold_order(ctx, order_id) as hold:
            if hold is None:
                for record in records:
                    ctx.defer(record, "another worker holds this order", delay=False)
                    result.add("deferred")
                return
            for record in records:
                hold.note(record.key)  # before any item id is written to it
            order: Order | None = None
            taken: set[int] | None = None
            for record in sorted(records, key=lambda r: r.created_at):
                try:
                    if order is None:
                        order = ctx.scayle.get_order(order_id)
                        taken = hold.reservations()
                    assert taken is not None
                    self._send_one(record, order_record, order, taken, result)
                except _Skip:
                    continue
                except AuthenticationError:
                    ctx.release(record, "authentication failed; the pass stops")
                    raise
                except ConfigError:
                    ctx.release(record, "configuration error; the pass stops")
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
            self._quarantine(record, NO_CONSIGNMENT_REASON)
            result.add("quarantined")
            return
        consignment = package_key(record)  # the shipmentKey SCAYLE gets for this package

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
        shipped_or_cancelled = order.shipped_item_ids() | {
            i.id for i in order.items if i.is_cancelled
        }
        reserved = [int(i) for i in data.get("item_ids") or ()]
        present = {i.id for i in order.items}  # SCAYLE removes units out of stock at delegation
        if record.may_have_been_sent and reserved:
            items = [i for i in reserved if i not in shipped_or_cancelled and i in present]
            shortfall: dict[str, int] = dict(data.get("shortfall") or {})
        else:
            unavailable = (taken - set(reserved)) | shipped_or_cancelled
            unavailable |= removed_item_ids(order_record, order)
            items, shortfall = self._choose_items(record, order_record, order, unavailable)
        if not items:
            ctx.store.transition(
                record.key,
                State.CANCELLED,
                owner=ctx.worker_id,
                reason="nothing to ship: the units are already shipped or cancelled in SCAYLE",
                payload={**data, "item_ids": [], "shortfall": shortfall},
            )
            ctx.alerts.resolve(AlertKind.FULFILMENT_UNACKNOWLEDGED, package_subject(record))
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
        services = service_codes(self.ctx)
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
        ctx.alerts.resolve(AlertKind.FULFILMENT_UNACKNOWLEDGED, package_subject(record))
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
            package_subject(record),
            f"package {package_key(record)} of order {record.subject} was not sent to SCAYLE: "
            f"{reason}",
            cause=str(State.QUARANTINED),
            details={"order_id": record.subject, "consignment": consignment_of(record)},
        )
