"""Reconcile SCAYLE orders against OrderWise orders, streaming, and explain small variances.

Orders are joined by reference. Each matched pair is compared (status, currency, lines, gross,
shipping, discount, VAT); every difference becomes a :class:`Discrepancy` with a :class:`Reason`,
a :class:`Tier` and the next action. Variances that a rounding mechanism of money-policy §3 explains
within its derived bound are reported with tier ``auto_accept``, not as errors.

Memory: both inputs are consumed as streams. With ``presorted=True`` (both sorted by reference,
checked as they are read) the join holds only the current reference of each side. Otherwise each
input is sorted externally (chunks of ``chunk_size`` sorted in memory, spilled to temporary files
when there is more than one chunk, merged lazily), so memory stays O(chunk_size) whatever the month
holds, at the cost of one write and one read of each summary. The report keeps counts and the
exceptions only, never the clean orders; pass ``sink=`` (and ``keep_exceptions=False``) to stream
the exceptions out of huge runs too.
"""

from __future__ import annotations

import functools
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import attrs

from ..money import Money
from ._streams import UnsortedInputError, group_sorted, merge_join, sorted_by_reference
from .reasons import Reason, Tier
from .summaries import ErpOrderSummary, LineSummary, ShopOrderSummary

__all__ = [
    "CurrencyTotals",
    "Discrepancy",
    "ReconciliationException",
    "ReconciliationReport",
    "ReconciliationSummary",
    "StatusCheck",
    "Tolerance",
    "UnsortedInputError",
    "default_status_check",
    "reconcile_orders",
]

StatusCheck = Callable[[ShopOrderSummary, ErpOrderSummary], "str | None"]
"""``(shop, erp) -> None`` when the statuses agree, else a sentence describing the mismatch."""


@attrs.frozen(kw_only=True)
class Tolerance:
    """Which variances may be explained as rounding, and their bounds.

    The defaults are the bounds derived in money-policy §3.2, not a flat allowance: gross 0 unless
    OrderWise derived it from a 2-dp net (−1 per tie line); VAT per tax code ⌊(n+1)/2⌋ with equal
    gross; ±1 per tie line; ⌊(q+1)/2⌋ per line of quantity q. ``vat_slack`` widens every derived
    VAT bound; ``unexplained_allowance`` turns unexplained differences up to that many minor units
    into ``unexplained`` (review) instead of a blocking mismatch. Both default to 0.
    """

    line_vs_doc: bool = True
    erp_vat_from_net: bool = True
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
    return self.erp_amount - self.shop_amount


@attrs.frozen(kw_only=True)
class Discrepancy:
    """One reconciliation exception: an order (or pair) that needs a reason, a tier and an action.

    Amounts are ``int`` minor units of ``currency`` (``None`` when that side has no figure or the
    currencies differ); ``difference`` is ``erp_amount - shop_amount``. ``tier`` and ``action``
    default to the reason's row in :data:`~scayle_orderwise.reconcile.reasons.REASONS`.
    """

    reference: str
    reason: Reason = attrs.field(converter=Reason)
    detail: str = ""
    currency: str | None = None
    shop_amount: int | None = None
    erp_amount: int | None = None
    difference: int | None = attrs.field(default=attrs.Factory(_difference, takes_self=True))
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
        """``erp_amount`` as :class:`Money`."""
        return _money(self.erp_amount, self.currency)

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
            "currency": self.currency,
            "shop_amount": self.shop_amount,
            "erp_amount": self.erp_amount,
            "difference": self.difference,
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


@attrs.define
class CurrencyTotals:
    """Gross totals of one currency over all input orders of each side."""

    shop_gross: int = 0
    erp_gross: int = 0

    @property
    def difference(self) -> int:
        """``erp_gross - shop_gross``."""
        return self.erp_gross - self.shop_gross


