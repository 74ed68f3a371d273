"""``MappedOrder`` → OrderWise ``SalesOrderCreate`` (DESIGN §3 mapping, step 7).

OrderWise prices lines per unit (``itemGross``, gross, major units) and books VAT per line from the
line's tax code. So that it books exactly the mapped VAT of each product line (P5), a line whose
gross does not divide by its quantity is sent (P11) as one line at a unit price with up to
``unit_price_decimals`` decimals whose product with the quantity rounds back to the line's gross;
when no such price exists it is split into at most two sub-lines whose unit prices differ by one
minor unit, the line's VAT split over them by largest remainder, never recomputed.

Delivery (P10: "the result must reach the ERP as booked"): with ``delivery_booking = "lines"`` (the
default) every part of the delivery split becomes a line of the service item
``delivery_variant_code`` at its own tax code, and the header's delivery charge is 0. With
``"header"`` the charge goes in the header, which holds one tax code: a charge split over several
codes is sent whole under the code of its largest part.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from fractions import Fraction
from typing import TYPE_CHECKING

import attrs

from ..money import allocate, exponent, round_half_up
from ..orderwise.models import (
    CustomerRef,
    DeliveryAddress,
    OrderHeader,
    OrderLine,
    Payment,
    SalesOrderCreate,
)
from ..scayle.models import Order
from .config import MappingConfig
from .shipping import ShippingPart
from .tax import split_line_gross

if TYPE_CHECKING:
    from .hooks import PostProcessor
    from .mapper import MappedLine, MappedOrder

__all__ = [
    "SubLine",
    "WireContext",
    "build_sales_order",
    "goods_wire_lines",
    "header_delivery_part",
    "header_delivery_vat",
    "split_line",
    "to_major",
    "unit_price",
    "wire_lines",
]


@attrs.frozen
class SubLine:
    """One OrderWise line of a mapped line: ``quantity`` units at ``unit_gross`` (minor units).

    ``unit_price`` is set when the unit price sent has more decimals than the currency (major
    units, P11's first option); ``unit_gross`` is then that price rounded to a minor unit.
    """

    quantity: int
    unit_gross: int
    gross: int
    vat: int
    item_ids: tuple[int, ...] = ()
    unit_price: Decimal | None = None

    @property
    def net(self) -> int:
        """``gross - vat``."""
        return self.gross - self.vat


def split_line(
    gross: int, vat: int, quantity: int, item_ids: tuple[int, ...] = ()
) -> tuple[SubLine, ...]:
    """Split a line into at most two sub-lines with whole unit prices one minor unit apart (P11).

    The higher-priced sub-line comes first and takes the first (smallest) item ids. VAT is split
    over the sub-lines by largest remainder on their gross, so it sums to the line VAT.
    """
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    low, extra = divmod(gross, quantity)
    if extra == 0:
        return (SubLine(quantity, low, gross, vat, item_ids),)
    high_gross = extra * (low + 1)
    low_gross = (quantity - extra) * low
    high_vat, low_vat = allocate(vat, [high_gross, low_gross], [0, 1])
    return (
        SubLine(extra, low + 1, high_gross, high_vat, item_ids[:extra]),
        SubLine(quantity - extra, low, low_gross, low_vat, item_ids[extra:]),
    )


def unit_price(gross: int, quantity: int, currency: str, decimals: int) -> Decimal | None:
    """A unit price in major units with at most ``decimals`` decimals whose product with
    ``quantity``, rounded half-up to minor units, is exactly ``gross`` (P11); ``None`` if none is."""
    exp = exponent(currency)
    if quantity <= 0 or decimals < exp:
        return None
    units = round_half_up(Fraction(gross, quantity) * 10 ** (decimals - exp))
    if round_half_up(Fraction(units * quantity, 10 ** (decimals - exp))) != gross:
        return None
    return Decimal(units).scaleb(-decimals)


def wire_lines(
    gross: int,
    vat: int,
    quantity: int,
    item_ids: tuple[int, ...],
    currency: str,
    decimals: int,
) -> tuple[SubLine, ...]:
    """The OrderWise lines of one product line: one line when a unit price with at most
    ``decimals`` decimals carries its gross exactly, else the two-line split of P11."""
    if quantity > 0 and gross % quantity:
        price = unit_price(gross, quantity, currency, decimals)
        if price is not None:
            nearest = round_half_up(Fraction(gross, quantity))
            return (SubLine(quantity, nearest, gross, vat, item_ids, unit_price=price),)
    return split_line(gross, vat, quantity, item_ids)


def goods_wire_lines(
    mapped: MappedOrder, config: MappingConfig
) -> Iterator[tuple[MappedLine, SubLine]]:
    """Every product line's OrderWise lines, in the order they are numbered in the body."""
    for line in mapped.lines:
        for sub in wire_lines(
            line.gross,
            line.vat,
            line.quantity,
            line.item_ids,
            mapped.currency,
            config.unit_price_decimals,
        ):
            yield line, sub


def header_delivery_part(parts: Sequence[ShippingPart]) -> ShippingPart | None:
    """The part whose tax code the order header carries for the whole delivery (``"header"``
    booking): the largest, ties to the smaller tax code."""
    return min(parts, key=lambda p: (-p.gross, p.tax_code)) if parts else None


def header_delivery_vat(parts: Sequence[ShippingPart]) -> int | None:
    """The delivery VAT OrderWise books when the whole delivery goes in the header under the code
    of :func:`header_delivery_part` (``None`` without a delivery charge)."""
    part = header_delivery_part(parts)
    if part is None:
        return None
    return split_line_gross(sum(p.gross for p in parts), part.rate)[1]


def to_major(amount: int, currency: str) -> Decimal:
    """Minor units → ``Decimal`` major units with the currency's decimals (``185`` → ``1.85``)."""
    exp = exponent(currency)
    return Decimal(amount).scaleb(-exp) if exp else Decimal(amount)


@attrs.frozen
class WireContext:
    """What ``OrderMapper.map`` resolved for the wire body (hooks have already run)."""

    config: MappingConfig
    order: Order
    variant_codes: Mapping[int, str]
    fee_codes: tuple[str, ...]
    customer: CustomerRef
    delivery_method_id: int | None
    delivery_address: DeliveryAddress | None
    order_date: datetime
    post_process: PostProcessor | None = None


def build_sales_order(mapped: MappedOrder, ctx: WireContext) -> SalesOrderCreate:
    """The ``POST sales/order`` body of a mapped order (before ``post_process``)."""
    cfg = ctx.config
    exp = exponent(mapped.currency)
    rate_ids = cfg.tax_rate_ids

    def major(amount: int) -> Decimal:
        return Decimal(amount).scaleb(-exp) if exp else Decimal(amount)

    def rate_id(code: str) -> int | None:
        return rate_ids.get(code) if rate_ids is not None else None

    lines: list[OrderLine] = []
    for line, sub in goods_wire_lines(mapped, cfg):
        lines.append(
            OrderLine(
                item_number=len(lines) + 1,
                variant_code=ctx.variant_codes[line.key],
                quantity=Decimal(sub.quantity),
                item_gross=sub.unit_price if sub.unit_price is not None else major(sub.unit_gross),
                tax_rate_id=rate_id(line.tax_code),
                tax_code=line.tax_code,
                stock_location_id=cfg.stock_location_id,
                e_commerce_item_id=str(line.key),
                e_commerce_code=line.sku,
            )
        )
    for fee, code in zip(mapped.fees, ctx.fee_codes, strict=True):
        lines.append(
            OrderLine(
                item_number=len(lines) + 1,
                variant_code=code,
                quantity=Decimal(1),
                item_gross=major(fee.gross),
                tax_rate_id=rate_id(fee.tax_code),
                tax_code=fee.tax_code,
                e_commerce_code=fee.key,
            )
        )
    parts = mapped.shipping
    header_parts = parts
    if cfg.delivery_as_lines and cfg.delivery_variant_code is not None:
        header_parts = ()
        for part in parts:
            lines.append(
                OrderLine(
                    item_number=len(lines) + 1,
                    variant_code=cfg.delivery_variant_code,
                    quantity=Decimal(1),
                    item_gross=major(part.gross),
                    tax_rate_id=rate_id(part.tax_code),
                    tax_code=part.tax_code,
                    e_commerce_code="delivery",
                )
            )
    header_part = header_delivery_part(header_parts)
    delivery_code = header_part.tax_code if header_part is not None else None
    paid = [
        Payment(
            payment_method_id=cfg.payment_methods[p.key],
            amount=major(p.amount),
            reference=p.transaction_key,
            description=p.key,
        )
        for p in mapped.payments
        if p.key is not None and p.key in cfg.payment_methods
    ]
    header = OrderHeader(
        order_date=ctx.order_date,
        e_commerce_order_number=mapped.external_reference,
        system_order_type=1,
        delivery_method_id=ctx.delivery_method_id,
        delivery_gross=major(sum(p.gross for p in header_parts)),
        delivery_net=major(sum(p.net for p in header_parts)),
        delivery_tax=major(sum(p.vat for p in header_parts)),
        delivery_tax_code=delivery_code,
        order_gross=major(mapped.total_gross),
        order_net=major(mapped.total_net),
        order_tax=major(mapped.total_vat),
        amount_paid=major(sum(p.amount for p in mapped.payments)) if mapped.payments else None,
        customer_order_ref=ctx.order.public_key,
        currency_id=cfg.currency_ids.get(mapped.currency),
    )
    return SalesOrderCreate(
        customer=ctx.customer,
        order_header=header,
        customer_delivery_address=ctx.delivery_address,
        order_lines=lines,
        payments=paid or None,
    )
