"""A conformance suite for idempotency stores, the built-in ones and your own.

Run every check in one call (raises ``AssertionError`` naming the first failing check)::

    from scayle_orderwise.testing.store_conformance import run_conformance

    run_conformance(lambda clock: MyStore(..., clock=clock))

or subclass :class:`StoreConformanceSuite` in a pytest module, one test per check::

    class TestMyStore(StoreConformanceSuite):
        def make_store(self, clock):
            return MyStore(..., clock=clock)

        def reopen_store(self, store, clock):  # optional: a second handle on the same data
            return MyStore(store.location, clock=clock)

``make_store(clock)`` must return a new, empty store that reads time from ``clock`` (a
:class:`ManualClock` the checks move forward to expire leases). ``reopen_store(store, clock)``,
when given, returns another handle on the same data; it enables the persistence check and lets
the concurrency checks give each thread its own handle. The suite closes every store it opens.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from ..store.base import (
    ADMIN_TRANSITIONS,
    OWNER_TRANSITIONS,
    ClaimHeldError,
    ClaimLostError,
    Clock,
    IdempotencyStore,
    InvalidTransitionError,
    KeyConflictError,
    Record,
    State,
    UnknownKeyError,
)
from ..store.rate_ledger import BudgetPolicy, Grant, RateLedger, SupportsRateLedger

__all__ = [
    "CHECKS",
    "Harness",
    "ManualClock",
    "ReopenStore",
    "StoreConformanceSuite",
    "StoreFactory",
    "run_conformance",
]

StoreFactory = Callable[[Clock], IdempotencyStore]
"""Builds a new, empty store reading time from the given clock."""
ReopenStore = Callable[[IdempotencyStore, Clock], IdempotencyStore]
"""Opens another handle on the data of the given store."""

LEASE = timedelta(seconds=60)
START = datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


class ManualClock:
    """A thread-safe clock that only moves when told to (``advance``/``set``)."""

    def __init__(self, start: datetime = START) -> None:
        self._lock = threading.Lock()
        self._now = start.astimezone(UTC)

    def __call__(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | float = 1.0) -> datetime:
        """Move forward by ``delta`` (a timedelta or seconds); returns the new time."""
        step = delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        with self._lock:
            self._now += step
            return self._now

    def set(self, when: datetime) -> None:
        """Jump to ``when`` (aware)."""
        with self._lock:
            self._now = when.astimezone(UTC)


class Harness:
    """What a check gets: fresh stores on a shared :class:`ManualClock`, closed afterwards."""

    def __init__(self, factory: StoreFactory, reopen: ReopenStore | None = None) -> None:
        self.factory = factory
        self._reopen = reopen
        self.clock = ManualClock()
        self._opened: list[IdempotencyStore] = []

    @property
    def can_reopen(self) -> bool:
        """Whether a second handle on the same data can be opened."""
        return self._reopen is not None

    def new(self) -> IdempotencyStore:
        """A new, empty store on ``self.clock``."""
        store = self.factory(self.clock)
        self._opened.append(store)
        return store

    def reopen(self, store: IdempotencyStore) -> IdempotencyStore:
        """Another handle on ``store``'s data (only when ``can_reopen``)."""
        if self._reopen is None:
            raise RuntimeError("this store cannot be reopened")
        handle = self._reopen(store, self.clock)
        self._opened.append(handle)
        return handle

    def close(self) -> None:
        """Close every store opened through this harness."""
        for store in reversed(self._opened):
            store.close()
        self._opened.clear()


class _Skip(Exception):
    """A check does not apply to this store."""


