"""Despatches in OrderWise → SCAYLE shipments, through the sandbox with faults."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scayle_orderwise.alerts import AlertKind, MemoryAlertSink
from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.mapping import MappingConfig
from scayle_orderwise.sandbox import Faults, Sandbox, SimulatedCrash, make_order
from scayle_orderwise.store import MemoryStore, Record, State
from scayle_orderwise.sync.fulfilment import (
    CURSOR,
    DEFAULT_CARRIER_MAP,
    carrier_for,
    shipment_key,
)

LINES = (("SKU-A", 1000, 2, "0.20"), ("SKU-B", 500, 1, "0.20"))
"""Items ``id*1000+1`` and ``+2`` are SKU-A, ``+3`` is SKU-B."""

FLOWS = FlowSettings(backoff_base_seconds=0)


class Clock:
    """A settable clock (starts at the real time, so the sandbox's timestamps stay comparable)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def items(order_id: int, *n: int) -> list[int]:
    return [order_id * 1000 + k for k in n]


def setup(
    order_ids: Iterable[int],
    *,
    seed: int = 3,
    mapping: MappingConfig | None = None,
    codes: Iterable[str] = ("SKU-A", "SKU-B"),
    **kwargs: Any,
) -> tuple[Sandbox, Connector, MemoryAlertSink]:
    sandbox = Sandbox(seed=seed)
    for code in codes:
        sandbox.orderwise.add_variant(code)
    for order_id in order_ids:
        sandbox.scayle.add_order(make_order(order_id, LINES))
    sink = MemoryAlertSink()
    kwargs.setdefault("flows", FLOWS)
    connector = Connector.for_sandbox(sandbox, mapping=mapping, alerts=[sink], **kwargs)
    ids = list(order_ids)
    assert connector.sync_orders()["pushed"] == len(ids)
    return sandbox, connector, sink


def shipments_by_key(sandbox: Sandbox) -> Counter[tuple[int, str]]:
    return Counter((s["orderId"], s["shipmentKey"]) for s in sandbox.scayle.shipments)


def shipped_ids(sandbox: Sandbox, order_id: int, key: str) -> list[int]:
    return [
        i["orderItemId"]
        for s in sandbox.scayle.shipments
        if s["orderId"] == order_id and s["shipmentKey"] == key
        for i in s["items"]
    ]


def scayle_posts(sandbox: Sandbox) -> int:
    return sum(1 for method, _path, _code in sandbox.scayle.requests if method == "POST")


# ----------------------------------------------------------------------------------- happy paths


def test_full_despatch_becomes_one_shipment_with_a_return_key_per_unit() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN100", courier="DPD")

    result = connector.sync_fulfilments()

    assert result["shipped"] == 1
    assert len(sandbox.scayle.shipments) == 1
    body = sandbox.scayle.shipments[0]
    assert body["shipmentKey"] == "CN100"
    assert body["carrier"] == "DPD"
    assert body["orderId"] == 40001
    assert body["items"] == [{"orderItemId": i, "returnKey": str(i)} for i in items(40001, 1, 2, 3)]
    assert "deliveryDate" in body
    record = connector.store.get(shipment_key(40001, "CN100"))
    assert record is not None and record.state == State.ACKNOWLEDGED
    assert record.external_id == "CN100"
    assert sorted(record.payload["item_ids"]) == items(40001, 1, 2, 3)
    package = sandbox.scayle.orders[40001]["packages"][0]
    assert package["shipmentKey"] == "CN100"


def test_units_in_status_deliverable_still_ship() -> None:
    """Issue 15 A.1: 0.1.0 took ``deliverable`` for shipped and sent nothing ("nothing to ship")."""
    sandbox, connector, _ = setup([40001])
    for item in sandbox.scayle.orders[40001]["items"]:
        item["status"] = "deliverable"
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN100", courier="DPD")

    result = connector.sync_fulfilments()

    assert (result["shipped"], result["nothing_to_ship"]) == (1, 0)
    assert shipped_ids(sandbox, 40001, "CN100") == items(40001, 1, 2, 3)


def test_units_in_a_package_scayle_only_planned_still_ship() -> None:
    """Checkout plans packages (``deliveryStatus`` open, no ``shipmentKey``): not shipped yet."""
    sandbox, connector, _ = setup([40001])
    order = sandbox.scayle.orders[40001]
    order["packages"] = [{"id": 901, "carrierKey": "DPD", "deliveryStatus": "open"}]
    for item in order["items"]:
        item["packageId"] = 901
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN100", courier="DPD")

    assert connector.sync_fulfilments()["shipped"] == 1
    assert shipped_ids(sandbox, 40001, "CN100") == items(40001, 1, 2, 3)


def test_idle_pass_sends_nothing() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", courier="DPD")
    connector.sync_fulfilments()
    posts = scayle_posts(sandbox)

    for _ in range(3):
        result = connector.sync_fulfilments()
        assert result["shipped"] == 0
        assert result["packages_recorded"] == 0

    assert scayle_posts(sandbox) == posts
    assert len(sandbox.scayle.shipments) == 1
    cursor = json.loads(connector.store.get_cursor(CURSOR) or "{}")
    assert "watermark" in cursor and "polled_at" in cursor


def test_nothing_despatched_sends_nothing() -> None:
    sandbox, connector, _ = setup([40001, 40002])
    result = connector.sync_fulfilments()
    assert result["rows_read"] > 0
    assert sandbox.scayle.shipments == []
    assert list(connector.store.records(kind="shipment")) == []


def test_partial_despatches_send_only_the_units_despatched_and_never_the_same_item_twice() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", courier="DPD", lines={"SKU-A": 1})
    connector.sync_fulfilments()
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN2", courier="Evri")
    connector.sync_fulfilments()

    assert shipments_by_key(sandbox) == {(40001, "CN1"): 1, (40001, "CN2"): 1}
    first = shipped_ids(sandbox, 40001, "CN1")
    second = shipped_ids(sandbox, 40001, "CN2")
    assert len(first) == 1 and first[0] in items(40001, 1, 2)
    assert len(second) == 2
    assert not set(first) & set(second)
    assert sorted(first + second) == items(40001, 1, 2, 3)
    assert sandbox.scayle.shipments[1]["carrier"] == DEFAULT_CARRIER_MAP["Evri"]


def test_two_packages_seen_in_one_pass_get_disjoint_items() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-A": 1, "SKU-B": 1})
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN2", lines={"SKU-A": 1})

    result = connector.sync_fulfilments()

    assert result["shipped"] == 2
    one, two = shipped_ids(sandbox, 40001, "CN1"), shipped_ids(sandbox, 40001, "CN2")
    assert len(one) == 2 and len(two) == 1
    assert items(40001, 3)[0] in one
    assert sorted(one + two) == items(40001, 1, 2, 3)


def test_variant_codes_are_mapped_back_to_scayle_items_through_the_sku_map() -> None:
    mapping = MappingConfig(sku_map={"SKU-A": "OW-A", "SKU-B": "OW-B"})
    sandbox, connector, _ = setup([40001], mapping=mapping, codes=("OW-A", "OW-B"))
    assert connector.store.get("order:40001").state == State.ACKNOWLEDGED  # type: ignore[union-attr]
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN9", lines={"OW-B": 1})

    connector.sync_fulfilments()

    assert shipped_ids(sandbox, 40001, "CN9") == items(40001, 3)


# --------------------------------------------------------------------------- faults: exactly once


def despatch_all(sandbox: Sandbox, order_ids: Iterable[int]) -> set[tuple[int, str]]:
    """Each order in two packages (one SKU-A unit, then the rest); returns the package keys."""
    packages: set[tuple[int, str]] = set()
    for order_id in order_ids:
        ref = f"SCAYLE-{order_id}"
        sandbox.orderwise.despatch(ref, consignment=f"A{order_id}", lines={"SKU-A": 1})
        sandbox.orderwise.despatch(ref, consignment=f"B{order_id}", courier="DPD")
        packages |= {(order_id, f"A{order_id}"), (order_id, f"B{order_id}")}
    return packages


def assert_exactly_once(sandbox: Sandbox, packages: set[tuple[int, str]]) -> None:
    counts = shipments_by_key(sandbox)
    assert set(counts) == packages
    assert all(n == 1 for n in counts.values()), counts
    for order_id in {o for o, _ in packages}:
        ids = [
            i["orderItemId"]
            for s in sandbox.scayle.shipments
            if s["orderId"] == order_id
            for i in s["items"]
        ]
        assert sorted(ids) == items(order_id, 1, 2, 3)  # every unit once, none twice


def open_shipments(connector: Connector) -> list[Any]:
    return [r for r in connector.store.records(kind="shipment") if r.state != State.ACKNOWLEDGED]


def test_lost_responses_never_send_a_package_twice() -> None:
    order_ids = range(41001, 41007)
    sandbox, connector, _ = setup(order_ids, seed=11)
    packages = despatch_all(sandbox, order_ids)
    sandbox.faults = Faults(timeout_after_commit_rate=0.5, error_rate=0.1, seed=5)

    for _ in range(30):
        connector.sync_fulfilments()
        recorded = len(list(connector.store.records(kind="shipment")))
        if recorded == len(packages) and not open_shipments(connector):
            break
    sandbox.faults = Faults()
    connector.sync_fulfilments()

    assert sandbox.injected.get("timeout_after_commit", 0) > 0
    assert not open_shipments(connector)
    assert_exactly_once(sandbox, packages)
    adopted = [
        r for r in connector.store.records(kind="shipment") if r.reason and "adopted" in r.reason
    ]
    assert adopted, "some lost answers must have been resolved by looking at the packages"


def test_crashes_after_commit_never_send_a_package_twice() -> None:
    order_ids = range(42001, 42006)
    store = MemoryStore()
    sandbox, connector, _ = setup(order_ids, seed=12, store=store, worker_id="w1")
    packages = despatch_all(sandbox, order_ids)
    sandbox.faults = Faults(crash_after_commit_rate=0.4, seed=9)

    crashes = 0
    for _ in range(40):
        try:
            connector.sync_fulfilments()
        except SimulatedCrash:
            crashes += 1
            # The process died: a new one starts with the same worker id and ledger.
            connector = Connector.for_sandbox(sandbox, store=store, worker_id="w1", flows=FLOWS)
            continue
        if len(list(store.records(kind="shipment"))) == len(packages) and not open_shipments(
            connector
        ):
            break
    sandbox.faults = Faults()
    connector.sync_fulfilments()

    assert crashes > 0
    assert not open_shipments(connector)
    assert_exactly_once(sandbox, packages)


def test_despatch_before_the_order_is_acknowledged_is_deferred_not_lost() -> None:
    store = MemoryStore()
    sandbox = Sandbox(seed=4)
    for code in ("SKU-A", "SKU-B"):
        sandbox.orderwise.add_variant(code)
    sandbox.scayle.add_order(make_order(40001, LINES))
    connector = Connector.for_sandbox(sandbox, store=store, worker_id="w1", flows=FLOWS)
    sandbox.faults = Faults(crash_after_commit_rate=1.0)
    with pytest.raises(SimulatedCrash):
        connector.sync_orders()  # the sales order exists in OrderWise; the ledger never heard back
    sandbox.faults = Faults()
    assert len(sandbox.orderwise.sales_orders) == 1
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN7", lines={"SKU-B": 1})

    connector = Connector.for_sandbox(sandbox, store=store, worker_id="w2", flows=FLOWS)
    early = connector.sync_fulfilments()
    assert early["deferred"] == 1
    assert sandbox.scayle.shipments == []
    assert store.get(shipment_key(40001, "CN7")) is not None

    connector = Connector.for_sandbox(sandbox, store=store, worker_id="w1", flows=FLOWS)
    assert connector.sync_orders()["adopted"] == 1  # the ledger kept no lines: they are re-derived
    later = connector.sync_fulfilments()

    assert later["shipped"] == 1
    assert len(sandbox.orderwise.sales_orders) == 1
    assert shipped_ids(sandbox, 40001, "CN7") == items(40001, 3)


# ------------------------------------------------------------------------------------- alerts


def test_unacknowledged_package_raises_one_alert_after_the_timeout_and_resolves() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    sandbox = Sandbox(seed=5)
    for code in ("SKU-A", "SKU-B"):
        sandbox.orderwise.add_variant(code)
    sandbox.scayle.add_order(make_order(40001, LINES))
    sink = MemoryAlertSink()
    flows = FlowSettings(backoff_base_seconds=0, fulfilment_ack_timeout_seconds=600)

    def connect() -> Connector:
        return Connector.for_sandbox(
            sandbox, store=store, alerts=[sink], flows=flows, clock=clock, worker_id="w1"
        )

    connector = connect()
    sandbox.faults = Faults(timeout_after_commit_rate=1.0)
    connector.sync_orders()  # outcome unclear: the order record stays "sent"
    sandbox.faults = Faults()
    assert store.get("order:40001").state != State.ACKNOWLEDGED  # type: ignore[union-attr]
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN5", courier="DPD")

    connector.sync_fulfilments()
    assert sink.of_kind(AlertKind.FULFILMENT_UNACKNOWLEDGED) == []
    clock.advance(601)
    connector.sync_fulfilments()
    connector.sync_fulfilments()

    alerts = sink.of_kind(AlertKind.FULFILMENT_UNACKNOWLEDGED)
    assert len(alerts) == 1
    assert "40001" in alerts[0].subject and "CN5" in alerts[0].message

    connector.sync_orders()
    connector.sync_fulfilments()
    assert len(sandbox.scayle.shipments) == 1
    assert all(
        kind != AlertKind.FULFILMENT_UNACKNOWLEDGED
        for kind, _s, _c in connector.health().open_alerts
    )


def test_unknown_status_text_raises_one_alert_and_still_ships() -> None:
    sandbox, connector, sink = setup([40001])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1")
    sandbox.orderwise.set_status("SCAYLE-40001", "Handed to robot")

    connector.sync_fulfilments()
    connector.sync_fulfilments()

    alerts = sink.of_kind(AlertKind.STATUS_UNKNOWN)
    assert len(alerts) == 1
    assert "Handed to robot" in alerts[0].message
    assert len(sandbox.scayle.shipments) == 1


def test_a_feed_that_cannot_be_read_raises_sync_stalled_once() -> None:
    clock = Clock()
    sandbox, connector, sink = setup([40001], clock=clock, store=MemoryStore(clock=clock))
    connector.sync_fulfilments()
    sandbox.orderwise.exports_permitted = False

    failed = connector.sync_fulfilments()
    assert failed["poll_failed"] == 1 and failed.errors
    assert sink.of_kind(AlertKind.SYNC_STALLED) == []
    clock.advance(FlowSettings().sync_stalled_after_seconds + 1)
    connector.sync_fulfilments()
    connector.sync_fulfilments()
    assert len(sink.of_kind(AlertKind.SYNC_STALLED)) == 1

    sandbox.orderwise.exports_permitted = True
    assert connector.sync_fulfilments()["poll_failed"] == 0
    assert all(kind != AlertKind.SYNC_STALLED for kind, _s, _c in connector.health().open_alerts)


# ------------------------------------------------------------------------------------ carriers


def test_carrier_mapping_defaults_overrides_and_fallbacks() -> None:
    plain = FlowSettings()
    assert carrier_for("Royal Mail", plain) == "ROYAL_MAIL"
    assert carrier_for("  royal   MAIL ", plain) == "ROYAL_MAIL"
    assert carrier_for("Acme Freight", plain) == "ACME_FREIGHT"
    assert carrier_for(None, plain) is None
    custom = FlowSettings(carrier_map={"DPD": "DPD_UK"}, default_carrier="OTHER")
    assert carrier_for("dpd", custom) == "DPD_UK"
    assert carrier_for("Acme Freight", custom) == "OTHER"
    assert carrier_for("", custom) == "OTHER"


def test_configured_carrier_map_is_used_for_the_shipment() -> None:
    flows = FlowSettings(backoff_base_seconds=0, carrier_map={"Royal Mail": "RM_TRACKED_48"})
    sandbox, connector, _ = setup([40001], flows=flows)
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="RM1", courier="Royal Mail")
    connector.sync_fulfilments()
    assert sandbox.scayle.shipments[0]["carrier"] == "RM_TRACKED_48"


