"""Alerts: what needs a person's attention, sent to pluggable sinks.

An :class:`Alert` has a ``kind`` (see :class:`AlertKind`), a ``subject`` (an order id, a SKU, a flow
name), a human ``message`` and a ``cause``: a short fingerprint of why it was raised. The
:class:`AlertDispatcher` raises an alert once per (kind, subject) while its cause stays the same, and
forgets it when the flow reports the cause resolved, so a stuck order does not page anyone every pass.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import attrs
import httpx

__all__ = [
    "Alert",
    "AlertDispatcher",
    "AlertKind",
    "AlertSink",
    "LoggingAlertSink",
    "MemoryAlertSink",
    "WebhookAlertSink",
]

logger = logging.getLogger("scayle_orderwise.alerts")

OPEN_INDEX = "alerts:open"
"""Store cursor listing the open alerts (kind, subject) for ``status``."""


class AlertKind(StrEnum):
    """The situations that need a person."""

    ORDER_QUARANTINED = "order_quarantined"
    ORDER_STALLED = "order_stalled"
    FULFILMENT_UNACKNOWLEDGED = "fulfilment_unacknowledged"
    CANCELLATION_TOO_LATE = "cancellation_too_late"
    STOCK_STALE_REJECTED = "stock_stale_rejected"
    SYNC_STALLED = "sync_stalled"
    STATUS_UNKNOWN = "status_unknown"
    SETUP_MISMATCH = "setup_mismatch"
    """The settings name something the SCAYLE tenant lacks (a warehouse)."""


@attrs.frozen
class Alert:
    """One alert as sinks receive it."""

    kind: str
    subject: str
    message: str
    raised_at: datetime
    cause: str = ""
    details: Mapping[str, Any] = attrs.field(factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "kind": str(self.kind),
            "subject": self.subject,
            "message": self.message,
            "raised_at": self.raised_at.isoformat(),
            "cause": self.cause,
            "details": dict(self.details),
        }


@runtime_checkable
class AlertSink(Protocol):
    """Receives alerts. Implementations must not raise; a failing sink is logged and skipped."""

    def send(self, alert: Alert) -> None:
        """Deliver one alert."""


class MemoryAlertSink:
    """Keeps alerts in ``.alerts`` (for tests and the demo)."""

    def __init__(self) -> None:
        self.alerts: list[Alert] = []
        self._lock = threading.Lock()

    def send(self, alert: Alert) -> None:
        with self._lock:
            self.alerts.append(alert)

    def of_kind(self, kind: str) -> list[Alert]:
        """The alerts of one kind, in the order raised."""
        return [a for a in self.alerts if a.kind == kind]


class LoggingAlertSink:
    """Writes each alert as one structured ``WARNING`` log record."""

    def __init__(self, logger_name: str = "scayle_orderwise.alerts") -> None:
        self._logger = logging.getLogger(logger_name)

    def send(self, alert: Alert) -> None:
        self._logger.warning(
            "alert %s for %s: %s",
            alert.kind,
            alert.subject,
            alert.message,
            extra={"alert": alert.to_dict()},
        )


class WebhookAlertSink:
    """POSTs each alert as JSON to a URL; the body has a ``text`` field so Slack webhooks accept it.

    The URL may carry a secret token, so it never appears in ``repr`` or log messages.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self._url = url
        self._client = httpx.Client(
            timeout=timeout, transport=transport, headers=dict(headers or {})
        )

    def __repr__(self) -> str:
        return f"WebhookAlertSink(url='{httpx.URL(self._url).host}/***')"

    def send(self, alert: Alert) -> None:
        body = {"text": f"[{alert.kind}] {alert.subject}: {alert.message}", **alert.to_dict()}
        try:
            response = self._client.post(
                self._url, content=json.dumps(body), headers={"Content-Type": "application/json"}
            )
            response.raise_for_status()
        except httpx.HTTPError as exc:
            logger.error(
                "alert webhook failed for %s %s: %s", alert.kind, alert.subject, type(exc).__name__
            )

    def close(self) -> None:
        """Close the HTTP client."""
        self._client.close()


class AlertDispatcher:
    """Raises alerts to sinks, once per (kind, subject) while the cause stays the same.

    ``state`` (optional) persists open alerts across processes: any object with ``get_cursor`` and
    ``set_cursor`` (the idempotency stores provide them). Without it, dedupe is per process.
    """

    def __init__(
        self,
        sinks: Iterable[AlertSink] = (),
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        state: Any = None,
    ) -> None:
        self.sinks: list[AlertSink] = list(sinks)
        self._clock = clock
        self._state = state
        self._open: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def _key(self, kind: str, subject: str) -> str:
        return f"alert:{kind}:{subject}"

    def _current(self, kind: str, subject: str) -> str | None:
        # The shared store is the truth when there is one: another process may have resolved it.
        if self._state is not None:
            value: str | None = self._state.get_cursor(self._key(kind, subject))
            return value or None
        return self._open.get((kind, subject))

    def raise_alert(
        self,
        kind: str,
        subject: str,
        message: str,
        *,
        cause: str = "",
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Send the alert unless the same (kind, subject, cause) is already open; True if sent."""
        cause = cause or message
        with self._lock:
            if self._current(kind, subject) == cause:
                return False
            self._open[(kind, subject)] = cause
            if self._state is not None:
                self._state.set_cursor(self._key(kind, subject), cause)
                self._update_index(add=(str(kind), subject))
        alert = Alert(str(kind), subject, message, self._clock(), cause, dict(details or {}))
        for sink in self.sinks:
            try:
                sink.send(alert)
            except Exception:  # a broken sink must not stop a sync pass
                logger.exception("alert sink %r failed", sink)
        return True

    def resolve(self, kind: str, subject: str) -> None:
        """Forget an open alert, so it is raised again if its cause comes back."""
        with self._lock:
            had = self._open.pop((kind, subject), None)
            if self._state is not None and (
                had is not None or self._state.get_cursor(self._key(kind, subject))
            ):
                self._state.set_cursor(self._key(kind, subject), "")
                self._update_index(remove=(str(kind), subject))

    def open_alerts(self) -> list[tuple[str, str, str]]:
        """Open alerts as ``(kind, subject, cause)``: from the shared store when there is one (so
        ``scayle-orderwise status`` sees what every worker raised), else from this process."""
        with self._lock:
            if self._state is None:
                return [(k, s, c) for (k, s), c in sorted(self._open.items())]
            found = []
            for kind, subject in self._read_index():
                cause = self._state.get_cursor(self._key(kind, subject))
                if cause:
                    found.append((kind, subject, cause))
            return sorted(found)

    def _read_index(self) -> list[tuple[str, str]]:
        raw = self._state.get_cursor(OPEN_INDEX) if self._state is not None else None
        try:
            return [(str(k), str(s)) for k, s in json.loads(raw or "[]")]
        except (ValueError, TypeError):
            return []

    def _update_index(
        self, *, add: tuple[str, str] | None = None, remove: tuple[str, str] | None = None
    ) -> None:
        # A listing aid only (last writer wins across workers); each alert's own cursor is the truth.
        entries = set(self._read_index())
        if add is not None:
            entries.add(add)
        if remove is not None:
            entries.discard(remove)
        self._state.set_cursor(OPEN_INDEX, json.dumps(sorted(entries)))
