"""Bad input gets its own MappingError subclass naming the value; nothing is silently corrected."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from scayle_orderwise.errors import (
    InconsistentOrderError,
    MappingError,
    MixedCurrencyError,
    NegativeAmountError,
    NonIntegralAmountError,
    UnknownSkuError,
    UnknownTaxRateError,
)
from scayle_orderwise.mapping import (
    MalformedOrderError,
    MappingConfig,
    OrderMapper,
    UnknownCountryError,
    UnmappedFeeError,
)
from scayle_orderwise.scayle.models import Order
from scayle_orderwise.testing.strategies import build_order_json


def _order(**kwargs: Any) -> dict[str, Any]:
    return build_order_json(
        77, [("TEE-1", 2000, "0.2"), ("MUG-2", 850, "0.2")], delivery=395, **kwargs
    )


def test_unknown_sku_with_sku_map() -> None:
    mapper = OrderMapper(MappingConfig(sku_map={"TEE-1": "OW-TEE"}))
    with pytest.raises(UnknownSkuError) as info:
        mapper.map(_order())
    assert info.value.sku == "MUG-2"
    assert "MUG-2" in str(info.value)
    assert info.value.reason_code == "unknown_sku"


def test_lenient_sku_map_passes_unknown_skus_through() -> None:
    mapper = OrderMapper(MappingConfig(sku_map={"TEE-1": "OW-TEE"}, strict_skus=False))
    codes = [line.variant_code for line in mapper.map(_order()).to_orderwise().order_lines]
    assert codes == ["OW-TEE", "MUG-2", "CARRIAGE"]


def test_sku_is_trimmed_before_lookup() -> None:
    order = _order()
    order["items"][0]["variant"]["referenceKey"] = "  TEE-1 "
    mapper = OrderMapper(MappingConfig(sku_map={"TEE-1": "OW-TEE", "MUG-2": "OW-MUG"}))
    mapped = mapper.map(order)
    assert mapped.lines[0].sku == "TEE-1"
    assert mapped.to_orderwise().order_lines[0].variant_code == "OW-TEE"


def test_missing_sku() -> None:
    order = _order()
    order["items"][1]["variant"]["referenceKey"] = " "
    with pytest.raises(MappingError, match="SKU"):
        OrderMapper().map(order)


def test_unknown_tax_rate_is_named() -> None:
    order = build_order_json(78, [("TEE", 1190, "0.19")])
    with pytest.raises(UnknownTaxRateError) as info:
        OrderMapper().map(order)
    assert "0.19" in str(info.value)
    assert info.value.reason_code == "unknown_tax_rate"


def test_scayle_fixture_rate_of_one_is_refused() -> None:
    order = build_order_json(79, [("TEE", 1190, "1")])
    with pytest.raises(UnknownTaxRateError, match="rate 1"):
        OrderMapper().map(order)


def test_missing_item_rate() -> None:
    order = _order()
    del order["items"][0]["price"]["tax"]
    with pytest.raises(UnknownTaxRateError, match="no VAT rate"):
        OrderMapper().map(order)


def test_inconsistent_totals() -> None:
    order = _order()
    order["cost"]["withTax"] += 1
    with pytest.raises(InconsistentOrderError) as info:
        OrderMapper().map(order)
    assert str(order["cost"]["withTax"]) in str(info.value)
    assert info.value.reason_code == "inconsistent_totals"


def test_inconsistent_voucher_reading() -> None:
    order = _order(reductions=[500])
    order["cost"]["withTax"] -= 1  # neither inside nor outside the item prices
    with pytest.raises(InconsistentOrderError, match="order reductions 500"):
        OrderMapper().map(order)


def test_missing_total() -> None:
    order = _order()
    del order["cost"]["withTax"]
    with pytest.raises(InconsistentOrderError, match="withTax"):
        OrderMapper().map(order)


def test_order_without_items() -> None:
    order = _order()
    order["items"] = []
    with pytest.raises(InconsistentOrderError, match="no items"):
        OrderMapper().map(order)


def test_mixed_currencies() -> None:
    order = _order()
    order["items"][1]["currency"] = "EUR"
    with pytest.raises(MixedCurrencyError) as info:
        OrderMapper().map(order)
    assert "EUR" in str(info.value) and "GBP" in str(info.value)


def test_negative_item_price() -> None:
    order = _order()
    order["items"][1]["price"]["withTax"] = -850
    order["cost"]["withTax"] = 2000 - 850 + 395
    with pytest.raises(NegativeAmountError, match="-850"):
        OrderMapper().map(order)


def test_negative_fee_and_reduction() -> None:
    order = _order()
    order["cost"]["appliedFees"][0]["amount"]["withTax"] = -395
    with pytest.raises(NegativeAmountError, match="-395"):
        OrderMapper().map(order)
    order = _order(reductions=[100])
    order["cost"]["appliedReductions"][0]["amount"]["absoluteWithTax"] = -100
    with pytest.raises(NegativeAmountError, match="-100"):
        OrderMapper().map(order)


def test_non_integral_vat_amount() -> None:
    order = _order()
    order["items"][0]["price"]["tax"]["vat"]["amount"] = 333.5
    with pytest.raises(NonIntegralAmountError) as info:
        OrderMapper().map(order)
    assert "333.5" in str(info.value)
    assert info.value.reason_code == "non_integral_amount"


def test_integral_float_amounts_are_fine() -> None:
    order = _order()
    order["items"][0]["price"]["tax"]["vat"]["amount"] = 333.0
    assert OrderMapper().map(order).total_gross == order["cost"]["withTax"]


def test_malformed_order_json() -> None:
    order = _order()
    order["items"][0]["id"] = "not-a-number"
    with pytest.raises(MalformedOrderError, match=r"items\.0\.id"):
        OrderMapper().map(order)


def test_unknown_currency() -> None:
    order = _order(currency="XYZ")
    with pytest.raises(MalformedOrderError, match="XYZ"):
        OrderMapper().map(order)


def test_payment_fee_without_service_code() -> None:
    order = _order(payment_fee=150)
    with pytest.raises(UnmappedFeeError, match="base_payment_service_cost"):
        OrderMapper().map(order)


def test_unknown_delivery_country() -> None:
    order = _order(country="XKX")
    with pytest.raises(UnknownCountryError, match="XKX"):
        OrderMapper().map(order)
    cfg = MappingConfig(extra_country_codes={"XKX": "XK"})
    body = OrderMapper(cfg).map(order).to_orderwise()
    assert body.customer_delivery_address is not None
    assert body.customer_delivery_address.country_code == "XK"


def test_the_input_is_not_modified() -> None:
    order = _order(reductions=[700])
    before = copy.deepcopy(order)
    OrderMapper().map(order)
    assert order == before


def test_typed_order_and_dict_map_alike() -> None:
    order = _order(reductions=[321])
    assert OrderMapper().map(Order.model_validate(order)) == OrderMapper().map(order)


def test_repeated_item_id_is_refused_naming_it() -> None:
    # Line keys, voucher tie-breaks and item_ids_by_item_number all assume unique item ids.
    order = _order()
    order["items"][1]["id"] = order["items"][0]["id"]
    with pytest.raises(MalformedOrderError, match=str(order["items"][0]["id"])) as info:
        OrderMapper().map(order)
    assert isinstance(info.value, MappingError)
    assert "repeats" in str(info.value)
    order["items"][1]["id"] += 1  # unique again: maps
    assert OrderMapper().map(order).total_gross == 2000 + 850 + 395
