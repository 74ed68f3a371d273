"""The SCAYLE fake at the HTTP level (reference §8 checklist), the Sandbox container and the factory."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fixture_paths import SDK_FIXTURES
from scayle_orderwise.money import split_gross
from scayle_orderwise.sandbox import (
    Faults,
    OrderwiseSandbox,
    Sandbox,
    ScayleSandbox,
    SimulatedCrash,
    VirtualClock,
    make_order,
)
from scayle_orderwise.scayle.models import Order, OrderStatusResponse, VariantStock, WebhookEvent

FIXTURES = SDK_FIXTURES
BASE = "https://acme-sandbox.admin.api.scayle.cloud/api/admin/v1"
ORDERS = "/shops/ac/countries/GB/orders"


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} not available")
    return json.loads(path.read_text())


def http(sb: ScayleSandbox, token: str | None = "sandbox-scayle-token") -> httpx.Client:
    headers = {"X-Access-Token": token} if token else {}
    return httpx.Client(base_url=BASE, transport=sb.transport, headers=headers)


@pytest.fixture
def sb() -> ScayleSandbox:
    fake = ScayleSandbox(seed=3)
    fake.add_order(
        make_order(
            40015,
            [("SKU-TSHIRT", 2400, 2, "0.20"), ("SKU-CAP", 1350, 1, "0.20", 1500)],
            shipping=499,
        )
    )
    return fake


def errors_of(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    assert set(body) == {"errors"}
    return list(body["errors"])


# -- auth, rate-limit headers, rate limits ------------------------------------------------------------


@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_missing_or_wrong_token_is_401_with_errors_body(
    sb: ScayleSandbox, token: str | None
) -> None:
    r = http(sb, token).get(f"{ORDERS}/40015")
    assert r.status_code == 401
    (err,) = errors_of(r)
    assert err["errorKey"] == "UNAUTHORIZED" and err["message"] and err["context"] == {}
    assert sb.requests[-1] == ("GET", f"{ORDERS}/40015", 401)


def test_every_answer_has_rate_limit_headers(sb: ScayleSandbox) -> None:
    c = http(sb)
    for method, path, scope in [
        ("GET", f"{ORDERS}/40015", "ordersRead"),
        ("GET", f"{ORDERS}/404404", "ordersRead"),
        ("GET", "/variants/key%3DSKU-CAP/stocks", "stocksRead"),
        ("GET", "/warehouses", "globalRead"),
    ]:
        r = c.request(method, path)
        assert r.headers["X-RateLimit-Scope"] == scope
        assert int(r.headers["X-RateLimit-Limit"]) > 0
        assert 0 <= int(r.headers["X-RateLimit-Remaining"]) < int(r.headers["X-RateLimit-Limit"])
        assert 0 <= int(r.headers["X-RateLimit-Reset"]) <= 60


def test_scope_limit_gives_429_and_resets_with_the_window() -> None:
    clock = VirtualClock(frozen=True)
    sb = ScayleSandbox(rate_limits={"stocksRead": 3}, rate_window=60, clock=clock)
    sb.add_variant("SKU-1")
    c = http(sb)
    remaining = [
        c.get("/variants/key%3DSKU-1/stocks").headers["X-RateLimit-Remaining"] for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    r = c.get("/variants/key%3DSKU-1/stocks")
    assert r.status_code == 429
    assert errors_of(r)[0]["errorKey"] == "RATE_LIMIT_EXCEED"
    assert r.headers["X-RateLimit-Reset"] == "60"
    clock.advance(20)
    assert c.get("/variants/key%3DSKU-1/stocks").headers["X-RateLimit-Reset"] == "40"
    # other scopes are isolated
    assert c.get("/warehouses").status_code == 200
    clock.advance(40)
    assert c.get("/variants/key%3DSKU-1/stocks").status_code == 200


# -- orders -------------------------------------------------------------------------------------------


def test_order_by_numeric_id_and_by_reference_key(sb: ScayleSandbox) -> None:
    c = http(sb)
    order = c.get(f"{ORDERS}/40015").json()
    assert order["id"] == 40015 and len(order["items"]) == 3
    r = c.put(f"{ORDERS}/40015/reference-key", json={"referenceKey": "OW SO/1"})
    assert r.status_code == 200 and r.json()["referenceKey"] == "OW SO/1"
    assert sb.orders[40015]["referenceKey"] == "OW SO/1"
    assert sb.orders["40015"] is sb.orders[40015]
    assert c.get(f"{ORDERS}/key%3DOW%20SO%2F1").json()["id"] == 40015
    r = c.get(f"{ORDERS}/key%3Dnope")
    assert r.status_code == 404 and errors_of(r)[0]["errorKey"] == "ORDER_NOT_FOUND"


def test_reference_key_needs_numeric_id_and_a_value(sb: ScayleSandbox) -> None:
    c = http(sb)
    assert c.put(f"{ORDERS}/key%3Dx/reference-key", json={"referenceKey": "A"}).status_code == 400
    assert c.put(f"{ORDERS}/40015/reference-key", json={"referenceKey": ""}).status_code == 400
    assert c.put(f"{ORDERS}/40015/reference-key", content=b"{not json").status_code == 400


def test_unknown_shop_country_is_404(sb: ScayleSandbox) -> None:
    r = http(sb).get("/shops/zz/countries/GB/orders/40015")
    assert r.status_code == 404 and errors_of(r)[0]["errorKey"] == "SHOP_COUNTRY_NOT_FOUND"


def test_status_has_the_shape_of_the_fixture(sb: ScayleSandbox) -> None:
    body = http(sb).get(f"{ORDERS}/40015/status").json()
    expected = fixture("OrderGetStatusResponse.json")
    assert set(body) == set(expected)
    assert set(body["detailedStatus"]) == set(expected["detailedStatus"])
    OrderStatusResponse.model_validate(body)


def test_cursor_collection_pages_through_everything() -> None:
    sb = ScayleSandbox()
    for i in range(7):
        sb.add_order(make_order(100 + i))
    sb.add_order(make_order(999, shop_key="other", country_code="DE"))  # another shop country
    c = http(sb)
    ids: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 3}
        if cursor:
            params["cursor"] = cursor
        body = c.get(ORDERS, params=params).json()
        assert set(body) == {"entities", "cursor"}
        ids += [o["id"] for o in body["entities"]]
        pages += 1
        cursor = body["cursor"]["next"]
        if cursor is None:
            break
    assert ids == list(range(100, 107)) and pages == 3
    assert c.get(ORDERS, params={"cursor": "!!"}).status_code == 400
    assert c.get(ORDERS, params={"limit": 0}).status_code == 400


# -- fulfilment ---------------------------------------------------------------------------------------


def ship(c: httpx.Client, items: list[int], key: str = "TRK-1", **extra: Any) -> httpx.Response:
    body = {
        "shopKey": "ac",
        "countryCode": "GB",
        "orderId": 40015,
        "carrier": "DPD",
        "shipmentKey": key,
    }
    body["items"] = [{"orderItemId": i, "returnKey": str(i)} for i in items]
    body.update(extra)
    return c.post("/fulfillment/shipments", json=body)


def test_shipment_marks_units_shipped_and_adds_a_package(sb: ScayleSandbox) -> None:
    c = http(sb)
    r = ship(c, [40015001, 40015002], returnIdentCode="RET-1")
    assert r.status_code == 201 and r.content == b""
    order = sb.orders[40015]
    shipped = [i for i in order["items"] if i.get("shippedAt")]
    assert [i["id"] for i in shipped] == [40015001, 40015002]
    # As in SCAYLE's SDK fixtures: the item status says nothing about shipping.
    assert all(i["status"] == "available" for i in shipped)
    (package,) = order["packages"]
    assert package["shipmentKey"] == "TRK-1" and package["carrierKey"] == "DPD"
    assert package["tracking"]["id"] == "TRK-1"
    assert {i["packageId"] for i in shipped} == {package["id"]}
    status, code = order["status"], order["detailedStatus"]["order"]["code"]
    assert order["detailedStatus"].get("shipping", {}).get("code") != "shipping_delivered"
    ship(c, [40015003], key="TRK-2")
    shipped_order = sb.orders[40015]
    # A completed shipment keeps the order's status (fixture OrderGetResponse.json: status
    # payment_reserved, order_delegated, shipping_delivered, package shipment_completed).
    assert (shipped_order["status"], shipped_order["detailedStatus"]["order"]["code"]) == (
        status,
        code,
    )
    assert shipped_order["detailedStatus"]["shipping"]["code"] == "shipping_delivered"
    assert {p["deliveryStatus"] for p in shipped_order["packages"]} == {"shipment_completed"}
    assert [w["type"] for w in sb.webhooks].count("order-package-shipped") == 2
    Order.model_validate(sb.orders[40015])


def test_duplicate_shipments_are_recorded_and_change_nothing(sb: ScayleSandbox) -> None:
    c = http(sb)
    ship(c, [40015001])
    first = json.dumps(sb.orders[40015]["items"][0], sort_keys=True)
    assert ship(c, [40015001]).status_code == 201
    assert len(sb.shipments) == 2
    assert json.dumps(sb.orders[40015]["items"][0], sort_keys=True) == first
    assert len(sb.orders[40015]["packages"]) == 1


def test_shipment_validation(sb: ScayleSandbox) -> None:
    c = http(sb)
    assert ship(c, [123]).status_code == 400  # not an item of the order
    assert ship(c, []).status_code == 400
    assert ship(c, [40015001], orderId=1).status_code == 404
    assert ship(c, [40015001], shopKey="zz").status_code == 404
    assert sb.shipments == []


def test_cancellation_then_shipping_that_unit_is_refused(sb: ScayleSandbox) -> None:
    c = http(sb)
    body = {
        "shopKey": "ac",
        "countryCode": "GB",
        "orderId": 40015,
        "items": [{"orderItemId": 40015003}],
    }
    assert c.post("/fulfillment/cancellations", json=body).status_code == 201
    item = sb.orders[40015]["items"][2]
    assert item["status"] == "cancelled" and item["cancelledAt"]
    assert sb.webhooks[-1]["type"] == "order-item-cancelled"
    r = ship(c, [40015003])
    assert r.status_code == 400 and errors_of(r)[0]["errorKey"] == "ORDER_ITEM_CANCELLED"
    body["items"] = [{"orderItemId": 40015001}, {"orderItemId": 40015002}]
    c.post("/fulfillment/cancellations", json=body)
    assert sb.orders[40015]["detailedStatus"]["order"]["code"] == "order_cancelled"
    assert sb.webhooks[-1]["type"] == "order-cancelled"
    assert len(sb.cancellations) == 2


def test_return_items_match_the_return_key(sb: ScayleSandbox) -> None:
    c = http(sb)
    ship(c, [40015001])
    bad = [{"returnKey": "unknown", "received": "2026-05-20T11:05:00+00:00"}]
    assert c.post("/fulfillment/return-items", json=bad).status_code == 404
    good = [
        {
            "returnKey": "40015001",
            "received": "2026-05-20T11:05:00+00:00",
            "returnReason": "too small",
        }
    ]
    assert c.post("/fulfillment/return-items", json=good).status_code == 201
    item = sb.orders[40015]["items"][0]
    assert item["status"] == "returned" and item["returnedAt"]
    assert sb.returns == good
    assert c.post("/fulfillment/return-items", json={"returnKey": "x"}).status_code == 400


def test_multi_company_tenant_needs_the_company_header() -> None:
    sb = ScayleSandbox(company_ids=[7])
    sb.add_order(make_order(1))
    c = http(sb)
    body = {"shopKey": "ac", "countryCode": "GB", "orderId": 1, "items": [{"orderItemId": 1001}]}
    r = c.post("/fulfillment/cancellations", json=body)
    assert r.status_code == 400 and errors_of(r)[0]["errorKey"] == "COMPANY_ID_REQUIRED"
    assert (
        c.post("/fulfillment/cancellations", json=body, headers={"X-Company-Id": "8"}).status_code
        == 404
    )
    assert (
        c.post("/fulfillment/cancellations", json=body, headers={"X-Company-Id": "7"}).status_code
        == 201
    )
    assert sb.company_headers == [7]


# -- stock ---------------------------------------------------------------------------------------------


def stock_body(qty: int, at: str, wh: str = "WH1") -> dict[str, Any]:
    return {
        "quantity": qty,
        "warehouseReferenceKey": wh,
        "changedAt": at,
        "sellableWithoutStock": False,
    }


def test_stock_keeps_the_newest_change_and_echoes_the_stored_record(sb: ScayleSandbox) -> None:
    c = http(sb)
    r = c.post("/variants/key%3DSKU-CAP/stocks", json=stock_body(5, "2026-05-04T10:00:00+00:00"))
    assert r.status_code == 200 and r.json()["quantity"] == 5
    stale = c.post(
        "/variants/key%3DSKU-CAP/stocks", json=stock_body(9, "2026-05-04T09:00:00+00:00")
    )
    assert stale.status_code == 200
    assert (
        stale.json()["quantity"] == 5 and stale.json()["changedAt"] == "2026-05-04T10:00:00+00:00"
    )
    assert sb.stock("SKU-CAP") == 5
    newer = c.post(
        "/variants/key%3DSKU-CAP/stocks", json=stock_body(2, "2026-05-04T11:00:00+01:00")
    )
    assert newer.json()["quantity"] == 2  # 11:00+01:00 is the same instant: not older, accepted
    assert sb.stock_updates[1]["applied"] is False
    assert [u["applied"] for u in sb.stock_updates] == [True, False, True]
    assert sb.stock("SKU-CAP") == 2


def test_stock_by_numeric_variant_id_and_unknowns(sb: ScayleSandbox) -> None:
    c = http(sb)
    vid = sb.variants["SKU-CAP"]
    assert (
        c.post(
            f"/variants/{vid}/stocks", json=stock_body(4, "2026-05-04T10:00:00+00:00")
        ).status_code
        == 200
    )
    assert sb.stock("SKU-CAP", "WH1") == 4
    r = c.post("/variants/key%3DSKU-NOPE/stocks", json=stock_body(1, "2026-05-04T10:00:00+00:00"))
    assert r.status_code == 404 and errors_of(r)[0]["errorKey"] == "VARIANT_NOT_FOUND"
    r = c.post(
        "/variants/key%3DSKU-CAP/stocks", json=stock_body(1, "2026-05-04T10:00:00+00:00", wh="WH9")
    )
    assert r.status_code == 404 and errors_of(r)[0]["errorKey"] == "WAREHOUSE_NOT_FOUND"
    assert (
        c.post(
            "/variants/key%3DSKU-CAP/stocks", json=stock_body(1, "2026-05-04T10:00:00")
        ).status_code
        == 400
    )
    assert sb.stock("SKU-NOPE") is None and sb.stock("SKU-TSHIRT") is None


def test_stock_answers_have_the_shape_of_the_fixtures(sb: ScayleSandbox) -> None:
    c = http(sb)
    request = fixture("ProductVariantStockCreateRequest.json")
    sb.add_warehouse(request["warehouseReferenceKey"])
    created = c.post("/variants/key%3DSKU-CAP/stocks", json=request).json()
    assert created == fixture("ProductVariantStockCreateResponse.json")
    listed = c.get("/variants/key%3DSKU-CAP/stocks").json()
    expected = fixture("ProductVariantStockAllResponse.json")
    assert set(listed) == set(expected)
    assert set(listed["entities"][0]) == set(expected["entities"][0])
    VariantStock.model_validate(created)


def test_warehouses_have_the_shape_of_the_fixture(sb: ScayleSandbox) -> None:
    body = http(sb).get("/warehouses").json()
    expected = fixture("WarehouseAllResponse.json")
    assert set(body) == set(expected)
    assert set(body["entities"][0]) >= set(expected["entities"][0])
    assert body["entities"][0]["referenceKey"] == "WH1"


def test_a_stock_push_without_the_flag_keeps_the_stored_sellable_without_stock(
    sb: ScayleSandbox,
) -> None:
    """Issue 15 A.2: a merchant's pre-order flag survives stock pushes that leave it out (as
    SCAYLE's bulk stock operations do: ProductVariantStockCreateBulkRequestRequest.json)."""
    bulk = fixture("ProductVariantStockCreateBulkRequestRequest.json")
    assert "sellableWithoutStock" not in bulk["operations"][0]["body"]
    sb.set_stock("SKU-CAP", 0, changed_at="2026-05-04T09:00:00+00:00", sellable_without_stock=True)
    c = http(sb)
    body = {"quantity": 4, "warehouseReferenceKey": "WH1", "changedAt": "2026-05-04T10:00:00+00:00"}
    stored = c.post("/variants/key%3DSKU-CAP/stocks", json=body).json()
    assert (stored["quantity"], stored["sellableWithoutStock"]) == (4, True)
    off = c.post(
        "/variants/key%3DSKU-CAP/stocks",
        json={**body, "changedAt": "2026-05-04T11:00:00+00:00", "sellableWithoutStock": False},
    ).json()
    assert off["sellableWithoutStock"] is False  # sent explicitly: it changes
    fresh = c.post("/variants/key%3DSKU-NEW/stocks", json=body)
    assert fresh.status_code == 404  # unknown variant
    sb.add_variant("SKU-NEW")
    assert (
        c.post("/variants/key%3DSKU-NEW/stocks", json=body).json()["sellableWithoutStock"] is False
    )


