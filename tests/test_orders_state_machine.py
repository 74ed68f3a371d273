"""Hypothesis state machine over the whole orders flow (anchors.md §C.6 item 8).

Rules: orders arrive, webhooks (duplicated, out of order), passes by two workers, faults switched
on and off (timeouts before/after commit, 5xx, 429, crashes), restarts, time passing (also past
the re-send grace, so re-sends after a negative lookup happen), and OrderWise hiding new orders
until its e-commerce session runs (the session runs at least every ``SESSION_EVERY`` seconds,
shorter than the grace, as the operations manual requires). Invariant: OrderWise never holds more
than one sales order per SCAYLE order, hidden ones included; at the end, after calm passes, every
confirmed order is acknowledged exactly once.
"""

from __future__ import annotations

import contextlib
import json
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from flow_helpers import order_json, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Faults, SimulatedCrash
from scayle_orderwise.store import MemoryStore, State

FLOWS = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=60, lease_seconds=120)
SESSION_EVERY = 45  # seconds between runs of OrderWise's e-commerce session (< the grace)
FAULTS = st.builds(
    Faults,
    error_rate=st.sampled_from([0.0, 0.3]),
    timeout_before_rate=st.sampled_from([0.0, 0.3]),
    timeout_after_commit_rate=st.sampled_from([0.0, 0.3, 1.0]),
    rate_limit_rate=st.sampled_from([0.0, 0.3]),
    crash_after_commit_rate=st.sampled_from([0.0, 0.3]),
    seed=st.integers(0, 1000),
)


class OrdersMachine(RuleBasedStateMachine):
    @initialize(faults=FAULTS, queue=st.booleans())
    def setup(self, faults: Faults, queue: bool) -> None:
        self.sandbox = stocked_sandbox(seed=5)
        self.sandbox.orderwise.queue_orders = queue
        self.now = self.sandbox.clock.utcnow()
        self.last_session = self.now
        self.store = MemoryStore(clock=lambda: self.now)
        self.next_id = 1
        self.orders: list[int] = []
        for _ in range(2):
            self.new_order()
        self.sandbox.faults = faults

    def connector(self, worker: str) -> Connector:
        return Connector.for_sandbox(
            self.sandbox, store=self.store, worker_id=worker, flows=FLOWS, clock=lambda: self.now
        )

    @rule()
    def new_order(self) -> None:
        self.sandbox.scayle.add_order(order_json(self.next_id))
        self.orders.append(self.next_id)
        self.next_id += 1

    @precondition(lambda self: self.orders)
    @rule(data=st.data(), duplicate=st.booleans())
    def webhook(self, data: st.DataObject, duplicate: bool) -> None:
        order_id = data.draw(st.sampled_from(self.orders))
        body = json.dumps(
            {"key": f"evt-{order_id}", "type": "order-confirmed", "payload": {"id": order_id}}
        )
        for _ in range(2 if duplicate else 1):
            self.connector("w1").ingest_webhook(body)

    @rule(faults=FAULTS)
    def set_faults(self, faults: Faults) -> None:
        self.sandbox.faults = faults

    @rule()
    def calm(self) -> None:
        self.sandbox.faults = Faults()

    @rule(
        fault=st.sampled_from(
            ["error_rate", "timeout_after_commit_rate", "crash_after_commit_rate"]
        )
    )
    def creates_fail(self, fault: str) -> None:
        """Only the create fails (the lookup before it goes through): a 5xx, a lost answer after
        OrderWise committed, or the worker dying right after OrderWise committed."""
        self.sandbox.faults = Faults(**{fault: 1.0}, paths=("sales/order",))

    @rule(worker=st.sampled_from(["w1", "w2"]), poll=st.booleans())
    def sync(self, worker: str, poll: bool) -> None:
        # A SimulatedCrash is the worker dying mid-call; its claims stay in flight until it restarts.
        with contextlib.suppress(SimulatedCrash):
            self.connector(worker).sync_orders(poll=poll)

    @rule(queue=st.booleans())
    def session_queue(self, queue: bool) -> None:
        """OrderWise starts (or stops) hiding new orders until its session runs."""
        self.sandbox.orderwise.queue_orders = queue

    @rule()
    def session_runs(self) -> None:
        self.sandbox.orderwise.process_session()
        self.last_session = self.now

    @rule(seconds=st.sampled_from([1, 30, 61, 90, 300, 1000]))
    def time_passes(self, seconds: int) -> None:
        # 61 s and more pass the re-send grace: the next lookup decides whether to send again.
        self.now += timedelta(seconds=seconds)
        if self.now - self.last_session >= timedelta(seconds=SESSION_EVERY):
            self.sandbox.orderwise.process_session()
            self.last_session = self.now

    @invariant()
    def never_two_sales_orders(self) -> None:
        if not hasattr(self, "sandbox"):
            return
        per_ref = orderwise_orders_per_reference(self.sandbox)
        assert all(n <= 1 for n in per_ref.values()), per_ref

    def teardown(self) -> None:
        if not hasattr(self, "sandbox"):
            return
        self.sandbox.faults = Faults()
        self.sandbox.orderwise.queue_orders = False
        self.sandbox.orderwise.process_session()
        for _ in range(3):
            self.now += timedelta(seconds=FLOWS.lease_seconds + FLOWS.resend_grace_seconds + 1)
            for worker in ("w1", "w2"):
                self.connector(worker).sync_orders()
        per_ref = orderwise_orders_per_reference(self.sandbox)
        for order_id in self.orders:
            assert per_ref[f"SCAYLE-{order_id}"] == 1, (order_id, per_ref)
            record = self.store.get(f"order:{order_id}")
            assert record is not None and record.state == State.ACKNOWLEDGED, (order_id, record)


