"""The rate ledger: SCAYLE's per-scope rate limits shared by every worker of one idempotency store.

SCAYLE counts calls per API key and scope in fixed windows (one minute by default) and answers
429 past the limit. Workers that share a ledger therefore share one budget per scope, kept in a
:class:`BudgetRow` the store holds for everyone (a table in SQLite or PostgreSQL, a dict in a
:class:`~scayle_orderwise.store.MemoryStore`). :class:`~scayle_orderwise.store.shared_budget.SharedRateBudget`
is the client side; this module holds the rows and their semantics, written once as the pure
``apply_*`` functions that every ledger runs inside one atomic step.

The model
---------

* A row knows the scope's ``limit``, the ``window`` length, when the current window ends and how
  many calls were granted in it (``used``, all workers and leased units included).
* :func:`apply_acquire` grants up to ``want`` units while ``used < limit - headroom``; a worker
  keeps a block of units (a *lease*) and spends it without asking again, until ``valid_until``.
  Leases end ``slack`` seconds before the window does; in the last ``slack`` seconds units are
  granted one at a time and counted again in the next window, since a call granted at the very
  end of a window may reach SCAYLE in the next one. Unspent units come back with the next
  request (``give_back``).
* A window opens with the first grant after the last one ended and is assumed to end
  ``window + slack`` later (SCAYLE starts its window when the first call arrives, a little after
  the grant). :func:`apply_observe` corrects that with the ``X-RateLimit-*`` headers of an answer:
  ``Limit`` replaces the limit, ``Limit - Remaining`` raises ``used`` (calls SCAYLE counted that we
  did not grant: another application on the same key), and ``Reset`` aligns the window's end
  (windows of :data:`ALIGN_MIN_WINDOW` seconds or more: ``Reset`` counts whole seconds).
* :func:`apply_block` records a 429: nobody calls the scope before ``until`` (``Retry-After`` or
  ``X-RateLimit-Reset``), and the window is spent.

Times are seconds on the budget's clock (wall-clock time by default, so that workers on several
machines agree; keep them in sync with NTP). A row whose times are absurd for the clock reading
them (a clock switch, a jump) is repaired rather than trusted.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar, runtime_checkable

import attrs

__all__ = [
    "ALIGN_MIN_WINDOW",
    "DEFAULT_WINDOW",
    "MAX_BLOCK",
    "RESET_RESOLUTION",
    "BudgetPolicy",
    "BudgetRow",
    "Grant",
    "MemoryRateLedger",
    "RateLedger",
    "ScopeDefault",
    "SteppedRateLedger",
    "SupportsRateLedger",
    "align_tolerance",
    "apply_acquire",
    "apply_block",
    "apply_observe",
    "new_row",
    "shifted",
    "wait_of",
]

DEFAULT_WINDOW = 60.0
"""Window length assumed for a scope nobody configured (SCAYLE's ``decayMinutes: 1``)."""
RESET_RESOLUTION = 1.0
"""``X-RateLimit-Reset`` counts whole seconds."""
ALIGN_MIN_WINDOW = 10.0
"""Windows shorter than this are not aligned by ``X-RateLimit-Reset`` (too coarse for them)."""
MAX_BLOCK = 3600.0
"""A block further away than this is taken as a clock change and dropped."""
MIN_WAIT = 0.001

ScopeDefault = tuple[int, float]
"""``(limit, window seconds)`` configured for a scope before any answer was seen."""


@attrs.frozen
class BudgetPolicy:
    """How a budget spends a scope: ``headroom`` calls per window left unused (for other
    applications on the same API key), the end-of-window ``slack`` (``None``: ``window / 30``,
    2 s for one-minute windows) and how long a leased block stays valid."""

    headroom: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    slack: float | None = None
    lease_seconds: float = attrs.field(default=0.5, validator=attrs.validators.gt(0))

    def slack_for(self, window: float) -> float:
        """The slack for a scope with this window length."""
        return self.slack if self.slack is not None else window / 30.0


@attrs.frozen
class BudgetRow:
    """One scope's shared budget.

    ``window_end`` is ``None`` while no window is open; ``window_seq`` counts windows (a lease
    from an older window is not given back into a newer one); ``aligned`` says the end was
    confirmed by SCAYLE's ``X-RateLimit-Reset``. ``recent`` and ``recent_prev`` count grants in
    the current and previous ``slack``-long bucket starting at ``recent_start``: together they
    hold every grant of the last ``slack`` seconds, carried into the next window.
    """

    scope: str
    limit: int | None
    window: float = DEFAULT_WINDOW
    window_end: float | None = None
    window_seq: int = 0
    used: int = 0
    aligned: bool = False
    blocked_until: float | None = None
    recent_start: float = 0.0
    recent: int = 0
    recent_prev: int = 0


@attrs.frozen
class Grant:
    """What :func:`apply_acquire` gave: ``units`` (0 = none; wait ``wait`` seconds and ask
    again), spendable until ``valid_until``, from window ``window_seq``; ``row`` is the row after;
    ``carried`` the older windows whose late calls (see ``carry``) now count in this one."""

    units: int
    wait: float
    valid_until: float
    window_seq: int
    row: BudgetRow
    carried: tuple[int, ...] = ()


def align_tolerance(slack: float) -> float:
    """Seconds within which two window ends name the same window: ``Reset``'s whole seconds plus
    the time an answer may take to come back (at most ``slack``)."""
    return RESET_RESOLUTION + slack


def new_row(scope: str, default: ScopeDefault | None = None) -> BudgetRow:
    """A fresh row, with the configured ``(limit, window)`` when there is one."""
    if default is None:
        return BudgetRow(scope=scope, limit=None)
    limit, window = default
    return BudgetRow(scope=scope, limit=limit, window=window)


def _configured(row: BudgetRow | None, scope: str, default: ScopeDefault | None) -> BudgetRow:
    if row is None:
        return new_row(scope, default)
    if row.limit is None and default is not None:
        return attrs.evolve(row, limit=default[0], window=default[1])
    return row


def _sane(row: BudgetRow, now: float, slack: float) -> BudgetRow:
    """Drop times that cannot come from this clock (a clock switch or jump)."""
    horizon = now + 2 * max(row.window, DEFAULT_WINDOW) + slack
    if row.window_end is not None and row.window_end > horizon:
        row = attrs.evolve(row, window_end=None, used=0, aligned=False)
    if row.blocked_until is not None and row.blocked_until > now + MAX_BLOCK:
        row = attrs.evolve(row, blocked_until=None)
    if row.recent_start > now + slack:
        row = attrs.evolve(
            row, recent_start=now, recent=0, recent_prev=row.recent + row.recent_prev
        )
    return row


def _tick(row: BudgetRow, now: float, slack: float) -> BudgetRow:
    """Move the recent-grant buckets on to ``now``."""
    elapsed = now - row.recent_start
    if elapsed < slack:
        return row
    previous = row.recent if elapsed < 2 * slack else 0
    return attrs.evolve(row, recent_start=now, recent=0, recent_prev=previous)


def _spendable(limit: int, policy: BudgetPolicy) -> int:
    """Calls per window the budget may spend: the limit less the headroom, but always at least
    one (a headroom the limit does not cover must not stall the scope for good)."""
    return max(1, limit - policy.headroom)


def _recent(row: BudgetRow) -> int:
    return row.recent + row.recent_prev


def _rolled(row: BudgetRow, now: float) -> BudgetRow:
    """Close a window that has ended: the calls of its last moments count in the next one."""
    if row.window_end is not None and now >= row.window_end:
        return attrs.evolve(row, window_end=None, used=_recent(row), aligned=False)
    return row


def _prepared(
    row: BudgetRow | None,
    scope: str,
    default: ScopeDefault | None,
    now: float,
    policy: BudgetPolicy,
) -> tuple[BudgetRow, float]:
    current = _configured(row, scope, default)
    slack = policy.slack_for(current.window)
    return _tick(_sane(current, now, slack), now, slack), slack


def apply_acquire(
    row: BudgetRow | None,
    scope: str,
    *,
    want: int,
    now: float,
    policy: BudgetPolicy,
    default: ScopeDefault | None = None,
    give_back: int = 0,
    give_back_seq: int | None = None,
    carry: Mapping[int, int] | None = None,
) -> Grant:
    """Grant up to ``want`` calls of ``scope`` (see the module docstring); the row to save is
    ``grant.row``. ``give_back`` unspent units of a lease from window ``give_back_seq`` first.

    ``carry`` counts, by the window they were granted in, this worker's calls that may reach
    SCAYLE after their window ended (still unanswered, or answered only in the window's last
    moments): those of windows older than the current one are added to it (``grant.carried``).
    """
    current, slack = _prepared(row, scope, default, now, policy)
    if (
        give_back > 0
        and give_back_seq == current.window_seq
        and current.window_end is not None
        and now < current.window_end
    ):
        current = attrs.evolve(current, used=max(0, current.used - give_back))
    if current.blocked_until is not None:
        if now < current.blocked_until:
            wait = current.blocked_until - now
            return Grant(0, wait, now, current.window_seq, current)
        current = attrs.evolve(current, blocked_until=None)
    limit = current.limit
    if limit is None:  # nothing known about this scope yet: the first answer tells
        units = max(1, want)
        return Grant(units, 0.0, now + policy.lease_seconds, current.window_seq, current)
    current = _rolled(current, now)
    if current.window_end is None:
        current = attrs.evolve(
            current,
            window_end=now + current.window + slack,
            window_seq=current.window_seq + 1,
            aligned=False,
        )
    window_end = current.window_end
    assert window_end is not None
    late = {s: n for s, n in (carry or {}).items() if s < current.window_seq and n > 0}
    if late:
        current = attrs.evolve(current, used=current.used + sum(late.values()))
    carried = tuple(sorted(late))
    available = _spendable(limit, policy) - current.used
    if available <= 0:
        wait = max(window_end - now, MIN_WAIT)
        return Grant(0, wait, now, current.window_seq, current, carried)
    closing = now >= window_end - slack
    units = 1 if closing else max(1, min(want, available))
    lease = min(policy.lease_seconds, slack)  # every unspent lease is among the recent grants
    valid_until = now if closing else min(now + lease, window_end - slack)
    current = attrs.evolve(current, used=current.used + units, recent=current.recent + units)
    return Grant(units, 0.0, valid_until, current.window_seq, current, carried)


def apply_observe(
    row: BudgetRow | None,
    scope: str,
    *,
    limit: int | None,
    remaining: int | None,
    reset_after: float | None,
    now: float,
    policy: BudgetPolicy,
    default: ScopeDefault | None = None,
) -> BudgetRow:
    """The row after an answer's ``X-RateLimit-Limit/Remaining/Reset`` (see the module docstring)."""
    current, slack = _prepared(row, scope, default, now, policy)
    if limit is not None and limit > 0:
        current = attrs.evolve(current, limit=limit)
    known = current.limit
    if remaining is None or known is None:
        return current
    current = _rolled(current, now)
    counted = max(0, known - max(0, remaining))
    align = reset_after is not None and reset_after >= 0 and current.window >= ALIGN_MIN_WINDOW
    end = now + reset_after if align and reset_after is not None else None
    if current.window_end is None:
        if counted == 0:
            return current  # SCAYLE has counted nothing: the first grant opens the window
        return attrs.evolve(
            current,
            window_end=end if end is not None else now + current.window + slack,
            window_seq=current.window_seq + 1,
            used=max(current.used, counted),
            aligned=end is not None,
        )
    if end is None:
        return attrs.evolve(current, used=max(current.used, counted))
    tolerance = align_tolerance(slack)
    if end > current.window_end + current.window / 2:
        # SCAYLE has moved on to its next window before ours ended (ours ends late on purpose):
        # follow it; what was granted in the last moments may still arrive in it.
        return attrs.evolve(
            current,
            window_end=end,
            window_seq=current.window_seq + 1,
            used=max(counted, _recent(current)),
            aligned=True,
        )
    if end > current.window_end + tolerance:
        # SCAYLE's window ends later than we thought (it started later, or a short Retry-After
        # closed ours early): keep counting, until SCAYLE's end.
        return attrs.evolve(current, window_end=end, used=max(current.used, counted), aligned=True)
    if end < current.window_end - tolerance:
        assert reset_after is not None
        if reset_after <= tolerance:
            return current  # an answer from a window that has ended, arriving late
        return attrs.evolve(current, window_end=end, used=max(current.used, counted), aligned=True)
    window_end = current.window_end if current.aligned else end
    return attrs.evolve(
        current, window_end=window_end, used=max(current.used, counted), aligned=True
    )


def apply_block(
    row: BudgetRow | None,
    scope: str,
    *,
    until: float,
    now: float,
    policy: BudgetPolicy,
    default: ScopeDefault | None = None,
) -> BudgetRow:
    """The row after a 429: no call before ``until``, and the current window is spent."""
    current, slack = _prepared(row, scope, default, now, policy)
    blocked = max(current.blocked_until or until, until)
    limit = current.limit
    if limit is None:
        return attrs.evolve(current, blocked_until=blocked)
    changed = current.window_end is None or abs(current.window_end - until) > align_tolerance(slack)
    return attrs.evolve(
        current,
        blocked_until=blocked,
        window_end=until,
        window_seq=current.window_seq + 1 if changed else current.window_seq,
        used=max(current.used, limit),
        aligned=True,
    )


def wait_of(row: BudgetRow | None, *, now: float, policy: BudgetPolicy) -> float:
    """Seconds until a call of the row's scope could be granted (``0.0``: now); changes nothing."""
    if row is None:
        return 0.0
    current, slack = _prepared(row, row.scope, None, now, policy)
    if current.blocked_until is not None and now < current.blocked_until:
        return current.blocked_until - now
    limit = current.limit
    if limit is None:
        return 0.0
    current = _rolled(current, now)
    if _spendable(limit, policy) - current.used > 0:
        return 0.0
    if current.window_end is None:
        return current.window + slack
    return max(current.window_end - now, MIN_WAIT)


# ------------------------------------------------------------------------------------- protocols


@runtime_checkable
class RateLedger(Protocol):
    """Where the rows live. Every method is one atomic step, safe from several threads (and,
    for the SQL ledgers, processes and machines)."""

    def acquire(
        self,
        scope: str,
        *,
        want: int,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
        give_back: int = 0,
        give_back_seq: int | None = None,
        carry: Mapping[int, int] | None = None,
    ) -> Grant:
        """:func:`apply_acquire` on the stored row, saved."""
        ...

    def observe(
        self,
        scope: str,
        *,
        limit: int | None,
        remaining: int | None,
        reset_after: float | None,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
    ) -> BudgetRow:
        """:func:`apply_observe` on the stored row, saved; returns the new row."""
        ...

    def block(
        self,
        scope: str,
        *,
        until: float,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
    ) -> BudgetRow:
        """:func:`apply_block` on the stored row, saved; returns the new row."""
        ...

    def read(self, scope: str) -> BudgetRow | None:
        """The stored row of ``scope`` (``None``: never used)."""
        ...

    def close(self) -> None:
        """Release what the ledger holds (a connection). Idempotent."""
        ...


@runtime_checkable
class SupportsRateLedger(Protocol):
    """A store that can share rate budgets between its workers."""

    def open_rate_ledger(self) -> RateLedger:
        """A ledger on this store's data; the caller closes it."""
        ...


_T = TypeVar("_T")


def shifted(row: BudgetRow, by: float) -> BudgetRow:
    """``row`` with its times moved ``by`` seconds (between a machine's clock and the ledger's)."""
    if by == 0.0:
        return row
    return attrs.evolve(
        row,
        window_end=None if row.window_end is None else row.window_end + by,
        blocked_until=None if row.blocked_until is None else row.blocked_until + by,
        recent_start=row.recent_start + by,
    )


class SteppedRateLedger:
    """:class:`RateLedger`'s three changes for a ledger that can do one atomic step on a row.

    A subclass provides :meth:`_step` (read the row, let ``change`` compute the new one, save it,
    all atomically) and, if the rows are kept in another clock than the worker's, :meth:`_offset`
    (seconds to add to the worker's time to get the ledger's).
    """

    def _step(self, scope: str, change: Callable[[BudgetRow | None], tuple[BudgetRow, _T]]) -> _T:
        raise NotImplementedError

    def _offset(self) -> float:
        return 0.0

    def acquire(
        self,
        scope: str,
        *,
        want: int,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
        give_back: int = 0,
        give_back_seq: int | None = None,
        carry: Mapping[int, int] | None = None,
    ) -> Grant:
        """See :class:`RateLedger`."""

        def change(row: BudgetRow | None) -> tuple[BudgetRow, Grant]:
            off = self._offset()
            grant = apply_acquire(
                row,
                scope,
                want=want,
                now=now + off,
                policy=policy,
                default=default,
                give_back=give_back,
                give_back_seq=give_back_seq,
                carry=carry,
            )
            if off == 0.0:
                return grant.row, grant
            local = attrs.evolve(
                grant, valid_until=grant.valid_until - off, row=shifted(grant.row, -off)
            )
            return grant.row, local

        return self._step(scope, change)

    def observe(
        self,
        scope: str,
        *,
        limit: int | None,
        remaining: int | None,
        reset_after: float | None,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
    ) -> BudgetRow:
        """See :class:`RateLedger`."""

        def change(row: BudgetRow | None) -> tuple[BudgetRow, BudgetRow]:
            off = self._offset()
            new = apply_observe(
                row,
                scope,
                limit=limit,
                remaining=remaining,
                reset_after=reset_after,
                now=now + off,
                policy=policy,
                default=default,
            )
            return new, shifted(new, -off)

        return self._step(scope, change)

    def block(
        self,
        scope: str,
        *,
        until: float,
        now: float,
        policy: BudgetPolicy,
        default: ScopeDefault | None = None,
    ) -> BudgetRow:
        """See :class:`RateLedger`."""

        def change(row: BudgetRow | None) -> tuple[BudgetRow, BudgetRow]:
            off = self._offset()
            new = apply_block(
                row, scope, until=until + off, now=now + off, policy=policy, default=default
            )
            return new, shifted(new, -off)

        return self._step(scope, change)


class MemoryRateLedger(SteppedRateLedger):
    """Rows in process memory: shared by the threads of one process (one lock)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rows: dict[str, BudgetRow] = {}

    def __repr__(self) -> str:
        return f"MemoryRateLedger(scopes={sorted(self._rows)})"

    def _step(self, scope: str, change: Callable[[BudgetRow | None], tuple[BudgetRow, _T]]) -> _T:
        with self._lock:
            row, result = change(self._rows.get(scope))
            self._rows[scope] = row
            return result

    def read(self, scope: str) -> BudgetRow | None:
        """See :class:`RateLedger`."""
        with self._lock:
            return self._rows.get(scope)

    def close(self) -> None:
        """Nothing to release."""