def test_carriers_have_the_shape_of_the_fixture(sb: ScayleSandbox) -> None:
    body = http(sb).get("/carriers").json()
    expected = fixture("CarrierAllResponse.json")
    assert set(body) == set(expected)
    assert set(body["entities"][0]) == set(expected["entities"][0])
    assert "DPD" in {c["key"] for c in body["entities"]}
    own = ScayleSandbox(carriers=["DHL_STD_NATIONAL"])
    own.add_carrier("HERMES_KLV", name="Hermes", tracking_url="https://t.example/")
    keys = [c["key"] for c in http(own).get("/carriers").json()["entities"]]
    assert keys == ["DHL_STD_NATIONAL", "HERMES_KLV"]


def test_webhook_subscriptions_mask_credentials(sb: ScayleSandbox) -> None:
    c = http(sb)
    request = fixture("WebhookSubscriptionCreateRequest.json")
    created = c.post("/webhooks/subscriptions", json=request)
    assert created.status_code == 201
    expected = fixture("WebhookSubscriptionCreateResponse.json")
    assert created.json() == {**expected, "id": created.json()["id"]}
    assert "foo:bar" not in c.get("/webhooks/subscriptions").text
    sub_id = created.json()["id"]
    assert c.delete(f"/webhooks/subscriptions/{sub_id}").status_code == 204
    assert c.get(f"/webhooks/subscriptions/{sub_id}").status_code == 404
    events = c.get("/webhooks/events").json()["entities"]
    assert "order-confirmed" in {e["event"] for e in events}


