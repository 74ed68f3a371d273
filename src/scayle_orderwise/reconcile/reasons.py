"""Reason codes and tiers of reconciliation exceptions, with what finance or operations do next.

The rounding codes are those of ``reference/money-policy.md`` §3.1, lowercased. Every reason has one
row in :data:`REASONS`: a short title, its default tier and the next action, so reports, docs and the
CLI all say the same thing.
"""

from __future__ import annotations

from enum import StrEnum

import attrs

__all__ = ["REASONS", "Measure", "Reason", "ReasonInfo", "StockReason", "Tier"]


class Tier(StrEnum):
    """How urgent an exception is; :attr:`rank` sorts the most urgent first."""

    AUTO_ACCEPT = "auto_accept"
    """Variance fully explained by a rounding mechanism and within its derived bound."""
    REVIEW = "review"
    """Explained by a known non-rounding cause, or an operational state to check."""
    BLOCK = "block"
    """Unexplained money, a missing or duplicated order, or mixed currencies: fix before closing."""

    @property
    def rank(self) -> int:
        """0 for ``block``, 1 for ``review``, 2 for ``auto_accept`` (sort key: most urgent first)."""
        return {Tier.BLOCK: 0, Tier.REVIEW: 1, Tier.AUTO_ACCEPT: 2}[self]


class Reason(StrEnum):
    """Why a shop order and its OrderWise order do not agree (or why one of them is alone)."""

    MISSING_IN_ERP = "missing_in_erp"
    DUPLICATE_IN_ERP = "duplicate_in_erp"
    UNKNOWN_IN_SHOP = "unknown_in_shop"
    DUPLICATE_IN_SHOP = "duplicate_in_shop"
    TOTAL_MISMATCH = "total_mismatch"
    TAX_MISMATCH = "tax_mismatch"
    DISCOUNT_MISMATCH = "discount_mismatch"
    SHIPPING_MISMATCH = "shipping_mismatch"
    CURRENCY_MISMATCH = "currency_mismatch"
    STATUS_MISMATCH = "status_mismatch"
    CANCELLED_AFTER_DESPATCH = "cancelled_after_despatch"
    # money-policy §3.1 mechanisms
    ROUNDING_LINE_VS_DOC = "rounding_line_vs_doc"
    ERP_VAT_FROM_NET = "erp_vat_from_net"
    TIE_ROUNDING_MODE = "tie_rounding_mode"
    UNIT_VS_LINE_TAX = "unit_vs_line_tax"
    DISCOUNT_TAX_BASIS = "discount_tax_basis"
    PERCENT_DISCOUNT_BASIS = "percent_discount_basis"
    VOUCHER_ALLOCATION_DIFFERS = "voucher_allocation_differs"
    SHIPPING_VAT_TREATMENT = "shipping_vat_treatment"
    GIFT_CARD_AS_DISCOUNT = "gift_card_as_discount"
    VOUCHER_EXCESS = "voucher_excess"
    REFUND_BASIS = "refund_basis"
    PRICE_SOURCE = "price_source"
    FX_CONVERSION = "fx_conversion"
    LINE_SET_MISMATCH = "line_set_mismatch"
    UNEXPLAINED = "unexplained"

    @property
    def info(self) -> ReasonInfo:
        """Title, default tier and next action of this reason."""
        return REASONS[self]

    @property
    def tier(self) -> Tier:
        """Default tier of this reason."""
        return REASONS[self].tier

    @property
    def action(self) -> str:
        """What finance or operations should do next."""
        return REASONS[self].action

    @property
    def label(self) -> str:
        """Human title for reports."""
        return REASONS[self].title


