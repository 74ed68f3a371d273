"""The service's ASGI app in process: webhook statuses, health, readiness, metrics, dashboard, actions."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.testclient import TestClient

from flow_helpers import add_orders, stocked_sandbox
from scayle_orderwise.alerts import AlertDispatcher, AlertKind
from scayle_orderwise.config import (
    ConnectorSettings,
    FlowSchedule,
    FlowSettings,
    ScayleSettings,
    ServiceSettings,
)
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import StoreError
from scayle_orderwise.sandbox import Faults, Sandbox
from scayle_orderwise.service import FlowScheduler, create_app
from scayle_orderwise.service.passes import PassLog
from scayle_orderwise.store import MemoryStore, State

HOOK = ("scayle", "hook-secret-1")
DASH = ("ops", "dash-secret-2")


def _basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def _settings(**service: Any) -> ConnectorSettings:
    return ConnectorSettings(
        scayle=ScayleSettings(webhook_username=HOOK[0], webhook_password=HOOK[1]),
        flows=FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0),
        service=ServiceSettings(dashboard_username=DASH[0], **service),
    )


class World:
    def __init__(self, **service: Any) -> None:
        self.sandbox: Sandbox = stocked_sandbox()
        self.clock = self.sandbox.clock.utcnow
        self.connector = Connector.for_sandbox(
            self.sandbox,
            store=MemoryStore(clock=self.clock),
            settings=_settings(**service),
            clock=self.clock,
        )
        self.app = create_app(self.connector, dashboard_password=DASH[1])
        self.client = TestClient(self.app)

    def envelope(self, order_id: Any, event: str = "order-confirmed", key: str = "k1") -> str:
        return json.dumps({"key": key, "type": event, "payload": {"id": order_id}})

    def post_hook(self, body: str | bytes, auth: tuple[str, str] = HOOK, **kw: Any) -> Any:
        return self.client.post("/webhooks/scayle", content=body, headers=_basic(*auth), **kw)

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = self.client.get("/metrics").text
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return found


@pytest.fixture
def world() -> Iterator[World]:
    w = World()
    yield w
    w.app.state.service.metrics.close()


# ------------------------------------------------------------------------------------------ webhook


def test_webhook_records_without_talking_to_orderwise(world: World) -> None:
    add_orders(world.sandbox, [7001])
    first = world.post_hook(world.envelope(7001))
    again = world.post_hook(world.envelope(7001))
    other = world.post_hook(
        json.dumps({"key": "k9", "type": "product-updated", "payload": {"id": 1}})
    )
    assert first.status_code == 202 and first.json() == {
        "event": "order-confirmed",
        "outcome": "recorded",
        "orderId": 7001,
    }
    assert again.status_code == 202 and again.json()["outcome"] == "duplicate"
    assert other.status_code == 202 and other.json()["outcome"] == "ignored"
    assert world.sandbox.orderwise.requests == []
    record = world.connector.store.get("order:7001")
    assert record is not None and record.state == State.PENDING


def test_webhook_refusals(world: World) -> None:
    wrong = world.post_hook(world.envelope(7001), auth=(HOOK[0], "guess"))
    missing = world.client.post("/webhooks/scayle", content=world.envelope(7001))
    malformed = world.post_hook(b"{nope")
    no_id = world.post_hook(world.envelope("7001.0"))
    limit = world.connector.settings.scayle.webhook_max_body_bytes
    declared = world.post_hook(b"x" * (limit + 1))

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body is counted as it streams
        for _ in range(limit // 65536 + 2):
            yield b"y" * 65536

    streamed = world.client.post("/webhooks/scayle", content=chunks(), headers=_basic(*HOOK))
    assert wrong.status_code == 401 and "guess" not in wrong.text and HOOK[1] not in wrong.text
    assert wrong.headers["www-authenticate"].startswith("Basic")
    assert missing.status_code == 401
    assert malformed.status_code == 400
    assert no_id.status_code == 400 and "order id" in no_id.json()["error"]
    assert declared.status_code == 413 and streamed.status_code == 413
    assert list(world.connector.store.records()) == []
    counted = world.metrics()
    assert counted[("scayle_orderwise_webhooks_total", (("outcome", "unauthorised"),))] == 2
    assert counted[("scayle_orderwise_webhooks_total", (("outcome", "too_large"),))] == 2
    assert counted[("scayle_orderwise_webhooks_total", (("outcome", "malformed"),))] == 2


def test_webhook_answers_503_when_the_ledger_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise StoreError("database is down at postgresql://app:pw@db/x")

    monkeypatch.setattr(world.connector.store, "ensure", broken)
    answer = world.post_hook(world.envelope(7001))
    assert answer.status_code == 503 and "pw" not in answer.text and "database" not in answer.text


def test_recorded_webhook_wakes_the_flow_that_does_the_work() -> None:
    sandbox = stocked_sandbox()
    connector = Connector.for_sandbox(sandbox, settings=_settings())
    scheduler = FlowScheduler(connector)
    woken: list[str] = []
    scheduler.wake = woken.append  # type: ignore[method-assign]
    app = create_app(connector, scheduler=scheduler)
    client = TestClient(app)
    body = {"key": "a", "type": "order-confirmed", "payload": {"id": 1}}
    client.post("/webhooks/scayle", content=json.dumps(body), headers=_basic(*HOOK))
    body = {"key": "b", "type": "order-cancelled", "payload": {"id": 2}}
    client.post("/webhooks/scayle", content=json.dumps(body), headers=_basic(*HOOK))
    body = {"key": "b", "type": "order-cancelled", "payload": {"id": 2}}
    client.post("/webhooks/scayle", content=json.dumps(body), headers=_basic(*HOOK))
    assert woken == ["orders", "cancellations"]
    app.state.service.metrics.close()


# ------------------------------------------------------------------------------------------ health


def test_healthz_and_readyz(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "alive"}
    fresh = world.client.get("/readyz")
    assert fresh.status_code == 200 and fresh.json()["ready"] is True  # within the first threshold
    log = PassLog(world.connector.store, clock=world.clock)
    for flow in ("orders", "cancellations", "fulfilments", "inventory"):
        log.record(flow, ok=True, seconds=0.1, counts={})
    stall = world.connector.settings.flows.sync_stalled_after_seconds
    world.sandbox.clock.advance(stall - 10)  # type: ignore[attr-defined]
    log.record("orders", ok=True, seconds=0.1, counts={})
    log.record("cancellations", ok=True, seconds=0.1, counts={})
    log.record("fulfilments", ok=True, seconds=0.1, counts={})
    log.record("inventory", ok=False, seconds=0.1, counts={}, error="TransientError: timeout")
    assert world.client.get("/readyz").status_code == 200
    world.sandbox.clock.advance(20)  # type: ignore[attr-defined]
    stalled = world.client.get("/readyz")
    assert stalled.status_code == 503
    reasons = stalled.json()["reasons"]
    assert len(reasons) == 1 and reasons[0].startswith("inventory: no good pass")
    assert "TransientError: timeout" in reasons[0]


def test_readyz_answers_503_when_the_ledger_does_not(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise StoreError("no connection to the ledger")

    monkeypatch.setattr(world.connector.store, "counts", broken)
    answer = world.client.get("/readyz")
    assert answer.status_code == 503 and answer.json()["reasons"] == ["ledger: StoreError"]
    metrics = world.metrics()
    assert metrics[("scayle_orderwise_ledger_up", ())] == 0


def test_a_disabled_flow_does_not_make_the_service_unready() -> None:
    w = World(inventory=FlowSchedule(enabled=False))
    w.sandbox.clock.advance(10 * 86400)  # type: ignore[attr-defined]
    log = PassLog(w.connector.store, clock=w.clock)
    for flow in ("orders", "cancellations", "fulfilments"):
        log.record(flow, ok=True, seconds=0.1, counts={})
    assert w.client.get("/readyz").status_code == 200
    w.app.state.service.metrics.close()


# ----------------------------------------------------------------------------------------- metrics


def test_metrics_follow_the_ledger_and_the_api_calls(world: World) -> None:
    before = world.metrics()
    assert before[("scayle_orderwise_ledger_up", ())] == 1
    add_orders(world.sandbox, [7001, 7002])
    world.post_hook(world.envelope(7001, key="a"))
    world.post_hook(world.envelope(7002, key="b"))
    world.connector.sync_orders()
    world.sandbox.scayle.faults = Faults(rate_limit_rate=1.0, seed=1)
    with pytest.raises(Exception):  # noqa: B017 - any error: the point is the 429 being counted
        world.connector.scayle.get_order(7001)
    world.sandbox.scayle.faults = Faults()
    after = world.metrics()

    def value(name: str, **labels: str) -> float:
        return after.get((name, tuple(sorted(labels.items()))), 0.0)

    assert value("scayle_orderwise_ledger_records", kind="order", state="acknowledged") == 2
    assert value("scayle_orderwise_ledger_records", kind="order", state="pending") == 0
    assert value("scayle_orderwise_webhooks_total", outcome="recorded") == 2
    scayle_calls = sum(
        v
        for (n, labels), v in after.items()
        if n == "scayle_orderwise_api_calls_total" and ("api", "SCAYLE") in labels
    )
    orderwise_calls = sum(
        v
        for (n, labels), v in after.items()
        if n == "scayle_orderwise_api_calls_total" and ("api", "OrderWise") in labels
    )
    assert scayle_calls >= 4 and orderwise_calls >= 2
    limited = sum(
        v for (n, _labels), v in after.items() if n == "scayle_orderwise_api_rate_limited_total"
    )
    assert limited >= 1
    assert value("scayle_orderwise_pending_reference_writes") == 0
    assert ("scayle_orderwise_open_alerts", (("kind", "order_quarantined"),)) in after


def test_metrics_count_open_alerts_and_pending_reference_writes(world: World) -> None:
    store = world.connector.store
    AlertDispatcher(state=store).raise_alert(AlertKind.ORDER_STALLED, "7001", "stuck")
    store.ensure("reference:7001", kind="reference_write", subject="7001")
    store.ensure("reference:7002", kind="reference_write", subject="7002")
    store.mark("reference:7002", State.ACKNOWLEDGED, reason="written")
    metrics = world.metrics()
    assert metrics[("scayle_orderwise_open_alerts", (("kind", "order_stalled"),))] == 1
    assert metrics[("scayle_orderwise_pending_reference_writes", ())] == 1


# --------------------------------------------------------------------------------------- dashboard


def _quarantine(world: World, order_id: int, reason: str) -> None:
    world.connector.store.ensure(
        f"order:{order_id}",
        kind="order",
        subject=str(order_id),
        state=State.QUARANTINED,
        reason=reason,
    )
    AlertDispatcher(state=world.connector.store).raise_alert(
        AlertKind.ORDER_QUARANTINED, str(order_id), reason, cause="unknown_sku"
    )


def _token(page: str) -> str:
    found = re.search(r'name="token" value="([0-9a-f]+)"', page)
    assert found is not None
    return found.group(1)


def test_dashboard_needs_credentials_and_is_closed_without_a_password() -> None:
    closed = World()
    closed.app = create_app(closed.connector)
    client = TestClient(closed.app)
    assert client.get("/").status_code == 403
    assert "DASHBOARD_PASSWORD" in client.get("/").text
    closed.app.state.service.metrics.close()
    w = World()
    assert w.client.get("/").status_code == 401
    assert w.client.get("/", headers=_basic(DASH[0], "wrong")).status_code == 401
    assert w.client.get("/", headers=_basic(*DASH)).status_code == 200
    assert w.client.get("/", headers=_basic(*HOOK)).status_code == 401  # webhook creds are not it
    w.app.state.service.metrics.close()


def test_dashboard_shows_exceptions_escaped_and_no_secret(world: World) -> None:
    _quarantine(world, 7003, "unknown SKU '<script>alert(1)</script>'")
    page = world.client.get("/", headers=_basic(*DASH)).text
    assert "7003" in page
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    for secret in (DASH[1], HOOK[1]):
        assert secret not in page
    assert 'action="/records/order:7003/release"' in page


def test_release_through_the_dashboard_records_who_and_why(world: World) -> None:
    _quarantine(world, 7004, "unknown SKU 'X'")
    page = world.client.get("/", headers=_basic(*DASH)).text
    token = _token(page)
    forged = world.client.post(
        "/records/order:7004/release",
        data={"reason": "no token", "token": "0" * 64},
        headers=_basic(*DASH),
    )
    no_reason = world.client.post(
        "/records/order:7004/release",
        data={"reason": "   ", "token": token},
        headers=_basic(*DASH),
        follow_redirects=False,
    )
    assert forged.status_code == 403
    assert no_reason.status_code == 303 and "error=1" in no_reason.headers["location"]
    assert world.connector.store.get("order:7004").state == State.QUARANTINED  # type: ignore[union-attr]

    done = world.client.post(
        "/records/order:7004/release",
        data={"reason": "SKU X mapped to X-1 in the sku_map", "token": token},
        headers=_basic(*DASH),
    )
    assert done.status_code == 200 and "order:7004 released" in done.text
    record = world.connector.store.get("order:7004")
    assert record is not None and record.state == State.PENDING
    last = record.history[-1]
    assert last.owner == DASH[0] and last.reason == "released: SKU X mapped to X-1 in the sku_map"
    assert AlertDispatcher(state=world.connector.store).open_alerts() == []
    history = world.client.get("/records/order:7004", headers=_basic(*DASH)).text
    assert "SKU X mapped to X-1" in history and DASH[0] in history


def test_resolve_an_alert_through_the_dashboard(world: World) -> None:
    store = world.connector.store
    dispatcher = AlertDispatcher(state=store)
    dispatcher.raise_alert(AlertKind.CANCELLATION_TOO_LATE, "7005", "picked", cause="too_late")
    token = _token(world.client.get("/", headers=_basic(*DASH)).text)
    answer = world.client.post(
        "/alerts/resolve",
        data={
            "kind": "cancellation_too_late",
            "subject": "7005",
            "reason": "return raised in OrderWise",
            "token": token,
        },
        headers=_basic(*DASH),
    )
    assert answer.status_code == 200 and "resolved" in answer.text
    assert dispatcher.open_alerts() == []
    record = store.get("alert:cancellation_too_late:7005")
    assert record is not None and record.state == State.ACKNOWLEDGED
    assert record.history[-1].owner == DASH[0]
    assert record.history[-1].reason == "resolved: return raised in OrderWise"
    # Raised again and resolved again: the alert's history keeps both resolutions.
    dispatcher.raise_alert(AlertKind.CANCELLATION_TOO_LATE, "7005", "picked", cause="too_late")
    world.client.post(
        "/alerts/resolve",
        data={
            "kind": "cancellation_too_late",
            "subject": "7005",
            "reason": "again",
            "token": token,
        },
        headers=_basic(*DASH),
    )
    reasons = [t.reason for t in store.get("alert:cancellation_too_late:7005").history]  # type: ignore[union-attr]
    assert reasons.count("resolved: again") == 1
    assert reasons.count("resolved: return raised in OrderWise") == 1
    unknown = world.client.post(
        "/alerts/resolve",
        data={"kind": "order_stalled", "subject": "1", "reason": "x", "token": token},
        headers=_basic(*DASH),
        follow_redirects=False,
    )
    assert unknown.status_code == 303 and "error=1" in unknown.headers["location"]


def test_the_app_can_be_mounted_under_a_prefix(world: World) -> None:
    _quarantine(world, 7006, "unknown SKU")
    parent = Starlette(routes=[Mount("/integration", app=world.app)])
    client = TestClient(parent)
    page = client.get("/integration/", headers=_basic(*DASH))
    assert page.status_code == 200
    assert 'action="/integration/records/order:7006/release"' in page.text
    assert 'href="/integration/metrics"' in page.text
    assert client.get("/integration/healthz").status_code == 200
    token = _token(page.text)
    done = client.post(
        "/integration/records/order:7006/release",
        data={"reason": "fixed", "token": token},
        headers=_basic(*DASH),
    )
    assert done.status_code == 200
    assert world.connector.store.get("order:7006").state == State.PENDING  # type: ignore[union-attr]


def test_the_dashboard_password_is_refused_in_the_configuration_file(tmp_path: Any) -> None:
    from scayle_orderwise.errors import ConfigError

    path = tmp_path / "scayle-orderwise.toml"
    path.write_text('[service]\ndashboard_username = "ops"\ndashboard_password = "oops"\n')
    with pytest.raises(ConfigError, match="SCAYLE_ORDERWISE_SERVICE__DASHBOARD_PASSWORD") as info:
        ConnectorSettings.load(path)
    assert "oops" not in str(info.value)


def test_waiting_too_long_lists_old_open_records_oldest_first(world: World) -> None:
    store = world.connector.store
    store.ensure("order:1", kind="order", subject="1")
    world.sandbox.clock.advance(3600)  # type: ignore[attr-defined]
    store.ensure("order:2", kind="order", subject="2")  # young: not listed
    page = world.client.get("/", headers=_basic(*DASH)).text
    waiting = page[page.index('id="waiting"') : page.index('id="flows"')]
    assert "order:1" in waiting and "order:2" not in waiting
    assert "order not yet in OrderWise" in waiting


def test_dashboard_answers_503_without_details_when_the_ledger_fails(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_a: object, **_k: object) -> None:
        raise StoreError("could not connect to postgresql://app:hunter2@db/x")

    monkeypatch.setattr(world.connector.store, "records", broken)
    monkeypatch.setattr(world.connector.store, "get", broken)
    page = world.client.get("/", headers=_basic(*DASH))
    record = world.client.get("/records/order:1", headers=_basic(*DASH))
    for answer in (page, record):
        assert answer.status_code == 503 and answer.headers["retry-after"] == "30"
        assert "hunter2" not in answer.text and "postgresql" not in answer.text