# -- test-facing API -----------------------------------------------------------------------------------


def test_add_order_emits_a_parseable_order_confirmed_envelope() -> None:
    sb = ScayleSandbox()
    sb.add_order(make_order(7, [("SKU-X", 1000, 1, "0.20")]))
    (envelope,) = sb.webhooks
    event = WebhookEvent.model_validate(envelope)
    assert event.event_name == "order-confirmed" and event.order_id == 7
    assert event.meta is not None and event.key
    assert "SKU-X" in sb.variants
    with pytest.raises(ValueError):
        sb.add_order({"items": []})


def test_customer_cancel_in_shop_cancels_open_units_only(sb: ScayleSandbox) -> None:
    ship(http(sb), [40015001])
    sb.cancel_order(40015)
    statuses = [i["status"] for i in sb.orders[40015]["items"]]
    assert statuses == ["available", "cancelled", "cancelled"]
    assert sb.orders[40015]["items"][0]["shippedAt"]
    assert sb.webhooks[-1]["type"] == "order-item-cancelled"
    other = ScayleSandbox()
    other.add_order(make_order(8))
    other.cancel_order(8)
    assert other.webhooks[-1]["type"] == "order-cancelled"
    assert other.orders[8]["status"] == "cancellation_completed"


def test_same_seed_same_webhook_keys() -> None:
    def keys(seed: int) -> list[str]:
        fake = ScayleSandbox(seed=seed)
        for i in range(3):
            fake.add_order(make_order(i + 1))
        return [w["key"] for w in fake.webhooks]

    assert keys(5) == keys(5)
    assert keys(5) != keys(6)


