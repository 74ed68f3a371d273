"""The rate ledger's semantics (``store.rate_ledger``): windows, leases, SCAYLE's feedback, blocks.

The last tests simulate workers against a fixed-window server: workers with a budget each bounce
off SCAYLE's limit, workers sharing one ledger never do, and still use what the limit allows.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scayle_orderwise._http import RateBudget
from scayle_orderwise.store.rate_ledger import (
    BudgetPolicy,
    BudgetRow,
    MemoryRateLedger,
    apply_acquire,
    apply_block,
    apply_observe,
    wait_of,
)
from scayle_orderwise.store.shared_budget import SharedRateBudget
from scayle_orderwise.testing.rate_simulation import simulate

T0 = 1_000_000.0
POLICY = BudgetPolicy(slack=2.0, lease_seconds=0.5)
DEFAULT = (10, 60.0)


def take(row: BudgetRow | None, now: float, want: int = 1, policy: BudgetPolicy = POLICY):  # type: ignore[no-untyped-def]
    return apply_acquire(row, "s", want=want, now=now, policy=policy, default=DEFAULT)


def drain(row: BudgetRow | None, now: float) -> tuple[BudgetRow, int, float]:
    total = 0
    while True:
        grant = take(row, now, want=3)
        row = grant.row
        if not grant.units:
            return row, total, grant.wait
        total += grant.units


def test_grants_up_to_the_limit_then_waits_for_the_window() -> None:
    row, granted, wait = drain(None, T0)
    assert granted == 10
    assert wait == pytest.approx(62.0)  # window + slack: SCAYLE's window opens when a call arrives
    assert row.used == 10 and row.window_end == pytest.approx(T0 + 62.0)


def test_headroom_is_left_unused() -> None:
    grant = apply_acquire(
        None, "s", want=50, now=T0, policy=BudgetPolicy(headroom=3), default=DEFAULT
    )
    assert grant.units == 7


def test_a_lease_is_spent_before_the_closing_slack_and_within_lease_seconds() -> None:
    grant = take(None, T0, want=4)
    assert (grant.units, grant.valid_until) == (4, T0 + 0.5)
    late = take(grant.row, T0 + 59.8, want=4)  # 2.2 s before the window ends
    assert late.units == 4 and late.valid_until == pytest.approx(T0 + 60.0)


def test_the_closing_slack_grants_one_at_a_time_and_carries_them_over() -> None:
    row = take(None, T0, want=2).row
    for at in (60.5, 61.0, 61.5):
        grant = take(row, T0 + at, want=5)
        assert grant.units == 1 and grant.valid_until == T0 + at
        row = grant.row
    after = take(row, T0 + 62.0, want=100)
    assert after.units == 10 - 3  # the three late calls may reach SCAYLE in its next window
    assert after.window_seq == row.window_seq + 1


def test_unspent_units_come_back_in_the_same_window_only() -> None:
    first = take(None, T0, want=5)
    back = apply_acquire(
        first.row,
        "s",
        want=1,
        now=T0 + 1,
        policy=POLICY,
        default=DEFAULT,
        give_back=4,
        give_back_seq=first.window_seq,
    )
    assert back.row.used == 2
    stale = apply_acquire(
        first.row,
        "s",
        want=1,
        now=T0 + 70,
        policy=POLICY,
        default=DEFAULT,
        give_back=4,
        give_back_seq=first.window_seq,
    )
    assert stale.row.used == 1  # a new window: nothing of the old lease is subtracted


def test_an_answer_sets_the_limit_and_counts_what_scayle_counted() -> None:
    row = take(None, T0).row
    seen = apply_observe(row, "s", limit=8, remaining=2, reset_after=58, now=T0 + 1, policy=POLICY)
    assert (seen.limit, seen.used, seen.aligned) == (8, 6, True)
    assert seen.window_end == pytest.approx(T0 + 59)  # SCAYLE's end, earlier than our estimate
    _, granted, wait = drain(seen, T0 + 2)
    assert granted == 2 and wait == pytest.approx(57)


def test_a_late_answer_from_an_ended_window_changes_nothing() -> None:
    row = take(None, T0).row
    row = apply_observe(row, "s", limit=10, remaining=9, reset_after=59, now=T0 + 1, policy=POLICY)
    fresh = take(row, T0 + 61).row  # the next window
    late = apply_observe(
        fresh, "s", limit=10, remaining=0, reset_after=1, now=T0 + 61.2, policy=POLICY
    )
    assert late == fresh


def test_scayle_moving_to_its_next_window_first_is_followed() -> None:
    row = take(None, T0, want=9).row  # ours ends at T0 + 62
    moved = apply_observe(
        row, "s", limit=10, remaining=9, reset_after=58, now=T0 + 61, policy=POLICY
    )
    assert moved.window_end == pytest.approx(T0 + 119)
    assert moved.window_seq == row.window_seq + 1
    assert moved.used == 1  # SCAYLE's count of its new window


def test_short_windows_are_not_aligned_by_whole_second_resets() -> None:
    row = apply_acquire(None, "s", want=1, now=T0, policy=BudgetPolicy(), default=(5, 1.0)).row
    seen = apply_observe(
        row, "s", limit=5, remaining=3, reset_after=1, now=T0 + 0.1, policy=BudgetPolicy()
    )
    assert seen.window_end == row.window_end and seen.used == 2 and not seen.aligned


def test_a_block_holds_every_call_until_it_ends() -> None:
    row = take(None, T0).row
    blocked = apply_block(row, "s", until=T0 + 5, now=T0 + 1, policy=POLICY)
    held = take(blocked, T0 + 2)
    assert held.units == 0 and held.wait == pytest.approx(3)
    assert wait_of(blocked, now=T0 + 2, policy=POLICY) == pytest.approx(3)
    assert take(blocked, T0 + 5).units == 1


def test_a_scope_without_a_known_limit_goes_until_an_answer_tells() -> None:
    grant = apply_acquire(None, "new", want=3, now=T0, policy=POLICY)
    assert grant.units == 3 and grant.row.limit is None
    assert wait_of(grant.row, now=T0, policy=POLICY) == 0.0


def test_times_from_another_clock_are_repaired_not_trusted() -> None:
    row = take(None, 1.7e9).row  # written with wall-clock time
    grant = take(row, 5_000.0)  # read by a budget on a monotonic clock
    assert grant.units == 1 and grant.row.window_end == pytest.approx(5_062.0)
    blocked = BudgetRow(scope="s", limit=10, blocked_until=1.7e9)
    assert take(blocked, 5_000.0).units == 1


def test_wait_of_changes_nothing_and_matches_acquire() -> None:
    row, _, wait = drain(None, T0)
    assert wait_of(row, now=T0 + 1, policy=POLICY) == pytest.approx(wait - 1)
    assert wait_of(row, now=T0 + 62, policy=POLICY) == 0.0
    assert wait_of(None, now=T0, policy=POLICY) == 0.0


# ------------------------------------------------------------------------------------ simulated


def _budgets(
    shared: bool, workers: int, limit: int, window: float, clock: list[float]
) -> list[RateBudget]:
    if not shared:
        return [RateBudget(clock=lambda: clock[0]) for _ in range(workers)]
    ledger = MemoryRateLedger()
    limits = {"ordersWrite": (limit, window)}
    return [SharedRateBudget(ledger, clock=lambda: clock[0], limits=limits) for _ in range(workers)]


def test_workers_with_a_budget_each_bounce_off_the_limit_and_sharing_one_does_not() -> None:
    """The 0.1.0 shape (8 workers, a budget each: 429s) against the shared ledger (none)."""
    outcomes = {}
    for shared in (False, True):
        clock = [0.0]
        budgets = _budgets(shared, 8, 300, 60.0, clock)
        outcomes[shared] = simulate(
            budgets, limit=300, window=60.0, duration=300, latency=0.1, seed=1, clock=clock
        )
    assert outcomes[False].refused > 0
    assert outcomes[True].refused == 0
    assert outcomes[True].accepted >= 0.95 * outcomes[True].feasible


@settings(max_examples=40, deadline=None)
@given(
    workers=st.sampled_from([1, 2, 3, 8, 16]),
    threads=st.sampled_from([1, 2]),
    limit=st.sampled_from([3, 10, 60, 300, 1000]),
    window=st.sampled_from([10.0, 60.0]),
    latency=st.sampled_from([0.01, 0.1, 0.5]),
    seed=st.integers(0, 10_000),
)
def test_shared_workers_never_exceed_the_limit_and_use_most_of_it(
    workers: int, threads: int, limit: int, window: float, latency: float, seed: int
) -> None:
    clock = [0.0]
    budgets = [b for b in _budgets(True, workers, limit, window, clock) for _ in range(threads)]
    outcome = simulate(
        budgets,
        limit=limit,
        window=window,
        duration=window * 5,
        latency=latency,
        seed=seed,
        clock=clock,
    )
    assert outcome.refused == 0
    assert outcome.accepted >= 0.8 * outcome.feasible


def test_headroom_at_or_above_the_limit_still_lets_a_call_through_each_window() -> None:
    # A headroom the tenant's limit does not cover (rate_headroom = 300 with ordersWrite 300, or a
    # tenant whose X-RateLimit-Limit is below the headroom) must not stall the scope forever.
    policy = BudgetPolicy(headroom=10, slack=2.0)
    grant = apply_acquire(None, "s", want=5, now=T0, policy=policy, default=DEFAULT)
    assert grant.units == 1
    assert wait_of(grant.row, now=T0, policy=policy) > 0
    later = apply_acquire(grant.row, "s", want=5, now=T0 + 62.0, policy=policy, default=DEFAULT)
    assert later.units == 1
