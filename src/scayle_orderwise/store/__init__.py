"""Idempotency stores: the ledger that makes every outbound side effect happen exactly once.

``from scayle_orderwise.store import MemoryStore, SqliteStore, PostgresStore``. The protocol,
the state graph and the reference semantics live in :mod:`scayle_orderwise.store.base`.
``PostgresStore`` is imported lazily, so ``psycopg`` is only needed when it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .base import (
    ADMIN_TRANSITIONS,
    OWNER_TRANSITIONS,
    ClaimHeldError,
    ClaimLostError,
    Clock,
    IdempotencyStore,
    InvalidTransitionError,
    KeyConflictError,
    Kind,
    Record,
    State,
    StoreError,
    Transition,
    UnknownKeyError,
    utc_now,
)
from .memory import MemoryStore
from .sqlite import SqliteStore

if TYPE_CHECKING:
    from .postgres import PostgresStore

__all__ = [
    "ADMIN_TRANSITIONS",
    "OWNER_TRANSITIONS",
    "ClaimHeldError",
    "ClaimLostError",
    "Clock",
    "IdempotencyStore",
    "InvalidTransitionError",
    "KeyConflictError",
    "Kind",
    "MemoryStore",
    "PostgresStore",
    "Record",
    "SqliteStore",
    "State",
    "StoreError",
    "Transition",
    "UnknownKeyError",
    "utc_now",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresStore":
        try:
            from .postgres import PostgresStore
        except ImportError as exc:  # pragma: no cover - depends on the installed extras
            raise ImportError(
                "PostgresStore needs psycopg 3: pip install 'scayle-orderwise[postgres]'"
            ) from exc
        return PostgresStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