@attrs.define
class ReconciliationSummary:
    """Counts and totals of one reconciliation run.

    ``matched`` counts references present on both sides; ``clean`` those with no exception at
    all; ``explained`` those whose only exceptions are auto-accepted rounding variances;
    ``cancelled_not_in_erp`` shop orders cancelled before they reached OrderWise (not exceptions).
    ``by_reason`` and ``by_tier`` count exceptions, kept or not.
    """

    shop_orders: int = 0
    erp_orders: int = 0
    matched: int = 0
    clean: int = 0
    explained: int = 0
    cancelled_not_in_erp: int = 0
    by_reason: dict[str, int] = attrs.Factory(dict)
    by_tier: dict[str, int] = attrs.Factory(dict)
    totals: dict[str, CurrencyTotals] = attrs.Factory(dict)

    @property
    def exceptions(self) -> int:
        """Number of exceptions of every tier."""
        return sum(self.by_tier.values())

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (amounts in minor units)."""
        return {
            "shop_orders": self.shop_orders,
            "erp_orders": self.erp_orders,
            "matched": self.matched,
            "clean": self.clean,
            "explained": self.explained,
            "cancelled_not_in_erp": self.cancelled_not_in_erp,
            "exceptions": self.exceptions,
            "by_reason": dict(sorted(self.by_reason.items())),
            "by_tier": {t.value: self.by_tier.get(t.value, 0) for t in Tier},
            "totals": {
                cur: {
                    "shop_gross": t.shop_gross,
                    "erp_gross": t.erp_gross,
                    "difference": t.difference,
                }
                for cur, t in sorted(self.totals.items())
            },
        }


@attrs.define
class ReconciliationReport:
    """The outcome of :func:`reconcile_orders`: ``summary`` plus the kept ``exceptions``."""

    summary: ReconciliationSummary = attrs.Factory(ReconciliationSummary)
    exceptions: list[Discrepancy] = attrs.Factory(list)
    tolerance: Tolerance = attrs.Factory(Tolerance)
    period: str | None = None

    def by_tier(self, tier: Tier | str) -> list[Discrepancy]:
        """Kept exceptions of one tier."""
        return [e for e in self.exceptions if e.tier == tier]

    def by_reason(self) -> dict[Reason, list[Discrepancy]]:
        """Kept exceptions grouped by reason, most urgent tier first, then reason order."""
        groups: dict[Reason, list[Discrepancy]] = defaultdict(list)
        for exc in self.exceptions:
            groups[exc.reason].append(exc)
        order = list(Reason)
        return dict(
            sorted(
                groups.items(),
                key=lambda kv: (min(e.tier.rank for e in kv[1]), order.index(kv[0])),
            )
        )

    @property
    def blocking(self) -> list[Discrepancy]:
        """Kept exceptions of tier ``block``."""
        return self.by_tier(Tier.BLOCK)

    @property
    def ok(self) -> bool:
        """True when nothing needs review or blocks (auto-accepted variances are fine)."""
        tiers = self.summary.by_tier
        return not tiers.get(Tier.BLOCK.value) and not tiers.get(Tier.REVIEW.value)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict."""
        return {
            "kind": "orders",
            "period": self.period,
            "summary": self.summary.to_dict(),
            "exceptions": [e.to_dict() for e in self.exceptions],
        }


# --------------------------------------------------------------------------- statuses

_SHOP_CANCELLED = frozenset(
    {
        "cancellation_completed",
        "cancelled",
        "canceled",
        "order_cancelled",
        "aborted",
        "order_aborted",
    }
)
_SHOP_CANCELLING = frozenset({"cancellation_pending"})
_ERP_CANCELLED = frozenset({"cancelled", "canceled"})
_ERP_SHIPPED = frozenset(
    {"despatched", "dispatched", "partially_despatched", "invoiced", "completed"}
)


@functools.lru_cache(maxsize=1024)
def _norm_status(text: str) -> str:
    return "_".join(text.strip().lower().replace("-", " ").split())


def is_shop_cancelled(status: str) -> bool:
    """True for SCAYLE statuses meaning the order is cancelled (or aborted)."""
    return _norm_status(status) in _SHOP_CANCELLED


def default_status_check(shop: ShopOrderSummary, erp: ErpOrderSummary) -> str | None:
    """Flag cancellations that only one system knows about.

    Cancelled in SCAYLE but not in OrderWise (worse if OrderWise despatched it), or cancelled in
    OrderWise while SCAYLE neither cancelled nor is cancelling it. Lags such as "despatched in
    OrderWise, not yet shipped in SCAYLE" are the monitor's business, not reconciliation's.
    """
    s, e = _norm_status(shop.status), _norm_status(erp.status)
    shop_cancelled = s in _SHOP_CANCELLED
    erp_cancelled = e in _ERP_CANCELLED
    if shop_cancelled and not erp_cancelled:
        if e in _ERP_SHIPPED:
            return (
                f"Cancelled in SCAYLE ({s}) but OrderWise has already despatched it ({e}): "
                "the customer may have been refunded for goods that left the warehouse."
            )
        return f"Cancelled in SCAYLE ({s}) but still live in OrderWise ({e or 'no status'})."
    if erp_cancelled and not shop_cancelled and s not in _SHOP_CANCELLING:
        return f"Cancelled in OrderWise but not in SCAYLE ({s or 'no status'})."
    return None


