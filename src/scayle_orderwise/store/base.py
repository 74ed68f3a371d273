"""The idempotency store: a ledger of work items that must happen exactly once.

Every outbound side effect the connector performs (pushing an order to OrderWise, sending a
shipment or a cancellation to SCAYLE, pushing a stock figure) is a :class:`Record` under a
deterministic key. Workers *claim* records atomically, do the work, and *transition* them to the
outcome. The store guarantees that two workers never hold the same key at once and records every
move with a timestamp and a reason, so the history of an order can be shown.

State graph
-----------

Claims (``claim`` / ``claim_next``) move a *due* record to ``in_flight``::

    pending ─┐                         (due: next_attempt_at is None or <= now)
    sent ────┼──► in_flight            (due: next_attempt_at is None or <= now)
    failed ──┤                         (due: next_attempt_at is set and <= now; None = parked)
    in_flight┘                         (lease expired, or the same owner takes its claim back)

The owner of an ``in_flight`` claim leaves it with ``transition``::

    in_flight ──► pending        did not reach the remote side; retry at next_attempt_at
              ──► sent           may have reached the remote side: look up before re-sending
              ──► acknowledged   the remote side confirmed it (external_id known)
              ──► failed         the attempt failed; retried at next_attempt_at, parked if None
              ──► quarantined    needs a person (bad input), with the reason
              ──► cancelled      nothing more to do (the order was cancelled)

Administrative moves (``mark``) need no claim, never touch an ``in_flight`` record
(:class:`ClaimHeldError`) and never start from ``cancelled`` (terminal)::

    pending      ──► quarantined, failed, acknowledged, cancelled
    sent         ──► pending, failed, acknowledged, quarantined, cancelled
    failed       ──► pending, acknowledged, quarantined, cancelled
    quarantined  ──► pending (release by a person), failed, acknowledged, cancelled
    acknowledged ──► pending (re-open for new work, e.g. a changed stock figure), cancelled

Anything else raises :class:`InvalidTransitionError`. ``ensure`` creates a record directly in
any state except ``in_flight`` (e.g. ``quarantined`` for a malformed order, ``cancelled`` for an
order cancelled before import).

``may_have_been_sent`` is the safety flag for non-idempotent remote calls: it becomes ``True``
when a record enters ``sent`` or when a claim takes over an ``in_flight`` record (the previous
attempt died and may have sent its request), and is cleared only on ``acknowledged``. A worker
that claims a record with the flag set must look the object up on the remote side before
sending it again.

Times are timezone-aware UTC ``datetime`` objects with microsecond precision; each store takes a
``clock`` (a callable returning the current aware time) so tests control lease expiry.

The ``apply_*`` functions below are the reference semantics, written once. The built-in stores
use them, and a custom store may too.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from ..errors import ClaimLostError, StoreError

__all__ = [
    "ADMIN_TRANSITIONS",
    "ARCHIVABLE_STATES",
    "CLAIMABLE_STATES",
    "CLAIM_REASON",
    "OWNER_TRANSITIONS",
    "RECLAIM_REASON",
    "TAKEOVER_REASON",
    "ClaimHeldError",
    "ClaimLostError",
    "Clock",
    "IdempotencyStore",
    "InvalidTransitionError",
    "KeyConflictError",
    "Kind",
    "Record",
    "State",
    "StoreBase",
    "StoreError",
    "Transition",
    "UnknownKeyError",
    "apply_claim",
    "apply_mark",
    "apply_renew",
    "apply_transition",
    "as_utc",
    "check_archive_args",
    "check_claim_args",
    "check_same_identity",
    "counts_template",
    "due_at",
    "is_claimable",
    "new_record",
    "normalize_payload",
    "normalize_states",
    "utc_now",
]


class State(enum.StrEnum):
    """Where a record stands. A ``StrEnum``: ``record.state == "quarantined"`` works."""

    PENDING = "pending"
    """Waiting to be claimed (from ``next_attempt_at`` on, if set)."""
    IN_FLIGHT = "in_flight"
    """Claimed by ``owner`` until ``lease_expires_at``."""
    SENT = "sent"
    """The request may have reached the remote side: never re-send without a lookup."""
    ACKNOWLEDGED = "acknowledged"
    """The remote side confirmed it; ``external_id`` holds its id."""
    QUARANTINED = "quarantined"
    """Needs a person (mapping error and the like); ``reason`` says why."""
    FAILED = "failed"
    """The last attempt failed; retried at ``next_attempt_at``, parked when that is ``None``."""
    CANCELLED = "cancelled"
    """Nothing more to do (terminal)."""


class Kind(enum.StrEnum):
    """Record kinds used by the built-in flows; any other non-empty string works too."""

    ORDER = "order"
    SHIPMENT = "shipment"
    CANCELLATION = "cancellation"
    STOCK = "stock"


CLAIMABLE_STATES: frozenset[State] = frozenset(
    {State.PENDING, State.SENT, State.FAILED, State.IN_FLIGHT}
)
"""States a claim may start from (subject to due time, lease and owner)."""

OWNER_TRANSITIONS: frozenset[State] = frozenset(
    {
        State.PENDING,
        State.SENT,
        State.ACKNOWLEDGED,
        State.FAILED,
        State.QUARANTINED,
        State.CANCELLED,
    }
)
"""Targets the owner of an ``in_flight`` claim may move it to with ``transition``."""

ADMIN_TRANSITIONS: Mapping[State, frozenset[State]] = {
    State.PENDING: frozenset(
        {State.QUARANTINED, State.FAILED, State.ACKNOWLEDGED, State.CANCELLED}
    ),
    State.SENT: frozenset(
        {State.PENDING, State.FAILED, State.ACKNOWLEDGED, State.QUARANTINED, State.CANCELLED}
    ),
    State.FAILED: frozenset(
        {State.PENDING, State.ACKNOWLEDGED, State.QUARANTINED, State.CANCELLED}
    ),
    State.QUARANTINED: frozenset(
        {State.PENDING, State.FAILED, State.ACKNOWLEDGED, State.CANCELLED}
    ),
    State.ACKNOWLEDGED: frozenset({State.PENDING, State.CANCELLED}),
    State.CANCELLED: frozenset(),
    State.IN_FLIGHT: frozenset(),
}
"""Allowed ``mark`` moves, by current state."""

_RETRY_STATES = frozenset({State.PENDING, State.SENT, State.FAILED})

ARCHIVABLE_STATES: frozenset[State] = frozenset({State.ACKNOWLEDGED, State.CANCELLED})
"""Final states whose records ``archive`` may move out of the live ledger."""

Clock = Callable[[], datetime]
"""A callable returning the current time as an aware ``datetime``."""


class InvalidTransitionError(StoreError, ValueError):
    """The requested move is not in the state graph (see :mod:`scayle_orderwise.store.base`)."""


class ClaimHeldError(InvalidTransitionError):
    """``mark`` was refused because the record is ``in_flight``: claim it, or try again later."""


class UnknownKeyError(StoreError, LookupError):
    """No record exists under the key."""


class KeyConflictError(StoreError, ValueError):
    """``ensure`` found the key already used for a different kind or subject."""


def utc_now() -> datetime:
    """The current time, aware, in UTC (the default clock of every store)."""
    return datetime.now(UTC)


def as_utc(value: datetime, name: str = "time") -> datetime:
    """``value`` converted to UTC; naive datetimes are refused with ``ValueError``."""
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value!r}")
    return value.astimezone(UTC)


def normalize_payload(payload: Mapping[str, Any] | None) -> dict[str, Any]:
    """A detached JSON round-trip copy of ``payload``; ``TypeError`` if it is not JSON-able."""
    if payload is None:
        return {}
    if not isinstance(payload, Mapping):
        raise TypeError(f"payload must be a mapping, got {type(payload).__name__}")
    try:
        copied = json.loads(json.dumps(dict(payload), sort_keys=True, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise TypeError(f"payload must be JSON-serialisable: {exc}") from None
    if not isinstance(copied, dict):  # pragma: no cover - a Mapping always dumps to an object
        raise TypeError("payload must be a JSON object")
    return copied


def normalize_states(states: State | str | Iterable[State | str] | None) -> frozenset[State] | None:
    """``records(states=...)`` argument as a set of :class:`State` (``None`` = all)."""
    if states is None:
        return None
    if isinstance(states, str):
        return frozenset({State(states)})
    return frozenset(State(s) for s in states)


@attrs.frozen
class Transition:
    """One entry of a record's history.

    ``from_state`` is ``None`` for the entry that created the record; ``owner`` is the claim
    owner for claims and owner transitions, the ``actor`` for ``mark``.
    """

    at: datetime
    from_state: State | None
    to_state: State
    reason: str | None = None
    owner: str | None = None


@attrs.frozen
class Record:
    """A ledger entry as read from a store (an immutable snapshot).

    ``payload`` is a small JSON object for flow data (item ids per line, consignment, last sent
    stock value, ...). ``claimed_from`` is the state the current ``in_flight`` claim started from
    (``None`` outside ``in_flight``). ``attempts`` counts claims. ``history`` lists every
    transition, oldest first, starting with the creation.
    """

    key: str
    kind: str
    subject: str
    state: State
    created_at: datetime
    updated_at: datetime
    reason: str | None = None
    external_id: str | None = None
    external_ref: str | None = None
    payload: dict[str, Any] = attrs.field(factory=dict, hash=False)
    attempts: int = 0
    owner: str | None = None
    lease_expires_at: datetime | None = None
    next_attempt_at: datetime | None = None
    claimed_from: State | None = None
    may_have_been_sent: bool = False
    history: tuple[Transition, ...] = ()

    def is_held(self, now: datetime) -> bool:
        """True while the record is ``in_flight`` under an unexpired lease."""
        return (
            self.state is State.IN_FLIGHT
            and self.lease_expires_at is not None
            and self.lease_expires_at > as_utc(now)
        )

    @property
    def is_terminal(self) -> bool:
        """True for states no flow moves on from by itself (acknowledged, quarantined, cancelled,
        and failed without a retry time)."""
        if self.state is State.FAILED:
            return self.next_attempt_at is None
        return self.state in (State.ACKNOWLEDGED, State.QUARANTINED, State.CANCELLED)


@runtime_checkable
class IdempotencyStore(Protocol):
    """What the connector needs from a ledger. See the module docstring for the state graph.

    All methods are safe to call from several threads; the SQL stores are safe across processes
    and (PostgreSQL) machines. ``owner`` identifies one live worker: two concurrent callers must
    never share an owner, since an owner may always take its own ``in_flight`` claims back.
    """

    def ensure(
        self,
        key: str,
        *,
        kind: str,
        subject: str,
        payload: Mapping[str, Any] | None = None,
        state: State | str = State.PENDING,
        reason: str | None = None,
    ) -> Record:
        """Create the record if absent and return it; return the existing one unchanged otherwise.

        Atomic: concurrent calls create one record. ``state`` may be any state but ``in_flight``
        (:class:`InvalidTransitionError`). An existing key with another ``kind`` or ``subject``
        raises :class:`KeyConflictError`; a different ``payload``/``state`` is ignored.
        """
        ...

    def get(self, key: str) -> Record | None:
        """The record under ``key`` with its full history, or ``None``."""
        ...

    def claim(
        self, key: str, *, owner: str, lease: timedelta, now: datetime | None = None
    ) -> Record | None:
        """Atomically claim one record; ``None`` if it is missing or not claimable now.

        Claimable: ``pending``/``sent`` whose ``next_attempt_at`` is unset or due, ``failed``
        whose ``next_attempt_at`` is set and due, ``in_flight`` whose lease has expired, or
        ``in_flight`` held by this same ``owner`` (a restarted worker takes its claims back at
        once). The returned record is ``in_flight`` with ``owner``, ``lease_expires_at = now +
        lease``, ``attempts`` + 1, ``claimed_from`` = the previous state, ``next_attempt_at``
        cleared, and one new history entry. If ``may_have_been_sent`` is true the caller must
        look the object up remotely before sending again.
        """
        ...

    def claim_next(
        self,
        kind: str,
        *,
        owner: str,
        lease: timedelta,
        limit: int = 10,
        now: datetime | None = None,
    ) -> list[Record]:
        """Atomically claim up to ``limit`` claimable records of ``kind`` (same rules as
        ``claim``), most overdue first (ties by key). Concurrent callers get disjoint batches.

        Records this ``owner`` already holds are included: a flow that loops on ``claim_next``
        must move every claimed record out of ``in_flight`` (or stop on a key it has seen).
        """
        ...

    def renew(
        self,
        key: str,
        *,
        owner: str,
        lease: timedelta,
        now: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Record:
        """Extend a held claim to ``now + lease`` (no history entry).

        ``payload``, when given, replaces the record's payload in the same atomic write: a flow
        records a recovery point (e.g. "a request may leave now") together with the longer lease.
        :class:`ClaimLostError` if ``owner`` does not hold the record, :class:`UnknownKeyError`
        if it does not exist.
        """
        ...

    def transition(
        self,
        key: str,
        to_state: State | str,
        *,
        owner: str,
        reason: str | None = None,
        external_id: str | None = None,
        external_ref: str | None = None,
        payload: Mapping[str, Any] | None = None,
        next_attempt_at: datetime | None = None,
    ) -> Record:
        """Move an ``in_flight`` record held by ``owner`` to ``to_state`` and release the claim.

        ``to_state`` must be in :data:`OWNER_TRANSITIONS` (else :class:`InvalidTransitionError`).
        The owner keeps the claim after its lease expired as long as nobody took it over; if
        another owner holds it or it left ``in_flight``, :class:`ClaimLostError`.
        ``reason`` replaces the record's reason; ``external_id``, ``external_ref`` and
        ``payload`` replace the stored values when given (``None`` keeps them);
        ``next_attempt_at`` (only for ``pending``, ``sent``, ``failed``; ``ValueError``
        otherwise) sets when the record becomes due again (``None``: at once, or parked for
        ``failed``). Adds one history entry with ``owner``.
        """
        ...

    def mark(
        self,
        key: str,
        to_state: State | str,
        *,
        reason: str,
        actor: str | None = None,
        external_id: str | None = None,
        external_ref: str | None = None,
        payload: Mapping[str, Any] | None = None,
        next_attempt_at: datetime | None = None,
    ) -> Record:
        """An administrative move without a claim (a person releasing a quarantine, a flow
        recording a cancelled order). Allowed moves are :data:`ADMIN_TRANSITIONS`; an
        ``in_flight`` record raises :class:`ClaimHeldError`, other refused moves
        :class:`InvalidTransitionError`. Fields as in ``transition``; the history entry's
        owner is ``actor``.
        """
        ...

    def records(
        self,
        states: State | str | Iterable[State | str] | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        """Stream records (with history) matching the filters, ordered by ``created_at``
        then ``key``. Pages through the store; it does not hold a transaction open."""
        ...

    def counts(self, kind: str | None = None) -> dict[State, int]:
        """Number of records per state (every state present, zeros included)."""
        ...

    def oldest(self, state: State | str, kind: str | None = None) -> Record | None:
        """The earliest created record currently in ``state`` (ties by key), or ``None``."""
        ...

    def archive(
        self, *, before: datetime, kind: str | None = None, limit: int | None = None
    ) -> int:
        """Move records in a final state (:data:`ARCHIVABLE_STATES`) last updated before
        ``before`` out of the live ledger into its archive, history included; returns how many.

        Archived records still answer ``get`` and ``ensure`` (returned unchanged), so nothing
        is ever done twice, and ``mark`` brings one back before moving it. ``records``,
        ``counts``, ``oldest`` and claims see live records only, so their cost does not grow
        with the ledger's age. ``kind`` narrows it to one kind; ``limit`` caps one call.
        """
        ...

    def get_cursor(self, name: str) -> str | None:
        """A flow's saved watermark (e.g. the last export timestamp), or ``None``."""
        ...

    def set_cursor(self, name: str, value: str) -> None:
        """Save a flow's watermark (last write wins)."""
        ...

    def remember(self, namespace: str, key: str) -> bool:
        """Atomically note ``key`` in ``namespace``; ``True`` the first time, ``False`` after
        (e.g. webhook envelope keys)."""
        ...

    def prune_remembered(self, *, before: datetime) -> int:
        """Forget keys remembered before ``before``; returns how many were dropped."""
        ...

    def close(self) -> None:
        """Release connections. Idempotent."""
        ...

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


