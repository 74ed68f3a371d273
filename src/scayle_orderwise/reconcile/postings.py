"""The month's financial postings as one batched journal per period.

Finance prefers one batched posting per period to a stream of status changes. :func:`build_postings`
totals the orders booked in a period per currency and tax code: goods (net, VAT, gross after all
discounts), shipping parts, a memo row of the discounts already deducted from the goods, and a total
row. :func:`postings_csv` writes the journal. The output is idempotent: the same orders (in any order)
give byte-identical CSV, and every row carries a batch id made of the period id and a checksum of
the rows, so a re-export can be recognised as the same batch. Every row also says whether the
journal is the period's ``full`` journal or ``additions`` to an earlier one, and names the earlier
batch(es) it replaces or adds to (``previous_batch``), so an order booked late never leaves finance
guessing. Memory is O(rows + orders' references): orders are streamed, references kept only to
refuse double counting.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import Any

import attrs

from ..money import Money, exponent

__all__ = [
    "JOURNALS",
    "Period",
    "PostingKind",
    "PostingLine",
    "PostingRow",
    "PostingSource",
    "batch_id",
    "build_postings",
    "postings_csv",
]


def _int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be int minor units, got {value!r}")


@attrs.frozen
class PostingLine:
    """Net, VAT and gross of one tax code (goods or a shipping part) in minor units."""

    tax_code: str
    gross: int = attrs.field(validator=_int)
    net: int = attrs.field(validator=_int)
    vat: int = attrs.field(validator=_int)

    def __attrs_post_init__(self) -> None:
        if self.net + self.vat != self.gross:
            raise ValueError(
                f"tax code {self.tax_code}: net {self.net} + VAT {self.vat} != gross {self.gross}"
            )


def _lines(value: Iterable[PostingLine]) -> tuple[PostingLine, ...]:
    return tuple(value)


def _currency(value: str) -> str:
    code = str(value).upper()
    exponent(code)
    return code


@attrs.frozen(kw_only=True)
class PostingSource:
    """One order to post: its goods lines and shipping parts per tax code, and its discount.

    ``lines`` may hold one entry per order line or per tax code; they are totalled per code.
    ``discount`` is the gross order-level discount already deducted from ``lines`` (a memo).
    ``booked_at`` decides the period (its date, as given: convert to the books' time zone first).
    """

    reference: str
    currency: str = attrs.field(converter=_currency)
    booked_at: date
    lines: tuple[PostingLine, ...] = attrs.field(converter=_lines)
    shipping: tuple[PostingLine, ...] = attrs.field(default=(), converter=_lines)
    discount: int = attrs.field(default=0, validator=_int)

    @classmethod
    def from_mapped(cls, mapped: Any, *, booked_at: date, discount: int = 0) -> PostingSource:
        """Build from anything shaped like ``MappedOrder`` (``lines`` and ``shipping`` parts)."""
        return cls(
            reference=mapped.external_reference,
            currency=mapped.currency,
            booked_at=booked_at,
            lines=[PostingLine(x.tax_code, x.gross, x.net, x.vat) for x in mapped.lines],
            shipping=[PostingLine(x.tax_code, x.gross, x.net, x.vat) for x in mapped.shipping],
            discount=discount,
        )


_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


@attrs.frozen
class Period:
    """A half-open date range ``[start, end)``; ``Period.month(2024, 5)`` is May 2024.

    ``name`` overrides :attr:`id` (a period cut at a time of day, named by its instants).
    """

    start: date
    end: date
    name: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"period end {self.end} must be after its start {self.start}")

    @classmethod
    def month(cls, year: int, month: int) -> Period:
        """One calendar month."""
        start = date(year, month, 1)
        end = date(year + 1, 1, 1) if month == 12 else date(year, month + 1, 1)
        return cls(start, end)

    @classmethod
    def parse(cls, text: str) -> Period:
        """``"2024-05"`` (a month) or ``"2024-05-01..2024-05-15"`` (both ends inclusive)."""
        text = text.strip()
        m = _MONTH.match(text)
        if m:
            return cls.month(int(m.group(1)), int(m.group(2)))
        if ".." in text:
            first, last = (part.strip() for part in text.split("..", 1))
            return cls(date.fromisoformat(first), date.fromisoformat(last) + timedelta(days=1))
        raise ValueError(f"not a period: {text!r}; use YYYY-MM or YYYY-MM-DD..YYYY-MM-DD")

    @property
    def id(self) -> str:
        """``"2024-05"`` for a calendar month, else ``"2024-05-01..2024-05-15"`` (or ``name``)."""
        if self.name is not None:
            return self.name
        if self.start.day == 1 and self == Period.month(self.start.year, self.start.month):
            return f"{self.start:%Y-%m}"
        return f"{self.start.isoformat()}..{(self.end - timedelta(days=1)).isoformat()}"

    def __contains__(self, when: object) -> bool:
        if isinstance(when, datetime):
            when = when.date()
        if not isinstance(when, date):
            return False
        return self.start <= when < self.end


class PostingKind:
    """Row kinds of the journal, in their output order."""

    GOODS = "goods"
    SHIPPING = "shipping"
    DISCOUNT = "discount_memo"
    TOTAL = "total"
    ORDER = (GOODS, SHIPPING, DISCOUNT, TOTAL)


@attrs.frozen(kw_only=True)
class PostingRow:
    """One journal row: totals of one currency, kind and tax code over the period's orders.

    ``discount_memo`` rows carry the gross discount only (already inside the goods rows, not to be
    posted again); ``total`` rows add goods and shipping.
    """

    period: str
    currency: str
    kind: str
    tax_code: str
    orders: int
    net: int | None
    vat: int | None
    gross: int

    def sort_key(self) -> tuple[str, int, str]:
        """Currency, kind order, tax code."""
        return (self.currency, PostingKind.ORDER.index(self.kind), self.tax_code)


def build_postings(sources: Iterable[PostingSource], period: Period | str) -> list[PostingRow]:
    """Total the orders booked in ``period`` into sorted journal rows.

    Orders booked outside the period are skipped. The same reference twice is counted once when
    both copies are identical and refused with ``ValueError`` when they differ.
    """
    per = Period.parse(period) if isinstance(period, str) else period
    acc: dict[tuple[str, str, str], list[int]] = {}
    seen: dict[str, int] = {}

    def add(currency: str, kind: str, code: str, net: int, vat: int, gross: int) -> None:
        a = acc.setdefault((currency, kind, code), [0, 0, 0, 0])
        a[0] += 1
        a[1] += net
        a[2] += vat
        a[3] += gross

    for src in sources:
        if src.booked_at not in per:
            continue
        fingerprint = hash(src)
        if src.reference in seen:
            if seen[src.reference] != fingerprint:
                raise ValueError(
                    f"order {src.reference!r} is given twice with different amounts; "
                    "the journal would double count it"
                )
            continue
        seen[src.reference] = fingerprint
        cur = src.currency
        for kind, parts in ((PostingKind.GOODS, src.lines), (PostingKind.SHIPPING, src.shipping)):
            per_code: dict[str, list[int]] = {}
            for part in parts:
                t = per_code.setdefault(part.tax_code, [0, 0, 0])
                t[0] += part.net
                t[1] += part.vat
                t[2] += part.gross
            for code, (net, vat, gross) in per_code.items():
                add(cur, kind, code, net, vat, gross)
        if src.discount:
            add(cur, PostingKind.DISCOUNT, "", 0, 0, src.discount)
        total_net = sum(p.net for p in (*src.lines, *src.shipping))
        total_vat = sum(p.vat for p in (*src.lines, *src.shipping))
        add(cur, PostingKind.TOTAL, "", total_net, total_vat, total_net + total_vat)

    rows = [
        PostingRow(
            period=per.id,
            currency=cur,
            kind=kind,
            tax_code=code,
            orders=a[0],
            net=None if kind == PostingKind.DISCOUNT else a[1],
            vat=None if kind == PostingKind.DISCOUNT else a[2],
            gross=a[3],
        )
        for (cur, kind, code), a in acc.items()
    ]
    rows.sort(key=PostingRow.sort_key)
    return rows


_COLUMNS = (
    "batch_id",
    "period",
    "currency",
    "kind",
    "tax_code",
    "orders",
    "net",
    "vat",
    "gross",
    "journal",
    "previous_batch",
)

JOURNALS = ("full", "additions")
"""``full``: the period's whole journal (it replaces ``previous_batch``); ``additions``: only
orders booked since ``previous_batch`` was exported (it adds to it)."""


def _major(amount: int | None, currency: str) -> str:
    return "" if amount is None else str(Money(amount, currency).to_decimal())


def _cells(row: PostingRow) -> list[str]:
    cur = row.currency
    return [
        row.period,
        cur,
        row.kind,
        row.tax_code,
        str(row.orders),
        _major(row.net, cur),
        _major(row.vat, cur),
        _major(row.gross, cur),
    ]


def batch_id(rows: Iterable[PostingRow], period: Period | str | None = None) -> str:
    """``<period id>-<first 12 hex digits of SHA-256 over the rows>``: same rows, same id."""
    rows = sorted(rows, key=PostingRow.sort_key)
    if period is None:
        period_id = rows[0].period if rows else "empty"
    else:
        period_id = (Period.parse(period) if isinstance(period, str) else period).id
    digest = hashlib.sha256()
    for row in rows:
        digest.update("\x1f".join(_cells(row)).encode())
        digest.update(b"\n")
    return f"{period_id}-{digest.hexdigest()[:12]}"


def postings_csv(
    rows: Iterable[PostingRow],
    period: Period | str | None = None,
    *,
    journal: str = "full",
    previous: Iterable[str] = (),
) -> str:
    """The journal as CSV (amounts in major units, ``\\n`` line ends), rows sorted, with a batch id.

    ``period`` names the batch when there are no rows (an empty month still exports a header).
    ``journal`` (``full`` or ``additions``) and ``previous`` (the batch ids it replaces or adds to,
    joined by ``+`` in ``previous_batch``) are written on every row; they are not part of the
    batch id.
    """
    if journal not in JOURNALS:
        raise ValueError(f"journal must be one of {', '.join(JOURNALS)}, got {journal!r}")
    ordered = sorted(rows, key=PostingRow.sort_key)
    bid = batch_id(ordered, period)
    before = "+".join(previous)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_COLUMNS)
    for row in ordered:
        writer.writerow([bid, *_cells(row), journal, before])
    return out.getvalue()
