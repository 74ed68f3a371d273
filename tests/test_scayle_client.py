"""ScayleClient and AsyncScayleClient against the SCAYLE sandbox: every method, faults, pacing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from fixture_paths import SDK_FIXTURES
from scayle_orderwise.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    NotFoundError,
    TransientError,
)
from scayle_orderwise.sandbox import Faults, Sandbox, SimulatedCrash, VirtualClock, make_order
from scayle_orderwise.scayle.client import ScayleClient, identifier
from scayle_orderwise.scayle.models import Order, ReturnItem, ShipmentItem, VariantStock

FIXTURES = SDK_FIXTURES
T0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)


def fixture(name: str) -> Any:
    path = FIXTURES / name
    if not path.exists():
        pytest.skip(f"fixture {name} not available")
    return json.loads(path.read_text())


class Recorder(httpx.BaseTransport, httpx.AsyncBaseTransport):
    """Records the requests a client sends, then hands them to the sandbox transport."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sent: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.sent.append(request)
        response: httpx.Response = self.inner.handle_request(request)
        return response

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await request.aread()
        self.sent.append(request)
        response: httpx.Response = await self.inner.handle_async_request(request)
        return response

    def bodies(self, path_end: str) -> list[Any]:
        return [
            json.loads(r.content) for r in self.sent if r.url.path.endswith(path_end) and r.content
        ]


def new_sandbox(**scayle_options: Any) -> Sandbox:
    sandbox = Sandbox(seed=11, scayle_options=scayle_options or None)
    sandbox.scayle.add_order(
        make_order(
            40015, [("SKU-TSHIRT", 2400, 2, "0.20"), ("SKU-CAP", 1350, 1, "0.20")], shipping=499
        )
    )
    return sandbox


