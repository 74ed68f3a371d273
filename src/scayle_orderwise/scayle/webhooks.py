"""SCAYLE webhooks: authenticate, parse and classify an incoming request.

SCAYLE sends no signature header (reference §5.2); subscriptions can embed Basic-auth credentials in
the URL, so the receiver checks ``Authorization: Basic ...`` in constant time when credentials are
configured. De-duplication on the envelope ``key`` is done by the connector's store, because the same
event may reach several workers; :func:`dedupe_key` says under which key.

Input is refused rather than guessed at: a body over the configured size
(:class:`~scayle_orderwise.errors.WebhookTooLargeError`), a body that is not an envelope, and an
intake or cancellation event whose order id is missing, not a positive integer written in ASCII
digits, above the configured maximum, or given twice with different values
(:class:`~scayle_orderwise.errors.MalformedWebhookError`). SCAYLE then sees a 4xx and the event
shows up as failed in its Panel instead of being acknowledged and dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from ..errors import MalformedWebhookError, WebhookAuthError, WebhookTooLargeError
from .models import WebhookEvent

__all__ = [
    "CANCEL_EVENTS",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_ORDER_ID",
    "ORDER_INTAKE_EVENTS",
    "OUT_OF_STOCK_EVENTS",
    "authenticate",
    "check_size",
    "classify",
    "dedupe_key",
    "parse_event",
    "require_order_id",
]

DEFAULT_MAX_BODY_BYTES = 1_000_000
"""Largest webhook body accepted by default (1 MB); SCAYLE's order envelopes are a few kB."""

DEFAULT_MAX_ORDER_ID = 2**31 - 1
"""Largest SCAYLE order id accepted by default. Inferred: the SDKs type ids as 32-bit ``Integer``
(Java); configurable as ``scayle.max_order_id``."""

_MAX_PLAIN_KEY = 200

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


def as_bytes(body: bytes | str) -> bytes:
    """The body as bytes; a ``str`` that is not valid Unicode is refused."""
    if isinstance(body, bytes | bytearray | memoryview):
        return bytes(body)
    if not isinstance(body, str):
        raise MalformedWebhookError(f"webhook body must be bytes or str, not {type(body).__name__}")
    try:
        return body.encode("utf-8")
    except UnicodeEncodeError:
        raise MalformedWebhookError("webhook body is not valid Unicode") from None


def check_size(body: bytes, limit: int) -> None:
    """Refuse a body over ``limit`` bytes with :class:`WebhookTooLargeError`."""
    if len(body) > limit:
        raise WebhookTooLargeError(
            f"webhook body of {len(body)} bytes is over the limit of {limit} bytes", limit=limit
        )


def parse_event(body: bytes | str) -> WebhookEvent:
    """Parse either envelope shape; raise :class:`MalformedWebhookError` with the reason."""
    raw = as_bytes(body)
    if not raw.strip():
        raise MalformedWebhookError("empty webhook body")
    try:
        event = WebhookEvent.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])[:80] or "body"
        raise MalformedWebhookError(f"malformed webhook ({where}: {first['msg']})") from None
    except (
        ValueError,
        TypeError,
        RecursionError,
    ) as exc:  # pragma: no cover - pydantic wraps these
        raise MalformedWebhookError(f"malformed webhook ({type(exc).__name__})") from None
    if not event.event_name:
        raise MalformedWebhookError("webhook envelope has no event type")
    return event


def require_order_id(event: WebhookEvent, *, max_order_id: int = DEFAULT_MAX_ORDER_ID) -> int:
    """The SCAYLE order id an intake or cancellation event is about, or :class:`MalformedWebhookError`.

    Looked for where SCAYLE puts it: ``payload.order.id`` (else ``payload.id``), ``payload.orderId``
    and ``payload.items[].orderId``. Every value present must be a JSON integer or a string of ASCII
    digits, between 1 and ``max_order_id``, and all must agree; nothing is rounded, trimmed or
    converted from other scripts' digits.
    """
    payload = event.payload
    nested = payload.get("order")
    found: list[tuple[str, Any]] = []
    if isinstance(nested, dict):
        if "id" in nested:
            found.append(("payload.order.id", nested["id"]))
    elif "order" in payload and nested is not None:
        raise MalformedWebhookError(f"{event.event_name}: payload.order is not an object")
    elif "id" in payload:
        found.append(("payload.id", payload["id"]))
    if "orderId" in payload:
        found.append(("payload.orderId", payload["orderId"]))
    items = payload.get("items")
    if isinstance(items, list):
        for n, item in enumerate(items):
            if isinstance(item, dict) and "orderId" in item:
                found.append((f"payload.items[{n}].orderId", item["orderId"]))
    if not found:
        raise MalformedWebhookError(f"{event.event_name}: the payload names no order id")
    ids = {_order_id(where, value, event.event_name, max_order_id) for where, value in found}
    if len(ids) > 1:
        raise MalformedWebhookError(
            f"{event.event_name}: the payload names different order ids {sorted(ids)}"
        )
    return ids.pop()


def _order_id(where: str, value: Any, event: str, max_order_id: int) -> int:
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 20:
        number = int(value)
    if number is None or not 1 <= number <= max_order_id:
        shown = _show(value)
        raise MalformedWebhookError(
            f"{event}: {where} = {shown} is not an order id "
            f"(a whole number from 1 to {max_order_id} in ASCII digits)"
        )
    return number


def _show(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "<a very long number>"
    return text if len(text) <= 40 else text[:37] + "..."


def dedupe_key(event: WebhookEvent, body: bytes | str) -> str:
    """The store key that recognises a redelivery of this envelope, and only of this one.

    With a ``key`` (SCAYLE's event id): ``key:`` and the key (hashed when long or not printable
    ASCII, so every store can hold it). Without one: ``body:`` and a SHA-256 of the whole envelope
    in canonical JSON, so two envelopes that differ in any field never share a key, while the same
    envelope sent again (other spacing or field order) does. The prefixes keep the two kinds apart.
    """
    key = event.key
    if key:
        if len(key) <= _MAX_PLAIN_KEY and key.isascii() and key.isprintable():
            return f"key:{key}"
        return "key-sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()
    raw = as_bytes(body)
    try:
        canonical = json.dumps(
            json.loads(raw), sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode()
    except (ValueError, TypeError, RecursionError):  # pragma: no cover - parse_event accepted it
        canonical = raw
    return "body:sha256:" + hashlib.sha256(canonical).hexdigest()


def classify(event: WebhookEvent) -> str:
    """``"order"``, ``"cancellation"`` or ``"other"`` for routing."""
    name = event.event_name
    if name in CANCEL_EVENTS or name in OUT_OF_STOCK_EVENTS:
        return "cancellation"
    if name in ORDER_INTAKE_EVENTS:
        return "order"
    return "other"
