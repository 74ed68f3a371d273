"""The per-order hold: the packages it lists, and when it walks the ledger instead."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import AmbiguousOutcomeError
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.store import MemoryStore, Record, State
from scayle_orderwise.sync.fulfilment import shipment_key
from scayle_orderwise.sync.order_hold import LOCK_KIND, hold_key, hold_order

LINES = (("SKU-A", 1000, 2, "0.20"), ("SKU-B", 500, 1, "0.20"))
FLOWS = FlowSettings(backoff_base_seconds=0, lease_seconds=60)
ORDER = 43001


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


class CountingStore(MemoryStore):
    """Counts the records ``records()`` walks hand out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.walked = 0

    def records(self, states: Any = None, kind: str | None = None) -> Iterator[Record]:
        for record in super().records(states, kind):
            self.walked += 1
            yield record


def pushed(store: MemoryStore, clock: Clock | None = None) -> tuple[Sandbox, Connector]:
    sandbox = Sandbox(seed=4)
    for code in ("SKU-A", "SKU-B"):
        sandbox.orderwise.add_variant(code)
    sandbox.scayle.add_order(make_order(ORDER, LINES))
    connector = Connector.for_sandbox(sandbox, store=store, flows=FLOWS, clock=clock)
    assert connector.sync_orders()["pushed"] == 1
    return sandbox, connector


def sent_package(store: MemoryStore, consignment: str, item_ids: list[int]) -> str:
    """A package whose shipment ended unclear: ``sent``, holding ``item_ids``."""
    key = shipment_key(ORDER, consignment)
    store.ensure(key, kind="shipment", subject=str(ORDER), payload={"consignment": consignment})
    store.claim(key, owner="w0", lease=timedelta(seconds=60))
    store.transition(
        key, State.SENT, owner="w0", reason="outcome unclear", payload={"item_ids": item_ids}
    )
    return key


def test_an_unclear_package_reserves_its_units_and_a_later_hold_reads_only_its_packages(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    store = CountingStore()
    sandbox, connector = pushed(store)
    sandbox.orderwise.despatch(f"SCAYLE-{ORDER}", consignment="CN1", lines={"SKU-A": 1})
    send = connector.scayle.create_shipment

    def answer_lost(*args: Any, **kwargs: Any) -> None:
        send(*args, **kwargs)
        raise AmbiguousOutcomeError("read timeout after the request was sent")

    monkeypatch.setattr(connector.scayle, "create_shipment", answer_lost)
    assert connector.sync_fulfilments()["ambiguous"] == 1
    first = store.get(shipment_key(ORDER, "CN1"))
    assert first is not None and first.state == State.SENT
    reserved = first.payload["item_ids"]

    lock = store.get(hold_key(ORDER))
    assert lock is not None and lock.kind == LOCK_KIND
    assert lock.payload == {"packages": [shipment_key(ORDER, "CN1")]}
    store.walked = 0
    with hold_order(connector.context, ORDER) as hold:
        assert hold is not None and not hold.rebuilt
        assert hold.reservations() == set(reserved)
    assert store.walked == 0  # no walk over the ledger


def test_a_hold_from_before_the_package_list_walks_the_ledger_once() -> None:
    store = CountingStore()
    _sandbox, connector = pushed(store)
    key = sent_package(store, "CN9", [ORDER * 1000 + 1])
    store.ensure(hold_key(ORDER), kind=LOCK_KIND, subject=str(ORDER))  # as 0.1.0 wrote it

    with hold_order(connector.context, ORDER) as hold:
        assert hold is not None and hold.rebuilt
        assert hold.packages == {key}
        assert hold.reservations() == {ORDER * 1000 + 1}
    store.walked = 0
    with hold_order(connector.context, ORDER) as hold:
        assert hold is not None and not hold.rebuilt
        assert hold.reservations() == {ORDER * 1000 + 1}
    assert store.walked == 0


def test_a_hold_taken_over_from_a_worker_that_died_holding_it_walks_the_ledger() -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    _sandbox, connector = pushed(store, clock)
    context = connector.context
    # Worker w0 takes the hold, sends a package whose outcome is unclear, and dies before
    # releasing the hold (so the package never made it into the hold's list).
    store.ensure(hold_key(ORDER), kind=LOCK_KIND, subject=str(ORDER), payload={"packages": []})
    assert store.claim(hold_key(ORDER), owner="w0", lease=timedelta(seconds=60)) is not None
    key = sent_package(store, "CN7", [ORDER * 1000 + 2, ORDER * 1000 + 3])

    with hold_order(context, ORDER) as hold:
        assert hold is None  # still held: the lease has not run out
    clock.now += timedelta(seconds=61)
    with hold_order(context, ORDER) as hold:
        assert hold is not None and hold.rebuilt
        assert key in hold.packages
        assert hold.reservations() == {ORDER * 1000 + 2, ORDER * 1000 + 3}
    lock = store.get(hold_key(ORDER))
    assert lock is not None and lock.state == State.PENDING
    assert lock.payload == {"packages": [key]}


def test_cancelled_packages_drop_off_the_list_and_reserve_nothing() -> None:
    store = MemoryStore()
    _sandbox, connector = pushed(store)
    key = sent_package(store, "CN5", [ORDER * 1000 + 1])
    store.ensure(hold_key(ORDER), kind=LOCK_KIND, subject=str(ORDER))  # as 0.1.0 wrote it
    with hold_order(connector.context, ORDER) as hold:
        assert hold is not None and hold.reservations() == {ORDER * 1000 + 1}
    store.mark(key, State.CANCELLED, reason="shipped by hand")
    with hold_order(connector.context, ORDER) as hold:
        assert hold is not None
        assert hold.reservations() == set()
        assert hold.packages == frozenset()