# --------------------------------------------------------------------------- comparison


def _fmt(amount: int, currency: str) -> str:
    return str(Money(amount, currency))


def _signed(amount: int, currency: str) -> str:
    return ("+" if amount > 0 else "") + _fmt(amount, currency)


def _groups_by_code(lines: Iterable[LineSummary]) -> dict[str, tuple[int, int, int]]:
    """``tax_code -> (count, gross, vat)``."""
    acc: dict[str, list[int]] = {}
    for line in lines:
        a = acc.setdefault(line.tax_code, [0, 0, 0])
        a[0] += 1
        a[1] += line.gross
        a[2] += line.vat
    return {code: (a[0], a[1], a[2]) for code, a in acc.items()}


class _Pair:
    """One shop order compared with one OrderWise order."""

    def __init__(self, shop: ShopOrderSummary, erp: ErpOrderSummary, tol: Tolerance) -> None:
        self.shop = shop
        self.erp = erp
        self.tol = tol
        self.cur = shop.currency
        self.make = functools.partial(
            Discrepancy,
            reference=shop.reference,
            shop_order_id=shop.order_id,
            erp_order_id=erp.order_id,
            erp_order_number=erp.order_number,
        )
        self.line_pairs: list[tuple[LineSummary, LineSummary]] | None = None

    def amounts(self, reason: Reason, shop: int, erp: int, detail: str, **kw: Any) -> Discrepancy:
        return self.make(
            reason=reason, currency=self.cur, shop_amount=shop, erp_amount=erp, detail=detail, **kw
        )

    def compare(self, status_check: StatusCheck | None) -> list[Discrepancy]:
        shop, erp = self.shop, self.erp
        out: list[Discrepancy] = []
        if status_check is not None:
            message = status_check(shop, erp)
            if message:
                out.append(self.make(reason=Reason.STATUS_MISMATCH, detail=message))
        if shop.currency != erp.currency:
            out.append(
                self.make(
                    reason=Reason.CURRENCY_MISMATCH,
                    detail=(
                        f"SCAYLE order is {_fmt(shop.gross, shop.currency)}, OrderWise order is "
                        f"{_fmt(erp.gross, erp.currency)}: amounts in different currencies are "
                        "never compared or netted."
                    ),
                )
            )
            return out
        line_problem = self._line_set()
        if line_problem is not None:
            out.append(line_problem)
            return out
        dg = erp.gross - shop.gross
        if dg:
            out.append(self._explain_gross(dg))
            return out
        components = self._components()
        if components:
            out.extend(components)
            return out
        internal = self._erp_internal()
        if internal is not None:
            out.append(internal)
            return out
        dv = erp.vat - shop.vat
        if dv or self._code_vat_moves():
            out.append(self._explain_vat(dv))
        return out

    # -- lines -----------------------------------------------------------------------------

    def _line_set(self) -> Discrepancy | None:
        shop_lines, erp_lines = self.shop.lines, self.erp.lines
        if not shop_lines or not erp_lines:
            return None
        s_by = {line.key: line for line in shop_lines}
        e_by = {line.key: line for line in erp_lines}
        missing = sorted(s_by.keys() - e_by.keys())
        extra = sorted(e_by.keys() - s_by.keys())
        qty = sorted(k for k in s_by.keys() & e_by.keys() if s_by[k].quantity != e_by[k].quantity)
        dup = len(s_by) != len(shop_lines) or len(e_by) != len(erp_lines)
        if not (missing or extra or qty or dup):
            self.line_pairs = [(s_by[k], e_by[k]) for k in sorted(s_by)]
            return None
        parts = []
        if missing:
            parts.append("not in OrderWise: " + ", ".join(missing[:5]))
        if extra:
            parts.append("only in OrderWise: " + ", ".join(extra[:5]))
        if qty:
            parts.append(
                "quantity differs: "
                + ", ".join(f"{k} {s_by[k].quantity}→{e_by[k].quantity}" for k in qty[:5])
            )
        if dup:
            parts.append("a line key appears twice on one side")
        return self.amounts(
            Reason.LINE_SET_MISMATCH,
            self.shop.gross,
            self.erp.gross,
            "Order lines differ (" + "; ".join(parts) + ").",
        )

    # -- gross -----------------------------------------------------------------------------

    def _explain_gross(self, dg: int) -> Discrepancy:
        shop, erp, tol, cur = self.shop, self.erp, self.tol, self.cur
        d_disc = erp.discount - shop.discount
        d_ship = erp.shipping_gross - shop.shipping_gross
        gross = functools.partial(self.amounts, shop=shop.gross, erp=erp.gross)
        if shop.gift_card and dg == -shop.gift_card and d_disc == shop.gift_card:
            return gross(
                Reason.GIFT_CARD_AS_DISCOUNT,
                detail=(
                    f"OrderWise booked the {_fmt(shop.gift_card, cur)} gift-card payment as a "
                    f"discount, so its total is {_fmt(-dg, cur)} lower and its VAT "
                    f"{_fmt(shop.vat - erp.vat, cur)} lower."
                ),
            )
        if shop.unused_voucher and 0 < d_disc <= shop.unused_voucher and dg == -d_disc:
            return gross(
                Reason.VOUCHER_EXCESS,
                detail=(
                    f"OrderWise applied {_fmt(d_disc, cur)} more voucher than the goods allowed "
                    f"(unused voucher value {_fmt(shop.unused_voucher, cur)})."
                ),
            )
        if tol.erp_vat_from_net and not d_disc:
            ties = self._vat_from_net_lines(dg, d_ship)
            if ties is not None:
                return gross(
                    Reason.ERP_VAT_FROM_NET,
                    detail=(
                        f"OrderWise total is {_fmt(-dg, cur)} lower: it re-derived gross from a "
                        f"2-dp net on {ties} half-penny line(s) (at most 1 minor unit each)."
                    ),
                )
        if tol.percent_discount_basis and d_disc == -dg and shop.lines:
            n = sum(1 for line in shop.lines if not line.key.startswith("shipping"))
            bound = tol.line_vs_doc_bound(n)
            if abs(d_disc) <= bound:
                return self.amounts(
                    Reason.PERCENT_DISCOUNT_BASIS,
                    shop.discount,
                    erp.discount,
                    f"Percentage discount rounded per line vs per order: {_signed(d_disc, cur)} "
                    f"(bound {bound} minor units for {n} lines).",
                )
        if d_ship == dg:
            return self.amounts(
                Reason.SHIPPING_MISMATCH,
                shop.shipping_gross,
                erp.shipping_gross,
                f"Delivery charge differs by {_signed(d_ship, cur)}; the goods agree.",
            )
        if d_disc == -dg:
            return self.amounts(
                Reason.DISCOUNT_MISMATCH,
                shop.discount,
                erp.discount,
                f"Discount differs by {_signed(d_disc, cur)}, which accounts for the whole "
                f"difference in the order total ({_signed(dg, cur)}).",
            )
        if abs(dg) <= tol.unexplained_allowance:
            return gross(
                Reason.UNEXPLAINED,
                detail=(
                    f"Total differs by {_signed(dg, cur)}, within the configured allowance "
                    f"of {tol.unexplained_allowance} minor units but not explained by rounding."
                ),
            )
        extra = []
        if d_ship:
            extra.append(f"delivery {_signed(d_ship, cur)}")
        if d_disc:
            extra.append(f"discount {_signed(d_disc, cur)}")
        tail = f" (also differ: {', '.join(extra)})" if extra else ""
        return gross(
            Reason.TOTAL_MISMATCH,
            detail=f"OrderWise total differs by {_signed(dg, cur)}{tail}; no rounding rule explains it.",
        )

    def _vat_from_net_lines(self, dg: int, d_ship: int) -> int | None:
        """Number of tie lines if the gap is OrderWise re-deriving gross from 2-dp nets.

        Re-grossing never touches the discount (the caller checks it is equal). Without OrderWise
        lines the delivery charge must agree too, so that a real one-penny delivery difference is
        not taken for rounding; with lines, a lower delivery charge must be exactly the lowering
        of the shipping lines, each a tie lowered by one.
        """
        if dg >= 0:
            return None
        ties = [line for line in self.shop.lines if line.is_vat_tie()]
        if not ties:
            return None
        if self.line_pairs is not None:
            lowered = 0
            ship_lowered = 0
            for s, e in self.line_pairs:
                d = e.gross - s.gross
                if d == 0:
                    continue
                if d != -1 or not s.is_vat_tie():
                    return None
                lowered += 1
                if s.key.startswith("shipping"):
                    ship_lowered += 1
            return lowered if -lowered == dg and -ship_lowered == d_ship else None
        if d_ship:
            return None
        return len(ties) if -dg <= len(ties) else None

    # -- components with equal gross -------------------------------------------------------

    def _components(self) -> list[Discrepancy]:
        shop, erp, cur = self.shop, self.erp, self.cur
        out: list[Discrepancy] = []
        d_ship = erp.shipping_gross - shop.shipping_gross
        d_disc = erp.discount - shop.discount
        if d_ship:
            out.append(
                self.amounts(
                    Reason.SHIPPING_MISMATCH,
                    shop.shipping_gross,
                    erp.shipping_gross,
                    f"Delivery charge differs by {_signed(d_ship, cur)} although the order totals "
                    "agree: the goods were priced differently to compensate.",
                    tier=Tier.REVIEW,
                )
            )
        if d_disc:
            out.append(
                self.amounts(
                    Reason.DISCOUNT_MISMATCH,
                    shop.discount,
                    erp.discount,
                    f"Discount differs by {_signed(d_disc, cur)} although the order totals agree: "
                    "prices and discount were split differently.",
                    tier=Tier.REVIEW,
                )
            )
        if out or self.line_pairs is None:
            return out
        moved = [(s, e) for s, e in self.line_pairs if s.gross != e.gross]
        if not moved:
            return out
        keys = ", ".join(s.key for s, _ in moved[:5])
        s_codes = {c: g for c, (_, g, _) in _groups_by_code(s for s, _ in self.line_pairs).items()}
        e_codes = {c: g for c, (_, g, _) in _groups_by_code(e for _, e in self.line_pairs).items()}
        if shop.discount and s_codes != e_codes:
            out.append(
                self.amounts(
                    Reason.VOUCHER_ALLOCATION_DIFFERS,
                    shop.vat,
                    erp.vat,
                    f"Same total, but the {_fmt(shop.discount, cur)} voucher sits on other VAT "
                    f"rates in OrderWise (lines {keys}); VAT differs by "
                    f"{_signed(erp.vat - shop.vat, cur)}.",
                )
            )
        else:
            out.append(
                self.amounts(
                    Reason.PRICE_SOURCE,
                    shop.gross,
                    erp.gross,
                    f"Same total, but line prices differ (lines {keys}).",
                )
            )
        return out

    def _erp_internal(self) -> Discrepancy | None:
        erp = self.erp
        if erp.net is None or erp.net + erp.vat == erp.gross:
            return None
        return self.amounts(
            Reason.TAX_MISMATCH,
            self.shop.vat,
            erp.vat,
            f"OrderWise's own figures do not add up: net {_fmt(erp.net, self.cur)} + VAT "
            f"{_fmt(erp.vat, self.cur)} ≠ gross {_fmt(erp.gross, self.cur)}.",
        )

    # -- VAT with equal gross --------------------------------------------------------------

    def _explain_vat(self, dv: int) -> Discrepancy:
        """Explain a VAT difference with equal gross; ``dv == 0`` when VAT only moved between codes."""
        shop, erp, tol, cur = self.shop, self.erp, self.tol, self.cur
        if dv == 0:
            return self._explain_vat_moves()
        vat = functools.partial(self.amounts, shop=shop.vat, erp=erp.vat)
        if shop.shipping_vat is not None and erp.shipping_vat is not None:
            d_ship_vat = erp.shipping_vat - shop.shipping_vat
            if d_ship_vat and d_ship_vat == dv:
                return self.amounts(
                    Reason.SHIPPING_VAT_TREATMENT,
                    shop.shipping_vat,
                    erp.shipping_vat,
                    f"Only the delivery VAT differs ({_signed(d_ship_vat, cur)}): OrderWise "
                    "taxed delivery differently from the goods it carried.",
                )
        if self.line_pairs is not None:
            diffs = [(s, e.vat - s.vat) for s, e in self.line_pairs if e.vat != s.vat]
            if diffs and sum(d for _, d in diffs) == dv:
                if tol.tie_rounding and all(abs(d) == 1 and s.is_vat_tie() for s, d in diffs):
                    return vat(
                        Reason.TIE_ROUNDING_MODE,
                        detail=(
                            f"VAT differs by {_signed(dv, cur)} on {len(diffs)} line(s) whose "
                            "exact VAT ends in half a penny, rounded the other way."
                        ),
                    )
                if tol.unit_vs_line_tax and all(
                    s.quantity > 1 and abs(d) <= tol.unit_vs_line_bound(s.quantity)
                    for s, d in diffs
                ):
                    return vat(
                        Reason.UNIT_VS_LINE_TAX,
                        detail=(
                            f"VAT differs by {_signed(dv, cur)} on multi-unit line(s) "
                            f"({', '.join(s.key for s, _ in diffs[:5])}): VAT per unit vs per "
                            "line, within ⌊(q+1)/2⌋ per line."
                        ),
                    )
        bound = self._line_vs_doc_bound()
        if tol.line_vs_doc and bound is not None and abs(dv) <= bound:
            return vat(
                Reason.ROUNDING_LINE_VS_DOC,
                detail=(
                    f"VAT differs by {_signed(dv, cur)} with equal totals: VAT rounded per line "
                    f"vs per document, within the bound of {bound} minor units."
                ),
            )
        if abs(dv) <= tol.unexplained_allowance:
            return vat(
                Reason.UNEXPLAINED,
                detail=(
                    f"VAT differs by {_signed(dv, cur)}, within the configured allowance but "
                    "not explained by rounding."
                ),
            )
        if bound is not None:
            why = f"beyond the rounding bound of {bound} minor units"
        elif self.shop.lines:
            why = "beyond the rounding bound of ⌊(n+1)/2⌋ per tax code of n lines"
        else:
            why = "and without line detail no rounding rule can explain it"
        return vat(
            Reason.TAX_MISMATCH,
            detail=f"VAT differs by {_signed(dv, cur)} with equal totals, {why}.",
        )

    def _explain_vat_moves(self) -> Discrepancy:
        """Equal VAT totals, but VAT moved between tax codes (both sides have lines)."""
        tol, cur = self.tol, self.cur
        moves = self._code_vat_moves()
        beyond = [m for m in moves if abs(m[3] - m[2]) > tol.line_vs_doc_bound(m[1])]
        # The amounts shown are those of the worst code (beyond its bound if any is).
        code, n_code, s_vat, e_vat = max(beyond or moves, key=lambda m: abs(m[3] - m[2]))
        what = (
            "VAT totals agree but VAT per tax code differs ("
            + ", ".join(f"{c} {_signed(e - s, cur)}" for c, _, s, e in moves[:5])
            + ")"
        )
        vat = functools.partial(self.amounts, shop=s_vat, erp=e_vat)
        diffs = [(s, e.vat - s.vat) for s, e in self.line_pairs or () if e.vat != s.vat]
        if tol.tie_rounding and all(abs(d) == 1 and s.is_vat_tie() for s, d in diffs):
            return vat(
                Reason.TIE_ROUNDING_MODE,
                detail=(
                    f"{what} on {len(diffs)} line(s) whose exact VAT ends in half a penny, "
                    "rounded the other way."
                ),
            )
        if tol.unit_vs_line_tax and all(
            s.quantity > 1 and abs(d) <= tol.unit_vs_line_bound(s.quantity) for s, d in diffs
        ):
            return vat(
                Reason.UNIT_VS_LINE_TAX,
                detail=(
                    f"{what} on multi-unit line(s) ({', '.join(s.key for s, _ in diffs[:5])}): "
                    "VAT per unit vs per line, within ⌊(q+1)/2⌋ per line."
                ),
            )
        if tol.line_vs_doc and not beyond:
            return vat(
                Reason.ROUNDING_LINE_VS_DOC,
                detail=(
                    f"{what}: VAT rounded per line vs per document, within ⌊(n+1)/2⌋ minor "
                    "units per tax code of n lines."
                ),
            )
        gap = abs(e_vat - s_vat)
        if gap <= tol.unexplained_allowance:
            return vat(
                Reason.UNEXPLAINED,
                detail=f"{what}, within the configured allowance but not explained by rounding.",
            )
        why = (
            f"beyond the rounding bound of {tol.line_vs_doc_bound(n_code)} minor units for {code}"
            if beyond
            else "and rounding per line vs per document is not accepted"
        )
        return vat(Reason.TAX_MISMATCH, detail=f"{what}: VAT was moved between tax codes, {why}.")

    def _code_vat_moves(self) -> list[tuple[str, int, int, int]]:
        """``(tax code, shop line count, shop VAT, OrderWise VAT)`` of every code whose VAT differs.

        Empty unless both sides have matching lines.
        """
        if self.line_pairs is None:
            return []
        shop_codes = _groups_by_code(s for s, _ in self.line_pairs)
        erp_codes = _groups_by_code(e for _, e in self.line_pairs)
        moves = []
        for code in sorted(shop_codes.keys() | erp_codes.keys()):
            n, _, s_vat = shop_codes.get(code, (0, 0, 0))
            e_vat = erp_codes.get(code, (0, 0, 0))[2]
            if s_vat != e_vat:
                moves.append((code, n, s_vat, e_vat))
        return moves

    def _line_vs_doc_bound(self) -> int | None:
        """Σ over tax codes of ⌊(n+1)/2⌋, or None without shop lines (or over a per-code bound)."""
        if not self.shop.lines:
            return None
        shop_codes = _groups_by_code(self.shop.lines)
        for _code, n, s_vat, e_vat in self._code_vat_moves():
            if abs(e_vat - s_vat) > self.tol.line_vs_doc_bound(n):
                return None
        return sum(self.tol.line_vs_doc_bound(n) for n, _, _ in shop_codes.values())


