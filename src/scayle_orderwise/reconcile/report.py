"""Render reconciliation reports as JSON, CSV or a self-contained HTML page.

Each function takes a :class:`~scayle_orderwise.reconcile.ReconciliationReport` or a
:class:`~scayle_orderwise.reconcile.StockReport` and returns ``str``. JSON carries amounts in minor
units (for machines); CSV in major units (for spreadsheets); HTML in major units with thousands
separators and the currency (for people). The HTML page is rendered from the Jinja2 templates in
``templates/`` beside this module, with autoescape on, and has no external scripts, styles, fonts
or images (the CSS is inlined), so it opens from an e-mail or a shared drive: when and by which
version it was made, the period with its inclusive end, the summary, then blocking exceptions,
then those to review, each group with what to do next, and the automatically accepted rounding
variances folded away at the end. Every exception row has a difference, and the "gross difference"
column adds up to the totals' difference.
"""

from __future__ import annotations

import csv
import functools
import io
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import jinja2

from ..money import Money
from .orders import Discrepancy, ReconciliationReport
from .reasons import Reason, StockReason, Tier
from .stock import STOCK_ACTIONS, STOCK_TITLES, StockReport, StockRow

__all__ = ["to_csv", "to_html", "to_json"]

AnyReport = ReconciliationReport | StockReport


