"""Orders SCAYLE → OrderWise exactly once: the fault matrix of anchors.md §C.6 through the sandbox."""

from __future__ import annotations

import base64
import json
import threading
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from flow_helpers import (
    add_orders,
    calls,
    order_json,
    orderwise_orders_per_reference,
    stocked_sandbox,
)
from scayle_orderwise.alerts import AlertKind, MemoryAlertSink
from scayle_orderwise.config import ConnectorSettings, FlowSettings, ScayleSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import MalformedWebhookError, WebhookAuthError
from scayle_orderwise.mapping import MappingConfig
from scayle_orderwise.sandbox import Faults, SimulatedCrash
from scayle_orderwise.store import MemoryStore, SqliteStore, State

FAST = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0)


def connector_for(sandbox, store=None, *, worker_id="w1", flows=FAST, **kwargs):  # type: ignore[no-untyped-def]
    return Connector.for_sandbox(sandbox, store=store, worker_id=worker_id, flows=flows, **kwargs)


def assert_exactly_once(sandbox, order_ids) -> None:  # type: ignore[no-untyped-def]
    per_ref = orderwise_orders_per_reference(sandbox)
    for order_id in order_ids:
        assert per_ref[f"SCAYLE-{order_id}"] == 1, (
            f"order {order_id}: {per_ref[f'SCAYLE-{order_id}']} sales orders"
        )


def test_happy_path_pushes_once_and_writes_reference_back() -> None:
    sandbox = stocked_sandbox()
    ids = add_orders(sandbox, range(1001, 1006))
    connector = connector_for(sandbox)
    result = connector.sync_orders()
    assert result.pushed == 5 and result.discovered == 5
    assert_exactly_once(sandbox, ids)
    for order_id in ids:
        record = connector.store.get(f"order:{order_id}")
        assert record is not None and record.state == State.ACKNOWLEDGED
        assert record.external_id is not None
        assert sandbox.scayle.orders[order_id]["referenceKey"] == f"SCAYLE-{order_id}"
        assert record.payload["lines"] and all(line["item_ids"] for line in record.payload["lines"])
    again = connector.sync_orders()
    assert again.pushed == 0 and len(sandbox.orderwise.sales_orders) == 5


def test_steady_state_uses_two_writes_per_order_and_one_lookup_per_batch() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, range(1, 21))
    connector_for(sandbox, flows=FAST.model_copy(update={"batch_size": 10})).sync_orders()
    assert calls(sandbox.orderwise, "POST", "sales/order") == 20
    # Checked before every create, a claimed batch of 10 with one call each.
    assert calls(sandbox.orderwise, "POST", "export-definition/106") == 2
    assert calls(sandbox.orderwise, "POST", "export-definition") == 2
    assert calls(sandbox.scayle, "PUT", "reference-key") == 20
    assert calls(sandbox.scayle, "GET", "/orders/") == 0  # polled orders are not fetched again


def test_a_pass_remembers_only_the_orders_that_may_come_back() -> None:
    """Memory flat in the backlog: the pass keeps the keys it took only while they may be due
    again in the same pass, not every order it settled (100,000 keys is 10 MiB per worker)."""
    from scayle_orderwise.sync.orders import OrderSync

    sandbox = stocked_sandbox()
    add_orders(sandbox, range(1, 41))
    sandbox.scayle.add_order(order_json(41, lines=[("SKU-NEW-IN", 1000, 1, "0.20")]))
    connector = connector_for(sandbox, flows=FAST.model_copy(update={"batch_size": 10}))
    flow = OrderSync(connector.context)
    result = flow.run()
    assert result.pushed == 40 and result.quarantined == 1
    assert flow._seen == set()


def test_lost_response_after_commit_is_adopted_not_resent() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [2001])
    connector = connector_for(sandbox)
    sandbox.orderwise.injector.faults = Faults(timeout_after_commit_rate=1.0)
    first = connector.sync_orders()
    assert first.ambiguous == 1
    assert connector.store.get("order:2001").state == State.SENT  # type: ignore[union-attr]
    sandbox.orderwise.injector.faults = Faults()
    second = connector.sync_orders()
    assert second.adopted == 1 and second.pushed == 0
    assert_exactly_once(sandbox, [2001])
    record = connector.store.get("order:2001")
    assert record is not None and record.state == State.ACKNOWLEDGED
    assert sandbox.scayle.orders[2001]["referenceKey"] == "SCAYLE-2001"


