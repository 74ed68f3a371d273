"""Hypothesis state machine over the whole orders flow (anchors.md §C.6 item 8).

Rules: orders arrive, webhooks (duplicated, out of order), passes by two workers, faults switched
on and off (timeouts before/after commit, 5xx, 429, crashes), restarts, time passing. Invariant:
OrderWise never holds more than one sales order per SCAYLE order; at the end, after calm passes,
every confirmed order is acknowledged exactly once.
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
    @initialize(faults=FAULTS)
    def setup(self, faults: Faults) -> None:
        self.sandbox = stocked_sandbox(seed=5)
        self.now = self.sandbox.clock.utcnow()
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

    @rule(worker=st.sampled_from(["w1", "w2"]), poll=st.booleans())
    def sync(self, worker: str, poll: bool) -> None:
        # A SimulatedCrash is the worker dying mid-call; its claims stay in flight until it restarts.
        with contextlib.suppress(SimulatedCrash):
            self.connector(worker).sync_orders(poll=poll)

    @rule(seconds=st.sampled_from([1, 30, 90, 300]))
    def time_passes(self, seconds: int) -> None:
        self.now += timedelta(seconds=seconds)

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
