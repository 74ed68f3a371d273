"""``MappingConfig``: the settings that decide how a SCAYLE order becomes an OrderWise sales order.

``MappingConfig()`` works with no arguments for a UK B2C shop: identity SKUs, VAT 20 % → ``T1``,
5 % → ``T5``, 0 % → ``T0``, every order booked to the customer account ``WEB001``, delivery booked
as lines of the OrderWise service item ``CARRIAGE`` (one per tax code, so mixed baskets keep their
delivery VAT split).
The configuration is checked when it is built; a mistake raises :class:`~scayle_orderwise.errors.ConfigError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any

import attrs

from ..errors import ConfigError

__all__ = [
    "DEFAULT_DELIVERY_VARIANT_CODE",
    "DEFAULT_REFERENCE_FORMAT",
    "DEFAULT_TAX_CODES",
    "UK_TAX_CODES",
    "MappingConfig",
    "external_reference",
    "parse_external_reference",
]

#: VAT rate → OrderWise tax code of a UK installation following the Sage convention.
DEFAULT_TAX_CODES: Mapping[str, str] = MappingProxyType({"0.20": "T1", "0.05": "T5", "0": "T0"})

#: Tax codes accepted when ``tax_rate_ids`` is not given (Sage-style UK codes: T0 zero-rated,
#: T1 standard, T2 exempt, T5 reduced, T9 outside the scope, ...).
UK_TAX_CODES: frozenset[str] = frozenset(f"T{n}" for n in range(10))

#: Default ``eCommerceOrderNumber`` format: ``"SCAYLE-40015"`` for SCAYLE order 40015.
DEFAULT_REFERENCE_FORMAT = "SCAYLE-{order_id}"

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _rate_key(value: object) -> Decimal:
    if isinstance(value, bool | float):
        raise ConfigError(
            f"tax_codes key {value!r}: give VAT rates as Decimal or str (e.g. '0.20'), never float"
        )
    try:
        rate = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        raise ConfigError(f"tax_codes key {value!r} is not a decimal VAT rate") from None
    if not rate.is_finite() or rate < 0 or rate > 1:
        raise ConfigError(f"tax_codes key {value!r} is not a VAT rate between 0 and 1")
    return rate.normalize() if rate else Decimal(0)


def _tax_codes(value: Mapping[Any, str] | None) -> Mapping[Decimal, str]:
    if value is None:
        value = DEFAULT_TAX_CODES
    out: dict[Decimal, str] = {}
    for key, code in value.items():
        rate = _rate_key(key)
        code = _code(code, f"tax_codes[{key!r}]")
        if rate in out and out[rate] != code:
            raise ConfigError(
                f"tax_codes maps the VAT rate {rate} twice, to {out[rate]!r} and {code!r}"
            )
        out[rate] = code
    return MappingProxyType(out)


def _code(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value.strip()


def _sku_keyed(name: str) -> Any:
    """Converter for a mapping keyed by SCAYLE SKU: keys trimmed, values non-empty strings."""

    def convert(value: Mapping[str, str] | None) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for key, target in (value or {}).items():
            sku = _code(key, f"{name} key")
            if sku in out:
                raise ConfigError(f"{name} has the SKU {sku!r} twice (after trimming spaces)")
            out[sku] = _code(target, f"{name}[{key!r}]")
        return MappingProxyType(out)

    return convert


def _sku_map(value: Mapping[str, str] | None) -> Mapping[str, str] | None:
    if value is None:
        return None
    converted: Mapping[str, str] = _sku_keyed("sku_map")(value)
    seen: dict[str, str] = {}
    for sku, target in converted.items():
        if target in seen:
            raise ConfigError(
                f"sku_map sends the SKUs {seen[target]!r} and {sku!r} to the same "
                f"OrderWise variant code {target!r}"
            )
        seen[target] = sku
    return converted


def _sku_set(value: Collection[str] | None) -> frozenset[str]:
    if isinstance(value, str):
        raise ConfigError("non_deliverable_skus must be a collection of SKUs, not one string")
    return frozenset(_code(sku, "non_deliverable_skus") for sku in (value or ()))


def _id(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: expected an integer id, got {value!r}")
    if value < 0:
        raise ConfigError(f"{where}: ids must not be negative, got {value}")
    return value


def _id_map(name: str) -> Any:
    def convert(value: Mapping[str, int] | None) -> Mapping[str, int]:
        return MappingProxyType(
            {_code(k, f"{name} key"): _id(v, f"{name}[{k!r}]") for k, v in (value or {}).items()}
        )

    return convert


def _str_map(name: str) -> Any:
    def convert(value: Mapping[str, str] | None) -> Mapping[str, str]:
        return MappingProxyType(
            {_code(k, f"{name} key"): _code(v, f"{name}[{k!r}]") for k, v in (value or {}).items()}
        )

    return convert


def _country_map(value: Mapping[str, str] | None) -> Mapping[str, str]:
    out: dict[str, str] = {}
    for alpha3, alpha2 in (value or {}).items():
        a3, a2 = _code(alpha3, "extra_country_codes key"), _code(alpha2, "extra_country_codes")
        if len(a3) != 3 or len(a2) != 2:
            raise ConfigError(
                f"extra_country_codes maps ISO alpha-3 to alpha-2 codes, got {alpha3!r}: {alpha2!r}"
            )
        out[a3.upper()] = a2.upper()
    return MappingProxyType(out)


def _reference_format(value: str) -> str:
    if not isinstance(value, str) or value.count("{order_id}") != 1:
        raise ConfigError(
            f"reference_format must contain '{{order_id}}' exactly once, got {value!r}"
        )
    try:
        value.format(order_id=1)
    except (IndexError, KeyError, ValueError):
        raise ConfigError(
            f"reference_format may use only the field '{{order_id}}', got {value!r}"
        ) from None
    return value


def _tax_code_overrides(value: Mapping[str, str] | None) -> Mapping[str, str]:
    result: Mapping[str, str] = _sku_keyed("tax_code_overrides")(value)
    return result


def _fee_variant_codes(value: Mapping[str, str] | None) -> Mapping[str, str]:
    result: Mapping[str, str] = _str_map("fee_variant_codes")(value)
    return result


def _delivery_methods(value: Mapping[str, int] | None) -> Mapping[str, int]:
    result: Mapping[str, int] = _id_map("delivery_methods")(value)
    return result


def _payment_methods(value: Mapping[str, int] | None) -> Mapping[str, int]:
    result: Mapping[str, int] = _id_map("payment_methods")(value)
    return result


def _currency_ids(value: Mapping[str, int] | None) -> Mapping[str, int]:
    result: Mapping[str, int] = _id_map("currency_ids")(value)
    return {k.upper(): v for k, v in result.items()}


def _tax_rate_ids(value: Mapping[str, int] | None) -> Mapping[str, int] | None:
    if value is None:
        return None
    result: Mapping[str, int] = _id_map("tax_rate_ids")(value)
    return result


def _default_delivery_method_id(value: object) -> int | None:
    return None if value is None else _id(value, "default_delivery_method_id")


def _stock_location_id(value: object) -> int | None:
    return None if value is None else _id(value, "stock_location_id")


def _customer_account(value: object) -> str:
    return _code(value, "customer_account")


def _optional_code(value: object) -> str | None:
    return None if value is None else _code(value, "delivery_variant_code")


#: How the delivery charge reaches OrderWise (see :attr:`MappingConfig.delivery_booking`).
DELIVERY_BOOKINGS = ("lines", "header")

#: The OrderWise item delivery is booked to by default: a non-stock service item of that code.
DEFAULT_DELIVERY_VARIANT_CODE = "CARRIAGE"


def _delivery_booking(value: object) -> str:
    if value not in DELIVERY_BOOKINGS:
        raise ConfigError(
            f"delivery_booking must be one of {', '.join(DELIVERY_BOOKINGS)}, got {value!r}"
        )
    return str(value)


def _unit_price_decimals(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 8:
        raise ConfigError(f"unit_price_decimals must be an integer from 0 to 8, got {value!r}")
    return value


@attrs.frozen(kw_only=True)
class MappingConfig:
    """How SCAYLE orders are mapped; every field has a UK B2C default.

    Attributes:
        sku_map: SCAYLE SKU (variant ``referenceKey``) → OrderWise variant code; ``None`` = identity.
            With a map, a SKU missing from it raises ``UnknownSkuError`` unless ``strict_skus`` is off.
            Keys are trimmed; two SKUs may not share a target.
        strict_skus: with ``sku_map``, whether a missing SKU is an error (``True``) or passes unchanged.
        tax_codes: VAT rate → OrderWise tax code. Keys are ``Decimal`` or ``str`` and compare as
            values (``"0.20"`` matches SCAYLE's ``0.2``). Default ``{"0.20": "T1", "0.05": "T5", "0": "T0"}``.
        tax_code_overrides: SCAYLE SKU → tax code, e.g. ``{"WARRANTY-3Y": "T2"}`` for exempt goods.
        tax_rate_ids: OrderWise tax code → ``taxRateId`` (value list 2 of the installation). When
            given, every tax code used must be in it and order lines carry ``taxRateId``; when
            ``None``, codes must be Sage-style ``T0``–``T9`` and OrderWise uses the variant's own code.
        non_deliverable_skus: SCAYLE SKUs of services and the like; they take no share of delivery.
        fee_variant_codes: SCAYLE fee ``key`` (or, failing that, ``category``) → OrderWise service
            variant code for fees other than delivery (payment surcharges and the like).
        customer_account: the OrderWise account every web order books to (B2C single-customer mode).
        delivery_methods: SCAYLE carrier / shipping key → OrderWise ``deliveryMethodId``.
        default_delivery_method_id: used when nothing in ``delivery_methods`` matches.
        stock_location_id: OrderWise stock location put on every line (``None`` = OrderWise default).
        payment_methods: SCAYLE payment ``key`` → OrderWise payment method id; payments whose key
            is not listed are kept in ``MappedOrder.payments`` but left out of the wire body.
        reference_format: format of ``eCommerceOrderNumber``; must hold ``{order_id}`` once.
        delivery_booking: ``"lines"`` (default): every delivery charge is sent as order lines of
            the item ``delivery_variant_code``, one per tax code of its P10 split, so OrderWise
            books the delivery VAT per code exactly as mapped. ``"header"``: the charge goes in the
            order header, which holds one tax code; a charge split over several codes is then sent
            whole under the code of its largest part and OrderWise books the wrong delivery VAT
            (reconciliation reports it as ``shipping_vat_treatment``). Use ``"header"`` only when
            every basket has one tax code.
        delivery_variant_code: OrderWise code of the non-stock service item delivery lines are
            booked to (default ``"CARRIAGE"``). It must exist in OrderWise:
            ``Connector.from_settings`` checks it at start-up.
        unit_price_decimals: most decimals of a unit price sent to OrderWise (major units, default
            4; inferred from OrderWise holding amounts to 4 decimals). A line whose gross does not
            divide by its quantity goes as one line whose unit price times the quantity rounds back
            to the gross (always so below 100 units at 4 decimals), so OrderWise's VAT per line is
            the mapped VAT; otherwise, or with the currency's own decimals (2 for GBP), as two lines
            one minor unit apart (P11).
        currency_ids: ISO currency code → OrderWise currency id (value list 1), sent as
            ``currencyId``; a currency not listed is left to the customer's default.
        extra_country_codes: ISO alpha-3 → alpha-2 codes added to the built-in table.
    """

    sku_map: Mapping[str, str] | None = attrs.field(default=None, converter=_sku_map)
    strict_skus: bool = True
    tax_codes: Mapping[Decimal, str] = attrs.field(default=None, converter=_tax_codes)
    tax_code_overrides: Mapping[str, str] = attrs.field(
        default=_EMPTY, converter=_tax_code_overrides
    )
    tax_rate_ids: Mapping[str, int] | None = attrs.field(default=None, converter=_tax_rate_ids)
    non_deliverable_skus: frozenset[str] = attrs.field(default=frozenset(), converter=_sku_set)
    fee_variant_codes: Mapping[str, str] = attrs.field(default=_EMPTY, converter=_fee_variant_codes)
    customer_account: str = attrs.field(default="WEB001", converter=_customer_account)
    delivery_methods: Mapping[str, int] = attrs.field(default=_EMPTY, converter=_delivery_methods)
    default_delivery_method_id: int | None = attrs.field(
        default=None, converter=_default_delivery_method_id
    )
    stock_location_id: int | None = attrs.field(default=None, converter=_stock_location_id)
    payment_methods: Mapping[str, int] = attrs.field(default=_EMPTY, converter=_payment_methods)
    reference_format: str = attrs.field(
        default=DEFAULT_REFERENCE_FORMAT, converter=_reference_format
    )
    delivery_booking: str = attrs.field(default="lines", converter=_delivery_booking)
    delivery_variant_code: str | None = attrs.field(
        default=DEFAULT_DELIVERY_VARIANT_CODE, converter=_optional_code
    )
    unit_price_decimals: int = attrs.field(default=4, converter=_unit_price_decimals)
    currency_ids: Mapping[str, int] = attrs.field(default=_EMPTY, converter=_currency_ids)
    extra_country_codes: Mapping[str, str] = attrs.field(default=_EMPTY, converter=_country_map)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.strict_skus, bool):
            raise ConfigError(f"strict_skus must be True or False, got {self.strict_skus!r}")
        known = UK_TAX_CODES if self.tax_rate_ids is None else frozenset(self.tax_rate_ids)
        used = [("tax_codes", code) for code in self.tax_codes.values()]
        used += [(f"tax_code_overrides[{s!r}]", c) for s, c in self.tax_code_overrides.items()]
        for where, code in used:
            if code not in known:
                hint = (
                    "tax_rate_ids"
                    if self.tax_rate_ids is not None
                    else "T0-T9 (or set tax_rate_ids)"
                )
                raise ConfigError(f"{where}: unknown tax code {code!r}; known codes: {hint}")

        if self.delivery_booking == "lines" and self.delivery_variant_code is None:
            raise ConfigError(
                "delivery_variant_code is not set: delivery is booked as lines of that OrderWise "
                "item (delivery_booking = 'lines'); name the item, or set delivery_booking = "
                "'header' to put delivery in the order header under one tax code"
            )

    @property
    def delivery_as_lines(self) -> bool:
        """True when delivery charges are sent as lines of :attr:`delivery_variant_code`."""
        return self.delivery_booking == "lines"

    def tax_code_for_rate(self, rate: Decimal) -> str | None:
        """The configured tax code of a VAT rate, or ``None`` when the rate is not in ``tax_codes``."""
        return self.tax_codes.get(rate)


_REFERENCE_PATTERNS: dict[str, re.Pattern[str]] = {}


def external_reference(order_id: int, config: MappingConfig | None = None) -> str:
    """The OrderWise ``eCommerceOrderNumber`` of a SCAYLE order (default ``"SCAYLE-<id>"``)."""
    fmt = config.reference_format if config is not None else DEFAULT_REFERENCE_FORMAT
    return fmt.format(order_id=int(order_id))


def parse_external_reference(reference: str, config: MappingConfig | None = None) -> int | None:
    """The SCAYLE order id inside an ``eCommerceOrderNumber``, or ``None`` if it is not one of ours."""
    fmt = config.reference_format if config is not None else DEFAULT_REFERENCE_FORMAT
    pattern = _REFERENCE_PATTERNS.get(fmt)
    if pattern is None:
        head, tail = fmt.format(order_id="\x00").split("\x00")
        pattern = re.compile(re.escape(head) + r"([0-9]+)" + re.escape(tail))
        _REFERENCE_PATTERNS[fmt] = pattern
    match = pattern.fullmatch(reference.strip()) if isinstance(reference, str) else None
    return int(match.group(1)) if match else None
