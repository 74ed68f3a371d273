"""Ledger retention: move records in a final state out of the live ledger after a number of days.

A year of orders must not slow the flows down. :func:`archive_ledger` moves acknowledged and
cancelled records older than the retention period into the store's archive (see
``IdempotencyStore.archive``): the flows keep finding them by key, so nothing is done twice, while
claims, counts and listings only see the live ledger. It can first write every record it archives,
history included, to a JSON-lines file for safe keeping outside the ledger.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any, TextIO

from .base import ARCHIVABLE_STATES, IdempotencyStore, Record, as_utc, utc_now

__all__ = ["archive_ledger", "record_as_json"]


def record_as_json(record: Record) -> dict[str, Any]:
    """A record with its history as a JSON-ready dict (times in ISO 8601, UTC)."""

    def at(value: datetime | None) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "key": record.key,
        "kind": record.kind,
        "subject": record.subject,
        "state": str(record.state),
        "reason": record.reason,
        "external_id": record.external_id,
        "external_ref": record.external_ref,
        "payload": record.payload,
        "attempts": record.attempts,
        "created_at": at(record.created_at),
        "updated_at": at(record.updated_at),
        "history": [
            {
                "at": at(t.at),
                "from": str(t.from_state) if t.from_state else None,
                "to": str(t.to_state),
                "reason": t.reason,
                "by": t.owner,
            }
            for t in record.history
        ],
    }


def archive_ledger(
    store: IdempotencyStore,
    *,
    older_than: timedelta,
    kind: str | None = None,
    export: TextIO | None = None,
    dry_run: bool = False,
    now: datetime | None = None,
) -> int:
    """Archive records in a final state last updated more than ``older_than`` ago.

    With ``export``, every such record is written there first, one JSON object per line. With
    ``dry_run``, nothing moves and the count of what would is returned. Returns how many records
    were (or would be) archived.
    """
    if older_than < timedelta(0):
        raise ValueError("the retention period cannot be negative")
    cutoff = as_utc(now or utc_now(), "now") - older_than
    if export is not None or dry_run:
        due = 0
        for record in store.records(states=ARCHIVABLE_STATES, kind=kind):
            if record.updated_at < cutoff:
                due += 1
                if export is not None:
                    export.write(json.dumps(record_as_json(record), sort_keys=True) + "\n")
        if export is not None:
            export.flush()
        if dry_run:
            return due
    return store.archive(before=cutoff, kind=kind)