class StoreBase:
    """Shared plumbing for stores: the clock, the record updates built on ``_update``, and the
    context-manager protocol."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        self._clock: Clock = clock or utc_now

    def _now(self, now: datetime | None = None) -> datetime:
        return as_utc(now if now is not None else self._clock(), "now")

    def _update(
        self, key: str, change: Callable[[Record], Record], *, history: bool = True
    ) -> Record:
        """Apply ``change`` to the stored record atomically, save it and return it.

        Each store implements this one primitive (a lock, a write transaction, a row lock);
        ``renew``, ``transition`` and ``mark`` below are written once on top of it.
        ``UnknownKeyError`` when the key does not exist.
        """
        raise NotImplementedError

    def renew(
        self,
        key: str,
        *,
        owner: str,
        lease: timedelta,
        now: datetime | None = None,
        payload: Mapping[str, Any] | None = None,
    ) -> Record:
        """See ``IdempotencyStore.renew``."""
        return self._update(
            key,
            lambda record: apply_renew(
                record, owner=owner, lease=lease, now=self._now(now), payload=payload
            ),
            history=False,
        )

    def transition(
        self,
        key: str,
        to_state: State | str,
        *,
        owner: str,
        reason: str | None = None,
        external_id: str | None = None,
        external_ref: str | None = None,
        payload: Mapping[str, Any] | None = None,
        next_attempt_at: datetime | None = None,
    ) -> Record:
        """See ``IdempotencyStore.transition``."""
        return self._update(
            key,
            lambda record: apply_transition(
                record,
                to_state,
                owner=owner,
                now=self._now(),
                reason=reason,
                external_id=external_id,
                external_ref=external_ref,
                payload=payload,
                next_attempt_at=next_attempt_at,
            ),
        )

    def mark(
        self,
        key: str,
        to_state: State | str,
        *,
        reason: str,
        actor: str | None = None,
        external_id: str | None = None,
        external_ref: str | None = None,
        payload: Mapping[str, Any] | None = None,
        next_attempt_at: datetime | None = None,
    ) -> Record:
        """See ``IdempotencyStore.mark``."""
        return self._update(
            key,
            lambda record: apply_mark(
                record,
                to_state,
                reason=reason,
                now=self._now(),
                actor=actor,
                external_id=external_id,
                external_ref=external_ref,
                payload=payload,
                next_attempt_at=next_attempt_at,
            ),
        )

    def close(self) -> None:
        """Release resources (no-op here)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- reference semantics