OrdersMachine.TestCase.settings = settings(
    max_examples=40,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestOrdersMachine = OrdersMachine.TestCase


class ResendMachine(RuleBasedStateMachine):
    """A narrow machine for the re-send path, small enough for Hypothesis to reach deep sequences:
    OrderWise hides new orders until its session runs (every ``SESSION_EVERY`` seconds); in a
    pass, the create may fail (a 5xx, a lost answer after OrderWise committed, or the worker dying
    after the commit and being restarted at once); time jumps past the grace.
    Invariant: never two sales orders for one SCAYLE order."""

    @initialize()
    def setup(self) -> None:
        self.sandbox = stocked_sandbox(seed=9)
        self.sandbox.orderwise.queue_orders = True
        self.now = self.sandbox.clock.utcnow()
        self.last_session = self.now
        self.store = MemoryStore(clock=lambda: self.now)
        self.next_id = 1
        self.new_order()

    def connector(self, worker: str) -> Connector:
        return Connector.for_sandbox(
            self.sandbox, store=self.store, worker_id=worker, flows=FLOWS, clock=lambda: self.now
        )

    @rule()
    def new_order(self) -> None:
        self.sandbox.scayle.add_order(order_json(self.next_id))
        self.next_id += 1

    @rule(
        worker=st.sampled_from(["w1", "w2"]),
        create_fails=st.sampled_from(
            [None, "error_rate", "timeout_after_commit_rate", "crash_after_commit_rate"]
        ),
    )
    def sync(self, worker: str, create_fails: str | None) -> None:
        if create_fails:
            self.sandbox.faults = Faults(**{create_fails: 1.0}, paths=("sales/order",))
        try:
            self.connector(worker).sync_orders()
        except SimulatedCrash:
            # A supervisor restarts the dead worker at once, before OrderWise's session runs.
            self.sandbox.faults = Faults()
            self.connector(worker).sync_orders()
        finally:
            self.sandbox.faults = Faults()

    @rule(seconds=st.sampled_from([5, 61]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)
        if self.now - self.last_session >= timedelta(seconds=SESSION_EVERY):
            self.sandbox.orderwise.process_session()
            self.last_session = self.now

    @invariant()
    def never_two_sales_orders(self) -> None:
        if hasattr(self, "sandbox"):
            per_ref = orderwise_orders_per_reference(self.sandbox)
            assert all(n <= 1 for n in per_ref.values()), per_ref


ResendMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestResendMachine = ResendMachine.TestCase
