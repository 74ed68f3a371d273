"""Malformed OrderWise export rows: skipped, counted, logged and alerted, never fatal to a pass.

The export readers (``iter_order_changes``, ``iter_stock_changes`` ...) hand every row their wire
model refuses to a :class:`BadRows` collector instead of raising, so one odd row (a garbled date, a
missing SKU) neither ends the pass nor freezes the watermark: the rows after it are processed and
the watermark moves on from the valid rows. A skipped row is therefore **not** retried; the alert
carries what a person needs to put it right (the row, what was wrong).

Per read: the count ``bad_rows`` in the flow's :class:`~scayle_orderwise.sync.SyncResult`, one
``WARNING`` log line per row with the raw row (values of columns named like a credential are
masked) and one :attr:`~scayle_orderwise.alerts.AlertKind.SYNC_STALLED` alert with the subject
``<flow>:bad_rows`` (distinct from the flow's own stall alert, whose subject is the flow name). The
alert's cause is a digest of the refused rows, so the same rows re-read in the overlap window do not
raise it again, while new ones do; a read without bad rows resolves it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from ..alerts import AlertKind
from ..orderwise.client import InvalidRow
from .context import FlowContext, SyncResult

__all__ = ["BAD_ROWS", "BadRows", "bad_rows_subject"]

BAD_ROWS = "bad_rows"
"""The outcome count of refused export rows."""

_SECRET_COLUMN = re.compile(r"pass(word|wd)?|secret|token|api[_-]?key|authori[sz]ation", re.I)
_MAX_LOGGED = 2000
_MAX_IN_ALERT = 5


def bad_rows_subject(flow: str) -> str:
    """The alert subject of bad rows read by ``flow``."""
    return f"{flow}:{BAD_ROWS}"


def _masked(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        str(k): "***" if _SECRET_COLUMN.search(str(k)) and v is not None else v
        for k, v in raw.items()
    }


def _text(raw: Mapping[str, Any]) -> str:
    text = json.dumps(_masked(raw), sort_keys=True, default=str)
    return text if len(text) <= _MAX_LOGGED else text[:_MAX_LOGGED] + "..."


class BadRows:
    """Collects the refused rows of one export read (pass it as ``on_invalid``), then alerts."""

    def __init__(self, ctx: FlowContext, flow: str, result: SyncResult) -> None:
        self.ctx = ctx
        self.flow = flow
        self.result = result
        self.rows: list[InvalidRow] = []

    def __call__(self, row: InvalidRow) -> None:
        """Count and log one refused row (the read goes on with the next one)."""
        self.rows.append(row)
        self.result.add(BAD_ROWS)
        text = _text(row.raw)
        self.ctx.logger.warning(
            "%s: skipped malformed OrderWise %s row %d (%s): %s",
            self.flow,
            row.export,
            row.index,
            row.reason,
            text,
            extra={
                "event": "bad_export_row",
                "flow": self.flow,
                "export": row.export,
                "row_index": row.index,
                "problem": row.reason,
                "row": text,
            },
        )

    def finish(self) -> bool:
        """Raise one alert for the rows collected (resolve it after a clean read); True if sent."""
        alerts = self.ctx.alerts
        subject = bad_rows_subject(self.flow)
        if not self.rows:
            alerts.resolve(AlertKind.SYNC_STALLED, subject)
            return False
        texts = sorted({_text(r.raw) for r in self.rows})
        digest = hashlib.sha256("\n".join(texts).encode()).hexdigest()[:16]
        export = self.rows[0].export
        shown = "; ".join(f"row {r.index}: {r.reason}" for r in self.rows[:_MAX_IN_ALERT])
        more = len(self.rows) - _MAX_IN_ALERT
        return alerts.raise_alert(
            AlertKind.SYNC_STALLED,
            subject,
            f"the {self.flow} sync skipped {len(self.rows)} malformed row(s) of the OrderWise "
            f"{export} export ({shown}{f'; {more} more' if more > 0 else ''}); they are not "
            "retried: correct the data or the export definition and handle them by hand",
            cause=f"{BAD_ROWS}:{digest}",
            details={
                "flow": self.flow,
                "export": export,
                "rows": [
                    {"index": r.index, "problem": r.reason, "row": _text(r.raw)}
                    for r in self.rows[:_MAX_IN_ALERT]
                ],
            },
        )
