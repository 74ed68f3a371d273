"""Compare one SCAYLE order with its OrderWise order and explain every difference.

The comparison goes from the coarsest difference to the finest and stops at the first that
explains the pair: currency, the set of lines (by SKU and quantity), the order gross, the parts of
an equal gross (delivery, discount, line prices), the VAT code of each line, OrderWise's own
arithmetic, and last the VAT. A rounding mechanism of money-policy §3.1 only explains VAT, within
its bound, with the gross equal; money that moved is always reported for a person.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import Any

from ..money import Money
from .discrepancy import Discrepancy, Tolerance
from .reasons import Measure, Reason, Tier
from .statuses import StatusCheck
from .summaries import ErpOrderSummary, LineSummary, ShopOrderSummary

__all__ = ["PairComparison"]


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


def _item(line: LineSummary) -> str:
    """The line's key without its tax-code suffix: the same line under any VAT code.

    The connector keys goods ``<SKU>|<tax code>`` and fees ``fee|<key>|<tax code>``; shipping
    parts (``shipping|<tax code>``) are parts, not lines, and keep their key.
    """
    suffix = "|" + line.tax_code
    if line.key.endswith(suffix) and not line.key.startswith("shipping|"):
        return line.key[: -len(suffix)]
    return line.key


def _merge(item: str, lines: list[LineSummary]) -> LineSummary:
    """One line per item: codes joined, amounts summed; the rate only when a single line."""
    if len(lines) == 1:
        return lines[0]
    codes = sorted({line.tax_code for line in lines})
    return LineSummary(
        item,
        "+".join(codes),
        sum(x.gross for x in lines),
        sum(x.vat for x in lines),
        sum(x.quantity for x in lines),
        None,
        sum(x.voucher for x in lines),
    )


def _by_item(lines: Iterable[LineSummary]) -> dict[str, LineSummary]:
    grouped: dict[str, list[LineSummary]] = {}
    for line in lines:
        grouped.setdefault(_item(line), []).append(line)
    return {item: _merge(item, group) for item, group in grouped.items()}


class PairComparison:
    """One shop order compared with one OrderWise order (same reference)."""

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

    def amounts(
        self,
        reason: Reason,
        shop: int,
        erp: int,
        detail: str,
        measure: Measure = Measure.GROSS,
        **kw: Any,
    ) -> Discrepancy:
        return self.make(
            reason=reason,
            currency=self.cur,
            shop_amount=shop,
            erp_amount=erp,
            detail=detail,
            measure=measure,
            **kw,
        )

    def compare(self, status_check: StatusCheck | None) -> list[Discrepancy]:
        shop, erp = self.shop, self.erp
        out: list[Discrepancy] = []
        if status_check is not None:
            outcome = status_check(shop, erp)
            if outcome:
                reason, message = (
                    outcome if isinstance(outcome, tuple) else (Reason.STATUS_MISMATCH, outcome)
                )
                out.append(
                    self.make(
                        reason=reason,
                        currency=shop.currency,
                        shop_amount=shop.gross,
                        erp_amount=erp.gross,
                        erp_currency=None if shop.currency == erp.currency else erp.currency,
                        detail=message,
                    )
                )
        if shop.currency != erp.currency:
            out.append(
                self.make(
                    reason=Reason.CURRENCY_MISMATCH,
                    currency=shop.currency,
                    shop_amount=shop.gross,
                    erp_amount=erp.gross,
                    erp_currency=erp.currency,
                    detail=(
                        f"SCAYLE order is {_fmt(shop.gross, shop.currency)}, OrderWise order is "
                        f"{_fmt(erp.gross, erp.currency)}: amounts in different currencies are "
                        "never compared or netted."
                    ),
                )
            )
            return out
        for step in (
            self._line_set,
            self._explain_gross,
            self._components,
            self._code_changes,
            self._erp_internal,
            self._explain_vat,
        ):
            found = step()
            if found:
                out.extend(found)
                return out
        return out

    # -- lines -----------------------------------------------------------------------------

    def _line_set(self) -> list[Discrepancy]:
        """Lines compared by item (SKU) and quantity; a line under another VAT code still pairs."""
        shop_lines, erp_lines = self.shop.lines, self.erp.lines
        if not shop_lines or not erp_lines:
            return []
        s_by = {line.key: line for line in shop_lines}
        e_by = {line.key: line for line in erp_lines}
        dup = len(s_by) != len(shop_lines) or len(e_by) != len(erp_lines)
        same_keys = not dup and s_by.keys() == e_by.keys()
        if same_keys and all(s_by[k].quantity == e_by[k].quantity for k in s_by):
            self.line_pairs = [(s_by[k], e_by[k]) for k in sorted(s_by)]
            return []
        s_items, e_items = _by_item(shop_lines), _by_item(erp_lines)
        missing = sorted(s_items.keys() - e_items.keys())
        extra = sorted(e_items.keys() - s_items.keys())
        both = s_items.keys() & e_items.keys()
        qty = sorted(k for k in both if s_items[k].quantity != e_items[k].quantity)
        if not (missing or extra or qty or dup):
            self.line_pairs = [(s_items[k], e_items[k]) for k in sorted(s_items)]
            return []
        parts = []
        if missing:
            parts.append("not in OrderWise: " + ", ".join(missing[:5]))
        if extra:
            parts.append("only in OrderWise: " + ", ".join(extra[:5]))
        if qty:
            parts.append(
                "quantity differs: "
                + ", ".join(f"{k} {s_items[k].quantity}→{e_items[k].quantity}" for k in qty[:5])
            )
        if dup:
            parts.append("a line key appears twice on one side")
        return [
            self.amounts(
                Reason.LINE_SET_MISMATCH,
                self.shop.gross,
                self.erp.gross,
                "Order lines differ (" + "; ".join(parts) + ").",
            )
        ]

    # -- gross -----------------------------------------------------------------------------

    def _explain_gross(self) -> list[Discrepancy]:
        """The order gross differs: money moved, never accepted automatically."""
        shop, erp, tol, cur = self.shop, self.erp, self.tol, self.cur
        dg = erp.gross - shop.gross
        if not dg:
            return []
        d_disc = erp.discount - shop.discount
        d_ship = erp.shipping_gross - shop.shipping_gross
        gross = functools.partial(self.amounts, shop=shop.gross, erp=erp.gross)
        if shop.gift_card and dg == -shop.gift_card and d_disc == shop.gift_card:
            return [
                gross(
                    Reason.GIFT_CARD_AS_DISCOUNT,
                    detail=(
                        f"OrderWise booked the {_fmt(shop.gift_card, cur)} gift-card payment as a "
                        f"discount, so its total is {_fmt(-dg, cur)} lower and its VAT "
                        f"{_fmt(shop.vat - erp.vat, cur)} lower."
                    ),
                )
            ]
        if shop.unused_voucher and 0 < d_disc <= shop.unused_voucher and dg == -d_disc:
            return [
                gross(
                    Reason.VOUCHER_EXCESS,
                    detail=(
                        f"OrderWise applied {_fmt(d_disc, cur)} more voucher than the goods "
                        f"allowed (unused voucher value {_fmt(shop.unused_voucher, cur)})."
                    ),
                )
            ]
        dropped = self._voucher_dropped(dg, d_ship, d_disc)
        if dropped is not None:
            return [dropped]
        if tol.erp_vat_from_net and not d_disc:
            ties = self._vat_from_net_lines(dg, d_ship)
            if ties is not None:
                return [
                    gross(
                        Reason.ERP_VAT_FROM_NET,
                        detail=(
                            f"OrderWise total is {_fmt(-dg, cur)} lower: it re-derived gross from "
                            f"a 2-dp net on {ties} half-penny line(s) (at most 1 minor unit each)."
                        ),
                    )
                ]
        if tol.percent_discount_basis and d_disc == -dg and shop.lines:
            n = sum(1 for line in shop.lines if not line.key.startswith("shipping"))
            bound = tol.line_vs_doc_bound(n)
            if abs(d_disc) <= bound:
                return [
                    self.amounts(
                        Reason.PERCENT_DISCOUNT_BASIS,
                        shop.discount,
                        erp.discount,
                        f"Percentage discount rounded per line vs per order: "
                        f"{_signed(d_disc, cur)} (bound {bound} minor units for {n} lines).",
                        Measure.DISCOUNT,
                    )
                ]
        if d_ship == dg:
            return [
                self.amounts(
                    Reason.SHIPPING_MISMATCH,
                    shop.shipping_gross,
                    erp.shipping_gross,
                    f"Delivery charge differs by {_signed(d_ship, cur)}; the goods agree.",
                    Measure.DELIVERY_GROSS,
                )
            ]
        if d_disc == -dg:
            return [
                self.amounts(
                    Reason.DISCOUNT_MISMATCH,
                    shop.discount,
                    erp.discount,
                    f"Discount differs by {_signed(d_disc, cur)}, which accounts for the whole "
                    f"difference in the order total ({_signed(dg, cur)}).",
                    Measure.DISCOUNT,
                )
            ]
        if abs(dg) <= tol.unexplained_allowance:
            return [
                gross(
                    Reason.UNEXPLAINED,
                    detail=(
                        f"Total differs by {_signed(dg, cur)}, within the configured allowance "
                        f"of {tol.unexplained_allowance} minor units but not explained by rounding."
                    ),
                )
            ]
        extra = []
        if d_ship:
            extra.append(f"delivery {_signed(d_ship, cur)}")
        if d_disc:
            extra.append(f"discount {_signed(d_disc, cur)}")
        moved = [(s, e) for s, e in self.line_pairs or () if s.gross != e.gross]
        if moved:
            extra.append(
                "lines "
                + ", ".join(
                    f"{_item(s)} {_fmt(s.gross, cur)} → {_fmt(e.gross, cur)}" for s, e in moved[:5]
                )
            )
        tail = f" ({'; '.join(extra)})" if extra else ""
        return [
            gross(
                Reason.TOTAL_MISMATCH,
                detail=(
                    f"OrderWise total differs by {_signed(dg, cur)}{tail}: money moved, and no "
                    "rounding rule explains a gross difference."
                ),
            )
        ]

    def _voucher_dropped(self, dg: int, d_ship: int, d_disc: int) -> Discrepancy | None:
        """OrderWise is dearer by (part of) the voucher the mapping folded into the line prices."""
        shop, cur = self.shop, self.cur
        voucher = shop.voucher_in_lines
        if not voucher or not 0 < dg <= voucher or d_ship or d_disc:
            return None
        if self.line_pairs is not None:
            moved = [(s, e) for s, e in self.line_pairs if s.gross != e.gross]
            # each line that moved is back at its price before the voucher: its share is gone
            if not all(s.voucher and e.gross - s.gross == s.voucher for s, e in moved):
                return None
            where = "lines " + ", ".join(_item(s) for s, _ in moved[:5])
        else:
            where = "the lines"
        codes = ", ".join(shop.voucher_codes) or "the order voucher"
        whole = "is missing" if dg == voucher else f"is short by {_fmt(dg, cur)}"
        return self.amounts(
            Reason.DISCOUNT_MISMATCH,
            voucher,
            voucher - dg,
            f"Voucher {codes} ({_fmt(voucher, cur)}, spread over the line prices) {whole} in "
            f"OrderWise: {where} are booked nearer their prices before the voucher, so the "
            f"OrderWise total is {_fmt(dg, cur)} higher.",
            Measure.DISCOUNT,
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
                    Measure.DELIVERY_GROSS,
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
                    Measure.DISCOUNT,
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
        voucher = shop.discount or shop.voucher_in_lines
        if voucher and s_codes != e_codes:
            out.append(
                self.amounts(
                    Reason.VOUCHER_ALLOCATION_DIFFERS,
                    shop.vat,
                    erp.vat,
                    f"Same total, but the {_fmt(voucher, cur)} voucher sits on other VAT "
                    f"rates in OrderWise (lines {keys}); VAT differs by "
                    f"{_signed(erp.vat - shop.vat, cur)}.",
                    Measure.VAT,
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

    def _code_changes(self) -> list[Discrepancy]:
        """A line booked under another VAT code: a VAT difference for Finance, whatever the gross."""
        cur = self.cur
        changed = [(s, e) for s, e in self.line_pairs or () if s.tax_code != e.tax_code]
        if not changed:
            return []
        s_vat, e_vat = sum(s.vat for s, _ in changed), sum(e.vat for _, e in changed)
        what = ", ".join(f"{_item(s)} {s.tax_code} → {e.tax_code}" for s, e in changed[:5])
        return [
            self.amounts(
                Reason.TAX_MISMATCH,
                s_vat,
                e_vat,
                f"VAT code differs on {len(changed)} line(s) ({what}, SCAYLE → OrderWise): "
                f"{_fmt(abs(e_vat - s_vat), cur)} of VAT at stake "
                + ("under-declared." if e_vat < s_vat else "over-declared.")
                if e_vat != s_vat
                else f"VAT code differs on {len(changed)} line(s) ({what}, SCAYLE → OrderWise): "
                "the same VAT, but another box of the VAT return.",
                Measure.VAT,
            )
        ]

    def _erp_internal(self) -> list[Discrepancy]:
        erp = self.erp
        if erp.net is None or erp.net + erp.vat == erp.gross:
            return []
        return [
            self.amounts(
                Reason.TAX_MISMATCH,
                self.shop.vat,
                erp.vat,
                f"OrderWise's own figures do not add up: net {_fmt(erp.net, self.cur)} + VAT "
                f"{_fmt(erp.vat, self.cur)} ≠ gross {_fmt(erp.gross, self.cur)}.",
                Measure.VAT,
            )
        ]

    # -- VAT with equal gross --------------------------------------------------------------

    def _explain_vat(self) -> list[Discrepancy]:
        """The gross agrees but the VAT does not (in total, or per tax code)."""
        dv = self.erp.vat - self.shop.vat
        if dv:
            return [self._explain_vat_difference(dv)]
        if self._code_vat_moves():
            return [self._explain_vat_moves()]
        return []

    def _explain_delivery_vat(self, d_ship_vat: int) -> Discrepancy:
        """Only the delivery's VAT differs: a configured treatment, rounding, or wrong VAT."""
        shop, erp, tol, cur = self.shop, self.erp, self.tol, self.cur
        assert shop.shipping_vat is not None and erp.shipping_vat is not None
        delivery = functools.partial(
            self.amounts, shop=shop.shipping_vat, erp=erp.shipping_vat, measure=Measure.DELIVERY_VAT
        )
        if shop.header_shipping_vat is not None and erp.shipping_vat == shop.header_shipping_vat:
            return delivery(
                Reason.SHIPPING_VAT_TREATMENT,
                detail=(
                    f"Delivery booked in the OrderWise order header under one tax code "
                    f"(delivery_booking = 'header'): {_fmt(erp.shipping_vat, cur)} VAT where the "
                    f"split over the goods' VAT codes (P10) gives {_fmt(shop.shipping_vat, cur)}."
                ),
            )
        ties = [part for part in shop.shipping_lines if part.is_vat_tie()]
        if tol.tie_rounding and ties and abs(d_ship_vat) <= len(ties):
            return delivery(
                Reason.TIE_ROUNDING_MODE,
                detail=(
                    f"Delivery VAT differs by {_signed(d_ship_vat, cur)} on {len(ties)} delivery "
                    "part(s) whose exact VAT ends in half a penny: OrderWise rounded it the other "
                    "way (at most 1 minor unit per part)."
                ),
            )
        side = "under-declared" if d_ship_vat < 0 else "over-declared"
        return delivery(
            Reason.TAX_MISMATCH,
            detail=(
                f"Delivery VAT differs: OrderWise booked {_fmt(erp.shipping_vat, cur)} on the "
                f"{_fmt(shop.shipping_gross, cur)} delivery, the goods' VAT codes give "
                f"{_fmt(shop.shipping_vat, cur)} (P10): VAT {side} by "
                f"{_fmt(abs(d_ship_vat), cur)}."
            ),
        )

    def _explain_vat_difference(self, dv: int) -> Discrepancy:
        """Explain a VAT total that differs with equal gross."""
        shop, erp, tol, cur = self.shop, self.erp, self.tol, self.cur
        vat = functools.partial(self.amounts, shop=shop.vat, erp=erp.vat, measure=Measure.VAT)
        if shop.shipping_vat is not None and erp.shipping_vat is not None:
            d_ship_vat = erp.shipping_vat - shop.shipping_vat
            if d_ship_vat and d_ship_vat == dv:
                return self._explain_delivery_vat(d_ship_vat)
        if self.line_pairs is not None:
            diffs = [(s, e.vat - s.vat) for s, e in self.line_pairs if e.vat != s.vat]
            if diffs and sum(d for _, d in diffs) == dv:
                if tol.line_vs_doc and all(
                    abs(d) <= 1 and s.quantity > 1 and s.gross % s.quantity for s, d in diffs
                ):
                    return vat(
                        Reason.ROUNDING_LINE_VS_DOC,
                        detail=(
                            f"VAT differs by {_signed(dv, cur)} on {len(diffs)} line(s) whose "
                            "gross does not divide by the quantity "
                            f"({', '.join(_item(s) for s, _ in diffs[:5])}): OrderWise rounded the "
                            "VAT of each of the two lines the line was split into (P11, "
                            "unit_price_decimals = 2), at most 1 minor unit per line."
                        ),
                    )
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
        vat = functools.partial(self.amounts, shop=s_vat, erp=e_vat, measure=Measure.VAT)
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