def _ok(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _eq(actual: Any, expected: Any, what: str) -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def _raises(
    kinds: type[BaseException] | tuple[type[BaseException], ...], what: str, call: Callable[[], Any]
) -> BaseException:
    try:
        call()
    except kinds as exc:
        return exc
    except Exception as exc:
        raise AssertionError(f"{what}: expected {kinds}, got {type(exc).__name__}: {exc}") from exc
    raise AssertionError(f"{what}: expected {kinds}, nothing was raised")


def _order(store: IdempotencyStore, key: str, **kwargs: Any) -> Record:
    return store.ensure(key, kind="order", subject=key.rpartition(":")[2], **kwargs)


def _claimed(store: IdempotencyStore, key: str, owner: str, **kwargs: Any) -> Record:
    record = store.claim(key, owner=owner, lease=LEASE, **kwargs)
    _ok(record is not None, f"claim of {key} by {owner} should succeed")
    assert record is not None
    return record


def _stored(store: IdempotencyStore, key: str) -> Record:
    record = store.get(key)
    _ok(record is not None, f"{key} should exist")
    assert record is not None
    return record


# ---------------------------------------------------------------------------------- the checks


def check_protocol(h: Harness) -> None:
    """The store satisfies the runtime-checkable protocol and is a context manager."""
    store = h.new()
    _ok(isinstance(store, IdempotencyStore), "store should implement IdempotencyStore")
    with store as entered:
        _ok(entered is store, "__enter__ should return the store itself")


def check_ensure_and_get(h: Harness) -> None:
    """``ensure`` creates a pending record, ``get`` returns it exactly."""
    store = h.new()
    _eq(store.get("order:1"), None, "get of a missing key")
    payload = {"lines": [{"sku": "TSHIRT-RED-M", "item_ids": [11, 12]}], "note": "grüße", "n": 1}
    record = store.ensure("order:1", kind="order", subject="1", payload=payload)
    now = h.clock()
    _eq((record.key, record.kind, record.subject), ("order:1", "order", "1"), "identity")
    _eq(record.state, State.PENDING, "initial state")
    _ok(isinstance(record.state, State) and record.state == "pending", "state is a State StrEnum")
    _eq(record.payload, payload, "payload")
    _eq(record.attempts, 0, "attempts")
    _eq(
        (record.owner, record.lease_expires_at, record.next_attempt_at),
        (None, None, None),
        "claim fields of a new record",
    )
    _eq((record.created_at, record.updated_at), (now, now), "timestamps follow the clock")
    _eq(record.may_have_been_sent, False, "may_have_been_sent of a new record")
    _eq(len(record.history), 1, "history of a new record")
    first = record.history[0]
    _eq((first.from_state, first.to_state, first.at), (None, State.PENDING, now), "creation entry")
    _eq(store.get("order:1"), record, "get returns what ensure returned")
    _raises(ValueError, "empty key", lambda: store.ensure("", kind="order", subject="x"))
    _raises(
        (TypeError, ValueError),
        "payload that is not JSON",
        lambda: store.ensure("order:2", kind="order", subject="2", payload={"x": object()}),
    )
    _eq(store.get("order:2"), None, "a refused ensure creates nothing")


def check_ensure_idempotent(h: Harness) -> None:
    """A second ``ensure`` returns the stored record unchanged; identity clashes are refused."""
    store = h.new()
    first = _order(store, "order:1", payload={"v": 1})
    h.clock.advance(5)
    again = store.ensure(
        "order:1", kind="order", subject="1", payload={"v": 2}, state=State.CANCELLED
    )
    _eq(again, first, "second ensure returns the existing record")
    _raises(
        KeyConflictError,
        "same key, other kind",
        lambda: store.ensure("order:1", kind="shipment", subject="1"),
    )
    _raises(
        KeyConflictError,
        "same key, other subject",
        lambda: store.ensure("order:1", kind="order", subject="2"),
    )
    _eq(store.get("order:1"), first, "record after conflicting ensure calls")


def check_ensure_initial_states(h: Harness) -> None:
    """Records may start quarantined or cancelled (with a reason), never in_flight."""
    store = h.new()
    bad = _order(store, "order:1", state=State.QUARANTINED, reason="malformed webhook")
    _eq((bad.state, bad.reason), (State.QUARANTINED, "malformed webhook"), "quarantined at birth")
    _eq(bad.history[0].reason, "malformed webhook", "creation reason in history")
    gone = _order(store, "order:2", state="cancelled", reason="cancelled before import")
    _eq(gone.state, State.CANCELLED, "cancelled at birth (state given as str)")
    _raises(
        InvalidTransitionError,
        "create in_flight",
        lambda: _order(store, "order:3", state=State.IN_FLIGHT),
    )
    _eq(store.get("order:3"), None, "nothing created in_flight")
    h.clock.advance(3600)
    for key in ("order:1", "order:2"):
        _eq(store.claim(key, owner="w1", lease=LEASE), None, f"{key} is not claimable")


def check_claim(h: Harness) -> None:
    """A claim moves a pending record to in_flight with owner, lease, attempt and history."""
    store = h.new()
    _order(store, "order:1")
    _eq(store.claim("order:404", owner="w1", lease=LEASE), None, "claim of a missing key")
    h.clock.advance(1)
    now = h.clock()
    record = _claimed(store, "order:1", "w1")
    _eq(record.state, State.IN_FLIGHT, "state after claim")
    _eq(record.owner, "w1", "owner")
    _eq(record.lease_expires_at, now + LEASE, "lease expiry")
    _eq(record.attempts, 1, "attempts")
    _eq(record.claimed_from, State.PENDING, "claimed_from")
    _eq(record.may_have_been_sent, False, "may_have_been_sent after a first claim")
    _eq(record.updated_at, now, "updated_at")
    last = record.history[-1]
    _eq(
        (last.from_state, last.to_state, last.owner, last.at),
        (State.PENDING, State.IN_FLIGHT, "w1", now),
        "claim history entry",
    )
    _eq(len(record.history), 2, "history length after claim")
    _eq(store.get("order:1"), record, "get after claim")
    _ok(record.is_held(now), "is_held while the lease runs")


def check_claim_exclusive(h: Harness) -> None:
    """Nobody else can claim while the lease runs, up to its last microsecond."""
    store = h.new()
    _order(store, "order:1")
    held = _claimed(store, "order:1", "w1")
    for owner in ("w2", "w3"):
        _eq(store.claim("order:1", owner=owner, lease=LEASE), None, f"claim by {owner}")
        _eq(store.claim_next("order", owner=owner, lease=LEASE), [], f"claim_next by {owner}")
    h.clock.advance(LEASE - timedelta(microseconds=1))
    _eq(store.claim("order:1", owner="w2", lease=LEASE), None, "claim 1 µs before expiry")
    _eq(store.get("order:1"), held, "record untouched by refused claims")


def check_lease_expiry(h: Harness) -> None:
    """After the lease, another owner takes over; the old owner's moves raise ClaimLostError."""
    store = h.new()
    _order(store, "order:1")
    _claimed(store, "order:1", "w1")
    h.clock.advance(LEASE)
    taken = _claimed(store, "order:1", "w2")
    _eq(
        (taken.owner, taken.attempts, taken.claimed_from),
        ("w2", 2, State.IN_FLIGHT),
        "takeover after expiry",
    )
    _eq(taken.may_have_been_sent, True, "a takeover may follow a sent request")
    _eq(taken.history[-1].owner, "w2", "takeover history owner")
    _raises(
        ClaimLostError,
        "transition by the old owner",
        lambda: store.transition("order:1", State.ACKNOWLEDGED, owner="w1"),
    )
    _raises(
        ClaimLostError,
        "renew by the old owner",
        lambda: store.renew("order:1", owner="w1", lease=LEASE),
    )
    _eq(store.get("order:1"), taken, "record after the stale owner's attempts")
    # An expired lease nobody took over still lets its owner finish.
    h.clock.advance(LEASE * 3)
    done = store.transition("order:1", State.ACKNOWLEDGED, owner="w2", external_id="OW-1")
    _eq(done.state, State.ACKNOWLEDGED, "owner finishes after its lease expired untaken")


def check_same_owner_reclaims(h: Harness) -> None:
    """A restarted worker takes its own in_flight claims back at once."""
    store = h.new()
    _order(store, "order:1")
    _order(store, "order:2")
    _claimed(store, "order:1", "w1")
    again = _claimed(store, "order:1", "w1")
    _eq(
        (again.attempts, again.claimed_from, again.may_have_been_sent),
        (2, State.IN_FLIGHT, True),
        "same-owner reclaim",
    )
    _claimed(store, "order:2", "w1")
    batch = store.claim_next("order", owner="w1", lease=LEASE)
    _eq(sorted(r.key for r in batch), ["order:1", "order:2"], "claim_next returns own claims")
    _eq(store.claim_next("order", owner="w2", lease=LEASE), [], "others still wait")


def check_transitions(h: Harness) -> None:
    """Owner transitions release the claim, set fields and track may_have_been_sent."""
    store = h.new()
    _order(store, "order:1", payload={"a": 1})
    _claimed(store, "order:1", "w1")
    h.clock.advance(2)
    sent = store.transition("order:1", State.SENT, owner="w1", reason="timeout after send")
    _eq(
        (sent.state, sent.owner, sent.lease_expires_at, sent.claimed_from),
        (State.SENT, None, None, None),
        "sent releases the claim",
    )
    _eq((sent.reason, sent.may_have_been_sent), ("timeout after send", True), "sent fields")
    _eq(sent.updated_at, h.clock(), "updated_at of a transition")
    h.clock.advance(1)
    again = _claimed(store, "order:1", "w2")
    _eq((again.claimed_from, again.may_have_been_sent), (State.SENT, True), "claim from sent")
    back = store.transition("order:1", "pending", owner="w2", reason="lookup failed: 503")
    _eq(
        (back.state, back.may_have_been_sent),
        (State.PENDING, True),
        "may_have_been_sent survives a return to pending",
    )
    _claimed(store, "order:1", "w2")
    acked = store.transition(
        "order:1",
        State.ACKNOWLEDGED,
        owner="w2",
        reason="found by lookup",
        external_id="4711",
        external_ref="SO-0042",
        payload={"a": 2},
    )
    _eq(
        (acked.external_id, acked.external_ref, acked.payload),
        ("4711", "SO-0042", {"a": 2}),
        "acknowledged fields",
    )
    _eq(acked.may_have_been_sent, False, "acknowledged clears may_have_been_sent")
    _eq(acked.attempts, 3, "attempts count claims")
    _eq(store.get("order:1"), acked, "get after transitions")
    # Fields left as None keep their values.
    kept = store.mark("order:1", State.CANCELLED, reason="cancelled in the shop")
    _eq(
        (kept.external_id, kept.external_ref, kept.payload),
        ("4711", "SO-0042", {"a": 2}),
        "None keeps stored fields",
    )


def check_transition_refusals(h: Harness) -> None:
    """Stale owners, released records, bad targets and bad arguments are refused."""
    store = h.new()
    _order(store, "order:1")
    held = _claimed(store, "order:1", "w1")
    _raises(
        ClaimLostError,
        "transition by a non-owner",
        lambda: store.transition("order:1", State.SENT, owner="w2"),
    )
    _raises(
        InvalidTransitionError,
        "in_flight -> in_flight",
        lambda: store.transition("order:1", State.IN_FLIGHT, owner="w1"),
    )
    _raises(
        ValueError, "unknown state name", lambda: store.transition("order:1", "shipped", owner="w1")
    )
    _raises(
        ValueError,
        "next_attempt_at on acknowledged",
        lambda: store.transition(
            "order:1", State.ACKNOWLEDGED, owner="w1", next_attempt_at=h.clock() + LEASE
        ),
    )
    _raises(
        ValueError,
        "naive next_attempt_at",
        lambda: store.transition(
            "order:1", State.PENDING, owner="w1", next_attempt_at=datetime(2030, 1, 1)
        ),
    )
    _raises(
        ValueError,
        "naive claim time",
        lambda: store.claim("order:1", owner="w1", lease=LEASE, now=datetime(2030, 1, 1)),
    )
    _raises(
        ValueError, "zero lease", lambda: store.claim("order:1", owner="w1", lease=timedelta(0))
    )
    _eq(store.get("order:1"), held, "record after refused moves")
    store.transition("order:1", State.SENT, owner="w1")
    _raises(
        ClaimLostError,
        "transition of a released record",
        lambda: store.transition("order:1", State.ACKNOWLEDGED, owner="w1"),
    )
    _raises(
        UnknownKeyError,
        "transition of a missing key",
        lambda: store.transition("order:404", State.SENT, owner="w1"),
    )
    _raises(
        UnknownKeyError,
        "mark of a missing key",
        lambda: store.mark("order:404", State.CANCELLED, reason="x"),
    )
    _raises(
        UnknownKeyError,
        "renew of a missing key",
        lambda: store.renew("order:404", owner="w1", lease=LEASE),
    )


def check_owner_transition_table(h: Harness) -> None:
    """The owner may move in_flight exactly to OWNER_TRANSITIONS."""
    store = h.new()
    for target in State:
        key = f"order:{target.value}"
        _order(store, key)
        _claimed(store, key, "w1")
        if target in OWNER_TRANSITIONS:
            moved = store.transition(key, target, owner="w1", reason=f"to {target}")
            _eq(moved.state, target, f"in_flight -> {target}")
            _eq(moved.owner, None, f"claim released on in_flight -> {target}")
        else:
            _raises(
                InvalidTransitionError,
                f"in_flight -> {target}",
                partial(store.transition, key, target, owner="w1"),
            )


def check_admin_transition_table(h: Harness) -> None:
    """``mark`` allows exactly ADMIN_TRANSITIONS and refuses in_flight records."""
    store = h.new()
    for source in State:
        for target in State:
            key = f"order:{source.value}-{target.value}"
            if source is State.IN_FLIGHT:
                _order(store, key)
                _claimed(store, key, "w1")
            else:
                _order(store, key, state=source)
            before = store.get(key)
            if source is State.IN_FLIGHT:
                _raises(
                    ClaimHeldError,
                    f"mark {source} -> {target}",
                    partial(store.mark, key, target, reason="ops"),
                )
                _eq(store.get(key), before, "in_flight record untouched by mark")
            elif target in ADMIN_TRANSITIONS[source]:
                moved = store.mark(key, target, reason=f"ops: {target}", actor="alice")
                _eq(moved.state, target, f"mark {source} -> {target}")
                last = moved.history[-1]
                _eq(
                    (last.from_state, last.to_state, last.owner, last.reason),
                    (source, target, "alice", f"ops: {target}"),
                    "mark history entry",
                )
            else:
                _raises(
                    InvalidTransitionError,
                    f"mark {source} -> {target}",
                    partial(store.mark, key, target, reason="ops"),
                )
                _eq(store.get(key), before, f"refused mark {source} -> {target} changes nothing")


def check_retry_schedule(h: Harness) -> None:
    """``next_attempt_at`` delays claims; failed without it is parked."""
    store = h.new()
    for key in ("order:p", "order:s", "order:f", "order:parked"):
        _order(store, key)
        _claimed(store, key, "w1")
    later = h.clock() + timedelta(seconds=30)
    store.transition("order:p", State.PENDING, owner="w1", reason="503", next_attempt_at=later)
    store.transition("order:s", State.SENT, owner="w1", reason="timeout", next_attempt_at=later)
    failed = store.transition(
        "order:f", State.FAILED, owner="w1", reason="429", next_attempt_at=later
    )
    _eq(failed.next_attempt_at, later, "next_attempt_at stored")
    store.transition("order:parked", State.FAILED, owner="w1", reason="gave up")
    h.clock.advance(29)
    _eq(store.claim_next("order", owner="w2", lease=LEASE), [], "nothing due before the time")
    _eq(store.claim("order:p", owner="w2", lease=LEASE), None, "pending before its time")
    h.clock.advance(1)
    due = store.claim_next("order", owner="w2", lease=LEASE)
    _eq(sorted(r.key for r in due), ["order:f", "order:p", "order:s"], "due records")
    _ok(all(r.next_attempt_at is None for r in due), "a claim clears next_attempt_at")
    h.clock.advance(timedelta(days=365))
    _eq(store.claim("order:parked", owner="w3", lease=LEASE), None, "parked failed record")
    released = store.mark("order:parked", State.PENDING, reason="retry by ops")
    _eq(released.state, State.PENDING, "parked record released by mark")
    _ok(store.claim("order:parked", owner="w3", lease=LEASE) is not None, "claim after release")


def check_claim_next(h: Harness) -> None:
    """``claim_next`` claims due records of one kind, oldest first, up to ``limit``."""
    store = h.new()
    for i in range(5):
        store.ensure(f"order:{i}", kind="order", subject=str(i))
        store.ensure(f"shipment:{i}", kind="shipment", subject=str(i))
        h.clock.advance(1)
    _eq(store.claim_next("order", owner="w1", lease=LEASE, limit=0), [], "limit 0")
    first = store.claim_next("order", owner="w1", lease=LEASE, limit=3)
    _eq([r.key for r in first], ["order:0", "order:1", "order:2"], "first batch, oldest first")
    _ok(all(r.state is State.IN_FLIGHT and r.owner == "w1" for r in first), "batch is claimed")
    second = store.claim_next("order", owner="w2", lease=LEASE, limit=10)
    _eq([r.key for r in second], ["order:3", "order:4"], "second batch")
    _eq(store.claim_next("order", owner="w3", lease=LEASE), [], "nothing left for w3")
    ships = store.claim_next("shipment", owner="w3", lease=LEASE, limit=100)
    _eq(len(ships), 5, "kind filter")
    h.clock.advance(LEASE)
    expired = store.claim_next("order", owner="w3", lease=LEASE, limit=10)
    _eq(sorted(r.key for r in expired), [f"order:{i}" for i in range(5)], "expired leases")
    _ok(all(r.may_have_been_sent for r in expired), "takeovers flag may_have_been_sent")


def check_renew(h: Harness) -> None:
    """``renew`` extends a held lease without a history entry."""
    store = h.new()
    _order(store, "order:1")
    claimed = _claimed(store, "order:1", "w1")
    h.clock.advance(LEASE / 2)
    renewed = store.renew("order:1", owner="w1", lease=LEASE)
    _eq(renewed.lease_expires_at, h.clock() + LEASE, "renewed lease")
    _eq(len(renewed.history), len(claimed.history), "renew adds no history")
    _eq(renewed.attempts, 1, "renew is not an attempt")
    h.clock.advance(LEASE / 2)
    _eq(store.claim("order:1", owner="w2", lease=LEASE), None, "claim before renewed expiry")
    _raises(
        ClaimLostError,
        "renew by a non-owner",
        lambda: store.renew("order:1", owner="w2", lease=LEASE),
    )
    h.clock.advance(LEASE)
    _ok(store.claim("order:1", owner="w2", lease=LEASE) is not None, "claim after expiry")


def check_renew_with_payload(h: Harness) -> None:
    """``renew(payload=...)`` records a recovery point with the longer lease, in one write."""
    store = h.new()
    _order(store, "order:1")
    _claimed(store, "order:1", "w1")
    renewed = store.renew("order:1", owner="w1", lease=LEASE, payload={"attempted_at": "t1"})
    _eq(renewed.payload, {"attempted_at": "t1"}, "renew returns the new payload")
    _eq(_stored(store, "order:1").payload, {"attempted_at": "t1"}, "renew stores the payload")
    _eq(_stored(store, "order:1").state, State.IN_FLIGHT, "renew keeps the claim")
    store.renew("order:1", owner="w1", lease=LEASE)
    _eq(_stored(store, "order:1").payload, {"attempted_at": "t1"}, "renew without payload keeps it")
    _raises(
        ClaimLostError,
        "renew with payload by a non-owner",
        lambda: store.renew("order:1", owner="w2", lease=LEASE, payload={"x": 1}),
    )
    _eq(_stored(store, "order:1").payload, {"attempted_at": "t1"}, "a refused renew writes nothing")


def check_archive(h: Harness) -> None:
    """``archive`` moves final records out of the live ledger; ``get``/``ensure`` still see them
    (nothing is done twice) and ``mark`` brings one back with its history."""
    store = h.new()
    for key in ("order:1", "order:2", "order:3", "order:4"):
        _order(store, key)
    store.ensure("shipment:1", kind="shipment", subject="1")
    for key in ("order:1", "order:2", "shipment:1"):
        _claimed(store, key, "w1")
        store.transition(key, State.ACKNOWLEDGED, owner="w1", external_id=f"ow-{key}")
    store.mark("order:3", State.CANCELLED, reason="cancelled in the shop")
    h.clock.advance(timedelta(days=100))
    _order(store, "order:5")
    _claimed(store, "order:5", "w1")
    store.transition("order:5", State.ACKNOWLEDGED, owner="w1", external_id="ow-5")  # recent
    before = _stored(store, "order:1")
    cutoff = h.clock() - timedelta(days=90)
    _eq(store.archive(before=cutoff, kind="order", limit=1), 1, "archive honours limit")
    _eq(store.archive(before=cutoff, kind="order"), 2, "archive by kind: the rest")
    _eq(store.archive(before=cutoff), 1, "archive of every kind: the shipment")
    _eq(store.archive(before=cutoff), 0, "nothing left to archive")
    _eq(
        sorted(r.key for r in store.records()),
        ["order:4", "order:5"],
        "records() lists live records only",
    )
    _eq(store.counts(kind="order")[State.ACKNOWLEDGED], 1, "counts() leave the archive out")
    archived = _stored(store, "order:1")
    _eq(archived, before, "get() answers an archived record unchanged, history included")
    again = store.ensure("order:1", kind="order", subject="1")
    _eq(again.state, State.ACKNOWLEDGED, "ensure() returns the archived record, not a new one")
    _eq(store.claim("order:1", owner="w2", lease=LEASE), None, "an archived record is final")
    _eq(
        [r.key for r in store.claim_next("order", owner="w2", lease=LEASE, limit=10)],
        ["order:4"],
        "claims see live records only",
    )
    reopened = store.mark("order:2", State.PENDING, reason="reopened", actor="ops")
    _eq(reopened.state, State.PENDING, "mark() brings an archived record back")
    _eq(len(reopened.history), len(_stored(store, "order:2").history), "history came back")
    _eq(reopened.history[-1].reason, "reopened", "the move is recorded")
    _ok(
        "order:2" in {r.key for r in store.records(states=State.PENDING)},
        "a record brought back is live again",
    )
    _raises(ValueError, "a naive cutoff", lambda: store.archive(before=datetime(2026, 1, 1)))


def check_history(h: Harness) -> None:
    """Every transition adds one entry with time, states, reason and owner/actor."""
    store = h.new()
    store.ensure("order:1", kind="order", subject="1", reason="webhook")
    times = [h.clock()]
    steps: list[Callable[[], Record | None]] = [
        lambda: store.claim("order:1", owner="w1", lease=LEASE),
        lambda: store.transition("order:1", State.PENDING, owner="w1", reason="503"),
        lambda: store.claim("order:1", owner="w2", lease=LEASE),
        lambda: store.transition("order:1", State.QUARANTINED, owner="w2", reason="unknown SKU X"),
        lambda: store.mark("order:1", State.PENDING, reason="sku map fixed", actor="bob"),
    ]
    for step in steps:
        h.clock.advance(7)
        times.append(h.clock())
        step()
    record = store.get("order:1")
    assert record is not None
    expected = [
        (None, State.PENDING, "webhook", None),
        (State.PENDING, State.IN_FLIGHT, None, "w1"),
        (State.IN_FLIGHT, State.PENDING, "503", "w1"),
        (State.PENDING, State.IN_FLIGHT, None, "w2"),
        (State.IN_FLIGHT, State.QUARANTINED, "unknown SKU X", "w2"),
        (State.QUARANTINED, State.PENDING, "sku map fixed", "bob"),
    ]
    _eq(len(record.history), len(expected), "history length")
    for entry, at, (src, dst, reason, who) in zip(record.history, times, expected, strict=True):
        _eq(entry.at, at, "history timestamp")
        _eq((entry.from_state, entry.to_state, entry.owner), (src, dst, who), "history entry")
        if reason is not None:
            _eq(entry.reason, reason, "history reason")
    _eq(record.reason, "sku map fixed", "record reason is the last transition's")


def check_queries(h: Harness) -> None:
    """``records``, ``counts`` and ``oldest`` filter by state and kind."""
    store = h.new()
    _eq(list(store.records()), [], "records of an empty store")
    _eq(store.oldest(State.PENDING), None, "oldest of an empty store")
    _eq(set(store.counts().values()), {0}, "counts of an empty store")
    _eq(set(store.counts()), set(State), "counts lists every state")
    keys = ["order:b", "order:a", "order:c", "shipment:a"]
    for key in keys:
        store.ensure(key, kind=key.split(":")[0], subject=key)
    h.clock.advance(1)
    store.ensure("order:z", kind="order", subject="z", state=State.QUARANTINED, reason="bad")
    _claimed(store, "order:c", "w1")
    # Same creation time: ordered by key; then by time.
    _eq(
        [r.key for r in store.records()],
        ["order:a", "order:b", "order:c", "shipment:a", "order:z"],
        "records order",
    )
    _eq(
        [r.key for r in store.records(states=State.PENDING, kind="order")],
        ["order:a", "order:b"],
        "records by state and kind",
    )
    _eq(
        [r.key for r in store.records(states=["in_flight", State.QUARANTINED])],
        ["order:c", "order:z"],
        "records by several states",
    )
    _eq([r.key for r in store.records(kind="shipment")], ["shipment:a"], "records by kind")
    _eq(list(store.records(states=[])), [], "records with no state wanted")
    _ok(all(len(r.history) >= 1 for r in store.records()), "records carry their history")
    counts = store.counts()
    _eq(
        (counts[State.PENDING], counts[State.IN_FLIGHT], counts[State.QUARANTINED]),
        (3, 1, 1),
        "counts",
    )
    _eq(store.counts(kind="order")[State.PENDING], 2, "counts by kind")
    _eq(sum(store.counts(kind="stock").values()), 0, "counts of an unused kind")
    oldest = store.oldest(State.PENDING)
    _eq(oldest.key if oldest else None, "order:a", "oldest pending")
    oldest_ship = store.oldest("pending", kind="shipment")
    _eq(oldest_ship.key if oldest_ship else None, "shipment:a", "oldest by kind")
    _eq(store.oldest(State.SENT), None, "oldest of an empty state")


def check_many_records(h: Harness) -> None:
    """``records`` streams a few hundred records, each once, in order."""
    store = h.new()
    expected = []
    for i in range(250):
        key = f"order:{i:04d}"
        store.ensure(key, kind="order", subject=str(i))
        expected.append(key)
        if i % 7 == 0:
            h.clock.advance(timedelta(microseconds=1))
    _eq([r.key for r in store.records()], expected, "all records in creation order")
    _eq(store.counts()[State.PENDING], 250, "count of many records")


def check_cursors(h: Harness) -> None:
    """Cursors store a string per name, last write wins."""
    store = h.new()
    _eq(store.get_cursor("orderwise.order_changes"), None, "missing cursor")
    store.set_cursor("orderwise.order_changes", "2025-03-01T12:00:00Z")
    store.set_cursor("orderwise.stock_changes", "a")
    store.set_cursor("orderwise.order_changes", "2025-03-01T13:00:00Z")
    _eq(store.get_cursor("orderwise.order_changes"), "2025-03-01T13:00:00Z", "overwritten cursor")
    _eq(store.get_cursor("orderwise.stock_changes"), "a", "second cursor")


def check_remember(h: Harness) -> None:
    """``remember`` is True once per (namespace, key); ``prune_remembered`` forgets old keys."""
    store = h.new()
    _eq(store.remember("webhook", "evt-1"), True, "first sight")
    _eq(store.remember("webhook", "evt-1"), False, "second sight")
    _eq(store.remember("other", "evt-1"), True, "namespaces are separate")
    h.clock.advance(3600)
    cutoff = h.clock()
    _eq(store.remember("webhook", "evt-2"), True, "a later key")
    _eq(store.prune_remembered(before=cutoff), 2, "pruned count")
    _eq(store.remember("webhook", "evt-2"), False, "recent key kept")
    _eq(store.remember("webhook", "evt-1"), True, "pruned key is new again")


def _race(n: int, target: Callable[[int], Any]) -> list[Any]:
    barrier = threading.Barrier(n)
    results: list[Any] = [None] * n
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = target(i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise AssertionError(f"a worker thread failed: {errors[0]!r}") from errors[0]
    return results


def _handles(h: Harness, store: IdempotencyStore, n: int) -> list[IdempotencyStore]:
    if h.can_reopen:
        return [h.reopen(store) for _ in range(n)]
    return [store] * n


def _claim_with(handles: list[IdempotencyStore], key: str, i: int) -> Record | None:
    return handles[i].claim(key, owner=f"w{i}", lease=LEASE)


def check_concurrent_claims(h: Harness) -> None:
    """Threads racing for one key: exactly one wins, every time."""
    store = h.new()
    threads = 8
    handles = _handles(h, store, threads)
    for round_ in range(5):
        key = f"order:{round_}"
        _order(store, key)
        results = _race(threads, partial(_claim_with, handles, key))
        winners = [r for r in results if r is not None]
        _eq(len(winners), 1, f"winners of the race for {key}")
        record = store.get(key)
        assert record is not None
        _eq((record.owner, record.attempts), (winners[0].owner, 1), "the winner holds the key")


def check_concurrent_ensure(h: Harness) -> None:
    """Threads ensuring one key create one record."""
    store = h.new()
    handles = _handles(h, store, 6)
    results = _race(6, lambda i: _order(handles[i], "order:1", payload={"by": i}))
    _ok(all(r == results[0] for r in results), "every ensure returns the same record")
    record = store.get("order:1")
    assert record is not None
    _eq(len(record.history), 1, "one creation entry")


def check_concurrent_claim_next(h: Harness) -> None:
    """Workers draining a queue with ``claim_next`` claim every record exactly once."""
    store = h.new()
    total, workers = 60, 6
    for i in range(total):
        _order(store, f"order:{i}")
    handles = _handles(h, store, workers)

    def drain(i: int) -> list[str]:
        mine: list[str] = []
        while batch := handles[i].claim_next("order", owner=f"w{i}", lease=LEASE, limit=4):
            for record in batch:
                handles[i].transition(record.key, State.ACKNOWLEDGED, owner=f"w{i}")
                mine.append(record.key)
        return mine

    claimed = Counter(key for keys in _race(workers, drain) for key in keys)
    _eq(len(claimed), total, "distinct records claimed")
    _eq(max(claimed.values()), 1, "claims per record")
    _eq(store.counts()[State.ACKNOWLEDGED], total, "all acknowledged")


def check_persistence(h: Harness) -> None:
    """Data survives reopening; a restarted owner takes its claim back at once."""
    if not h.can_reopen:
        raise _Skip("the store cannot be reopened")
    store = h.new()
    _order(store, "order:1", payload={"k": "v"})
    _order(store, "order:2")
    _claimed(store, "order:2", "w1")
    store.set_cursor("c", "42")
    store.remember("webhook", "evt-1")
    before = [store.get("order:1"), store.get("order:2")]
    store.close()
    reopened = h.reopen(store)
    _eq([reopened.get("order:1"), reopened.get("order:2")], before, "records after reopen")
    _eq(reopened.get_cursor("c"), "42", "cursor after reopen")
    _eq(reopened.remember("webhook", "evt-1"), False, "remembered key after reopen")
    _eq(reopened.claim("order:2", owner="w2", lease=LEASE), None, "the lease still holds")
    back = reopened.claim("order:2", owner="w1", lease=LEASE)
    _ok(back is not None and back.may_have_been_sent, "restarted owner reclaims, flagged")


def check_close(h: Harness) -> None:
    """``close`` is idempotent."""
    store = h.new()
    _order(store, "order:1")
    store.close()
    store.close()


# ------------------------------------------------------------- the rate ledger (optional)
# A store that offers ``open_rate_ledger()`` shares SCAYLE's rate budgets between its workers
# (see ``scayle_orderwise.store.rate_ledger``); these checks skip a store without one.

_T0 = 1_000_000.0
_SCOPE = "ordersWrite"
_POLICY = BudgetPolicy(headroom=2, slack=2.0, lease_seconds=0.5)
_DEFAULT = (50, 60.0)


def _rate_ledgers(h: Harness, n: int) -> list[RateLedger]:
    store = h.new()
    if not isinstance(store, SupportsRateLedger):
        raise _Skip("the store keeps no rate ledger (workers fall back to a budget each)")
    return [handle.open_rate_ledger() for handle in _handles(h, store, n)]  # type: ignore[attr-defined]


def _close_all(ledgers: Iterable[RateLedger]) -> None:
    for ledger in ledgers:
        ledger.close()


def _take(ledger: RateLedger, now: float, want: int = 3) -> Grant:
    return ledger.acquire(_SCOPE, want=want, now=now, policy=_POLICY, default=_DEFAULT)


def check_rate_ledger_shares_one_budget(h: Harness) -> None:
    """Workers on their own handles together get exactly ``limit - headroom`` calls a window."""
    ledgers = _rate_ledgers(h, 6)
    try:

        def drain(i: int) -> tuple[int, float]:
            total = 0
            while (grant := _take(ledgers[i], _T0 + 0.001 * i)).units:
                total += grant.units
            return total, grant.wait

        results = _race(len(ledgers), drain)
        _eq(sum(units for units, _ in results), 48, "calls granted in one window, all workers")
        _ok(all(wait > 50 for _, wait in results), "a spent window makes everyone wait for it")
        row = ledgers[0].read(_SCOPE)
        _ok(row is not None and row.used == 48 and row.limit == 50, f"shared row: {row}")
    finally:
        _close_all(ledgers)


def check_rate_ledger_window_rolls(h: Harness) -> None:
    """A window ends ``window + slack`` after it opened; calls of its last moments carry over."""
    (ledger,) = _rate_ledgers(h, 1)
    try:
        _eq(_take(ledger, _T0, want=43).units, 43, "a lease of 43")
        end = _T0 + 62.0
        _eq(_take(ledger, end - 1.0, want=5).units, 1, "one at a time in the closing slack")
        _eq(_take(ledger, end - 0.5, want=5).units, 1, "one at a time in the closing slack")
        _eq(_take(ledger, end - 0.1, want=50).units, 1, "one at a time in the closing slack")
        _eq(_take(ledger, end - 0.05, want=50).units, 1, "one at a time in the closing slack")
        _eq(_take(ledger, end - 0.01, want=50).units, 1, "one at a time in the closing slack")
        _eq(_take(ledger, end - 0.005, want=50).units, 0, "the window is spent (48)")
        grant = _take(ledger, end, want=100)
        _eq(grant.units, 48 - 5, "new window, less the 5 calls that may arrive in it")
    finally:
        _close_all([ledger])


def check_rate_ledger_carries_late_calls(h: Harness) -> None:
    """Calls a worker reports as late (unanswered when their window ended) count in the next."""
    (ledger,) = _rate_ledgers(h, 1)
    try:
        first = _take(ledger, _T0, want=1)
        late = {first.window_seq: 3}
        grant = ledger.acquire(
            _SCOPE, want=50, now=_T0 + 62.0, policy=_POLICY, default=_DEFAULT, carry=late
        )
        _eq(grant.carried, (first.window_seq,), "windows carried")
        _eq(grant.units, 48 - 3, "the new window, less the three late calls")
    finally:
        _close_all([ledger])


def check_rate_ledger_block_is_shared(h: Harness) -> None:
    """A 429 seen by one worker holds every worker until its ``Retry-After``."""
    ledgers = _rate_ledgers(h, 2)
    try:
        _take(ledgers[0], _T0)
        ledgers[0].block(_SCOPE, until=_T0 + 5.0, now=_T0, policy=_POLICY, default=_DEFAULT)
        held = _take(ledgers[1], _T0 + 1.0)
        _eq((held.units, round(held.wait, 3)), (0, 4.0), "the other worker waits")
        _ok(_take(ledgers[1], _T0 + 5.0).units > 0, "calls go again after the block")
    finally:
        _close_all(ledgers)


def check_rate_ledger_observe_is_shared(h: Harness) -> None:
    """SCAYLE's ``X-RateLimit-*`` answer seen by one worker bounds every worker."""
    ledgers = _rate_ledgers(h, 2)
    try:
        _take(ledgers[0], _T0, want=1)
        row = ledgers[0].observe(
            _SCOPE,
            limit=20,
            remaining=5,
            reset_after=30.0,
            now=_T0 + 0.5,
            policy=_POLICY,
            default=_DEFAULT,
        )
        _eq((row.limit, row.used), (20, 15), "limit and count from the answer")
        granted = 0
        while (grant := _take(ledgers[1], _T0 + 1.0)).units:
            granted += grant.units
        _eq(granted, 3, "the rest of SCAYLE's count, less the headroom")
        _eq(round(grant.wait, 3), 29.5, "until SCAYLE's reset")
    finally:
        _close_all(ledgers)


CHECKS: dict[str, Callable[[Harness], None]] = {
    name.removeprefix("check_"): fn
    for name, fn in sorted(globals().items())
    if name.startswith("check_") and callable(fn)
}
"""Every check by name (without the ``check_`` prefix)."""


def run_conformance(
    factory: StoreFactory,
    *,
    reopen: ReopenStore | None = None,
    checks: Iterable[str] | None = None,
) -> list[str]:
    """Run the checks (all by default) against stores built by ``factory(clock)``.

    Returns the names of the checks that ran; raises ``AssertionError`` naming the first
    failing check. Checks that need ``reopen`` are skipped without it.
    """
    names = list(CHECKS) if checks is None else list(checks)
    ran = []
    for name in names:
        try:
            run_check(name, factory, reopen=reopen)
        except _Skip:
            continue
        except AssertionError as exc:
            raise AssertionError(f"store conformance check {name!r} failed: {exc}") from exc
        ran.append(name)
    return ran


def run_check(name: str, factory: StoreFactory, *, reopen: ReopenStore | None = None) -> None:
    """Run one check on a fresh harness, closing its stores afterwards."""
    harness = Harness(factory, reopen)
    try:
        CHECKS[name](harness)
    finally:
        harness.close()


class StoreConformanceSuite:
    """Subclass in a pytest module (as ``TestSomething``) and implement ``make_store``."""

    def make_store(self, clock: Clock) -> IdempotencyStore:
        """A new, empty store reading time from ``clock``."""
        raise NotImplementedError

    def reopen_store(self, store: IdempotencyStore, clock: Clock) -> IdempotencyStore:
        """Another handle on ``store``'s data; leave unimplemented if there is none."""
        raise NotImplementedError

    def _run(self, name: str) -> None:
        supports_reopen = type(self).reopen_store is not StoreConformanceSuite.reopen_store
        try:
            run_check(name, self.make_store, reopen=self.reopen_store if supports_reopen else None)
        except _Skip as exc:
            import pytest

            pytest.skip(str(exc))


def _make_test(name: str) -> Callable[[StoreConformanceSuite], None]:
    def test(self: StoreConformanceSuite) -> None:
        self._run(name)

    test.__name__ = f"test_{name}"
    test.__doc__ = CHECKS[name].__doc__
    return test


for _name in CHECKS:
    setattr(StoreConformanceSuite, f"test_{_name}", _make_test(_name))
