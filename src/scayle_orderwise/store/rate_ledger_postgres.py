"""``PostgresRateLedger``: the shared rate budget in PostgreSQL (workers on many machines).

One row per scope in an ``UNLOGGED`` table of its own (``{prefix}rate_budget`` next to the
store's tables): the budget is worth nothing after a crash, so its writes skip the write-ahead
log and a grant costs a few round trips, not an ``fsync``. Each step is one transaction that
locks the scope's row (``SELECT ... FOR UPDATE``), so workers take turns per scope and never
per ledger. One connection per ledger, shared by its threads under a lock. Needs ``psycopg``.

Workers on several machines agree on time through PostgreSQL: the rows hold the server's clock,
and each ledger measures how far its machine's clock is from it (on connecting, then every
:data:`SKEW_CHECK_SECONDS`) and translates, so a machine whose clock is off by more than the
end-of-window slack neither ends a shared window early (429s) nor late (stalls).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.rows import DictRow, dict_row

from ..errors import StoreError
from ..redaction import dsn_redactor
from .postgres import _SCHEMA_LOCK
from .rate_ledger import BudgetRow, SteppedRateLedger, shifted

__all__ = ["SKEW_CHECK_SECONDS", "SKEW_TOLERANCE", "PostgresRateLedger"]

logger = logging.getLogger("scayle_orderwise.store")

SKEW_CHECK_SECONDS = 60.0
"""How often a ledger measures again how far its machine's clock is from PostgreSQL's."""
SKEW_TOLERANCE = 0.25
"""A difference up to this many seconds is ignored (the end-of-window slack absorbs it)."""

_T = TypeVar("_T")
Conn = psycopg.Connection[DictRow]

_SCHEMA = """CREATE UNLOGGED TABLE IF NOT EXISTS {table} (
    scope text PRIMARY KEY,
    call_limit integer,
    window_seconds double precision NOT NULL,
    window_end double precision,
    window_seq bigint NOT NULL,
    used integer NOT NULL,
    aligned boolean NOT NULL,
    blocked_until double precision,
    recent_start double precision NOT NULL,
    recent integer NOT NULL,
    recent_prev integer NOT NULL
)"""

_COLUMNS = (
    "scope",
    "call_limit",
    "window_seconds",
    "window_end",
    "window_seq",
    "used",
    "aligned",
    "blocked_until",
    "recent_start",
    "recent",
    "recent_prev",
)


def _row(found: DictRow | None) -> BudgetRow | None:
    if found is None:
        return None
    return BudgetRow(
        scope=found["scope"],
        limit=found["call_limit"],
        window=found["window_seconds"],
        window_end=found["window_end"],
        window_seq=found["window_seq"],
        used=found["used"],
        aligned=found["aligned"],
        blocked_until=found["blocked_until"],
        recent_start=found["recent_start"],
        recent=found["recent"],
        recent_prev=found["recent_prev"],
    )


def _values(row: BudgetRow) -> dict[str, Any]:
    return {
        "scope": row.scope,
        "call_limit": row.limit,
        "window_seconds": row.window,
        "window_end": row.window_end,
        "window_seq": row.window_seq,
        "used": row.used,
        "aligned": row.aligned,
        "blocked_until": row.blocked_until,
        "recent_start": row.recent_start,
        "recent": row.recent,
        "recent_prev": row.recent_prev,
    }


class PostgresRateLedger(SteppedRateLedger):
    """A :class:`~scayle_orderwise.store.rate_ledger.RateLedger` in PostgreSQL.

    ``dsn``, ``schema`` and ``table_prefix`` as for the
    :class:`~scayle_orderwise.store.PostgresStore` it belongs to (the DSN is never shown).
    ``clock`` is this machine's wall clock, the one the budgets using the ledger read: the
    ledger translates between it and PostgreSQL's.
    """

    def __init__(
        self,
        dsn: str,
        *,
        schema: str | None = None,
        table_prefix: str = "scayle_orderwise_",
        connect_timeout: float = 10.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._dsn = dsn
        # libpq quotes the URI or the password in its errors: redact them where the DSN enters.
        self._redact = dsn_redactor(dsn)
        self._clock = clock
        self.schema = schema
        self.table_prefix = table_prefix
        self._connect_timeout = connect_timeout
        name = table_prefix + "rate_budget"
        self._table = sql.Identifier(schema, name) if schema else sql.Identifier(name)
        self._lock = threading.Lock()
        self._conn: Conn | None = None
        self._closed = False
        self._clock_offset = 0.0  # the server's clock less this machine's
        self._offset_checked: float | None = None  # time.monotonic() of the last measurement
        names = sql.SQL(", ").join(sql.Identifier(c) for c in _COLUMNS)
        self._select = sql.SQL("SELECT {} FROM {} WHERE scope = %s").format(names, self._table)
        self._insert = sql.SQL(
            "INSERT INTO {} ({}) VALUES ({}) ON CONFLICT (scope) DO NOTHING RETURNING scope"
        ).format(self._table, names, sql.SQL(", ").join(sql.Placeholder(c) for c in _COLUMNS))
        self._update = sql.SQL("UPDATE {} SET {} WHERE scope = %(scope)s").format(
            self._table,
            sql.SQL(", ").join(
                sql.SQL("{} = {}").format(sql.Identifier(c), sql.Placeholder(c))
                for c in _COLUMNS[1:]
            ),
        )

    def __repr__(self) -> str:
        return f"PostgresRateLedger(schema={self.schema!r}, table_prefix={self.table_prefix!r})"

    def _connection(self) -> Conn:
        if self._closed:
            raise StoreError("the rate ledger is closed")
        if self._conn is not None and not self._conn.closed and not self._conn.broken:
            return self._conn
        failure = None
        conn: Conn | None = None
        try:
            conn = psycopg.connect(
                self._dsn,
                autocommit=True,
                row_factory=dict_row,
                connect_timeout=max(1, int(self._connect_timeout)),
            )
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                if self.schema:
                    conn.execute(
                        sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(
                            sql.Identifier(self.schema)
                        )
                    )
                conn.execute(sql.SQL(_SCHEMA).format(table=self._table))
        except psycopg.Error as exc:
            failure = self._redact(f"cannot open the PostgreSQL rate ledger: {str(exc).strip()}")
        if failure is not None or conn is None:  # outside the handler: libpq may quote the DSN
            if conn is not None:
                conn.close()
            raise StoreError(failure or "cannot open the PostgreSQL rate ledger")
        self._conn = conn
        self._offset_checked = None
        return conn

    def _measure_offset(self, conn: Conn) -> None:
        """How far the server's clock is from this machine's (``clock``)."""
        checked = self._offset_checked
        if checked is not None and time.monotonic() - checked < SKEW_CHECK_SECONDS:
            return
        before = self._clock()
        found = conn.execute(
            "SELECT extract(epoch FROM clock_timestamp())::float8 AS now"
        ).fetchone()
        after = self._clock()
        assert found is not None
        offset = float(found["now"]) - (before + after) / 2
        if abs(offset) <= max(SKEW_TOLERANCE, (after - before) / 2):
            offset = 0.0
        elif abs(offset - self._clock_offset) > SKEW_TOLERANCE:
            logger.warning(
                "this machine's clock is %.1fs %s PostgreSQL's: the shared rate budget keeps "
                "PostgreSQL's time (keep the clocks in sync with NTP)",
                abs(offset),
                "behind" if offset > 0 else "ahead of",
            )
        self._clock_offset = offset
        self._offset_checked = time.monotonic()

    def _run(self, work: Callable[[Conn], _T]) -> _T:
        with self._lock:
            conn = self._connection()
            failure = None
            try:
                self._measure_offset(conn)
                with conn.transaction():
                    return work(conn)
            except psycopg.Error as exc:
                if conn.closed or conn.broken:
                    self._conn = None
                    conn.close()
                failure = self._redact(
                    f"PostgreSQL rate ledger: {type(exc).__name__}: {str(exc).strip()}"
                )
            raise StoreError(failure)

    def _step(
        self,
        scope: str,
        change: Callable[[BudgetRow | None], tuple[BudgetRow, _T]],
    ) -> _T:
        def work(conn: Conn) -> _T:
            found = conn.execute(self._select + sql.SQL(" FOR UPDATE"), (scope,)).fetchone()
            if found is None:
                row, result = change(None)
                if conn.execute(self._insert, _values(row)).fetchone() is not None:
                    return result
                # Another worker created the row meanwhile: apply the change to theirs.
                found = conn.execute(self._select + sql.SQL(" FOR UPDATE"), (scope,)).fetchone()
            row, result = change(_row(found))
            conn.execute(self._update, _values(row))
            return result

        return self._run(work)

    def _offset(self) -> float:
        return self._clock_offset

    def read(self, scope: str) -> BudgetRow | None:
        """See :class:`~scayle_orderwise.store.rate_ledger.RateLedger`."""

        def work(conn: Conn) -> BudgetRow | None:
            found = _row(conn.execute(self._select, (scope,)).fetchone())
            return None if found is None else shifted(found, -self._clock_offset)

        return self._run(work)

    def drop_table(self) -> None:
        """Drop the ledger's table (for tests and teardown)."""
        self._run(lambda conn: conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(self._table)))

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            self._closed = True
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
