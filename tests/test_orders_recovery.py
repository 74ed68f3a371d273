"""Recovery points of the orders flow: restarts inside the grace, lease overruns, ledger failures,
malformed orders and webhook redelivery (each case once caused a duplicate or a lost order)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from flow_helpers import add_orders, order_json, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import StoreError
from scayle_orderwise.sandbox import Faults, SimulatedCrash
from scayle_orderwise.sandbox.clock import VirtualClock
from scayle_orderwise.store import MemoryStore, State


def test_restart_inside_the_grace_never_resends_an_order_still_being_imported() -> None:
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox()
    sandbox.orderwise.queue_orders = True  # the e-commerce session imports later
    add_orders(sandbox, [101])
    store = MemoryStore(clock=clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=900)

    def connector() -> Connector:
        return Connector.for_sandbox(
            sandbox, store=store, worker_id="w1", flows=flows, clock=clock.utcnow
        )

    sandbox.orderwise.injector.faults = Faults(crash_after_commit_rate=1.0)
    with pytest.raises(SimulatedCrash):
        connector().sync_orders()
    sandbox.orderwise.injector.faults = Faults()
    for _ in range(3):
        clock.advance(5)
        assert connector().sync_orders().awaiting_visibility == 1
    sandbox.orderwise.process_session()
    clock.advance(5)
    assert connector().sync_orders().adopted == 1
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-101": 1}


def test_a_worker_whose_lease_ran_out_does_not_send_what_another_took_over() -> None:
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox()
    add_orders(sandbox, [201, 202])
    store = MemoryStore(clock=clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0, lease_seconds=300, resend_grace_seconds=120)
    w1 = Connector.for_sandbox(
        sandbox, store=store, worker_id="w1", flows=flows, clock=clock.utcnow
    )
    w2 = Connector.for_sandbox(
        sandbox, store=store, worker_id="w2", flows=flows, clock=clock.utcnow
    )
    for order_id in (201, 202):
        w1.ingest_webhook(
            json.dumps(
                {"key": f"k{order_id}", "type": "order-confirmed", "payload": {"id": order_id}}
            )
        )
    real_get_order = w1.scayle.get_order
    calls = {"n": 0}

    def slow_get_order(order_id: int, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 1:  # w1 stalls longer than its lease; w2 takes the batch over meanwhile
            clock.advance(400)
            assert w2.sync_orders(poll=False).pushed == 2
        return real_get_order(order_id, **kwargs)

    w1.scayle.get_order = slow_get_order  # type: ignore[method-assign]
    assert w1.sync_orders(poll=False).claim_lost == 2
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-201": 1, "SCAYLE-202": 1}


def test_a_ledger_failure_after_the_create_leads_to_a_lookup_not_a_second_create() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [1001])
    store = MemoryStore()
    connector = Connector.for_sandbox(
        sandbox, store=store, worker_id="w1", flows=FlowSettings(backoff_base_seconds=0)
    )
    real_transition = store.transition

    def flaky(key: str, to_state: Any, **kwargs: Any) -> Any:
        if to_state == "acknowledged" and key == "order:1001":
            store.transition = real_transition  # type: ignore[method-assign]
            raise StoreError("database is locked")
        return real_transition(key, to_state, **kwargs)

    store.transition = flaky  # type: ignore[method-assign]
    assert connector.sync_orders().failed == 1
    record = store.get("order:1001")
    assert record is not None and record.state == State.SENT and record.may_have_been_sent
    assert connector.sync_orders().adopted == 1
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-1001": 1}


def test_one_malformed_order_is_quarantined_and_the_poll_goes_on() -> None:
    sandbox = stocked_sandbox()
    bad = order_json(300)
    bad["items"][0]["price"] = {"withTax": "abc"}
    sandbox.scayle.add_order(bad)
    add_orders(sandbox, [301, 302])
    sandbox.scayle.webhooks.clear()
    connector = Connector.for_sandbox(
        sandbox, worker_id="w1", flows=FlowSettings(backoff_base_seconds=0, order_poll_page_size=2)
    )
    result = connector.sync_orders()
    assert result.pushed == 2 and result.quarantined == 1 and result.poll_failed == 0
    record = connector.store.get("order:300")
    assert record is not None and record.state == State.QUARANTINED
    assert "malformed_order" in (record.reason or "") and "withTax" in (record.reason or "")
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-301": 1, "SCAYLE-302": 1}


def test_a_malformed_order_from_a_webhook_is_quarantined_not_retried_forever() -> None:
    sandbox = stocked_sandbox()
    bad = order_json(310)
    bad["items"][0]["price"] = {"withTax": "abc"}
    sandbox.scayle.add_order(bad)
    connector = Connector.for_sandbox(
        sandbox, worker_id="w1", flows=FlowSettings(backoff_base_seconds=0, order_poll=False)
    )
    connector.ingest_webhook(
        json.dumps({"key": "k310", "type": "order-confirmed", "payload": {"id": 310}})
    )
    assert connector.sync_orders().quarantined == 1
    assert connector.store.get("order:310").state == State.QUARANTINED  # type: ignore[union-attr]


def test_webhook_redelivery_after_a_ledger_failure_is_not_taken_for_a_duplicate() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [601])
    store = MemoryStore()
    connector = Connector.for_sandbox(
        sandbox,
        store=store,
        worker_id="w1",
        flows=FlowSettings(backoff_base_seconds=0, order_poll=False),
    )
    body = json.dumps({"key": "evt-601", "type": "order-confirmed", "payload": {"id": 601}})
    real_ensure = store.ensure

    def failing_once(*args: Any, **kwargs: Any) -> Any:
        store.ensure = real_ensure  # type: ignore[method-assign]
        raise StoreError("database is locked")

    store.ensure = failing_once  # type: ignore[method-assign]
    with pytest.raises(StoreError):
        connector.ingest_webhook(body)  # the receiver answers 5xx; SCAYLE redelivers
    assert connector.ingest_webhook(body).outcome == "recorded"
    assert connector.ingest_webhook(body).outcome == "duplicate"
    assert connector.sync_orders().pushed == 1


def test_unconfirmed_orders_expire_instead_of_stalling() -> None:
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox()
    sandbox.scayle.add_order(order_json(701, status="payment_pending", order_code="order_pended"))
    store = MemoryStore(clock=clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0, order_poll=False, unconfirmed_expiry_seconds=3600)
    connector = Connector.for_sandbox(
        sandbox, store=store, worker_id="w1", flows=flows, clock=clock.utcnow
    )
    connector.ingest_webhook(
        json.dumps({"key": "k701", "type": "order-delegated", "payload": {"id": 701}})
    )
    assert connector.sync_orders().not_confirmed == 1
    clock.advance(2000)
    connector.sync_orders()
    assert not connector.health().open_alerts  # waiting for payment is not a stalled connector
    clock.advance(2000)
    assert connector.sync_orders().expired_unconfirmed == 1
    assert store.get("order:701").state == State.CANCELLED  # type: ignore[union-attr]
    assert sandbox.orderwise.sales_orders == []


def test_the_grace_runs_from_the_latest_resend_after_a_crash() -> None:
    """Issue 11 §2: 5xx at T0 → negative lookup after the grace → re-send at T0+1000 s commits
    in OrderWise (hidden until its session runs) → the worker dies before its ledger write →
    on restart the grace runs from T0+1000 s, not T0: no second re-send."""
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox()
    add_orders(sandbox, [301])
    store = MemoryStore(clock=clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=900)

    def connector() -> Connector:
        return Connector.for_sandbox(
            sandbox, store=store, worker_id="w1", flows=flows, clock=clock.utcnow
        )

    sandbox.orderwise.injector.faults = Faults(error_rate=1.0, paths=("sales/order",))
    assert connector().sync_orders().ambiguous == 1  # T0: 5xx, nothing committed
    clock.advance(1000)
    sandbox.orderwise.queue_orders = True  # the re-send is imported by the next session
    sandbox.orderwise.injector.faults = Faults(crash_after_commit_rate=1.0, paths=("sales/order",))
    with pytest.raises(SimulatedCrash):
        connector().sync_orders()  # T0+1000 s: re-send commits, the worker dies
    sandbox.orderwise.injector.faults = Faults()
    restarted = connector().sync_orders()  # at once, the session has not run yet
    assert restarted.awaiting_visibility == 1 and restarted.pushed == 0
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-301": 1}
    record = store.get("order:301")
    assert record is not None and record.state == State.SENT
    sandbox.orderwise.process_session()
    clock.advance(5)
    assert connector().sync_orders().adopted == 1
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-301": 1}


def test_a_batch_lookup_is_not_trusted_past_the_grace_it_was_asked_in() -> None:
    """The grace runs to the time of the lookup: a batch looked up just inside the grace and
    worked through slowly must not re-send an order that became visible in the meantime."""
    clock = VirtualClock(frozen=True)
    sandbox = stocked_sandbox()
    sandbox.orderwise.queue_orders = True
    store = MemoryStore(clock=clock.utcnow)
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=900)
    connector = Connector.for_sandbox(
        sandbox, store=store, worker_id="w1", flows=flows, clock=clock.utcnow
    )
    add_orders(sandbox, [402])
    sandbox.orderwise.injector.faults = Faults(
        timeout_after_commit_rate=1.0, paths=("sales/order",)
    )
    assert connector.sync_orders().ambiguous == 1  # committed at T0, hidden until the session
    sandbox.orderwise.injector.faults = Faults()
    add_orders(sandbox, [401])
    connector.ingest_webhook(
        json.dumps({"key": "e-401", "type": "order-confirmed", "payload": {"id": 401}})
    )  # due at T0 too, and sorted first
    clock.advance(899)  # the batch lookup is asked 1 s before 402's grace ends: negative
    real_get_order = connector.scayle.get_order

    def slow_get_order(order_id: int, **kwargs: Any) -> Any:
        if order_id == 401:
            clock.advance(2)  # 401 takes a while; meanwhile the session imports 402
            sandbox.orderwise.process_session()
        return real_get_order(order_id, **kwargs)

    connector.scayle.get_order = slow_get_order  # type: ignore[method-assign]
    result = connector.sync_orders(poll=False)
    assert result.pushed == 1 and result.awaiting_visibility == 1
    clock.advance(5)
    assert connector.sync_orders(poll=False).adopted == 1
    assert orderwise_orders_per_reference(sandbox) == {"SCAYLE-401": 1, "SCAYLE-402": 1}
