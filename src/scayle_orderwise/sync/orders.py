"""Orders SCAYLE → OrderWise, exactly once.

Intake (webhooks and a poll of the order list) creates one ledger record per SCAYLE order, keyed
``order:<id>``. The poll streams: each page of the order list is recorded and pushed before the
next page is read, so a pass holds one page of orders, never the backlog. A push claims due
records in small batches (``flows.batch_size``, so many workers share a backlog) and:

1. looks the whole batch up in OrderWise with one call (``find_orders_by_references``) before
   anything is created: a reference OrderWise already holds (sent by us before, keyed by hand,
   left by another integration) is adopted, never sent again;
2. re-reads the order from SCAYLE unless this page of the poll holds it (webhook payloads are
   never trusted for money) and skips orders not confirmed or cancelled before import;
3. maps it (a mapping error quarantines the order with its reason);
4. records the recovery point and creates the sales order; an unclear outcome leaves the record
   ``sent``; OrderWise's 400 for an unknown variant quarantines it;
5. acknowledges the record with the OrderWise order id and number and writes the reference back
   to SCAYLE (``PUT reference-key``). When SCAYLE's ``ordersWrite`` budget is spent, the
   write-back waits in the ledger (a ``reference_write`` record) and catches up on later passes.

**The grace invariant.** An order that OrderWise may already hold is sent again only after a
negative lookup asked at least ``resend_grace_seconds`` after the *most recent* attempt that may
have reached OrderWise. The time of every attempt is recorded durably *before* its request leaves
(the ``attempted_at`` payload field, written in the same store write that renews the claim), so a
worker that dies after OrderWise committed a re-send but before its own ledger write still leaves
the newer time behind, and whoever claims the order next waits from there. The grace is measured
to the time of the lookup, not of the re-send, so a batch looked up once and worked through
slowly never re-sends on a stale answer. OrderWise imports API
orders through an e-commerce session and may hide them until the session runs, so the grace must
be longer than the session's interval. An order that stays invisible longer than
``order_stalled_after_seconds`` raises an alert. A pass never dies on one bad order.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs
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
from ..orderwise.models import OrderSummary
from ..scayle.client import SCOPE_ORDERS_WRITE
from ..scayle.models import Order
from ..store import Record, State
from ..store.base import ClaimHeldError
from .context import FlowContext, SyncResult
from .scayle_order import (
    CANCELLED_ORDER_CODES,
    IMPORTABLE_ORDER_CODES,
    ORDER_KIND,
    is_cancelled,
    is_importable,
    order_key,
)

__all__ = [
    "ATTEMPTED_AT",
    "CANCELLED_ORDER_CODES",
    "IMPORTABLE_ORDER_CODES",
    "ORDER_KIND",
    "REFERENCE_KIND",
    "WEBHOOK_KEY",
    "OrderSync",
    "is_cancelled",
    "is_importable",
    "last_attempt_at",
    "order_key",
    "reference_key",
]

REFERENCE_KIND = "reference_write"
"""Ledger kind of a reference write-back to SCAYLE that waits (for budget, or after a failure)."""
ATTEMPTED_AT = "attempted_at"
"""Payload field: when the most recent create for the order may have left (see the invariant)."""
LEGACY_SENT_AT = "sent_at"
"""The same time under the name 0.1.0 reads, so a 0.1.0 worker sharing the ledger waits too."""
WEBHOOK_KEY = "webhook_key"
"""Payload field: the de-duplication key of the webhook envelope that recorded the order."""
POLL_WATERMARK = "orders:poll_watermark"
NOT_CONFIRMED = "not confirmed in SCAYLE yet"


class OrderSync:
    """One pass of the orders flow; see the module docstring."""

    def __init__(self, ctx: FlowContext) -> None:
        self.ctx = ctx
        self._attempted: str | None = None
        # Order records this pass took that may be due again before it ends; settled ones leave
        # it, so a pass over a backlog of any size holds only what it handed back.
        self._seen: set[str] = set()

    # ----------------------------------------------------------------------------------------- intake

    def poll(self, result: SyncResult) -> None:
        """Walk the SCAYLE order list a page at a time: record each page's new confirmed orders
        and push what is due before reading the next page (memory stays one page)."""
        ctx = self.ctx
        started = ctx.clock()
        params: dict[str, str] = {}
        since_param = ctx.flows.order_poll_since_param
        watermark = ctx.store.get_cursor(POLL_WATERMARK)
        if since_param and watermark:
            overlap = timedelta(seconds=ctx.flows.poll_overlap_seconds)
            params[since_param] = (datetime.fromisoformat(watermark) - overlap).isoformat()
        try:
            pages = ctx.scayle.iter_orders(
                limit=ctx.flows.order_poll_page_size, params=params
            ).pages()
        except (ConnectorError, ValidationError) as exc:
            self._poll_failed(exc, result)
            return
        while True:
            try:
                page = next(pages, None)
            except (ConnectorError, ValidationError) as exc:
                # The poll is a safety net; webhooks and the next pass still bring the orders in.
                self._poll_failed(exc, result)
                return
            if page is None:
                break
            cache: dict[int, Order] = {}
            for order in page.entities:
                self.intake(order, result, cache)
            for entity_id, problem in page.rejected:
                self._set_aside(entity_id, problem, result)
            if cache:
                self.push_due(result, cache)
        ctx.store.set_cursor(POLL_WATERMARK, started.isoformat())

    @staticmethod
    def _poll_failed(exc: Exception, result: SyncResult) -> None:
        result.add("poll_failed")
        result.errors.append(f"order poll stopped: {type(exc).__name__}: {exc}")

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
        elif record.state != State.PENDING or not _mark_unless_held(
            ctx, key, State.QUARANTINED, reason
        ):
            return  # a worker holding it reads the order again and meets the problem itself
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
            elif record.state == State.PENDING and _mark_unless_held(
                self.ctx, key, State.CANCELLED, reason
            ):
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
        """Poll (optional) and push page by page, push what else is due (webhooks, retries),
        catch up on reference write-backs, raise stall alerts."""
        result = SyncResult("orders")
        if poll and self.ctx.flows.order_poll:
            self.poll(result)
        self.push_due(result, {})
        self.retry_reference_writes(result)
        self.check_stalled(result)
        return result

    def push_due(self, result: SyncResult, cache: Mapping[int, Order]) -> None:
        """Claim due order records in small batches, look each batch up in OrderWise with one
        call, and process them, until none is left. A record is processed once a pass: one
        taken again (it became due again during the pass) goes back to wait for the next."""
        ctx = self.ctx
        seen = self._seen
        requeued: set[str] = set()
        while True:
            batch = ctx.store.claim_next(
                ORDER_KIND,
                owner=ctx.worker_id,
                lease=ctx.lease,
                limit=ctx.flows.batch_size,
                now=ctx.clock(),
            )
            fresh = [r for r in batch if r.key not in seen]
            again = [r for r in batch if r.key in seen]
            # Taken again after being put back already: everything due before it was claimed.
            cycled = any(r.key in requeued for r in again)
            for record in again:
                self._requeue(record)
                requeued.add(record.key)
            if not fresh:
                if cycled or len(batch) < ctx.flows.batch_size:
                    return
                continue
            seen.update(r.key for r in fresh)
            looked_up_at = ctx.clock()
            found = self._look_up(fresh, result)
            if found is None:
                continue
            lookup = Lookup(found, looked_up_at)
            for index, record in enumerate(fresh):
                try:
                    self.process(record, cache, lookup, result)
                except BaseException:
                    # The pass stops (credentials, configuration, a crash): hand the rest back.
                    for rest in fresh[index + 1 :]:
                        ctx.release(rest, "the pass stopped before this order", backoff=False)
                    raise

    def _look_up(
        self, records: list[Record], result: SyncResult
    ) -> dict[str, list[OrderSummary]] | None:
        """What OrderWise holds for each record's reference: one call for the whole batch.

        ``None`` when the lookup failed: nothing may be created unchecked, so every record of
        the batch is released for a later pass.
        """
        ctx = self.ctx
        references = [ctx.mapper.external_reference(int(r.subject)) for r in records]
        try:
            return ctx.orderwise.find_orders_by_references(references)
        except (AuthenticationError, ConfigError):
            for record in records:
                ctx.release(record, "OrderWise lookup refused; the pass stops", backoff=False)
            raise
        except Exception as exc:
            for record in records:
                ctx.release_after_error(record, exc, result)
            return None

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

    def process(
        self, record: Record, cache: Mapping[int, Order], lookup: Lookup, result: SyncResult
    ) -> None:
        """Take one claimed order record as far as it can go; never raises for one bad order.

        ``lookup`` is what OrderWise held for the batch's references, and when it was asked.
        """
        ctx = self.ctx
        self._attempted = None

        def release(reason: str, *, backoff: bool) -> None:
            # Once the create may have left, the record can only go back to ``sent`` (look up first).
            ctx.release(record, reason, backoff=backoff, maybe_sent=self._attempted == record.key)

        try:
            self._process(record, cache, lookup, result)
        except AuthenticationError:
            release("authentication failed; the pass stops", backoff=False)
            raise
        except ConfigError:
            release("configuration error; the pass stops", backoff=False)
            raise
        except Exception as exc:  # a pass never dies on one bad order
            ctx.release_after_error(record, exc, result, maybe_sent=self._attempted == record.key)

    def _process(
        self, record: Record, cache: Mapping[int, Order], lookup: Lookup, result: SyncResult
    ) -> None:
        ctx = self.ctx
        order_id = int(record.subject)
        reference = ctx.mapper.external_reference(order_id)
        now = ctx.clock()

        held = lookup.found.get(reference)
        if held:  # checked before every create: OrderWise has it already
            self._adopt(record, order_id, reference, held, result)
            return
        if record.may_have_been_sent:
            attempted_at = last_attempt_at(ctx, record)
            grace = timedelta(seconds=ctx.flows.resend_grace_seconds)
            if attempted_at is None:
                result.add("never_sent")  # the worker died before its recovery point: safe to send
            elif lookup.at - attempted_at < grace:
                # The negative lookup is only worth a re-send when it was asked after the grace.
                ctx.store.transition(
                    record.key,
                    State.SENT,
                    owner=ctx.worker_id,
                    reason="accepted by OrderWise but not visible yet; looking up again later",
                    payload={**record.payload, ATTEMPTED_AT: attempted_at.isoformat()},
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
        # Recovery point (one write): hold the claim for the whole call and record that a request
        # may leave now, so whoever claims this order next looks it up and waits out the grace
        # from this attempt. Stamped last, just before the request, never earlier.
        stamp = ctx.clock().isoformat()
        sent_payload: dict[str, Any] = {
            **({WEBHOOK_KEY: record.payload[WEBHOOK_KEY]} if WEBHOOK_KEY in record.payload else {}),
            "reference": reference,
            ATTEMPTED_AT: stamp,
            LEGACY_SENT_AT: stamp,  # what 0.1.0 workers sharing the ledger read
            "currency": mapped.currency,
            "total_gross": mapped.total_gross,
            "lines": line_items,
        }
        try:
            ctx.store.renew(record.key, owner=ctx.worker_id, lease=ctx.lease, payload=sent_payload)
        except ClaimLostError:
            result.add("claim_lost")  # another worker took the order over; it carries on
            return
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
                next_attempt_at=ctx.clock(),
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
            result=result,
        )
        result.add("pushed")

    # ---------------------------------------------------------------------------------------- helpers

    def _adopt(
        self,
        record: Record,
        order_id: int,
        reference: str,
        found: list[OrderSummary],
        result: SyncResult,
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
            result=result,
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
        result: SyncResult,
    ) -> None:
        ctx = self.ctx
        written = False
        if self._write_budget_short():
            result.add("reference_deferred")  # waits in the ledger until ordersWrite frees up
        else:
            written = self._write_reference(order_id, reference)
            if not written:
                result.add("reference_write_failed")  # waits in the ledger; later passes retry
        if not written:
            # Noted before the acknowledgement, so a ledger failure in between loses nothing.
            ctx.store.ensure(reference_key(order_id), kind=REFERENCE_KIND, subject=str(order_id))
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
        self._seen.discard(record.key)
        ctx.alerts.resolve(AlertKind.ORDER_STALLED, str(order_id))
        ctx.alerts.resolve(AlertKind.ORDER_QUARANTINED, str(order_id))
        ctx.log(
            "order.acknowledged",
            order_id=order_id,
            orderwise_order_id=order_id_ow,
            reference=reference,
        )

    def _write_budget_short(self) -> bool:
        """True when SCAYLE's ``ordersWrite`` budget would make a write-back wait."""
        wait = self.ctx.scayle.budget.peek(SCOPE_ORDERS_WRITE)
        return wait > self.ctx.flows.reference_write_max_wait_seconds

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
        """Write back references that waited for budget or whose first write failed, as far as
        SCAYLE's ``ordersWrite`` budget allows now; the rest wait for a later pass."""
        ctx = self.ctx
        started = ctx.clock()
        seen: set[str] = set()
        while True:
            claimed = ctx.store.claim_next(
                REFERENCE_KIND,
                owner=ctx.worker_id,
                lease=ctx.lease,
                limit=ctx.flows.batch_size,
                now=started,
            )
            batch = [r for r in claimed if r.key not in seen]
            for record in claimed:
                if record.key in seen:  # failed once this pass already: the next pass retries
                    ctx.release(record, "reference write failed", backoff=True)
            if not batch:
                return
            seen.update(r.key for r in batch)
            for index, record in enumerate(batch):
                if self._write_budget_short():
                    wait = ctx.scayle.budget.peek(SCOPE_ORDERS_WRITE)
                    later = ctx.clock() + timedelta(seconds=max(1.0, wait))
                    for rest in batch[index:]:
                        ctx.store.transition(
                            rest.key,
                            State.PENDING,
                            owner=ctx.worker_id,
                            reason="waiting for SCAYLE's ordersWrite budget",
                            next_attempt_at=later,
                        )
                    result.add("references_waiting", len(batch) - index)
                    return
                order_id = int(record.subject)
                if self._write_reference(order_id, ctx.mapper.external_reference(order_id)):
                    ctx.store.transition(
                        record.key,
                        State.ACKNOWLEDGED,
                        owner=ctx.worker_id,
                        reason="reference written",
                    )
                    seen.discard(record.key)  # settled: the set holds only what may come back
                    result.add("references_written")
                else:
                    ctx.release(record, "reference write failed", backoff=True)
                    result.add("reference_write_failed")

    def _quarantine(self, record: Record, reason: str, code: str, result: SyncResult) -> None:
        ctx = self.ctx
        ctx.store.transition(
            record.key, State.QUARANTINED, owner=ctx.worker_id, reason=f"{code}: {reason}"
        )
        self._seen.discard(record.key)
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
                last_attempt_at(ctx, record) if record.state == State.SENT else None
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


