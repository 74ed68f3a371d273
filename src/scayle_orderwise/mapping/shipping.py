"""Delivery charges: never re-priced, their VAT follows the goods (P10).

P10 as ``reference/money-policy.md`` states it: the delivery gross is split over the tax codes of
the *deliverable* lines in proportion to their gross after all discounts, by largest remainder over
codes (P7: ties to the larger remainder, then the larger weight, then the smaller tax-code string),
then P3 on each part. Fallbacks: the gross before the order-level voucher (after item reductions),
then the whole charge at the highest rate present among the deliverable goods, and between two codes
with that rate the smaller code string. With no deliverable goods at all the fee is taxed at the rate
SCAYLE gives for the fee itself, under that rate's code (:meth:`OrderMapper._shipping
<scayle_orderwise.mapping.OrderMapper>`). The result must reach OrderWise as booked: one carriage
line per part (:mod:`.wire`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from decimal import Decimal

import attrs

from ..money import allocate
from .tax import split_line_gross

__all__ = ["DeliveryGroup", "ShippingPart", "delivery_groups", "split_delivery"]


@attrs.frozen
class ShippingPart:
    """One VAT-code share of the delivery charge; amounts in minor units, ``gross == net + vat``."""

    tax_code: str
    rate: Decimal
    gross: int
    net: int
    vat: int


@attrs.frozen
class DeliveryGroup:
    """The deliverable goods of one (tax code, rate): gross after and before the order voucher."""

    tax_code: str
    rate: Decimal
    gross: int
    base: int

    @property
    def key(self) -> tuple[str, str]:
        """Tie-break key: the tax-code string (then the rate, should one code carry two rates)."""
        return (self.tax_code, str(self.rate))


def delivery_groups(lines: Iterable[tuple[str, Decimal, int, int]]) -> list[DeliveryGroup]:
    """Sum ``(tax_code, rate, gross, base)`` of deliverable lines per (tax code, rate), sorted by key."""
    sums: dict[tuple[str, Decimal], list[int]] = {}
    for code, rate, gross, base in lines:
        acc = sums.setdefault((code, rate), [0, 0])
        acc[0] += gross
        acc[1] += base
    groups = [DeliveryGroup(code, rate, g, b) for (code, rate), (g, b) in sums.items()]
    groups.sort(key=lambda g: g.key)
    return groups


def split_delivery(gross: int, groups: Sequence[DeliveryGroup]) -> tuple[ShippingPart, ...]:
    """Split a delivery gross over ``groups`` (P10 with its fallbacks); zero parts are left out.

    ``groups`` must not be empty (with no deliverable goods, the charge keeps its own rate).
    """
    if gross < 0:
        raise ValueError(f"delivery gross must not be negative, got {gross}")
    if not groups:
        raise ValueError("no deliverable goods to split the delivery charge over")
    if gross == 0:
        return ()
    keys = [g.key for g in groups]
    weights = [g.gross for g in groups]
    if not any(weights):
        weights = [g.base for g in groups]
    if any(weights):
        shares = allocate(gross, weights, keys)
    else:
        top = min(groups, key=lambda g: (-g.rate, g.key))
        shares = [gross if g is top else 0 for g in groups]
    parts = []
    for group, share in zip(groups, shares, strict=True):
        if share:
            net, vat = split_line_gross(share, group.rate)
            parts.append(ShippingPart(group.tax_code, group.rate, share, net, vat))
    return tuple(parts)
