"""``PostgresStore``: the idempotency store for many workers on many machines (psycopg 3).

Tables are created on first use (``CREATE TABLE IF NOT EXISTS`` under a transaction-level
advisory lock, so several workers starting together do not race). ``claim`` is one ``UPDATE
... WHERE <claimable> RETURNING`` statement; ``claim_next`` picks rows with ``SELECT ... FOR
UPDATE SKIP LOCKED`` so concurrent workers get disjoint batches without waiting on each other.
Leases are checked against the store's clock: keep worker clocks in sync (NTP) and leases well
above the clock skew.

Each thread uses its own connection (opened on first use, autocommit with explicit
transactions); ``close()`` closes them all. ``schema`` and ``table_prefix`` isolate several
ledgers in one database. Needs the ``postgres`` extra (``psycopg``).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from ..redaction import dsn_redactor
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
from .rate_ledger import RateLedger

__all__ = ["PostgresStore"]

Conn = psycopg.Connection[DictRow]

_COLUMNS = (
    "key, kind, subject, state, reason, external_id, external_ref, payload, attempts, owner, "
    "lease_expires_at, next_attempt_at, claimed_from, may_have_been_sent, due_at, created_at, "
    "updated_at"
)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS {records} (
        key text PRIMARY KEY,
        kind text NOT NULL,
        subject text NOT NULL,
        state text NOT NULL,
        reason text,
        external_id text,
        external_ref text,
        payload jsonb NOT NULL DEFAULT '{{}}'::jsonb,
        attempts integer NOT NULL DEFAULT 0,
        owner text,
        lease_expires_at timestamptz,
        next_attempt_at timestamptz,
        claimed_from text,
        may_have_been_sent boolean NOT NULL DEFAULT false,
        due_at timestamptz,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    # Claims read two index ranges, never the table: records due by now (the partial index holds
    # live records only, so acknowledged history costs nothing) and the owner's own claims.
    "DROP INDEX IF EXISTS {records_due_qualified}",
    "CREATE INDEX IF NOT EXISTS {records_claim} ON {records} (kind, due_at, key) "
    "WHERE due_at IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS {records_owned} ON {records} (kind, owner, due_at, key) "
    "WHERE state = 'in_flight'",
    "CREATE INDEX IF NOT EXISTS {records_created} ON {records} (created_at, key)",
    "CREATE INDEX IF NOT EXISTS {records_state} ON {records} (state, kind, created_at, key)",
    """CREATE TABLE IF NOT EXISTS {history} (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        key text NOT NULL,
        at timestamptz NOT NULL,
        from_state text,
        to_state text NOT NULL,
        reason text,
        owner text
    )""",
    "CREATE INDEX IF NOT EXISTS {history_key} ON {history} (key, id)",
    """CREATE TABLE IF NOT EXISTS {cursors} (
        name text PRIMARY KEY,
        value text NOT NULL,
        updated_at timestamptz NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS {seen} (
        namespace text NOT NULL,
        key text NOT NULL,
        seen_at timestamptz NOT NULL,
        PRIMARY KEY (namespace, key)
    )""",
    "CREATE INDEX IF NOT EXISTS {seen_at} ON {seen} (seen_at)",
    # The archive: records in a final state moved out of the live tables (see ``archive``).
    "CREATE TABLE IF NOT EXISTS {archived_records} (LIKE {records} INCLUDING ALL)",
    """CREATE TABLE IF NOT EXISTS {archived_history} (
        id bigint PRIMARY KEY,
        key text NOT NULL,
        at timestamptz NOT NULL,
        from_state text,
        to_state text NOT NULL,
        reason text,
        owner text
    )""",
    "CREATE INDEX IF NOT EXISTS {archived_history_key} ON {archived_history} (key, id)",
    "CREATE INDEX IF NOT EXISTS {records_updated} ON {records} (updated_at) "
    "WHERE state IN ('acknowledged', 'cancelled')",
)

_ARCHIVE_CHUNK = 500
_REPLACE_ALL = ", ".join(
    f"{name} = EXCLUDED.{name}" for name in _COLUMNS.replace(" ", "").split(",") if name != "key"
)
_HISTORY_COLUMNS = "key, at, from_state, to_state, reason, owner"

_CLAIMABLE = (
    "((due_at IS NOT NULL AND due_at <= %(now)s) OR (state = 'in_flight' AND owner = %(owner)s))"
)

_CLAIM_SET = """
    claimed_from = state,
    may_have_been_sent = (may_have_been_sent OR state IN ('in_flight', 'sent')),
    reason = CASE WHEN state = 'in_flight' AND owner = %(owner)s THEN %(reclaim)s
                  WHEN state = 'in_flight' THEN replace(%(takeover)s, '{{owner}}', owner)
                  ELSE %(claim)s END,
    state = 'in_flight',
    owner = %(owner)s,
    lease_expires_at = %(expires)s,
    due_at = %(expires)s,
    attempts = attempts + 1,
    next_attempt_at = NULL,
    updated_at = %(now)s
"""

_LOG_CLAIMS = """
    logged AS (
        INSERT INTO {history} (key, at, from_state, to_state, reason, owner)
        SELECT key, %(now)s, claimed_from, 'in_flight', reason, %(owner)s FROM claimed
    )
"""

_CLAIM_ONE = (
    "WITH claimed AS (UPDATE {records} SET "
    + _CLAIM_SET
    + " WHERE key = %(key)s AND "
    + _CLAIMABLE
    + " RETURNING *), "
    + _LOG_CLAIMS
    + " SELECT * FROM claimed"
)

_CLAIM_NEXT = (
    # One index range each for due records and the owner's own claims (an OR would scan).
    "WITH due AS (SELECT key, due_at FROM {records} WHERE kind = %(kind)s "
    "AND due_at IS NOT NULL AND due_at <= %(now)s "
    "ORDER BY due_at, key LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    "owned AS (SELECT key, due_at FROM {records} WHERE kind = %(kind)s "
    "AND state = 'in_flight' AND owner = %(owner)s "
    "ORDER BY due_at, key LIMIT %(limit)s FOR UPDATE SKIP LOCKED), "
    "picked AS (SELECT key AS picked_key, due_at AS picked_due FROM "
    "(SELECT key, due_at FROM due UNION SELECT key, due_at FROM owned) AS candidates "
    "ORDER BY due_at, key LIMIT %(limit)s), "
    "claimed AS (UPDATE {records} SET "
    + _CLAIM_SET
    + " FROM picked WHERE key = picked.picked_key AND "
    + _CLAIMABLE
    + " RETURNING {records}.*, picked.picked_due), "
    + _LOG_CLAIMS
    + " SELECT * FROM claimed ORDER BY picked_due, key"
)


def _utc(value: datetime | None) -> datetime | None:
    return None if value is None else value.astimezone(UTC)


def _lock_id(text: str) -> int:
    return int.from_bytes(
        hashlib.blake2b(text.encode(), digest_size=8).digest(), "big", signed=True
    )


_SCHEMA_LOCK = _lock_id("scayle_orderwise.store.postgres:schema")


class PostgresStore(StoreBase):
    """An :class:`~scayle_orderwise.store.base.IdempotencyStore` in PostgreSQL.

    ``dsn`` is a libpq connection string or URL (never shown in reprs or errors). ``schema``
    (created if missing) and ``table_prefix`` name the tables: ``{prefix}records``,
    ``{prefix}history``, ``{prefix}cursors``, ``{prefix}seen``.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        table_prefix: str = "scayle_orderwise_",
        clock: Clock | None = None,
        connect_timeout: float = 10.0,
        page_size: int = 500,
    ) -> None:
        super().__init__(clock=clock)
        self._dsn = dsn
        # libpq quotes the URI or the password in its errors: redact them where the DSN enters.
        self._redact = dsn_redactor(dsn)
        self.schema = schema
        self.table_prefix = table_prefix
        self.page_size = max(1, page_size)
        self._connect_timeout = connect_timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[Conn] = []
        self._closed = False
        self._ready = False
        names = ("records", "history", "cursors", "seen", "archived_records", "archived_history")
        self._names: dict[str, sql.Composable] = {n: self._ident(n) for n in names}
        for index in (
            "records_updated",
            "archived_history_key",
            "records_claim",
            "records_owned",
            "records_created",
            "records_state",
            "history_key",
            "seen_at",
        ):
            self._names[index] = sql.Identifier(table_prefix + index)
        self._names["records_due_qualified"] = self._ident("records_due")  # replaced in 0.2

    @property
    def dsn(self) -> str:
        """The connection string this store was built with (it may hold a password)."""
        return self._dsn

    def __repr__(self) -> str:
        return f"PostgresStore(schema={self.schema!r}, table_prefix={self.table_prefix!r})"

    def open_rate_ledger(self) -> RateLedger:
        """Rate budgets shared by every worker of this ledger, on any machine (an ``UNLOGGED``
        table of its own; see :mod:`~scayle_orderwise.store.rate_ledger_postgres`)."""
        from .rate_ledger_postgres import PostgresRateLedger

        return PostgresRateLedger(
            self._dsn,
            schema=self.schema,
            table_prefix=self.table_prefix,
            connect_timeout=self._connect_timeout,
        )

    def _ident(self, name: str) -> sql.Identifier:
        if self.schema:
            return sql.Identifier(self.schema, self.table_prefix + name)
        return sql.Identifier(self.table_prefix + name)

    def _sql(self, template: str) -> sql.Composed:
        return sql.SQL(template).format(**self._names)

    # ----------------------------------------------------------------------------- plumbing

    def _connection(self) -> Conn:
        if self._closed:
            raise StoreError("the store is closed")
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        failure = None
        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, int(self._connect_timeout)),
            )
            conn.execute("SET TIME ZONE 'UTC'")
        except psycopg.Error as exc:
            failure = self._redact(f"cannot connect to PostgreSQL: {str(exc).strip()}")
        if failure is not None or conn is None:  # outside the handler: libpq may quote the DSN
            raise StoreError(failure or "cannot connect to PostgreSQL")
        with self._lock:
            if self._closed:
                conn.close()
                raise StoreError("the store is closed")
            self._connections.append(conn)
        self._local.conn = conn
        if not self._ready:
            self._create_schema(conn)
        return conn

    def _create_schema(self, conn: Conn) -> None:
        with conn.transaction():
            # One lock for every ledger: CREATE SCHEMA IF NOT EXISTS races between prefixes too.
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            if self.schema:
                conn.execute(
                    sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
                )
            for statement in _SCHEMA:
                conn.execute(self._sql(statement))
        self._ready = True

    @contextmanager
    def _txn(self) -> Iterator[Conn]:
        failure = None
        try:
            conn = self._connection()
            with conn.transaction():
                yield conn
        except psycopg.Error as exc:
            self._discard_if_broken()
            failure = self._redact(f"PostgreSQL store: {type(exc).__name__}: {str(exc).strip()}")
        if failure is not None:
            raise StoreError(failure)

    def _discard_if_broken(self) -> None:
        conn: Conn | None = getattr(self._local, "conn", None)
        if conn is not None and (conn.closed or conn.broken):
            self._local.conn = None
            with self._lock:
                if conn in self._connections:
                    self._connections.remove(conn)
            conn.close()

    def _history(
        self, conn: Conn, keys: Sequence[str], *, table: str = "history"
    ) -> dict[str, list[Transition]]:
        result: dict[str, list[Transition]] = {key: [] for key in keys}
        if not keys:
            return result
        rows = conn.execute(
            self._sql(
                "SELECT key, at, from_state, to_state, reason, owner FROM {" + table + "} "
                "WHERE key = ANY(%s) ORDER BY id"
            ),
            (list(keys),),
        ).fetchall()
        for row in rows:
            result[row["key"]].append(
                Transition(
                    at=row["at"].astimezone(UTC),
                    from_state=State(row["from_state"]) if row["from_state"] else None,
                    to_state=State(row["to_state"]),
                    reason=row["reason"],
                    owner=row["owner"],
                )
            )
        return result

    @staticmethod
    def _record(row: Mapping[str, Any], history: Sequence[Transition]) -> Record:
        return Record(
            key=row["key"],
            kind=row["kind"],
            subject=row["subject"],
            state=State(row["state"]),
            reason=row["reason"],
            external_id=row["external_id"],
            external_ref=row["external_ref"],
            payload=dict(row["payload"]),
            attempts=row["attempts"],
            owner=row["owner"],
            lease_expires_at=_utc(row["lease_expires_at"]),
            next_attempt_at=_utc(row["next_attempt_at"]),
            claimed_from=State(row["claimed_from"]) if row["claimed_from"] else None,
            may_have_been_sent=bool(row["may_have_been_sent"]),
            created_at=row["created_at"].astimezone(UTC),
            updated_at=row["updated_at"].astimezone(UTC),
            history=tuple(history),
        )

    def _records_with_history(self, conn: Conn, rows: Sequence[DictRow]) -> list[Record]:
        history = self._history(conn, [row["key"] for row in rows])
        return [self._record(row, history[row["key"]]) for row in rows]

    def _load(
        self, conn: Conn, key: str, *, lock: bool = False, archived: bool = True
    ) -> Record | None:
        query = f"SELECT {_COLUMNS} FROM {{records}} WHERE key = %s"
        if lock:
            query += " FOR UPDATE"
        row = conn.execute(self._sql(query), (key,)).fetchone()
        if row is not None:
            return self._record(row, self._history(conn, [key])[key])
        if not archived:
            return None
        query = f"SELECT {_COLUMNS} FROM {{archived_records}} WHERE key = %s"
        row = conn.execute(self._sql(query), (key,)).fetchone()
        if row is None:
            return None
        return self._record(row, self._history(conn, [key], table="archived_history")[key])

    def _require(self, conn: Conn, key: str) -> Record:
        record = self._load(conn, key, lock=True, archived=False)
        if record is None and self._move(conn, [key], source="archived_", target=""):
            record = self._load(conn, key, lock=True, archived=False)  # a write brings it back
        if record is None:
            raise UnknownKeyError(f"no record under key {key!r}")
        return record

    def _move(self, conn: Conn, keys: Sequence[str], *, source: str, target: str) -> int:
        """Move records and their history between the live tables and the archive."""
        names = {
            "src": self._names[f"{source}records"],
            "dst": self._names[f"{target}records"],
            "src_h": self._names[f"{source}history"],
            "dst_h": self._names[f"{target}history"],
        }

        def run(template: str) -> int:
            query = sql.SQL(template).format(**names)
            return int(conn.execute(query, (list(keys),)).rowcount)

        moved = run(
            f"WITH gone AS (DELETE FROM {{src}} WHERE key = ANY(%s) RETURNING {_COLUMNS}) "
            f"INSERT INTO {{dst}} ({_COLUMNS}) SELECT {_COLUMNS} FROM gone "
            f"ON CONFLICT (key) DO UPDATE SET {_REPLACE_ALL}"
        )
        if moved:
            ids = "id, " if target == "archived_" else ""
            run("DELETE FROM {dst_h} WHERE key = ANY(%s)")
            run(
                f"WITH gone AS (DELETE FROM {{src_h}} WHERE key = ANY(%s) "
                f"RETURNING id, {_HISTORY_COLUMNS}) "
                f"INSERT INTO {{dst_h}} ({ids}{_HISTORY_COLUMNS}) "
                f"SELECT {ids}{_HISTORY_COLUMNS} FROM gone ORDER BY id"
            )
        return moved

    def _add_history(self, conn: Conn, key: str, entry: Transition) -> None:
        conn.execute(
            self._sql(
                "INSERT INTO {history} (key, at, from_state, to_state, reason, owner) "
                "VALUES (%s, %s, %s, %s, %s, %s)"
            ),
            (
                key,
                entry.at,
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
            "payload": Jsonb(record.payload),
            "attempts": record.attempts,
            "owner": record.owner,
            "lease_expires_at": record.lease_expires_at,
            "next_attempt_at": record.next_attempt_at,
            "claimed_from": record.claimed_from.value if record.claimed_from else None,
            "may_have_been_sent": record.may_have_been_sent,
            "due_at": due_at(record),
            "created_at": record.created_at,
            "updated_at": record.updated_at,
        }

    def _save(self, conn: Conn, record: Record, *, history: bool = True) -> None:
        values = self._values(record)
        assignments = ", ".join(f"{name} = %({name})s" for name in values if name != "key")
        conn.execute(self._sql(f"UPDATE {{records}} SET {assignments} WHERE key = %(key)s"), values)
        if history:
            self._add_history(conn, record.key, record.history[-1])

    @staticmethod
    def _claim_params(owner: str, now: datetime, lease: timedelta) -> dict[str, Any]:
        return {
            "owner": owner,
            "now": now,
            "expires": now + lease,
            "claim": CLAIM_REASON,
            "reclaim": RECLAIM_REASON,
            "takeover": TAKEOVER_REASON,
        }

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
        fresh = new_record(
            key,
            kind=kind,
            subject=subject,
            now=self._now(),
            payload=payload,
            state=state,
            reason=reason,
        )
        values = self._values(fresh)
        names = ", ".join(values)
        placeholders = ", ".join(f"%({name})s" for name in values)
        with self._txn() as conn:
            archived = conn.execute(
                self._sql("SELECT 1 FROM {archived_records} WHERE key = %s"), (key,)
            ).fetchone()
            inserted = None
            if archived is None:
                inserted = conn.execute(
                    self._sql(
                        f"INSERT INTO {{records}} ({names}) VALUES ({placeholders}) "
                        "ON CONFLICT (key) DO NOTHING RETURNING key"
                    ),
                    values,
                ).fetchone()
            if inserted is not None:
                self._add_history(conn, key, fresh.history[-1])
                return fresh
            existing = self._load(conn, key)
            if existing is None:  # pragma: no cover - deleted between the two statements
                raise StoreError(f"{key}: record vanished while ensuring it")
            check_same_identity(existing, fresh.kind, fresh.subject)
            return existing

    def get(self, key: str) -> Record | None:
        """See ``IdempotencyStore.get``."""
        with self._txn() as conn:
            return self._load(conn, key)

    def claim(
        self, key: str, *, owner: str, lease: timedelta, now: datetime | None = None
    ) -> Record | None:
        """See ``IdempotencyStore.claim``: one ``UPDATE ... RETURNING`` statement."""
        check_claim_args(owner, lease)
        params = self._claim_params(owner, self._now(now), lease)
        params["key"] = key
        with self._txn() as conn:
            rows = conn.execute(self._sql(_CLAIM_ONE), params).fetchall()
            claimed = self._records_with_history(conn, rows)
        return claimed[0] if claimed else None

    def claim_next(
        self,
        kind: str,
        *,
        owner: str,
        lease: timedelta,
        limit: int = 10,
        now: datetime | None = None,
    ) -> list[Record]:
        """See ``IdempotencyStore.claim_next``: ``FOR UPDATE SKIP LOCKED``."""
        check_claim_args(owner, lease)
        if limit < 1:
            return []
        params = self._claim_params(owner, self._now(now), lease)
        params.update(kind=kind, limit=limit)
        with self._txn() as conn:
            rows = conn.execute(self._sql(_CLAIM_NEXT), params).fetchall()
            return self._records_with_history(conn, rows)

    def _update(
        self, key: str, change: Callable[[Record], Record], *, history: bool = True
    ) -> Record:
        with self._txn() as conn:
            record = change(self._require(conn, key))
            self._save(conn, record, history=history)
            return record

    def records(
        self,
        states: State | str | Iterable[State | str] | None = None,
        kind: str | None = None,
    ) -> Iterator[Record]:
        """See ``IdempotencyStore.records`` (keyset pages of ``page_size``)."""
        return self._pages(normalize_states(states), kind)

    def _pages(self, wanted: frozenset[State] | None, kind: str | None) -> Iterator[Record]:
        where: list[str] = []
        params: dict[str, Any] = {"limit": self.page_size}
        if wanted is not None:
            if not wanted:
                return
            where.append("state = ANY(%(states)s)")
            params["states"] = sorted(s.value for s in wanted)
        if kind is not None:
            where.append("kind = %(kind)s")
            params["kind"] = kind
        after: tuple[datetime, str] | None = None
        while True:
            clauses = list(where)
            if after is not None:
                clauses.append("(created_at, key) > (%(after_at)s, %(after_key)s)")
                params["after_at"], params["after_key"] = after
            query = f"SELECT {_COLUMNS} FROM {{records}}"
            if clauses:
                query += " WHERE " + " AND ".join(clauses)
            query += " ORDER BY created_at, key LIMIT %(limit)s"
            with self._txn() as conn:
                rows = conn.execute(self._sql(query), params).fetchall()
                page = self._records_with_history(conn, rows)
            yield from page
            if len(rows) < self.page_size:
                return
            after = (rows[-1]["created_at"], rows[-1]["key"])

    def counts(self, kind: str | None = None) -> dict[State, int]:
        """See ``IdempotencyStore.counts``."""
        result = counts_template()
        query = "SELECT state, COUNT(*) AS n FROM {records}"
        params: tuple[str, ...] = ()
        if kind is not None:
            query += " WHERE kind = %s"
            params = (kind,)
        with self._txn() as conn:
            for row in conn.execute(self._sql(query + " GROUP BY state"), params).fetchall():
                result[State(row["state"])] = int(row["n"])
        return result

    def oldest(self, state: State | str, kind: str | None = None) -> Record | None:
        """See ``IdempotencyStore.oldest``."""
        query = f"SELECT {_COLUMNS} FROM {{records}} WHERE state = %s"
        params: list[Any] = [State(state).value]
        if kind is not None:
            query += " AND kind = %s"
            params.append(kind)
        with self._txn() as conn:
            rows = conn.execute(
                self._sql(query + " ORDER BY created_at, key LIMIT 1"), params
            ).fetchall()
            page = self._records_with_history(conn, rows)
        return page[0] if page else None

    def archive(
        self, *, before: datetime, kind: str | None = None, limit: int | None = None
    ) -> int:
        """See ``IdempotencyStore.archive`` (one transaction per 500 records)."""
        cutoff = check_archive_args(before, limit)
        total = 0
        while limit is None or total < limit:
            chunk = _ARCHIVE_CHUNK if limit is None else min(_ARCHIVE_CHUNK, limit - total)
            query = (
                "SELECT key FROM {records} WHERE state IN ('acknowledged', 'cancelled') "
                "AND updated_at < %(cutoff)s"
            )
            params: dict[str, Any] = {"cutoff": cutoff, "chunk": chunk, "kind": kind}
            if kind is not None:
                query += " AND kind = %(kind)s"
            with self._txn() as conn:
                rows = conn.execute(
                    self._sql(query + " LIMIT %(chunk)s FOR UPDATE SKIP LOCKED"), params
                ).fetchall()
                if not rows:
                    break
                total += self._move(
                    conn, [row["key"] for row in rows], source="", target="archived_"
                )
        return total

    def get_cursor(self, name: str) -> str | None:
        """See ``IdempotencyStore.get_cursor``."""
        with self._txn() as conn:
            row = conn.execute(
                self._sql("SELECT value FROM {cursors} WHERE name = %s"), (name,)
            ).fetchone()
        return None if row is None else str(row["value"])

    def set_cursor(self, name: str, value: str) -> None:
        """See ``IdempotencyStore.set_cursor``."""
        if not isinstance(value, str):
            raise TypeError("cursor values are strings")
        with self._txn() as conn:
            conn.execute(
                self._sql(
                    "INSERT INTO {cursors} (name, value, updated_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, "
                    "updated_at = EXCLUDED.updated_at"
                ),
                (name, value, self._now()),
            )

    def remember(self, namespace: str, key: str) -> bool:
        """See ``IdempotencyStore.remember``."""
        with self._txn() as conn:
            cursor = conn.execute(
                self._sql(
                    "INSERT INTO {seen} (namespace, key, seen_at) VALUES (%s, %s, %s) "
                    "ON CONFLICT (namespace, key) DO NOTHING"
                ),
                (namespace, key, self._now()),
            )
            return cursor.rowcount == 1

    def prune_remembered(self, *, before: datetime) -> int:
        """See ``IdempotencyStore.prune_remembered``."""
        cutoff = as_utc(before, "before")
        with self._txn() as conn:
            cursor = conn.execute(self._sql("DELETE FROM {seen} WHERE seen_at < %s"), (cutoff,))
            return cursor.rowcount

    def close(self) -> None:
        """Close every connection this store opened. Idempotent."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            conn.close()

    def drop_tables(self) -> None:
        """Drop this store's tables (for tests and teardown; the schema itself stays)."""
        with self._txn() as conn:
            for name in (
                "records",
                "history",
                "cursors",
                "seen",
                "archived_records",
                "archived_history",
            ):
                conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._names[name]))
            conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._ident("rate_budget")))
        self._ready = False
