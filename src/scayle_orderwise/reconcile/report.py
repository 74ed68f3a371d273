"""Render reconciliation reports as JSON, CSV or a self-contained HTML page.

Each function takes a :class:`~scayle_orderwise.reconcile.ReconciliationReport` or a
:class:`~scayle_orderwise.reconcile.StockReport` and returns ``str``. JSON carries amounts in minor
units (for machines); CSV and HTML in major units with the currency (for people). The HTML page has
no external scripts, styles, fonts or images, so it opens from an e-mail or a shared drive: summary
first, then blocking exceptions, then those to review, each group with what to do next, and the
automatically accepted rounding variances folded away at the end.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from html import escape

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
    "currency",
    "shop_amount",
    "erp_amount",
    "difference",
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
                e.currency or "",
                _major(e.shop_amount, e.currency),
                _major(e.erp_amount, e.currency),
                _major(e.difference, e.currency),
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

_STYLE = """
body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Arial,sans-serif;color:#1d2329;
margin:0 auto;max-width:1100px;padding:24px}
h1{font-size:1.6em;margin:0 0 4px}h2{margin-top:32px;border-bottom:2px solid #d6dbe0}
h3{margin:24px 0 6px;font-size:1.25em}h4{margin:20px 0 6px;font-size:1.05em}.meta{color:#5b6670;margin:0}
.verdict{padding:12px 16px;border-radius:6px;font-weight:600}
.verdict.ok{background:#e6f4ea;color:#1e6b34}.verdict.review{background:#fff4d6;color:#7a5300}
.verdict.block{background:#fde7e7;color:#9b1c1c}
table{border-collapse:collapse;margin:8px 0 16px;width:100%}
th,td{border:1px solid #d6dbe0;padding:5px 8px;text-align:left;vertical-align:top}
th{background:#f2f4f6}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
table.figures{width:auto}.action{background:#f2f6fb;border-left:4px solid #3a6ea5;padding:8px 12px}
.tier{font-size:.8em;font-weight:600;padding:1px 6px;border-radius:4px;text-transform:uppercase}
.tier-block{background:#fde7e7;color:#9b1c1c}.tier-review{background:#fff4d6;color:#7a5300}
.tier-auto_accept{background:#e6f4ea;color:#1e6b34}
details{margin-top:24px;border:1px solid #d6dbe0;border-radius:6px;padding:8px 12px}
summary{cursor:pointer;font-weight:600}footer{margin-top:32px;color:#5b6670;font-size:.85em}
@media print{details{display:block}}
"""

_TIER_TEXT = {
    Tier.BLOCK: ("Blocking", "Fix these before closing the period."),
    Tier.REVIEW: ("To review", "Explained or operational; check each one."),
    Tier.AUTO_ACCEPT: ("Accepted automatically", "Rounding variances within their bounds."),
}


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return ""
    if currency is None:
        return _e(amount)
    return _e(Money(amount, currency))


def _page(title: str, subtitle: str, body: list[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title>",
            f"<style>{_STYLE}</style>",
            "</head>",
            "<body>",
            "<header>",
            f"<h1>{_e(title)}</h1>",
            f'<p class="meta">{_e(subtitle)}</p>',
            "</header>",
            "<main>",
            *body,
            "</main>",
            "<footer>Produced by scayle-orderwise. Amounts are shown in each order's currency; "
            "differences are OrderWise minus SCAYLE.</footer>",
            "</body>",
            "</html>",
            "",
        ]
    )


def _table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], numeric: set[int], cls: str = ""
) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
            for i, c in enumerate(row)
        )
        body.append(f"<tr>{cells}</tr>")
    attr = f' class="{cls}"' if cls else ""
    return (
        f"<table{attr}><thead><tr>{head}</tr></thead><tbody>" + "".join(body) + "</tbody></table>"
    )


def _subtitle(first: str, generated_at: datetime | None) -> str:
    parts = [first]
    if generated_at is not None:
        parts.append(f"Generated: {generated_at.isoformat(timespec='seconds')}")
    return " · ".join(parts)


def to_html(
    report: AnyReport, *, title: str | None = None, generated_at: datetime | None = None
) -> str:
    """A self-contained HTML5 page for finance and operations (everything escaped)."""
    report = _as_report(report)
    if isinstance(report, StockReport):
        return _stock_html(report, title or "Stock reconciliation", generated_at)
    return _orders_html(report, title or "Order reconciliation", generated_at)


def _orders_html(report: ReconciliationReport, title: str, generated_at: datetime | None) -> str:
    s = report.summary
    n_block = s.by_tier.get(Tier.BLOCK.value, 0)
    n_review = s.by_tier.get(Tier.REVIEW.value, 0)
    n_auto = s.by_tier.get(Tier.AUTO_ACCEPT.value, 0)
    if n_block:
        verdict, text = "block", f"{n_block} exception(s) block the close; {n_review} to review."
    elif n_review:
        verdict, text = "review", f"Nothing blocks the close; {n_review} exception(s) to review."
    else:
        verdict, text = "ok", "Every order agrees or differs only by accepted rounding."
    if n_auto:
        text += f" {n_auto} rounding variance(s) were explained and accepted."
    body = [
        '<section id="summary">',
        "<h2>Summary</h2>",
        f'<p class="verdict {verdict}">{_e(text)}</p>',
    ]
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
    body.append(_table(["Figure", "Count"], [(_e(k), _e(v)) for k, v in figures], {1}, "figures"))
    if s.totals:
        body.append("<h3>Gross totals by currency</h3>")
        body.append(
            _table(
                ["Currency", "SCAYLE gross", "OrderWise gross", "Difference"],
                [
                    (
                        _e(cur),
                        _money(t.shop_gross, cur),
                        _money(t.erp_gross, cur),
                        _money(t.difference, cur),
                    )
                    for cur, t in sorted(s.totals.items())
                ],
                {1, 2, 3},
                "figures",
            )
        )
    if s.by_reason:
        order = {r.value: i for i, r in enumerate(Reason)}
        body.append("<h3>Exceptions by reason</h3>")
        body.append(
            _table(
                ["Reason", "Code", "Count"],
                [
                    (_e(Reason(code).label), f"<code>{_e(code)}</code>", _e(count))
                    for code, count in sorted(s.by_reason.items(), key=lambda kv: order[kv[0]])
                ],
                {2},
                "figures",
            )
        )
    body.append("</section>")
    kept = report.exceptions
    if s.exceptions and len(kept) < s.exceptions:
        body.append(
            f'<p class="meta">{_e(s.exceptions - len(kept))} exception(s) were counted but not '
            "kept in this report (streamed to a sink or auto-accepted and dropped).</p>"
        )
    urgent = [e for e in kept if e.tier is not Tier.AUTO_ACCEPT]
    body.append('<section id="exceptions">')
    body.append("<h2>Exceptions</h2>")
    if not urgent:
        body.append("<p>No exceptions need attention.</p>")
    for tier in (Tier.BLOCK, Tier.REVIEW):
        of_tier = [e for e in urgent if e.tier is tier]
        if of_tier:
            heading, note = _TIER_TEXT[tier]
            body.append(f'<h3 class="tier-heading">{_e(heading)} ({len(of_tier)})</h3>')
            body.append(f'<p class="meta">{_e(note)}</p>')
            body.extend(_reason_groups(of_tier))
    body.append("</section>")
    accepted = [e for e in kept if e.tier is Tier.AUTO_ACCEPT]
    if accepted:
        body.append('<details id="explained">')
        body.append(
            f"<summary>Explained rounding variances ({len(accepted)}), accepted "
            "automatically</summary>"
        )
        body.extend(_reason_groups(accepted))
        body.append("</details>")
    first = f"Period: {report.period}" if report.period else "Period: all orders given"
    return _page(title, _subtitle(first, generated_at), body)


def _reason_groups(exceptions: list[Discrepancy]) -> list[str]:
    out: list[str] = []
    groups: dict[Reason, list[Discrepancy]] = {}
    for e in _sorted(exceptions):
        groups.setdefault(e.reason, []).append(e)
    for reason, items in groups.items():
        tier = items[0].tier
        out.append(f'<section class="group" id="reason-{_e(reason.value)}-{_e(tier.value)}">')
        out.append(
            f"<h4>{_e(reason.label)} ({len(items)}) "
            f'<span class="tier tier-{_e(tier.value)}">{_e(tier.value.replace("_", " "))}</span>'
            "</h4>"
        )
        out.append(f'<p class="action"><strong>What to do:</strong> {_e(reason.action)}</p>')
        out.append(
            _table(
                [
                    "Reference",
                    "SCAYLE order",
                    "OrderWise order",
                    "SCAYLE",
                    "OrderWise",
                    "Difference",
                    "Detail",
                ],
                [
                    (
                        _e(e.reference),
                        _e(e.shop_order_id or ""),
                        _e(e.erp_order_number or e.erp_order_id or ""),
                        _money(e.shop_amount, e.currency),
                        _money(e.erp_amount, e.currency),
                        _money(e.difference, e.currency),
                        _e(e.detail),
                    )
                    for e in items
                ],
                {3, 4, 5},
            )
        )
        out.append("</section>")
    return out


def _stock_html(report: StockReport, title: str, generated_at: datetime | None) -> str:
    s = report.summary
    n = len(report.rows)
    verdict, text = (
        ("ok", "SCAYLE stock matches OrderWise.")
        if not n
        else (
            "block" if s.by_reason.get(StockReason.UNKNOWN_IN_ERP.value) else "review",
            f"{n} stock figure(s) differ.",
        )
    )
    body = [
        '<section id="summary">',
        "<h2>Summary</h2>",
        f'<p class="verdict {verdict}">{_e(text)}</p>',
    ]
    figures: list[tuple[str, int]] = [
        ("Rows from OrderWise", s.expected_rows),
        ("Rows from SCAYLE", s.actual_rows),
        ("In sync", s.in_sync),
        *((STOCK_TITLES[r], s.by_reason.get(r.value, 0)) for r in StockReason),
    ]
    body.append(_table(["Figure", "Count"], [(_e(k), _e(v)) for k, v in figures], {1}, "figures"))
    body.append("</section>")
    body.append('<section id="exceptions">')
    body.append("<h2>Differences</h2>")
    if not n:
        body.append("<p>No differences.</p>")
    order = [StockReason.UNKNOWN_IN_ERP, StockReason.MISSING_IN_SHOP, StockReason.DRIFT]
    for reason in order:
        rows: list[StockRow] = [r for r in report.rows if r.reason is reason]
        if not rows:
            continue
        body.append(f'<section class="group" id="reason-{_e(reason.value)}">')
        body.append(f"<h3>{_e(STOCK_TITLES[reason])} ({len(rows)})</h3>")
        body.append(
            f'<p class="action"><strong>What to do:</strong> {_e(STOCK_ACTIONS[reason])}</p>'
        )
        body.append(
            _table(
                ["SKU", "Warehouse", "OrderWise (expected)", "SCAYLE (actual)", "Difference"],
                [
                    (
                        _e(r.sku),
                        _e(r.warehouse or ""),
                        _e(_opt(r.expected)),
                        _e(_opt(r.actual)),
                        _e(_opt(r.difference)),
                    )
                    for r in rows
                ],
                {2, 3, 4},
            )
        )
        body.append("</section>")
    body.append("</section>")
    return _page(title, _subtitle("OrderWise free stock vs SCAYLE stock", generated_at), body)
