"""Several workers on PostgreSQL push orders under faults: each order reaches OrderWise once."""

from __future__ import annotations

import threading
from collections.abc import Callable

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