@attrs.frozen
class Lookup:
    """What OrderWise held per reference for a claimed batch, and when it was asked."""

    found: Mapping[str, list[OrderSummary]]
    at: datetime


def _mark_unless_held(ctx: FlowContext, key: str, to_state: State, reason: str) -> bool:
    """Move a record without a claim; ``False`` when another worker claimed it meanwhile."""
    try:
        ctx.store.mark(key, to_state, reason=reason)
    except ClaimHeldError:
        return False
    return True


def reference_key(order_id: int | str) -> str:
    """The ledger key of a SCAYLE order's pending reference write-back."""
    return f"reference:{order_id}"


def _legacy_sent_cursor(order_id: int) -> str:
    return f"orders:sent_at:{order_id}"


def last_attempt_at(ctx: FlowContext, record: Record) -> datetime | None:
    """When a create for this order may last have reached OrderWise, or ``None`` if none left.

    The latest of the times recorded before each attempt (``attempted_at``; ``sent_at`` and a
    cursor in ledgers written by 0.1.0), so the grace always runs from the most recent attempt.
    """
    payload = record.payload or {}
    times = [payload.get(ATTEMPTED_AT), payload.get(LEGACY_SENT_AT)]
    if record.may_have_been_sent:
        times.append(ctx.store.get_cursor(_legacy_sent_cursor(int(record.subject))))
    parsed = [datetime.fromisoformat(t) for t in times if isinstance(t, str) and t]
    return max(parsed) if parsed else None
