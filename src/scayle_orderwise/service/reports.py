"""The scheduled reconciliation: reconcile the last days, write the report, note its summary.

Reports are written to ``service.reports_dir`` as ``reconciliation-<UTC time>.html`` and ``.json``;
the summary (time, exceptions by tier, file name) is kept in the ledger (cursor
``service:reconciliation``) for ``/metrics`` and the dashboard of every process.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from ..reconcile import report as render
from ..store import IdempotencyStore
from ..sync.context import SyncResult

if TYPE_CHECKING:
    from ..connector import Connector

__all__ = ["LastReconciliation", "ReconciliationJob", "last_reconciliation"]

CURSOR = "service:reconciliation"


@attrs.frozen
class LastReconciliation:
    """The summary of the latest scheduled reconciliation."""

    at: datetime
    by_tier: dict[str, int]
    exceptions: int
    html: str | None
    since: datetime | None = None


def last_reconciliation(store: IdempotencyStore) -> LastReconciliation | None:
    """The latest summary in the ledger, or ``None``."""
    raw = store.get_cursor(CURSOR)
    if not raw:
        return None
    try:
        data = json.loads(raw)
        return LastReconciliation(
            at=datetime.fromisoformat(data["at"]),
            by_tier={str(k): int(v) for k, v in data.get("by_tier", {}).items()},
            exceptions=int(data.get("exceptions", 0)),
            html=data.get("html"),
            since=datetime.fromisoformat(data["since"]) if data.get("since") else None,
        )
    except (ValueError, TypeError, KeyError):
        return None


class ReconciliationJob:
    """Callable for the scheduler: one reconciliation of the last ``days`` days."""

    def __init__(self, connector: Connector, reports_dir: Path, *, days: int) -> None:
        self.connector = connector
        self.reports_dir = reports_dir
        self.days = days

    def __call__(self) -> SyncResult:
        now = self.connector.context.clock().astimezone(UTC)
        since = now - timedelta(days=self.days)
        report = self.connector.reconcile(since=since)
        self.reports_dir.mkdir(parents=True, exist_ok=True)
        stem = f"reconciliation-{now:%Y%m%dT%H%M%SZ}"
        html = self.reports_dir / f"{stem}.html"
        html.write_text(
            render.to_html(
                report, title=f"Reconciliation since {since:%Y-%m-%d}", generated_at=now
            ),
            encoding="utf-8",
        )
        (self.reports_dir / f"{stem}.json").write_text(render.to_json(report), encoding="utf-8")
        by_tier = {str(k): int(v) for k, v in report.summary.to_dict()["by_tier"].items()}
        summary: dict[str, Any] = {
            "at": now.isoformat(),
            "since": since.isoformat(),
            "by_tier": by_tier,
            "exceptions": sum(by_tier.values()),
            "html": html.name,
        }
        self.connector.store.set_cursor(CURSOR, json.dumps(summary, sort_keys=True))
        result = SyncResult("reconciliation")
        for tier, n in by_tier.items():
            result.add(f"exceptions_{tier}", n)
        result.add("reports_written")
        return result