def test_timeout_before_commit_sends_exactly_once_later() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [2101])
    connector = connector_for(sandbox)
    sandbox.orderwise.injector.faults = Faults(timeout_before_rate=1.0)
    first = connector.sync_orders()
    assert first.pushed == 0 and len(sandbox.orderwise.sales_orders) == 0
    sandbox.orderwise.injector.faults = Faults()
    second = connector.sync_orders()
    assert second.pushed == 1
    assert_exactly_once(sandbox, [2101])


def test_crash_between_create_and_ledger_update_is_adopted_after_restart(tmp_path: Path) -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [2201, 2202])
    store = SqliteStore(tmp_path / "ledger.db")
    sandbox.orderwise.injector.faults = Faults(crash_after_commit_rate=1.0)
    with pytest.raises(SimulatedCrash):
        connector_for(sandbox, store).sync_orders()
    sandbox.orderwise.injector.faults = Faults()
    store.close()
    restarted = connector_for(sandbox, SqliteStore(tmp_path / "ledger.db"))  # same worker id
    result = restarted.sync_orders()
    assert result.adopted == 1 and result.pushed == 1
    assert_exactly_once(sandbox, [2201, 2202])


def test_another_worker_waits_for_the_lease_of_a_dead_worker(tmp_path: Path) -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [2301])
    path = tmp_path / "ledger.db"
    now = [sandbox.clock.utcnow()]
    clock = lambda: now[0]  # noqa: E731
    sandbox.orderwise.injector.faults = Faults(crash_after_commit_rate=1.0)
    with pytest.raises(SimulatedCrash):
        connector_for(
            sandbox, SqliteStore(path, clock=clock), worker_id="dead", clock=clock
        ).sync_orders()
    sandbox.orderwise.injector.faults = Faults()
    other = connector_for(sandbox, SqliteStore(path, clock=clock), worker_id="other", clock=clock)
    assert other.sync_orders().adopted == 0  # the dead worker's lease still holds
    assert other.store.get("order:2301").state == State.IN_FLIGHT  # type: ignore[union-attr]
    now[0] += timedelta(seconds=FAST.lease_seconds + 1)
    assert other.sync_orders().adopted == 1
    assert_exactly_once(sandbox, [2301])


def test_concurrent_workers_never_duplicate(tmp_path: Path) -> None:
    sandbox = stocked_sandbox()
    ids = add_orders(sandbox, range(3001, 3061))
    path = tmp_path / "ledger.db"
    errors: list[BaseException] = []

    def work(worker: str) -> None:
        try:
            connector_for(sandbox, SqliteStore(path), worker_id=worker).sync_orders()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, [repr(e) for e in errors]
    assert_exactly_once(sandbox, ids)
    assert len(sandbox.orderwise.sales_orders) == len(ids)


def test_rate_limit_bursts_and_server_errors_lose_nothing() -> None:
    sandbox = stocked_sandbox(seed=3)
    ids = add_orders(sandbox, range(4001, 4041))
    connector = connector_for(sandbox)
    sandbox.faults = Faults(rate_limit_rate=0.3, error_rate=0.1, seed=5)
    for _ in range(6):
        connector.sync_orders()
    sandbox.faults = Faults()
    for _ in range(3):
        connector.sync_orders()
    assert_exactly_once(sandbox, ids)
    assert sandbox.injected.get("rate_limit", 0) > 0
    counts = connector.store.counts(kind="order")
    assert counts[State.ACKNOWLEDGED] == len(ids)


