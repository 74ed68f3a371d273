"""``SharedRateBudget``: one SCAYLE rate budget per scope for every worker of a ledger.

A drop-in for :class:`~scayle_orderwise._http.RateBudget` (same methods, plus :meth:`peek`)
whose counts live in a :class:`~scayle_orderwise.store.rate_ledger.RateLedger` on the store, so
N workers together stay under SCAYLE's ``ordersRead`` / ``ordersWrite`` / ``stocksWrite`` limits
instead of each spending the whole limit on its own. Build it from a store::

    budget = SharedRateBudget.for_store(store)          # None if the store cannot share
    client = ScayleClient(base_url, token, budget=budget)

To keep the ledger off the hot path a worker leases small blocks of units (sized by its own
recent demand, at most ``max_lease``) and spends them locally; the ledger is asked again only
when a block is spent or expires, and the unspent rest goes back with that request. A call whose
answer comes only after its window ended may have reached SCAYLE in the next window: the worker
counts it there with its next request. Answers'
``X-RateLimit-*`` headers reach the ledger only when they teach it something (a new limit, a
window it has not aligned, little left); a 429 always does.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from .._http import MIN_WAIT_AFTER_429, RateBudget, ScopeState, rate_limit_feedback
from ..scayle.rate_limits import scope_limits
from .rate_ledger import (
    BudgetPolicy,
    BudgetRow,
    Grant,
    RateLedger,
    ScopeDefault,
    SupportsRateLedger,
    align_tolerance,
    wait_of,
)

__all__ = ["SharedRateBudget"]

logger = logging.getLogger("scayle_orderwise.http")

LOW_WATER_SHARE = 10
"""An answer with at most ``limit / LOW_WATER_SHARE`` calls left always reaches the ledger."""


@attrs.define
class _Local:
    """What this process knows about one scope: its lease, the row as last seen, and its calls
    that may reach SCAYLE after their window ended."""

    units: int = 0
    valid_until: float = 0.0
    seq: int | None = None
    lease_end: float | None = None  # when the window of the lease ends
    blocked_until: float = 0.0
    row: BudgetRow | None = None
    demand: deque[float] = attrs.field(factory=deque)
    flights: deque[tuple[int, float | None]] = attrs.field(factory=deque)
    """Calls granted with ``reserve_tracked`` and not answered yet: (window, its end), oldest first."""
    late: Counter[int] = attrs.field(factory=Counter)
    """Calls answered only in their window's last moments, by window, not yet carried."""
    carried: set[int] = attrs.field(factory=set)
    """Windows whose unanswered calls already count in a newer window."""

    def carry(self) -> dict[int, int]:
        """Calls to count in a newer window, by the window they were granted in."""
        counts = Counter(seq for seq, _ in self.flights if seq not in self.carried)
        counts.update(self.late)
        return dict(counts)