# --------------------------------------------------------------- odd despatches (review fixes)


def strip_columns(sandbox: Sandbox, *columns: str) -> dict[str, bool]:
    """Make the order_changes export leave ``columns`` empty on delivery rows while the returned
    switch's ``"on"`` is true."""
    ow = sandbox.orderwise
    original = ow._export_order_changes
    switch = {"on": True}

    def export(params: Any) -> list[dict[str, Any]]:
        rows = original(params)
        if not switch["on"]:
            return rows
        return [{**r, **dict.fromkeys(columns)} if r.get("deliveryNumber") else r for r in rows]

    ow.register_export(ow.export_definitions.order_changes, export, ["since"])
    return switch


def test_a_second_delivery_under_the_same_consignment_is_shipped_as_its_own_package() -> None:
    sandbox, connector, _ = setup([40001])
    first = sandbox.orderwise.despatch("SCAYLE-40001", consignment="COLLECT", lines={"SKU-A": 1})
    assert connector.sync_fulfilments()["shipped"] == 1
    second = sandbox.orderwise.despatch("SCAYLE-40001", consignment="COLLECT")

    result = connector.sync_fulfilments()

    assert (result["shipped"], result["consignment_reused"]) == (1, 1)
    number = str(second["deliveryNumber"])
    assert number != str(first["deliveryNumber"])
    again = f"COLLECT-{number}"
    assert shipments_by_key(sandbox) == {(40001, "COLLECT"): 1, (40001, again): 1}
    one, two = shipped_ids(sandbox, 40001, "COLLECT"), shipped_ids(sandbox, 40001, again)
    assert len(one) == 1 and len(two) == 2
    assert sorted(one + two) == items(40001, 1, 2, 3)
    record = connector.store.get(shipment_key(40001, "COLLECT", number))
    assert record is not None and record.state == State.ACKNOWLEDGED
    assert record.external_id == again

    idle = connector.sync_fulfilments()  # both deliveries re-read in the overlap: nothing new
    assert (idle["packages_recorded"], idle["shipped"]) == (0, 0)
    assert len(sandbox.scayle.shipments) == 2