def test_unknown_sku_in_sku_map_is_quarantined_with_reason_and_alert() -> None:
    sandbox = stocked_sandbox()
    sandbox.scayle.add_order(order_json(5001, lines=[("SKU-NOT-MAPPED", 1000, 1, "0.20")]))
    add_orders(sandbox, [5002])
    sink = MemoryAlertSink()
    mapping = MappingConfig(
        sku_map={
            sku: sku
            for sku in ("SKU-TEE-BLK-M", "SKU-BOOK-01", "SKU-MUG-02", "SKU-CAP-03", "SKU-TEE-WHT-L")
        }
    )
    connector = connector_for(sandbox, mapping=mapping, alerts=[sink])
    result = connector.sync_orders()
    assert result.quarantined == 1 and result.pushed == 1
    record = connector.store.get("order:5001")
    assert record is not None and record.state == "quarantined"
    assert "unknown_sku" in (record.reason or "") and "SKU-NOT-MAPPED" in (record.reason or "")
    assert [a.subject for a in sink.of_kind(AlertKind.ORDER_QUARANTINED)] == ["5001"]
    connector.sync_orders()  # the same cause does not alert twice
    assert len(sink.of_kind(AlertKind.ORDER_QUARANTINED)) == 1


def test_variant_unknown_to_orderwise_is_quarantined_then_released() -> None:
    sandbox = stocked_sandbox()
    sandbox.scayle.add_order(order_json(5101, lines=[("SKU-NEW-IN", 1000, 1, "0.20")]))
    connector = connector_for(sandbox)
    connector.sync_orders()
    record = connector.store.get("order:5101")
    assert record is not None and record.state == State.QUARANTINED
    assert "SKU-NEW-IN" in (record.reason or "")
    sandbox.orderwise.add_variant("SKU-NEW-IN")
    connector.release_quarantined(5101)
    assert connector.sync_orders().pushed == 1
    assert_exactly_once(sandbox, [5101])


def test_unconfirmed_orders_are_not_imported_and_cancelled_ones_are_recorded() -> None:
    sandbox = stocked_sandbox()
    sandbox.scayle.add_order(order_json(6001, status="payment_pending", order_code="order_pended"))
    add_orders(sandbox, [6002])
    sandbox.scayle.cancel_order(6002)
    connector = connector_for(sandbox)
    result = connector.sync_orders()
    assert result.not_confirmed == 1 and result.cancelled_before_import == 1
    assert sandbox.orderwise.sales_orders == []
    assert connector.store.get("order:6001") is None
    record = connector.store.get("order:6002")
    assert record is not None and record.state == State.CANCELLED


def _envelope(order_id: int, event: str = "order-confirmed", key: str | None = None) -> bytes:
    return json.dumps(
        {
            "key": key or f"evt-{event}-{order_id}",
            "meta": {"tenantKey": "acme"},
            "occurredAt": "2026-05-04T09:12:45+00:00",
            "type": event,
            "version": 1,
            "payload": {"id": order_id},
        }
    ).encode()


def test_duplicate_and_out_of_order_webhooks() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [7001, 7002])
    sandbox.scayle.cancel_order(7002)
    connector = connector_for(sandbox)
    assert connector.ingest_webhook(_envelope(7001)).outcome == "recorded"
    assert connector.ingest_webhook(_envelope(7001)).outcome == "duplicate"
    # the cancellation of 7002 arrives before its confirmation
    assert connector.ingest_webhook(_envelope(7002, "order-cancelled")).outcome == "recorded"
    assert connector.ingest_webhook(_envelope(7002)).outcome == "recorded"
    result = connector.sync_orders(poll=False)
    assert result.pushed == 1
    assert_exactly_once(sandbox, [7001])
    assert orderwise_orders_per_reference(sandbox)["SCAYLE-7002"] == 0
    assert connector.store.get("order:7002").state == State.CANCELLED  # type: ignore[union-attr]


def test_webhook_payload_is_never_trusted_for_money() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [7101])
    connector = connector_for(sandbox)
    forged = json.loads(_envelope(7101))
    forged["payload"] = {"id": 7101, "cost": {"withTax": 1}, "items": []}
    connector.ingest_webhook(json.dumps(forged))
    connector.sync_orders(poll=False)
    body = sandbox.orderwise.sales_orders[0]
    assert (
        body["orderHeader"]["orderGross"]
        == Decimal(sandbox.scayle.orders[7101]["cost"]["withTax"]) / 100
    )


