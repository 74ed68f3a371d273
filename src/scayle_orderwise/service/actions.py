"""What a person does from the dashboard, each recorded in a ledger record's history with who did it.

* Releasing a quarantined record moves it back to ``pending``; the history entry carries the
  reason and the person (``actor``).
* Resolving an alert closes it (it is raised again if its cause comes back) and is recorded on the
  alert's own ledger record ``alert:<kind>:<subject>`` (kind ``alert``), whose history lists every
  resolution of that alert with the reason and the person.
"""

from __future__ import annotations

from ..alerts import AlertDispatcher
from ..connector import release_quarantined
from ..errors import ConfigError
from ..store import IdempotencyStore, Record, State

__all__ = ["ALERT_KIND", "alert_record_key", "release", "resolve_alert"]

ALERT_KIND = "alert"


def alert_record_key(kind: str, subject: str) -> str:
    """The ledger key that keeps the history of one alert's resolutions."""
    return f"alert:{kind}:{subject}"


def _reason(reason: str) -> str:
    text = " ".join(reason.split())
    if not text:
        raise ConfigError("a reason is required")
    return text[:500]


def release(store: IdempotencyStore, key: str, *, actor: str, reason: str) -> None:
    """Release a quarantined record; ``ConfigError`` when it is not quarantined or no reason."""
    release_quarantined(store, key, reason=f"released: {_reason(reason)}", actor=actor)


def resolve_alert(
    store: IdempotencyStore, kind: str, subject: str, *, actor: str, reason: str
) -> Record:
    """Close an open alert and record who did it and why; ``ConfigError`` when it is not open."""
    text = _reason(reason)
    dispatcher = AlertDispatcher(state=store)
    causes = [c for k, s, c in dispatcher.open_alerts() if k == kind and s == subject]
    if not causes:
        raise ConfigError(f"no open alert {kind} for {subject}")
    key = alert_record_key(kind, subject)
    record = store.ensure(
        key, kind=ALERT_KIND, subject=f"{kind}:{subject}", reason=f"open: {causes[0]}"
    )
    if record.state != State.PENDING:
        store.mark(key, State.PENDING, reason=f"raised again: {causes[0]}")
    done = store.mark(key, State.ACKNOWLEDGED, reason=f"resolved: {text}", actor=actor)
    dispatcher.resolve(kind, subject)
    return done