def to_json(report: AnyReport) -> str:
    """The report as pretty-printed JSON (amounts in minor units, with their currency)."""
    return json.dumps(_as_report(report).to_dict(), indent=2, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- CSV

_ORDER_COLUMNS = (
    "reference",
    "reason",
    "tier",
    "measure",
    "currency",
    "shop_amount",
    "erp_amount",
    "erp_currency",
    "difference",
    "gross_difference",
    "detail",
    "action",
    "shop_order_id",
    "erp_order_id",
    "erp_order_number",
)
_STOCK_COLUMNS = ("sku", "warehouse", "expected", "actual", "difference", "reason", "action")


def _cell(text: str | None) -> str:
    """Text cell, defused against spreadsheet formula injection."""
    if text is None:
        return ""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _major(amount: int | None, currency: str | None) -> str:
    if amount is None or currency is None:
        return "" if amount is None else str(amount)
    return str(Money(amount, currency).to_decimal())


def _sorted(exceptions: Iterable[Discrepancy]) -> list[Discrepancy]:
    order = {r: i for i, r in enumerate(Reason)}
    return sorted(exceptions, key=lambda e: (e.tier.rank, order[e.reason], e.reference))


def to_csv(report: AnyReport) -> str:
    """One row per exception (or stock row), most urgent first; amounts in major units."""
    report = _as_report(report)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if isinstance(report, StockReport):
        writer.writerow(_STOCK_COLUMNS)
        for row in report.rows:
            writer.writerow(
                [
                    _cell(row.sku),
                    _cell(row.warehouse),
                    _opt(row.expected),
                    _opt(row.actual),
                    _opt(row.difference),
                    row.reason.value,
                    row.action,
                ]
            )
        return out.getvalue()
    writer.writerow(_ORDER_COLUMNS)
    for e in _sorted(report.exceptions):
        writer.writerow(
            [
                _cell(e.reference),
                e.reason.value,
                e.tier.value,
                e.measure.value,
                e.currency or "",
                _major(e.shop_amount, e.currency),
                _major(e.erp_amount, e.erp_currency or e.currency),
                e.erp_currency or "",
                _major(e.difference, e.currency),
                _major(e.gross_difference, e.currency),
                _cell(e.detail),
                _cell(e.action),
                _cell(e.shop_order_id),
                _cell(e.erp_order_id),
                _cell(e.erp_order_number),
            ]
        )
    return out.getvalue()


def _opt(value: int | None) -> str:
    return "" if value is None else str(value)


def _as_report(report: object) -> AnyReport:
    if isinstance(report, ReconciliationReport | StockReport):
        return report
    raise TypeError(f"expected a ReconciliationReport or StockReport, got {type(report).__name__}")


# --------------------------------------------------------------------------- HTML

_TIER_TEXT = {
    Tier.BLOCK: ("Blocking", "Fix these before closing the period."),
    Tier.REVIEW: ("To review", "Explained or operational; check each one."),
    Tier.AUTO_ACCEPT: ("Accepted automatically", "Rounding variances within their bounds."),
}


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("scayle_orderwise.reconcile", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _render(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context)


def _grouped(value: Decimal | int) -> str:
    """Thousands separators: ``1234567.5`` → ``1,234,567.5``."""
    return f"{value:,}"


def _amount(amount: int | None, currency: str | None, *, signed: bool = False) -> str:
    """``1,234.56 GBP`` (``+`` for a positive difference when ``signed``); ``—`` without one."""
    if amount is None:
        return "—"
    if currency is None:
        return _grouped(amount)
    text = f"{_grouped(Money(amount, currency).to_decimal())} {currency}"
    return "+" + text if signed and amount > 0 else text


def _count(value: int) -> str:
    return _grouped(value)


def _generated(when: datetime | None) -> str:
    """``1 June 2024, 09:00 UTC`` (always shown; now when no time is given)."""
    moment = (when or datetime.now(UTC)).astimezone(UTC)
    return f"{moment.day} {moment:%B %Y, %H:%M} UTC"


def _version() -> str:
    from .. import __version__

    return __version__


def to_html(
    report: AnyReport, *, title: str | None = None, generated_at: datetime | None = None
) -> str:
    """A self-contained HTML5 page for finance and operations (everything escaped).

    ``generated_at`` defaults to the report's own ``generated_at``, else now.
    """
    report = _as_report(report)
    if isinstance(report, StockReport):
        return _stock_html(report, title or "Stock reconciliation", generated_at)
    return _orders_html(report, title or "Order reconciliation", generated_at)


def _row(e: Discrepancy) -> dict[str, str]:
    if e.erp_currency is not None and e.erp_currency != e.currency:
        difference = "n/a (two currencies)"
    else:
        difference = _amount(e.difference, e.currency, signed=True)
    return {
        "reference": e.reference,
        "shop_order": e.shop_order_id or "",
        "erp_order": e.erp_order_number or e.erp_order_id or "",
        "measure": e.measure.label,
        "shop_amount": _amount(e.shop_amount, e.currency),
        "erp_amount": _amount(e.erp_amount, e.erp_currency or e.currency),
        "difference": difference,
        "gross_difference": _amount(e.gross_difference, e.currency, signed=True),
        "detail": e.detail,
    }


def _reason_groups(exceptions: list[Discrepancy]) -> list[dict[str, Any]]:
    groups: dict[Reason, list[Discrepancy]] = {}
    for e in _sorted(exceptions):
        groups.setdefault(e.reason, []).append(e)
    return [
        {
            "code": reason.value,
            "label": reason.label,
            "tier": items[0].tier.value,
            "tier_text": items[0].tier.value.replace("_", " "),
            "count": len(items),
            "action": reason.action,
            "rows": [_row(e) for e in items],
        }
        for reason, items in groups.items()
    ]


def _orders_html(report: ReconciliationReport, title: str, generated_at: datetime | None) -> str:
    s = report.summary
    n_block = s.by_tier.get(Tier.BLOCK.value, 0)
    n_review = s.by_tier.get(Tier.REVIEW.value, 0)
    n_auto = s.by_tier.get(Tier.AUTO_ACCEPT.value, 0)
    if n_block:
        css, text = "block", f"{n_block} exception(s) block the close; {n_review} to review."
    elif n_review:
        css, text = "review", f"Nothing blocks the close; {n_review} exception(s) to review."
    else:
        css, text = "ok", "Every order agrees or differs only by accepted rounding."
    if n_auto:
        text += f" {n_auto} rounding variance(s) were explained and accepted."
    figures = [
        ("Orders in SCAYLE", s.shop_orders),
        ("Orders in OrderWise", s.erp_orders),
        ("Matched by reference", s.matched),
        ("Matched and identical", s.clean),
        ("Matched, rounding only", s.explained),
        ("Cancelled in SCAYLE before reaching OrderWise", s.cancelled_not_in_erp),
        ("Blocking exceptions", n_block),
        ("Exceptions to review", n_review),
        ("Accepted rounding variances", n_auto),
    ]
    kept = report.exceptions
    listed: dict[str, int] = {}
    for e in kept:
        if e.currency is not None:
            listed[e.currency] = listed.get(e.currency, 0) + e.gross_difference
    totals = [
        {
            "currency": cur,
            "shop": _amount(t.shop_gross, cur),
            "erp": _amount(t.erp_gross, cur),
            "difference": _amount(t.difference, cur, signed=True),
            "listed": _amount(listed.get(cur, 0), cur, signed=True),
        }
        for cur, t in sorted(s.totals.items())
    ]
    order = {r.value: i for i, r in enumerate(Reason)}
    by_reason = [
        (Reason(code).label, code, _count(count))
        for code, count in sorted(s.by_reason.items(), key=lambda kv: order[kv[0]])
    ]
    urgent = [e for e in kept if e.tier is not Tier.AUTO_ACCEPT]
    tiers = []
    for tier in (Tier.BLOCK, Tier.REVIEW):
        of_tier = [e for e in urgent if e.tier is tier]
        if of_tier:
            heading, note = _TIER_TEXT[tier]
            tiers.append(
                {
                    "heading": heading,
                    "note": note,
                    "count": len(of_tier),
                    "groups": _reason_groups(of_tier),
                }
            )
    accepted = [e for e in kept if e.tier is Tier.AUTO_ACCEPT]
    period = f"Period: {report.period}" if report.period else "Period: all orders given"
    return _render(
        "orders.html",
        title=title,
        subtitle=period,
        generated=_generated(generated_at or report.generated_at),
        version=_version(),
        verdict={"css": css, "text": text},
        figures=[(label, _count(n)) for label, n in figures],
        totals=totals,
        not_comparable=s.not_comparable,
        by_reason=by_reason,
        dropped=s.exceptions - len(kept) if s.exceptions and len(kept) < s.exceptions else 0,
        tiers=tiers,
        accepted=_reason_groups(accepted),
        accepted_count=len(accepted),
    )


def _units(value: int | None) -> str:
    return "" if value is None else _grouped(value)


def _signed_units(value: int | None) -> str:
    if value is None:
        return ""
    return ("+" if value > 0 else "") + _grouped(value)


def _stock_html(report: StockReport, title: str, generated_at: datetime | None) -> str:
    s = report.summary
    n = len(report.rows)
    if not n:
        css, text = "ok", "SCAYLE stock matches OrderWise."
    else:
        css = "block" if s.by_reason.get(StockReason.UNKNOWN_IN_ERP.value) else "review"
        text = f"{_count(n)} stock figure(s) differ."
    figures = [
        ("Rows from OrderWise", s.expected_rows),
        ("Rows from SCAYLE", s.actual_rows),
        ("In sync", s.in_sync),
        *((STOCK_TITLES[r], s.by_reason.get(r.value, 0)) for r in StockReason),
    ]
    groups = []
    for reason in (StockReason.UNKNOWN_IN_ERP, StockReason.MISSING_IN_SHOP, StockReason.DRIFT):
        rows: list[StockRow] = [r for r in report.rows if r.reason is reason]
        if rows:
            groups.append(
                {
                    "code": reason.value,
                    "title": STOCK_TITLES[reason],
                    "count": len(rows),
                    "action": STOCK_ACTIONS[reason],
                    "rows": [
                        {
                            "sku": r.sku,
                            "warehouse": r.warehouse or "",
                            "expected": _units(r.expected),
                            "actual": _units(r.actual),
                            "difference": _signed_units(r.difference),
                        }
                        for r in rows
                    ],
                }
            )
    return _render(
        "stock.html",
        title=title,
        subtitle="OrderWise free stock (after the buffers) against SCAYLE stock, per SKU and warehouse",
        generated=_generated(generated_at),
        version=_version(),
        verdict={"css": css, "text": text},
        figures=[(label, _count(count)) for label, count in figures],
        groups=groups,
    )