def body_shape(value: Any) -> Any:
    """Keys and JSON types, recursively (values ignored)."""
    if isinstance(value, dict):
        return {k: body_shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [body_shape(value[0])] if value else []
    return type(value).__name__


# -- every method, sync -------------------------------------------------------------------------------


def test_every_sync_method_against_the_sandbox() -> None:
    sandbox = new_sandbox()
    sb = sandbox.scayle
    rec = Recorder(sb.transport)
    with sandbox.scayle_client(transport=rec) as client:
        order = client.get_order(40015)
        assert isinstance(order, Order) and [i.sku for i in order.items] == [
            "SKU-TSHIRT",
            "SKU-TSHIRT",
            "SKU-CAP",
        ]

        status = client.get_order_status(40015)
        assert status.detailed_status is not None and status.detailed_status.order is not None

        updated = client.set_reference_key(40015, "OW-SO-40015")
        assert updated.reference_key == "OW-SO-40015" == sb.orders[40015]["referenceKey"]
        assert client.get_order_by_reference("OW-SO-40015").id == 40015

        page = client.list_orders(limit=10)
        assert [o.id for o in page.entities] == [40015] and page.next_cursor is None

        sent = client.create_shipment(
            40015,
            [40015001, ShipmentItem(order_item_id=40015002, return_key="R2")],
            carrier="DPD",
            shipment_key="15501234567890",
            delivery_date=T0,
            return_ident_code="RET-1",
        )
        assert sent.items[0].return_key == "40015001"
        assert sb.shipments == [sent.to_wire()]
        assert client.get_order(40015).item(40015001).is_shipped

        cancel = client.create_cancellation(40015, [40015003])
        assert sb.cancellations == [cancel.to_wire()]
        assert client.get_order(40015).item(40015003).is_cancelled

        returned = client.create_return_items(
            [
                ReturnItem(
                    return_key="40015001",
                    received=T0 + timedelta(days=9),
                    return_reason="too small",
                )
            ]
        )
        assert len(returned) == 1 and sb.orders[40015]["items"][0]["status"] == "returned"

        stored = client.set_stock(
            "SKU-CAP", "WH1", 42, T0, expected_availability_at=date(2026, 6, 1)
        )
        assert (
            isinstance(stored, VariantStock) and stored.quantity == 42 and sb.stock("SKU-CAP") == 42
        )
        assert [s.quantity for s in client.get_stocks("SKU-CAP")] == [42]

        warehouses = client.list_warehouses()
        assert [(w.id, w.reference_key) for w in warehouses] == [(12, "WH1")]

        events = client.list_webhook_events()
        assert "order-confirmed" in {e.event for e in events}
        sub = client.create_webhook_subscription(
            "order-confirmed", "https://user:pw@hooks.example/scayle"
        )
        assert sub.id is not None and sub.url is not None and "pw" not in sub.url
        assert [s.id for s in client.list_webhook_subscriptions()] == [sub.id]
        client.delete_webhook_subscription(sub.id)
        assert client.list_webhook_subscriptions() == []

    # The bodies the client sent have the shape of SCAYLE's own request fixtures.
    assert body_shape(rec.bodies("/fulfillment/shipments")[0]) == body_shape(
        fixture("ShipmentCreateRequest.json")
    )
    assert body_shape(rec.bodies("/fulfillment/cancellations")[0]) == body_shape(
        fixture("CancellationSendRequest.json")
    )
    assert body_shape(rec.bodies("/fulfillment/return-items")[0]) == body_shape(
        fixture("ReturnItemSendRequest.json")
    )
    assert body_shape(rec.bodies("/reference-key")[0]) == body_shape(
        fixture("OrderUpdateReferenceKeyRequest.json")
    )
    stock_fixture = fixture("ProductVariantStockCreateRequest.json")
    stock_body = rec.bodies("/stocks")[0]
    # sellableWithoutStock is left out unless asked for: a push never changes the flag.
    assert set(stock_body) == set(stock_fixture) - {"merchantReferenceKey", "sellableWithoutStock"}
    assert stock_body["changedAt"] == "2026-05-04T10:00:00+00:00"
    assert stock_body["expectedAvailabilityAt"] == "2026-06-01"
    assert all(r.headers["x-access-token"] == sb.token for r in rec.sent)


# -- every method, async ------------------------------------------------------------------------------


async def test_every_async_method_against_the_sandbox() -> None:
    sandbox = new_sandbox()
    sb = sandbox.scayle
    for i in range(5):
        sb.add_order(make_order(50000 + i))
    async with sandbox.async_scayle_client() as client:
        assert (await client.get_order(40015)).id == 40015
        assert (await client.get_order_status(40015)).status == "payment_reserved"
        assert (await client.set_reference_key(40015, "OW-1")).reference_key == "OW-1"
        assert (await client.get_order_by_reference("OW-1")).id == 40015
        assert len((await client.list_orders(limit=2)).entities) == 2
        ids = [o.id async for o in client.iter_orders(limit=2)]
        assert ids == [40015, 50000, 50001, 50002, 50003, 50004]
        pages = [p async for p in client.iter_orders(limit=4).pages()]
        assert [len(p.entities) for p in pages] == [4, 2]

        await client.create_shipment(40015, [40015001], carrier="DPD", shipment_key="S1")
        await client.create_cancellation(40015, [40015002])
        await client.create_return_items([{"returnKey": "40015001", "returnReason": "x"}])
        assert [i["status"] for i in sb.orders[40015]["items"]] == [
            "returned",
            "cancelled",
            "available",
        ]

        stored = await client.set_stock("SKU-TSHIRT", "WH1", 3, T0)
        assert stored.quantity == 3
        stale = await client.set_stock("SKU-TSHIRT", "WH1", 9, T0 - timedelta(minutes=1))
        assert stale.quantity == 3 and stale.changed_at == T0  # the stale echo is visible
        assert [s.quantity for s in await client.get_stocks("SKU-TSHIRT")] == [3]
        assert [w.reference_key for w in await client.list_warehouses()] == ["WH1"]

        assert await client.list_webhook_events()
        sub = await client.create_webhook_subscription("order-cancelled", "https://a:b@x.example/h")
        assert [s.id for s in await client.list_webhook_subscriptions()] == [sub.id]
        assert sub.id is not None
        await client.delete_webhook_subscription(sub.id)
        with pytest.raises(NotFoundError):
            await client.get_order(1)


# -- pagination, identifiers, configuration ----------------------------------------------------------------


def test_iter_orders_follows_the_cursor_over_several_pages() -> None:
    sandbox = Sandbox()
    for i in range(11):
        sandbox.scayle.add_order(make_order(1000 + i))
    with sandbox.scayle_client() as client:
        pager = client.iter_orders(limit=3)
        assert [o.id for o in pager] == list(range(1000, 1011))
        assert [len(p.entities) for p in pager.pages()] == [3, 3, 3, 2]
    list_calls = [r for r in sandbox.scayle.requests if r[1] == "/shops/ac/countries/GB/orders"]
    assert len(list_calls) == 8


def test_identifiers_are_key_prefixed_and_encoded_as_a_whole() -> None:
    assert identifier(123) == "123"
    assert identifier("ABC-1") == "key%3DABC-1"
    assert identifier("A B/C+D") == "key%3DA%20B%2FC%2BD"
    with pytest.raises(ValueError):
        identifier("")
    with pytest.raises(TypeError):
        identifier(True)


def test_skus_with_odd_characters_reach_the_right_variant() -> None:
    sandbox = Sandbox()
    sandbox.scayle.add_variant("SKU 1/2+3")
    with sandbox.scayle_client() as client:
        assert client.set_stock("SKU 1/2+3", "WH1", 5, T0).quantity == 5
        assert sandbox.scayle.stock("SKU 1/2+3") == 5
        with pytest.raises(NotFoundError) as info:
            client.set_stock("SKU-UNKNOWN", "WH1", 5, T0)
        assert info.value.error_key == "VARIANT_NOT_FOUND"
        vid = sandbox.scayle.variants["SKU 1/2+3"]
        assert client.get_stocks(vid)[0].quantity == 5  # numeric ids work too


def test_shop_country_comes_from_the_client_or_the_call() -> None:
    sandbox = Sandbox(scayle_options={"shop_countries": [("ac", "IE")]})
    sandbox.scayle.add_order(make_order(1, country_code="IE"))
    with ScayleClient(
        sandbox.scayle.base_url, sandbox.scayle.token, transport=sandbox.scayle.transport
    ) as bare:
        with pytest.raises(ConfigError):
            bare.get_order(1)
        with pytest.raises(ConfigError):
            bare.iter_orders()
        assert bare.get_order(1, shop_key="ac", country_code="IE").id == 1
    with sandbox.scayle_client() as client:
        assert [o.id for o in client.iter_orders()] == []  # GB lists only GB orders
        assert [o.id for o in client.iter_orders(country_code="IE")] == [1]
        assert client.get_order(1).id == 1  # get is not filtered by shop country


def test_company_id_header_on_fulfilment_calls() -> None:
    sandbox = new_sandbox(company_ids=[7])
    with sandbox.scayle_client() as client:
        with pytest.raises(BadRequestError) as info:
            client.create_cancellation(40015, [40015003])
        assert info.value.error_key == "COMPANY_ID_REQUIRED"
        client.create_cancellation(40015, [40015003], company_id=7)
    with sandbox.scayle_client(company_id=7) as client:
        client.create_shipment(40015, [40015001], carrier="DPD", shipment_key="K")
        client.create_return_items([{"returnKey": "40015001"}])
    assert sandbox.scayle.company_headers == [7, 7, 7]


def test_a_stock_push_leaves_sellable_without_stock_alone_unless_asked() -> None:
    """Issue 15 A.2: 0.1.0 sent ``sellableWithoutStock: false`` with every push, switching off
    the flag merchants set in the Panel for pre-orders."""
    sandbox = new_sandbox()
    sandbox.scayle.set_stock(
        "SKU-CAP", 0, changed_at="2026-05-04T09:00:00+00:00", sellable_without_stock=True
    )
    rec = Recorder(sandbox.scayle.transport)
    with sandbox.scayle_client(transport=rec) as client:
        stored = client.set_stock("SKU-CAP", "WH1", 3, T0)
        assert (stored.quantity, stored.sellable_without_stock) == (3, True)
        explicit = client.set_stock(
            "SKU-CAP", "WH1", 2, T0 + timedelta(minutes=1), sellable_without_stock=False
        )
        assert explicit.sellable_without_stock is False
    first, second = rec.bodies("/stocks")
    assert "sellableWithoutStock" not in first
    assert second["sellableWithoutStock"] is False


def test_carriers_list_every_carrier_key_of_the_tenant() -> None:
    expected = fixture("CarrierAllResponse.json")
    sandbox = Sandbox(scayle_options={"carriers": ["DHL_STD_NATIONAL", "HERMES_KLV"]})
    with sandbox.scayle_client() as client:
        carriers = client.list_carriers()
        assert [c.key for c in carriers] == ["DHL_STD_NATIONAL", "HERMES_KLV"]
        assert [c.key for c in client.iter_carriers(limit=1)] == ["DHL_STD_NATIONAL", "HERMES_KLV"]
    listed = [r[1] for r in sandbox.scayle.requests]
    assert listed == ["/carriers", "/carriers", "/carriers"]  # one page, then two of one
    assert expected["entities"][0]["key"] == "DHL_STD_NATIONAL"


async def test_async_carriers() -> None:
    sandbox = Sandbox(scayle_options={"carriers": ["DPD"]})
    async with sandbox.async_scayle_client() as client:
        assert [c.key for c in await client.list_carriers()] == ["DPD"]


def test_stock_rejects_naive_times_and_non_int_quantities() -> None:
    sandbox = new_sandbox()
    with sandbox.scayle_client() as client:
        with pytest.raises(ValueError, match="timezone"):
            client.set_stock("SKU-CAP", "WH1", 1, datetime(2026, 5, 4, 10, 0))
        with pytest.raises(TypeError):
            client.set_stock("SKU-CAP", "WH1", 1.5, T0)  # type: ignore[arg-type]
    assert sandbox.scayle.requests == []


# -- auth and redaction ----------------------------------------------------------------------------------------


def test_auth_failure_is_typed_and_never_shows_the_token() -> None:
    sandbox = new_sandbox()
    secret = "wrong-but-secret-token-123"
    client = ScayleClient(
        sandbox.scayle.base_url,
        secret,
        shop_key="ac",
        country_code="GB",
        transport=sandbox.scayle.transport,
    )
    with pytest.raises(AuthenticationError) as info:
        client.get_order(40015)
    err = info.value
    assert err.status_code == 401 and err.error_key == "UNAUTHORIZED"
    for text in (
        str(err),
        repr(err),
        repr(err.body),
        repr(client),
        str(client),
        repr(client.retry),
    ):
        assert secret not in text
    assert len(sandbox.scayle.requests) == 1  # 401 is not retried
    client.close()


# -- faults ------------------------------------------------------------------------------------------------------


def test_reads_survive_5xx_and_timeouts() -> None:
    sandbox = new_sandbox()
    sandbox.faults = Faults(
        error_rate=0.4, timeout_before_rate=0.2, timeout_after_commit_rate=0.3, seed=5
    )
    with sandbox.scayle_client(max_retries=10) as client:
        for _ in range(15):
            assert client.get_order(40015).id == 40015
    assert sandbox.injected.get("error", 0) > 0 and sandbox.injected.get("timeout_before", 0) > 0


def test_5xx_on_a_shipment_is_ambiguous_and_not_repeated() -> None:
    sandbox = new_sandbox()
    sandbox.faults = Faults(error_rate=1.0)
    with sandbox.scayle_client() as client:
        with pytest.raises(AmbiguousOutcomeError) as info:
            client.create_shipment(40015, [40015001], carrier="DPD", shipment_key="K1")
        assert info.value.status_code == 503
    assert [r for r in sandbox.scayle.requests if r[0] == "POST"] == [
        ("POST", "/fulfillment/shipments", 503)
    ]
    assert sandbox.scayle.shipments == []


def test_timeout_after_commit_on_a_shipment_is_ambiguous_and_the_lookup_shows_it() -> None:
    sandbox = new_sandbox()
    sandbox.faults = Faults(timeout_after_commit_rate=1.0)
    with sandbox.scayle_client() as client:
        with pytest.raises(AmbiguousOutcomeError):
            client.create_shipment(40015, [40015001], carrier="DPD", shipment_key="K1")
        assert len(sandbox.scayle.shipments) == 1  # committed, sent once
        sandbox.faults = Faults()
        order = client.get_order(40015)
        assert order.item(40015001).is_shipped
        assert [p.shipment_key for p in order.packages] == ["K1"]


def test_timeout_before_sending_a_create_is_retried_once_it_is_safe() -> None:
    sandbox = new_sandbox()
    sandbox.faults = Faults(timeout_before_rate=1.0)
    with sandbox.scayle_client(max_retries=2) as client:
        with pytest.raises(TransientError) as info:
            client.create_cancellation(40015, [40015003])
        assert not isinstance(info.value, AmbiguousOutcomeError)
        assert sandbox.scayle.requests == [("POST", "/fulfillment/cancellations", 0)] * 3
        sandbox.faults = Faults(timeout_before_rate=0.5, seed=1)
        client.create_cancellation(40015, [40015003])
    assert len(sandbox.scayle.cancellations) == 1


def test_crash_after_commit_propagates_and_the_write_is_kept() -> None:
    sandbox = new_sandbox()
    sandbox.faults = Faults(crash_after_commit_rate=1.0)
    with sandbox.scayle_client() as client, pytest.raises(SimulatedCrash):
        client.set_reference_key(40015, "OW-9")
    assert sandbox.scayle.orders[40015]["referenceKey"] == "OW-9"
    assert len(sandbox.scayle.requests) == 1  # a crash is not retried


def test_429_waits_for_the_reset_then_succeeds() -> None:
    sandbox = new_sandbox()
    assert isinstance(sandbox.clock, VirtualClock)
    sandbox.faults = Faults(rate_limit_rate=1.0)
    with sandbox.scayle_client(max_retries=0) as client:
        with pytest.raises(TransientError) as info:
            client.set_stock("SKU-CAP", "WH1", 1, T0)
        assert info.value.status_code == 429
    sandbox.faults = Faults(rate_limit_rate=0.5, seed=3)
    before = sum(sandbox.clock.slept)
    with sandbox.scayle_client(max_retries=8) as client:
        for minute in range(6):
            client.set_stock("SKU-CAP", "WH1", minute, T0 + timedelta(minutes=minute))
    assert sandbox.scayle.stock("SKU-CAP") == 5
    statuses = [s for _, p, s in sandbox.scayle.requests if p.endswith("/stocks")]
    assert 429 in statuses
    # every 429 cost at least the advertised reset (1 s) of virtual time, no real waiting
    assert sum(sandbox.clock.slept) - before >= statuses.count(429) - 1


async def test_async_client_maps_faults_like_the_sync_one() -> None:
    sandbox = new_sandbox()
    sandbox.faults = Faults(error_rate=1.0)
    async with sandbox.async_scayle_client(max_retries=1) as client:
        with pytest.raises(AmbiguousOutcomeError):
            await client.create_cancellation(40015, [40015003])
        with pytest.raises(TransientError):
            await client.get_order(40015)
        sandbox.faults = Faults(timeout_after_commit_rate=1.0)
        with pytest.raises(AmbiguousOutcomeError):
            await client.create_return_items([{"returnKey": "x"}])
        sandbox.faults = Faults(crash_after_commit_rate=1.0)
        with pytest.raises(SimulatedCrash):
            await client.set_stock("SKU-CAP", "WH1", 1, T0)
    assert sandbox.scayle.stock("SKU-CAP") == 1


# -- rate budget pacing ---------------------------------------------------------------------------------------


def test_budget_keeps_the_client_under_the_limit() -> None:
    clock = VirtualClock(frozen=True)
    sandbox = Sandbox(
        clock=clock, scayle_options={"rate_limits": {"stocksWrite": 5}, "rate_window": 60}
    )
    sandbox.scayle.add_variant("SKU-1")
    with sandbox.scayle_client(max_retries=0) as client:
        for n in range(12):
            client.set_stock("SKU-1", "WH1", n, T0 + timedelta(seconds=n))
    statuses = [s for _, _, s in sandbox.scayle.requests]
    assert statuses == [200] * 12  # never bounced off the limit
    assert clock.monotonic() >= 120  # two full windows were waited out (virtually)
    assert sandbox.scayle.stock("SKU-1") == 11


def test_without_pacing_the_same_burst_hits_429() -> None:
    clock = VirtualClock(frozen=True)
    sandbox = Sandbox(
        clock=clock, scayle_options={"rate_limits": {"stocksWrite": 5}, "rate_window": 60}
    )
    sandbox.scayle.add_variant("SKU-1")
    hits = 0
    for n in range(12):
        # a fresh client (and budget) per call knows nothing about the scope's remaining budget
        with sandbox.scayle_client(max_retries=0, budget=None) as client:
            try:
                client.set_stock("SKU-1", "WH1", n, T0 + timedelta(seconds=n))
            except TransientError:
                hits += 1
    assert hits == 7


def test_clients_of_one_sandbox_share_the_budget() -> None:
    clock = VirtualClock(frozen=True)
    sandbox = Sandbox(clock=clock, scayle_options={"rate_limits": {"ordersRead": 4}})
    sandbox.scayle.add_order(make_order(1))
    a, b = sandbox.scayle_client(max_retries=0), sandbox.scayle_client(max_retries=0)
    for n in range(10):
        (a if n % 2 else b).get_order(1)
    assert all(s == 200 for _, _, s in sandbox.scayle.requests)
    a.close()
    b.close()
