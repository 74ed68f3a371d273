"""SCAYLE wire models: SDK fixtures, the reference example order, money/rate/time rules, webhooks."""

from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, RootModel, ValidationError

from fixture_paths import SDK_FIXTURES, sdk_files, sdk_fixtures
from scayle_orderwise.scayle.models import (
    ApiErrorBody,
    BillingStatusUpdate,
    BulkRequestCreated,
    CancellationCreate,
    Carrier,
    CursorPage,
    Order,
    OrderCollection,
    OrderItem,
    OrderStatusResponse,
    ReferenceKeyUpdate,
    ReturnItemsCreate,
    Shipment,
    ShipmentCreate,
    VariantStock,
    VariantStockCreate,
    VariantStockPage,
    Warehouse,
    WebhookEvent,
    WebhookEventDefinition,
    WebhookSubscription,
    WebhookSubscriptionCreate,
)

SDK = SDK_FIXTURES
OWN = Path(__file__).parent / "fixtures"

RESPONSES: dict[str, type[BaseModel]] = {
    "OrderGetResponse.json": Order,
    "OrderUpdateReferenceKeyResponse.json": Order,
    "OrderAllResponse.json": OrderCollection,
    "OrderGetStatusResponse.json": OrderStatusResponse,
    "ProductVariantStockAllResponse.json": VariantStockPage,
    "ProductVariantStockCreateResponse.json": VariantStock,
    "ProductVariantStockCreateBulkRequestResponse.json": BulkRequestCreated,
    "WarehouseAllResponse.json": CursorPage[Warehouse],
    "CarrierAllResponse.json": CursorPage[Carrier],
    "WebhookEventAllResponse.json": CursorPage[WebhookEventDefinition],
    "WebhookSubscriptionCreateResponse.json": WebhookSubscription,
}

REQUESTS: dict[str, type[BaseModel]] = {
    "ShipmentCreateRequest.json": ShipmentCreate,
    "CancellationSendRequest.json": CancellationCreate,
    "ReturnItemSendRequest.json": ReturnItemsCreate,
    "ProductVariantStockCreateRequest.json": VariantStockCreate,
    "OrderUpdateReferenceKeyRequest.json": ReferenceKeyUpdate,
    "OrderBillingStatusUpdateOrderBillingStatusRequest.json": BillingStatusUpdate,
    "WebhookSubscriptionCreateRequest.json": WebhookSubscriptionCreate,
}


def _sdk_files(suffix: str) -> list[Path]:
    root = sdk_fixtures()  # skips (or fails when required) without the fixtures
    return sorted([*root.glob(f"*{suffix}"), *(root / "java").glob(f"*{suffix}")])


def _load(path: Path) -> Any:
    return json.loads(path.read_text())


def _example() -> dict[str, Any]:
    data: dict[str, Any] = _load(OWN / "scayle_order_example.json")
    return data