def test_two_deliveries_with_one_consignment_seen_in_one_pass_get_disjoint_items() -> None:
    sandbox, connector, _ = setup([40001])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-B": 1})
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-A": 2})

    result = connector.sync_fulfilments()

    assert (result["packages_recorded"], result["shipped"]) == (2, 2)
    keys = sorted(k for _o, k in shipments_by_key(sandbox))
    assert keys[0] == "CN1" and keys[1].startswith("CN1-")
    assert shipped_ids(sandbox, 40001, "CN1") == items(40001, 3)  # the first delivery keeps it
    assert sorted(shipped_ids(sandbox, 40001, keys[1])) == items(40001, 1, 2)


def test_more_units_under_a_known_consignment_without_delivery_numbers_raise_an_alert() -> None:
    sandbox, connector, sink = setup([40001])
    strip_columns(sandbox, "deliveryNumber")
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-A": 1})
    assert connector.sync_fulfilments()["shipped"] == 1
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1", lines={"SKU-B": 1})

    results = [connector.sync_fulfilments() for _ in range(2)]

    assert results[0]["units_beyond_package"] == 1
    alerts = sink.of_kind(AlertKind.FULFILMENT_UNACKNOWLEDGED)
    assert [a.subject for a in alerts] == ["40001:CN1:more_units"]  # once, not every pass
    assert "SKU-B" in alerts[0].message
    assert len(sandbox.scayle.shipments) == 1


