"""Credits for returned or cancelled units: reverse the *mapped* amounts, never list prices (P13).

Partial quantities use the cumulative-difference rule: after ``j`` of a line's ``q`` units were
credited, crediting ``k`` more gives ``round(G·(j+k)/q) − round(G·j/q)`` of the line gross ``G``, and
the same for its VAT (half-up). So credits of a line always add up to the line exactly, and any
sequence of partial credits gives the same total as one credit of all the units together.

Credit amounts are negative (a credit note mirrors the sale): crediting line B of the E01 example
gives gross −666, VAT −111, net −555.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

import attrs

from .shipping import ShippingPart

if TYPE_CHECKING:
    from .mapper import MappedOrder

__all__ = [
    "CreditLine",
    "CreditNote",
    "credit_for_items",
    "cumulative_share",
    "full_credit",
    "refund_share",
]


def cumulative_share(total: int, quantity: int, units: int) -> int:
    """``round_half_up(total · units / quantity)`` in integer arithmetic (the share of ``units``)."""
    if quantity <= 0:
        raise ValueError(f"quantity must be positive, got {quantity}")
    if not 0 <= units <= quantity:
        raise ValueError(f"units must be within 0..{quantity}, got {units}")
    if total < 0:
        return -cumulative_share(-total, quantity, units)
    return (2 * total * units + quantity) // (2 * quantity)


def refund_share(total: int, quantity: int, already: int, units: int) -> int:
    """The part of ``total`` that ``units`` more units carry after ``already`` were credited (P13)."""
    if already < 0 or units < 0 or already + units > quantity:
        raise ValueError(f"cannot credit {units} unit(s) after {already} of a line of {quantity}")
    return cumulative_share(total, quantity, already + units) - cumulative_share(
        total, quantity, already
    )


@attrs.frozen
class CreditLine:
    """The credit of some units of one mapped line; amounts negative, ``gross == net + vat``."""

    line_key: int
    sku: str
    tax_code: str
    rate: Decimal
    quantity: int
    gross: int
    net: int
    vat: int
    item_ids: tuple[int, ...]


@attrs.frozen
class CreditNote:
    """Credit of an order's units (and optionally its delivery and fees); amounts negative."""

    external_reference: str
    currency: str
    lines: tuple[CreditLine, ...]
    shipping: tuple[ShippingPart, ...] = ()
    fees_gross: int = 0
    fees_net: int = 0
    fees_vat: int = 0

    @property
    def total_gross(self) -> int:
        """Sum of the gross of lines, delivery parts and fees."""
        return (
            sum(x.gross for x in self.lines) + sum(p.gross for p in self.shipping) + self.fees_gross
        )

    @property
    def total_vat(self) -> int:
        """Sum of the VAT of lines, delivery parts and fees."""
        return sum(x.vat for x in self.lines) + sum(p.vat for p in self.shipping) + self.fees_vat

    @property
    def total_net(self) -> int:
        """Sum of the net of lines, delivery parts and fees."""
        return sum(x.net for x in self.lines) + sum(p.net for p in self.shipping) + self.fees_net


def credit_for_items(
    mapped: MappedOrder,
    item_ids: Iterable[int],
    *,
    already_credited: Iterable[int] = (),
    include_shipping: bool = False,
    include_fees: bool = False,
) -> CreditNote:
    """Credit the SCAYLE units ``item_ids`` of a mapped order.

    ``already_credited`` are the units of the same order credited before (only their number per
    line matters). ``include_shipping`` / ``include_fees`` credit the whole delivery charge / the
    fees too (each only once: the caller decides when, e.g. with the last unit).
    Raises ``ValueError`` for an item id that is not in the order or is credited twice.
    """
    line_of: dict[int, int] = {}
    for index, line in enumerate(mapped.lines):
        for item_id in line.item_ids:
            line_of[item_id] = index
    now = list(item_ids)
    before = list(already_credited)
    seen: set[int] = set()
    for item_id in (*before, *now):
        if item_id not in line_of:
            raise ValueError(f"item {item_id} is not part of order {mapped.external_reference}")
        if item_id in seen:
            raise ValueError(f"item {item_id} is credited twice")
        seen.add(item_id)
    done = Counter(line_of[i] for i in before)
    todo = Counter(line_of[i] for i in now)
    credit_lines = []
    for index in sorted(todo):
        line = mapped.lines[index]
        j, k = done[index], todo[index]
        gross = refund_share(line.gross, line.quantity, j, k)
        vat = refund_share(line.vat, line.quantity, j, k)
        ids = tuple(sorted(i for i in now if line_of[i] == index))
        credit_lines.append(
            CreditLine(
                line.key, line.sku, line.tax_code, line.rate, k, -gross, vat - gross, -vat, ids
            )
        )
    shipping: tuple[ShippingPart, ...] = ()
    if include_shipping:
        shipping = tuple(
            ShippingPart(p.tax_code, p.rate, -p.gross, -p.net, -p.vat) for p in mapped.shipping
        )
    fees = mapped.fees if include_fees else ()
    return CreditNote(
        external_reference=mapped.external_reference,
        currency=mapped.currency,
        lines=tuple(credit_lines),
        shipping=shipping,
        fees_gross=-sum(f.gross for f in fees),
        fees_net=-sum(f.net for f in fees),
        fees_vat=-sum(f.vat for f in fees),
    )


def full_credit(mapped: MappedOrder) -> CreditNote:
    """The credit note of a full refund: the exact negation of the mapped order."""
    return credit_for_items(
        mapped,
        [i for line in mapped.lines for i in line.item_ids],
        include_shipping=True,
        include_fees=True,
    )