def test_concurrent_writers_are_serialised() -> None:
    sb = ScayleSandbox()
    for n in range(8):
        sb.add_variant(f"SKU-{n}")

    def worker(n: int) -> None:
        c = http(sb)
        for minute in range(20):
            c.post(
                f"/variants/key%3DSKU-{n}/stocks",
                json=stock_body(minute, f"2026-05-04T10:{minute:02d}:00+00:00"),
            )

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(sb.requests) == 160 and all(s == 200 for _, _, s in sb.requests)
    assert all(sb.stock(f"SKU-{n}") == 19 for n in range(8))


# -- faults --------------------------------------------------------------------------------------------


def test_fault_kinds_at_the_transport() -> None:
    sb = ScayleSandbox(seed=1)
    sb.add_order(make_order(1))
    c = http(sb)
    body = {"shopKey": "ac", "countryCode": "GB", "orderId": 1, "items": [{"orderItemId": 1001}]}

    sb.faults = Faults(error_rate=1.0)
    r = c.post("/fulfillment/cancellations", json=body)
    assert r.status_code == 503 and sb.cancellations == []

    sb.faults = Faults(rate_limit_rate=1.0)
    r = c.get("/shops/ac/countries/GB/orders/1")
    assert r.status_code == 429 and r.headers["X-RateLimit-Reset"] == "1"
    assert errors_of(r)[0]["errorKey"] == "RATE_LIMIT_EXCEED"

    sb.faults = Faults(timeout_before_rate=1.0)
    with pytest.raises(httpx.ConnectTimeout):
        c.post("/fulfillment/cancellations", json=body)
    assert sb.cancellations == [] and sb.requests[-1][2] == 0

    sb.faults = Faults(timeout_after_commit_rate=1.0)
    with pytest.raises(httpx.ReadTimeout):
        c.post("/fulfillment/cancellations", json=body)
    assert len(sb.cancellations) == 1

    sb.faults = Faults(crash_after_commit_rate=1.0)
    with pytest.raises(SimulatedCrash):
        c.post("/fulfillment/cancellations", json=body)
    assert len(sb.cancellations) == 2

    sb.faults = Faults()
    assert c.post("/fulfillment/cancellations", json=body).status_code == 201


