"""SCAYLE webhooks: authenticate, parse and classify an incoming request.

SCAYLE sends no signature header (reference §5.2); subscriptions can embed Basic-auth credentials in
the URL, so the receiver checks ``Authorization: Basic ...`` in constant time when credentials are
configured. De-duplication on the envelope ``key`` is done by the connector's store, because the same
event may reach several workers.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Mapping

from pydantic import ValidationError

from ..errors import MalformedWebhookError, WebhookAuthError
from .models import WebhookEvent

__all__ = [
    "CANCEL_EVENTS",
    "ORDER_INTAKE_EVENTS",
    "OUT_OF_STOCK_EVENTS",
    "authenticate",
    "classify",
    "parse_event",
]

ORDER_INTAKE_EVENTS = frozenset({"order-confirmed", "order-delegated"})
"""Events that announce an order to import (it is re-fetched before import). ``order-created`` is
not one: an unpaid checkout must never be imported."""

CANCEL_EVENTS = frozenset(
    {"order-cancelled", "order-canceled", "order-item-cancelled", "order-item-canceled"}
)
"""Events that announce a customer cancellation (both spellings SCAYLE uses)."""

OUT_OF_STOCK_EVENTS = frozenset({"order-item-out-of-stock"})
"""Events that announce units SCAYLE removed from an order at delegation (out of stock): the
cancellations flow takes them, as they leave OrderWise holding units SCAYLE will not sell."""


def authenticate(headers: Mapping[str, str], username: str | None, password: str | None) -> None:
    """Check Basic credentials in constant time; no-op when none are configured.

    Raises :class:`~scayle_orderwise.errors.WebhookAuthError` without echoing what was sent.
    """
    if not username and not password:
        return
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise WebhookAuthError("webhook request without Basic credentials")
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WebhookAuthError(
            "webhook Authorization header is not valid Basic credentials"
        ) from None
    expected = f"{username or ''}:{password or ''}".encode()
    if not hmac.compare_digest(decoded, expected):
        raise WebhookAuthError("webhook credentials do not match")


def parse_event(body: bytes | str) -> WebhookEvent:
    """Parse either envelope shape; raise :class:`MalformedWebhookError` with the reason."""
    if isinstance(body, str):
        body = body.encode()
    if not body.strip():
        raise MalformedWebhookError("empty webhook body")
    try:
        event = WebhookEvent.model_validate_json(body)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise MalformedWebhookError(f"malformed webhook ({where}: {first['msg']})") from None
    if not event.event_name:
        raise MalformedWebhookError("webhook envelope has no event type")
    return event


def classify(event: WebhookEvent) -> str:
    """``"order"``, ``"cancellation"`` or ``"other"`` for routing."""
    name = event.event_name
    if name in CANCEL_EVENTS or name in OUT_OF_STOCK_EVENTS:
        return "cancellation"
    if name in ORDER_INTAKE_EVENTS:
        return "order"
    return "other"
