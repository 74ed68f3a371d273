"""``MemoryStore``: the idempotency store in process memory (tests, demos, one-off runs).

Thread-safe (one lock); nothing survives the process. Semantics are exactly those of
:mod:`scayle_orderwise.store.base`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

import attrs

from .base import (
    ARCHIVABLE_STATES,
    Clock,
    Record,
    State,
    StoreBase,
    UnknownKeyError,
    apply_claim,
    as_utc,
    check_archive_args,
    check_claim_args,
    check_same_identity,
    counts_template,
    due_at,
    is_claimable,
    new_record,
    normalize_payload,
    normalize_states,
)
from .rate_ledger import MemoryRateLedger, RateLedger

__all__ = ["MemoryStore"]


class MemoryStore(StoreBase):
    """An in-memory :class:`~scayle_orderwise.store.base.IdempotencyStore`."""

    def __init__(self, *, clock: Clock | None = None) -> None:
        super().__init__(clock=clock)
        self._lock = threading.RLock()
        self._records: dict[str, Record] = {}
        self._archived: dict[str, Record] = {}
        self._cursors: dict[str, str] = {}
        self._seen: dict[tuple[str, str], datetime] = {}
        self._rate_ledger = MemoryRateLedger()

    def __repr__(self) -> str:
        return f"MemoryStore(records={len(self._records)})"

    def open_rate_ledger(self) -> RateLedger:
        """The rate budgets shared by every worker of this store (one per process: in memory)."""
        return self._rate_ledger

    @staticmethod
    def _out(record: Record) -> Record:
        """A copy whose payload the caller may mutate without touching the store."""
        return attrs.evolve(record, payload=normalize_payload(record.payload))

    def _require(self, key: str) -> Record:
        record = self._records.get(key)
        if record is None and key in self._archived:
            record = self._records[key] = self._archived.pop(key)  # a write brings it back
        if record is None:
            raise UnknownKeyError(f"no record under key {key!r}")
        return record

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
        """Create the record if absent; see ``IdempotencyStore.ensure``."""
        with self._lock:
            now = self._now()
            fresh = new_record(
                key,
                kind=kind,
                subject=subject,
                now=now,
                payload=payload,
                state=state,
                reason=reason,
            )
            existing = self._records.get(key) or self._archived.get(key)
            if existing is not None:
                check_same_identity(existing, fresh.kind, fresh.subject)
                return self._out(existing)
            self._records[key] = fresh
            return self._out(fresh)

    def get(self, key: str) -> Record | None:
        """See ``IdempotencyStore.get``."""
        with self._lock:
            record = self._records.get(key) or self._archived.get(key)
            return None if record is None else self._out(record)

    def claim(
        self, key: str, *, owner: str, lease: timedelta, now: datetime | None = None
    ) -> Record | None:
        """See ``IdempotencyStore.claim``."""
        check_claim_args(owner, lease)
        with self._lock:
            at = self._now(now)
            record = self._records.get(key)
            if record is None or not is_claimable(record, owner, at):
                return None
            claimed = apply_claim(record, owner=owner, lease=lease, now=at)
            self._records[key] = claimed
            return self._out(claimed)

    def claim_next(
        self,
        kind: str,
        *,
        owner: str,
        lease: timedelta,
        limit: int = 10,
        now: datetime | None = None,
    ) -> list[Record]:
        """See ``IdempotencyStore.claim_next``."""
        check_claim_args(owner, lease)
        if limit < 1:
            return []
        with self._lock:
            at = self._now(now)
            due = [
                r for r in self._records.values() if r.kind == kind and is_claimable(r, owner, at)
            ]
            due.sort(key=lambda r: (due_at(r) or at, r.key))
            claimed = []
            for record in due[:limit]:
                updated = apply_claim(record, owner=owner, lease=lease, now=at)
                self._records[record.key] = updated
                claimed.append(self._out(updated))
            return claimed

    def _update(
        self, key: str, change: Callable[[Record], Record], *, history: bool = True
    ) -> Record:
        with self._lock:
            moved = change(self._require(key))
            self._records[key] = moved
            return self._out(moved)

    def records(
        self,
        states: State | str | Iterable[State | str] | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        """See ``IdempotencyStore.records`` (iterates over a snapshot)."""
        wanted = normalize_states(states)
        with self._lock:
            snapshot = [
                self._out(r)
                for r in self._records.values()
                if (wanted is None or r.state in wanted) and (kind is None or r.kind == kind)
            ]
        snapshot.sort(key=lambda r: (r.created_at, r.key))
        return iter(snapshot)

    def counts(self, kind: str | None = None) -> dict[State, int]:
        """See ``IdempotencyStore.counts``."""
        result = counts_template()
        with self._lock:
            for record in self._records.values():
                if kind is None or record.kind == kind:
                    result[record.state] += 1
        return result

    def oldest(self, state: State | str, kind: str | None = None) -> Record | None:
        """See ``IdempotencyStore.oldest``."""
        return next(iter(self.records(state, kind)), None)

    def archive(
        self, *, before: datetime, kind: str | None = None, limit: int | None = None
    ) -> int:
        """See ``IdempotencyStore.archive``."""
        cutoff = check_archive_args(before, limit)
        with self._lock:
            keys = [
                r.key
                for r in sorted(self._records.values(), key=lambda r: (r.updated_at, r.key))
                if r.state in ARCHIVABLE_STATES
                and r.updated_at < cutoff
                and (kind is None or r.kind == kind)
            ][:limit]
            for key in keys:
                self._archived[key] = self._records.pop(key)
            return len(keys)

    def get_cursor(self, name: str) -> str | None:
        """See ``IdempotencyStore.get_cursor``."""
        with self._lock:
            return self._cursors.get(name)

    def set_cursor(self, name: str, value: str) -> None:
        """See ``IdempotencyStore.set_cursor``."""
        if not isinstance(value, str):
            raise TypeError("cursor values are strings")
        with self._lock:
            self._cursors[name] = value

    def remember(self, namespace: str, key: str) -> bool:
        """See ``IdempotencyStore.remember``."""
        with self._lock:
            if (namespace, key) in self._seen:
                return False
            self._seen[(namespace, key)] = self._now()
            return True

    def prune_remembered(self, *, before: datetime) -> int:
        """See ``IdempotencyStore.prune_remembered``."""
        cutoff = as_utc(before, "before")
        with self._lock:
            old = [k for k, at in self._seen.items() if at < cutoff]
            for k in old:
                del self._seen[k]
            return len(old)
