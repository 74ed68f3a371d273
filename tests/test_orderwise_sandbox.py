"""The OrderWise fake speaks OWAPI as reference/orderwise-api.md §9.5 describes (raw HTTP level)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from scayle_orderwise.orderwise.exports import ExportDefinitions
from scayle_orderwise.sandbox.faults import FaultInjector, Faults
from scayle_orderwise.sandbox.orderwise import OrderwiseClock, OrderwiseSandbox

T0 = datetime(2025, 6, 3, 14, 0, 0)


@pytest.fixture
def sb() -> OrderwiseSandbox:
    sandbox = OrderwiseSandbox(FaultInjector(Faults()), seed=3, clock=OrderwiseClock(T0))
    sandbox.set_free_stock("SKU-1", 10)
    sandbox.set_free_stock("SKU-2", 4)
    return sandbox


@pytest.fixture
def http(sb: OrderwiseSandbox) -> httpx.Client:
    client = httpx.Client(transport=sb.transport, base_url=sb.api_root + "/")
    token = client.get("token/gettoken", auth=(sb.username, sb.password)).json()
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def order_body(ref: str = "SC-1", **line: Any) -> dict[str, Any]:
    return {
        "customer": {"accountNumber": "WEB001"},
        "orderHeader": {
            "orderDate": "2025-06-03T13:00:00",
            "eCommerceOrderNumber": ref,
            "systemOrderType": 1,
            "deliveryGross": 4.99,
        },
        "customerDeliveryAddress": {"deliveryName": "Ann", "countryCode": "GB"},
        "orderLines": [
            {"itemNumber": 1, "variantCode": "SKU-1", "quantity": 2, "itemGross": 12.5} | line,
            {"itemNumber": 2, "variantCode": "SKU-2", "quantity": 1, "itemGross": 3.0},
        ],
    }


def post_order(http: httpx.Client, body: dict[str, Any], session: int | None = 7) -> httpx.Response:
    params = {"session_id": session} if session is not None else {}
    return http.post("sales/order", params=params, json=body)


def export(http: httpx.Client, export_id: int, **params: Any) -> list[dict[str, Any]]:
    body = [{"name": f"@{k}", "value": v} for k, v in params.items()] or [
        {"name": "", "value": None}
    ]
    response = http.post(f"system/export-definition/{export_id}", json=body)
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = json.loads(response.content, parse_float=Decimal)
    return rows


# ---------------------------------------------------------------------------- token flow


def test_token_is_a_quoted_json_string_and_wrong_credentials_get_empty_401(
    sb: OrderwiseSandbox,
) -> None:
    client = httpx.Client(transport=sb.transport, base_url=sb.api_root + "/")
    ok = client.get("token/gettoken", auth=(sb.username, sb.password))
    assert ok.status_code == 200
    assert ok.text.startswith('"') and ok.text.endswith('"')
    bad = client.get("token/gettoken", auth=(sb.username, "wrong"))
    assert (bad.status_code, bad.content) == (401, b"")
    none = client.get("token/gettoken")
    assert none.status_code == 401


def test_calls_without_valid_bearer_get_401_and_tokens_expire(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    anonymous = httpx.Client(transport=sb.transport, base_url=sb.api_root + "/")
    assert anonymous.get("stock/variants").status_code == 401
    assert http.get("stock/variants").status_code == 200
    sb.clock.advance(sb.token_ttl)
    expired = http.get("stock/variants")
    assert (expired.status_code, expired.content) == (401, b"")


def test_revoked_tokens_are_refused(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    assert sb.tokens_issued() == 1
    sb.revoke_tokens()
    assert sb.tokens_issued() == 0
    assert http.get("stock/variants").status_code == 401


def test_wrong_path_prefix_is_404_and_prefix_is_case_insensitive(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    assert (
        http.get("https://sandbox.orderwisecloud.invalid/OWAPISB/stock/variants").status_code == 404
    )
    assert (
        http.get("https://sandbox.orderwisecloud.invalid/owapi/stock/variants").status_code == 200
    )
    assert http.get("no/such/thing").status_code == 404


# ---------------------------------------------------------------------------- sales orders


def test_create_order_assigns_id_and_number(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    first = post_order(http, order_body("SC-1"))
    second = post_order(http, order_body("SC-2"))
    assert first.status_code == 201
    a, b = first.json(), second.json()
    assert isinstance(a["orderId"], int) and isinstance(a["orderNumber"], str)
    assert a["eCommerceOrderNumber"] == "SC-1"
    assert b["orderId"] != a["orderId"] and b["orderNumber"] != a["orderNumber"]
    assert [o["orderHeader"]["eCommerceOrderNumber"] for o in sb.sales_orders] == ["SC-1", "SC-2"]
    assert sb.status("SC-1") == "Awaiting picking"
    assert sb.order_ids(a["orderId"]) == [a["orderId"]]


def test_session_id_is_required_and_must_exist(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    assert post_order(http, order_body(), session=None).status_code == 400
    missing = post_order(http, order_body(), session=99)
    assert missing.status_code == 400 and "99" in missing.json()["Message"]
    assert sb.sales_orders == []


def test_unknown_variant_answers_400_naming_the_code(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    response = post_order(http, order_body(variantCode="GHOST-9"))
    assert response.status_code == 400
    assert "GHOST-9" in response.json()["Message"]
    assert sb.sales_orders == []
    sb.add_variant("GHOST-9")
    assert post_order(http, order_body(variantCode="GHOST-9")).status_code == 201


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda b: b.update(customer={"accountNumber": "NOPE01"}), "NOPE01"),
        (lambda b: b["orderHeader"].update(systemOrderType=9), "systemOrderType"),
        (lambda b: b.update(orderLines=[]), "line"),
        (lambda b: b["orderLines"][0].pop("quantity"), "quantity"),
        (lambda b: b["orderLines"][0].update(taxRateId=77), "77"),
    ],
)
def test_order_validation(
    sb: OrderwiseSandbox, http: httpx.Client, change: Any, fragment: str
) -> None:
    body = order_body()
    change(body)
    response = post_order(http, body)
    assert response.status_code == 400
    assert fragment in response.json()["Message"]


def test_duplicate_references_are_accepted_by_default(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    ids = {post_order(http, order_body("SC-1")).json()["orderId"] for _ in range(3)}
    assert len(ids) == 3
    assert len(sb.sales_orders) == 3
    assert len(export(http, sb.export_definitions.order_by_reference, ref="SC-1")) == 3
    with pytest.raises(LookupError, match="3 OrderWise orders"):
        sb.status("SC-1")


def test_duplicate_policies(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    first = post_order(http, order_body("SC-1")).json()
    sb.duplicate_policy = "return_existing"
    assert post_order(http, order_body("SC-1")).json() == first
    sb.duplicate_policy = "reject"
    assert post_order(http, order_body("SC-1")).status_code == 400
    assert len(sb.sales_orders) == 1


def test_queued_orders_are_invisible_until_the_session_runs(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    sb.queue_orders = True
    created = post_order(http, order_body("SC-1")).json()
    assert export(http, sb.export_definitions.order_by_reference, ref="SC-1") == []
    assert http.get(f"sales/order/{created['orderId']}/status").status_code == 404
    assert sb.free_stock("SKU-1") == 10
    assert sb.process_session() == 1
    rows = export(http, sb.export_definitions.order_by_reference, ref="SC-1")
    assert [r["owOrderId"] for r in rows] == [created["orderId"]]
    assert sb.free_stock("SKU-1") == 8


def test_status_endpoint(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    order_id = post_order(http, order_body()).json()["orderId"]
    plain = http.get(f"sales/order/{order_id}/status").json()
    assert plain["orderStatus"] == "Awaiting picking" and "lines" not in plain
    sb.despatch(order_id, consignment="CN1", courier="DPD", lines={"SKU-1": 1})
    full = http.get(
        f"sales/order/{order_id}/status",
        params={"include_lines": "true", "include_delivery": "true"},
    ).json()
    assert full["orderStatus"] == "Partially despatched"
    assert [ln["quantityDespatched"] for ln in full["lines"]] == [1, 0]
    assert full["deliveries"][0]["consignmentNumbers"] == ["CN1"]
    assert full["deliveries"][0]["trackingUrl"] == "https://track.dpd.co.uk/parcels/CN1"
    assert http.get("sales/order/424242/status").status_code == 404


# ---------------------------------------------------------------------------- despatch, cancel


def test_despatch_all_then_nothing_left(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    post_order(http, order_body("SC-1"))
    delivery = sb.despatch("SC-1", consignment="C-9", courier="Evri")
    assert delivery["consignmentNumbers"] == ["C-9"]
    assert delivery["trackingUrl"] == "https://www.evri.com/track/parcel/C-9/details"
    assert {(ln["variantCode"], ln["quantity"]) for ln in delivery["lines"]} == {
        ("SKU-1", 2),
        ("SKU-2", 1),
    }
    assert sb.status("SC-1") == "Despatched"
    with pytest.raises(ValueError, match="nothing left"):
        sb.despatch("SC-1")


def test_partial_despatch_forms_and_overshipping(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    post_order(http, order_body("SC-1"))
    with pytest.raises(ValueError, match="not enough"):
        sb.despatch("SC-1", lines={"SKU-1": 3})
    sb.despatch("SC-1", lines=["SKU-1"])
    sb.despatch("SC-1", lines=[("SKU-1", 1)], courier="Unknown Co")
    assert sb.status("SC-1") == "Partially despatched"
    rows = export(http, sb.export_definitions.order_changes, since="2000-01-01T00:00:00")
    shipped = [r for r in rows if r["consignment"]]
    assert len(shipped) == 2 and all(r["variantCode"] == "SKU-1" for r in shipped)
    assert {r["trackingUrl"] is None for r in shipped} == {False, True}
    assert [r["quantityInDelivery"] for r in shipped] == [1, 1]
    sb.despatch("SC-1", lines={"SKU-2": 1})
    assert sb.status("SC-1") == "Despatched"


def test_cancel_endpoint_allowed_before_picking_and_gives_stock_back(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    order_id = post_order(http, order_body()).json()["orderId"]
    assert sb.free_stock("SKU-1") == 8
    response = http.post(f"sales/order/{order_id}/cancel")
    assert response.status_code == 200 and response.json()["orderStatus"] == "Cancelled"
    assert sb.status(order_id) == "Cancelled"
    assert sb.free_stock("SKU-1") == 10
    assert http.post(f"sales/order/{order_id}/cancel").status_code == 200  # repeat is harmless


@pytest.mark.parametrize("status", ["Picking", "Despatched", "Completed", "Some custom text"])
def test_cancel_endpoint_refused_once_picking(
    sb: OrderwiseSandbox, http: httpx.Client, status: str
) -> None:
    order_id = post_order(http, order_body()).json()["orderId"]
    sb.set_status(order_id, status)
    response = http.post(f"sales/order/{order_id}/cancel")
    assert response.status_code == 409 and status in response.json()["Message"]
    assert sb.status(order_id) == status


def test_cancel_endpoint_refused_after_a_delivery_and_can_be_disabled(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    order_id = post_order(http, order_body()).json()["orderId"]
    sb.despatch(order_id, lines={"SKU-2": 1})
    sb.set_status(order_id, "On hold")
    assert http.post(f"sales/order/{order_id}/cancel").status_code == 409
    other = post_order(http, order_body("SC-2")).json()["orderId"]
    sb.cancel_enabled = False
    assert http.post(f"sales/order/{other}/cancel").status_code == 404
    sb.cancel_enabled = True
    sb.cancel_path = "sales/orders/{order_id}/void"
    assert http.post(f"sales/orders/{other}/void").status_code == 200


def test_cancel_order_in_orderwise_lines_and_whole(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    post_order(http, order_body("SC-1"))
    sb.cancel_order("SC-1", lines={"SKU-1": 1})
    assert sb.status("SC-1") == "Awaiting picking"
    assert sb.free_stock("SKU-1") == 9
    rows = export(http, sb.export_definitions.order_changes, since="2025-06-03T14:00:00")
    line1 = next(r for r in rows if r["itemNumber"] == 1)
    assert (line1["quantityCancelled"], line1["lineStatusText"]) == (1, "Awaiting picking")
    sb.cancel_order("SC-1")
    assert sb.status("SC-1") == "Cancelled"
    assert sb.free_stock("SKU-1") == 10 and sb.free_stock("SKU-2") == 4


# ---------------------------------------------------------------------------- export definitions


def test_order_changes_since_follows_amendments(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    post_order(http, order_body("SC-1"))
    post_order(http, order_body("SC-2"))
    ids = sb.export_definitions
    sb.clock.advance(minutes=10)
    mark = sb.clock.now().isoformat()
    assert export(http, ids.order_changes, since=mark) == []
    sb.clock.advance(minutes=1)
    sb.set_status("SC-2", "Picking")
    rows = export(http, ids.order_changes, since=mark)
    assert {r["externalRef"] for r in rows} == {"SC-2"}
    assert {r["statusText"] for r in rows} == {"Picking"}
    assert all(r["consignment"] is None for r in rows)
    assert datetime.fromisoformat(rows[0]["lastAmended"]) > datetime.fromisoformat(mark)


def test_export_parameters_are_checked(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    ids = sb.export_definitions
    missing = http.post(f"system/export-definition/{ids.order_changes}", json=[])
    assert missing.status_code == 400 and "@since" in missing.json()["Message"]
    wrong = http.post(
        f"system/export-definition/{ids.order_changes}", json=[{"name": "@from", "value": None}]
    )
    assert wrong.status_code == 400
    bad_date = http.post(
        f"system/export-definition/{ids.order_changes}",
        json=[{"name": "@since", "value": "yesterday"}],
    )
    assert bad_date.status_code == 400
    assert http.post("system/export-definition/999", json=[]).status_code == 404
    sb.exports_permitted = False
    assert http.post(f"system/export-definition/{ids.stock_full}", json=[]).status_code == 403


def test_stock_changes_since_and_fractional_negative_quantities(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    ids = sb.export_definitions
    sb.clock.advance(minutes=5)
    mark = sb.clock.now()
    sb.set_free_stock("SKU-2", Decimal("-1.5"))
    sb.set_free_stock("NEW-1", "2.25", stock_location_id=3)
    rows = export(http, ids.stock_changes, since=mark.isoformat())
    assert {(r["sku"], r["freeStock"], r["stockLocationId"]) for r in rows} == {
        ("SKU-2", Decimal("-1.5"), 1),
        ("NEW-1", Decimal("2.25"), 3),
    }
    assert ids.stock_full is not None
    assert len(export(http, ids.stock_full)) == 3


def test_since_with_zone_is_converted_to_uk_time(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    sb.clock.set(datetime(2025, 6, 3, 14, 30, 0))  # BST: UTC+1
    sb.set_free_stock("SKU-9", 1)
    ids = sb.export_definitions
    assert len(export(http, ids.stock_changes, since="2025-06-03T13:30:00Z")) == 1
    assert export(http, ids.stock_changes, since="2025-06-03T13:30:01Z") == []


def test_order_details_totals_follow_line_vat(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    post_order(http, order_body("SC-1"))
    rows = export(http, sb.export_definitions.order_details, since=None, until=None)
    assert len(rows) == 2
    head = rows[0]
    assert head["currency"] == "GBP"
    assert head["orderGross"] == Decimal("32.99")  # 2 x 12.50 + 3.00 + 4.99 delivery
    assert [r["lineVat"] for r in rows] == [Decimal("4.17"), Decimal("0.50")]
    assert head["orderVat"] == Decimal("4.17") + Decimal("0.50") + head["deliveryVat"]
    assert head["orderNet"] + head["orderVat"] == head["orderGross"]
    assert head["deliveryVat"] == Decimal("0.83")
    window = export(
        http,
        sb.export_definitions.order_details,
        since="2025-06-03T13:00:01",
        until=None,
    )
    assert window == []


def test_registered_export(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    sb.register_export(500, lambda p: [{"echo": p["x"]}], params=["@x"])
    assert export(http, 500, x="hi") == [{"echo": "hi"}]


# ---------------------------------------------------------------------------- stock REST, misc


def test_stock_variants_keyset_paging_and_variant_stock(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    sb.add_variant("SKU-3")
    page1 = http.get("stock/variants", params={"limit": 2}).json()
    page2 = http.get(
        "stock/variants", params={"limit": 2, "last_id": page1[-1]["variantID"]}
    ).json()
    # CARRIAGE: the non-stock carriage item every sandbox installation has
    assert [v["variantCode"] for v in page1 + page2] == ["SKU-1", "SKU-2", "SKU-3", "CARRIAGE"]
    vid = page1[0]["variantID"]
    sb.set_free_stock("SKU-1", 3, stock_location_id=2)
    rows = http.get(f"stock/{vid}").json()
    assert {(r["stockLocationId"], r["freeStock"]) for r in rows} == {(1, 10), (2, 3)}
    assert http.get("stock/999999").status_code == 404


def test_carriage_is_a_non_stock_service_item(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    carriage = {"itemNumber": 3, "variantCode": "CARRIAGE", "quantity": 1, "itemGross": 4.99}
    body = order_body("SC-CARRIAGE")
    body["orderLines"].append(carriage)
    assert post_order(http, body).status_code == 201
    assert sb.free_stock("SKU-1") == 8  # goods are allocated
    assert sb.free_stock("CARRIAGE") == Decimal(0)  # the service item never is
    carriage_id = sb.add_service_item("CARRIAGE")
    assert http.get(f"stock/{carriage_id}").json() == []
    rows = export(http, sb.export_definitions.stock_changes, since=None)
    assert "CARRIAGE" not in {r["sku"] for r in rows}
    # despatching every goods line takes the carriage line along
    sb.despatch("SC-CARRIAGE", lines={"SKU-1": 2, "SKU-2": 1})
    assert sb.status("SC-CARRIAGE") == "Despatched"


def test_carriage_follows_cancelled_goods(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    body = order_body("SC-CANCEL")
    body["orderLines"].append(
        {"itemNumber": 3, "variantCode": "CARRIAGE", "quantity": 1, "itemGross": 4.99}
    )
    assert post_order(http, body).status_code == 201
    sb.cancel_order("SC-CANCEL", lines={"SKU-1": 2, "SKU-2": 1})
    assert sb.status("SC-CANCEL") == "Cancelled"
    assert sb.free_stock("SKU-1") == 10


def test_an_installation_without_the_carriage_item_refuses_orders_using_it(
    sb: OrderwiseSandbox, http: httpx.Client
) -> None:
    sb.remove_variant("CARRIAGE")
    body = order_body("SC-NOCARRIAGE")
    body["orderLines"].append(
        {"itemNumber": 3, "variantCode": "CARRIAGE", "quantity": 1, "itemGross": 4.99}
    )
    refused = post_order(http, body)
    assert refused.status_code == 400
    assert "CARRIAGE" in refused.json()["Message"]


def test_faults_and_request_log(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    sb.injector.faults = Faults(error_rate=1.0)
    assert http.get("stock/variants").status_code == 500
    sb.injector.faults = Faults(timeout_after_commit_rate=1.0)
    with pytest.raises(httpx.ReadTimeout):
        post_order(http, order_body())
    assert len(sb.sales_orders) == 1  # committed although the client saw a timeout
    sb.injector.faults = Faults()
    assert sb.requests[-2:] == [
        ("GET", "/OWAPI/stock/variants", 500),
        ("POST", "/OWAPI/sales/order", 201),
    ]


def test_deterministic_for_a_seed() -> None:
    def run(seed: int) -> tuple[str, str]:
        sandbox = OrderwiseSandbox(FaultInjector(Faults()), seed=seed, clock=OrderwiseClock(T0))
        sandbox.add_variant("A")
        client = httpx.Client(transport=sandbox.transport, base_url=sandbox.api_root + "/")
        token = client.get("token/gettoken", auth=(sandbox.username, sandbox.password)).json()
        client.headers["Authorization"] = f"Bearer {token}"
        body = order_body()
        body["orderLines"] = [{"variantCode": "A", "quantity": 1}]
        post_order(client, body)
        return token, sandbox.despatch("SC-1")["consignmentNumbers"][0]

    assert run(1) == run(1)
    assert run(1) != run(2)


def test_thread_safe_under_concurrent_orders(sb: OrderwiseSandbox, http: httpx.Client) -> None:
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(10):
                assert post_order(http, order_body(f"T{n}-{i}")).status_code == 201
                sb.set_free_stock("SKU-3", n)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    ids = [row["owOrderId"] for row in export(http, 104, since=None, until=None)]
    assert len(set(ids)) == 40 and len(sb.sales_orders) == 40
    assert sb.free_stock("SKU-1") == 10 - 80


def test_clock_only_moves_forward() -> None:
    clock = OrderwiseClock(T0)
    assert clock.now() == T0
    assert clock.advance(minutes=2) == T0 + timedelta(minutes=2)
    with pytest.raises(ValueError):
        clock.advance(timedelta(seconds=-1))
    live = OrderwiseClock()
    first = live.now()
    assert live.now() >= first


def test_settings_and_repr_do_not_leak_the_password(sb: OrderwiseSandbox) -> None:
    assert sb.export_definitions == ExportDefinitions()
    assert sb.session_id == 7 and sb.username and sb.api_root.endswith("/OWAPI")
    assert sb.password not in repr(sb)
    with pytest.raises(ValueError):
        ExportDefinitions(order_changes=0)
