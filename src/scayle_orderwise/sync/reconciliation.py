"""Reading both systems for reconciliation and postings: SCAYLE orders × OrderWise orders.

SCAYLE orders are mapped with the connector's own mapper (the same amounts that were pushed), so a
faithful booking reconciles to zero; OrderWise orders come from the order-details export definition.
Both sides are streamed: the SCAYLE side is read page by page and the OrderWise rows are grouped per
order, and the reconciler sorts externally, so memory stays bounded for a month of orders.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal

import attrs

from ..errors import MappingError
from ..mapping import parse_external_reference
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
from ..reconcile.postings import Period, PostingSource, build_postings, postings_csv
from ..scayle.models import Order
from .context import FlowContext
from .orders import is_cancelled, is_importable

__all__ = ["Progress", "erp_summary", "export_postings", "reconcile_period", "shop_summaries"]

Progress = Callable[[str], None]
"""Called with ``"scayle"`` or ``"orderwise"`` each time an order is read from that side."""


def _in_period(order: Order, since: datetime | None, until: datetime | None) -> bool:
    when = order.confirmed_at or order.created_at
    if when is None:
        return since is None and until is None
    return (since is None or when >= since) and (until is None or when < until)


def _goods_only(lines: tuple[LineSummary, ...]) -> tuple[LineSummary, ...]:
    # OrderWise books delivery in the header (one tax code) or as service lines; either way shipping
    # is compared through the summaries' shipping gross and VAT, not as lines.
    return tuple(line for line in lines if not line.key.startswith("shipping|"))


def shop_summaries(
    ctx: FlowContext,
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> Iterator[ShopOrderSummary]:
    """Confirmed SCAYLE orders of the period as the reconciler sees them (mapped, to the penny)."""
    for order in ctx.scayle.iter_orders():
        if progress is not None:
            progress("scayle")
        if not _in_period(order, since, until):
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
        # The mapping folds order-level vouchers into the line prices (P7), so OrderWise books no
        # separate discount: compare like with like (line and total differences still show).
        summary = ShopOrderSummary.from_mapped(
            mapped,
            order_id=order.id,
            status=status,
            created_at=order.confirmed_at or order.created_at,
            discount=0,
        )
        yield attrs.evolve(summary, lines=_goods_only(summary.lines))


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
    since: datetime | None = None,
    until: datetime | None = None,
    progress: Progress | None = None,
) -> Iterator[ErpOrderSummary]:
    """OrderWise orders of the period that belong to this shop (their reference parses as ours)."""
    for order in ctx.orderwise.iter_order_details(since=since, until=until):
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
    since: datetime | None = None,
    until: datetime | None = None,
    tolerance: Tolerance | None = None,
    progress: Progress | None = None,
) -> ReconciliationReport:
    """Reconcile the period (every order when both bounds are ``None``).

    ``progress`` is called with ``"scayle"`` or ``"orderwise"`` for every order read from that side.
    """
    period = None
    if since is not None or until is not None:
        period = f"{since.isoformat() if since else '…'} – {until.isoformat() if until else '…'}"
    return reconcile_orders(
        shop_summaries(ctx, since, until, progress),
        erp_summaries(ctx, since, until, progress),
        period=period,
        tolerance=tolerance,
    )


def export_postings(ctx: FlowContext, *, since: datetime, until: datetime) -> str:
    """The period's batched postings (net, VAT, gross per tax code, shipping, discounts) as CSV.

    Built from the mapped SCAYLE orders of the period that OrderWise acknowledged, so the journal
    matches what was booked; the same period always gives the same bytes.
    """
    from ..store import State
    from .orders import order_key

    sources: list[PostingSource] = []
    for order in ctx.scayle.iter_orders():
        if not _in_period(order, since, until) or is_cancelled(order) or not is_importable(order):
            continue
        record = ctx.store.get(order_key(order.id))
        if record is None or record.state != State.ACKNOWLEDGED:
            continue
        try:
            mapped = ctx.mapper.map(order)
        except MappingError:
            continue
        booked_at = order.confirmed_at or order.created_at or since
        sources.append(
            PostingSource.from_mapped(mapped, booked_at=booked_at, discount=mapped.voucher_applied)
        )
    period = Period(since.date(), until.date())
    return postings_csv(build_postings(sources, period), period)
