"""Normalised order summaries: what the reconciler compares, independent of either API's models.

All amounts are ``int`` minor units of the summary's ``currency``. The connector builds these from
SCAYLE orders (or their :class:`~scayle_orderwise.mapping.MappedOrder`) and from OrderWise export
rows; users can build them from anything else, e.g. a CSV from another shop.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from fractions import Fraction
from typing import Any, Protocol

import attrs

from ..money import Rational, exponent, split_gross, to_fraction

__all__ = ["ErpOrderSummary", "LineSummary", "ShopOrderSummary"]


def _int(_: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{attribute.name} must be int minor units, got {value!r}")


def _opt_int(inst: object, attribute: attrs.Attribute[Any], value: object) -> None:
    if value is not None:
        _int(inst, attribute, value)


def _currency(value: str) -> str:
    code = str(value).upper()
    exponent(code)
    return code


def _rate(value: Rational | None) -> Fraction | None:
    return None if value is None else to_fraction(value)


def _lines(value: Iterable[LineSummary]) -> tuple[LineSummary, ...]:
    return tuple(value)


def _codes(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(str(v) for v in value)


@attrs.frozen
class LineSummary:
    """One goods line or one shipping part of an order, as booked on one side.

    ``key`` identifies the line on both sides (the connector uses ``"<SKU>|<tax code>"`` for
    goods, ``"fee|<key>|<tax code>"`` for fees and ``"shipping|<tax code>"`` for shipping parts;
    a line whose key differs only in that tax-code suffix is the same line booked under another
    code). ``rate`` (``Decimal``/``str``/``Fraction``, never ``float``) is needed to recognise
    half-penny ties; without it only the bound-based explanations apply. ``voucher`` is the
    order-level voucher folded into this line's gross by the mapping (P7): before the voucher the
    line was worth ``gross + voucher``.
    """

    key: str
    tax_code: str
    gross: int = attrs.field(validator=_int)
    vat: int = attrs.field(validator=_int)
    quantity: int = attrs.field(default=1, validator=_int)
    rate: Fraction | None = attrs.field(default=None, converter=_rate)
    voucher: int = attrs.field(default=0, validator=_int)

    @property
    def net(self) -> int:
        """``gross - vat``."""
        return self.gross - self.vat

    def is_vat_tie(self) -> bool:
        """True if the exact VAT of this line's gross ends in exactly half a minor unit."""
        if self.rate is None:
            return False
        exact = Fraction(self.gross) * self.rate / (1 + self.rate)
        return exact.denominator == 2

    @classmethod
    def from_gross(
        cls, key: str, tax_code: str, gross: int, rate: Rational, quantity: int = 1
    ) -> LineSummary:
        """A line whose VAT follows policy P3 (half-up VAT on the gross)."""
        _net, vat = split_gross(gross, rate)
        return cls(key, tax_code, gross, vat, quantity, to_fraction(rate))


@attrs.frozen(kw_only=True)
class ShopOrderSummary:
    """A SCAYLE order as the reconciler sees it (all keyword arguments).

    ``gross`` is the order total including the part paid by gift card (a gift card is a payment,
    P12); ``gift_card`` is that part. ``discount`` is the order-level voucher OrderWise is expected
    to book as a separate discount and ``unused_voucher`` the face value left over (P9).
    ``voucher_in_lines`` is the order-level voucher the mapping folded into the line prices
    instead (so OrderWise shows no separate discount for it), ``voucher_codes`` the codes of the
    vouchers, so a voucher missing in OrderWise can be named. ``shipping_vat``, ``lines`` and
    ``shipping_lines`` (the delivery's parts per tax code) are optional; with them more variances
    can be explained instead of flagged. ``header_shipping_vat`` is the delivery VAT OrderWise
    books when the connector sends the delivery in the order header under one tax code
    (``delivery_booking = "header"``): a difference of exactly that is the configured treatment
    (``shipping_vat_treatment``), any other delivery VAT difference is a ``tax_mismatch``.
    """

    reference: str
    order_id: str = attrs.field(converter=str)
    currency: str = attrs.field(converter=_currency)
    gross: int = attrs.field(validator=_int)
    vat: int = attrs.field(validator=_int)
    net: int | None = attrs.field(default=None, validator=_opt_int)
    shipping_gross: int = attrs.field(default=0, validator=_int)
    shipping_vat: int | None = attrs.field(default=None, validator=_opt_int)
    discount: int = attrs.field(default=0, validator=_int)
    gift_card: int = attrs.field(default=0, validator=_int)
    unused_voucher: int = attrs.field(default=0, validator=_int)
    status: str = ""
    created_at: datetime | None = None
    lines: tuple[LineSummary, ...] = attrs.field(default=(), converter=_lines)
    voucher_in_lines: int = attrs.field(default=0, validator=_int)
    voucher_codes: tuple[str, ...] = attrs.field(default=(), converter=_codes)
    header_shipping_vat: int | None = attrs.field(default=None, validator=_opt_int)
    shipping_lines: tuple[LineSummary, ...] = attrs.field(default=(), converter=_lines)

    @classmethod
    def from_mapped(
        cls,
        mapped: MappedLike,
        *,
        order_id: str | int,
        status: str = "",
        created_at: datetime | None = None,
        discount: int | None = None,
        gift_card: int | None = None,
        rates: dict[str, Rational] | None = None,
    ) -> ShopOrderSummary:
        """Summarise a mapped order (anything shaped like ``MappedOrder``).

        ``discount`` defaults to the mapped ``voucher_applied`` and ``gift_card`` to the gift-card
        payments; line rates come from each line's ``rate`` or else from ``rates`` (tax code →
        rate), so half-penny ties can be recognised. Fees become lines keyed ``fee|<key>``.
        """
        lines = _mapped_lines(mapped, rates or {})
        shipping_lines = tuple(line for line in lines if line.key.startswith("shipping|"))
        if discount is None:
            discount = getattr(mapped, "voucher_applied", 0) or 0
        if gift_card is None:
            gift_card = sum(
                p.amount
                for p in getattr(mapped, "payments", ())
                if getattr(p, "is_gift_card", False)
            )
        return cls(
            reference=mapped.external_reference,
            order_id=str(order_id),
            currency=mapped.currency,
            gross=mapped.total_gross,
            vat=mapped.total_vat,
            net=mapped.total_net,
            shipping_gross=sum(p.gross for p in mapped.shipping),
            shipping_vat=sum(p.vat for p in mapped.shipping),
            discount=discount,
            gift_card=gift_card,
            unused_voucher=getattr(mapped, "unused_voucher", 0) or 0,
            status=status,
            created_at=created_at,
            lines=lines,
            shipping_lines=shipping_lines,
        )


