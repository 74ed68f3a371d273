"""SharedRateBudget: one SCAYLE rate budget per scope for every worker of a ledger.

Workers are budgets over one ledger (threads, handles or processes); the connector builds one
from its store (``from_settings``, ``for_sandbox``) and falls back to a budget per process for a
store that cannot share.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from flow_helpers import order_json
from scayle_orderwise._http import RateBudget
from scayle_orderwise.config import ConnectorSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import RateLimitedError, StoreError
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.sandbox.clock import VirtualClock
from scayle_orderwise.store import MemoryStore, SqliteStore
from scayle_orderwise.store.rate_ledger import MemoryRateLedger
from scayle_orderwise.store.rate_ledger_sqlite import SqliteRateLedger
from scayle_orderwise.store.shared_budget import SharedRateBudget

LIMITS = {"ordersWrite": (10, 60.0)}
T0 = 1_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def headers(limit: int, remaining: int, reset: int, scope: str = "ordersWrite") -> httpx.Headers:
    return httpx.Headers(
        {
            "X-RateLimit-Scope": scope,
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
        }
    )


def pair(**options: Any) -> tuple[SharedRateBudget, SharedRateBudget, Clock]:
    clock = Clock()
    ledger = MemoryRateLedger()
    made = [SharedRateBudget(ledger, clock=clock, limits=LIMITS, **options) for _ in range(2)]
    return made[0], made[1], clock


def granted(budget: RateBudget, tries: int = 100) -> int:
    return sum(1 for _ in range(tries) if budget.reserve("ordersWrite") == 0.0)


def test_two_workers_share_one_limit() -> None:
    a, b, clock = pair(max_lease=1)
    assert granted(a, 6) == 6
    assert granted(b) == 4
    assert a.reserve("ordersWrite") == pytest.approx(62.0)
    clock.now += 62.0
    assert granted(b) == 10


def test_a_leased_block_left_unspent_goes_back_with_the_next_request() -> None:
    a, b, clock = pair(max_lease=4)
    assert granted(a, 6) == 6  # the last request leased a block: one unit is still unspent
    assert granted(b) == 3
    clock.now += 1.0  # a's block has expired; its next request gives the unit back
    assert granted(a) == 1


def test_a_budget_per_worker_lets_them_spend_the_limit_twice() -> None:
    """What 0.1.0 did: each worker paced itself alone (here: after one answer each)."""
    clock = Clock()
    a, b = RateBudget(clock=clock), RateBudget(clock=clock)
    for budget in (a, b):
        budget.update(headers(10, 10, 60))
    assert granted(a) + granted(b) == 20


def test_leased_blocks_keep_the_ledger_off_the_hot_path() -> None:
    clock = Clock()
    budget = SharedRateBudget(MemoryRateLedger(), clock=clock, limits={"stocksWrite": (2500, 60)})
    for _ in range(200):
        assert budget.reserve("stocksWrite") == 0.0
        clock.now += 0.005  # 200 calls a second, as a busy stock pass
    assert budget.ledger_calls <= 30
    row = budget.ledger.read("stocksWrite")
    assert row is not None and 200 <= row.used <= 210  # at most one unspent block is counted


def test_a_429_seen_by_one_worker_holds_the_others() -> None:
    a, b, clock = pair()
    assert b.reserve("ordersWrite") == 0.0
    a.exhaust("ordersWrite", 7.0)
    assert b.peek("ordersWrite") == pytest.approx(7.0)
    assert b.reserve("ordersWrite") == pytest.approx(7.0)
    clock.now += 7.0
    assert b.reserve("ordersWrite") == 0.0


def test_a_429_waits_at_least_a_second() -> None:
    a, b, _ = pair()
    a.exhaust("ordersWrite", 0.0)  # X-RateLimit-Reset counts whole seconds: "0" is < 1 s
    assert b.reserve("ordersWrite") == pytest.approx(1.0)


def test_peek_takes_nothing() -> None:
    a, b, _ = pair()
    assert [a.peek("ordersWrite") for _ in range(20)] == [0.0] * 20
    assert granted(b) == 10
    assert a.peek("ordersWrite") == pytest.approx(62.0)
    assert a.peek(None) == 0.0


def test_scayles_answers_reach_every_worker() -> None:
    a, b, _ = pair()
    a.reserve("ordersWrite")
    a.update(headers(limit=6, remaining=3, reset=50))  # another application used two
    state = b.state("ordersWrite")
    assert state is not None and (state.limit, state.remaining) == (6, 3)
    assert granted(b) == 3


def test_answers_reach_the_ledger_only_when_they_teach_something() -> None:
    clock = Clock()
    budget = SharedRateBudget(MemoryRateLedger(), clock=clock, limits={"ordersRead": (1000, 60)})
    budget.reserve("ordersRead")
    budget.update(headers(1000, 999, 60, scope="ordersRead"))  # aligns the window: told
    calls = budget.ledger_calls
    for n in range(2, 20):
        budget.update(headers(1000, 1000 - n, 60, scope="ordersRead"))
    assert budget.ledger_calls == calls  # same window, plenty left: nothing to tell
    budget.update(headers(1000, 50, 60, scope="ordersRead"))  # little left: told
    assert budget.ledger_calls == calls + 1
    budget.update(headers(900, 800, 60, scope="ordersRead"))  # a new limit: told
    assert budget.ledger_calls == calls + 2


def test_the_scope_named_by_scayle_wins_over_the_guess() -> None:
    a, b, _ = pair()
    a.update(headers(5, 0, 30, scope="ordersWrite"), scope_hint="myGuess")
    assert a.reserve("myGuess") == pytest.approx(30.0)
    assert b.peek("ordersWrite") == pytest.approx(30.0)


def test_a_call_still_unanswered_when_its_window_ends_counts_in_the_next() -> None:
    a, _, clock = pair(max_lease=1)
    assert a.reserve_tracked("ordersWrite") == (0.0, True)
    clock.now += 62.0  # the window has ended; the call may reach SCAYLE only now
    assert granted(a) == 9
    a.release("ordersWrite")
    assert a.reserve_tracked(None) == (0.0, False)


def test_a_call_answered_in_the_last_moments_counts_in_the_next_window() -> None:
    late, _, clock = pair(max_lease=1)
    late.reserve_tracked("ordersWrite")
    clock.now += 61.0  # within the 2 s of slack before the window ends
    late.release("ordersWrite")
    clock.now += 1.0
    assert granted(late) == 9

    early, _, clock = pair(max_lease=1)
    early.reserve_tracked("ordersWrite")
    clock.now += 1.0
    early.release("ordersWrite")  # answered well inside its window
    clock.now += 61.0
    assert granted(early) == 10


def test_late_calls_are_counted_once() -> None:
    a, _, clock = pair(max_lease=1)
    a.reserve_tracked("ordersWrite")
    clock.now += 62.0
    assert a.reserve("ordersWrite") == 0.0  # carries the unanswered call into this window
    a.release("ordersWrite")  # answered now: already counted, not again
    clock.now += 62.0
    assert granted(a) == 10


def _fixed_time() -> float:
    return T0


def _drain_in_process(path: str) -> int:
    budget = SharedRateBudget(SqliteRateLedger(path), clock=_fixed_time, limits=LIMITS)
    try:
        return granted(budget)
    finally:
        budget.close()


def test_processes_on_one_sqlite_file_share_one_limit(tmp_path: Path) -> None:
    path = str(tmp_path / "ledger.db")
    SqliteStore(path).close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        counts = pool.map(_drain_in_process, [path] * 4)
    assert sum(counts) == 10


def _reference_writes(budgets: list[RateBudget], sandbox: Sandbox, rounds: int) -> int:
    """Each worker writes a reference back per round (round-robin); returns the 429s seen."""
    clients = [sandbox.scayle_client(budget=budget, max_retries=0) for budget in budgets]
    refused = 0
    for n in range(rounds):
        for w, client in enumerate(clients):
            try:
                client.set_reference_key(5000 + n * len(clients) + w, f"OW-{n}-{w}")
            except RateLimitedError:
                refused += 1
    return refused


def _limited_sandbox(orders: int) -> Sandbox:
    sandbox = Sandbox(
        clock=VirtualClock(frozen=True), scayle_options={"rate_limits": {"ordersWrite": 10}}
    )
    for n in range(orders):
        sandbox.scayle.add_order(order_json(5000 + n))
    return sandbox


def test_workers_of_one_sqlite_ledger_stay_under_scayles_limit(tmp_path: Path) -> None:
    """Three workers (each its own store handle, as three processes) write 36 references back
    against a limit of 10 a minute: with a budget each they bounce off SCAYLE; sharing the
    ledger's budget none is refused and every reference is written."""
    apart = _limited_sandbox(36)
    per_worker: list[RateBudget] = [RateBudget(clock=apart.clock.monotonic) for _ in range(3)]
    assert _reference_writes(per_worker, apart, 12) > 0

    shared = _limited_sandbox(36)
    path = tmp_path / "ledger.db"
    stores = [SqliteStore(path) for _ in range(3)]
    budgets: list[RateBudget] = []
    for store in stores:
        budget = SharedRateBudget.for_store(store, clock=shared.clock.monotonic)
        assert budget is not None
        budgets.append(budget)
    assert _reference_writes(budgets, shared, 12) == 0
    assert [code for _, _, code in shared.scayle.requests].count(429) == 0
    assert all(shared.scayle.orders[5000 + n].get("referenceKey") for n in range(36))
    for store in stores:
        store.close()


