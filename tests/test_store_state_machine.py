"""The ledger against a simple model under random claims, transitions, crashes and lease expiry.

Several workers claim (by key and in batches), finish, back off, fail; people mark records;
workers crash (they forget what they held, the store does not) and come back; the clock jumps
past leases. After every step the store must agree with the model, the history must have grown
by exactly one entry per transition, and no claim may ever be granted while another owner holds
an unexpired lease.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from scayle_orderwise.store import (
    ClaimHeldError,
    ClaimLostError,
    IdempotencyStore,
    InvalidTransitionError,
    MemoryStore,
    SqliteStore,
    State,
    UnknownKeyError,
)
from scayle_orderwise.testing import ManualClock

KEYS = [f"order:{i}" for i in range(4)]
OWNERS = ["w0", "w1", "w2"]
LEASE = timedelta(seconds=60)
RETRY_STATES = {State.PENDING, State.SENT, State.FAILED}

# The state graph, written out independently of the implementation.
OWNER_TARGETS = [
    State.PENDING,
    State.SENT,
    State.ACKNOWLEDGED,
    State.FAILED,
    State.QUARANTINED,
    State.CANCELLED,
]
ADMIN = {
    State.PENDING: {State.QUARANTINED, State.FAILED, State.ACKNOWLEDGED, State.CANCELLED},
    State.SENT: {
        State.PENDING,
        State.FAILED,
        State.ACKNOWLEDGED,
        State.QUARANTINED,
        State.CANCELLED,
    },
    State.FAILED: {State.PENDING, State.ACKNOWLEDGED, State.QUARANTINED, State.CANCELLED},
    State.QUARANTINED: {State.PENDING, State.FAILED, State.ACKNOWLEDGED, State.CANCELLED},
    State.ACKNOWLEDGED: {State.PENDING, State.CANCELLED},
    State.CANCELLED: set(),
}


@dataclasses.dataclass
class Model:
    state: State
    updated_at: datetime
    created_at: datetime
    owner: str | None = None
    lease_expires_at: datetime | None = None
    next_attempt_at: datetime | None = None
    claimed_from: State | None = None
    attempts: int = 0
    may_have_been_sent: bool = False
    history: int = 1

    def due(self) -> datetime | None:
        if self.state is State.IN_FLIGHT:
            return self.lease_expires_at
        if self.state in (State.PENDING, State.SENT):
            return self.next_attempt_at or self.updated_at
        if self.state is State.FAILED:
            return self.next_attempt_at
        return None

    def claimable(self, owner: str, now: datetime) -> bool:
        if self.state is State.IN_FLIGHT and self.owner == owner:
            return True
        due = self.due()
        return due is not None and due <= now

    def claim(self, owner: str, now: datetime) -> None:
        self.may_have_been_sent |= self.state in (State.IN_FLIGHT, State.SENT)
        self.claimed_from = self.state
        self.state = State.IN_FLIGHT
        self.owner = owner
        self.lease_expires_at = now + LEASE
        self.next_attempt_at = None
        self.attempts += 1
        self.updated_at = now
        self.history += 1

    def move(self, target: State, now: datetime, retry: datetime | None) -> None:
        self.may_have_been_sent = (
            self.may_have_been_sent or target is State.SENT
        ) and target is not State.ACKNOWLEDGED
        self.state = target
        self.owner = self.lease_expires_at = self.claimed_from = None
        self.next_attempt_at = retry
        self.updated_at = now
        self.history += 1


class LedgerMachine(RuleBasedStateMachine):
    """Subclassed per store below."""

    def make_store(self, clock: ManualClock) -> IdempotencyStore:
        raise NotImplementedError

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.store = self.make_store(self.clock)
        self.model: dict[str, Model] = {}
        # What each worker believes it holds (a crash wipes this, not the store).
        self.held: dict[str, set[str]] = {owner: set() for owner in OWNERS}
        # The last claim the store granted per key: (owner, lease expiry), from store answers.
        self.grants: dict[str, tuple[str, datetime]] = {}

    def teardown(self) -> None:
        self.store.close()

    # ------------------------------------------------------------------------------- helpers

    def _granted(self, key: str, owner: str, expires: datetime | None, now: datetime) -> None:
        previous = self.grants.get(key)
        if previous is not None and previous[0] != owner:
            assert previous[1] <= now, (
                f"{key} granted to {owner} while {previous[0]} held it until {previous[1]}"
            )
        assert expires == now + LEASE
        self.grants[key] = (owner, expires)
        for other in OWNERS:
            self.held[other].discard(key)
        self.held[owner].add(key)

    def _released(self, key: str) -> None:
        self.grants.pop(key, None)
        for owner in OWNERS:
            self.held[owner].discard(key)

    # --------------------------------------------------------------------------------- rules

    @rule(
        key=st.sampled_from(KEYS),
        state=st.sampled_from([State.PENDING, State.PENDING, State.QUARANTINED, State.CANCELLED]),
    )
    def ensure(self, key: str, state: State) -> None:
        record = self.store.ensure(key, kind="order", subject=key, state=state)
        if key not in self.model:
            now = self.clock()
            self.model[key] = Model(state=state, updated_at=now, created_at=now)
        assert record.state is self.model[key].state

    @rule(owner=st.sampled_from(OWNERS), key=st.sampled_from(KEYS))
    def claim(self, owner: str, key: str) -> None:
        now = self.clock()
        expected = key in self.model and self.model[key].claimable(owner, now)
        record = self.store.claim(key, owner=owner, lease=LEASE)
        assert (record is not None) == expected, (key, owner, self.model.get(key))
        if record is not None:
            self.model[key].claim(owner, now)
            self._granted(key, owner, record.lease_expires_at, now)

    @rule(owner=st.sampled_from(OWNERS), limit=st.integers(min_value=1, max_value=3))
    def claim_next(self, owner: str, limit: int) -> None:
        now = self.clock()
        due = [k for k, m in self.model.items() if m.claimable(owner, now)]
        due.sort(key=lambda k: (self.model[k].due() or now, k))
        batch = self.store.claim_next("order", owner=owner, lease=LEASE, limit=limit)
        assert [r.key for r in batch] == due[:limit]
        for record in batch:
            self.model[record.key].claim(owner, now)
            self._granted(record.key, owner, record.lease_expires_at, now)

    @rule(
        owner=st.sampled_from(OWNERS),
        key=st.sampled_from(KEYS),
        to=st.sampled_from(OWNER_TARGETS),
        delay=st.sampled_from([None, 0, 30, 120]),
    )
    def transition(self, owner: str, key: str, to: State, delay: int | None) -> None:
        target = to
        now = self.clock()
        retry = (
            None if delay is None or target not in RETRY_STATES else now + timedelta(seconds=delay)
        )
        model = self.model.get(key)
        try:
            self.store.transition(
                key, target, owner=owner, reason=f"{owner}: {target}", next_attempt_at=retry
            )
        except UnknownKeyError:
            assert model is None
        except ClaimLostError:
            assert model is not None
            assert model.state is not State.IN_FLIGHT or model.owner != owner
            self.held[owner].discard(key)
        else:
            assert model is not None and model.state is State.IN_FLIGHT and model.owner == owner
            model.move(target, now, retry)
            self._released(key)

    @rule(key=st.sampled_from(KEYS), to=st.sampled_from(list(State)))
    def mark(self, key: str, to: State) -> None:
        target = to
        now = self.clock()
        model = self.model.get(key)
        try:
            self.store.mark(key, target, reason="ops", actor="ops")
        except UnknownKeyError:
            assert model is None
        except ClaimHeldError:
            assert model is not None and model.state is State.IN_FLIGHT
        except InvalidTransitionError:
            assert model is not None and model.state is not State.IN_FLIGHT
            assert target not in ADMIN[model.state]
        else:
            assert model is not None and target in ADMIN.get(model.state, set())
            model.move(target, now, None)
            self._released(key)

    @rule(owner=st.sampled_from(OWNERS), key=st.sampled_from(KEYS))
    def renew(self, owner: str, key: str) -> None:
        now = self.clock()
        model = self.model.get(key)
        try:
            record = self.store.renew(key, owner=owner, lease=LEASE)
        except UnknownKeyError:
            assert model is None
        except ClaimLostError:
            assert model is not None and (
                model.state is not State.IN_FLIGHT or model.owner != owner
            )
        else:
            assert model is not None and model.state is State.IN_FLIGHT and model.owner == owner
            model.lease_expires_at = now + LEASE
            model.updated_at = now
            assert record.lease_expires_at == now + LEASE
            self.grants[key] = (owner, now + LEASE)

    @precondition(lambda self: any(self.held.values()))
    @rule(owner=st.sampled_from(OWNERS))
    def crash(self, owner: str) -> None:
        """The worker dies: it forgets its claims; the store keeps them until the lease ends."""
        self.held[owner].clear()

    @rule(seconds=st.sampled_from([1, 29, 30, 59, 60, 61, 200]))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    # ---------------------------------------------------------------------------- invariants

    @invariant()
    def store_matches_model(self) -> None:
        for key in KEYS:
            record = self.store.get(key)
            model = self.model.get(key)
            if model is None:
                assert record is None
                continue
            assert record is not None
            actual = (
                record.state,
                record.owner,
                record.lease_expires_at,
                record.next_attempt_at,
                record.claimed_from,
                record.attempts,
                record.may_have_been_sent,
                len(record.history),
                record.updated_at,
            )
            expected = (
                model.state,
                model.owner,
                model.lease_expires_at,
                model.next_attempt_at,
                model.claimed_from,
                model.attempts,
                model.may_have_been_sent,
                model.history,
                model.updated_at,
            )
            assert actual == expected, (key, actual, expected)
            assert record.history[-1].to_state is record.state

    @invariant()
    def one_holder_per_key(self) -> None:
        now = self.clock()
        for key in KEYS:
            believers = [o for o in OWNERS if key in self.held[o]]
            record = self.model.get(key)
            live = [
                o
                for o in believers
                if record is not None
                and record.state is State.IN_FLIGHT
                and record.owner == o
                and record.lease_expires_at is not None
                and record.lease_expires_at > now
            ]
            assert len(live) <= 1, (key, live)

    @invariant()
    def counts_match(self) -> None:
        counts = self.store.counts()
        for state in State:
            assert counts[state] == sum(1 for m in self.model.values() if m.state is state)


class MemoryLedger(LedgerMachine):
    def make_store(self, clock: ManualClock) -> IdempotencyStore:
        return MemoryStore(clock=clock)


class SqliteLedger(LedgerMachine):
    def make_store(self, clock: ManualClock) -> IdempotencyStore:
        return SqliteStore(":memory:", clock=clock)


_settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
MemoryLedger.TestCase.settings = _settings
SqliteLedger.TestCase.settings = _settings
TestMemoryLedger = MemoryLedger.TestCase
TestSqliteLedger = SqliteLedger.TestCase
