"""Reading both systems for reconciliation and postings: SCAYLE orders × OrderWise orders.

SCAYLE orders are mapped with the connector's own mapper (the same amounts that were pushed), so a
faithful booking reconciles to zero; OrderWise orders come from the order-details export definition.
Both sides are streamed: the SCAYLE side is read page by page and the OrderWise rows are grouped per
order, and the reconciler sorts externally, so memory stays bounded for a month of orders.

Reconciliation and postings share one period rule (:class:`~scayle_orderwise.reconcile.periods.
ReportingPeriod`): instants ``[since, until)``, dates and naive times read in the books' time zone.
The postings of a period are remembered in the ledger (a cursor per period), so a journal exported
again after an order was booked late says which earlier batch it replaces (``full``) or adds to
(``additions``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import attrs

from ..errors import ConfigError, MappingError
from ..mapping import MappedOrder, parse_external_reference
from ..mapping.wire import header_delivery_vat
from ..money import exponent, round_half_up, to_fraction
from ..orderwise.models import OrderSummary
from ..orderwise.statuses import canonical_status
from ..reconcile import (
    ErpOrderSummary,
    LineSummary,
    ReconciliationReport,
    ShopOrderSummary,
    Tolerance,
    reconcile_orders,
)
from ..reconcile.periods import DEFAULT_TIMEZONE, ReportingPeriod
from ..reconcile.postings import (
    JOURNALS,
    Period,
    PostingSource,
    batch_id,
    build_postings,
    postings_csv,
)
from ..scayle.models import Order
from ..store import Record, State
from .context import FlowContext
from .orders import is_cancelled, is_importable, order_key

__all__ = [
    "PostingsExport",
    "Progress",
    "erp_summary",
    "export_postings",
    "postings_export",
    "reconcile_period",
    "shop_summaries",
    "shop_summary",
]

logger = logging.getLogger("scayle_orderwise.reconciliation")

Bound = date | datetime | None

Progress = Callable[[str], None]
"""Called with ``"scayle"`` or ``"orderwise"`` each time an order is read from that side."""


def _booked_at(order: Order) -> datetime | None:
    return order.confirmed_at or order.created_at


def _in_period(order: Order, period: ReportingPeriod) -> bool:
    when = _booked_at(order)
    if when is None:
        return period.since is None and period.until is None
    return when in period


def _goods_only(lines: tuple[LineSummary, ...]) -> tuple[LineSummary, ...]:
    # OrderWise books delivery as carriage lines per code (or in the header); either way shipping
    # is compared through the summaries' shipping gross and VAT, not as lines.
    return tuple(line for line in lines if not line.key.startswith("shipping|"))


def _voucher_codes(order: Order) -> tuple[str, ...]:
    cost = order.cost
    if cost is None:
        return ()
    codes = (r.code or r.display_name or r.category for r in cost.applied_reductions)
    return tuple(dict.fromkeys(c for c in codes if c))


def shop_summary(
    ctx: FlowContext, order: Order, mapped: MappedOrder, status: str
) -> ShopOrderSummary:
    """One mapped SCAYLE order as the reconciler sees it, booked the way the connector sends it."""
    # The mapping folds order-level vouchers into the line prices (P7), so OrderWise books no
    # separate discount: compare like with like, and carry the voucher to name it if it goes.
    summary = ShopOrderSummary.from_mapped(
        mapped,
        order_id=order.id,
        status=status,
        created_at=_booked_at(order),
        discount=0,
    )
    config = ctx.mapper.config
    return attrs.evolve(
        summary,
        lines=_goods_only(summary.lines),
        voucher_in_lines=0 if mapped.voucher_in_item_prices else mapped.voucher_applied,
        voucher_codes=_voucher_codes(order) if mapped.voucher_applied else (),
        header_shipping_vat=None
        if config.delivery_as_lines
        else header_delivery_vat(mapped.shipping),
    )


def shop_summaries(
    ctx: FlowContext,
    since: Bound = None,
    until: Bound = None,
    progress: Progress | None = None,
    *,
    period: ReportingPeriod | None = None,
) -> Iterator[ShopOrderSummary]:
    """Confirmed SCAYLE orders of the period as the reconciler sees them (mapped, to the penny)."""
    period = period or ReportingPeriod.of(since, until)
    for order in ctx.scayle.iter_orders():
        if progress is not None:
            progress("scayle")
        if not _in_period(order, period):
            continue
        cancelled = is_cancelled(order)
        if not cancelled and not is_importable(order):
            continue
        status = "cancelled" if cancelled else str(order.status or "open")
        try:
            mapped = ctx.mapper.map(order)
        except MappingError:
            yield _unmappable_summary(ctx, order, status)
            continue
        yield shop_summary(ctx, order, mapped, status)


def _unmappable_summary(ctx: FlowContext, order: Order, status: str) -> ShopOrderSummary:
    """An order the mapper refuses still takes part, with SCAYLE's own totals (it is quarantined)."""
    cost = order.cost
    gross = cost.with_tax if cost is not None and cost.with_tax is not None else 0
    vat = 0
    if cost is not None and cost.tax is not None and cost.tax.vat is not None:
        vat = cost.tax.vat.amount or 0
    return ShopOrderSummary(
        reference=ctx.mapper.external_reference(order.id),
        order_id=order.id,
        currency=order.currency_code or "GBP",
        gross=gross,
        vat=vat,
        status=status,
        created_at=order.confirmed_at or order.created_at,
    )