class PlainStore:
    """A user's own store: the ledger protocol, without a rate ledger."""

    def __init__(self) -> None:
        self._inner = MemoryStore()

    def __getattr__(self, name: str) -> Any:
        if name == "open_rate_ledger":
            raise AttributeError(name)
        return getattr(self._inner, name)


def test_for_sandbox_shares_the_budget_through_the_store(tmp_path: Path) -> None:
    sandbox = Sandbox()
    connector = Connector.for_sandbox(sandbox, store=SqliteStore(tmp_path / "l.db"))
    budget = connector.scayle.budget
    assert isinstance(budget, SharedRateBudget)
    assert isinstance(budget.ledger, SqliteRateLedger)
    connector.close()
    with pytest.raises(StoreError):
        budget.ledger.read("ordersWrite")  # closed with the connector

    assert isinstance(Connector.for_sandbox(sandbox).scayle.budget, SharedRateBudget)
    plain = Connector.for_sandbox(sandbox, store=PlainStore())  # type: ignore[arg-type]
    assert plain.scayle.budget is sandbox.scayle_budget
    apart = Connector.for_sandbox(
        sandbox,
        settings=ConnectorSettings(scayle={"rate_budget": "process"}),  # type: ignore[arg-type]
    )
    assert apart.scayle.budget is sandbox.scayle_budget