def due_at(record: Record) -> datetime | None:
    """When the record becomes claimable by any owner (``None``: never by itself).

    Stores may persist this value to index claims; it is ``lease_expires_at`` for
    ``in_flight``, ``next_attempt_at`` (or the last update) for ``pending``/``sent``,
    ``next_attempt_at`` for ``failed``, and ``None`` for the other states.
    """
    if record.state is State.IN_FLIGHT:
        return record.lease_expires_at
    if record.state in (State.PENDING, State.SENT):
        return record.next_attempt_at or record.updated_at
    if record.state is State.FAILED:
        return record.next_attempt_at
    return None


def is_claimable(record: Record, owner: str, now: datetime) -> bool:
    """Whether ``owner`` may claim ``record`` at ``now`` (see ``IdempotencyStore.claim``)."""
    if record.state is State.IN_FLIGHT and record.owner == owner:
        return True
    due = due_at(record)
    return due is not None and due <= now


def check_claim_args(owner: str, lease: timedelta) -> None:
    """``ValueError`` unless ``owner`` is a non-empty string and ``lease`` a positive timedelta."""
    _check_owner(owner)
    _check_lease(lease)


def _check_lease(lease: timedelta) -> None:
    if not isinstance(lease, timedelta) or lease <= timedelta(0):
        raise ValueError(f"lease must be a positive timedelta, got {lease!r}")