def _minor(value: Decimal | None, currency: str) -> int:
    """Minor units of an OrderWise amount; SQL ``money`` columns carry 4 decimals, rounded half-up."""
    if value is None:
        return 0
    return round_half_up(to_fraction(value) * 10 ** exponent(currency))


def erp_summary(ctx: FlowContext, order: OrderSummary) -> ErpOrderSummary:
    """One OrderWise order from the order-details export, in minor units, lines keyed as the shop's."""
    currency = (order.currency or "GBP").upper()
    reverse = _reverse_codes(ctx)
    delivery_code = ctx.mapper.config.delivery_variant_code
    merged: dict[tuple[str, str], list[int]] = {}
    shipping_gross = _minor(order.delivery_gross, currency)
    shipping_vat = _minor(order.delivery_vat, currency) if order.delivery_vat is not None else None
    for line in order.lines or []:
        code = line.variant_code or ""
        if delivery_code is not None and code == delivery_code:
            # delivery booked as one service line per VAT code (``delivery_variant_code``)
            shipping_gross += _minor(line.line_gross, currency)
            shipping_vat = (shipping_vat or 0) + _minor(line.line_vat, currency)
            continue
        key = reverse.get(code, code)
        tax_code = line.tax_code or ""
        acc = merged.setdefault((key, tax_code), [0, 0, 0])
        acc[0] += _minor(line.line_gross, currency)
        acc[1] += _minor(line.line_vat, currency)
        acc[2] += int(line.quantity or 0)
    lines = tuple(
        LineSummary(f"{key}|{code}", code, g, v, q)
        for (key, code), (g, v, q) in sorted(merged.items())
    )
    status = canonical_status(order.status_text or "", ctx.status_map)
    return ErpOrderSummary(
        reference=order.reference or "",
        order_id=order.ow_order_id if order.ow_order_id is not None else "",
        order_number=order.ow_order_number,
        currency=currency,
        gross=_minor(order.order_gross, currency),
        vat=_minor(order.order_vat, currency),
        net=_minor(order.order_net, currency) if order.order_net is not None else None,
        shipping_gross=shipping_gross,
        shipping_vat=shipping_vat,
        discount=_minor(order.discount_gross, currency),
        status=str(status),
        lines=lines,
    )


