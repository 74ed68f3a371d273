"""Orders SCAYLE → OrderWise, exactly once.

Intake (webhooks and a poll of the order list) creates one ledger record per SCAYLE order, keyed
``order:<id>``. A pass then claims due records and, for each one:

1. if a previous attempt may have reached OrderWise (the record was ``sent``, or claimed back from a
   worker that died mid-call), looks the reference up in OrderWise and adopts what it finds;
2. re-reads the order from SCAYLE (webhook payloads are never trusted for money) and skips orders
   that are not confirmed or were cancelled before import;
3. maps it (a mapping error quarantines the order with its reason);
4. creates the sales order; an unclear outcome leaves the record ``sent`` so the next pass looks up
   before anything is sent again; OrderWise's 400 for an unknown variant quarantines it;
5. writes the reference back to SCAYLE (``PUT reference-key``) and acknowledges the record with the
   OrderWise order id and number.

An order accepted by OrderWise but not yet visible to lookups (imports run through an e-commerce
session) stays ``sent`` and is looked up again; it is re-sent only after a negative lookup older than
``resend_grace_seconds``, and an alert is raised when it stays invisible longer than
``order_stalled_after_seconds``. A pass never dies on one bad order.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from ..alerts import AlertKind
from ..errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    BadRequestError,
    ClaimLostError,
    ConfigError,
    ConnectorError,
    InvalidResponseError,
    MappingError,
    NotFoundError,
    UnknownVariantError,
)
from ..scayle.models import Order
from ..store import Record, State
from .context import FlowContext, SyncResult

__all__ = [
    "CANCELLED_ORDER_CODES",
    "IMPORTABLE_ORDER_CODES",
    "ORDER_KIND",
    "OrderSync",
    "is_cancelled",
    "is_importable",
    "order_key",
]

ORDER_KIND = "order"
REFERENCE_KIND = "reference_write"
POLL_WATERMARK = "orders:poll_watermark"
NOT_CONFIRMED = "not confirmed in SCAYLE yet"

IMPORTABLE_ORDER_CODES = frozenset(
    {"order_confirmed", "order_delegated", "order_shipped", "order_invoiced"}
)
"""``detailedStatus.order.code`` values of orders SCAYLE has confirmed (payment authorised)."""

IMPORTABLE_STATUSES = frozenset(
    {"payment_reserved", "invoice_completed", "invoice_partially_completed"}
)
"""Coarse ``status`` values that also mean confirmed, for orders without a detailed status."""

CANCELLED_ORDER_CODES = frozenset({"order_cancelled", "order_canceled", "order_aborted"})
CANCELLED_STATUSES = frozenset({"cancellation_pending", "cancellation_completed"})


def order_key(order_id: int | str) -> str:
    """The ledger key of a SCAYLE order."""
    return f"order:{order_id}"


def _order_code(order: Order) -> str | None:
    detailed = order.detailed_status
    if detailed is not None and detailed.order is not None:
        return detailed.order.code
    return None


def is_cancelled(order: Order) -> bool:
    """True when the whole order is cancelled in SCAYLE (status, or every item cancelled)."""
    if _order_code(order) in CANCELLED_ORDER_CODES or str(order.status) in CANCELLED_STATUSES:
        return True
    items = order.items or []
    return bool(items) and all(
        str(item.status) == "cancelled" or item.cancelled_at is not None for item in items
    )


def is_importable(order: Order) -> bool:
    """True when SCAYLE has confirmed the order (abandoned or unpaid checkouts are never imported)."""
    code = _order_code(order)
    if code is not None:
        return code in IMPORTABLE_ORDER_CODES
    return str(order.status) in IMPORTABLE_STATUSES


class OrderSync:
    """One pass of the orders flow; see the module docstring."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self._attempted: str | None = None

    # ----------------------------------------------------------------------------------------- intake

    def poll(self, result: SyncResult) -> dict[int, Order]:
        """Walk the SCAYLE order list; record new confirmed orders; return them by id for this pass."""
        ctx = self.ctx
        fresh: dict[int, Order] = {}
        started = ctx.clock()
        params: dict[str, str] = {}
        since_param = ctx.flows.order_poll_since_param
        watermark = ctx.store.get_cursor(POLL_WATERMARK)
        if since_param and watermark:
            overlap = timedelta(seconds=ctx.flows.poll_overlap_seconds)
            params[since_param] = (datetime.fromisoformat(watermark) - overlap).isoformat()
        try:
            pager = ctx.scayle.iter_orders(limit=ctx.flows.order_poll_page_size, params=params)
            for order in pager:
                self.intake(order, result, fresh)
            for entity_id, problem in pager.rejected:
                self._set_aside(entity_id, problem, result)
        except (ConnectorError, ValidationError) as exc:
            # The poll is a safety net; webhooks and the next pass still bring the orders in.
            result.add("poll_failed")
            result.errors.append(f"order poll stopped: {type(exc).__name__}: {exc}")
            return fresh
        ctx.store.set_cursor(POLL_WATERMARK, started.isoformat())
        return fresh

    def _set_aside(self, entity_id: object, problem: str, result: SyncResult) -> None:
        """Quarantine an order SCAYLE listed but the model refuses, so the rest of the poll goes on."""
        ctx = self.ctx
        try:
            order_id = int(str(entity_id))
        except ValueError:
            result.add("malformed_unidentified")
            result.errors.append(f"an order without a readable id was refused: {problem}")
            return
        key = order_key(order_id)
        reason = f"malformed_order: SCAYLE sent an order the model refuses ({problem})"
        record = ctx.store.get(key)
        if record is None:
            ctx.store.ensure(
                key, kind=ORDER_KIND, subject=str(order_id), state=State.QUARANTINED, reason=reason
            )
        elif record.state == State.PENDING:
            ctx.store.mark(key, State.QUARANTINED, reason=reason)
        else:
            return
        result.add("quarantined")
        ctx.alerts.raise_alert(
            AlertKind.ORDER_QUARANTINED,
            str(order_id),
            f"order {order_id} quarantined: {reason}",
            cause="malformed_order",
        )

    def intake(
        self, order: Order, result: SyncResult, cache: dict[int, Order] | None = None
    ) -> None:
        """Record one SCAYLE order in the ledger (idempotent)."""
        store = self.ctx.store
        key = order_key(order.id)
        record = store.get(key)
        if is_cancelled(order):
            reason = "cancelled in SCAYLE before import"
            if record is None:
                store.ensure(
                    key,
                    kind=ORDER_KIND,
                    subject=str(order.id),
                    state=State.CANCELLED,
                    reason=reason,
                )
                result.add("cancelled_before_import")
            elif record.state == State.PENDING:
                store.mark(key, State.CANCELLED, reason=reason)
                result.add("cancelled_before_import")
            return
        if not is_importable(order):
            result.add("not_confirmed")
            return
        if record is None:
            store.ensure(key, kind=ORDER_KIND, subject=str(order.id))
            result.add("discovered")
        if cache is not None:
            cache[order.id] = order

    # ------------------------------------------------------------------------------------------- push

    def run(self, *, poll: bool = True) -> SyncResult:
        """Poll (optional), push every due order, retry reference write-backs, raise stall alerts."""
        result = SyncResult("orders")
        cache = self.poll(result) if poll and self.ctx.flows.order_poll else {}
        self.push_due(result, cache)
        self.retry_reference_writes(result)
        self.check_stalled(result)
        return result

    def push_due(self, result: SyncResult, cache: dict[int, Order]) -> None:
        """Claim and process due order records in batches until none is left."""
        ctx = self.ctx
        started = ctx.clock()
        seen: set[str] = set()
        while True:
            # Claiming "as of" the start of the pass keeps records re-queued during it for the next one.
            batch = ctx.store.claim_next(
                ORDER_KIND,
                owner=ctx.worker_id,
                lease=ctx.lease,
                limit=ctx.flows.batch_size,
                now=started,
            )
            fresh = [r for r in batch if r.key not in seen]
            for record in batch:
                if record.key in seen:  # taken again within one pass: leave it for the next pass
                    self._requeue(record)
            if not fresh:
                return
            for record in fresh:
                seen.add(record.key)
                self.process(record, cache, result)

    def _requeue(self, record: Record) -> None:
        """Give back a record claimed a second time within one pass, as it was before the claim."""
        ctx = self.ctx
        to_state = (
            record.claimed_from
            if record.claimed_from in (State.PENDING, State.SENT)
            else State.PENDING
        )
        if record.may_have_been_sent:
            to_state = State.SENT
        before = [t for t in record.history if t.to_state != State.IN_FLIGHT]
        ctx.store.transition(
            record.key,
            to_state,
            owner=ctx.worker_id,
            reason=before[-1].reason if before else None,
            next_attempt_at=ctx.clock(),
        )

    def process(self, record: Record, cache: dict[int, Order], result: SyncResult) -> None:
        """Take one claimed order record as far as it can go; never raises for one bad order."""
        ctx = self.ctx
        self._attempted = None

        def release(reason: str, *, backoff: bool) -> None:
            # Once the create may have left, the record can only go back to ``sent`` (look up first).
            ctx.release(record, reason, backoff=backoff, maybe_sent=self._attempted == record.key)

        try:
            self._process(record, cache, result)
        except AuthenticationError:
            release("authentication failed; the pass stops", backoff=False)
            raise
        except ConfigError:
            release("configuration error; the pass stops", backoff=False)
            raise
        except Exception as exc:  # a pass never dies on one bad order
            ctx.release_after_error(record, exc, result, maybe_sent=self._attempted == record.key)

    def _process(self, record: Record, cache: dict[int, Order], result: SyncResult) -> None:
        ctx = self.ctx
        order_id = int(record.subject)
        reference = ctx.mapper.external_reference(order_id)
        now = ctx.clock()

        if record.may_have_been_sent:
            found = ctx.orderwise.find_orders_by_reference(reference)
            if found:
                self._adopt(record, order_id, reference, found, result)
                return
            sent_at = _sent_at(ctx, record)
            if sent_at is None:
                result.add("never_sent")  # the worker died before its recovery point: safe to send
            elif now - sent_at < timedelta(seconds=ctx.flows.resend_grace_seconds):
                ctx.store.transition(
                    record.key,
                    State.SENT,
                    owner=ctx.worker_id,
                    reason="accepted by OrderWise but not visible yet; looking up again later",
                    payload={**record.payload, "sent_at": sent_at.isoformat()},
                    next_attempt_at=now + timedelta(seconds=max(1, ctx.flows.backoff_base_seconds)),
                )
                result.add("awaiting_visibility")
                return
            else:
                result.add("resent_after_negative_lookup")

        order = cache.get(order_id)
        if order is None:
            try:
                order = ctx.scayle.get_order(order_id)
            except NotFoundError:
                self._quarantine(
                    record, "the order does not exist in SCAYLE", "order_not_found", result
                )
                return
            except (ValidationError, InvalidResponseError) as exc:
                reason = f"SCAYLE sent an order the model refuses: {exc}"
                self._quarantine(record, reason, "malformed_order", result)
                return
        if is_cancelled(order):
            ctx.store.transition(
                record.key,
                State.CANCELLED,
                owner=ctx.worker_id,
                reason="cancelled in SCAYLE before import",
            )
            result.add("cancelled_before_import")
            return
        if not is_importable(order):
            if now - record.created_at > timedelta(seconds=ctx.flows.unconfirmed_expiry_seconds):
                ctx.store.transition(
                    record.key,
                    State.CANCELLED,
                    owner=ctx.worker_id,
                    reason="never confirmed in SCAYLE (abandoned checkout); not imported",
                )
                result.add("expired_unconfirmed")
                return
            ctx.store.transition(
                record.key,
                State.PENDING,
                owner=ctx.worker_id,
                reason=NOT_CONFIRMED,
                next_attempt_at=now + ctx.backoff(record.attempts),
            )
            result.add("not_confirmed")
            return

        try:
            mapped = ctx.mapper.map(order)
            body = mapped.to_orderwise()
        except MappingError as exc:
            self._quarantine(record, str(exc), exc.reason_code, result)
            return

        # The OrderWise variant code of each line, as sent (despatches are mapped back through it).
        codes = {ol.e_commerce_item_id: ol.variant_code for ol in body.order_lines}
        line_items = [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                "item_ids": list(line.item_ids),
                "variant_code": codes.get(str(line.key), line.sku),
            }
            for line in mapped.lines
        ]
        sent_payload: dict[str, Any] = {
            "reference": reference,
            "sent_at": now.isoformat(),
            "currency": mapped.currency,
            "total_gross": mapped.total_gross,
            "lines": line_items,
        }
        # Recovery point: hold the claim for the whole call, and record durably that a request may
        # leave now, so whoever claims this order next looks it up and waits out the grace first.
        try:
            ctx.store.renew(record.key, owner=ctx.worker_id, lease=ctx.lease)
        except ClaimLostError:
            result.add("claim_lost")  # another worker took the order over; it carries on
            return
        ctx.store.set_cursor(_sent_cursor(order_id), now.isoformat())
        self._attempted = record.key
        try:
            created = ctx.orderwise.create_sales_order(body)
        except AmbiguousOutcomeError as exc:
            ctx.store.transition(
                record.key,
                State.SENT,
                owner=ctx.worker_id,
                reason=f"outcome unclear ({exc}); look up before re-sending",
                payload=sent_payload,
                next_attempt_at=now,
            )
            result.add("ambiguous")
            return
        except UnknownVariantError as exc:
            code = exc.variant_code or "?"
            message = exc.message or ""
            self._quarantine(
                record,
                message
                if message.startswith("OrderWise does not know")
                else f"OrderWise does not know variant code {code!r}: {message}",
                "unknown_variant",
                result,
            )
            return
        except BadRequestError as exc:
            self._quarantine(
                record, f"OrderWise refused the order: {exc}", "rejected_by_orderwise", result
            )
            return

        self._acknowledge(
            record,
            order_id,
            reference,
            order_id_ow=str(created.order_id),
            order_number=created.order_number,
            payload=sent_payload,
            reason="created in OrderWise",
        )
        result.add("pushed")

    # ---------------------------------------------------------------------------------------- helpers

    def _adopt(
        self, record: Record, order_id: int, reference: str, found: list[Any], result: SyncResult
    ) -> None:
        ctx = self.ctx
        first = found[0]
        if len(found) > 1:
            ctx.alerts.raise_alert(
                AlertKind.ORDER_STALLED,
                f"{order_id}:duplicates",
                f"OrderWise holds {len(found)} sales orders for reference {reference}; cancel the extra ones",
                cause=f"duplicates:{len(found)}",
            )
            result.add("duplicates_found")
        payload = dict(record.payload or {})
        payload.setdefault("reference", reference)
        self._acknowledge(
            record,
            order_id,
            reference,
            order_id_ow=str(first.ow_order_id),
            order_number=first.ow_order_number,
            payload=payload,
            reason="adopted the order found in OrderWise by reference",
        )
        result.add("adopted")

    def _acknowledge(
        self,
        record: Record,
        order_id: int,
        reference: str,
        *,
        order_id_ow: str,
        order_number: str | None,
        payload: dict[str, Any],
        reason: str,
    ) -> None:
        ctx = self.ctx
        written = self._write_reference(order_id, reference)
        payload = {**payload, "reference_written": written, "orderwise_order_number": order_number}
        ctx.store.transition(
            record.key,
            State.ACKNOWLEDGED,
            owner=ctx.worker_id,
            reason=reason,
            external_id=order_id_ow,
            external_ref=order_number,
            payload=payload,
        )
        if not written:
            ctx.store.ensure(f"reference:{order_id}", kind=REFERENCE_KIND, subject=str(order_id))
        ctx.alerts.resolve(AlertKind.ORDER_STALLED, str(order_id))
        ctx.alerts.resolve(AlertKind.ORDER_QUARANTINED, str(order_id))
        ctx.log(
            "order.acknowledged",
            order_id=order_id,
            orderwise_order_id=order_id_ow,
            reference=reference,
        )

    def _write_reference(self, order_id: int, reference: str) -> bool:
        try:
            self.ctx.scayle.set_reference_key(order_id, reference)
        except ConnectorError as exc:
            self.ctx.log(
                "order.reference_write_failed", order_id=order_id, error=type(exc).__name__
            )
            return False
        return True

    def retry_reference_writes(self, result: SyncResult) -> None:
        """Write back references whose first write to SCAYLE failed."""
        ctx = self.ctx
        for record in ctx.store.claim_next(
            REFERENCE_KIND, owner=ctx.worker_id, lease=ctx.lease, limit=ctx.flows.batch_size
        ):
            order_id = int(record.subject)
            if self._write_reference(order_id, ctx.mapper.external_reference(order_id)):
                ctx.store.transition(
                    record.key, State.ACKNOWLEDGED, owner=ctx.worker_id, reason="reference written"
                )
                result.add("references_written")
            else:
                self.ctx.release(record, "reference write failed", backoff=True)

    def _quarantine(self, record: Record, reason: str, code: str, result: SyncResult) -> None:
        ctx = self.ctx
        ctx.store.transition(
            record.key, State.QUARANTINED, owner=ctx.worker_id, reason=f"{code}: {reason}"
        )
        ctx.alerts.raise_alert(
            AlertKind.ORDER_QUARANTINED,
            record.subject,
            f"order {record.subject} quarantined: {reason}",
            cause=code,
            details={"reason_code": code},
        )
        result.add("quarantined")
        ctx.log("order.quarantined", order_id=record.subject, reason_code=code)

    def check_stalled(self, result: SyncResult) -> None:
        """Alert on orders that stay ``sent`` (invisible in OrderWise) or ``pending`` too long."""
        ctx = self.ctx
        limit = timedelta(seconds=ctx.flows.order_stalled_after_seconds)
        now = ctx.clock()
        for record in ctx.store.records(
            states=[State.SENT, State.PENDING, State.FAILED], kind=ORDER_KIND
        ):
            if record.reason == NOT_CONFIRMED:
                continue  # waiting for payment in SCAYLE is not the connector being stuck
            since = (
                _sent_at(ctx, record) if record.state == State.SENT else None
            ) or record.created_at
            if now - since > limit:
                raised = ctx.alerts.raise_alert(
                    AlertKind.ORDER_STALLED,
                    record.subject,
                    f"order {record.subject} has been {record.state} since {since:%Y-%m-%d %H:%M} UTC"
                    f" ({record.reason or 'no reason recorded'})",
                    cause=str(record.state),
                )
                if raised:
                    result.add("stalled_alerts")


def _sent_cursor(order_id: int) -> str:
    return f"orders:sent_at:{order_id}"


def _sent_at(ctx: FlowContext, record: Record) -> datetime | None:
    """When a request for this order may last have left, or ``None`` if none ever did.

    The payload's ``sent_at`` after an unclear outcome; otherwise the recovery point written just
    before the create (a worker that died mid-call leaves only that).
    """
    value = (record.payload or {}).get("sent_at")
    if not isinstance(value, str):
        value = ctx.store.get_cursor(_sent_cursor(int(record.subject)))
    return datetime.fromisoformat(value) if value else None
