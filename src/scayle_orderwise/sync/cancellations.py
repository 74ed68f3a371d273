"""Cancellations both ways: SCAYLE → OrderWise while possible, OrderWise → SCAYLE always.

**Shop side.** A customer cancellation in SCAYLE (webhook, through :func:`record_shop_cancellation`,
or found by walking the SCAYLE order list) becomes one ledger record
``cancellation:shop:<SCAYLE order id>``. A pass re-reads the order from SCAYLE and:

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
Repeating a cancellation (a second webhook, the poll) does nothing twice: a finished record is
reopened only while the order was not cancelled completely, and the work done is computed from
the current state of both systems.

**ERP side.** An order or line cancelled in OrderWise (``order_changes`` rows whose status maps to
``CANCELLED`` or whose lines carry ``quantityCancelled``) becomes one record per cancelled state,
``cancellation:erp:<SCAYLE order id>:<OrderWise order id>:<fingerprint>``, and one
``POST /fulfillment/cancellations`` of the units not yet shipped or cancelled in SCAYLE (mapped back
to item ids through the lines the ledger kept at push time). Only the OrderWise order the ledger
links to the SCAYLE order counts (cancelling a duplicate in OrderWise cancels nothing in SCAYLE).
A malformed export row is skipped, counted ``bad_rows`` and alerted once (see :mod:`.bad_rows`);
the other rows and the watermark go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from ..alerts import AlertKind
from ..errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    ConnectorError,
    NotFoundError,
)
from ..orderwise.models import OrderChangeRow, SalesOrderStatus, parse_decimal
from ..orderwise.statuses import CanonicalStatus, canonical_status, is_cancellable
from ..scayle.models import Order
from ..store import InvalidTransitionError, Record, State
from .context import FlowContext, SyncResult
from .fulfilment import (
    ChangeFeed,
    claim_due,
    hold_order,
    ledger_lines,
    note_unknown_statuses,
    open_reservations,
    scayle_order_id,
    whole_units,
)
from .orders import ORDER_KIND, is_cancelled, order_key

__all__ = [
    "CANCELLATION_KIND",
    "CancellationSync",
    "erp_cancellation_key",
    "record_shop_cancellation",
    "shop_cancellation_key",
]

CANCELLATION_KIND = "cancellation"
CURSOR = "cancellations:order_changes"
_NOT_PUSHED = (State.PENDING, State.FAILED, State.QUARANTINED)


def shop_cancellation_key(order_id: int | str) -> str:
    """The ledger key of a SCAYLE-side cancellation of one order."""
    return f"cancellation:shop:{order_id}"


def erp_cancellation_key(order_id: int | str, ow_order_id: int | str, fingerprint: str) -> str:
    """The ledger key of one cancelled state of an OrderWise order."""
    return f"cancellation:erp:{order_id}:{ow_order_id}:{fingerprint}"


def record_shop_cancellation(
    ctx: FlowContext, order_id: int | str, *, source: str = "webhook"
) -> Record:
    """Note that SCAYLE reports a cancellation of ``order_id``; the next pass does the work.

    Idempotent: a pending record stays as it is; a finished one is reopened only when the order was
    not cancelled completely the first time (more units may have been cancelled since).
    """
    store = ctx.store
    key = shop_cancellation_key(order_id)
    record = store.get(key)
    if record is None:
        return store.ensure(
            key,
            kind=CANCELLATION_KIND,
            subject=str(int(order_id)),
            payload={"direction": "shop", "source": source},
            reason=f"cancelled in SCAYLE ({source})",
        )
    if record.state == State.ACKNOWLEDGED and not (record.payload or {}).get("complete"):
        try:
            return store.mark(key, State.PENDING, reason=f"cancelled again in SCAYLE ({source})")
        except InvalidTransitionError:  # claimed meanwhile: that pass sees the new state anyway
            pass
    return record


def _fingerprint(cancelled: Mapping[str, int] | None) -> str:
    text = (
        "all" if cancelled is None else ",".join(f"{k}={v}" for k, v in sorted(cancelled.items()))
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _status_cancelled(line: Any) -> int:
    raw = getattr(line, "raw", {}) or {}
    value = raw.get("quantityCancelled", raw.get("qtyCancelled"))
    if value is None:
        return 0
    try:
        return whole_units(parse_decimal(value))
    except (ValueError, TypeError):
        return 0


class _Done(Exception):
    """Internal: the record was moved to its outcome; stop processing it."""


class CancellationSync:
    """One pass of the cancellations flow; see the module docstring."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self.feed = ChangeFeed(ctx, CURSOR, "cancellations")

    def run(self, *, poll: bool = True) -> SyncResult:
        """Find cancellations on both sides (``poll=False``: only OrderWise's), then act on them."""
        result = SyncResult("cancellations")
        if poll:
            self.poll_shop(result)
        rows = self.feed.read(result)
        if rows is not None:
            self.record_erp_cancellations(rows, result)
            self.feed.commit()
        for batch in claim_due(self.ctx, CANCELLATION_KIND):
            for record in batch:
                self.process(record, result)
        return result

    # ---------------------------------------------------------------------------------- intake

    def poll_shop(self, result: SyncResult) -> None:
        """Walk the SCAYLE orders; record cancellations of orders the ledger has pushed or holds."""
        ctx = self.ctx
        try:
            for order in ctx.scayle.iter_orders():
                cancelled = {item.id for item in order.items if item.is_cancelled}
                if not cancelled:
                    continue
                order_record = ctx.store.get(order_key(order.id))
                if order_record is None or order_record.state == State.CANCELLED:
                    continue  # unknown orders are the orders flow's; cancelled ones are done
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

    def record_erp_cancellations(self, rows: Sequence[OrderChangeRow], result: SyncResult) -> None:
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

    # ------------------------------------------------------------------------------ processing

    def process(self, record: Record, result: SyncResult) -> None:
        """Take one claimed cancellation as far as it goes; never raises for one bad record."""
        ctx = self.ctx
        handler: Callable[[Record, SyncResult], None] = (
            self._process_erp if record.key.startswith("cancellation:erp:") else self._process_shop
        )
        try:
            handler(record, result)
        except _Done:
            return
        except (AuthenticationError, ConfigError):
            self.ctx.release(record, "authentication or configuration error; the pass stops")
            raise
        except NotFoundError as exc:
            self.ctx.release(record, f"not found: {exc}", backoff=True)
            result.add("deferred")
        except Exception as exc:  # a pass never dies on one bad record
            ctx.release_after_error(record, exc, result)

    # -- SCAYLE → OrderWise ------------------------------------------------------------------------

    def _process_shop(self, record: Record, result: SyncResult) -> None:
        ctx = self.ctx
        order_id = int(record.subject)
        order = ctx.scayle.get_order(order_id)
        cancelled_ids = sorted(item.id for item in order.items if item.is_cancelled)
        full = is_cancelled(order)
        payload = {**(record.payload or {}), "direction": "shop", "seen_item_ids": cancelled_ids}
        if not cancelled_ids:
            self._finish(
                record, "nothing is cancelled in SCAYLE", payload, result, "nothing_to_cancel"
            )

        order_record = ctx.store.get(order_key(order_id))
        if order_record is None:
            if full:
                ctx.store.ensure(
                    order_key(order_id),
                    kind=ORDER_KIND,
                    subject=str(order_id),
                    state=State.CANCELLED,
                    reason="cancelled in SCAYLE before import",
                )
            self._finish(
                record,
                "the order never reached OrderWise",
                {**payload, "complete": full},
                result,
                "cancelled_before_push",
            )
        if order_record.state == State.CANCELLED:
            self._finish(
                record,
                "the order is cancelled in the ledger",
                {**payload, "complete": True},
                result,
            )
        if order_record.state in _NOT_PUSHED and not order_record.may_have_been_sent:
            if not full:
                self.ctx.defer(record, "partly cancelled before the push; waiting for the push")
                result.add("deferred")
                raise _Done
            try:
                ctx.store.mark(
                    order_key(order_id),
                    State.CANCELLED,
                    reason="cancelled in SCAYLE before it reached OrderWise",
                    actor=ctx.worker_id,
                )
            except InvalidTransitionError:  # being pushed right now: look again next pass
                self.ctx.defer(record, "the order is being pushed; looking again next pass")
                result.add("deferred")
                raise _Done from None
            self._finish(
                record,
                "cancelled before it reached OrderWise; it will not be pushed",
                {**payload, "complete": True},
                result,
                "cancelled_before_push",
            )
        if order_record.state != State.ACKNOWLEDGED or not order_record.external_id:
            self.ctx.defer(record, f"the order push is unfinished ({order_record.state})")
            result.add("deferred")
            raise _Done

        ow_id = int(order_record.external_id)
        number = order_record.external_ref or str(ow_id)
        status = ctx.orderwise.get_order_status(ow_id, include_lines=True, include_delivery=True)
        canonical = status.canonical(ctx.status_map)
        payload.update({"ow_order_id": ow_id, "orderwise_status": status.order_status})
        if canonical is CanonicalStatus.CANCELLED:
            self._finish(
                record,
                f"OrderWise order {number} is cancelled",
                {**payload, "complete": True},
                result,
                "already_cancelled" if not record.may_have_been_sent else "cancelled_in_orderwise",
            )
        if not full and not self._still_live_in_orderwise(order_record, order, status):
            self._finish(
                record, "the cancelled units are cancelled in OrderWise too", payload, result
            )
        if status.deliveries or not is_cancellable(canonical):
            self._too_late(record, order_id, number, status, payload, result)
        if not full:
            self._needs_person(
                record,
                order_id,
                f"partial_cancellation: SCAYLE items {cancelled_ids} were cancelled but OrderWise "
                f"cancels whole orders only; remove those units from OrderWise order {number} by hand",
                "partial_cancellation",
                payload,
                result,
            )
        try:
            ctx.orderwise.cancel_sales_order(ow_id)
        except ConfigError as exc:
            self._needs_person(
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
            self._too_late(record, order_id, number, status, payload, result, refusal=str(exc))
        self._finish(
            record,
            f"OrderWise order {number} cancelled",
            {**payload, "complete": True},
            result,
            "cancelled_in_orderwise",
        )
        ctx.alerts.resolve(AlertKind.CANCELLATION_TOO_LATE, str(order_id))

    def _still_live_in_orderwise(
        self, order_record: Record, order: Order, status: SalesOrderStatus
    ) -> bool:
        """True when some unit cancelled in SCAYLE is not cancelled in OrderWise (per variant code)."""
        lines = ledger_lines(self.ctx, order_record, order)
        code_of = {i: line.variant_code for line in lines for i in line.item_ids}
        in_scayle: dict[str, int] = {}
        for item in order.items:
            if item.is_cancelled:
                code = code_of.get(item.id, item.sku or "?")
                in_scayle[code] = in_scayle.get(code, 0) + 1
        in_orderwise: dict[str, int] = {}
        for line in status.lines or []:
            if line.variant_code:
                in_orderwise[line.variant_code] = in_orderwise.get(
                    line.variant_code, 0
                ) + _status_cancelled(line)
        return any(qty > in_orderwise.get(code, 0) for code, qty in in_scayle.items())

    def _too_late(
        self,
        record: Record,
        order_id: int,
        number: str,
        status: SalesOrderStatus,
        payload: Mapping[str, Any],
        result: SyncResult,
        refusal: str | None = None,
    ) -> NoReturn:
        ctx = self.ctx
        text = status.order_status or "unknown"
        why = f"OrderWise refused: {refusal}" if refusal else f"OrderWise status {text!r}"
        reason = (
            f"return_needed: SCAYLE order {order_id} was cancelled after OrderWise order {number} "
            f"was picked or despatched ({why}); nothing was cancelled: the units will ship and "
            "must come back as a return"
        )
        ctx.store.transition(
            record.key,
            State.QUARANTINED,
            owner=ctx.worker_id,
            reason=reason,
            payload={**payload, "return_needed": True},
        )
        ctx.alerts.raise_alert(
            AlertKind.CANCELLATION_TOO_LATE,
            str(order_id),
            f"order {order_id} (OrderWise {number}) was cancelled by the customer too late: "
            f"{why}. Nothing was cancelled; handle it as a return",
            cause="return_needed",
            details={"order_id": order_id, "orderwise_order": number, "status": text},
        )
        result.add("return_needed")
        ctx.log("cancellation.too_late", order_id=order_id, orderwise_order=number)
        raise _Done

    def _needs_person(
        self,
        record: Record,
        order_id: int,
        reason: str,
        cause: str,
        payload: Mapping[str, Any],
        result: SyncResult,
    ) -> NoReturn:
        ctx = self.ctx
        ctx.store.transition(
            record.key, State.QUARANTINED, owner=ctx.worker_id, reason=reason, payload=payload
        )
        ctx.alerts.raise_alert(
            AlertKind.CANCELLATION_TOO_LATE,
            str(order_id),
            f"order {order_id}: {reason}",
            cause=cause,
            details={"order_id": order_id},
        )
        result.add("needs_person")
        raise _Done

    # -- OrderWise → SCAYLE ------------------------------------------------------------------------

    def _process_erp(self, record: Record, result: SyncResult) -> None:
        ctx = self.ctx
        order_id = int(record.subject)
        data = dict(record.payload or {})
        order_record = ctx.store.get(order_key(order_id))
        if order_record is None or order_record.state != State.ACKNOWLEDGED:
            state = order_record.state if order_record is not None else "unknown"
            self.ctx.defer(record, f"the order is not acknowledged in the ledger yet ({state})")
            result.add("deferred")
            raise _Done
        if str(data.get("ow_order_id")) != str(order_record.external_id):
            ctx.store.transition(
                record.key,
                State.CANCELLED,
                owner=ctx.worker_id,
                reason=f"OrderWise order {data.get('ow_order_id')} is not the one linked to this "
                f"SCAYLE order ({order_record.external_id}); nothing cancelled in SCAYLE",
            )
            result.add("other_orderwise_order")
            raise _Done
        with hold_order(ctx, order_id) as held:
            if not held:
                self.ctx.defer(record, "another worker holds this order", delay=False)
                result.add("deferred")
                raise _Done
            order = ctx.scayle.get_order(order_id)
            items = self._units_to_cancel(order_id, order_record, order, data.get("cancelled"))
            if not items:
                self._finish(
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
            self._finish(
                record,
                f"cancelled {len(items)} unit(s) in SCAYLE",
                {**data, "item_ids": items},
                result,
                "cancelled_in_scayle",
            )

    def _units_to_cancel(
        self,
        order_id: int,
        order_record: Record,
        order: Order,
        cancelled: Mapping[str, int] | None,
    ) -> list[int]:
        """SCAYLE item ids to cancel so SCAYLE matches OrderWise's cancelled quantities."""
        reserved = open_reservations(self.ctx, order_id)
        lines = ledger_lines(self.ctx, order_record, order)
        by_id = {item.id: item for item in order.items}

        def live(item_id: int) -> bool:
            item = by_id.get(item_id)
            return (
                item is not None
                and not item.is_cancelled
                and not item.is_shipped
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

    # --------------------------------------------------------------------------------- helpers

    def _finish(
        self,
        record: Record,
        reason: str,
        payload: Mapping[str, Any],
        result: SyncResult,
        outcome: str = "already_cancelled",
    ) -> NoReturn:
        self.ctx.store.transition(
            record.key,
            State.ACKNOWLEDGED,
            owner=self.ctx.worker_id,
            reason=reason,
            payload=payload,
        )
        result.add(outcome)
        self.ctx.log("cancellation.done", key=record.key, outcome=outcome)
        raise _Done
