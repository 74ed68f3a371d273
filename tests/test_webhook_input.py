"""Webhooks refuse what cannot be used (issue 11 §3): order ids, foreign bodies, dedupe keys, size."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scayle_orderwise.config import ConnectorSettings, ScayleSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import (
    ConnectorError,
    MalformedWebhookError,
    WebhookTooLargeError,
)
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.store import State

BAD_ORDER_IDS: list[Any] = [
    "x",
    True,
    1001.0,
    " 12",
    "²",
    "٣٤",
    0,
    -5,
    2**31,
    10**20,
    "99999999999999999999",
    "",
    None,
    [1001],
    {"id": 1001},
]


def _connector(**scayle: Any) -> Connector:
    settings = ConnectorSettings(scayle=ScayleSettings(**scayle))
    return Connector.for_sandbox(Sandbox(seed=1), settings=settings)


def _envelope(event: str, payload: Any, key: str | None = "k-1") -> bytes:
    body: dict[str, Any] = {"type": event, "occurredAt": "2026-05-04T09:12:45+00:00"}
    if key is not None:
        body["key"] = key
    body["payload"] = payload
    return json.dumps(body).encode()


@pytest.mark.parametrize("event", ["order-confirmed", "order-delegated"])
@pytest.mark.parametrize("value", BAD_ORDER_IDS, ids=repr)
def test_intake_event_with_unusable_order_id_is_refused(event: str, value: Any) -> None:
    connector = _connector()
    with pytest.raises(MalformedWebhookError, match="order id"):
        connector.ingest_webhook(_envelope(event, {"id": value}))
    assert list(connector.store.records()) == []
    # Not remembered: SCAYLE's redelivery (or a fixed one under the same key) is not a duplicate.
    assert connector.ingest_webhook(_envelope(event, {"id": 1001})).outcome == "recorded"


@pytest.mark.parametrize(
    "event", ["order-cancelled", "order-canceled", "order-item-cancelled", "order-item-canceled"]
)
@pytest.mark.parametrize("value", BAD_ORDER_IDS, ids=repr)
def test_cancellation_event_with_unusable_order_id_is_refused(event: str, value: Any) -> None:
    connector = _connector()
    for payload in ({"id": value}, {"order": {"id": value}}, {"items": [{"orderId": value}]}):
        with pytest.raises(MalformedWebhookError, match="order id"):
            connector.ingest_webhook(_envelope(event, payload))
    assert list(connector.store.records()) == []


@pytest.mark.parametrize("payload", [{}, None, {"items": []}, {"order": {}}, {"orderId": None}])
def test_intake_event_without_order_id_is_refused(payload: Any) -> None:
    connector = _connector()
    with pytest.raises(MalformedWebhookError, match="order id"):
        connector.ingest_webhook(_envelope("order-confirmed", payload))


def test_ids_that_disagree_are_refused() -> None:
    connector = _connector()
    payload = {"order": {"id": 1001}, "items": [{"orderId": 1002}]}
    with pytest.raises(MalformedWebhookError, match="order id"):
        connector.ingest_webhook(_envelope("order-item-cancelled", payload))


@pytest.mark.parametrize("value", [1, "1001", 1001, 2**31 - 1, "2147483647"])
def test_positive_ascii_ids_in_range_are_recorded(value: Any) -> None:
    connector = _connector()
    outcome = connector.ingest_webhook(_envelope("order-confirmed", {"id": value}))
    assert outcome.outcome == "recorded" and outcome.order_id == int(value)
    record = connector.store.get(f"order:{int(value)}")
    assert record is not None and record.state == State.PENDING


def test_the_order_id_range_is_a_setting() -> None:
    connector = _connector(max_order_id=5000)
    assert connector.ingest_webhook(_envelope("order-confirmed", {"id": 5000})).outcome == (
        "recorded"
    )
    with pytest.raises(MalformedWebhookError, match="order id"):
        connector.ingest_webhook(_envelope("order-confirmed", {"id": 5001}, key="k-2"))


@pytest.mark.parametrize("value", ["x", True, 0, -5, None])
def test_unknown_event_types_stay_ignored_whatever_their_ids(value: Any) -> None:
    connector = _connector()
    for n, event in enumerate(("order-created", "product-updated", "payment-capture")):
        outcome = connector.ingest_webhook(_envelope(event, {"id": value}, key=f"k-{n}"))
        assert outcome.outcome == "ignored"
    assert list(connector.store.records()) == []


# ------------------------------------------------------------------------------------------ any body

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.sampled_from(["order-confirmed", "order-cancelled", "order-item-canceled", "x"]),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(
            st.sampled_from(["id", "orderId", "items", "order", "type", "key", "payload", "x"])
            | st.text(max_size=6),
            children,
            max_size=4,
        )
    ),
    max_leaves=20,
)
ENVELOPES = st.fixed_dictionaries(
    {},
    optional={
        "key": JSON_VALUES,
        "type": st.sampled_from(["order-confirmed", "order-cancelled", "order-created"])
        | JSON_VALUES,
        "event": JSON_VALUES,
        "occurredAt": st.sampled_from(["2026-05-04T09:12:45+00:00", "not a time"]) | JSON_VALUES,
        "version": JSON_VALUES,
        "meta": JSON_VALUES,
        "locale": JSON_VALUES,
        "payload": JSON_VALUES,
    },
)
BODIES = (
    st.binary(max_size=200)
    | st.text(max_size=200)
    | ENVELOPES.map(json.dumps)
    | ENVELOPES.map(lambda e: json.dumps(e).encode())
    | st.sampled_from(
        [
            "\ud800",
            b"\xff\xfe",
            "[" * 5000 + "]" * 5000,
            '{"type": "order-confirmed", "payload": {"id": 1' + "0" * 5000 + "}}",
            '{"type": "order-confirmed", "payload": {"id": 1e999}}',
            '{"type": "order-confirmed", "payload": {"id": NaN}}',
            '{"type": "order-confirmed", "key": "\\u0000", "payload": {"id": 5}}',
        ]
    )
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES)
def test_ingest_webhook_raises_only_library_errors(body: bytes | str) -> None:
    connector = _connector()
    try:
        outcome = connector.ingest_webhook(body)
    except ConnectorError:
        return
    assert outcome.outcome in {"recorded", "duplicate", "ignored"}
    if outcome.outcome == "recorded":
        assert isinstance(outcome.order_id, int) and 0 < outcome.order_id < 2**31


# ------------------------------------------------------------------------------------ dedupe keys


def test_envelopes_without_a_key_never_share_a_dedupe_key_with_another_envelope() -> None:
    connector = _connector()
    base = {"type": "order-confirmed", "occurredAt": "2026-05-04T09:00:00Z", "payload": {"id": 9}}
    variants = [
        base,
        {**base, "version": 2},
        {**base, "meta": {"tenantKey": "other"}},
        {**base, "locale": {"countryCode": "DEU"}},
        {**base, "key": ""},
    ]
    outcomes = [connector.ingest_webhook(json.dumps(v)).outcome for v in variants]
    assert outcomes == ["recorded"] * len(variants)
    # A redelivery of the same envelope (same fields, other spacing and order) is a duplicate.
    again = json.dumps(dict(reversed(list(base.items()))), indent=2)
    assert connector.ingest_webhook(again).outcome == "duplicate"


def test_a_key_that_looks_like_a_body_hash_does_not_collide_with_a_keyless_envelope() -> None:
    from scayle_orderwise.scayle.models import WebhookEvent

    keyless = {
        "type": "order-confirmed",
        "occurredAt": "2026-05-04T09:00:00Z",
        "payload": {"id": 9},
    }
    forged_key = WebhookEvent.model_validate(keyless).dedupe_key
    connector = _connector()
    keyed = {**keyless, "key": forged_key}
    assert connector.ingest_webhook(json.dumps(keyed)).outcome == "recorded"
    assert connector.ingest_webhook(json.dumps(keyless)).outcome == "recorded"


# ------------------------------------------------------------------------------------------ body size


def test_body_over_the_default_maximum_is_refused_by_the_library() -> None:
    connector = _connector()
    assert connector.settings.scayle.webhook_max_body_bytes == 1_000_000
    padding = "x" * 1_000_001
    body = _envelope("order-confirmed", {"id": 1001, "note": padding})
    with pytest.raises(WebhookTooLargeError) as info:
        connector.ingest_webhook(body)
    assert isinstance(info.value, MalformedWebhookError)  # receivers mapping 400 still refuse it
    assert info.value.limit == 1_000_000
    assert list(connector.store.records()) == []
    # Measured in bytes, not characters: 400 001 three-byte characters are too large too.
    with pytest.raises(WebhookTooLargeError):
        connector.ingest_webhook("€" * 400_001)


def test_maximum_body_size_is_configurable() -> None:
    connector = _connector(webhook_max_body_bytes=200)
    small = _envelope("order-confirmed", {"id": 1001})
    assert len(small) < 200
    assert connector.ingest_webhook(small).outcome == "recorded"
    with pytest.raises(WebhookTooLargeError):
        connector.ingest_webhook(_envelope("order-confirmed", {"id": 1002, "n": "y" * 200}))