class Measure(StrEnum):
    """What the amounts of an exception measure (reports say so in a column)."""

    GROSS = "gross"
    VAT = "vat"
    DELIVERY_GROSS = "delivery_gross"
    DELIVERY_VAT = "delivery_vat"
    DISCOUNT = "discount"

    @property
    def label(self) -> str:
        """Column text: ``"Order gross"``, ``"VAT"``, ``"Delivery gross"``, ..."""
        return {
            Measure.GROSS: "Order gross",
            Measure.VAT: "VAT",
            Measure.DELIVERY_GROSS: "Delivery gross",
            Measure.DELIVERY_VAT: "Delivery VAT",
            Measure.DISCOUNT: "Discount",
        }[self]


class StockReason(StrEnum):
    """Why a stock figure in SCAYLE differs from what OrderWise says it should be."""

    DRIFT = "drift"
    MISSING_IN_SHOP = "missing_in_shop"
    UNKNOWN_IN_ERP = "unknown_in_erp"


@attrs.frozen
class ReasonInfo:
    """One row of the reason table."""

    title: str
    tier: Tier
    action: str


_B, _R, _A = Tier.BLOCK, Tier.REVIEW, Tier.AUTO_ACCEPT

REASONS: dict[Reason, ReasonInfo] = {
    Reason.MISSING_IN_ERP: ReasonInfo(
        "Missing in OrderWise",
        _B,
        "Check the order in the connector ledger (quarantined or failed?), fix the cause and "
        "release it; operations must ship it or cancel it in SCAYLE.",
    ),
    Reason.DUPLICATE_IN_ERP: ReasonInfo(
        "Duplicated in OrderWise",
        _B,
        "Keep the first OrderWise order, cancel the others before picking, and tell the "
        "integration team (exactly-once was broken).",
    ),
    Reason.UNKNOWN_IN_SHOP: ReasonInfo(
        "In OrderWise but not in SCAYLE",
        _R,
        "Confirm whether it was keyed manually or came from another channel; if it claims to "
        "be a web order, find who created it before it is invoiced.",
    ),
    Reason.DUPLICATE_IN_SHOP: ReasonInfo(
        "Reference used twice in SCAYLE data",
        _B,
        "The reconciliation input holds two shop orders with one reference: check the export "
        "or the reference-key settings before trusting this report.",
    ),
    Reason.TOTAL_MISMATCH: ReasonInfo(
        "Order total differs",
        _B,
        "Compare the two orders line by line; correct the OrderWise order (or raise a credit "
        "or invoice adjustment) before month-end.",
    ),
    Reason.TAX_MISMATCH: ReasonInfo(
        "VAT differs",
        _B,
        "Finance: check the VAT codes on the OrderWise order (lines and delivery) against the "
        "shop's rates and correct the order before the VAT return; the amount is the VAT at stake.",
    ),
    Reason.DISCOUNT_MISMATCH: ReasonInfo(
        "Discount differs",
        _B,
        "Finance: check which voucher or promotion was applied in each system (the detail names "
        "it) and correct the OrderWise order or raise a credit.",
    ),
    Reason.SHIPPING_MISMATCH: ReasonInfo(
        "Delivery charge differs",
        _B,
        "Check the delivery charge and method on the OrderWise order against the shop order "
        "and correct it.",
    ),
    Reason.CURRENCY_MISMATCH: ReasonInfo(
        "Currency differs",
        _B,
        "Never post this order as is: correct the currency on the OrderWise order (or the "
        "shop-to-ERP currency setting) and re-check the amounts.",
    ),
    Reason.STATUS_MISMATCH: ReasonInfo(
        "Status differs",
        _R,
        "Operations: bring the two systems in line (cancel in OrderWise, or refund or cancel "
        "in SCAYLE) before goods leave or money is captured.",
    ),
    Reason.CANCELLED_AFTER_DESPATCH: ReasonInfo(
        "Cancelled in SCAYLE but already despatched",
        _B,
        "Customer service and operations: the goods left the warehouse but the order was "
        "cancelled in the shop, so the customer may be refunded for goods they receive. Stop or "
        "recover the parcel, or charge the customer again, then record the outcome in both "
        "systems.",
    ),
    Reason.ROUNDING_LINE_VS_DOC: ReasonInfo(
        "Rounding: VAT per line vs per document",
        _A,
        "No action: one side rounds VAT per line, the other per document; the difference is "
        "within the derived bound.",
    ),
    Reason.ERP_VAT_FROM_NET: ReasonInfo(
        "OrderWise derived gross from a 2-dp net",
        _R,
        "Finance: the order total moved by a penny per half-penny line because OrderWise "
        "re-derived gross prices from 2-decimal nets (only explained when the tolerance allows "
        "it); money moved, so confirm it and send gross prices to OrderWise.",
    ),
    Reason.TIE_ROUNDING_MODE: ReasonInfo(
        "Rounding: half-penny tie rounded differently",
        _A,
        "No action: a .5 VAT amount was rounded the other way; within one penny per line.",
    ),
    Reason.UNIT_VS_LINE_TAX: ReasonInfo(
        "Rounding: VAT per unit vs per line",
        _A,
        "No action: VAT was rounded per unit on one side and per line on the other, within "
        "the bound for the quantity.",
    ),
    Reason.DISCOUNT_TAX_BASIS: ReasonInfo(
        "Discount taxed on a different basis",
        _R,
        "Finance: check whether the discount was taken before or after VAT in OrderWise and "
        "correct the VAT if it was applied to a net base.",
    ),
    Reason.PERCENT_DISCOUNT_BASIS: ReasonInfo(
        "Percentage discount rounded per line vs per order",
        _R,
        "Finance: a percentage discount was rounded per line on one side and per order on the "
        "other (within the derived bound, only explained when the tolerance allows it); money "
        "moved, so confirm the discount in OrderWise.",
    ),
    Reason.VOUCHER_ALLOCATION_DIFFERS: ReasonInfo(
        "Voucher spread differently over VAT rates",
        _R,
        "Finance: same order total, but the voucher sits on different VAT rates; confirm the "
        "VAT per rate in OrderWise follows the shop's allocation.",
    ),
    Reason.SHIPPING_VAT_TREATMENT: ReasonInfo(
        "Delivery VAT booked under one tax code",
        _R,
        "Finance: the connector is set to book delivery in the OrderWise order header "
        "(delivery_booking = 'header'), which holds one tax code, so a delivery for goods of "
        "several VAT codes carries the VAT of its largest part. Correct the order's delivery VAT "
        "before the VAT return, or book delivery as carriage lines (the default).",
    ),
    Reason.GIFT_CARD_AS_DISCOUNT: ReasonInfo(
        "Gift card booked as a discount",
        _R,
        "Finance: a gift card is a payment, not a discount; rebook it as a payment so VAT is "
        "charged on the full price.",
    ),
    Reason.VOUCHER_EXCESS: ReasonInfo(
        "Voucher larger than the basket",
        _R,
        "Finance: OrderWise applied more voucher than the goods were worth; reduce the "
        "discount to the applied amount.",
    ),
    Reason.REFUND_BASIS: ReasonInfo(
        "Refund computed on another basis",
        _R,
        "Finance: refunds must reverse the booked (discounted) amounts; correct the credit note.",
    ),
    Reason.PRICE_SOURCE: ReasonInfo(
        "OrderWise used its own prices",
        _B,
        "Set OrderWise to take prices from the order, not its price list, and correct the order.",
    ),
    Reason.FX_CONVERSION: ReasonInfo(
        "Currency conversion rounding",
        _A,
        "No action: only the sterling summary differs by conversion rounding.",
    ),
    Reason.LINE_SET_MISMATCH: ReasonInfo(
        "Order lines differ",
        _B,
        "Compare the lines: a product is missing, extra or has another quantity in OrderWise; "
        "correct the order before it is picked.",
    ),
    Reason.UNEXPLAINED: ReasonInfo(
        "Small unexplained difference",
        _R,
        "Finance: within the configured allowance but not explained by a rounding rule; look "
        "at it if it recurs.",
    ),
}
