"""The pass log: when each flow last ran and last ran well, kept in the ledger.

Kept as store cursors (``service:pass:<flow>``, JSON), so every process that shares the ledger sees
the same picture: ``/readyz`` and the dashboard of one process report the passes another ran.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import attrs

from ..store import IdempotencyStore

__all__ = ["PassInfo", "PassLog"]

_PREFIX = "service:pass:"


@attrs.frozen
class PassInfo:
    """The latest pass of one flow and the latest good one."""

    flow: str
    last_at: datetime | None = None
    last_ok: bool | None = None
    last_seconds: float | None = None
    last_error: str | None = None
    last_counts: Mapping[str, int] = attrs.field(factory=dict)
    last_good_at: datetime | None = None
    worker: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "flow": self.flow,
            "last_at": self.last_at.isoformat() if self.last_at else None,
            "last_ok": self.last_ok,
            "last_seconds": self.last_seconds,
            "last_error": self.last_error,
            "last_counts": dict(self.last_counts),
            "last_good_at": self.last_good_at.isoformat() if self.last_good_at else None,
            "worker": self.worker,
        }


class PassLog:
    """Reads and writes :class:`PassInfo` in a store."""

    def __init__(
        self,
        store: IdempotencyStore,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.worker = worker

    def get(self, flow: str) -> PassInfo:
        """What is known about ``flow`` (empty when it never ran)."""
        raw = self.store.get_cursor(_PREFIX + flow)
        if not raw:
            return PassInfo(flow)
        try:
            data = json.loads(raw)
            return PassInfo(
                flow,
                last_at=_time(data.get("last_at")),
                last_ok=data.get("last_ok"),
                last_seconds=data.get("last_seconds"),
                last_error=data.get("last_error"),
                last_counts={str(k): int(v) for k, v in (data.get("last_counts") or {}).items()},
                last_good_at=_time(data.get("last_good_at")),
                worker=data.get("worker"),
            )
        except (ValueError, TypeError, AttributeError):
            return PassInfo(flow)

    def record(
        self,
        flow: str,
        *,
        ok: bool,
        seconds: float,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> PassInfo:
        """Note one finished pass (last writer wins across processes)."""
        now = self.clock()
        previous = self.get(flow)
        info = PassInfo(
            flow,
            last_at=now,
            last_ok=ok,
            last_seconds=round(seconds, 3),
            last_error=(error or "")[:500] or None,
            last_counts={k: int(v) for k, v in counts.items() if v},
            last_good_at=now if ok else previous.last_good_at,
            worker=self.worker,
        )
        self.store.set_cursor(_PREFIX + flow, json.dumps(info.as_dict(), sort_keys=True))
        return info


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    parsed = datetime.fromisoformat(str(value))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