# --------------------------------------------------------------------------- the run


def _ref(item: ShopOrderSummary | ErpOrderSummary) -> str:
    return item.reference


class _Run:
    def __init__(
        self,
        tolerance: Tolerance,
        status_check: StatusCheck | None,
        sink: Callable[[Discrepancy], None] | None,
        keep: bool,
        keep_auto: bool,
        period: str | None,
    ) -> None:
        self.tol = tolerance
        self.status_check = status_check
        self.sink = sink
        self.keep = keep
        self.keep_auto = keep_auto
        self.report = ReconciliationReport(tolerance=tolerance, period=period)
        self.by_reason: Counter[str] = Counter()
        self.by_tier: Counter[str] = Counter()

    def emit(self, exc: Discrepancy) -> None:
        self.by_reason[exc.reason.value] += 1
        self.by_tier[exc.tier.value] += 1
        if self.sink is not None:
            self.sink(exc)
        if self.keep and (self.keep_auto or exc.tier is not Tier.AUTO_ACCEPT):
            self.report.exceptions.append(exc)

    def totals(self, currency: str) -> CurrencyTotals:
        t = self.report.summary.totals.get(currency)
        if t is None:
            t = self.report.summary.totals[currency] = CurrencyTotals()
        return t

    def handle(self, ref: str, shops: list[ShopOrderSummary], erps: list[ErpOrderSummary]) -> None:
        summary = self.report.summary
        summary.shop_orders += len(shops)
        summary.erp_orders += len(erps)
        for s in shops:
            self.totals(s.currency).shop_gross += s.gross
        for e in erps:
            self.totals(e.currency).erp_gross += e.gross
        if not erps:
            self._missing(ref, shops)
            return
        if not shops:
            for e in erps:
                self.emit(
                    Discrepancy(
                        reference=ref,
                        reason=Reason.UNKNOWN_IN_SHOP,
                        currency=e.currency,
                        erp_amount=e.gross,
                        detail=(
                            f"OrderWise order {e.order_number or e.order_id} "
                            f"({_fmt(e.gross, e.currency)}, {e.status or 'no status'}) has no "
                            "SCAYLE order with this reference."
                        ),
                        erp_order_id=e.order_id,
                        erp_order_number=e.order_number,
                    )
                )
            return
        summary.matched += 1
        found: list[Discrepancy] = []
        shop = shops[0]
        if len(shops) > 1:
            found.append(
                Discrepancy(
                    reference=ref,
                    reason=Reason.DUPLICATE_IN_SHOP,
                    detail=(
                        f"{len(shops)} SCAYLE orders carry this reference (ids "
                        f"{', '.join(s.order_id for s in shops[:5])}); compared the first."
                    ),
                    shop_order_id=shop.order_id,
                )
            )
        live = [e for e in erps if _norm_status(e.status) not in _ERP_CANCELLED]
        if len(live) > 1:
            same = all(e.currency == shop.currency for e in live)
            found.append(
                Discrepancy(
                    reference=ref,
                    reason=Reason.DUPLICATE_IN_ERP,
                    currency=shop.currency if same else None,
                    shop_amount=shop.gross if same else None,
                    erp_amount=sum(e.gross for e in live) if same else None,
                    detail=(
                        f"{len(live)} live OrderWise orders for one SCAYLE order: "
                        + ", ".join(e.order_number or e.order_id for e in live[:5])
                        + "."
                    ),
                    shop_order_id=shop.order_id,
                    erp_order_id=live[0].order_id,
                    erp_order_number=live[0].order_number,
                )
            )
        else:
            # One live order (cancelled duplicates are resolved ones), or all cancelled.
            erp = live[0] if live else erps[0]
            found.extend(_Pair(shop, erp, self.tol).compare(self.status_check))
        if not found:
            summary.clean += 1
        elif all(e.tier is Tier.AUTO_ACCEPT for e in found):
            summary.explained += 1
        for exc in found:
            self.emit(exc)

    def _missing(self, ref: str, shops: list[ShopOrderSummary]) -> None:
        for shop in shops:
            if is_shop_cancelled(shop.status):
                self.report.summary.cancelled_not_in_erp += 1
                continue
            self.emit(
                Discrepancy(
                    reference=ref,
                    reason=Reason.MISSING_IN_ERP,
                    currency=shop.currency,
                    shop_amount=shop.gross,
                    detail=(
                        f"SCAYLE order {shop.order_id} ({_fmt(shop.gross, shop.currency)}, "
                        f"{shop.status or 'no status'}) has no OrderWise order."
                    ),
                    shop_order_id=shop.order_id,
                )
            )

    def finish(self) -> ReconciliationReport:
        summary = self.report.summary
        summary.by_reason = dict(self.by_reason)
        summary.by_tier = dict(self.by_tier)
        return self.report