def test_a_despatch_without_a_consignment_is_counted_and_alerted_after_the_timeout() -> None:
    sandbox = Sandbox(seed=3)
    for code in ("SKU-A", "SKU-B"):
        sandbox.orderwise.add_variant(code)
    sandbox.scayle.add_order(make_order(40001, LINES))
    sink = MemoryAlertSink()
    flows = FlowSettings(backoff_base_seconds=0, fulfilment_ack_timeout_seconds=600)
    connector = Connector.for_sandbox(
        sandbox, alerts=[sink], flows=flows, clock=sandbox.clock.utcnow
    )
    connector.sync_orders()
    switch = strip_columns(sandbox, "consignment")
    delivery = sandbox.orderwise.despatch("SCAYLE-40001", courier="Own van")
    number = str(delivery["deliveryNumber"])

    for _ in range(2):
        result = connector.sync_fulfilments()
        assert (result["no_consignment"], result["shipped"]) == (1, 0)
    assert sink.of_kind(AlertKind.FULFILMENT_UNACKNOWLEDGED) == []  # time to enter the number
    parked = connector.store.get(shipment_key(40001, "", number))
    assert parked is not None and parked.state == State.QUARANTINED
    assert parked.reason is not None and parked.reason.startswith("no_consignment")

    sandbox.clock.advance(601)
    for _ in range(2):
        connector.sync_fulfilments()
    alerts = sink.of_kind(AlertKind.FULFILMENT_UNACKNOWLEDGED)
    assert len(alerts) == 1
    assert alerts[0].subject == f"40001:no-consignment:{number}"
    assert "without a consignment number" in alerts[0].message
    assert sandbox.scayle.shipments == []

    # The warehouse enters the consignment: the delivery ships, the parked record closes.
    switch["on"] = False
    result = connector.sync_fulfilments()
    assert (result["shipped"], result["no_consignment"]) == (1, 0)
    assert len(sandbox.scayle.shipments) == 1
    closed = connector.store.get(shipment_key(40001, "", number))
    assert closed is not None and closed.state == State.CANCELLED
    assert all(
        kind != AlertKind.FULFILMENT_UNACKNOWLEDGED
        for kind, _s, _c in connector.health().open_alerts
    )