def test_malformed_and_unauthenticated_webhooks_are_refused() -> None:
    sandbox = stocked_sandbox()
    settings = ConnectorSettings(
        scayle=ScayleSettings(webhook_username="scayle", webhook_password="s3cret")
    )
    connector = connector_for(sandbox, settings=settings)
    good = {"Authorization": "Basic " + base64.b64encode(b"scayle:s3cret").decode()}
    with pytest.raises(MalformedWebhookError):
        connector.ingest_webhook(b"{not json", good)
    with pytest.raises(MalformedWebhookError):
        connector.ingest_webhook(b"", good)
    with pytest.raises(WebhookAuthError) as info:
        connector.ingest_webhook(
            _envelope(1), {"Authorization": "Basic " + base64.b64encode(b"scayle:wrong").decode()}
        )
    assert "wrong" not in str(info.value) and "s3cret" not in str(info.value)
    with pytest.raises(WebhookAuthError):
        connector.ingest_webhook(_envelope(1), {})
    assert connector.ingest_webhook(_envelope(1), good).outcome == "recorded"


def test_accepted_but_invisible_order_stays_sent_alerts_and_is_adopted_once_visible() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [8001])
    sandbox.orderwise.queue_orders = True  # OrderWise imports through its e-commerce session
    sandbox.orderwise.injector.faults = Faults(timeout_after_commit_rate=1.0)
    sink = MemoryAlertSink()
    now = [sandbox.clock.utcnow()]
    clock = lambda: now[0]  # noqa: E731
    flows = FlowSettings(
        backoff_base_seconds=0, resend_grace_seconds=3600, order_stalled_after_seconds=1800
    )
    connector = connector_for(
        sandbox, MemoryStore(clock=clock), flows=flows, alerts=[sink], clock=clock
    )
    assert connector.sync_orders().ambiguous == 1
    sandbox.orderwise.injector.faults = Faults()
    now[0] += timedelta(seconds=1)
    assert connector.sync_orders().awaiting_visibility == 1
    assert (
        len(sandbox.orderwise.sales_orders) == 1
    )  # not re-sent while OrderWise may still import it
    assert not sink.of_kind(AlertKind.ORDER_STALLED)
    now[0] += timedelta(minutes=40)
    connector.sync_orders()
    assert [a.subject for a in sink.of_kind(AlertKind.ORDER_STALLED)] == ["8001"]
    assert len(sandbox.orderwise.sales_orders) == 1
    sandbox.orderwise.process_session()
    now[0] += timedelta(minutes=1)
    assert connector.sync_orders().adopted == 1
    assert_exactly_once(sandbox, [8001])


def test_negative_lookup_after_the_grace_period_resends_once() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [8101])
    now = [sandbox.clock.utcnow()]
    clock = lambda: now[0]  # noqa: E731
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=600)
    connector = connector_for(sandbox, MemoryStore(clock=clock), flows=flows, clock=clock)
    connector.orderwise.authenticate()  # the token is cached; the create itself gets the 5xx
    sandbox.orderwise.injector.faults = Faults(
        error_rate=1.0, paths=("sales/order",)
    )  # 5xx after sending: outcome unclear
    assert connector.sync_orders().ambiguous == 1
    sandbox.orderwise.injector.faults = Faults()
    now[0] += timedelta(seconds=1)
    assert connector.sync_orders().awaiting_visibility == 1
    now[0] += timedelta(minutes=11)
    result = connector.sync_orders()
    assert result.resent_after_negative_lookup == 1 and result.pushed == 1
    assert_exactly_once(sandbox, [8101])


def test_health_reports_oldest_and_quarantined() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [9001])
    sandbox.scayle.add_order(order_json(9002, lines=[("SKU-UNKNOWN", 500, 1, "0.20")]))
    connector = connector_for(sandbox, store=MemoryStore())
    connector.sync_orders()
    health = connector.health()
    assert health.quarantined == 1 and not health.ok
    assert health.counts["acknowledged"] == 1
    assert health.as_dict()["quarantined"] == 1