def _check_owner(owner: str) -> None:
    if not isinstance(owner, str) or not owner:
        raise ValueError("owner must be a non-empty string")


def _check_retry(to_state: State, next_attempt_at: datetime | None) -> datetime | None:
    if next_attempt_at is None:
        return None
    if to_state not in _RETRY_STATES:
        raise ValueError(f"next_attempt_at only applies to pending, sent or failed, not {to_state}")
    return as_utc(next_attempt_at, "next_attempt_at")


CLAIM_REASON = "claimed"
"""History reason of a claim from pending, sent or failed."""
RECLAIM_REASON = "reclaimed by the same owner"
"""History reason when an owner takes its own ``in_flight`` claim back."""
TAKEOVER_REASON = "lease of {owner} expired; taken over"
"""History reason when a claim takes over an expired lease (``{owner}``: the previous owner)."""


def _claim_reason(record: Record, owner: str) -> str:
    if record.state is State.IN_FLIGHT:
        if record.owner == owner:
            return RECLAIM_REASON
        return TAKEOVER_REASON.format(owner=record.owner)
    return CLAIM_REASON


def new_record(
    key: str,
    *,
    kind: str,
    subject: str,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
    state: State | str = State.PENDING,
    reason: str | None = None,
) -> Record:
    """A fresh record as ``ensure`` creates it (validates every argument)."""
    if not isinstance(key, str) or not key:
        raise ValueError("key must be a non-empty string")
    if not isinstance(kind, str) or not kind:
        raise ValueError("kind must be a non-empty string")
    if not isinstance(subject, str):
        raise ValueError("subject must be a string")
    target = State(state)
    if target is State.IN_FLIGHT:
        raise InvalidTransitionError(f"{key}: a record cannot be created in_flight; claim it")
    return Record(
        key=key,
        kind=str(kind),
        subject=subject,
        state=target,
        reason=reason,
        payload=normalize_payload(payload),
        created_at=now,
        updated_at=now,
        history=(Transition(at=now, from_state=None, to_state=target, reason=reason),),
    )


