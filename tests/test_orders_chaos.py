"""Chaos: a few hundred orders under mixed faults and crashes; zero duplicates, zero lost orders."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from flow_helpers import add_orders, order_json, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Faults, Sandbox, SimulatedCrash
from scayle_orderwise.store import IdempotencyStore, SqliteStore, State

FLOWS = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0, lease_seconds=300)
MIXED = Faults(
    error_rate=0.05,
    timeout_before_rate=0.05,
    timeout_after_commit_rate=0.05,
    rate_limit_rate=0.05,
    crash_after_commit_rate=0.03,
    seed=11,
)
BAD_ORDERS = {90001: "SKU-GHOST-1", 90002: "SKU-GHOST-2"}


def plant(sandbox: Sandbox, count: int) -> list[int]:
    ids = add_orders(sandbox, range(10_001, 10_001 + count))
    for order_id, sku in BAD_ORDERS.items():
        sandbox.scayle.add_order(order_json(order_id, lines=[(sku, 1999, 1, "0.20")]))
    return ids


def run_until_settled(
    sandbox: Sandbox, make_store: Callable[[], IdempotencyStore], workers: list[str]
) -> int:
    """Run passes under faults, restarting crashed workers, then calm passes; returns crashes seen."""
    crashes = 0
    for round_no in range(12):
        worker = workers[round_no % len(workers)]
        try:
            Connector.for_sandbox(
                sandbox, store=make_store(), worker_id=worker, flows=FLOWS
            ).sync_orders()
        except SimulatedCrash:
            crashes += 1
    sandbox.faults = Faults()
    # Reference write-backs that waited for SCAYLE's ordersWrite budget come due again.
    sandbox.clock.advance(FLOWS.lease_seconds)
    for worker in workers * 2:  # each worker restarts once more and takes back its own claims
        Connector.for_sandbox(
            sandbox, store=make_store(), worker_id=worker, flows=FLOWS
        ).sync_orders()
    return crashes


def assert_settled(sandbox: Sandbox, store: IdempotencyStore, ids: list[int]) -> None:
    per_ref = orderwise_orders_per_reference(sandbox)
    duplicates = {ref: n for ref, n in per_ref.items() if n > 1}
    assert duplicates == {}
    lost = [i for i in ids if per_ref[f"SCAYLE-{i}"] != 1]
    assert lost == []
    for order_id in ids:
        record = store.get(f"order:{order_id}")
        assert record is not None and record.state == State.ACKNOWLEDGED, (
            order_id,
            record and record.state,
        )
        assert sandbox.scayle.orders[order_id]["referenceKey"] == f"SCAYLE-{order_id}"
    for order_id, sku in BAD_ORDERS.items():
        record = store.get(f"order:{order_id}")
        assert record is not None and record.state == State.QUARANTINED
        assert sku in (record.reason or "")


def test_chaos_sqlite_single_process(tmp_path: Path) -> None:
    sandbox = stocked_sandbox(seed=21)
    ids = plant(sandbox, 300)
    sandbox.faults = MIXED
    path = tmp_path / "ledger.db"
    crashes = run_until_settled(
        sandbox, lambda: SqliteStore(path, clock=sandbox.clock.utcnow), ["w1", "w2"]
    )
    injected = sandbox.injected
    assert (
        crashes > 0 and injected.get("timeout_after_commit", 0) > 0 and injected.get("error", 0) > 0
    )
    assert_settled(sandbox, SqliteStore(path, clock=sandbox.clock.utcnow), ids)


def test_chaos_concurrent_threads_share_one_sqlite_ledger(tmp_path: Path) -> None:
    sandbox = stocked_sandbox(seed=22)
    ids = plant(sandbox, 200)
    sandbox.faults = Faults(
        error_rate=0.05, timeout_after_commit_rate=0.05, rate_limit_rate=0.05, seed=3
    )
    path = tmp_path / "ledger.db"
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        try:
            for _ in range(4):
                Connector.for_sandbox(
                    sandbox,
                    store=SqliteStore(path, clock=sandbox.clock.utcnow),
                    worker_id=name,
                    flows=FLOWS,
                ).sync_orders()
        except BaseException as exc:  # pragma: no cover - surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(f"t{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sandbox.faults = Faults()
    Connector.for_sandbox(
        sandbox, store=SqliteStore(path, clock=sandbox.clock.utcnow), worker_id="t0", flows=FLOWS
    ).sync_orders()
    assert_settled(sandbox, SqliteStore(path, clock=sandbox.clock.utcnow), ids)