@attrs.frozen(kw_only=True)
class ErpOrderSummary:
    """An OrderWise sales order as the reconciler sees it (all keyword arguments).

    ``reference`` is the ``eCommerceOrderNumber`` (it contains the SCAYLE order id), ``order_id``
    the OrderWise id and ``order_number`` its human order number. ``status`` is the canonical
    status (``"awaiting_despatch"``, ``"cancelled"``, ...; compared case-insensitively).
    """

    reference: str
    order_id: str = attrs.field(converter=str)
    order_number: str | None = None
    currency: str = attrs.field(converter=_currency)
    gross: int = attrs.field(validator=_int)
    vat: int = attrs.field(validator=_int)
    net: int | None = attrs.field(default=None, validator=_opt_int)
    shipping_gross: int = attrs.field(default=0, validator=_int)
    shipping_vat: int | None = attrs.field(default=None, validator=_opt_int)
    discount: int = attrs.field(default=0, validator=_int)
    status: str = ""
    lines: tuple[LineSummary, ...] = attrs.field(default=(), converter=_lines)

    @classmethod
    def from_mapped(
        cls,
        mapped: MappedLike,
        *,
        order_id: str | int,
        order_number: str | None = None,
        status: str = "open",
        discount: int | None = None,
        rates: dict[str, Rational] | None = None,
    ) -> ErpOrderSummary:
        """The OrderWise order that faithfully books ``mapped`` (for tests and round trips)."""
        if discount is None:
            discount = getattr(mapped, "voucher_applied", 0) or 0
        return cls(
            reference=mapped.external_reference,
            order_id=str(order_id),
            order_number=order_number,
            currency=mapped.currency,
            gross=mapped.total_gross,
            vat=mapped.total_vat,
            net=mapped.total_net,
            shipping_gross=sum(p.gross for p in mapped.shipping),
            shipping_vat=sum(p.vat for p in mapped.shipping),
            discount=discount,
            status=status,
            lines=_mapped_lines(mapped, rates or {}),
        )


class _MappedPart(Protocol):
    @property
    def gross(self) -> int: ...
    @property
    def vat(self) -> int: ...
    @property
    def tax_code(self) -> str: ...


class _MappedLine(_MappedPart, Protocol):
    @property
    def sku(self) -> str: ...
    @property
    def quantity(self) -> int: ...


class MappedLike(Protocol):
    """The parts of ``MappedOrder`` the summaries read."""

    @property
    def external_reference(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def total_gross(self) -> int: ...
    @property
    def total_net(self) -> int: ...
    @property
    def total_vat(self) -> int: ...
    @property
    def lines(self) -> Sequence[_MappedLine]: ...
    @property
    def shipping(self) -> Sequence[_MappedPart]: ...


def _mapped_lines(mapped: MappedLike, rates: dict[str, Rational]) -> tuple[LineSummary, ...]:
    """Goods lines merged per (SKU, tax code), fees and shipping parts per key, keyed stably."""

    def rate_of(part: object, code: str) -> Rational | None:
        rate = getattr(part, "rate", None)
        return rates.get(code) if rate is None else rate

    merged: dict[tuple[str, str], list[Any]] = {}
    for line in mapped.lines:
        acc = merged.setdefault((line.sku, line.tax_code), [0, 0, 0, 0, None, 0])
        acc[0] += line.gross
        acc[1] += line.vat
        acc[2] += line.quantity
        acc[3] += 1
        acc[4] = rate_of(line, line.tax_code)
        acc[5] += getattr(line, "discount", 0) or 0
    # A merged line's gross no longer tells whether its VAT was a tie: drop the rate then.
    out = [
        LineSummary(f"{sku}|{code}", code, g, v, q, r if n == 1 else None, d)
        for (sku, code), (g, v, q, n, r, d) in sorted(merged.items())
    ]
    fees = sorted(
        getattr(mapped, "fees", ()), key=lambda f: (str(getattr(f, "key", "")), f.tax_code)
    )
    out.extend(
        LineSummary(
            f"fee|{getattr(f, 'key', '')}|{f.tax_code}",
            f.tax_code,
            f.gross,
            f.vat,
            1,
            rate_of(f, f.tax_code),
        )
        for f in fees
    )
    for part in sorted(mapped.shipping, key=lambda p: p.tax_code):
        code = part.tax_code
        out.append(
            LineSummary(f"shipping|{code}", code, part.gross, part.vat, 1, rate_of(part, code))
        )
    return tuple(out)
