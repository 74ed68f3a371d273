"""MappingConfig defaults and validation; external reference helpers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scayle_orderwise.errors import ConfigError
from scayle_orderwise.mapping import (
    MappingConfig,
    OrderMapper,
    external_reference,
    parse_external_reference,
)
from scayle_orderwise.testing.strategies import build_order_json


def test_defaults_are_uk_b2c() -> None:
    cfg = MappingConfig()
    assert cfg.sku_map is None
    assert cfg.strict_skus is True
    assert cfg.customer_account == "WEB001"
    assert dict(cfg.tax_codes) == {Decimal("0.2"): "T1", Decimal("0.05"): "T5", Decimal(0): "T0"}
    assert cfg.tax_rate_ids is None
    assert cfg.default_delivery_method_id is None
    assert cfg.non_deliverable_skus == frozenset()


@pytest.mark.parametrize("key", ["0.2", "0.20", Decimal("0.200"), " 0.2 "])
def test_tax_code_keys_compare_as_values(key: object) -> None:
    cfg = MappingConfig(tax_codes={key: "T1", "0": "T0"})
    assert cfg.tax_codes[Decimal("0.2")] == "T1"
    assert cfg.tax_code_for_rate(Decimal("0.20")) == "T1"
    assert cfg.tax_code_for_rate(Decimal("0.05")) is None


def test_float_tax_code_key_is_refused() -> None:
    with pytest.raises(ConfigError, match="never float"):
        MappingConfig(tax_codes={0.2: "T1"})


def test_rate_given_twice_with_different_codes() -> None:
    with pytest.raises(ConfigError, match="twice"):
        MappingConfig(tax_codes={"0.2": "T1", "0.20": "T5"})


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"tax_codes": {"0.2": "X1"}}, "unknown tax code 'X1'"),
        ({"tax_code_overrides": {"WARRANTY": "ZZ"}}, "unknown tax code 'ZZ'"),
        ({"tax_codes": {"abc": "T1"}}, "not a decimal"),
        ({"tax_codes": {"-0.1": "T1"}}, "between 0 and 1"),
        ({"tax_rate_ids": {"T1": 1, "T0": 2}}, "unknown tax code 'T5'"),
        ({"tax_rate_ids": {"T1": -1}}, "must not be negative"),
        ({"default_delivery_method_id": -3}, "must not be negative"),
        ({"stock_location_id": -1}, "must not be negative"),
        ({"delivery_methods": {"DPD": -2}}, "must not be negative"),
        ({"payment_methods": {"card": "x"}}, "integer id"),
        ({"sku_map": {"A": "OW-1", "B": "OW-1"}}, "same OrderWise variant code 'OW-1'"),
        ({"sku_map": {"A": "OW-1", " A ": "OW-2"}}, "twice"),
        ({"sku_map": {"A": ""}}, "non-empty"),
        ({"customer_account": "  "}, "customer_account"),
        ({"reference_format": "SCAYLE"}, "order_id"),
        ({"reference_format": "{order_id}-{shop}"}, "only the field"),
        ({"extra_country_codes": {"XKX": "XKK"}}, "alpha-3"),
        ({"non_deliverable_skus": "WARRANTY"}, "not one string"),
    ],
)
def test_invalid_config_raises_config_error(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        MappingConfig(**kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


def test_exempt_override_is_a_known_uk_code() -> None:
    cfg = MappingConfig(tax_code_overrides={" WARRANTY-3Y ": "T2"})
    assert cfg.tax_code_overrides == {"WARRANTY-3Y": "T2"}


def test_tax_rate_ids_define_the_known_codes() -> None:
    cfg = MappingConfig(tax_codes={"0.2": "STD", "0": "ZERO"}, tax_rate_ids={"STD": 1, "ZERO": 2})
    assert cfg.tax_rate_ids == {"STD": 1, "ZERO": 2}


def test_sku_keys_are_trimmed() -> None:
    cfg = MappingConfig(sku_map={" A ": " OW-A "}, non_deliverable_skus=[" SVC "])
    assert cfg.sku_map == {"A": "OW-A"}
    assert cfg.non_deliverable_skus == frozenset({"SVC"})


def test_external_reference_round_trip_default() -> None:
    assert external_reference(40015) == "SCAYLE-40015"
    assert parse_external_reference("SCAYLE-40015") == 40015
    assert parse_external_reference(" SCAYLE-7 ") == 7
    assert parse_external_reference("SCAYLE-") is None
    assert parse_external_reference("WOO-40015") is None
    assert parse_external_reference("SCAYLE-40015-B") is None


def test_external_reference_custom_format() -> None:
    cfg = MappingConfig(reference_format="ac.{order_id}/GB")
    assert external_reference(12, cfg) == "ac.12/GB"
    assert parse_external_reference("ac.12/GB", cfg) == 12
    assert parse_external_reference("acX12/GB", cfg) is None  # the dot is literal
    plain = MappingConfig(reference_format="{order_id}")
    assert external_reference(99, plain) == "99"
    assert parse_external_reference("99", plain) == 99


def test_mapped_order_uses_the_reference_format() -> None:
    order = build_order_json(555, [("TEE", 1000, "0.2")])
    mapped = OrderMapper(MappingConfig(reference_format="SC{order_id}")).map(order)
    assert mapped.external_reference == "SC555"
    assert mapped.to_orderwise().order_header.e_commerce_order_number == "SC555"


def test_delivery_is_booked_as_carriage_lines_by_default() -> None:
    cfg = MappingConfig()
    assert (cfg.delivery_booking, cfg.delivery_variant_code) == ("lines", "CARRIAGE")
    assert cfg.delivery_as_lines and cfg.unit_price_decimals == 4
    assert not MappingConfig(delivery_booking="header").delivery_as_lines


def test_delivery_booking_and_unit_price_decimals_are_checked() -> None:
    with pytest.raises(ConfigError, match="delivery_booking must be one of lines, header"):
        MappingConfig(delivery_booking="split")
    with pytest.raises(ConfigError, match="delivery_variant_code is not set"):
        MappingConfig(delivery_variant_code=None)
    assert MappingConfig(delivery_variant_code=None, delivery_booking="header")
    for bad in (-1, 9, True, "4"):
        with pytest.raises(ConfigError, match="unit_price_decimals"):
            MappingConfig(unit_price_decimals=bad)  # type: ignore[arg-type]
