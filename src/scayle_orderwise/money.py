"""Money as integer minor units with an ISO 4217 currency, and the rounding and allocation rules.

Every amount in the library is an ``int`` of the currency's minor unit (pence, cents, fils).
Rounding of money is half-up with ties away from zero (policy P2), done in exact rational arithmetic:
never ``float`` and never Python's ``round()`` (which rounds half to even).
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from decimal import Decimal
from fractions import Fraction
from typing import Any, SupportsIndex

import attrs

from .errors import CurrencyMismatchError

__all__ = [
    "CURRENCY_EXPONENTS",
    "Money",
    "allocate",
    "exponent",
    "round_half_up",
    "split_gross",
    "split_net",
    "to_fraction",
]

# ISO 4217 minor units (active codes). Codes with no minor unit concept (XAU, XDR, ...) are absent.
CURRENCY_EXPONENTS: dict[str, int] = {
    **dict.fromkeys(
        "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
        "BZD CAD CDF CHE CHF CHW COP COU CRC CUC CUP CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL "
        "GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR "
        "LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD "
        "PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN "
        "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR "
        "ZMW ZWG ZWL".split(),
        2,
    ),
    **dict.fromkeys(
        "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0
    ),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}


def exponent(currency: str) -> int:
    """Number of minor-unit digits of an ISO 4217 currency (GBP 2, JPY 0, KWD 3).

    Raises ``ValueError`` for a code that is not an active ISO 4217 currency with a minor unit.
    """
    try:
        return CURRENCY_EXPONENTS[currency.upper()]
    except (KeyError, AttributeError):
        raise ValueError(f"unknown ISO 4217 currency code {currency!r}") from None


Rational = int | Decimal | Fraction | str


def to_fraction(value: Rational) -> Fraction:
    """Exact rational value of an ``int``, ``Decimal``, ``Fraction`` or decimal string; floats are refused."""
    if isinstance(value, bool | float):
        raise TypeError(
            f"floats are not accepted for money or rates: {value!r}; use Decimal or str"
        )
    if isinstance(value, Fraction | int):
        return Fraction(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"not a finite number: {value!r}")
        return Fraction(value)
    if isinstance(value, str):
        try:
            dec = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"not a decimal number: {value!r}") from None
        return to_fraction(dec)
    raise TypeError(f"expected int, Decimal, Fraction or str, got {type(value).__name__}")


def round_half_up(value: Rational) -> int:
    """Round to the nearest integer, ties away from zero (so a refund mirrors its sale)."""
    frac = to_fraction(value)
    if frac < 0:
        return -round_half_up(-frac)
    whole, rest = divmod(frac.numerator, frac.denominator)
    return whole + (1 if 2 * rest >= frac.denominator else 0)


def _check_amount(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Money amounts are int minor units, got {type(value).__name__}: {value!r}")
    return value


def _check_currency(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"currency must be an ISO 4217 code string, got {value!r}")
    code = value.upper()
    exponent(code)
    return code


@functools.total_ordering
@attrs.frozen(eq=True, order=False, repr=False)
class Money:
    """An amount in minor units of one currency: ``Money(1999, "GBP")`` is £19.99."""

    amount: int = attrs.field(converter=_check_amount)
    currency: str = attrs.field(converter=_check_currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        """Zero in ``currency``."""
        return cls(0, currency)

    @classmethod
    def from_decimal(cls, value: Decimal | str | int | Fraction, currency: str) -> Money:
        """Convert a major-unit amount (``Decimal("19.99")``) to minor units, refusing sub-unit digits."""
        scaled = to_fraction(value) * 10 ** exponent(currency)
        if scaled.denominator != 1:
            raise ValueError(
                f"{value} {currency} has more decimals than the currency's {exponent(currency)}"
            )
        return cls(int(scaled), currency)

    def to_decimal(self) -> Decimal:
        """The amount in major units, exactly (``Decimal("19.99")``)."""
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatchError(f"cannot combine {self.currency} with {other.currency}")
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.amount + self._same(other).amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.amount - self._same(other).amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: SupportsIndex) -> Money:
        if isinstance(factor, bool | float) or not hasattr(factor, "__index__"):
            return NotImplemented
        return Money(self.amount * factor.__index__(), self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        return self.amount < self._same(other).amount

    def __bool__(self) -> bool:
        return self.amount != 0

    def __repr__(self) -> str:
        return f"Money({self.amount}, {self.currency!r})"

    def __str__(self) -> str:
        return f"{self.to_decimal()} {self.currency}"


def allocate(
    total: int,
    weights: Sequence[int],
    keys: Sequence[Hashable] | None = None,
) -> list[int]:
    """Split ``total`` over ``weights`` by largest remainder (policy P7).

    The shares sum to ``total`` exactly and each lies within one unit of its exact proportional value.
    Leftover units go to the larger remainder, then the larger weight, then the smaller key (keys
    default to positions), so the result does not depend on input order. Negative totals are handled
    by symmetry. Zero weights get zero. All-zero weights with a non-zero total raise ``ValueError``.
    """
    total = _check_amount(total)
    n = len(weights)
    if keys is None:
        keys = list(range(n))
    elif len(keys) != n:
        raise ValueError("keys and weights must have the same length")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, int):
            raise TypeError(f"weights must be int, got {w!r}")
        if w < 0:
            raise ValueError(f"weights must not be negative, got {w}")
    if total < 0:
        return [-share for share in allocate(-total, weights, keys)]
    whole = sum(weights)
    if whole == 0:
        if total == 0:
            return [0] * n
        raise ValueError(f"cannot allocate {total} over weights that are all zero")
    shares: list[int] = []
    remainders: list[int] = []
    for w in weights:
        share, rem = divmod(total * w, whole)
        shares.append(share)
        remainders.append(rem)
    leftover = total - sum(shares)
    if leftover:
        order = sorted(range(n), key=lambda i: (-remainders[i], -weights[i], keys[i]))
        for i in order[:leftover]:
            shares[i] += 1
    return shares


def _rate(rate: Rational) -> Fraction:
    r = to_fraction(rate)
    if r < 0:
        raise ValueError(f"VAT rate must not be negative, got {rate}")
    return r


def split_gross(gross: int, rate: Rational) -> tuple[int, int]:
    """Split a VAT-inclusive amount into ``(net, vat)``; the VAT is rounded half-up (policy P3)."""
    r = _rate(rate)
    vat = round_half_up(Fraction(_check_amount(gross)) * r / (1 + r))
    return gross - vat, vat


def split_net(net: int, rate: Rational) -> tuple[int, int]:
    """Add VAT to a net amount: ``(gross, vat)`` with ``vat = round_half_up(net * rate)`` (policy P4)."""
    vat = round_half_up(Fraction(_check_amount(net)) * _rate(rate))
    return net + vat, vat
