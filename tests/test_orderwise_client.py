"""OrderwiseClient and AsyncOrderwiseClient against the OrderWise sandbox (and a few hand-made answers)."""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from scayle_orderwise._http import RetryPolicy
from scayle_orderwise.errors import (
    AmbiguousOutcomeError,
    AuthenticationError,
    BadRequestError,
    ConfigError,
    InvalidResponseError,
    NotFoundError,
    PermissionDeniedError,
    TransientError,
    UnknownVariantError,
)
from scayle_orderwise.orderwise.client import AsyncOrderwiseClient, OrderwiseClient
from scayle_orderwise.orderwise.models import (
    LONDON,
    CustomerRef,
    DeliveryAddress,
    OrderHeader,
    OrderLine,
    SalesOrderCreate,
)
from scayle_orderwise.sandbox.faults import FaultInjector, Faults
from scayle_orderwise.sandbox.orderwise import OrderwiseClock, OrderwiseSandbox

T0 = datetime(2025, 6, 3, 14, 0, 0)  # UK wall-clock (BST)


async def _no_sleep(_seconds: float) -> None:
    return None


NO_WAIT = RetryPolicy(max_retries=3, sleep=lambda _s: None, async_sleep=_no_sleep)


@pytest.fixture
def sb() -> OrderwiseSandbox:
    sandbox = OrderwiseSandbox(FaultInjector(Faults()), seed=5, clock=OrderwiseClock(T0))
    sandbox.set_free_stock("SKU-1", 10)
    sandbox.set_free_stock("SKU-2", Decimal("2.5"))
    return sandbox


@pytest.fixture
def client(sb: OrderwiseSandbox) -> OrderwiseClient:
    return sb.client(retry=NO_WAIT)


@pytest.fixture
def aclient(sb: OrderwiseSandbox) -> AsyncOrderwiseClient:
    return sb.async_client(retry=NO_WAIT)


def order(ref: str = "SC-1001", *codes: str) -> SalesOrderCreate:
    return SalesOrderCreate(
        customer=CustomerRef(account_number="WEB001"),
        order_header=OrderHeader(
            order_date=datetime(2025, 6, 3, 12, 30, tzinfo=UTC),
            e_commerce_order_number=ref,
            delivery_gross=Decimal("4.99"),
        ),
        customer_delivery_address=DeliveryAddress(delivery_name="Ann Smith", country_code="GB"),
        order_lines=[
            OrderLine(
                item_number=i,
                variant_code=code,
                quantity=Decimal(1),
                item_gross=Decimal("12.50"),
                tax_code="T1",
            )
            for i, code in enumerate(codes or ("SKU-1", "SKU-2"), start=1)
        ],
    )


def paths(sb: OrderwiseSandbox) -> list[tuple[str, str, int]]:
    prefix = sb.path_prefix
    return [(m, p.removeprefix(prefix), s) for m, p, s in sb.requests]


# ---------------------------------------------------------------------------- auth