class RecordingTransport(httpx.BaseTransport):
    """Passes requests to the sandbox and keeps their URLs."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.urls: list[httpx.URL] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.urls.append(request.url)
        return self.inner.handle_request(request)


def test_poll_uses_the_configured_since_filter_with_overlap() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [9101])
    recording = RecordingTransport(sandbox.scayle.transport)
    flows = FlowSettings(
        backoff_base_seconds=0,
        order_poll_since_param="filters[updatedAtFrom]",
        poll_overlap_seconds=60,
    )
    connector = Connector(
        scayle=sandbox.scayle_client(transport=recording),
        orderwise=sandbox.orderwise_client(),
        worker_id="w1",
        settings=ConnectorSettings(flows=flows),
    )
    connector.sync_orders()
    polls = [u for u in recording.urls if u.path.endswith("/orders")]
    assert polls and "filters[updatedAtFrom]" not in polls[0].params  # no watermark yet: whole list
    watermark = datetime.fromisoformat(connector.store.get_cursor("orders:poll_watermark") or "")
    connector.sync_orders()
    second = [u for u in recording.urls if u.path.endswith("/orders")][len(polls) :]
    assert second
    since = datetime.fromisoformat(second[0].params["filters[updatedAtFrom]"])
    assert since == watermark - timedelta(seconds=60)


def test_poll_can_be_switched_off_for_webhook_only_intake() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [9201])
    connector = connector_for(sandbox, flows=FlowSettings(backoff_base_seconds=0, order_poll=False))
    assert connector.sync_orders().pushed == 0
    assert calls(sandbox.scayle, "GET", "/orders") == 0
    connector.ingest_webhook(_envelope(9201))
    assert connector.sync_orders().pushed == 1


def test_a_post_process_hook_that_changes_money_quarantines_the_order() -> None:
    from scayle_orderwise.mapping import OrderMapper

    sandbox = stocked_sandbox()
    add_orders(sandbox, [9301])

    def cheaper(payload, mapped, order):  # type: ignore[no-untyped-def]
        return payload.model_copy(
            update={
                "order_header": payload.order_header.model_copy(
                    update={"order_gross": Decimal("1.00")}
                )
            }
        )

    connector = connector_for(sandbox, mapping=OrderMapper(MappingConfig(), post_process=cheaper))
    result = connector.sync_orders()
    assert result.quarantined == 1 and sandbox.orderwise.sales_orders == []
    record = connector.store.get("order:9301")
    assert record is not None and "orderGross" in (record.reason or "")


def _key_in_orderwise_by_hand(sandbox, order_id: int):  # type: ignore[no-untyped-def]
    """Create the sales order for a SCAYLE order in OrderWise directly, as a person or a previous
    integration would have before this connector ever saw it."""
    from scayle_orderwise.mapping import OrderMapper
    from scayle_orderwise.scayle.models import Order

    order = Order.model_validate(sandbox.scayle.orders[order_id])
    body = OrderMapper(MappingConfig()).map(order).to_orderwise()
    with sandbox.orderwise_client() as client:
        return client.create_sales_order(body)


@pytest.mark.parametrize("intake", ["poll", "webhook"])
def test_an_order_already_in_orderwise_is_adopted_on_its_first_send(intake: str) -> None:
    """Issue 11 §1: the lookup runs before every create, the first one too (cutover)."""
    sandbox = stocked_sandbox()
    ids = add_orders(sandbox, [9001, 9002, 9003])
    existing = _key_in_orderwise_by_hand(sandbox, 9002)
    connector = connector_for(sandbox)
    if intake == "webhook":
        for envelope in sandbox.scayle.webhooks:
            connector.ingest_webhook(json.dumps(envelope))
    result = connector.sync_orders(poll=intake == "poll")
    assert result.adopted == 1 and result.pushed == 2
    assert_exactly_once(sandbox, ids)
    record = connector.store.get("order:9002")
    assert record is not None and record.state == State.ACKNOWLEDGED
    assert record.external_id == str(existing.order_id)
    assert record.external_ref == existing.order_number
    assert sandbox.scayle.orders[9002]["referenceKey"] == "SCAYLE-9002"
    # One lookup for the claimed batch, before any create.
    lookups = [i for i, r in enumerate(sandbox.orderwise.requests) if "export-definition" in r[1]]
    creates = [i for i, r in enumerate(sandbox.orderwise.requests) if r[1].endswith("sales/order")]
    assert len(lookups) == 1 and lookups[0] < min(creates[1:])


def test_without_the_batch_lookup_definition_each_order_is_looked_up_on_its_own() -> None:
    from scayle_orderwise.orderwise.client import ExportDefinitions

    sandbox = stocked_sandbox()
    ids = add_orders(sandbox, [9101, 9102, 9103])
    _key_in_orderwise_by_hand(sandbox, 9101)
    client = sandbox.orderwise_client(
        export_definitions=ExportDefinitions(orders_by_references=None)
    )
    connector = Connector(
        scayle=sandbox.scayle_client(),
        orderwise=client,
        worker_id="w1",
        settings=ConnectorSettings(flows=FAST),
    )
    result = connector.sync_orders()
    assert result.adopted == 1 and result.pushed == 2
    assert_exactly_once(sandbox, ids)
    assert calls(sandbox.orderwise, "POST", "export-definition/102") == 3
    assert calls(sandbox.orderwise, "POST", "export-definition/106") == 0


def test_reference_write_backs_wait_for_scayles_budget_and_catch_up() -> None:
    """Issue 13: past SCAYLE's ordersWrite cap, orders keep reaching OrderWise; their reference
    write-backs wait durably in the ledger and catch up as the budget frees, none lost."""
    from scayle_orderwise._http import RateBudget
    from scayle_orderwise.connector import ledger_health
    from scayle_orderwise.sandbox.clock import VirtualClock

    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox(clock=clock)
    ids = add_orders(sandbox, range(7001, 7011))
    budget = RateBudget(limits={"ordersWrite": (3, 60.0)}, clock=clock.monotonic)
    connector = Connector(
        scayle=sandbox.scayle_client(budget=budget),
        orderwise=sandbox.orderwise_client(),
        store=MemoryStore(clock=clock.utcnow),
        worker_id="w1",
        settings=ConnectorSettings(flows=FAST),
        clock=clock.utcnow,
    )
    first = connector.sync_orders()
    assert first.pushed == 10 and first.reference_deferred == 7
    assert_exactly_once(sandbox, ids)
    assert calls(sandbox.scayle, "PUT", "reference-key") == 3
    assert clock.slept == []  # nobody waited for the budget
    assert ledger_health(connector.store).reference_writes_waiting == 7
    written = 3
    for _ in range(3):
        clock.advance(61)
        written += connector.sync_orders().references_written
    assert written == 10
    assert all(sandbox.scayle.orders[i]["referenceKey"] == f"SCAYLE-{i}" for i in ids)
    assert ledger_health(connector.store).reference_writes_waiting == 0


def test_an_order_keyed_with_its_reference_in_other_case_is_adopted_not_duplicated() -> None:
    """OrderWise's SQL Server compares text ignoring case: its lookup answers ``scayle-9201``
    for ``SCAYLE-9201``, and the connector must take that as the same order."""
    from scayle_orderwise.mapping import OrderMapper
    from scayle_orderwise.scayle.models import Order

    sandbox = stocked_sandbox()
    add_orders(sandbox, [9201])
    body = (
        OrderMapper(MappingConfig())
        .map(Order.model_validate(sandbox.scayle.orders[9201]))
        .to_orderwise()
    )
    body = body.model_copy(
        update={
            "order_header": body.order_header.model_copy(
                update={"e_commerce_order_number": "scayle-9201"}
            )
        }
    )
    with sandbox.orderwise_client() as client:
        client.create_sales_order(body)
    result = connector_for(sandbox).sync_orders()
    assert result.adopted == 1 and result.pushed == 0
    assert len(sandbox.orderwise.sales_orders) == 1


def test_the_poll_pushes_each_page_before_it_reads_the_next() -> None:
    """Issue 13: the poll holds one page of orders, never the backlog."""
    sandbox = stocked_sandbox()
    add_orders(sandbox, range(1, 31))
    flows = FAST.model_copy(update={"order_poll_page_size": 10})
    assert connector_for(sandbox, flows=flows).sync_orders().pushed == 30
    scayle = [(i, path) for i, (_m, path, _s) in enumerate(sandbox.scayle.requests)]
    pages = [i for i, path in scayle if path.endswith("/orders")]
    writes = [i for i, path in scayle if path.endswith("/reference-key")]
    assert len(pages) == 3
    # The ten orders of each page are pushed (and written back) before the next page is read.
    assert sum(1 for w in writes if pages[0] < w < pages[1]) == 10
    assert sum(1 for w in writes if pages[1] < w < pages[2]) == 10