def _reverse_codes(ctx: FlowContext) -> dict[str, str]:
    """OrderWise variant code → the shop-side line key (SCAYLE SKU, or ``fee|<key>`` for fees)."""
    config = ctx.mapper.config
    reverse = {code: sku for sku, code in (config.sku_map or {}).items()}
    for fee_key, code in config.fee_variant_codes.items():
        reverse[code] = f"fee|{fee_key}"
    return reverse


def erp_summaries(
    ctx: FlowContext,
    since: Bound = None,
    until: Bound = None,
    progress: Progress | None = None,
    *,
    period: ReportingPeriod | None = None,
) -> Iterator[ErpOrderSummary]:
    """OrderWise orders of the period that belong to this shop (their reference parses as ours)."""
    period = period or ReportingPeriod.of(since, until)
    for order in ctx.orderwise.iter_order_details(since=period.since, until=period.until):
        if progress is not None:
            progress("orderwise")
        if (
            order.reference is None
            or parse_external_reference(order.reference, ctx.mapper.config) is None
        ):
            continue
        yield erp_summary(ctx, order)


def reconcile_period(
    ctx: FlowContext,
    *,
    since: Bound = None,
    until: Bound = None,
    tolerance: Tolerance | None = None,
    timezone: str = DEFAULT_TIMEZONE,
    progress: Progress | None = None,
) -> ReconciliationReport:
    """Reconcile the period (every order when both bounds are ``None``); see :mod:`.periods`.

    ``progress`` is called with ``"scayle"`` or ``"orderwise"`` for every order read from that side.
    """
    period = ReportingPeriod.of(since, until, timezone)
    return reconcile_orders(
        shop_summaries(ctx, progress=progress, period=period),
        erp_summaries(ctx, progress=progress, period=period),
        period=period.label,
        tolerance=tolerance,
        generated_at=ctx.clock(),
    )


# --------------------------------------------------------------------------------------- postings


@attrs.frozen
class PostingsExport:
    """One export of a period's postings.

    ``csv`` is the journal; ``journal`` is ``full`` (the whole period: it replaces
    ``previous_batches``) or ``additions`` (orders booked since the last export: it adds to them).
    ``late_orders`` counts orders acknowledged by OrderWise after the period's previous export;
    ``warnings`` says what a person must know (an empty ledger, a journal that replaces another).
    """

    csv: str
    batch_id: str
    period: str
    journal: str
    previous_batches: tuple[str, ...]
    orders: int
    late_orders: int
    warnings: tuple[str, ...]


def _cursor(period_id: str) -> str:
    return f"postings:{period_id}"


def _acknowledged_at(record: Record) -> datetime:
    for step in reversed(record.history):
        if step.to_state == State.ACKNOWLEDGED:
            return step.at
    return record.updated_at


def _dates(period: ReportingPeriod) -> Period:
    assert period.since is not None and period.until is not None
    first = period.local(period.since).date()
    end_local = period.local(period.until)
    end = end_local.date() + (
        timedelta(days=1) if end_local.time() != datetime.min.time() else timedelta()
    )
    return Period(first, max(end, first + timedelta(days=1)), name=period.id)