def test_token_fetched_once_and_reused(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    created = client.create_sales_order(order())
    client.get_order_status(created.order_id)
    assert paths(sb) == [
        ("GET", "/token/gettoken", 200),
        ("POST", "/sales/order", 201),
        ("GET", f"/sales/order/{created.order_id}/status", 200),
    ]


def test_token_refreshed_after_ttl(sb: OrderwiseSandbox) -> None:
    now = [0.0]
    client = sb.client(retry=NO_WAIT, token_ttl=timedelta(minutes=50), monotonic=lambda: now[0])
    client.run_export(sb.export_definitions.stock_changes, since=T0)
    now[0] += 50 * 60
    client.run_export(sb.export_definitions.stock_changes, since=T0)
    assert [p for _m, p, _s in paths(sb)].count("/token/gettoken") == 2


def test_revoked_token_refreshed_once_and_call_repeated(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    client.authenticate()
    sb.revoke_tokens()
    created = client.create_sales_order(order())
    assert paths(sb)[1:] == [
        ("POST", "/sales/order", 401),
        ("GET", "/token/gettoken", 200),
        ("POST", "/sales/order", 201),
    ]
    assert len(sb.sales_orders) == 1 and created.order_id > 0


def test_wrong_credentials_raise_clear_error_without_secrets(sb: OrderwiseSandbox) -> None:
    client = sb.client(retry=NO_WAIT, password="not-the-password-123")
    with pytest.raises(AuthenticationError) as info:
        client.find_orders_by_reference("SC-1")
    assert "API user" in str(info.value)
    assert "not-the-password-123" not in str(info.value) + repr(info.value.body)
    assert paths(sb) == [("GET", "/token/gettoken", 401)]


def test_401_twice_gives_up_after_one_refresh(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    client.authenticate()
    sb.token_ttl = timedelta(0)  # every new token is already expired
    sb.revoke_tokens()
    with pytest.raises(AuthenticationError):
        client.run_export(sb.export_definitions.stock_changes, since=T0)
    assert [s for _m, _p, s in paths(sb)] == [200, 401, 200, 401]


def test_secrets_never_in_repr_messages_or_logs(
    sb: OrderwiseSandbox, client: OrderwiseClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    assert sb.password not in repr(client) and "***" in repr(client)
    client.create_sales_order(order())
    token = client._core.tokens.current()
    assert token is not None and token.get_secret_value() not in repr(client)
    sb.injector.faults = Faults(error_rate=1.0)
    with pytest.raises(TransientError) as info:
        client.find_orders_by_reference("SC-1001")
    text = caplog.text + str(info.value) + repr(client)
    assert sb.password not in text and token.get_secret_value() not in text


def test_server_echoing_the_token_is_redacted(sb: OrderwiseSandbox) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json="tok-abcdef-123456")
        auth = request.headers["authorization"]
        return httpx.Response(400, json={"Message": f"bad request with {auth} pw=s3cret-pass"})

    client = OrderwiseClient(
        "https://x.invalid/OWAPI",
        "api",
        "s3cret-pass",
        session_id=1,
        transport=httpx.MockTransport(answer),
        retry=NO_WAIT,
    )
    with pytest.raises(BadRequestError) as info:
        client.run_export(1)
    text = str(info.value) + repr(info.value.body)
    assert "tok-abcdef-123456" not in text and "s3cret-pass" not in text and "***" in text


# ---------------------------------------------------------------------------- sales orders


def test_create_sales_order_sends_wire_body(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    created = client.create_sales_order(order("SC-7"))
    assert created.e_commerce_order_number == "SC-7" and created.order_number
    body = sb.sales_orders[0]
    assert body["orderHeader"]["eCommerceOrderNumber"] == "SC-7"
    assert body["orderHeader"]["orderDate"] == "2025-06-03T13:30:00"  # UK time, no zone
    assert [line["variantCode"] for line in body["orderLines"]] == ["SKU-1", "SKU-2"]
    assert body["orderLines"][0]["itemGross"] == Decimal("12.5")
    assert sb.status(created.order_id) == "Awaiting picking"


def test_unknown_variant_raises_with_code(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    with pytest.raises(UnknownVariantError) as info:
        client.create_sales_order(order("SC-1", "SKU-1", "MISSING-42"))
    assert info.value.variant_code == "MISSING-42"
    assert info.value.status_code == 400
    assert sb.sales_orders == []


@pytest.mark.parametrize(
    ("message", "code"),
    [
        ("Product variant 'ODD 1' is invalid", "ODD 1"),  # fallback: an order code, quoted
        ('Variant code "ODD 1" was not found.', "ODD 1"),  # default pattern
        ("Customer 'ODD 1' is on stop", None),  # not about variants
    ],
)
def test_unknown_variant_detection_variants(message: str, code: str | None) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json="token-1234")
        return httpx.Response(400, json={"Message": message})

    client = OrderwiseClient(
        "https://x.invalid/OWAPI",
        "api",
        "pw-12345",
        session_id=1,
        transport=httpx.MockTransport(answer),
    )
    with pytest.raises(BadRequestError) as info:
        client.create_sales_order(order("SC-1", "SKU-1", "ODD 1"))
    assert getattr(info.value, "variant_code", None) == code
    assert isinstance(info.value, UnknownVariantError) == (code is not None)


def test_custom_unknown_variant_pattern() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, content=b"plain-token-text")
        return httpx.Response(400, text="ERR-17: no such item: ABC-9")

    client = OrderwiseClient(
        "https://x.invalid/OWAPI",
        "api",
        "pw-12345",
        session_id=1,
        transport=httpx.MockTransport(answer),
        unknown_variant_pattern=r"no such item: (?P<code>\S+)",
    )
    with pytest.raises(UnknownVariantError) as info:
        client.create_sales_order(order("SC-1", "ABC-9"))
    assert info.value.variant_code == "ABC-9"


def test_duplicate_reference_accepted_and_found_twice(client: OrderwiseClient) -> None:
    first = client.create_sales_order(order("SC-1"))
    second = client.create_sales_order(order("SC-1"))
    assert first.order_id != second.order_id
    found = client.find_orders_by_reference("SC-1")
    assert sorted(o.ow_order_id or 0 for o in found) == sorted([first.order_id, second.order_id])
    assert {o.reference for o in found} == {"SC-1"}
    assert client.find_orders_by_reference("SC-404") == []


def test_timeout_before_sending_create_is_transient_and_nothing_committed(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    client.authenticate()
    sb.injector.faults = Faults(timeout_before_rate=1.0)
    with pytest.raises(TransientError) as info:
        client.create_sales_order(order())
    assert not isinstance(info.value, AmbiguousOutcomeError)
    assert sb.sales_orders == []
    assert [s for _m, p, s in paths(sb) if p == "/sales/order"] == [0, 0, 0, 0]  # 1 + 3 retries


def test_timeout_after_commit_on_create_is_ambiguous_and_not_repeated(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    client.authenticate()
    sb.injector.faults = Faults(timeout_after_commit_rate=1.0)
    with pytest.raises(AmbiguousOutcomeError):
        client.create_sales_order(order("SC-9"))
    assert len(sb.sales_orders) == 1
    assert [p for _m, p, _s in paths(sb)].count("/sales/order") == 1
    sb.injector.faults = Faults()
    assert len(client.find_orders_by_reference("SC-9")) == 1


def test_5xx_on_create_is_ambiguous_and_not_repeated(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    client.authenticate()
    sb.injector.faults = Faults(error_rate=1.0)
    with pytest.raises(AmbiguousOutcomeError):
        client.create_sales_order(order())
    assert [p for _m, p, _s in paths(sb)].count("/sales/order") == 1


def test_created_without_order_id_is_ambiguous() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("gettoken"):
            return httpx.Response(200, json={"access_token": "token-abcd"})
        return httpx.Response(201, content=b"")

    client = OrderwiseClient(
        "https://x.invalid/OWAPI",
        "api",
        "pw-1234",
        session_id=1,
        transport=httpx.MockTransport(answer),
    )
    with pytest.raises(AmbiguousOutcomeError):
        client.create_sales_order(order())


def test_queued_order_not_visible_until_session_runs(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    sb.queue_orders = True
    created = client.create_sales_order(order("SC-Q"))
    assert client.find_orders_by_reference("SC-Q") == []
    with pytest.raises(NotFoundError):
        client.get_order_status(created.order_id)
    sb.process_session()
    assert [o.ow_order_id for o in client.find_orders_by_reference("SC-Q")] == [created.order_id]


# ---------------------------------------------------------------------------- status, cancel


def test_get_order_status_with_deliveries(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    created = client.create_sales_order(order())
    sb.despatch(created.order_id, consignment="CN-77", courier="DPD", lines={"SKU-1": 1})
    status = client.get_order_status(created.order_id)
    assert status.order_status == "Partially despatched"
    assert status.canonical() == "partially_despatched"
    assert status.deliveries is not None and status.deliveries[0].consignment_numbers == ["CN-77"]
    assert status.deliveries[0].courier_name == "DPD"
    assert status.lines is not None
    assert [ln.quantity_despatched for ln in status.lines] == [Decimal(1), Decimal(0)]
    with pytest.raises(NotFoundError):
        client.get_order_status(999999)


def test_cancel_allowed_then_refused(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    first = client.create_sales_order(order("SC-1"))
    result = client.cancel_sales_order(first.order_id)
    assert result.order_status == "Cancelled" and sb.status(first.order_id) == "Cancelled"
    second = client.create_sales_order(order("SC-2"))
    sb.set_status(second.order_id, "Picking")
    with pytest.raises(BadRequestError) as info:
        client.cancel_sales_order(second.order_id)
    assert info.value.status_code == 409
    assert sb.status(second.order_id) == "Picking"


def test_cancel_without_endpoint_is_a_config_error(sb: OrderwiseSandbox) -> None:
    client = sb.client(cancel_endpoint=None)
    with pytest.raises(ConfigError, match="cancel_endpoint"):
        client.cancel_sales_order(1)
    assert sb.requests == []


# ---------------------------------------------------------------------------- exports


def test_run_export_params_and_placeholder(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    seen: list[dict[str, Any]] = []

    def echo(params: Any) -> list[dict[str, Any]]:
        seen.append(dict(params))
        return [{"n": 1, "amount": Decimal("1.10")}]

    sb.register_export(300, echo, params=["since", "flag"])
    sb.register_export(301, echo)
    rows = client.run_export(300, since=datetime(2025, 1, 15, 9, 0, tzinfo=UTC), flag=True)
    assert rows == [{"n": 1, "amount": Decimal("1.10")}]
    assert client.run_export(301) == rows
    assert seen == [{"since": "2025-01-15T09:00:00", "flag": True}, {}]


def test_iter_order_changes_rows(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    created = client.create_sales_order(order("SC-5"))
    client.create_sales_order(order("SC-6"))
    mark = datetime(2025, 6, 3, 13, 30, tzinfo=UTC)  # 14:30 UK, after both were created
    sb.clock.set(datetime(2025, 6, 3, 14, 45))
    sb.despatch("SC-5", consignment="CN-1", courier="Royal Mail", lines={"SKU-1": 1})
    rows = list(client.iter_order_changes(mark))
    assert {r.external_ref for r in rows} == {"SC-5"}
    shipped = [r for r in rows if r.has_consignment]
    assert len(shipped) == 1
    row = shipped[0]
    assert (row.ow_order_id, row.variant_code, row.quantity_in_delivery) == (
        created.order_id,
        "SKU-1",
        Decimal(1),
    )
    assert row.courier == "Royal Mail" and row.tracking_url and row.tracking_url.endswith("CN-1")
    assert row.despatched_at == datetime(2025, 6, 3, 14, 45, tzinfo=LONDON)
    assert row.canonical() == "partially_despatched"


def test_iter_stock_changes_and_full(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    sb.clock.advance(minutes=15)
    mark = sb.clock.now().replace(tzinfo=LONDON)
    sb.set_free_stock("SKU-2", Decimal("-0.5"))
    rows = list(client.iter_stock_changes(mark))
    assert [(r.sku, r.free_stock, r.stock_location_id) for r in rows] == [
        ("SKU-2", Decimal("-0.5"), 1)
    ]
    assert rows[0].last_calculated == mark
    assert {r.sku for r in client.iter_stock_full()} == {"SKU-1", "SKU-2"}


def test_iter_order_details_totals(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    client.create_sales_order(order("SC-1"))
    client.create_sales_order(order("SC-2", "SKU-1"))
    summaries = list(client.iter_order_details())
    assert [s.reference for s in summaries] == ["SC-1", "SC-2"]
    first = summaries[0]
    assert first.currency == "GBP"
    assert first.order_gross == Decimal("29.99")  # 2 x 12.50 + 4.99
    assert first.lines is not None and len(first.lines) == 2
    assert first.order_net is not None and first.order_vat is not None
    assert first.order_net + first.order_vat == first.order_gross
    window = list(
        client.iter_order_details(
            since=datetime(2025, 6, 3, 12, 0, tzinfo=UTC),
            until=datetime(2025, 6, 3, 12, 30, tzinfo=UTC),
        )
    )
    assert window == []


def test_export_permission_denied_is_not_retried(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    sb.exports_permitted = False
    with pytest.raises(PermissionDeniedError):
        client.find_orders_by_reference("SC-1")
    assert [s for _m, _p, s in paths(sb)] == [200, 403]


def test_5xx_and_429_on_reads_are_retried(sb: OrderwiseSandbox, client: OrderwiseClient) -> None:
    client.authenticate()
    sb.injector.faults = Faults(error_rate=0.5, rate_limit_rate=0.3, seed=11)
    results = [len(client.run_export(sb.export_definitions.stock_full or 0)) for _ in range(5)]
    assert results == [2] * 5
    statuses = [s for _m, p, s in paths(sb) if p.startswith("/system")]
    assert 500 in statuses and 429 in statuses and statuses.count(200) == 5


def test_5xx_on_reads_gives_up_after_max_retries(sb: OrderwiseSandbox) -> None:
    client = sb.client(retry=NO_WAIT.with_(max_retries=2))
    client.authenticate()
    sb.injector.faults = Faults(error_rate=1.0)
    with pytest.raises(TransientError):
        client.run_export(sb.export_definitions.stock_changes, since=T0)
    assert [s for _m, _p, s in paths(sb)][1:] == [500, 500, 500]


def test_stock_variants_paging_and_variant_stock(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    sb.add_variant("SKU-3")
    variants = list(client.iter_stock_variants(page_size=2))
    # CARRIAGE: the non-stock carriage item every sandbox installation has
    assert [v.variant_code for v in variants] == ["SKU-1", "SKU-2", "SKU-3", "CARRIAGE"]
    assert [p for _m, p, _s in paths(sb)].count("/stock/variants") == 3
    stock = client.get_variant_stock(variants[1].variant_id)
    assert [(r.stock_location_id, r.free_stock) for r in stock] == [(1, Decimal("2.5"))]


def test_stock_variants_stop_with_a_clear_error_when_last_id_is_ignored(
    sb: OrderwiseSandbox, client: OrderwiseClient
) -> None:
    """Issue 15 A.5: 0.1.0 paged by ``last_id`` without a guard and looped for ever when an
    installation ignored it (here: the first 10,000 rows are the same two variants again)."""
    sb.variants_honour_last_id = False
    seen: list[str] = []
    with pytest.raises(InvalidResponseError, match="ignores last_id") as info:
        for row in itertools.islice(client.iter_stock_variants(page_size=2), 10_000):
            seen.append(row.variant_code)
    assert seen == ["SKU-1", "SKU-2"]  # the first page, once
    assert info.value.entity_id == 1002  # the last_id it ignored
    assert [p for _m, p, _s in paths(sb)].count("/stock/variants") == 2


async def test_async_stock_variants_stop_when_last_id_is_ignored(
    sb: OrderwiseSandbox, aclient: AsyncOrderwiseClient
) -> None:
    sb.variants_honour_last_id = False
    seen: list[str] = []
    async with aclient:
        with pytest.raises(InvalidResponseError, match="ignores last_id"):
            async for row in aclient.iter_stock_variants(page_size=2):
                seen.append(row.variant_code)
                assert len(seen) < 10_000
    assert seen == ["SKU-1", "SKU-2"]


def test_invalid_settings() -> None:
    with pytest.raises(ConfigError):
        OrderwiseClient("ftp://x", "u", "p", session_id=1)
    with pytest.raises(ConfigError):
        OrderwiseClient("https://x.invalid/OWAPI", "", "p", session_id=1)
    client = OrderwiseClient(
        "https://x.invalid/OWAPI/", "u", "p", session_id=1, cancel_endpoint="x/{id}"
    )
    assert client.api_root == "https://x.invalid/OWAPI"
    with pytest.raises(ConfigError):
        client.cancel_sales_order(1)


# ---------------------------------------------------------------------------- async twin


async def test_async_client_covers_every_method(
    sb: OrderwiseSandbox, aclient: AsyncOrderwiseClient
) -> None:
    async with aclient:
        created = await aclient.create_sales_order(order("SC-A"))
        duplicate = await aclient.create_sales_order(order("SC-A"))
        assert created.order_id != duplicate.order_id
        found = await aclient.find_orders_by_reference("SC-A")
        assert len(found) == 2
        sb.despatch(created.order_id, consignment="CN-A", courier="DHL")
        status = await aclient.get_order_status(created.order_id)
        assert status.order_status == "Despatched"
        since = datetime(2025, 6, 3, 12, 0, tzinfo=UTC)
        changes = [r async for r in aclient.iter_order_changes(since)]
        assert {r.consignment for r in changes if r.has_consignment} == {"CN-A"}
        stock = [r async for r in aclient.iter_stock_changes(since)]
        assert {r.sku for r in stock} == {"SKU-1", "SKU-2"}
        assert len([r async for r in aclient.iter_stock_full()]) == 2
        details = [s async for s in aclient.iter_order_details()]
        assert [d.reference for d in details] == ["SC-A", "SC-A"]
        cancelled = await aclient.cancel_sales_order(duplicate.order_id)
        assert cancelled.order_status == "Cancelled"
        with pytest.raises(BadRequestError) as refused:
            await aclient.cancel_sales_order(created.order_id)
        assert refused.value.status_code == 409
        variants = [v async for v in aclient.iter_stock_variants(page_size=1)]
        assert [v.variant_code for v in variants] == ["SKU-1", "SKU-2", "CARRIAGE"]
        assert len(await aclient.get_variant_stock(variants[0].variant_id)) == 1
        assert await aclient.run_export(sb.export_definitions.order_by_reference, ref="X") == []
        with pytest.raises(UnknownVariantError) as unknown:
            await aclient.create_sales_order(order("SC-B", "NOPE-1"))
        assert unknown.value.variant_code == "NOPE-1"
    assert [p for _m, p, _s in paths(sb)].count("/token/gettoken") == 1


async def test_async_token_refresh_and_ambiguous_create(
    sb: OrderwiseSandbox, aclient: AsyncOrderwiseClient
) -> None:
    await aclient.authenticate()
    sb.revoke_tokens()
    assert await aclient.find_orders_by_reference("none") == []
    assert [s for _m, _p, s in paths(sb)] == [200, 401, 200, 200]
    sb.injector.faults = Faults(timeout_after_commit_rate=1.0)
    with pytest.raises(AmbiguousOutcomeError):
        await aclient.create_sales_order(order("SC-T"))
    sb.injector.faults = Faults(timeout_before_rate=1.0)
    with pytest.raises(TransientError):
        await aclient.create_sales_order(order("SC-U"))
    assert [b["orderHeader"]["eCommerceOrderNumber"] for b in sb.sales_orders] == ["SC-T"]
    await aclient.aclose()


def test_sandbox_client_factories_share_settings(sb: OrderwiseSandbox) -> None:
    makers: list[Callable[..., Any]] = [sb.client, sb.async_client]
    for make in makers:
        c = make()
        assert (c.api_root, c.username, c.session_id) == (sb.api_root, sb.username, sb.session_id)
        assert c.export_definitions == sb.export_definitions
        assert c.cancel_endpoint == sb.cancel_path
