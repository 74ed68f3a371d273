"""Order-level reductions: cap them at the goods (P9), find out whether SCAYLE already put them inside
the item prices, and spread what is left to allocate over the lines by largest remainder (P7)."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import attrs

from ..errors import InconsistentOrderError
from ..money import allocate

__all__ = ["VoucherDecision", "allocate_discount", "decide_voucher"]


@attrs.frozen
class VoucherDecision:
    """How the order-level reductions of one order are booked.

    ``requested`` is the sum of ``cost.appliedReductions[].amount.absoluteWithTax``. When the
    reductions are not yet inside the item prices, ``applied = min(requested, goods)`` is allocated
    over the lines and ``unused = requested - applied``. When SCAYLE already put them inside the item
    prices (``in_item_prices``), nothing is allocated: ``applied = requested`` and ``unused = 0``.
    """

    requested: int
    applied: int
    unused: int
    in_item_prices: bool

    @property
    def to_allocate(self) -> int:
        """The amount the mapper spreads over the lines (0 when already inside item prices)."""
        return 0 if self.in_item_prices else self.applied


def decide_voucher(*, goods: int, fees: int, requested: int, order_total: int) -> VoucherDecision:
    """Decide the reading of the order-level reductions that makes the order add up (DESIGN §3 step 3).

    ``goods`` is the sum of the item prices (after item reductions), ``fees`` the sum of all fees,
    ``order_total`` SCAYLE's ``cost.withTax``. Raises ``InconsistentOrderError`` if neither
    "not inside item prices" (``goods + fees - applied == total``) nor "inside item prices"
    (``goods + fees == total``) holds.
    """
    applied = min(requested, goods)
    if goods + fees - applied == order_total:
        return VoucherDecision(requested, applied, requested - applied, False)
    if goods + fees == order_total:
        return VoucherDecision(requested, requested, 0, True)
    raise InconsistentOrderError(
        f"order total {order_total} does not add up: items {goods} + fees {fees} = {goods + fees}"
        + (f", minus order reductions {applied} = {goods + fees - applied}" if applied else "")
    )


def allocate_discount(applied: int, bases: Sequence[int], keys: Sequence[Hashable]) -> list[int]:
    """Spread ``applied`` (≤ the sum of ``bases``) over lines by their gross, largest remainder (P7).

    Ties go to the smaller key (SCAYLE item id), so the result does not depend on line order; no
    line is discounted below zero.
    """
    if applied < 0 or applied > sum(bases):
        raise ValueError(f"discount {applied} is outside 0..{sum(bases)}")
    if applied == 0:
        return [0] * len(bases)
    return allocate(applied, bases, keys)