def postings_export(
    ctx: FlowContext,
    *,
    since: date | datetime,
    until: date | datetime,
    journal: str = "full",
    timezone: str = DEFAULT_TIMEZONE,
) -> PostingsExport:
    """The period's batched postings from the orders OrderWise acknowledged, with what changed.

    Built from the mapped SCAYLE orders of the period (one period rule with reconciliation), so the
    journal matches what was booked; the same orders always give the same bytes. See
    :class:`PostingsExport` for ``journal``.
    """
    if journal not in JOURNALS:
        raise ConfigError(f"journal must be one of {', '.join(JOURNALS)}, got {journal!r}")
    period = ReportingPeriod.of(since, until, timezone)
    dates = _dates(period)
    history: list[dict[str, Any]] = json.loads(ctx.store.get_cursor(_cursor(period.id)) or "[]")
    last_export = datetime.fromisoformat(history[-1]["exported_at"]) if history else None
    warnings: list[str] = []
    if journal == "additions" and not history:
        journal = "full"
        warnings.append("no earlier journal of this period was exported: this is its full journal.")
    sources: list[PostingSource] = []
    late = 0
    for order in ctx.scayle.iter_orders():
        if not _in_period(order, period) or is_cancelled(order) or not is_importable(order):
            continue
        record = ctx.store.get(order_key(order.id))
        if record is None or record.state != State.ACKNOWLEDGED:
            continue
        is_late = last_export is not None and _acknowledged_at(record) > last_export
        late += is_late
        if journal == "additions" and history and not is_late:
            continue
        try:
            mapped = ctx.mapper.map(order)
        except MappingError:
            continue
        when = _booked_at(order)
        booked = period.local(when).date() if when is not None else dates.start
        sources.append(
            PostingSource.from_mapped(mapped, booked_at=booked, discount=mapped.voucher_applied)
        )
    rows = build_postings(sources, dates)
    bid = batch_id(rows, dates)
    live = _live_batches(history)
    same = next((b for b in history if b["id"] == bid and b["journal"] == journal), None)
    if same is not None:  # exported before: the same bytes again
        previous = tuple(same["previous"])
    else:
        previous = live
        history.append(
            {
                "id": bid,
                "journal": journal,
                "previous": list(previous),
                "exported_at": ctx.clock().isoformat(),
            }
        )
        ctx.store.set_cursor(_cursor(period.id), json.dumps(history))
    warnings.extend(_postings_warnings(ctx, period, sources, journal, previous, late, same))
    for warning in warnings:
        logger.warning("postings %s: %s", period.id, warning)
    return PostingsExport(
        csv=postings_csv(rows, dates, journal=journal, previous=previous),
        batch_id=bid,
        period=period.id,
        journal=journal,
        previous_batches=previous,
        orders=len(sources),
        late_orders=late,
        warnings=tuple(warnings),
    )


def _live_batches(history: list[dict[str, Any]]) -> tuple[str, ...]:
    """The batches that stand for the period now: the last full journal and additions since."""
    live: list[str] = []
    for entry in history:
        if entry["journal"] == "full":
            live = [entry["id"]]
        else:
            live.append(entry["id"])
    return tuple(live)


def _postings_warnings(
    ctx: FlowContext,
    period: ReportingPeriod,
    sources: list[PostingSource],
    journal: str,
    previous: tuple[str, ...],
    late: int,
    same: dict[str, Any] | None,
) -> list[str]:
    out: list[str] = []
    if not ctx.store.counts(kind="order").get(State.ACKNOWLEDGED, 0):
        out.append(
            "the ledger holds no order acknowledged by OrderWise: is [store] url the connector's "
            "ledger? The journal is empty."
        )
    elif not sources and journal == "full":
        out.append(f"no order acknowledged by OrderWise was booked in {period.label}.")
    if same is not None or not previous:
        return out
    earlier = " + ".join(previous)
    if journal == "full":
        why = f"{late} order(s) were acknowledged late, after it was exported; " if late else ""
        out.append(
            f"this journal replaces batch {earlier}: {why}reverse the earlier batch and post "
            "this one (or export the additions alone with journal='additions')."
        )
    elif sources:
        out.append(f"this journal adds {len(sources)} late order(s) to batch {earlier}.")
    else:
        out.append(f"nothing was acknowledged since batch {earlier}: no additions to post.")
    return out


def export_postings(
    ctx: FlowContext,
    *,
    since: date | datetime,
    until: date | datetime,
    journal: str = "full",
    timezone: str = DEFAULT_TIMEZONE,
) -> str:
    """The period's batched postings as CSV (see :func:`postings_export`; warnings are logged)."""
    return postings_export(ctx, since=since, until=until, journal=journal, timezone=timezone).csv
