"""Logging for operators: ``text`` (one readable line per event) or ``json`` (one object per line).

Flows and the service log with ``extra`` fields (``event``, ``flow``, ``order_id``, ``outcome``,
counts ...); the JSON format puts them at the top level, so a log pipeline can filter on them.
Messages pass through the library's error redaction already; no secret is ever logged.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

__all__ = ["LOG_FORMATS", "JsonFormatter", "configure_logging", "event_fields"]

LOG_FORMATS = ("text", "json")
_STANDARD = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}
_FIELDS_FIRST = ("event", "flow", "order_id", "outcome")


def event_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of a record, with ``flow`` and ``outcome`` read from a dotted
    ``event`` name (``order.acknowledged`` → flow ``order``, outcome ``acknowledged``) when the
    flow did not give them."""
    fields = {
        key: value
        for key, value in vars(record).items()
        if key not in _STANDARD and not key.startswith("_")
    }
    event = fields.get("event")
    if isinstance(event, str) and "." in event:
        flow, _, outcome = event.partition(".")
        fields.setdefault("flow", flow)
        fields.setdefault("outcome", outcome)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and every ``extra`` field."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        data.update(event_fields(record))
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    """``time level logger: message [event=... flow=... order_id=... outcome=...]``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extra = event_fields(record)
        fields = [f"{k}={extra[k]}" for k in _FIELDS_FIRST if k in extra]
        return f"{line} [{' '.join(fields)}]" if fields else line


def configure_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send the library's and the web server's logs to ``stream`` (stderr) in ``fmt``."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {LOG_FORMATS}, not {fmt!r}")
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    # One line per HTTP request (uvicorn access log, httpx) is noise at info level.
    for name in ("uvicorn.access", "httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
