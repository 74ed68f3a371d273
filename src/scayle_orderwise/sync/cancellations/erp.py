"""OrderWise → SCAYLE: orders and lines cancelled in OrderWise, cancelled in SCAYLE always.

An order or line cancelled in OrderWise (``order_changes`` rows whose status maps to
``CANCELLED`` or whose lines carry ``quantityCancelled``) becomes one record per cancelled state,
``cancellation:erp:<SCAYLE order id>:<OrderWise order id>:<fingerprint>``, and one
``POST /fulfillment/cancellations`` of the units not yet shipped or cancelled in SCAYLE (mapped back
to item ids through the lines the ledger kept at push time). Only the OrderWise order the ledger
links to the SCAYLE order counts (cancelling a duplicate in OrderWise cancels nothing in SCAYLE).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from ...alerts import AlertKind
from ...errors import AmbiguousOutcomeError, BadRequestError
from ...orderwise.models import OrderChangeRow
from ...orderwise.statuses import CanonicalStatus, canonical_status
from ...scayle.models import Order
from ...store import Record, State
from ..change_feed import note_unknown_statuses, scayle_order_id, whole_units
from ..context import FlowContext, SyncResult
from ..order_hold import hold_order
from ..order_units import ledger_lines
from ..orders import order_key
from .outcomes import Done, Outcomes
from .records import CANCELLATION_KIND, erp_cancellation_key

__all__ = ["ErpCancellations"]


def _fingerprint(cancelled: Mapping[str, int] | None) -> str:
    text = (
        "all" if cancelled is None else ",".join(f"{k}={v}" for k, v in sorted(cancelled.items()))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class ErpCancellations:
    """Records and processes cancellations made in OrderWise."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.end = Outcomes(ctx)

    def record(self, rows: Sequence[OrderChangeRow], result: SyncResult) -> None:
        """One record per cancelled state of each OrderWise order in ``rows`` (idempotent)."""
        ctx = self.ctx
        if note_unknown_statuses(ctx, rows):
            result.add("unknown_status_alerts")
        orders: dict[int, list[OrderChangeRow]] = {}
        for row in rows:
            if row.ow_order_id is not None:
                orders.setdefault(row.ow_order_id, []).append(row)
        for ow_order_id, group in orders.items():
            order_id = scayle_order_id(ctx, group[0])
            if order_id is None:
                continue
            status = canonical_status(group[0].status_text, ctx.status_map)
            per_line: dict[str, tuple[str, int]] = {}
            has_lines = False
            for row in group:
                if row.variant_code is None or row.quantity_cancelled is None:
                    continue
                has_lines = True
                line_id = str(row.item_number) if row.item_number is not None else row.variant_code
                per_line[line_id] = (row.variant_code, whole_units(row.quantity_cancelled))
            cancelled: dict[str, int] | None = {}
            for code, qty in per_line.values():
                if qty and cancelled is not None:
                    cancelled[code] = cancelled.get(code, 0) + qty
            if status is CanonicalStatus.CANCELLED and not has_lines:
                cancelled = None  # no line detail: the whole order
            elif not cancelled:
                continue
            key = erp_cancellation_key(order_id, ow_order_id, _fingerprint(cancelled))
            if ctx.store.get(key) is not None:
                continue
            ctx.store.ensure(
                key,
                kind=CANCELLATION_KIND,
                subject=str(order_id),
                payload={
                    "direction": "erp",
                    "order_id": order_id,
                    "ow_order_id": ow_order_id,
                    "ow_order_number": group[0].ow_order_number,
                    "status_text": group[0].status_text,
                    "cancelled": cancelled,
                },
                reason="cancelled in OrderWise",
            )
            result.add("erp_cancellations_found")

    def process(self, record: Record, result: SyncResult) -> None:
        """Take one claimed OrderWise cancellation as far as it goes (raises :class:`Done` when
        the record reached its outcome)."""
        ctx = self.ctx
        order_id = int(record.subject)
        data = dict(record.payload or {})
        order_record = ctx.store.get(order_key(order_id))
        if order_record is None or order_record.state != State.ACKNOWLEDGED:
            state = order_record.state if order_record is not None else "unknown"
            ctx.defer(record, f"the order is not acknowledged in the ledger yet ({state})")
            result.add("deferred")
            raise Done
        if str(data.get("ow_order_id")) != str(order_record.external_id):
            ctx.store.transition(
                record.key,
                State.CANCELLED,
                owner=ctx.worker_id,
                reason=f"OrderWise order {data.get('ow_order_id')} is not the one linked to this "
                f"SCAYLE order ({order_record.external_id}); nothing cancelled in SCAYLE",
            )
            result.add("other_orderwise_order")
            raise Done
        with hold_order(ctx, order_id) as hold:
            if hold is None:
                ctx.defer(record, "another worker holds this order", delay=False)
                result.add("deferred")
                raise Done
            order = ctx.scayle.get_order(order_id)
            reserved = hold.reservations()
            items = self._units_to_cancel(order_record, order, data.get("cancelled"), reserved)
            if not items:
                self.end.finish(
                    record,
                    "nothing to cancel: the units are already cancelled or shipped in SCAYLE",
                    {**data, "item_ids": []},
                    result,
                    "nothing_to_cancel",
                )
            try:
                ctx.scayle.create_cancellation(order_id, items)
            except AmbiguousOutcomeError as exc:
                ctx.store.transition(
                    record.key,
                    State.SENT,
                    owner=ctx.worker_id,
                    reason=f"outcome unclear ({exc}); the order is read again before re-sending",
                    payload={**data, "item_ids": items},
                )
                result.add("ambiguous")
                return
            except BadRequestError as exc:
                ctx.store.transition(
                    record.key,
                    State.QUARANTINED,
                    owner=ctx.worker_id,
                    reason=f"rejected_by_scayle: {exc}",
                    payload={**data, "item_ids": items},
                )
                ctx.alerts.raise_alert(
                    AlertKind.FULFILMENT_UNACKNOWLEDGED,
                    f"{order_id}:cancellation",
                    f"SCAYLE refused the cancellation of items {items} of order {order_id}: {exc}",
                    cause="rejected",
                    details={"order_id": order_id, "item_ids": items},
                )
                result.add("quarantined")
                return
            self.end.finish(
                record,
                f"cancelled {len(items)} unit(s) in SCAYLE",
                {**data, "item_ids": items},
                result,
                "cancelled_in_scayle",
            )

    def _units_to_cancel(
        self,
        order_record: Record,
        order: Order,
        cancelled: Mapping[str, int] | None,
        reserved: set[int],
    ) -> list[int]:
        """SCAYLE item ids to cancel so SCAYLE matches OrderWise's cancelled quantities (units
        ``reserved`` by packages are left alone)."""
        lines = ledger_lines(self.ctx, order_record, order)
        by_id = {item.id: item for item in order.items}
        shipped = order.shipped_item_ids()

        def live(item_id: int) -> bool:
            item = by_id.get(item_id)
            return (
                item is not None
                and not item.is_cancelled
                and item_id not in shipped
                and item_id not in reserved
            )

        if cancelled is None:
            return sorted(i for line in lines for i in line.item_ids if live(i))
        chosen: list[int] = []
        for code, qty in sorted(cancelled.items()):
            ids = [i for line in lines if line.variant_code == code for i in line.item_ids]
            already = sum(1 for i in ids if i in by_id and by_id[i].is_cancelled)
            need = int(qty) - already
            if need > 0:
                # Cancel the last units of the code first: despatches take the first ones.
                pool = [i for i in reversed(ids) if live(i) and i not in chosen]
                chosen.extend(pool[:need])
        return sorted(chosen)
