"""SCAYLE → OrderWise: a customer cancellation in the shop, cancelled in OrderWise while possible.

A customer cancellation (webhook, or found by walking the SCAYLE order list) is one record
``cancellation:shop:<SCAYLE order id>``. Processing it re-reads the order from SCAYLE and:

- if the order never reached OrderWise (its order record is ``pending``, ``failed`` or
  ``quarantined``), marks the order record ``cancelled`` so it is never pushed;
- if the OrderWise order is already cancelled, records that and stops;
- while the OrderWise order is not picked or despatched (its status text maps to a cancellable
  canonical status and it has no delivery), cancels it with ``cancel_sales_order``;
- once picking or despatch has started, cancels nothing: the record is quarantined with the reason
  ``return_needed: ...`` (payload ``return_needed: true``) and
  :attr:`~scayle_orderwise.alerts.AlertKind.CANCELLATION_TOO_LATE` names the order.

OrderWise's API cancels whole orders only, so a partial SCAYLE cancellation (some units) and an
installation without a configured cancel endpoint also go to a person (quarantine and alert).
Units SCAYLE removed from the order at delegation because they were out of stock
(``order-item-out-of-stock``) count as cancelled: they are the units the order push sent that
SCAYLE no longer lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from ...alerts import AlertKind
from ...errors import AmbiguousOutcomeError, BadRequestError, ConfigError, ConnectorError
from ...orderwise.models import SalesOrderStatus, parse_decimal
from ...orderwise.statuses import CanonicalStatus, is_cancellable
from ...scayle.models import Order
from ...store import InvalidTransitionError, Record, State
from ..change_feed import whole_units
from ..context import FlowContext, SyncResult
from ..order_units import ledger_lines, pushed_item_ids, removed_item_ids
from ..orders import ORDER_KIND, is_cancelled, order_key
from .outcomes import Done, Outcomes
from .records import record_shop_cancellation, shop_cancellation_key

__all__ = ["POLL_CURSOR", "ShopCancellations"]

_NOT_PUSHED = (State.PENDING, State.FAILED, State.QUARANTINED)

POLL_CURSOR = "cancellations:shop_poll"
"""Store cursor: when the last walk of the SCAYLE order list that finished started."""


def _status_cancelled(line: Any) -> int:
    raw = getattr(line, "raw", {}) or {}
    value = raw.get("quantityCancelled", raw.get("qtyCancelled"))
    if value is None:
        return 0
    try:
        return whole_units(parse_decimal(value))
    except (ValueError, TypeError):
        return 0


class ShopCancellations:
    """Finds and processes cancellations customers made in SCAYLE."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.end = Outcomes(ctx)

    def poll(self, result: SyncResult) -> None:
        """Walk the SCAYLE orders; record cancellations of orders the ledger has pushed or holds.

        Units SCAYLE removed (out of stock) show only against the ledger, so that costs a ledger
        read per order: it is done for orders SCAYLE changed (``updatedAt``) since the last walk
        that finished (minus ``flows.poll_overlap_seconds``), and for every order on the first walk.
        """
        ctx = self.ctx
        started = ctx.clock()
        last = ctx.store.get_cursor(POLL_CURSOR)
        overlap = timedelta(seconds=ctx.flows.poll_overlap_seconds)
        changed_since = datetime.fromisoformat(last) - overlap if last else None
        try:
            for order in ctx.scayle.iter_orders():
                cancelled = {item.id for item in order.items if item.is_cancelled}
                changed = (
                    changed_since is None
                    or order.updated_at is None
                    or order.updated_at >= changed_since
                )
                if not cancelled and not changed:
                    continue
                order_record = ctx.store.get(order_key(order.id))
                if order_record is None or order_record.state == State.CANCELLED:
                    continue  # unknown orders are the orders flow's; cancelled ones are done
                cancelled |= removed_item_ids(order_record, order)
                if not cancelled:
                    continue
                record = ctx.store.get(shop_cancellation_key(order.id))
                if record is None or (
                    record.state == State.ACKNOWLEDGED
                    and not (record.payload or {}).get("complete")
                    and cancelled - set((record.payload or {}).get("seen_item_ids") or ())
                ):
                    record_shop_cancellation(ctx, order.id, source="poll")
                    result.add("shop_cancellations_found")
        except ConnectorError as exc:
            result.add("shop_poll_failed")
            result.errors.append(f"SCAYLE order list: {type(exc).__name__}: {exc}")
            return
        ctx.store.set_cursor(POLL_CURSOR, started.isoformat())

    def process(self, record: Record, result: SyncResult) -> None:
        """Take one claimed shop cancellation as far as it goes (raises :class:`Done` when the
        record reached its outcome)."""
        ctx = self.ctx
        order_id = int(record.subject)
        order = ctx.scayle.get_order(order_id)
        order_record = ctx.store.get(order_key(order_id))
        removed = sorted(removed_item_ids(order_record, order))  # out of stock at delegation
        cancelled_ids = sorted({item.id for item in order.items if item.is_cancelled} | {*removed})
        pushed = pushed_item_ids(order_record)
        full = is_cancelled(order) or bool(pushed and pushed <= set(cancelled_ids))
        payload = {**(record.payload or {}), "direction": "shop", "seen_item_ids": cancelled_ids}
        if removed:
            payload["removed_item_ids"] = removed
        if not cancelled_ids:
            self.end.finish(
                record, "nothing is cancelled in SCAYLE", payload, result, "nothing_to_cancel"
            )

        if order_record is None:
            if full:
                ctx.store.ensure(
                    order_key(order_id),
                    kind=ORDER_KIND,
                    subject=str(order_id),
                    state=State.CANCELLED,
                    reason="cancelled in SCAYLE before import",
                )
            self.end.finish(
                record,
                "the order never reached OrderWise",
                {**payload, "complete": full},
                result,
                "cancelled_before_push",
            )
        if order_record.state == State.CANCELLED:
            self.end.finish(
                record,
                "the order is cancelled in the ledger",
                {**payload, "complete": True},
                result,
            )
        if order_record.state in _NOT_PUSHED and not order_record.may_have_been_sent:
            if not full:
                ctx.defer(record, "partly cancelled before the push; waiting for the push")
                result.add("deferred")
                raise Done
            try:
                ctx.store.mark(
                    order_key(order_id),
                    State.CANCELLED,
                    reason="cancelled in SCAYLE before it reached OrderWise",
                    actor=ctx.worker_id,
                )
            except InvalidTransitionError:  # being pushed right now: look again next pass
                ctx.defer(record, "the order is being pushed; looking again next pass")
                result.add("deferred")
                raise Done from None
            self.end.finish(
                record,
                "cancelled before it reached OrderWise; it will not be pushed",
                {**payload, "complete": True},
                result,
                "cancelled_before_push",
            )
        if order_record.state != State.ACKNOWLEDGED or not order_record.external_id:
            ctx.defer(record, f"the order push is unfinished ({order_record.state})")
            result.add("deferred")
            raise Done

        ow_id = int(order_record.external_id)
        number = order_record.external_ref or str(ow_id)
        status = ctx.orderwise.get_order_status(ow_id, include_lines=True, include_delivery=True)
        canonical = status.canonical(ctx.status_map)
        payload.update({"ow_order_id": ow_id, "orderwise_status": status.order_status})
        if canonical is CanonicalStatus.CANCELLED:
            if record.may_have_been_sent:  # our own cancel, whose answer was lost
                ctx.alerts.resolve(AlertKind.CANCELLATION_TOO_LATE, str(order_id))
            self.end.finish(
                record,
                f"OrderWise order {number} is cancelled",
                {**payload, "complete": True},
                result,
                "already_cancelled" if not record.may_have_been_sent else "cancelled_in_orderwise",
            )
        if not full and not self._still_live_in_orderwise(
            order_record, order, status, cancelled_ids
        ):
            self.end.finish(
                record, "the cancelled units are cancelled in OrderWise too", payload, result
            )
        if status.deliveries or not is_cancellable(canonical):
            self.end.too_late(record, order_id, number, status, payload, result)
        if not full:
            what = f"SCAYLE items {cancelled_ids} were cancelled"
            if removed:
                what += f" (SCAYLE removed {removed} as out of stock at delegation)"
            self.end.needs_person(
                record,
                order_id,
                f"partial_cancellation: {what} but OrderWise cancels whole orders only; remove "
                f"those units from OrderWise order {number} by hand",
                "partial_cancellation",
                payload,
                result,
            )
        try:
            ctx.orderwise.cancel_sales_order(ow_id)
        except ConfigError as exc:
            self.end.needs_person(
                record,
                order_id,
                f"manual_cancel_needed: cancel OrderWise order {number} by hand ({exc})",
                "cancel_not_configured",
                payload,
                result,
            )
        except AmbiguousOutcomeError as exc:
            ctx.store.transition(
                record.key,
                State.SENT,
                owner=ctx.worker_id,
                reason=f"cancel outcome unclear ({exc}); the status is checked before anything else",
                payload=payload,
            )
            result.add("ambiguous")
            return
        except BadRequestError as exc:  # refused: picking started meanwhile
            self.end.too_late(record, order_id, number, status, payload, result, refusal=str(exc))
        ctx.alerts.resolve(AlertKind.CANCELLATION_TOO_LATE, str(order_id))
        self.end.finish(
            record,
            f"OrderWise order {number} cancelled",
            {**payload, "complete": True},
            result,
            "cancelled_in_orderwise",
        )

    def _still_live_in_orderwise(
        self,
        order_record: Record,
        order: Order,
        status: SalesOrderStatus,
        cancelled_ids: Sequence[int],
    ) -> bool:
        """True when some unit cancelled (or removed) in SCAYLE is not cancelled in OrderWise
        (per variant code)."""
        lines = ledger_lines(self.ctx, order_record, order)
        code_of = {i: line.variant_code for line in lines for i in line.item_ids}
        sku_of = {item.id: item.sku for item in order.items}
        in_scayle: dict[str, int] = {}
        for item_id in cancelled_ids:
            code = code_of.get(item_id) or sku_of.get(item_id) or "?"
            in_scayle[code] = in_scayle.get(code, 0) + 1
        in_orderwise: dict[str, int] = {}
        for line in status.lines or []:
            if line.variant_code:
                in_orderwise[line.variant_code] = in_orderwise.get(
                    line.variant_code, 0
                ) + _status_cancelled(line)
        return any(qty > in_orderwise.get(code, 0) for code, qty in in_scayle.items())
