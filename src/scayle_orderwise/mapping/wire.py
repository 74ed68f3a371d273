"""``MappedOrder`` → OrderWise ``SalesOrderCreate`` (DESIGN §3 mapping, step 7).

OrderWise lines are priced per unit (``itemGross``, gross, major units). A line whose gross does not
divide by its quantity is split into at most two sub-lines whose unit prices differ by one minor
unit; the line's VAT is split over them by largest remainder, never recomputed (P11).

Delivery: OrderWise's header has one delivery charge with one tax code. With one shipping part it
goes there (``deliveryGross/Net/Tax/TaxCode``). With several parts (goods of several VAT codes) the
header carries the whole charge under the code of the largest part unless ``delivery_variant_code``
is configured, in which case each part becomes a service line at its own tax code and the header
delivery charge is 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from ..money import allocate, exponent
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

if TYPE_CHECKING:
    from .hooks import PostProcessor
    from .mapper import MappedOrder

__all__ = ["SubLine", "WireContext", "build_sales_order", "split_line", "to_major"]


@attrs.frozen
class SubLine:
    """One OrderWise line of a mapped line: ``quantity`` units at ``unit_gross`` (minor units)."""

    quantity: int
    unit_gross: int
    gross: int
    vat: int
    item_ids: tuple[int, ...] = ()

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
    for line in mapped.lines:
        code = ctx.variant_codes[line.key]
        for sub in split_line(line.gross, line.vat, line.quantity, line.item_ids):
            lines.append(
                OrderLine(
                    item_number=len(lines) + 1,
                    variant_code=code,
                    quantity=Decimal(sub.quantity),
                    item_gross=major(sub.unit_gross),
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
    if len(parts) > 1 and cfg.delivery_variant_code is not None:
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
    delivery_code = None
    if header_parts:
        delivery_code = min(header_parts, key=lambda p: (-p.gross, p.tax_code)).tax_code
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
