"""The flow scheduler: intervals, pacers, waking, the claim gate, stopping and releasing claims."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from flow_helpers import add_orders, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.config import ConnectorSettings, FlowSchedule, FlowSettings, ServiceSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.logs import configure_logging
from scayle_orderwise.service import FlowScheduler
from scayle_orderwise.service.passes import PassLog
from scayle_orderwise.service.scheduler import ClaimGate
from scayle_orderwise.store import MemoryStore, State
from scayle_orderwise.sync.context import SyncResult


def _connector(**schedules: FlowSchedule) -> Connector:
    off = FlowSchedule(enabled=False)
    service = ServiceSettings(
        **{
            "orders": off,
            "cancellations": off,
            "fulfilments": off,
            "inventory": off,
            "reconciliation": off,
            **schedules,
        }
    )
    settings = ConnectorSettings(
        flows=FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0), service=service
    )
    return Connector.for_sandbox(stocked_sandbox(), settings=settings)


def _wait(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def test_only_enabled_flows_run_and_each_pass_is_logged_in_the_ledger() -> None:
    connector = _connector(orders=FlowSchedule(interval_seconds=60))
    seen: list[tuple[str, bool]] = []
    scheduler = FlowScheduler(
        connector, on_pass=lambda flow, result, _s, error: seen.append((flow, error is None))
    )
    assert scheduler.flows == ["orders"]
    scheduler.start()
    try:
        assert _wait(lambda: len(seen) >= 1)
    finally:
        assert scheduler.stop(grace=5)
    assert seen == [("orders", True)]
    info = PassLog(connector.store).get("orders")
    assert info.last_ok is True and info.last_good_at is not None
    assert info.worker == connector.worker_id
    assert PassLog(connector.store).get("inventory").last_at is None


def test_the_pacer_decides_the_next_delay() -> None:
    connector = _connector(
        orders=FlowSchedule(interval_seconds=3600), inventory=FlowSchedule(interval_seconds=3600)
    )
    asked: list[tuple[str, float]] = []

    class Eager:
        def next_delay(self, result: SyncResult | None, interval: float) -> float:
            asked.append((result.flow if result else "-", interval))
            return 0.01

    passes: list[str] = []
    scheduler = FlowScheduler(
        connector, pacers={"inventory": Eager()}, on_pass=lambda f, *_: passes.append(f)
    )
    scheduler.start()
    try:
        assert _wait(lambda: passes.count("inventory") >= 5)
    finally:
        scheduler.stop(grace=5)
    assert passes.count("orders") == 1  # the fixed pacer waits its hour
    assert asked[0] == ("inventory", 3600.0)


def test_wake_runs_the_next_pass_at_once() -> None:
    connector = _connector(orders=FlowSchedule(interval_seconds=3600))
    sandbox_orders: list[str] = []
    scheduler = FlowScheduler(connector, on_pass=lambda f, *_: sandbox_orders.append(f))
    scheduler.start()
    try:
        assert _wait(lambda: len(sandbox_orders) == 1)
        scheduler.wake("orders")
        assert _wait(lambda: len(sandbox_orders) == 2, timeout=5)
        scheduler.wake("inventory")  # not scheduled: no-op
    finally:
        scheduler.stop(grace=5)


def test_a_failing_pass_is_recorded_and_the_loop_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    connector = _connector()
    from scayle_orderwise.errors import TransientError

    def broken(**_kwargs: object) -> SyncResult:
        raise TransientError("OrderWise not reachable (ConnectError)")

    monkeypatch.setattr(connector, "sync_orders", broken)
    errors: list[str | None] = []
    scheduler = FlowScheduler(
        connector,
        schedules={"orders": FlowSchedule(interval_seconds=0.01)},
        on_pass=lambda _f, _r, _s, error: errors.append(error),
    )
    scheduler.start()
    try:
        assert _wait(lambda: len(errors) >= 3)
    finally:
        scheduler.stop(grace=5)
    assert errors[0] == "TransientError: OrderWise not reachable (ConnectError)"
    info = PassLog(connector.store).get("orders")
    assert info.last_ok is False and info.last_good_at is None
    assert info.last_error == "TransientError: OrderWise not reachable (ConnectError)"


def test_claim_gate_refuses_new_claims_once_closed() -> None:
    store = MemoryStore()
    for n in range(3):
        store.ensure(f"order:{n}", kind="order", subject=str(n))
    gate = ClaimGate(store)
    assert len(gate.claim_next("order", owner="w", lease=timedelta(seconds=60), limit=1)) == 1
    gate.closed.set()
    assert gate.claim_next("order", owner="w", lease=timedelta(seconds=60)) == []
    assert gate.claim("order:2", owner="w", lease=timedelta(seconds=60)) is None
    assert gate.counts(kind="order")[State.PENDING] == 2  # everything else goes through


def test_stop_lets_a_pass_finish_its_claims_and_takes_no_new_work() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, range(9001, 9031))
    settings = ConnectorSettings(
        flows=FlowSettings(backoff_base_seconds=0, batch_size=5, order_poll=True)
    )
    connector = Connector.for_sandbox(sandbox, settings=settings)
    started = threading.Event()
    original = connector.orderwise.create_sales_order

    def slow_create(*args: object, **kwargs: object) -> object:
        started.set()
        time.sleep(0.05)
        return original(*args, **kwargs)

    connector.orderwise.create_sales_order = slow_create  # type: ignore[method-assign]
    scheduler = FlowScheduler(
        connector, schedules={"orders": FlowSchedule(interval_seconds=3600)}
    ).start()
    assert started.wait(10)
    assert scheduler.stop(grace=20) is True
    records = list(connector.store.records(kind="order"))
    states = {r.state for r in records}
    assert State.IN_FLIGHT not in states
    pushed = [r for r in records if r.state == State.ACKNOWLEDGED]
    assert 0 < len(pushed) < 30  # stopped mid-pass
    # Nothing lost: the same connector (its flows claim again once the scheduler stopped)
    # finishes the rest, each order exactly once.
    connector.orderwise.create_sales_order = original  # type: ignore[method-assign]
    assert connector.sync_orders()["pushed"] == 30 - len(pushed)
    assert set(orderwise_orders_per_reference(sandbox).values()) == {1}
    assert len(orderwise_orders_per_reference(sandbox)) == 30


def test_stop_releases_claims_of_a_pass_that_overruns_the_grace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connector = _connector()
    store = connector.store
    store.ensure("order:1", kind="order", subject="1")
    release = threading.Event()

    def stuck(**_kwargs: object) -> SyncResult:
        connector.context.store.claim(
            "order:1", owner=connector.worker_id, lease=timedelta(seconds=300)
        )
        release.wait(10)
        return SyncResult("orders")

    monkeypatch.setattr(connector, "sync_orders", stuck)
    scheduler = FlowScheduler(
        connector, schedules={"orders": FlowSchedule(interval_seconds=3600)}
    ).start()
    assert _wait(lambda: store.get("order:1").state == State.IN_FLIGHT)  # type: ignore[union-attr]
    try:
        assert scheduler.stop(grace=0.2) is False
    finally:
        release.set()
    record = store.get("order:1")
    assert record is not None and record.state == State.SENT  # looked up before any re-send
    assert record.may_have_been_sent
    assert "released at shutdown" in (record.reason or "")


def test_json_logs_name_order_flow_and_outcome() -> None:
    sandbox = stocked_sandbox()
    add_orders(sandbox, [9101])
    connector = Connector.for_sandbox(sandbox)
    stream = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    try:
        configure_logging("info", "json", stream)
        connector.sync_orders()
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    acknowledged = [x for x in lines if x.get("event") == "order.acknowledged"]
    assert len(acknowledged) == 1
    assert acknowledged[0]["order_id"] == 9101
    assert acknowledged[0]["flow"] == "order" and acknowledged[0]["outcome"] == "acknowledged"
    assert all(set(x) >= {"time", "level", "logger", "message"} for x in lines)


def test_a_burst_of_wakes_shares_one_pass_that_skips_the_poll() -> None:
    """Webhooks wake the orders flow: after ``wake_delay_seconds`` one pass pushes what a burst
    recorded, without walking SCAYLE's order list; the passes on the interval still poll."""
    connector = _connector(orders=FlowSchedule(interval_seconds=3600, wake_delay_seconds=0.3))
    polls: list[bool] = []
    real = connector.sync_orders

    def recording(*, poll: bool = True) -> SyncResult:
        polls.append(poll)
        return real(poll=poll)

    connector.sync_orders = recording  # type: ignore[method-assign]
    scheduler = FlowScheduler(connector).start()
    try:
        assert _wait(lambda: len(polls) == 1)  # the first pass, on the interval: it polls
        for _ in range(5):  # a burst of webhooks
            scheduler.wake("orders")
            time.sleep(0.02)
        assert _wait(lambda: len(polls) == 2)
        time.sleep(0.5)
        assert polls == [True, False]  # one woken pass for the whole burst, no poll in it
    finally:
        scheduler.stop(grace=5)