def check_same_identity(existing: Record, kind: str, subject: str) -> None:
    """Raise :class:`KeyConflictError` if ``ensure`` was called with a different identity."""
    if existing.kind != kind or existing.subject != subject:
        raise KeyConflictError(
            f"{existing.key}: already used for kind={existing.kind!r} subject={existing.subject!r},"
            f" not kind={kind!r} subject={subject!r}"
        )


def apply_claim(record: Record, *, owner: str, lease: timedelta, now: datetime) -> Record:
    """``record`` after a successful claim by ``owner`` (caller checked :func:`is_claimable`)."""
    check_claim_args(owner, lease)
    reason = _claim_reason(record, owner)
    return attrs.evolve(
        record,
        state=State.IN_FLIGHT,
        owner=owner,
        lease_expires_at=now + lease,
        attempts=record.attempts + 1,
        claimed_from=record.state,
        next_attempt_at=None,
        may_have_been_sent=(
            record.may_have_been_sent or record.state in (State.IN_FLIGHT, State.SENT)
        ),
        reason=reason,
        updated_at=now,
        history=(
            *record.history,
            Transition(
                at=now,
                from_state=record.state,
                to_state=State.IN_FLIGHT,
                reason=reason,
                owner=owner,
            ),
        ),
    )


def apply_renew(
    record: Record,
    *,
    owner: str,
    lease: timedelta,
    now: datetime,
    payload: Mapping[str, Any] | None = None,
) -> Record:
    """``record`` with its lease extended (and ``payload`` replaced when given);
    :class:`ClaimLostError` unless ``owner`` holds it."""
    check_claim_args(owner, lease)
    if record.state is not State.IN_FLIGHT or record.owner != owner:
        raise ClaimLostError(_lost_message(record, owner))
    return attrs.evolve(
        record,
        lease_expires_at=now + lease,
        updated_at=now,
        payload=normalize_payload(payload) if payload is not None else record.payload,
    )


