"""PostgresStore against a real server (SCAYLE_ORDERWISE_STORE__URL; skipped when unset)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest

from scayle_orderwise.store import IdempotencyStore, State, StoreError
from scayle_orderwise.store.base import Clock
from scayle_orderwise.testing import ManualClock, StoreConformanceSuite

pytestmark = pytest.mark.postgres

LEASE = timedelta(seconds=60)


class TestPostgresStoreConformance(StoreConformanceSuite):
    @pytest.fixture(autouse=True)
    def _server(self, pg_dsn: str, pg_schema: Callable[[], str]) -> None:
        self.dsn = pg_dsn
        self.new_schema = pg_schema

    def make_store(self, clock: Clock) -> IdempotencyStore:
        from scayle_orderwise.store import PostgresStore

        return PostgresStore(self.dsn, schema=self.new_schema(), clock=clock)

    def reopen_store(self, store: IdempotencyStore, clock: Clock) -> IdempotencyStore:
        from scayle_orderwise.store import PostgresStore

        assert isinstance(store, PostgresStore)
        return PostgresStore(
            store.dsn, schema=store.schema, table_prefix=store.table_prefix, clock=clock
        )


def test_concurrent_workers_claim_each_record_exactly_once(
    pg_dsn: str, pg_schema: Callable[[], str]
) -> None:
    """Eight workers, each with its own PostgresStore, drain 200 records with claim_next."""
    from scayle_orderwise.store import PostgresStore

    schema = pg_schema()
    setup = PostgresStore(pg_dsn, schema=schema)
    for i in range(200):
        setup.ensure(f"order:{i}", kind="order", subject=str(i))
    workers = 8
    barrier = threading.Barrier(workers)
    results: list[list[str]] = [[] for _ in range(workers)]
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with PostgresStore(pg_dsn, schema=schema) as store:
                barrier.wait()
                while batch := store.claim_next("order", owner=f"w{i}", lease=LEASE, limit=5):
                    for record in batch:
                        assert record.owner == f"w{i}" and record.attempts == 1
                        store.transition(
                            record.key, State.ACKNOWLEDGED, owner=f"w{i}", external_id=record.key
                        )
                        results[i].append(record.key)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    claimed = Counter(key for keys in results for key in keys)
    assert len(claimed) == 200
    assert set(claimed.values()) == {1}
    assert sum(1 for keys in results if keys) > 1, "the work should spread over workers"
    assert setup.counts()[State.ACKNOWLEDGED] == 200
    setup.close()


def test_schema_creation_races_safely(pg_dsn: str, pg_schema: Callable[[], str]) -> None:
    from scayle_orderwise.store import PostgresStore

    schema = pg_schema()
    barrier = threading.Barrier(6)
    errors: list[BaseException] = []

    def first_use() -> None:
        try:
            barrier.wait()
            with PostgresStore(pg_dsn, schema=schema) as store:
                store.ensure("order:1", kind="order", subject="1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=first_use) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with PostgresStore(pg_dsn, schema=schema) as store:
        record = store.get("order:1")
        assert record is not None and len(record.history) == 1


def test_table_prefix_isolates_ledgers(pg_dsn: str, pg_schema: Callable[[], str]) -> None:
    from scayle_orderwise.store import PostgresStore

    schema = pg_schema()
    with (
        PostgresStore(pg_dsn, schema=schema, table_prefix="a_") as a,
        PostgresStore(pg_dsn, schema=schema, table_prefix="b_") as b,
    ):
        a.ensure("order:1", kind="order", subject="1")
        assert b.get("order:1") is None
        assert a.get("order:1") is not None


def test_records_pages_and_repr_hides_the_dsn(pg_dsn: str, pg_schema: Callable[[], str]) -> None:
    from scayle_orderwise.store import PostgresStore

    clock = ManualClock()
    with PostgresStore(pg_dsn, schema=pg_schema(), clock=clock, page_size=4) as store:
        keys = []
        for i in range(15):
            keys.append(f"order:{i:02d}")
            store.ensure(keys[-1], kind="order", subject=str(i))
            if i % 2:
                clock.advance(1)
        assert [r.key for r in store.records(kind="order")] == keys
        assert pg_dsn not in repr(store) and "postgresql://" not in repr(store)


def test_unreachable_server_is_a_store_error() -> None:
    from scayle_orderwise.store import PostgresStore

    store = PostgresStore(
        "postgresql://nobody:s3cret@127.0.0.1:1/none", connect_timeout=1, schema="x"
    )
    with pytest.raises(StoreError) as info:
        store.get("order:1")
    assert "s3cret" not in str(info.value)