def test_a_malformed_change_row_is_skipped_and_the_rest_still_ships() -> None:
    sandbox, connector, sink = setup([40001, 40002])
    ow = sandbox.orderwise
    original = ow._export_order_changes

    def with_bad_row(params: Any) -> list[dict[str, Any]]:
        rows = original(params)
        return [{**rows[0], "owOrderId": 999, "despatchedAt": "31/12/2026 25:99"}, *rows]

    ow.register_export(ow.export_definitions.order_changes, with_bad_row, ["since"])
    sandbox.orderwise.despatch("SCAYLE-40001", consignment="CN1")

    first = connector.sync_fulfilments()
    assert (first["bad_rows"], first["shipped"], first["poll_failed"]) == (1, 1, 0)
    cursor = json.loads(connector.store.get_cursor(CURSOR) or "{}")
    assert "watermark" in cursor  # the watermark moves on

    sandbox.orderwise.despatch("SCAYLE-40002", consignment="CN2")
    second = connector.sync_fulfilments()
    assert (second["bad_rows"], second["shipped"]) == (1, 1)
    assert shipments_by_key(sandbox) == {(40001, "CN1"): 1, (40002, "CN2"): 1}
    alerts = sink.of_kind(AlertKind.SYNC_STALLED)
    assert [a.subject for a in alerts] == ["fulfilment:bad_rows"]  # once for the same row
    assert "despatchedAt" in alerts[0].message


# ------------------------------------------------------------------------------ cost of a pass


class CountingStore(MemoryStore):
    """A MemoryStore that counts the records its ``records()`` walks hand out."""

    def __init__(self) -> None:
        super().__init__()
        self.walked = 0

    def records(self, states: Any = None, kind: str | None = None) -> Iterator[Record]:
        for record in super().records(states, kind):
            self.walked += 1
            yield record


@pytest.mark.parametrize("orders", [10, 40])
def test_a_pass_walks_the_ledger_a_fixed_number_of_times_not_once_per_order(orders: int) -> None:
    """Issue 13: 0.1.0 walked every open package once per order (quadratic in the orders)."""
    ids = list(range(41001, 41001 + orders))
    store = CountingStore()
    sandbox, connector, _ = setup(ids, store=store)
    for order_id in ids:
        sandbox.orderwise.despatch(f"SCAYLE-{order_id}", consignment=f"CN{order_id}")
    store.walked = 0

    result = connector.sync_fulfilments()

    assert result["shipped"] == orders
    # One walk for the change feed's start, one for the acknowledgement watch: a few records per
    # order at most, however many orders the pass ships (0.1.0: about orders² / 2 more).
    assert store.walked <= 3 * orders + 5, store.walked
