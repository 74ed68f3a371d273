"""Several workers on PostgreSQL push orders under faults: each order reaches OrderWise once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest

from flow_helpers import add_orders, orderwise_orders_per_reference, stocked_sandbox
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Faults, SimulatedCrash
from scayle_orderwise.store import PostgresStore, State

FLOWS = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0)


def test_concurrent_workers_on_postgres_push_each_order_once(
    pg_dsn: str, pg_schema: Callable[[], str]
) -> None:
    schema = pg_schema()
    sandbox = stocked_sandbox(seed=31)
    ids = add_orders(sandbox, range(20_001, 20_151))
    sandbox.faults = Faults(
        error_rate=0.04, timeout_after_commit_rate=0.05, crash_after_commit_rate=0.02, seed=9
    )
    errors: list[BaseException] = []

    def worker(name: str) -> None:
        for _ in range(5):
            store = PostgresStore(pg_dsn, schema=schema)
            try:
                Connector.for_sandbox(
                    sandbox, store=store, worker_id=name, flows=FLOWS
                ).sync_orders()
            except SimulatedCrash:
                pass  # the worker "dies"; the loop restarts it with the same id
            except BaseException as exc:  # pragma: no cover - surfaced below
                errors.append(exc)
            finally:
                store.close()

    threads = [threading.Thread(target=worker, args=(f"machine-{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sandbox.faults = Faults()
    for i in range(4):
        with PostgresStore(pg_dsn, schema=schema) as store:
            Connector.for_sandbox(
                sandbox, store=store, worker_id=f"machine-{i}", flows=FLOWS
            ).sync_orders()

    per_ref = orderwise_orders_per_reference(sandbox)
    assert {r: n for r, n in per_ref.items() if n > 1} == {}
    assert [i for i in ids if per_ref[f"SCAYLE-{i}"] != 1] == []
    with PostgresStore(pg_dsn, schema=schema) as store:
        assert store.counts(kind="order")[State.ACKNOWLEDGED] == len(ids)
        owners = {t.owner for i in ids for t in store.get(f"order:{i}").history if t.owner}  # type: ignore[union-attr]
    assert len(owners) > 1  # the work really was shared


@pytest.mark.parametrize("seed", [3, 17, 41])
def test_six_workers_never_duplicate_while_orderwise_hides_new_orders(
    pg_dsn: str, pg_schema: Callable[[], str], seed: int
) -> None:
    """Issue 11 §2 chaos: OrderWise imports API orders through a session that runs every second,
    so a create stays invisible to lookups for a while; 6 workers on one PostgreSQL ledger push
    under 5xx answers, lost answers and crashes, with re-sends after a 3-second grace."""
    schema = pg_schema()
    sandbox = stocked_sandbox(seed=seed)
    sandbox.orderwise.queue_orders = True
    sandbox.orderwise.session_interval = timedelta(seconds=1)
    ids = add_orders(sandbox, range(30_001, 30_121))
    flows = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=3, lease_seconds=30)
    sandbox.faults = Faults(
        error_rate=0.15, timeout_after_commit_rate=0.08, crash_after_commit_rate=0.1, seed=seed
    )
    errors: list[BaseException] = []
    crashes: list[str] = []

    def passes(name: str, until: float) -> None:
        while time.monotonic() < until:
            store = PostgresStore(pg_dsn, schema=schema, clock=sandbox.clock.utcnow)
            try:
                Connector.for_sandbox(
                    sandbox, store=store, worker_id=name, flows=flows
                ).sync_orders()
            except SimulatedCrash:
                crashes.append(name)  # the worker "dies"; the loop restarts it with the same id
            except BaseException as exc:  # pragma: no cover - surfaced below
                errors.append(exc)
                return
            finally:
                store.close()
            time.sleep(0.05)

    def run_workers(seconds: float) -> None:
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=passes, args=(f"machine-{i}", until)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    run_workers(4.0)
    sandbox.faults = Faults()
    run_workers(4.0)
    assert errors == []
    sandbox.orderwise.process_session()

    per_ref = orderwise_orders_per_reference(sandbox)
    assert {r: n for r, n in per_ref.items() if n > 1} == {}
    assert [i for i in ids if per_ref[f"SCAYLE-{i}"] != 1] == []
    assert crashes, "no worker crashed: the faults did not bite"
    with PostgresStore(pg_dsn, schema=schema) as store:
        assert store.counts(kind="order")[State.ACKNOWLEDGED] == len(ids)
