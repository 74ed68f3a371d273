"""The money policy's steps, one small function each; ``OrderMapper.map`` calls them in order.

Each step cites its rule of ``reference/money-policy.md`` (P1–P14) or of DESIGN §3 mapping. Steps
that need a hook (SKU, tax code, deliverable, fee code) take it as a callable, so the functions stay
pure and can be tested alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import NamedTuple

from ..errors import (
    InconsistentOrderError,
    MixedCurrencyError,
    NegativeAmountError,
    UnknownTaxRateError,
)
from ..scayle.models import Fee, Order, OrderCost, OrderItem
from .errors import MalformedOrderError, PaymentMismatchError
from .sku import normalise_sku
from .tax import parse_rate

__all__ = [
    "FeeSplit",
    "LineGroup",
    "ProductLines",
    "check_payments",
    "check_total",
    "group_units",
    "read_fees",
    "requested_reductions",
    "require_cost",
]

TaxCodeOf = Callable[[Decimal, str | None], str]
"""``(rate, sku) -> tax code`` (the mapper's checked ``resolve_tax_code``)."""


class LineGroup(NamedTuple):
    """The SCAYLE units of one product line (P5): one SKU, unit price, VAT rate and tax code.

    ``key`` is the line's tie-break key, its smallest SCAYLE item id (P7); ``base`` its gross
    before the order-level voucher, ``unit × quantity``.
    """

    sku: str
    unit: int
    rate: Decimal
    tax_code: str
    items: tuple[OrderItem, ...]
    key: int
    base: int


class ProductLines(NamedTuple):
    """The order's product lines, sorted by key, and ``goods``: the sum of the item prices."""

    groups: tuple[LineGroup, ...]
    goods: int

    @property
    def bases(self) -> list[int]:
        """Each line's gross before the order-level voucher, in line order."""
        return [g.base for g in self.groups]

    @property
    def keys(self) -> list[int]:
        """Each line's tie-break key, in line order."""
        return [g.key for g in self.groups]


class FeeSplit(NamedTuple):
    """The order's fees: delivery ``(gross, SCAYLE rate)`` pairs, other fees, and all fees' gross."""

    delivery: tuple[tuple[int, Decimal | None], ...]
    other: tuple[tuple[Fee, int], ...]
    total: int


def require_cost(order: Order) -> OrderCost:
    """The order's ``cost`` with its ``withTax`` total, and at least one item (DESIGN §3 step 3)."""
    cost = order.cost
    if cost is None or cost.with_tax is None:
        raise InconsistentOrderError(f"order {order.id} has no cost.withTax total")
    if not order.items:
        raise InconsistentOrderError(f"order {order.id} has no items")
    return cost


def group_units(order: Order, currency: str, tax_code_of: TaxCodeOf) -> ProductLines:
    """Group SCAYLE units into product lines; item reductions are mirrored from ``withTax`` (P5, P6)."""
    groups: dict[tuple[str, int, Decimal, str], list[OrderItem]] = {}
    codes: dict[tuple[Decimal, str], str] = {}
    item_ids: set[int] = set()
    goods = 0
    for item in order.items:
        if item.id in item_ids:
            raise MalformedOrderError(
                f"order {order.id} repeats the SCAYLE item id {item.id}: item ids must be unique"
            )
        item_ids.add(item.id)
        price = item.price
        unit = price.with_tax if price is not None else None
        if unit is None:
            raise InconsistentOrderError(f"item {item.id} has no price.withTax")
        if unit < 0:
            raise NegativeAmountError(f"item {item.id} has a negative price {unit}")
        if item.currency is not None and item.currency.upper() != currency:
            raise MixedCurrencyError(
                f"item {item.id} is in {item.currency}, the order in {currency}"
            )
        sku = normalise_sku(item.sku)
        raw_rate = price.tax.vat.rate if price.tax and price.tax.vat else None  # type: ignore[union-attr]
        if raw_rate is None:
            raise UnknownTaxRateError(None, f"item {item.id} (SKU {sku!r}) has no VAT rate")
        rate = parse_rate(raw_rate)
        code = codes.get((rate, sku))
        if code is None:
            code = codes[(rate, sku)] = tax_code_of(rate, sku)
        groups.setdefault((sku, unit, rate, code), []).append(item)
        goods += unit
    lines = [
        LineGroup(sku, unit, rate, code, tuple(items), min(i.id for i in items), unit * len(items))
        for (sku, unit, rate, code), items in groups.items()
    ]
    lines.sort(key=lambda g: g.key)
    return ProductLines(tuple(lines), goods)


def read_fees(cost: OrderCost) -> FeeSplit:
    """Fees are never re-priced: delivery apart (P10), other non-zero fees kept with their gross."""
    delivery: list[tuple[int, Decimal | None]] = []
    other: list[tuple[Fee, int]] = []
    total = 0
    for fee in cost.applied_fees:
        amount = fee.amount.with_tax if fee.amount is not None else None
        name = fee.key or fee.category
        if amount is None:
            raise InconsistentOrderError(f"fee {name!r} has no amount.withTax")
        if amount < 0:
            raise NegativeAmountError(f"fee {name!r} has a negative amount {amount}")
        total += amount
        if fee.is_delivery:
            fee_rate = fee.tax.vat.rate if fee.tax and fee.tax.vat else None
            delivery.append((amount, fee_rate))
        elif amount:
            other.append((fee, amount))
    return FeeSplit(tuple(delivery), tuple(other), total)


def requested_reductions(cost: OrderCost) -> int:
    """The order-level reductions' ``absoluteWithTax``, summed into one requested amount (P8, P9)."""
    requested = 0
    for reduction in cost.applied_reductions:
        value = reduction.amount.absolute_with_tax if reduction.amount is not None else None
        if value is None:
            raise InconsistentOrderError(
                f"order reduction {reduction.code or reduction.category!r} has no absoluteWithTax"
            )
        if value < 0:
            raise NegativeAmountError(f"order reduction has a negative amount {value}")
        requested += value
    return requested


def check_total(grosses: Sequence[int], order_total: int) -> int:
    """The mapped gross adds up to SCAYLE's ``cost.withTax`` to the penny (P1, invariant 4.2.1)."""
    total = sum(grosses)
    if total != order_total:  # pragma: no cover - guaranteed by decide_voucher
        raise InconsistentOrderError(
            f"mapped total {total} differs from cost.withTax {order_total}"
        )
    return total


def check_payments(order: Order, cost: OrderCost, paid: Sequence[int]) -> None:
    """The payments add up to the order (P12: gift cards are payments, counted like the others).

    An order listing no payment passes (nothing paid is sent). Otherwise the payments must equal
    ``cost.withTax``, or that total less a membership discount (paid with points), or the total
    without service costs (``withTaxWithMembershipDiscountWithoutServiceCosts``), which is how
    SCAYLE's own SDK examples list them; anything else raises :class:`PaymentMismatchError`.
    """
    total = cost.with_tax or 0
    amount = sum(paid)
    if not paid or amount == total:
        return
    membership = order.membership_discount.reduction_value if order.membership_discount else None
    accepted = {total, total - (membership or 0)}
    without_fees = cost.with_tax_with_membership_discount_without_service_costs
    if without_fees is not None:
        accepted.add(without_fees)
    if amount in accepted:
        return
    n = len(paid)
    raise PaymentMismatchError(
        amount,
        total,
        f"order {order.id}: its {n} payment(s) add up to {amount}, the order total is {total}"
        + (f" ({total - (membership or 0)} after the membership discount)" if membership else "")
        + ": a payment listed twice or larger than the order? OrderWise would record a wrong "
        "amount paid",
    )