# -- Sandbox container -----------------------------------------------------------------------------------


def test_sandbox_holds_both_fakes_and_propagates_faults() -> None:
    sandbox = Sandbox(seed=4, faults=Faults(error_rate=0.5))
    assert isinstance(sandbox.scayle, ScayleSandbox)
    assert isinstance(sandbox.orderwise, OrderwiseSandbox)
    assert sandbox.scayle.faults == sandbox.orderwise.injector.faults == Faults(error_rate=0.5)
    sandbox.faults = Faults()
    assert sandbox.scayle.faults == Faults() and sandbox.orderwise.injector.faults == Faults()
    assert not sandbox.faults.enabled
    assert sandbox.scayle.base_url and sandbox.scayle.token and sandbox.scayle.default_warehouse
    assert sandbox.scayle.shop_key == "ac" and sandbox.scayle.country_code == "GB"


def test_sandbox_clients_are_wired_and_configured() -> None:
    sandbox = Sandbox()
    sandbox.scayle.add_order(make_order(5))
    with sandbox.scayle_client() as client:
        assert client.get_order(5).id == 5
        assert client.shop_key == "ac"
    ow = sandbox.orderwise_client()
    assert ow.session_id == sandbox.orderwise.session_id
    ow.close()


def test_sandbox_clients_do_not_wait_for_real() -> None:
    sandbox = Sandbox(faults=Faults(rate_limit_rate=0.5, error_rate=0.3, seed=2))
    sandbox.scayle.add_order(make_order(5))
    with sandbox.scayle_client(max_retries=20) as client:
        for _ in range(10):
            assert client.get_order(5).id == 5
    assert sandbox.injected.get("rate_limit", 0) > 0
    assert isinstance(sandbox.clock, VirtualClock) and sum(sandbox.clock.slept) > 0


