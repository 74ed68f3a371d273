"""Cancellations both ways, through the sandbox with faults."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from scayle_orderwise.alerts import AlertKind, MemoryAlertSink
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector, release_quarantined
from scayle_orderwise.sandbox import Faults, Sandbox, make_order
from scayle_orderwise.store import MemoryStore, State
from scayle_orderwise.sync.cancellations import (
    record_shop_cancellation,
    shop_cancellation_key,
)

LINES = (("SKU-A", 1000, 2, "0.20"), ("SKU-B", 500, 1, "0.20"))
"""Items ``id*1000+1`` and ``+2`` are SKU-A, ``+3`` is SKU-B."""

FLOWS = FlowSettings(backoff_base_seconds=0)


def items(order_id: int, *n: int) -> list[int]:
    return [order_id * 1000 + k for k in n]


def setup(
    order_ids: Iterable[int], *, seed: int = 7, push: bool = True, cancel_enabled: bool = True
) -> tuple[Sandbox, Connector, MemoryAlertSink]:
    sandbox = Sandbox(seed=seed)
    sandbox.orderwise.cancel_enabled = cancel_enabled
    for code in ("SKU-A", "SKU-B"):
        sandbox.orderwise.add_variant(code)
    ids = list(order_ids)
    for order_id in ids:
        sandbox.scayle.add_order(make_order(order_id, LINES))
    sink = MemoryAlertSink()
    connector = Connector.for_sandbox(sandbox, alerts=[sink], flows=FLOWS)
    if push:
        assert connector.sync_orders()["pushed"] == len(ids)
    return sandbox, connector, sink


def cancel_calls(sandbox: Sandbox, committed_only: bool = True) -> list[tuple[str, str, int]]:
    return [
        r
        for r in sandbox.orderwise.requests
        if r[0] == "POST" and r[1].endswith("/cancel") and (r[2] == 200 or not committed_only)
    ]


def deliver_webhooks(connector: Connector, sandbox: Sandbox, event: str) -> int:
    delivered = 0
    for envelope in sandbox.scayle.webhooks:
        if envelope["type"] == event:
            connector.ingest_webhook(json.dumps(envelope), {})
            delivered += 1
    return delivered


def shop_record(connector: Connector, order_id: int) -> Any:
    return connector.store.get(shop_cancellation_key(order_id))


# -------------------------------------------------------------------------- SCAYLE → OrderWise


def test_cancellation_before_picking_cancels_the_orderwise_order_once() -> None:
    sandbox, connector, sink = setup([40001])
    sandbox.scayle.cancel_order(40001)
    assert deliver_webhooks(connector, sandbox, "order-cancelled") == 1

    result = connector.sync_cancellations()

    assert result["cancelled_in_orderwise"] == 1
    assert sandbox.orderwise.status("SCAYLE-40001") == "Cancelled"
    assert len(cancel_calls(sandbox)) == 1
    record = shop_record(connector, 40001)
    assert record.state == State.ACKNOWLEDGED and record.payload["complete"] is True
    assert sink.of_kind(AlertKind.CANCELLATION_TOO_LATE) == []
    # The OrderWise side now shows the order cancelled: nothing goes back to SCAYLE.
    again = connector.sync_cancellations()
    assert again["cancelled_in_scayle"] == 0
    assert sandbox.scayle.cancellations == []


def test_the_same_cancellation_twice_does_nothing_twice() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.scayle.cancel_order(40001)
    envelope = next(e for e in sandbox.scayle.webhooks if e["type"] == "order-cancelled")

    connector.ingest_webhook(json.dumps(envelope), {})
    record_shop_cancellation(connector.context, 40001, source="order-canceled")
    connector.sync_cancellations()
    connector.ingest_webhook(json.dumps({**envelope, "key": "another-delivery"}), {})
    record_shop_cancellation(connector.context, 40001, source="manual")
    connector.sync_cancellations()
    connector.sync_cancellations()

    assert len(cancel_calls(sandbox, committed_only=False)) == 1
    assert len([r for r in connector.store.records(kind="cancellation")]) == 2  # shop + OW echo


def test_cancellation_found_by_polling_scayle_without_a_webhook() -> None:
    sandbox, connector, _ = setup([40001, 40002])
    sandbox.scayle.cancel_order(40002)

    result = connector.sync_cancellations()

    assert result["shop_cancellations_found"] == 1
    assert sandbox.orderwise.status("SCAYLE-40002") == "Cancelled"
    assert sandbox.orderwise.status("SCAYLE-40001") != "Cancelled"


def test_cancellation_after_picking_started_needs_a_return_and_alerts_once() -> None:
    sandbox, connector, sink = setup([40001])
    sandbox.orderwise.set_status("SCAYLE-40001", "Picking")
    sandbox.scayle.cancel_order(40001)
    deliver_webhooks(connector, sandbox, "order-cancelled")

    result = connector.sync_cancellations()
    connector.sync_cancellations()

    assert result["return_needed"] == 1
    assert sandbox.orderwise.status("SCAYLE-40001") == "Picking"
    assert cancel_calls(sandbox, committed_only=False) == []
    record = shop_record(connector, 40001)
    assert record.state == State.QUARANTINED
    assert record.reason.startswith("return_needed:")
    assert record.payload["return_needed"] is True
    alerts = sink.of_kind(AlertKind.CANCELLATION_TOO_LATE)
    assert len(alerts) == 1
    assert alerts[0].subject == "40001" and "40001" in alerts[0].message


def test_cancellation_after_despatch_needs_a_return() -> None:
    sandbox, connector, sink = setup([40001])
    # The parcel leaves before SCAYLE hears of it, and the customer cancels in between.
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", courier="DPD")
    sandbox.scayle.cancel_order(40001)
    deliver_webhooks(connector, sandbox, "order-cancelled")

    result = connector.sync_cancellations()

    assert result["return_needed"] == 1
    assert sandbox.orderwise.status("SCAYLE-40001") == "Despatched"
    assert cancel_calls(sandbox, committed_only=False) == []
    assert len(sink.of_kind(AlertKind.CANCELLATION_TOO_LATE)) == 1


def test_cancellation_before_the_order_reached_orderwise_cancels_the_ledger_record() -> None:
    sandbox, connector, _ = setup([40001], push=False)
    deliver_webhooks(connector, sandbox, "order-confirmed")
    assert connector.store.get("order:40001").state == State.PENDING  # type: ignore[union-attr]
    sandbox.scayle.cancel_order(40001)
    deliver_webhooks(connector, sandbox, "order-cancelled")

    result = connector.sync_cancellations()
    connector.sync_orders()

    assert result["cancelled_before_push"] == 1
    assert connector.store.get("order:40001").state == State.CANCELLED  # type: ignore[union-attr]
    assert sandbox.orderwise.sales_orders == []
    assert cancel_calls(sandbox, committed_only=False) == []


def test_a_partial_cancellation_in_scayle_goes_to_a_person() -> None:
    sandbox, connector, sink = setup([40001])
    item = sandbox.scayle.orders[40001]["items"][2]  # the SKU-B unit only
    item.update(status="cancelled", cancelledAt="2026-05-04T10:00:00+00:00")
    record_shop_cancellation(connector.context, 40001, source="order-item-cancelled")

    result = connector.sync_cancellations()

    assert result["needs_person"] == 1
    assert cancel_calls(sandbox, committed_only=False) == []
    record = shop_record(connector, 40001)
    assert record.state == State.QUARANTINED and "partial_cancellation" in record.reason
    alerts = sink.of_kind(AlertKind.CANCELLATION_TOO_LATE)
    assert len(alerts) == 1 and str(items(40001, 3)[0]) in alerts[0].message


def test_without_a_cancel_endpoint_a_person_is_alerted_and_the_pass_goes_on() -> None:
    sandbox, connector, sink = setup([40001, 40002], cancel_enabled=False)
    sandbox.scayle.cancel_order(40001)
    sandbox.orderwise.cancel_order("SCAYLE-40002", lines={"SKU-B": 1})

    result = connector.sync_cancellations()

    assert result["needs_person"] == 1
    assert shop_record(connector, 40001).state == State.QUARANTINED
    assert "manual_cancel_needed" in shop_record(connector, 40001).reason
    assert len(sink.of_kind(AlertKind.CANCELLATION_TOO_LATE)) == 1
    assert result["cancelled_in_scayle"] == 1  # the other order was still handled


def test_lost_answer_to_the_cancel_call_is_checked_not_repeated() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.scayle.cancel_order(40001)
    deliver_webhooks(connector, sandbox, "order-cancelled")
    sandbox.faults = Faults(timeout_after_commit_rate=1.0)
    first = connector.sync_cancellations()
    sandbox.faults = Faults()
    assert first["ambiguous"] == 1
    assert shop_record(connector, 40001).state == State.SENT

    second = connector.sync_cancellations()

    assert second["cancelled_in_orderwise"] == 1
    assert len(cancel_calls(sandbox, committed_only=False)) == 1
    assert shop_record(connector, 40001).state == State.ACKNOWLEDGED


# -------------------------------------------------------------------------- OrderWise → SCAYLE


def cancelled_items(sandbox: Sandbox, order_id: int) -> list[int]:
    return sorted(
        i["orderItemId"]
        for body in sandbox.scayle.cancellations
        if body["orderId"] == order_id
        for i in body["items"]
    )


def test_a_line_cancelled_in_orderwise_cancels_those_units_in_scayle_once() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.orderwise.cancel_order("SCAYLE-40001", lines={"SKU-A": 1})

    for _ in range(3):
        connector.sync_cancellations()

    assert len(sandbox.scayle.cancellations) == 1
    cancelled = cancelled_items(sandbox, 40001)
    assert len(cancelled) == 1 and cancelled[0] in items(40001, 1, 2)
    # The echo (SCAYLE's item-cancelled webhook) does not bounce back to OrderWise.
    deliver_webhooks(connector, sandbox, "order-item-cancelled")
    connector.sync_cancellations()
    assert cancel_calls(sandbox, committed_only=False) == []
    assert sandbox.orderwise.status("SCAYLE-40001") != "Cancelled"


def test_an_order_cancelled_in_orderwise_cancels_only_units_not_shipped() -> None:
    sandbox, connector, _ = setup([40001, 40002])
    sandbox.orderwise.cancel_order("SCAYLE-40002")
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-A": 2})
    connector.sync_fulfilments()
    sandbox.orderwise.cancel_order("SCAYLE-40001")  # the rest: the SKU-B unit

    connector.sync_cancellations()
    connector.sync_cancellations()

    assert cancelled_items(sandbox, 40002) == items(40002, 1, 2, 3)
    assert cancelled_items(sandbox, 40001) == items(40001, 3)
    assert len(sandbox.scayle.cancellations) == 2
    assert sandbox.scayle.orders[40002]["status"] == "cancellation_completed"


def test_units_in_status_deliverable_are_not_taken_for_shipped_and_get_cancelled() -> None:
    """Issue 15 A.1: 0.1.0 took ``deliverable`` for shipped and cancelled nothing."""
    sandbox, connector, _ = setup([40001])
    for item in sandbox.scayle.orders[40001]["items"]:
        item["status"] = "deliverable"  # SCAYLE's word for "can be delivered", not "shipped"
    sandbox.orderwise.cancel_order("SCAYLE-40001")

    result = connector.sync_cancellations()

    assert result["cancelled_in_scayle"] == 1
    assert cancelled_items(sandbox, 40001) == items(40001, 1, 2, 3)


def test_orderwise_cancellations_under_lost_responses_are_sent_once() -> None:
    order_ids = list(range(43001, 43007))
    sandbox, connector, _ = setup(order_ids, seed=21)
    for order_id in order_ids:
        sandbox.orderwise.cancel_order(f"SCAYLE-{order_id}", lines={"SKU-B": 1})
    sandbox.faults = Faults(timeout_after_commit_rate=0.5, seed=3)

    for _ in range(20):
        connector.sync_cancellations()
        open_records = [
            r for r in connector.store.records(kind="cancellation") if r.state != State.ACKNOWLEDGED
        ]
        if (
            len(list(connector.store.records(kind="cancellation"))) >= len(order_ids)
            and not open_records
        ):
            break
    sandbox.faults = Faults()
    connector.sync_cancellations()

    assert sandbox.injected.get("timeout_after_commit", 0) > 0
    for order_id in order_ids:
        assert cancelled_items(sandbox, order_id) == items(order_id, 3)
    assert len(sandbox.scayle.cancellations) == len(order_ids)


def test_a_malformed_change_row_is_skipped_and_the_cancellation_still_goes_through() -> None:
    sandbox, connector, sink = setup([40001, 40002])
    ow = sandbox.orderwise
    original = ow._export_order_changes

    def with_bad_row(params: Any) -> list[dict[str, Any]]:
        rows = original(params)
        return [{**rows[0], "owOrderId": "not a number", "quantityCancelled": "?"}, *rows]

    ow.register_export(ow.export_definitions.order_changes, with_bad_row, ["since"])
    sandbox.orderwise.cancel_order("SCAYLE-40001", lines={"SKU-B": 1})

    first = connector.sync_cancellations()
    assert (first["bad_rows"], first["cancelled_in_scayle"], first["poll_failed"]) == (1, 1, 0)
    assert cancelled_items(sandbox, 40001) == items(40001, 3)

    sandbox.orderwise.cancel_order("SCAYLE-40002")
    second = connector.sync_cancellations()
    assert (second["bad_rows"], second["cancelled_in_scayle"]) == (1, 1)
    assert cancelled_items(sandbox, 40002) == items(40002, 1, 2, 3)
    alerts = sink.of_kind(AlertKind.SYNC_STALLED)
    assert [a.subject for a in alerts] == ["cancellations:bad_rows"]  # once for the same row
    assert "owOrderId" in alerts[0].message


# ------------------------------------------------------------------- units out of stock in SCAYLE


def test_units_scayle_removes_as_out_of_stock_reach_the_cancellations_flow() -> None:
    """Issue 15 A.4: 0.1.0 ignored ``order-item-out-of-stock``; OrderWise kept the unit."""
    sandbox, connector, sink = setup([40001])
    sandbox.scayle.remove_out_of_stock(40001, items(40001, 3))  # the SKU-B unit

    outcome = None
    for envelope in sandbox.scayle.webhooks:
        if envelope["type"] == "order-item-out-of-stock":
            outcome = connector.ingest_webhook(json.dumps(envelope), {})
    assert outcome is not None and (outcome.outcome, outcome.order_id) == ("recorded", 40001)

    result = connector.sync_cancellations()

    # OrderWise cancels whole orders only: a person removes the unit there.
    assert result["needs_person"] == 1
    record = shop_record(connector, 40001)
    assert record.state == State.QUARANTINED
    assert record.payload["removed_item_ids"] == items(40001, 3)
    assert "out of stock" in (record.reason or "")
    (alert,) = sink.of_kind(AlertKind.CANCELLATION_TOO_LATE)
    assert alert.subject == "40001" and "partial_cancellation" in alert.message
    assert cancel_calls(sandbox, committed_only=False) == []

    # The despatch of what is left ships the two remaining units only.
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-A": 2})
    assert connector.sync_fulfilments()["shipped"] == 1
    (shipment,) = sandbox.scayle.shipments
    assert [i["orderItemId"] for i in shipment["items"]] == items(40001, 1, 2)


def test_an_order_whose_every_unit_is_out_of_stock_is_cancelled_in_orderwise() -> None:
    sandbox, connector, _ = setup([40001, 40002])
    sandbox.scayle.remove_out_of_stock(40002, items(40002, 1, 2, 3))

    result = connector.sync_cancellations()  # found by the poll, without a webhook

    assert result["shop_cancellations_found"] == 1
    assert result["cancelled_in_orderwise"] == 1
    assert sandbox.orderwise.status("SCAYLE-40002") == "Cancelled"
    assert sandbox.orderwise.status("SCAYLE-40001") != "Cancelled"
    again = connector.sync_cancellations()
    assert again["shop_cancellations_found"] == 0


def test_a_released_manual_cancel_closes_its_alert_once_the_connector_cancels() -> None:
    """The docs: the connector closes ``cancellation_too_late`` when it cancels the order itself.
    0.1.0 (and the split) resolved it after the record was finished, which never ran."""
    sandbox, _, _ = setup([40001], cancel_enabled=False, push=False)
    store = MemoryStore()
    sink = MemoryAlertSink()
    without = Connector.for_sandbox(sandbox, store=store, alerts=[sink], flows=FLOWS)
    assert without.sync_orders()["pushed"] == 1
    sandbox.scayle.cancel_order(40001)
    assert without.sync_cancellations()["needs_person"] == 1
    assert [a[0] for a in without.health().open_alerts] == [AlertKind.CANCELLATION_TOO_LATE]

    sandbox.orderwise.cancel_enabled = True  # the endpoint is configured; a person releases
    release_quarantined(store, shop_cancellation_key(40001))
    with_endpoint = Connector.for_sandbox(sandbox, store=store, alerts=[sink], flows=FLOWS)
    assert with_endpoint.sync_cancellations()["cancelled_in_orderwise"] == 1
    assert sandbox.orderwise.status("SCAYLE-40001") == "Cancelled"
    assert with_endpoint.health().open_alerts == ()


def test_the_poll_reads_the_ledger_only_for_orders_scayle_changed_since_its_last_walk() -> None:
    class CountingGets(MemoryStore):
        def __init__(self) -> None:
            super().__init__()
            self.order_gets = 0

        def get(self, key: str) -> Any:
            self.order_gets += key.startswith("order:")
            return super().get(key)

    sandbox, _, _ = setup(range(40001, 40011), push=False)
    store = CountingGets()
    connector = Connector.for_sandbox(sandbox, store=store, flows=FLOWS)
    assert connector.sync_orders()["pushed"] == 10
    connector.sync_cancellations()  # the first walk looks at every order
    later = datetime.now(UTC) + timedelta(hours=1)
    connector.context.clock = lambda: later  # the walks from now on start an hour later
    sandbox.clock.advance(3600)  # and what SCAYLE changes next carries such an updatedAt
    connector.sync_cancellations()
    store.order_gets = 0

    assert connector.sync_cancellations()["shop_cancellations_found"] == 0
    assert store.order_gets == 0  # nothing changed in SCAYLE: no ledger reads for the walk

    sandbox.scayle.remove_out_of_stock(40007, items(40007, 1, 2, 3))
    result = connector.sync_cancellations()
    assert result["shop_cancellations_found"] == 1
    assert sandbox.orderwise.status("SCAYLE-40007") == "Cancelled"
