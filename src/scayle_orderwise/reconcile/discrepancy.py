"""One reconciliation exception (:class:`Discrepancy`) and the rounding bounds that may explain
one (:class:`Tolerance`)."""

from __future__ import annotations

from typing import Any

import attrs

from ..money import Money
from .reasons import Measure, Reason, Tier

__all__ = ["Discrepancy", "ReconciliationException", "Tolerance"]


@attrs.frozen(kw_only=True)
class Tolerance:
    """Which variances may be explained as rounding, and their bounds.

    The defaults are the bounds derived in money-policy §3.2, not a flat allowance. A rounding
    mechanism only ever explains VAT, within its bound, with the gross equal: VAT per tax code
    ⌊(n+1)/2⌋ (line vs document), ±1 per half-penny line (tie rounding), ⌊(q+1)/2⌋ per line of
    quantity q (unit vs line). Money that moved is never accepted automatically: with OrderWise
    fed by this library the gross tolerance is 0. ``erp_vat_from_net`` (off by default; for an
    OrderWise fed 2-dp nets by something else) and ``percent_discount_basis`` name those
    mechanisms for a gross difference within their bound, for review. ``vat_slack`` widens every
    derived VAT bound; ``unexplained_allowance`` turns unexplained differences up to that many
    minor units into ``unexplained`` (review) instead of a blocking mismatch. Both default to 0.
    """

    line_vs_doc: bool = True
    erp_vat_from_net: bool = False
    tie_rounding: bool = True
    unit_vs_line_tax: bool = True
    percent_discount_basis: bool = False
    vat_slack: int = 0
    unexplained_allowance: int = 0

    def line_vs_doc_bound(self, n: int) -> int:
        """VAT bound for a tax-code group of ``n`` lines and shipping parts: ⌊(n+1)/2⌋ + slack."""
        return (n + 1) // 2 + self.vat_slack

    def unit_vs_line_bound(self, quantity: int) -> int:
        """VAT bound for one line of ``quantity`` units: ⌊(q+1)/2⌋ + slack."""
        return (quantity + 1) // 2 + self.vat_slack


def _reason_tier(self: Discrepancy) -> Tier:
    return self.reason.tier


def _reason_action(self: Discrepancy) -> str:
    return self.reason.action


def _difference(self: Discrepancy) -> int | None:
    if self.shop_amount is None or self.erp_amount is None:
        return None
    if self.erp_currency is not None and self.erp_currency != self.currency:
        return None
    return self.erp_amount - self.shop_amount


@attrs.frozen(kw_only=True)
class Discrepancy:
    """One reconciliation exception: an order (or pair) that needs a reason, a tier and an action.

    Amounts are ``int`` minor units of ``currency`` (``erp_amount`` of ``erp_currency`` when the
    two orders are in different currencies; ``None`` when that side has no figure). ``measure``
    says what they are (order gross, VAT, delivery gross or VAT, discount); ``difference`` is
    ``erp_amount - shop_amount`` (a missing order counts as 0; ``None`` across currencies).
    ``gross_difference`` is this row's share of the order-gross difference between the systems
    (OrderWise minus SCAYLE), counted once per order, so over a report's rows it adds up to the
    totals' difference. ``tier`` and ``action`` default to the reason's row in
    :data:`~scayle_orderwise.reconcile.reasons.REASONS`.
    """

    reference: str
    reason: Reason = attrs.field(converter=Reason)
    detail: str = ""
    currency: str | None = None
    shop_amount: int | None = None
    erp_amount: int | None = None
    erp_currency: str | None = None
    difference: int | None = attrs.field(default=attrs.Factory(_difference, takes_self=True))
    measure: Measure = attrs.field(default=Measure.GROSS, converter=Measure)
    gross_difference: int = 0
    tier: Tier = attrs.field(
        default=attrs.Factory(_reason_tier, takes_self=True),
        converter=Tier,
    )
    action: str = attrs.field(default=attrs.Factory(_reason_action, takes_self=True))
    shop_order_id: str | None = None
    erp_order_id: str | None = None
    erp_order_number: str | None = None

    @property
    def severity(self) -> Tier:
        """Alias of :attr:`tier`."""
        return self.tier

    @property
    def shop_money(self) -> Money | None:
        """``shop_amount`` as :class:`Money` (``None`` without an amount or currency)."""
        return _money(self.shop_amount, self.currency)

    @property
    def erp_money(self) -> Money | None:
        """``erp_amount`` as :class:`Money` (in ``erp_currency`` when it is set)."""
        return _money(self.erp_amount, self.erp_currency or self.currency)

    @property
    def difference_money(self) -> Money | None:
        """``difference`` as :class:`Money`."""
        return _money(self.difference, self.currency)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (amounts in minor units)."""
        return {
            "reference": self.reference,
            "reason": str(self.reason),
            "tier": str(self.tier),
            "measure": str(self.measure),
            "currency": self.currency,
            "shop_amount": self.shop_amount,
            "erp_amount": self.erp_amount,
            "erp_currency": self.erp_currency,
            "difference": self.difference,
            "gross_difference": self.gross_difference,
            "detail": self.detail,
            "action": self.action,
            "shop_order_id": self.shop_order_id,
            "erp_order_id": self.erp_order_id,
            "erp_order_number": self.erp_order_number,
        }


ReconciliationException = Discrepancy
"""Alias: the design calls the report's entries exceptions."""


def _money(amount: int | None, currency: str | None) -> Money | None:
    return None if amount is None or currency is None else Money(amount, currency)