# -- factory -----------------------------------------------------------------------------------------------


def test_factory_matches_the_reference_example() -> None:
    order = make_order(
        40015,
        [("SKU-TSHIRT-BLK-M", 2400, 2, "0.20"), ("SKU-CAP-NAVY", 1350, 1, "0.20", 1500)],
        shipping=499,
    )
    assert order["cost"]["withTax"] == 6649
    assert order["cost"]["withoutTax"] == 5541
    assert order["cost"]["tax"]["vat"]["amount"] == 1108
    cap = order["items"][2]
    assert cap["price"]["appliedReductions"][0]["amount"]["absoluteWithTax"] == 150
    assert cap["price"]["tax"]["vat"]["rate"] == 0.2
    assert [p["amount"] for p in order["payment"]] == [6649]


lines = st.lists(
    st.tuples(
        st.sampled_from(["SKU-A", "SKU-B", "SKU-C"]),
        st.integers(0, 50_000),
        st.integers(1, 4),
        st.sampled_from(["0.20", "0.05", "0"]),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(
    lines=lines,
    shipping=st.none() | st.integers(0, 2000),
    voucher=st.none() | st.integers(1, 80_000),
    gift=st.none() | st.integers(1, 10_000),
)
def test_factory_orders_add_up_and_validate(
    lines: list[tuple[str, int, int, str]],
    shipping: int | None,
    voucher: int | None,
    gift: int | None,
) -> None:
    data = make_order(1, lines, shipping=shipping, voucher=voucher, gift_card=gift)
    order = Order.model_validate(data)
    assert order.cost is not None
    items = sum(i.price.with_tax for i in order.items if i.price and i.price.with_tax is not None)
    fees = sum(f.amount.with_tax or 0 for f in order.cost.applied_fees if f.amount)
    applied = min(voucher or 0, items)
    assert items + fees - applied == order.cost.with_tax
    assert len(order.items) == sum(q for _, _, q, _ in lines)
    assert sum(p.amount or 0 for p in order.payment) == order.cost.with_tax
    for item, (_, gross, rate) in zip(
        order.items, [(s, g, r) for s, g, q, r in lines for _ in range(q)], strict=True
    ):
        assert item.price is not None and item.price.with_tax == gross
        assert (item.price.without_tax, item.price.vat_amount) == split_gross(gross, Decimal(rate))