def _settings(store_url: str, **scayle: Any) -> ConnectorSettings:
    sandbox = Sandbox()
    exports = sandbox.orderwise.export_definitions
    values: Mapping[str, Any] = {
        "scayle": {
            "base_url": "https://acme-live.example/api/admin/v1",
            "token": "t" * 8,
            **scayle,
        },
        "orderwise": {
            "api_root": "https://ow.example/OWAPI",
            "username": "u",
            "password": "p" * 8,
            "export_definitions": {
                "order_changes": exports.order_changes,
                "order_by_reference": exports.order_by_reference,
                "stock_changes": exports.stock_changes,
                "order_details": exports.order_details,
            },
        },
        "store": {"url": store_url},
    }
    return ConnectorSettings.model_validate(values)


def test_from_settings_shares_the_budget_when_the_store_can(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    with Connector.from_settings(_settings(url, rate_headroom=5)) as connector:
        budget = connector.scayle.budget
        assert isinstance(budget, SharedRateBudget)
        assert budget.policy.headroom == 5
        assert budget.ledger.read("ordersWrite") is None
        budget.reserve("ordersWrite")
        row = budget.ledger.read("ordersWrite")
        assert row is not None and (row.limit, row.window) == (300, 60.0)  # SCAYLE's table

    custom = Connector.from_settings(_settings("memory://"), store=PlainStore())  # type: ignore[arg-type]
    assert type(custom.scayle.budget) is RateBudget
    apart = Connector.from_settings(_settings(url, rate_budget="process"))
    assert type(apart.scayle.budget) is RateBudget
    apart.close()


def test_settings_refuse_unknown_budget_modes() -> None:
    from scayle_orderwise.errors import ConfigError

    with pytest.raises(ConfigError, match="rate_budget"):
        ConnectorSettings.load(None, scayle={"rate_budget": "global"})


def test_a_budget_per_process_peeks_too() -> None:
    clock = Clock()
    budget = RateBudget(clock=clock)
    assert budget.peek("ordersWrite") == 0.0  # nothing known yet
    budget.update(headers(limit=3, remaining=1, reset=20))
    assert budget.peek("ordersWrite") == 0.0
    assert budget.reserve("ordersWrite") == 0.0
    assert budget.peek("ordersWrite") == pytest.approx(20.0)
    assert budget.peek("ordersWrite") == pytest.approx(20.0)  # peeking took nothing
    clock.now += 20.0
    assert budget.peek("ordersWrite") == 0.0
    assert budget.peek(None) == 0.0


def test_a_429_without_timing_holds_for_a_second() -> None:
    a, b, _ = pair()
    a.exhaust("ordersWrite", None)
    assert b.peek("ordersWrite") == pytest.approx(1.0)


def test_rate_headroom_holds_for_a_budget_per_process_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    apart = Connector.from_settings(_settings(url, rate_budget="process", rate_headroom=5))
    custom = Connector.from_settings(_settings("memory://", rate_headroom=5), store=PlainStore())  # type: ignore[arg-type]
    try:
        for connector in (apart, custom):
            budget = connector.scayle.budget
            assert type(budget) is RateBudget
            budget.update(headers(limit=10, remaining=6, reset=30))
            assert budget.reserve("ordersWrite") == 0.0  # 5 left: one more, not more than 5
            assert budget.reserve("ordersWrite") > 0.0
    finally:
        apart.close()
        custom.close()


def test_workers_on_postgresql_share_windows_despite_clock_skew(
    pg_dsn: str, pg_schema: Any
) -> None:
    import time

    from scayle_orderwise.store.rate_ledger_postgres import PostgresRateLedger

    schema = pg_schema()
    limits = {"ordersWrite": (5, 60.0)}

    def skewed() -> float:
        return time.time() + 70.0

    on_time = SharedRateBudget(PostgresRateLedger(pg_dsn, schema=schema), limits=limits)
    ahead = SharedRateBudget(
        PostgresRateLedger(pg_dsn, schema=schema, clock=skewed), limits=limits, clock=skewed
    )
    try:
        assert granted(on_time, 20) == 5
        # A machine whose clock runs 70 s ahead must not see SCAYLE's current window as over.
        assert granted(ahead, 20) == 0
        assert 50.0 < ahead.peek("ordersWrite") < 65.0
    finally:
        on_time.close()
        ahead.close()


def test_from_settings_closes_what_it_opened_when_it_fails_later(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mapping that fails after the ledger and the budget were opened must not leak them (a
    service retrying its start-up would run out of database connections)."""
    import scayle_orderwise.connector as connector_module
    from scayle_orderwise.errors import ConfigError

    opened: list[Any] = []
    closed: list[str] = []
    real_open_store = connector_module.open_store

    def spying_open_store(url: str, **kwargs: Any) -> Any:
        store = real_open_store(url, **kwargs)
        opened.append(store)
        real_close = store.close
        store.close = lambda: (closed.append("store"), real_close())
        return store

    monkeypatch.setattr(connector_module, "open_store", spying_open_store)
    real_budget_close = SharedRateBudget.close
    monkeypatch.setattr(
        SharedRateBudget, "close", lambda self: (closed.append("budget"), real_budget_close(self))
    )

    def broken_mapping(self: ConnectorSettings) -> Any:
        raise ConfigError("[mapping] is broken")

    monkeypatch.setattr(ConnectorSettings, "mapping_config", broken_mapping)
    with pytest.raises(ConfigError, match="mapping"):
        Connector.from_settings(_settings(f"sqlite:///{tmp_path / 'ledger.db'}"))
    assert len(opened) == 1
    assert sorted(closed) == ["budget", "store"]