def reconcile_orders(
    shop_orders: Iterable[ShopOrderSummary],
    erp_orders: Iterable[ErpOrderSummary],
    *,
    tolerance: Tolerance | None = None,
    status_check: StatusCheck | None = default_status_check,
    presorted: bool = False,
    chunk_size: int = 20_000,
    sink: Callable[[Discrepancy], None] | None = None,
    keep_exceptions: bool = True,
    keep_auto_accepted: bool = True,
    period: str | None = None,
) -> ReconciliationReport:
    """Join shop and OrderWise orders by reference and report every exception.

    ``presorted=True`` promises both inputs are sorted by ``reference`` (plain string order): the
    join then holds one reference at a time and raises :class:`UnsortedInputError` if a stream goes
    backwards. Otherwise inputs may come in any order and are sorted externally in chunks of
    ``chunk_size`` (spilled to temporary files beyond one chunk), so memory stays bounded either
    way. ``sink`` receives every exception as it is found; ``keep_exceptions=False`` keeps only the
    counts in the report, ``keep_auto_accepted=False`` drops explained rounding variances from the
    list (they are still counted). ``status_check=None`` skips status comparison.
    """
    run = _Run(
        tolerance or Tolerance(),
        status_check,
        sink,
        keep_exceptions,
        keep_auto_accepted,
        period,
    )
    shops: Iterable[ShopOrderSummary] = shop_orders
    erps: Iterable[ErpOrderSummary] = erp_orders
    if not presorted:
        shops = sorted_by_reference(shop_orders, ShopOrderSummary, chunk_size=chunk_size)
        erps = sorted_by_reference(erp_orders, ErpOrderSummary, chunk_size=chunk_size)
    joined: Iterator[tuple[str, list[ShopOrderSummary], list[ErpOrderSummary]]] = merge_join(
        group_sorted(shops, _ref, side="SCAYLE"), group_sorted(erps, _ref, side="OrderWise")
    )
    for ref, shop_group, erp_group in joined:
        run.handle(ref, shop_group, erp_group)
    return run.finish()
