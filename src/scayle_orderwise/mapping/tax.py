"""VAT rates and tax codes: read SCAYLE's rates exactly, find the OrderWise code, split gross amounts.

SCAYLE sends rates as JSON numbers (``0.2``, ``0.19``). A rate is converted through its shortest
``repr`` (``Decimal("0.2")``), never through binary float arithmetic, and compared as a value.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from fractions import Fraction

from ..errors import UnknownTaxRateError
from ..money import split_gross
from .config import MappingConfig

__all__ = ["parse_rate", "rate_fraction", "split_line_gross", "tax_code_for"]

_RATE_CACHE: dict[object, Decimal] = {}
_FRACTION_CACHE: dict[Decimal, Fraction] = {}
_RATIO_CACHE: dict[Decimal, tuple[int, int]] = {}


def parse_rate(value: object) -> Decimal:
    """A VAT rate as an exact ``Decimal``: floats through their shortest repr (``0.2`` → ``0.2``).

    Raises ``UnknownTaxRateError`` for a missing, negative or non-numeric rate.
    """
    key = (type(value), value)
    try:
        return _RATE_CACHE[key]
    except (KeyError, TypeError):
        pass
    if value is None or isinstance(value, bool):
        raise UnknownTaxRateError(value, f"missing or invalid VAT rate {value!r}")
    try:
        if isinstance(value, float):
            rate = Decimal(repr(value))
        elif isinstance(value, Decimal | int | str):
            rate = Decimal(value)
        elif isinstance(value, Fraction):
            rate = Decimal(value.numerator) / Decimal(value.denominator)
        else:
            raise TypeError
    except (InvalidOperation, TypeError, ValueError):
        raise UnknownTaxRateError(value, f"invalid VAT rate {value!r}") from None
    if not rate.is_finite() or rate < 0:
        raise UnknownTaxRateError(value, f"invalid VAT rate {value!r}")
    rate = rate.normalize() if rate else Decimal(0)
    if len(_RATE_CACHE) < 1024:
        _RATE_CACHE[key] = rate
    return rate


def rate_fraction(rate: Decimal) -> Fraction:
    """The exact rational value of a rate (cached: orders reuse a handful of rates)."""
    frac = _FRACTION_CACHE.get(rate)
    if frac is None:
        frac = Fraction(rate)
        if len(_FRACTION_CACHE) < 1024:
            _FRACTION_CACHE[rate] = frac
    return frac


def tax_code_for(rate: Decimal, sku: str | None, config: MappingConfig) -> str:
    """Default tax-code rule: the SKU's override if any, else the rate's code from ``tax_codes``.

    Raises ``UnknownTaxRateError`` naming the rate when it has no configured code.
    """
    if sku is not None:
        override = config.tax_code_overrides.get(sku)
        if override is not None:
            return override
    code = config.tax_codes.get(rate)
    if code is None:
        raise UnknownTaxRateError(
            rate,
            f"unknown VAT rate {rate}"
            + (f" (SKU {sku!r})" if sku is not None else "")
            + ": no OrderWise tax code configured; known rates: "
            + ", ".join(str(r) for r in sorted(config.tax_codes)),
        )
    return code


def split_line_gross(gross: int, rate: Decimal) -> tuple[int, int]:
    """``(net, vat)`` of a VAT-inclusive line amount, VAT half-up on the line (P3, P5).

    The same result as :func:`scayle_orderwise.money.split_gross` (a property test checks it),
    computed in integer arithmetic because the mapper calls it for every line and delivery part.
    """
    if not rate:
        return gross, 0
    ratio = _RATIO_CACHE.get(rate)
    if ratio is None:
        frac = rate_fraction(rate)
        ratio = (frac.numerator, frac.numerator + frac.denominator)
        if len(_RATIO_CACHE) < 1024:
            _RATIO_CACHE[rate] = ratio
    num, den = ratio
    magnitude = abs(gross)
    vat = (2 * magnitude * num + den) // (2 * den)
    if gross < 0:
        vat = -vat
    return gross - vat, vat


def split_line_gross_reference(gross: int, rate: Decimal) -> tuple[int, int]:
    """:func:`split_line_gross` through :func:`scayle_orderwise.money.split_gross` (for checks)."""
    return split_gross(gross, rate_fraction(rate))