def _shape(value: Any) -> Any:
    """The key structure of a JSON value (dict keys and list lengths, not leaf values)."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return None


# ---------------------------------------------------------------------------- SDK fixtures


def test_every_sdk_response_fixture_has_a_model() -> None:
    names = {p.name for p in _sdk_files("Response.json")}
    assert names, "fixtures not found"
    assert names <= set(RESPONSES), f"unmapped response fixtures: {sorted(names - set(RESPONSES))}"


def test_every_sdk_request_fixture_of_ours_is_present() -> None:
    names = {p.name for p in _sdk_files("Request.json")}
    assert set(REQUESTS) <= names


@pytest.mark.parametrize("path", sdk_files("Response.json"))
def test_sdk_response_fixture_validates(path: Path | None) -> None:
    path = path or sdk_fixtures()
    model = RESPONSES[path.name]
    parsed = model.model_validate_json(path.read_bytes())
    # Re-dumping must keep every field the model knows; the result must validate again.
    again = model.model_validate(parsed.model_dump(by_alias=True, mode="json"))
    assert again == parsed


@pytest.mark.parametrize(
    "path",
    [p for p in sdk_files("Request.json") if p.values[0] is None or p.values[0].name in REQUESTS],
)
def test_sdk_request_fixture_round_trips(path: Path | None) -> None:
    raw = _load(path or sdk_fixtures())
    model = REQUESTS[path.name].model_validate(raw)
    wire = model.to_wire()  # type: ignore[attr-defined]
    assert _shape(wire) == _shape(raw)
    assert json.loads(json.dumps(wire)) == wire


def test_request_round_trip_is_exact_where_times_carry_an_offset() -> None:
    for name in ("ShipmentCreateRequest.json", "ProductVariantStockCreateRequest.json"):
        raw = _load(SDK / name)
        assert REQUESTS[name].model_validate(raw).to_wire() == raw  # type: ignore[attr-defined]


def test_return_items_without_offset_are_read_as_utc_and_sent_with_offset() -> None:
    body = ReturnItemsCreate.model_validate(_load(SDK / "ReturnItemSendRequest.json"))
    assert len(body) == 2
    first = next(iter(body))
    assert first.received == datetime(2021, 11, 9, 7, 30, 27, tzinfo=UTC)
    assert body.to_wire()[0] == {
        "returnKey": "ayou-139-13376599_48_1",
        "received": "2021-11-09T07:30:27+00:00",
        "returnReason": "cci-manual-return",
    }


def test_sdk_order_oddities_are_accepted() -> None:
    page = OrderCollection.model_validate_json((SDK / "OrderAllResponse.json").read_bytes())
    assert page.next_cursor == "2"
    first, external = page.entities
    item = first.items[0]
    assert item.price is not None and item.price.vat_rate == Decimal(1)  # VAT rate 1 (odd)
    assert first.cost is not None
    assert first.cost.applied_reductions[0].amount is not None
    assert first.cost.applied_reductions[0].amount.absolute_with_tax == 100
    assert first.address is not None and first.address.forward is not None
    assert external.cost is not None and external.cost.has_external_prices is True
    fee = external.cost.applied_fees[0]
    assert fee.amount is not None and fee.amount.without_tax is None  # external price: no net
    assert external.items[0].price is not None and external.items[0].price.tax is None


def test_java_order_has_second_delivery_fee_and_newer_shipping_fields() -> None:
    order = Order.model_validate_json((SDK / "java" / "OrderGetResponse.json").read_bytes())
    assert order.cost is not None
    rates = [f.tax.vat.rate for f in order.cost.delivery_fees if f.tax and f.tax.vat]
    assert rates == [Decimal("0.19"), Decimal("0.24")]
    assert order.shipping is not None and order.shipping.delivery_costs_without_discount == 200
    assert order.shop_key == "msde" and order.country_code == "DE"
    assert order.payment[0].is_gift_card is False
    assert isinstance(order.payment[0].data, dict) and order.payment[0].data["CCBrand"] == "VISA"


def test_stock_page_without_cursor() -> None:
    page = VariantStockPage.model_validate_json(
        (SDK / "ProductVariantStockAllResponse.json").read_bytes()
    )
    assert page.next_cursor is None
    assert [s.expected_availability_at for s in page.entities] == [None, date(2020, 7, 24)]
    assert page.entities[1].sellable_without_stock is True
    assert page.entities[0].changed_at == datetime(2020, 7, 23, 11, 30, 58, tzinfo=UTC)


# ---------------------------------------------------------------------------- example order


def test_reference_example_order() -> None:
    order = Order.model_validate(_example())
    assert order.id == 40015 and order.reference_key is None
    assert order.currency_code == "GBP" and order.order_code == "order_delegated"
    assert [i.sku for i in order.items] == ["SKU-TSHIRT-BLK-M", "SKU-TSHIRT-BLK-M", "SKU-CAP-NAVY"]
    assert order.cost is not None and order.cost.with_tax == 6649
    items_gross = sum(i.price.with_tax or 0 for i in order.items if i.price)
    fees_gross = sum(f.amount.with_tax or 0 for f in order.cost.applied_fees if f.amount)
    assert items_gross + fees_gross == order.cost.with_tax
    assert order.cost.tax is not None and order.cost.tax.vat is not None
    assert order.cost.tax.vat.amount == 1108 and order.cost.tax.vat.rate is None
    cap = order.item(700103)
    assert cap.price is not None and cap.price.undiscounted_with_tax == 1500
    assert cap.price.applied_reductions[0].amount is not None
    assert cap.price.applied_reductions[0].amount.relative == Decimal("0.1")
    assert cap.price.vat_rate == Decimal("0.2") and str(cap.price.vat_rate) == "0.2"
    assert order.confirmed_at == datetime(2026, 5, 4, 9, 12, 44, tzinfo=UTC)
    assert order.packages[0].delivery_date is not None
    assert order.packages[0].delivery_date.minimum == date(2026, 5, 6)
    assert order.address is not None and order.address.shipping is not None
    assert order.address.shipping.country_code == "GBR"
    assert order.address.shipping.recipient is not None
    assert order.address.shipping.recipient.full_name == "Jane Doe"
    assert list(order.items_by_sku()) == ["SKU-TSHIRT-BLK-M", "SKU-CAP-NAVY"]
    with pytest.raises(KeyError):
        order.item(1)


def test_order_dump_is_wire_json_with_numbers_for_rates() -> None:
    order = Order.model_validate(_example())
    wire = order.to_wire()
    assert wire["items"][0]["price"]["tax"]["vat"] == {"amount": 400, "rate": 0.2}
    assert wire["items"][0]["price"]["undiscountedWithOutTax"] == 2000
    assert wire["confirmedAt"] == "2026-05-04T09:12:44+00:00"
    assert Order.model_validate(wire) == order


def test_models_are_frozen() -> None:
    order = Order.model_validate(_example())
    with pytest.raises(ValidationError):
        order.id = 1  # type: ignore[misc]


# ---------------------------------------------------------------------------- tolerance


def test_unknown_fields_are_ignored_everywhere() -> None:
    data = _example()
    data["brandNewField"] = {"x": 1}
    data["items"][0]["futureFlag"] = True
    data["cost"]["appliedFees"][0]["tax"]["vat"]["newThing"] = "y"
    order = Order.model_validate(data)
    assert order == Order.model_validate(_example())
    assert "brandNewField" not in order.to_wire()


def test_missing_optional_fields_are_fine() -> None:
    order = Order.model_validate({"id": 1})
    assert order.items == [] and order.cost is None and order.payment == []


def test_item_reads_legacy_reference_key_as_key() -> None:
    item = OrderItem.model_validate({"id": 5, "referenceKey": "old-style"})
    assert item.key == "old-style"
    assert OrderItem.model_validate({"id": 5, "key": "new"}).key == "new"


def test_with_out_tax_spelling_drift_is_accepted() -> None:
    item = OrderItem.model_validate(
        {"id": 1, "price": {"withTax": 1190, "withOutTax": 1000, "undiscountedWithoutTax": 1000}}
    )
    assert item.price is not None
    assert item.price.without_tax == 1000 and item.price.undiscounted_with_out_tax == 1000


def test_item_state_helpers() -> None:
    shipped = OrderItem.model_validate({"id": 1, "shippedAt": "2026-05-05T10:00:00+00:00"})
    cancelled = OrderItem.model_validate({"id": 2, "status": "cancelled"})
    returned = OrderItem.model_validate({"id": 3, "returnedAt": "2026-05-09T10:00:00+01:00"})
    open_item = OrderItem.model_validate({"id": 4, "status": "available"})
    assert (shipped.is_shipped, shipped.is_cancelled) == (True, False)
    assert (cancelled.is_cancelled, cancelled.is_shipped) == (True, False)
    assert returned.is_returned and returned.returned_at is not None
    assert returned.returned_at.utcoffset() == timedelta(hours=1)
    assert not (open_item.is_shipped or open_item.is_cancelled or open_item.is_returned)


def test_shipped_comes_from_shipped_at_and_packages_never_from_the_item_status() -> None:
    """Issue 15 A.1: 0.1.0 took status ``deliverable`` for shipped; SCAYLE's SDKs give it no
    shipping meaning and their fixtures show shipped units as ``available``."""
    planned = {"id": 901, "carrierKey": "DPD", "deliveryStatus": "open"}  # checkout's plan
    order = Order.model_validate(
        {
            "id": 7,
            "packages": [planned, {"id": 902, "shipmentKey": "CN1"}],
            "items": [
                {"id": 1, "status": "deliverable", "packageId": 901},
                {"id": 2, "status": "delivered"},
                {"id": 3, "status": "available", "packageId": 902},
                {"id": 4, "status": "available", "shippedAt": "2026-05-05T10:00:00+00:00"},
            ],
        }
    )
    assert not order.item(1).is_shipped and not order.item(2).is_shipped
    assert order.shipped_item_ids() == {3, 4}

    fixture = OrderCollection.model_validate_json(
        (SDK / "OrderAllResponse.json").read_bytes()
    ).entities
    for sdk_order in fixture:  # every unit in SCAYLE's fixtures sits in a shipped package
        assert sdk_order.shipped_item_ids() == {item.id for item in sdk_order.items}


# ---------------------------------------------------------------------------- money rules


def test_integral_float_vat_amount_becomes_int() -> None:
    data = _example()
    data["items"][0]["price"]["tax"]["vat"]["amount"] = 400.0
    order = Order.model_validate(data)
    amount = order.items[0].price.vat_amount if order.items[0].price else None
    assert amount == 400 and type(amount) is int


def test_non_integral_vat_amount_is_rejected_naming_the_value() -> None:
    data = _example()
    data["items"][0]["price"]["tax"]["vat"]["amount"] = 399.5
    with pytest.raises(ValidationError) as info:
        Order.model_validate(data)
    text = str(info.value)
    assert "399.5" in text and "VAT amount" in text
    assert "items.0.price.tax.vat.amount" in text


@pytest.mark.parametrize(
    "path",
    [
        ("cost", "withTax"),
        ("items", 0, "price", "withTax"),
        ("cost", "appliedFees", 0, "amount", "withoutTax"),
        ("payment", 0, "amount"),
    ],
)
def test_fractional_money_is_rejected(path: tuple[Any, ...]) -> None:
    data = _example()
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = 12.34
    with pytest.raises(ValidationError) as info:
        Order.model_validate(data)
    assert "12.34" in str(info.value) and "minor units" in str(info.value)


@pytest.mark.parametrize("bad", ["1190", True, None])
def test_money_must_be_a_number(bad: Any) -> None:
    data = _example()
    data["items"][0]["price"]["withTax"] = bad
    if bad is None:  # optional amount: None is fine
        assert Order.model_validate(data).items[0].price is not None
        return
    with pytest.raises(ValidationError):
        Order.model_validate(data)


def test_missing_order_id_is_rejected() -> None:
    data = _example()
    del data["id"]
    with pytest.raises(ValidationError) as info:
        Order.model_validate(data)
    assert "id" in str(info.value) and "Field required" in str(info.value)


def test_missing_item_id_is_rejected() -> None:
    data = _example()
    del data["items"][2]["id"]
    with pytest.raises(ValidationError) as info:
        Order.model_validate(data)
    assert "items.2.id" in str(info.value)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (0.2, "0.2"),
        (0.19, "0.19"),
        (0.05, "0.05"),
        (0.07, "0.07"),
        (1, "1"),
        (0, "0"),
        ("0.20", "0.20"),
    ],
)
def test_vat_rates_become_exact_decimals(wire: Any, expected: str) -> None:
    data = _example()
    data["items"][0]["price"]["tax"]["vat"]["rate"] = wire
    price = Order.model_validate(data).items[0].price
    assert price is not None and price.vat_rate is not None
    assert str(price.vat_rate) == expected


@settings(max_examples=200, deadline=None)
@given(st.decimals(min_value=0, max_value=1, places=4, allow_nan=False, allow_infinity=False))
def test_rate_from_json_float_equals_its_decimal_text(rate: Decimal) -> None:
    text = json.dumps({"id": 1, "price": {"tax": {"vat": {"rate": float(rate)}}}})
    item = OrderItem.model_validate_json(text)
    assert item.price is not None and item.price.vat_rate == rate


def test_bad_rates_are_rejected() -> None:
    for bad in ("abc", True, float("nan")):
        with pytest.raises(ValidationError):
            OrderItem.model_validate({"id": 1, "price": {"tax": {"vat": {"rate": bad}}}})


# ---------------------------------------------------------------------------- request bodies


def test_shipment_body_to_wire() -> None:
    body = ShipmentCreate(
        shop_key="ac",
        country_code="GB",
        order_id=40015,
        carrier="DPD",
        shipment_key="15501234567890",
        delivery_date=datetime(2026, 5, 5, 16, 20, tzinfo=UTC),
        items=[{"orderItemId": 700101, "returnKey": "700101"}],
    )
    assert Shipment is ShipmentCreate
    assert body.to_wire() == {
        "shopKey": "ac",
        "countryCode": "GB",
        "orderId": 40015,
        "shipmentKey": "15501234567890",
        "carrier": "DPD",
        "deliveryDate": "2026-05-05T16:20:00+00:00",
        "items": [{"orderItemId": 700101, "returnKey": "700101"}],
    }


def test_request_bodies_reject_unknown_fields() -> None:
    with pytest.raises(ValidationError):
        CancellationCreate(
            shop_key="ac",
            country_code="GB",
            order_id=1,
            items=[],
            shipmentKey="typo",  # type: ignore[call-arg]
        )


def test_stock_body_rejects_fractional_quantity_and_needs_changed_at() -> None:
    base = {"warehouseReferenceKey": "WH1", "changedAt": "2026-05-04T10:15:00+00:00"}
    with pytest.raises(ValidationError):
        VariantStockCreate.model_validate({**base, "quantity": 1.5})
    with pytest.raises(ValidationError):
        VariantStockCreate.model_validate({"warehouseReferenceKey": "WH1", "quantity": 1})
    body = VariantStockCreate.model_validate({**base, "quantity": 42})
    assert body.to_wire() == {**base, "quantity": 42}


def test_reference_key_body() -> None:
    assert ReferenceKeyUpdate(reference_key="OW-1").to_wire() == {"referenceKey": "OW-1"}


def test_webhook_subscription_url_is_not_in_repr() -> None:
    body = WebhookSubscriptionCreate.model_validate(
        _load(SDK / "WebhookSubscriptionCreateRequest.json")
    )
    assert "foo:bar" not in repr(body) and "foo:bar" not in str(body)
    assert "foo:bar" in body.to_wire()["url"]


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("context", [{}, [], None, {"field": "quantity"}])
def test_error_body_accepts_any_context(context: Any) -> None:
    body = ApiErrorBody.model_validate(
        {"errors": [{"errorKey": "RATE_LIMIT_EXCEED", "message": "slow down", "context": context}]}
    )
    assert body.error_key == "RATE_LIMIT_EXCEED" and body.message == "slow down"
    assert body.errors[0].context == context


def test_error_body_with_several_errors() -> None:
    body = ApiErrorBody.model_validate(
        {"errors": [{"errorKey": "A", "message": "first"}, {"errorKey": "B", "message": "second"}]}
    )
    assert body.error_key == "A" and body.message == "first; second"
    assert ApiErrorBody.model_validate({}).error_key is None


# ---------------------------------------------------------------------------- webhooks


def test_current_webhook_envelope() -> None:
    event = WebhookEvent.model_validate(_load(OWN / "scayle_webhook_order_confirmed.json"))
    assert event.shape == "current"
    assert event.event_name == "order-confirmed" and event.version == 1
    assert event.dedupe_key == event.key == "1f3e35e7-92b0-4ad2-b596-a215615398d4"
    assert event.meta is not None and event.meta.tenant_key == "acme"
    assert event.order_id == 40015 and event.entity_id == "40015"
    order = event.order()
    assert order is not None and order.id == 40015 and len(order.items) == 3
    assert event.occurred_at == datetime(2026, 5, 4, 9, 12, 45, tzinfo=UTC)


def test_legacy_webhook_envelope_with_nested_order() -> None:
    event = WebhookEvent.model_validate(_load(OWN / "scayle_webhook_legacy_package_shipped.json"))
    assert event.shape == "legacy"
    assert event.locale is not None and event.locale.country_code == "GBR"
    assert event.event_name == "order-package-shipped"
    assert event.order_id == 40015 and event.entity_id == "40015"
    assert event.dedupe_key == "5b0c7d3e-1a2b-4c5d-8e9f-0a1b2c3d4e5f"
    order = event.order()
    assert order is not None and order.currency_code == "GBP"


def test_stock_webhook_entity_is_the_variant() -> None:
    event = WebhookEvent.model_validate(
        {
            "key": "k1",
            "type": "product-variant-stock-updated",
            "payload": {
                "productVariant": {"id": 77, "referenceKey": "SKU-1"},
                "product": {"id": 5},
                "warehouse": {"id": 1, "referenceKey": "WH1"},
                "quantity": 3,
            },
        }
    )
    assert event.order_id is None and event.order() is None
    assert event.entity_id == "77" and not event.is_order_event


def test_webhook_without_key_gets_a_stable_dedupe_key() -> None:
    body = {"type": "order-cancelled", "occurredAt": "2026-05-04T09:00:00Z", "payload": {"id": 9}}
    first = WebhookEvent.model_validate(body)
    second = WebhookEvent.model_validate(copy.deepcopy(body))
    other = WebhookEvent.model_validate({**body, "payload": {"id": 10}})
    assert first.key is None
    assert first.dedupe_key == second.dedupe_key != other.dedupe_key
    assert first.dedupe_key.startswith("sha256:")
    assert first.order_id == 9


def test_webhook_order_id_from_items_and_null_payload() -> None:
    items = WebhookEvent.model_validate(
        {"key": "x", "type": "order-item-returned", "payload": {"items": [{"orderId": "321"}]}}
    )
    assert items.order_id == 321
    empty = WebhookEvent.model_validate({"key": "y", "type": "order-confirmed", "payload": None})
    assert empty.payload == {} and empty.order_id is None and empty.entity_id is None
    assert empty.event_name == "order-confirmed"


def test_webhook_rejects_non_object_payload() -> None:
    with pytest.raises(ValidationError):
        WebhookEvent.model_validate({"key": "z", "type": "order-confirmed", "payload": [1, 2]})


def test_return_items_body_is_a_root_list() -> None:
    body = ReturnItemsCreate([{"returnKey": "700101", "returnReason": "too small"}])
    assert isinstance(body, RootModel)
    assert body.to_wire() == [{"returnKey": "700101", "returnReason": "too small"}]