class SharedRateBudget(RateBudget):
    """A :class:`~scayle_orderwise._http.RateBudget` whose counts are shared through a ledger.

    ``limits`` configures scopes before any answer (default: SCAYLE's published table, one-minute
    windows); ``headroom`` calls per window are left unused (for other applications on the same
    API key); ``clock`` returns seconds and must agree between workers (wall-clock time by
    default). ``slack`` and ``lease_seconds`` tune the end-of-window margin and how long a leased
    block stays valid (see :mod:`~scayle_orderwise.store.rate_ledger`); ``max_lease`` caps a block.
    """

    def __init__(
        self,
        ledger: RateLedger,
        *,
        limits: Mapping[str, tuple[int, float]] | None = None,
        headroom: int = 0,
        clock: Callable[[], float] = time.time,
        slack: float | None = None,
        lease_seconds: float = 0.5,
        max_lease: int = 10,
    ) -> None:
        super().__init__(headroom=headroom, clock=clock)
        self.ledger = ledger
        self.policy = BudgetPolicy(headroom=headroom, slack=slack, lease_seconds=lease_seconds)
        self.max_lease = max(1, max_lease)
        self._defaults: dict[str, ScopeDefault] = dict(scope_limits() if limits is None else limits)
        self._local: dict[str, _Local] = {}
        self._ledger_lock = threading.Lock()
        self.ledger_calls = 0
        """How many times this budget went to the ledger (for measurements)."""

    @classmethod
    def for_store(cls, store: object, **options: Any) -> SharedRateBudget | None:
        """A budget shared through ``store`` (``options`` as for the constructor), or ``None``
        when the store cannot share one (a custom store without ``open_rate_ledger``)."""
        if not isinstance(store, SupportsRateLedger):
            return None
        return cls(store.open_rate_ledger(), **options)

    def __repr__(self) -> str:
        return f"SharedRateBudget({self.ledger!r})"

    # ------------------------------------------------------------------------------ helpers

    def _scope_local(self, scope: str) -> _Local:
        local = self._local.get(scope)
        if local is None:
            local = self._local[scope] = _Local()
        return local

    def _lease_size(self, local: _Local, now: float) -> int:
        """Units to ask for: this worker's calls in the last lease period, at least one."""
        horizon = now - self.policy.lease_seconds
        while local.demand and local.demand[0] < horizon:
            local.demand.popleft()
        return max(1, min(self.max_lease, len(local.demand)))

    def _remember(self, local: _Local, row: BudgetRow) -> None:
        local.row = row
        if row.blocked_until is not None:
            local.blocked_until = max(local.blocked_until, row.blocked_until)

    # ----------------------------------------------------------------------------- RateBudget

    def state(self, scope: str) -> ScopeState | None:
        """What the shared row says about ``scope`` (``None`` when nobody used it yet)."""
        resolved = self._resolve(scope)
        with self._ledger_lock:
            self.ledger_calls += 1
            row = self.ledger.read(resolved)
        if row is None:
            return None
        remaining = 0 if row.limit is None else max(0, row.limit - row.used)
        return ScopeState(
            limit=row.limit, remaining=remaining, reset_at=row.window_end, window=row.window
        )

    def reserve(self, scope: str | None) -> float:
        """Take one call from ``scope``'s shared budget: ``0.0`` = go, ``> 0`` = wait that long."""
        return self._take(scope, track=False)[0]

    def reserve_tracked(self, scope: str | None) -> tuple[float, bool]:
        """Like :meth:`reserve`; a granted call is tracked until :meth:`release`: if its answer
        comes only after its window ended (a slow call), it may have reached SCAYLE in the next
        window, and it is counted there too."""
        return self._take(scope, track=True)

    def _take(self, scope: str | None, *, track: bool) -> tuple[float, bool]:
        if scope is None:
            return 0.0, False
        resolved = self._resolve(scope)
        now = self._clock()
        with self._ledger_lock:
            local = self._scope_local(resolved)
            if local.blocked_until > now:
                return local.blocked_until - now, False
            local.demand.append(now)
            if not (local.units > 0 and now <= local.valid_until):
                grant = self._acquire(resolved, local, now)
                if grant.units == 0:
                    return grant.wait, False
            local.units -= 1
            counted = local.row is not None and local.row.limit is not None
            if track and counted and local.seq is not None:
                local.flights.append((local.seq, local.lease_end))
                return 0.0, True
            return 0.0, False

    def _acquire(self, scope: str, local: _Local, now: float) -> Grant:
        """Ask the ledger for a block (giving back what is left of the last one, and counting
        this worker's late calls in the current window)."""
        give_back, local.units = local.units, 0
        self.ledger_calls += 1
        grant = self.ledger.acquire(
            scope,
            want=self._lease_size(local, now),
            now=now,
            policy=self.policy,
            default=self._defaults.get(scope),
            give_back=give_back,
            give_back_seq=local.seq,
            carry=local.carry() or None,
        )
        self._remember(local, grant.row)
        for seq in grant.carried:
            local.carried.add(seq)
            local.late.pop(seq, None)
        live = {seq for seq, _ in local.flights}
        local.carried &= live | set(local.late)
        if grant.units > 0:
            local.units = grant.units
            local.valid_until = grant.valid_until
            local.seq = grant.window_seq
            local.lease_end = grant.row.window_end
        return grant

    def release(self, scope: str | None) -> None:
        """The answer to a call granted by :meth:`reserve_tracked` arrived (or it failed)."""
        if scope is None:
            return
        resolved = self._resolve(scope)
        now = self._clock()
        with self._ledger_lock:
            local = self._scope_local(resolved)
            if not local.flights:
                return
            seq, end = local.flights.popleft()
            if seq in local.carried or end is None:
                return
            window = local.row.window if local.row is not None else 60.0
            if now >= end - self.policy.slack_for(window):
                local.late[seq] += 1  # it may have reached SCAYLE in the next window

    def peek(self, scope: str | None) -> float:
        """Seconds until a call of ``scope`` could go (``0.0``: now), taking nothing."""
        if scope is None:
            return 0.0
        resolved = self._resolve(scope)
        now = self._clock()
        with self._ledger_lock:
            local = self._scope_local(resolved)
            if local.blocked_until > now:
                return local.blocked_until - now
            if local.units > 0 and now <= local.valid_until:
                return 0.0
            self.ledger_calls += 1
            row = self.ledger.read(resolved)
        return wait_of(row, now=now, policy=self.policy)

    def update(self, headers: Mapping[str, str], scope_hint: str | None = None) -> None:
        """Learn from an answer's ``X-RateLimit-*`` headers (the ledger hears what matters)."""
        feedback = rate_limit_feedback(headers, scope_hint)
        if feedback is None:
            return
        scope, remaining, limit, reset = feedback
        now = self._clock()
        with self._ledger_lock:
            if scope_hint and scope_hint != scope:
                self._aliases[scope_hint] = scope
            local = self._scope_local(scope)
            if not self._worth_telling(local.row, limit, remaining, reset, now):
                return
            self.ledger_calls += 1
            row = self.ledger.observe(
                scope,
                limit=limit,
                remaining=remaining,
                reset_after=reset,
                now=now,
                policy=self.policy,
                default=self._defaults.get(scope),
            )
            self._remember(local, row)

    def _worth_telling(
        self,
        row: BudgetRow | None,
        limit: int | None,
        remaining: int,
        reset: float | None,
        now: float,
    ) -> bool:
        if row is None or row.limit is None:
            return True
        if limit is not None and limit != row.limit:
            return True
        if remaining <= max(self.policy.headroom + 1, row.limit // LOW_WATER_SHARE):
            return True
        if row.window_end is None or now >= row.window_end:
            return True
        if reset is None:
            return False
        return not row.aligned or abs(now + reset - row.window_end) > align_tolerance(
            self.policy.slack_for(row.window)
        )

    def exhaust(self, scope: str, retry_after: float | None) -> None:
        """Record a 429 for every worker: nothing until ``retry_after`` seconds from now (at
        least :data:`~scayle_orderwise._http.MIN_WAIT_AFTER_429`)."""
        resolved = self._resolve(scope)
        now = self._clock()
        with self._ledger_lock:
            local = self._scope_local(resolved)
            wait = retry_after if retry_after is not None else MIN_WAIT_AFTER_429
            until = now + max(wait, MIN_WAIT_AFTER_429)
            local.units = 0
            local.blocked_until = max(local.blocked_until, until)
            self.ledger_calls += 1
            row = self.ledger.block(
                resolved,
                until=until,
                now=now,
                policy=self.policy,
                default=self._defaults.get(resolved),
            )
            self._remember(local, row)
        logger.info("SCAYLE rate limit hit for %s; every worker waits %.1fs", resolved, until - now)

    def close(self) -> None:
        """Close the ledger."""
        self.ledger.close()