def _lost_message(record: Record, owner: str) -> str:
    if record.state is State.IN_FLIGHT:
        return f"{record.key}: claim of {owner} lost; now held by {record.owner}"
    return f"{record.key}: claim of {owner} lost; record is {record.state}"


def _apply_move(
    record: Record,
    target: State,
    *,
    by: str | None,
    reason: str | None,
    external_id: str | None,
    external_ref: str | None,
    payload: Mapping[str, Any] | None,
    next_attempt_at: datetime | None,
    now: datetime,
) -> Record:
    return attrs.evolve(
        record,
        state=target,
        reason=reason,
        external_id=external_id if external_id is not None else record.external_id,
        external_ref=external_ref if external_ref is not None else record.external_ref,
        payload=normalize_payload(payload) if payload is not None else record.payload,
        owner=None,
        lease_expires_at=None,
        claimed_from=None,
        next_attempt_at=next_attempt_at,
        may_have_been_sent=(
            (record.may_have_been_sent or target is State.SENT) and target is not State.ACKNOWLEDGED
        ),
        updated_at=now,
        history=(
            *record.history,
            Transition(at=now, from_state=record.state, to_state=target, reason=reason, owner=by),
        ),
    )


def apply_transition(
    record: Record,
    to_state: State | str,
    *,
    owner: str,
    now: datetime,
    reason: str | None = None,
    external_id: str | None = None,
    external_ref: str | None = None,
    payload: Mapping[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
) -> Record:
    """``record`` after ``IdempotencyStore.transition`` (raises as documented there)."""
    target = State(to_state)
    if target not in OWNER_TRANSITIONS:
        raise InvalidTransitionError(f"{record.key}: in_flight -> {target} is not a transition")
    retry = _check_retry(target, next_attempt_at)
    if record.state is not State.IN_FLIGHT or record.owner != owner:
        raise ClaimLostError(_lost_message(record, owner))
    return _apply_move(
        record,
        target,
        by=owner,
        reason=reason,
        external_id=external_id,
        external_ref=external_ref,
        payload=payload,
        next_attempt_at=retry,
        now=now,
    )


def apply_mark(
    record: Record,
    to_state: State | str,
    *,
    reason: str,
    now: datetime,
    actor: str | None = None,
    external_id: str | None = None,
    external_ref: str | None = None,
    payload: Mapping[str, Any] | None = None,
    next_attempt_at: datetime | None = None,
) -> Record:
    """``record`` after ``IdempotencyStore.mark`` (raises as documented there)."""
    target = State(to_state)
    retry = _check_retry(target, next_attempt_at)
    if record.state is State.IN_FLIGHT:
        raise ClaimHeldError(
            f"{record.key}: in_flight (held by {record.owner}); claim it before moving it"
        )
    if target not in ADMIN_TRANSITIONS[record.state]:
        raise InvalidTransitionError(f"{record.key}: {record.state} -> {target} is not allowed")
    return _apply_move(
        record,
        target,
        by=actor,
        reason=reason,
        external_id=external_id,
        external_ref=external_ref,
        payload=payload,
        next_attempt_at=retry,
        now=now,
    )


def check_archive_args(before: datetime, limit: int | None) -> datetime:
    """``before`` in UTC; ``ValueError`` for a naive time or a limit below 1."""
    if limit is not None and limit < 1:
        raise ValueError(f"limit must be at least 1, got {limit}")
    return as_utc(before, "before")


def counts_template() -> dict[State, int]:
    """A ``counts()`` result with every state at zero."""
    return {state: 0 for state in State}
