"""``SqliteStore``: the embedded default idempotency store (one file, several threads and processes).

The database runs in WAL mode with a busy timeout and ``synchronous=FULL`` (a committed claim
survives a power cut). Every write is one ``BEGIN IMMEDIATE`` transaction, so writers from
several processes serialise on the file lock; a claim is one ``UPDATE ... WHERE <claimable>
RETURNING`` statement (SQLite >= 3.35). One connection per store instance is shared by threads
under a lock; processes each open their own ``SqliteStore`` on the same path.

Times are stored as integer microseconds since the Unix epoch (UTC), the payload as JSON text,
and the history in its own table (one row per transition).
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import tenacity

from .base import (
    CLAIM_REASON,
    RECLAIM_REASON,
    TAKEOVER_REASON,
    Clock,
    Record,
    State,
    StoreBase,
    StoreError,
    Transition,
    UnknownKeyError,
    as_utc,
    check_archive_args,
    check_claim_args,
    check_same_identity,
    counts_template,
    due_at,
    new_record,
    normalize_states,
)
from .rate_ledger import MemoryRateLedger, RateLedger
from .rate_ledger_sqlite import SqliteRateLedger

__all__ = ["SqliteStore"]

_MIN_SQLITE = (3, 35, 0)
_SCHEMA_VERSION = 2
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# The live tables and their archive (``archive``) have the same columns.
_RECORD_COLUMNS = """
        key TEXT PRIMARY KEY,
        kind TEXT NOT NULL,
        subject TEXT NOT NULL,
        state TEXT NOT NULL,
        reason TEXT,
        external_id TEXT,
        external_ref TEXT,
        payload TEXT NOT NULL DEFAULT '{}',
        attempts INTEGER NOT NULL DEFAULT 0,
        owner TEXT,
        lease_expires_at INTEGER,
        next_attempt_at INTEGER,
        claimed_from TEXT,
        may_have_been_sent INTEGER NOT NULL DEFAULT 0,
        due_at INTEGER,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    """
_HISTORY_TABLE_COLUMNS = """
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        key TEXT NOT NULL,
        at INTEGER NOT NULL,
        from_state TEXT,
        to_state TEXT NOT NULL,
        reason TEXT,
        owner TEXT
    """

_SCHEMA = (
    f"CREATE TABLE IF NOT EXISTS records ({_RECORD_COLUMNS})",
    # Claims read two index ranges, never the table: records due by now (the partial index holds
    # live records only, so acknowledged history costs nothing) and the owner's own claims.
    "DROP INDEX IF EXISTS records_due",
    "CREATE INDEX IF NOT EXISTS records_claim ON records (kind, due_at, key) "
    "WHERE due_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS records_owned ON records (kind, owner, due_at, key) "
    "WHERE state = 'in_flight'",
    "CREATE INDEX IF NOT EXISTS records_created ON records (created_at, key)",
    "CREATE INDEX IF NOT EXISTS records_state ON records (state, kind, created_at, key)",
    f"CREATE TABLE IF NOT EXISTS history ({_HISTORY_TABLE_COLUMNS})",
    "CREATE INDEX IF NOT EXISTS history_key ON history (key, id)",
    """CREATE TABLE IF NOT EXISTS cursors (
        name TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS seen (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        seen_at INTEGER NOT NULL,
        PRIMARY KEY (namespace, key)
    )""",
    "CREATE INDEX IF NOT EXISTS seen_at ON seen (seen_at)",
    # The archive: records in a final state moved out of the live tables (see ``archive``).
    f"CREATE TABLE IF NOT EXISTS archived_records ({_RECORD_COLUMNS})",
    f"CREATE TABLE IF NOT EXISTS archived_history ({_HISTORY_TABLE_COLUMNS})",
    "CREATE INDEX IF NOT EXISTS archived_history_key ON archived_history (key, id)",
    "CREATE INDEX IF NOT EXISTS records_updated ON records (updated_at) "
    "WHERE state IN ('acknowledged', 'cancelled')",
)

_ARCHIVE_CHUNK = 500
_HISTORY_COLUMNS = "key, at, from_state, to_state, reason, owner"

_CLAIMABLE = "((due_at IS NOT NULL AND due_at <= :now) OR (state = 'in_flight' AND owner = :owner))"

# The candidates of ``claim_next``, one index range each (an ``OR`` of the two would scan the table).
CLAIM_DUE_SQL = (
    "SELECT key, due_at FROM records WHERE kind = :kind AND due_at IS NOT NULL "
    "AND due_at <= :now ORDER BY due_at, key LIMIT :limit"
)
CLAIM_OWNED_SQL = (
    "SELECT key, due_at FROM records WHERE kind = :kind AND state = 'in_flight' "
    "AND owner = :owner ORDER BY due_at, key LIMIT :limit"
)

_CLAIM_SQL = f"""
UPDATE records SET
    claimed_from = state,
    may_have_been_sent = CASE WHEN state IN ('in_flight', 'sent') THEN 1
                              ELSE may_have_been_sent END,
    reason = CASE WHEN state = 'in_flight' AND owner = :owner THEN :reclaim
                  WHEN state = 'in_flight' THEN replace(:takeover, '{{owner}}', owner)
                  ELSE :claim END,
    state = 'in_flight',
    owner = :owner,
    lease_expires_at = :expires,
    due_at = :expires,
    attempts = attempts + 1,
    next_attempt_at = NULL,
    updated_at = :now
WHERE key = :key AND {_CLAIMABLE}
RETURNING *
"""

_COLUMNS = (
    "key, kind, subject, state, reason, external_id, external_ref, payload, attempts, owner, "
    "lease_expires_at, next_attempt_at, claimed_from, may_have_been_sent, due_at, created_at, "
    "updated_at"
)


def _us(value: datetime | None) -> int | None:
    if value is None:
        return None
    delta = as_utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _dt(value: int | None) -> datetime | None:
    if value is None:
        return None
    return _EPOCH + timedelta(microseconds=value)


def _dt_required(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


class SqliteStore(StoreBase):
    """An :class:`~scayle_orderwise.store.base.IdempotencyStore` in one SQLite file.

    ``path`` may be ``":memory:"`` (one private database for this instance). ``timeout`` is the
    busy timeout in seconds while another process holds the write lock. ``page_size`` is how
    many records ``records()`` reads per query.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        clock: Clock | None = None,
        timeout: float = 30.0,
        page_size: int = 500,
    ) -> None:
        super().__init__(clock=clock)
        if sqlite3.sqlite_version_info < _MIN_SQLITE:
            raise StoreError(
                f"SqliteStore needs SQLite >= 3.35 (UPDATE ... RETURNING); found "
                f"{sqlite3.sqlite_version}"
            )
        self.path = os.fspath(path)
        self.page_size = max(1, page_size)
        self._lock = threading.RLock()
        self._closed = False
        self._memory_ledger: MemoryRateLedger | None = None
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # Switching to WAL needs a moment alone with the file and does not wait on the busy
            # timeout, so several workers opening one new ledger at once retry it briefly.
            for attempt in tenacity.Retrying(
                retry=tenacity.retry_if_exception(_is_locked),
                stop=tenacity.stop_after_delay(timeout),
                wait=tenacity.wait_random_exponential(multiplier=0.01, max=0.5),
                reraise=True,
            ):
                with attempt:
                    self._prepare()
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite store at {self.path}: {exc}") from exc

    def _prepare(self) -> None:
        mode = self._conn.execute("PRAGMA journal_mode").fetchone()[0]
        if self.path != ":memory:" and str(mode).lower() != "wal":
            self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = FULL")
        with self._write() as conn:
            for statement in _SCHEMA:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {_SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def open_rate_ledger(self) -> RateLedger:
        """Rate budgets shared by every process using this file (its own table and connection;
        see :mod:`~scayle_orderwise.store.rate_ledger_sqlite`). ``:memory:``: this instance only."""
        if self.path == ":memory:":
            if self._memory_ledger is None:
                self._memory_ledger = MemoryRateLedger()
            return self._memory_ledger
        return SqliteRateLedger(self.path)

    # ----------------------------------------------------------------------------- plumbing

    @contextmanager
    def _txn(self, begin: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError("the store is closed")
            conn = self._conn
            try:
                conn.execute(begin)
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite store {self.path}: {exc}") from exc
            try:
                yield conn
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"SQLite store {self.path}: commit failed: {exc}") from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._txn("BEGIN IMMEDIATE") as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._txn("BEGIN") as conn:
                yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    @staticmethod
    def _history(
        conn: sqlite3.Connection, keys: Sequence[str], *, table: str = "history"
    ) -> dict[str, list[Transition]]:
        result: dict[str, list[Transition]] = {key: [] for key in keys}
        if not keys:
            return result
        marks = ",".join("?" * len(keys))
        rows = conn.execute(
            f"SELECT key, at, from_state, to_state, reason, owner FROM {table} "
            f"WHERE key IN ({marks}) ORDER BY id",
            list(keys),
        )
        for row in rows:
            result[row["key"]].append(
                Transition(
                    at=_dt_required(row["at"]),
                    from_state=State(row["from_state"]) if row["from_state"] else None,
                    to_state=State(row["to_state"]),
                    reason=row["reason"],
                    owner=row["owner"],
                )
            )
        return result

    @staticmethod
    def _record(row: sqlite3.Row, history: Sequence[Transition]) -> Record:
        return Record(
            key=row["key"],
            kind=row["kind"],
            subject=row["subject"],
            state=State(row["state"]),
            reason=row["reason"],
            external_id=row["external_id"],
            external_ref=row["external_ref"],
            payload=json.loads(row["payload"]),
            attempts=row["attempts"],
            owner=row["owner"],
            lease_expires_at=_dt(row["lease_expires_at"]),
            next_attempt_at=_dt(row["next_attempt_at"]),
            claimed_from=State(row["claimed_from"]) if row["claimed_from"] else None,
            may_have_been_sent=bool(row["may_have_been_sent"]),
            created_at=_dt_required(row["created_at"]),
            updated_at=_dt_required(row["updated_at"]),
            history=tuple(history),
        )

    def _load(self, conn: sqlite3.Connection, key: str, *, archived: bool = True) -> Record | None:
        row = conn.execute(f"SELECT {_COLUMNS} FROM records WHERE key = ?", (key,)).fetchone()
        if row is not None:
            return self._record(row, self._history(conn, [key])[key])
        if not archived:
            return None
        row = conn.execute(
            f"SELECT {_COLUMNS} FROM archived_records WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return self._record(row, self._history(conn, [key], table="archived_history")[key])

    def _require(self, conn: sqlite3.Connection, key: str) -> Record:
        record = self._load(conn, key, archived=False)
        if record is None and self._move(conn, [key], source="archived_", target=""):
            record = self._load(conn, key, archived=False)  # a write brings it back first
        if record is None:
            raise UnknownKeyError(f"no record under key {key!r}")
        return record

    @staticmethod
    def _move(conn: sqlite3.Connection, keys: Sequence[str], *, source: str, target: str) -> int:
        """Move records and their history between the live tables and the archive."""
        marks = ",".join("?" * len(keys))
        moved = conn.execute(
            f"INSERT OR REPLACE INTO {target}records ({_COLUMNS}) SELECT {_COLUMNS} "
            f"FROM {source}records WHERE key IN ({marks})",
            list(keys),
        ).rowcount
        if not moved:
            return 0
        conn.execute(f"DELETE FROM {target}history WHERE key IN ({marks})", list(keys))
        conn.execute(
            f"INSERT INTO {target}history ({_HISTORY_COLUMNS}) SELECT {_HISTORY_COLUMNS} "
            f"FROM {source}history WHERE key IN ({marks}) ORDER BY id",
            list(keys),
        )
        conn.execute(f"DELETE FROM {source}history WHERE key IN ({marks})", list(keys))
        conn.execute(f"DELETE FROM {source}records WHERE key IN ({marks})", list(keys))
        return int(moved)

    @staticmethod
    def _add_history(conn: sqlite3.Connection, key: str, entry: Transition) -> None:
        conn.execute(
            "INSERT INTO history (key, at, from_state, to_state, reason, owner) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (
                key,
                _us(entry.at),
                entry.from_state.value if entry.from_state else None,
                entry.to_state.value,
                entry.reason,
                entry.owner,
            ),
        )

    @staticmethod
    def _values(record: Record) -> dict[str, Any]:
        return {
            "key": record.key,
            "kind": record.kind,
            "subject": record.subject,
            "state": record.state.value,
            "reason": record.reason,
            "external_id": record.external_id,
            "external_ref": record.external_ref,
            "payload": json.dumps(record.payload, sort_keys=True),
            "attempts": record.attempts,
            "owner": record.owner,
            "lease_expires_at": _us(record.lease_expires_at),
            "next_attempt_at": _us(record.next_attempt_at),
            "claimed_from": record.claimed_from.value if record.claimed_from else None,
            "may_have_been_sent": int(record.may_have_been_sent),
            "due_at": _us(due_at(record)),
            "created_at": _us(record.created_at),
            "updated_at": _us(record.updated_at),
        }

    def _save(self, conn: sqlite3.Connection, record: Record, *, history: bool = True) -> None:
        values = self._values(record)
        assignments = ", ".join(f"{name} = :{name}" for name in values if name != "key")
        conn.execute(f"UPDATE records SET {assignments} WHERE key = :key", values)
        if history:
            self._add_history(conn, record.key, record.history[-1])

    def _claim_one(
        self, conn: sqlite3.Connection, key: str, owner: str, now: datetime, lease: timedelta
    ) -> Record | None:
        params = {
            "key": key,
            "owner": owner,
            "now": _us(now),
            "expires": _us(now + lease),
            "claim": CLAIM_REASON,
            "reclaim": RECLAIM_REASON,
            "takeover": TAKEOVER_REASON,
        }
        row = conn.execute(_CLAIM_SQL, params).fetchone()
        if row is None:
            return None
        self._add_history(
            conn,
            key,
            Transition(
                at=now,
                from_state=State(row["claimed_from"]),
                to_state=State.IN_FLIGHT,
                reason=row["reason"],
                owner=owner,
            ),
        )
        return self._record(row, self._history(conn, [key])[key])

    # ------------------------------------------------------------------------------ protocol

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
        with self._write() as conn:
            fresh = new_record(
                key,
                kind=kind,
                subject=subject,
                now=self._now(),
                payload=payload,
                state=state,
                reason=reason,
            )
            existing = self._load(conn, key)
            if existing is not None:
                check_same_identity(existing, fresh.kind, fresh.subject)
                return existing
            values = self._values(fresh)
            names = ", ".join(values)
            conn.execute(
                f"INSERT INTO records ({names}) VALUES ({', '.join(':' + n for n in values)})",
                values,
            )
            self._add_history(conn, key, fresh.history[-1])
            return fresh

    def get(self, key: str) -> Record | None:
        """See ``IdempotencyStore.get``."""
        with self._read() as conn:
            return self._load(conn, key)

    def claim(
        self, key: str, *, owner: str, lease: timedelta, now: datetime | None = None
    ) -> Record | None:
        """See ``IdempotencyStore.claim``: one ``UPDATE ... RETURNING`` statement."""
        check_claim_args(owner, lease)
        at = self._now(now)
        with self._write() as conn:
            return self._claim_one(conn, key, owner, at, lease)

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
        at = self._now(now)
        params = {"kind": kind, "now": _us(at), "owner": owner, "limit": limit}
        with self._write() as conn:
            candidates = {
                row["key"]: row["due_at"]
                for sql in (CLAIM_DUE_SQL, CLAIM_OWNED_SQL)
                for row in conn.execute(sql, params)
            }
            keys = sorted(candidates, key=lambda k: (candidates[k], k))[:limit]
            claimed = []
            for key in keys:
                record = self._claim_one(conn, key, owner, at, lease)
                if record is not None:
                    claimed.append(record)
            return claimed

    def _update(
        self, key: str, change: Callable[[Record], Record], *, history: bool = True
    ) -> Record:
        with self._write() as conn:
            record = change(self._require(conn, key))
            self._save(conn, record, history=history)
            return record

    def records(
        self,
        states: State | str | Iterable[State | str] | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        """See ``IdempotencyStore.records`` (keyset pages of ``page_size``)."""
        wanted = normalize_states(states)
        return self._pages(wanted, kind)

    def _pages(self, wanted: frozenset[State] | None, kind: str | None) -> Iterator[Record]:
        where: list[str] = []
        params: list[Any] = []
        if wanted is not None:
            if not wanted:
                return
            where.append(f"state IN ({','.join('?' * len(wanted))})")
            params.extend(sorted(s.value for s in wanted))
        if kind is not None:
            where.append("kind = ?")
            params.append(kind)
        after: tuple[int, str] | None = None
        while True:
            clauses = list(where)
            page_params = list(params)
            if after is not None:
                clauses.append("(created_at > ? OR (created_at = ? AND key > ?))")
                page_params.extend([after[0], after[0], after[1]])
            sql = f"SELECT {_COLUMNS} FROM records"
            if clauses:
                sql += " WHERE " + " AND ".join(clauses)
            sql += " ORDER BY created_at, key LIMIT ?"
            page_params.append(self.page_size)
            with self._read() as conn:
                rows = conn.execute(sql, page_params).fetchall()
                history = self._history(conn, [row["key"] for row in rows])
            for row in rows:
                yield self._record(row, history[row["key"]])
            if len(rows) < self.page_size:
                return
            after = (rows[-1]["created_at"], rows[-1]["key"])

    def counts(self, kind: str | None = None) -> dict[State, int]:
        """See ``IdempotencyStore.counts``."""
        result = counts_template()
        sql = "SELECT state, COUNT(*) AS n FROM records"
        params: tuple[str, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            params = (kind,)
        with self._read() as conn:
            for row in conn.execute(sql + " GROUP BY state", params):
                result[State(row["state"])] = row["n"]
        return result

    def oldest(self, state: State | str, kind: str | None = None) -> Record | None:
        """See ``IdempotencyStore.oldest``."""
        sql = f"SELECT {_COLUMNS} FROM records WHERE state = ?"
        params: list[Any] = [State(state).value]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._read() as conn:
            row = conn.execute(sql + " ORDER BY created_at, key LIMIT 1", params).fetchone()
            if row is None:
                return None
            return self._record(row, self._history(conn, [row["key"]])[row["key"]])

    def archive(
        self, *, before: datetime, kind: str | None = None, limit: int | None = None
    ) -> int:
        """See ``IdempotencyStore.archive`` (one write transaction per 500 records)."""
        cutoff = _us(check_archive_args(before, limit))
        total = 0
        while limit is None or total < limit:
            chunk = _ARCHIVE_CHUNK if limit is None else min(_ARCHIVE_CHUNK, limit - total)
            sql = (
                "SELECT key FROM records WHERE state IN ('acknowledged', 'cancelled') "
                "AND updated_at < ?"
            )
            params: list[Any] = [cutoff]
            if kind is not None:
                sql += " AND kind = ?"
                params.append(kind)
            with self._write() as conn:
                keys = [row["key"] for row in conn.execute(sql + " LIMIT ?", [*params, chunk])]
                if not keys:
                    break
                total += self._move(conn, keys, source="", target="archived_")
        return total

    def get_cursor(self, name: str) -> str | None:
        """See ``IdempotencyStore.get_cursor``."""
        with self._read() as conn:
            row = conn.execute("SELECT value FROM cursors WHERE name = ?", (name,)).fetchone()
            return None if row is None else str(row["value"])

    def set_cursor(self, name: str, value: str) -> None:
        """See ``IdempotencyStore.set_cursor``."""
        if not isinstance(value, str):
            raise TypeError("cursor values are strings")
        with self._write() as conn:
            conn.execute(
                "INSERT INTO cursors (name, value, updated_at) VALUES (?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET value = excluded.value, "
                "updated_at = excluded.updated_at",
                (name, value, _us(self._now())),
            )

    def remember(self, namespace: str, key: str) -> bool:
        """See ``IdempotencyStore.remember``."""
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO seen (namespace, key, seen_at) VALUES (?, ?, ?) "
                "ON CONFLICT (namespace, key) DO NOTHING",
                (namespace, key, _us(self._now())),
            )
            return cursor.rowcount == 1

    def prune_remembered(self, *, before: datetime) -> int:
        """See ``IdempotencyStore.prune_remembered``."""
        cutoff = _us(as_utc(before, "before"))
        with self._write() as conn:
            return conn.execute("DELETE FROM seen WHERE seen_at < ?", (cutoff,)).rowcount

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
