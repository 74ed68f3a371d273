"""``SqliteRateLedger``: the shared rate budget in the ledger's SQLite file (one machine).

A table of its own (``rate_budget``, one row per scope) on a connection of its own, so that the
budget never waits behind the store's lock inside a process. Each step is one ``BEGIN IMMEDIATE``
transaction: processes on the machine serialise on the file's write lock, as the store's writers
do. The connection runs with ``synchronous = NORMAL``: in WAL mode a commit then skips the
``fsync`` (the database stays consistent; a power cut may forget the last few grants, which only
costs a few calls of budget), so a grant costs well under a millisecond.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from ..errors import StoreError
from .rate_ledger import BudgetRow, SteppedRateLedger

__all__ = ["SqliteRateLedger"]

_T = TypeVar("_T")

_SCHEMA = """CREATE TABLE IF NOT EXISTS rate_budget (
    scope TEXT PRIMARY KEY,
    call_limit INTEGER,
    window_seconds REAL NOT NULL,
    window_end REAL,
    window_seq INTEGER NOT NULL,
    used INTEGER NOT NULL,
    aligned INTEGER NOT NULL,
    blocked_until REAL,
    recent_start REAL NOT NULL,
    recent INTEGER NOT NULL,
    recent_prev INTEGER NOT NULL
)"""

_COLUMNS = (
    "scope, call_limit, window_seconds, window_end, window_seq, used, aligned, blocked_until, "
    "recent_start, recent, recent_prev"
)

_UPSERT = (
    f"INSERT INTO rate_budget ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (scope) DO UPDATE SET call_limit = excluded.call_limit, "
    "window_seconds = excluded.window_seconds, window_end = excluded.window_end, "
    "window_seq = excluded.window_seq, used = excluded.used, aligned = excluded.aligned, "
    "blocked_until = excluded.blocked_until, recent_start = excluded.recent_start, "
    "recent = excluded.recent, recent_prev = excluded.recent_prev"
)


def _row(values: tuple[Any, ...] | None) -> BudgetRow | None:
    if values is None:
        return None
    return BudgetRow(
        scope=values[0],
        limit=values[1],
        window=values[2],
        window_end=values[3],
        window_seq=values[4],
        used=values[5],
        aligned=bool(values[6]),
        blocked_until=values[7],
        recent_start=values[8],
        recent=values[9],
        recent_prev=values[10],
    )


def _values(row: BudgetRow) -> tuple[Any, ...]:
    return (
        row.scope,
        row.limit,
        row.window,
        row.window_end,
        row.window_seq,
        row.used,
        int(row.aligned),
        row.blocked_until,
        row.recent_start,
        row.recent,
        row.recent_prev,
    )


class SqliteRateLedger(SteppedRateLedger):
    """A :class:`~scayle_orderwise.store.rate_ledger.RateLedger` in the SQLite file at ``path``."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0) -> None:
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        self._closed = False
        try:
            self._conn = sqlite3.connect(
                self.path, timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self._write() as conn:
                conn.execute(_SCHEMA)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open the rate ledger in {self.path}: {exc}") from exc

    def __repr__(self) -> str:
        return f"SqliteRateLedger({self.path!r})"

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise StoreError("the rate ledger is closed")
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StoreError(f"rate ledger {self.path}: {exc}") from exc

    def _step(self, scope: str, change: Callable[[BudgetRow | None], tuple[BudgetRow, _T]]) -> _T:
        with self._write() as conn:
            found = conn.execute(
                f"SELECT {_COLUMNS} FROM rate_budget WHERE scope = ?", (scope,)
            ).fetchone()
            row, result = change(_row(found))
            conn.execute(_UPSERT, _values(row))
            return result

    def read(self, scope: str) -> BudgetRow | None:
        """See :class:`~scayle_orderwise.store.rate_ledger.RateLedger`."""
        with self._lock:
            if self._closed:
                raise StoreError("the rate ledger is closed")
            try:
                found = self._conn.execute(
                    f"SELECT {_COLUMNS} FROM rate_budget WHERE scope = ?", (scope,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise StoreError(f"rate ledger {self.path}: {exc}") from exc
        return _row(found)

    def close(self) -> None:
        """Close the connection. Idempotent."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
