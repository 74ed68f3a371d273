"""Stock OrderWise → SCAYLE (``Connector.sync_inventory`` / ``reconcile_stock``), through the sandbox."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scayle_orderwise.alerts import AlertKind, MemoryAlertSink
from scayle_orderwise.config import (
    ConnectorSettings,
    FlowSettings,
    InventorySettings,
    StockShaping,
)
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import TransientError
from scayle_orderwise.mapping import MappingConfig
from scayle_orderwise.orderwise.models import StockRow
from scayle_orderwise.sandbox import Faults, Sandbox, SimulatedCrash
from scayle_orderwise.store import MemoryStore, SqliteStore
from scayle_orderwise.sync.context import SyncResult
from scayle_orderwise.sync.inventory import (
    WATERMARK_CURSOR,
    InventorySync,
    PairState,
    stock_cursor,
)
from scayle_orderwise.sync.stock_shaping import effective_shaping, sellable_quantity

T0 = datetime(2026, 5, 4, 9, 15, tzinfo=UTC)  # BST: OrderWise shows 10:15 wall-clock time


# ------------------------------------------------------------------------------------- helpers


def make_sandbox(skus: Iterable[str] = (), **scayle_options: Any) -> Sandbox:
    sandbox = Sandbox(seed=7, scayle_options=scayle_options or None)
    for sku in skus:
        sandbox.scayle.add_variant(sku)
    return sandbox


def connector(
    sandbox: Sandbox,
    *,
    store: Any = None,
    sink: MemoryAlertSink | None = None,
    clock: Any = None,
    flows: FlowSettings | None = None,
    mapping: MappingConfig | None = None,
    **inventory: Any,
) -> Connector:
    inventory.setdefault("default_warehouse", "WH1")
    inventory.setdefault("max_workers", 1)
    return Connector.for_sandbox(
        sandbox,
        store=store if store is not None else MemoryStore(),
        mapping=mapping,
        alerts=[sink] if sink is not None else [],
        inventory=InventorySettings(**inventory),
        flows=flows,
        clock=clock,
    )


def stock_posts(sandbox: Sandbox) -> list[tuple[str, str, int]]:
    return [r for r in sandbox.scayle.requests if r[0] == "POST" and r[1].endswith("/stocks")]


def posted_skus(sandbox: Sandbox, since: int = 0) -> list[str]:
    return [u["sku"] for u in sandbox.scayle.stock_updates[since:]]


def changed_at(update: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(update["body"]["changedAt"])


class Clock:
    """A settable connector clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


# ------------------------------------------------------------------------- pushes and idle passes


def test_pushes_equal_the_skus_that_changed_and_an_idle_pass_writes_nothing() -> None:
    sandbox = make_sandbox(["A", "B", "C", "D"])
    for i, sku in enumerate("ABCD"):
        sandbox.orderwise.set_free_stock(sku, 10 + i, at=T0)
    conn = connector(sandbox)

    first = conn.sync_inventory()
    assert sorted(posted_skus(sandbox)) == ["A", "B", "C", "D"]
    assert len(stock_posts(sandbox)) == 4
    assert (first.pushed, first.rows_read) == (4, 4)
    assert [sandbox.scayle.stock(s) for s in "ABCD"] == [10, 11, 12, 13]

    requests_before = len(sandbox.scayle.requests)
    idle = conn.sync_inventory()
    assert len(sandbox.scayle.requests) == requests_before  # not a single SCAYLE call
    assert idle.pushed == 0 and idle.unchanged == 4  # the overlap re-read them: all unchanged

    sandbox.orderwise.set_free_stock("B", 3, at=T0 + timedelta(minutes=5))
    sandbox.orderwise.set_free_stock("C", Decimal("12.4"), at=T0 + timedelta(minutes=5))  # still 12
    third = conn.sync_inventory()
    assert posted_skus(sandbox, 4) == ["B"]
    assert len(stock_posts(sandbox)) == 5
    assert third.pushed == 1 and third.unchanged >= 1
    assert sandbox.scayle.stock("B") == 3


def test_changed_at_is_the_time_orderwise_figure_was_true_not_now() -> None:
    sandbox = make_sandbox(["A"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    connector(sandbox, clock=Clock(T0 + timedelta(days=3))).sync_inventory()
    (update,) = sandbox.scayle.stock_updates
    assert changed_at(update) == T0
    assert changed_at(update).utcoffset() == timedelta(0)  # sent in UTC
    stored = sandbox.scayle.stock_record("A")
    assert stored is not None and datetime.fromisoformat(stored["changedAt"]) == T0


def test_negative_and_fractional_free_stock() -> None:
    figures = {
        "NEG": Decimal("-3"),
        "NEGFRAC": Decimal("-0.25"),
        "HALF": Decimal("0.5"),
        "ALMOST": Decimal("2.999"),
        "FRAC": Decimal("7.5"),
    }
    sandbox = make_sandbox(figures)
    for sku, free in figures.items():
        sandbox.orderwise.set_free_stock(sku, free, at=T0)
    result = connector(sandbox).sync_inventory()
    assert result.pushed == 5
    assert {s: sandbox.scayle.stock(s) for s in figures} == {
        "NEG": 0,
        "NEGFRAC": 0,
        "HALF": 0,
        "ALMOST": 2,
        "FRAC": 7,
    }
    assert all(isinstance(u["body"]["quantity"], int) for u in sandbox.scayle.stock_updates)


def test_buffers_and_shaping_per_sku() -> None:
    free = {"PLAIN": "20", "CAPPED": "20", "HALF": "21", "LOW": "3", "NOBUF": "20", "BUF": "4.5"}
    sandbox = make_sandbox(free)
    for sku, qty in free.items():
        sandbox.orderwise.set_free_stock(sku, Decimal(qty), at=T0)
    conn = connector(
        sandbox,
        default=StockShaping(buffer=Decimal(2)),
        per_sku={
            "CAPPED": StockShaping(cap=5),  # keeps the default buffer
            "HALF": StockShaping(percentage=Decimal(50)),  # floor((21 - 2) * 50 %) = 9
            "LOW": StockShaping(zero_at_or_below=Decimal(3)),
            "NOBUF": StockShaping(buffer=Decimal(0)),
            "BUF": StockShaping(buffer=Decimal("1.5")),
        },
    )
    conn.sync_inventory()
    assert {s: sandbox.scayle.stock(s) for s in free} == {
        "PLAIN": 18,
        "CAPPED": 5,
        "HALF": 9,
        "LOW": 0,
        "NOBUF": 20,
        "BUF": 3,
    }


def test_sku_map_is_applied_in_reverse_and_unmapped_codes_are_counted() -> None:
    sandbox = make_sandbox(["SHOP-A"])
    sandbox.orderwise.set_free_stock("OW-A", 4, at=T0)
    sandbox.orderwise.set_free_stock("OW-STRAY", 9, at=T0)
    conn = connector(sandbox, mapping=MappingConfig(sku_map={"SHOP-A": "OW-A"}))
    result = conn.sync_inventory()
    assert posted_skus(sandbox) == ["SHOP-A"]
    assert sandbox.scayle.stock("SHOP-A") == 4
    assert (result.pushed, result.unmapped_sku) == (1, 1)


# ------------------------------------------------------------------------------- warehouses


def test_locations_map_to_warehouses_and_locations_of_one_warehouse_are_summed() -> None:
    sandbox = make_sandbox(["A", "B"])
    sandbox.scayle.add_warehouse("WH2")
    sandbox.orderwise.set_free_stock("A", 4, stock_location_id=1, at=T0)
    sandbox.orderwise.set_free_stock("A", 6, stock_location_id=2, at=T0)
    sandbox.orderwise.set_free_stock("A", Decimal("2.5"), stock_location_id=3, at=T0)  # unmapped
    sandbox.orderwise.set_free_stock("B", 7, stock_location_id=2, at=T0)
    conn = connector(sandbox, location_warehouses={"1": "WH1", "2": "WH2"})
    result = conn.sync_inventory()
    assert result.pushed == 3
    assert sandbox.scayle.stock("A", "WH1") == 6  # floor(4 + 2.5): location 3 → default WH1
    assert sandbox.scayle.stock("A", "WH2") == 6
    assert sandbox.scayle.stock("B", "WH2") == 7
    assert sandbox.scayle.stock("B", "WH1") is None
    assert sorted(
        (u["sku"], u["body"]["warehouseReferenceKey"]) for u in sandbox.scayle.stock_updates
    ) == [
        ("A", "WH1"),
        ("A", "WH2"),
        ("B", "WH2"),
    ]


def test_unmapped_location_without_default_warehouse_is_counted_and_skipped() -> None:
    sandbox = make_sandbox(["A"])
    sandbox.scayle.add_warehouse("WH2")
    sandbox.orderwise.set_free_stock("A", 5, stock_location_id=2, at=T0)
    sandbox.orderwise.set_free_stock("A", 8, stock_location_id=9, at=T0)
    conn = connector(sandbox, default_warehouse=None, location_warehouses={"2": "WH2"})
    result = conn.sync_inventory()
    assert (result.pushed, result.no_warehouse) == (1, 1)
    assert sandbox.scayle.stock("A", "WH2") == 5
    assert any("location 9" in e for e in result.errors)


def test_only_the_latest_row_of_a_pair_counts() -> None:
    sandbox = make_sandbox()
    conn = connector(sandbox)
    rows = [
        StockRow.model_validate(
            {
                "sku": "A",
                "freeStock": 9,
                "stockLocationId": 1,
                "lastCalculated": "2026-05-04T10:20:00",
            }
        ),
        StockRow.model_validate(
            {
                "sku": "A",
                "freeStock": 4,
                "stockLocationId": 1,
                "lastCalculated": "2026-05-04T10:15:00",
            }
        ),
        StockRow.model_validate({"sku": "B", "freeStock": 1, "stockLocationId": 1}),
    ]
    result = SyncResult("inventory")
    (figure,) = InventorySync(conn.context).figures(rows, result)
    assert (figure.sku, figure.warehouse, figure.quantity) == ("A", "WH1", 9)
    assert figure.changed_at == T0 + timedelta(minutes=5)
    assert result.no_timestamp == 1  # never pushed with "now"


# --------------------------------------------------------------------- errors, rate limits, 404


def test_unknown_variant_is_counted_and_the_pass_goes_on() -> None:
    sandbox = make_sandbox(["A", "C"])
    for sku in ("A", "GHOST", "C"):
        sandbox.orderwise.set_free_stock(sku, 2, at=T0)
    conn = connector(sandbox)
    result = conn.sync_inventory()
    assert (result.pushed, result.unknown_variant) == (2, 1)
    assert [r for r in sandbox.scayle.requests if r[2] == 404] == [
        ("POST", "/variants/key=GHOST/stocks", 404)
    ]
    assert conn.sync_inventory().unknown_variant == 0  # the same figure is not tried again
    assert len([r for r in sandbox.scayle.requests if r[2] == 404]) == 1


def test_failed_pushes_hold_the_watermark_so_no_update_is_lost() -> None:
    sandbox = make_sandbox(["A", "B"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    conn = connector(sandbox, overlap_seconds=60)
    sandbox.scayle.faults = Faults(error_rate=1.0)
    down = conn.sync_inventory()
    assert (down.deferred, down.pushed) == (1, 0)
    assert sandbox.scayle.stock("A") is None

    # A later change elsewhere must not move the watermark past A's unsent figure.
    sandbox.scayle.faults = Faults()
    sandbox.orderwise.set_free_stock("B", 6, at=T0 + timedelta(hours=2))
    sandbox.scayle.faults = Faults(error_rate=1.0)
    conn.sync_inventory()
    sandbox.scayle.faults = Faults()
    up = conn.sync_inventory()
    assert (up.pushed, up.deferred) == (2, 0)
    assert (sandbox.scayle.stock("A"), sandbox.scayle.stock("B")) == (5, 6)
    assert conn.store.get_cursor(WATERMARK_CURSOR) == (T0 + timedelta(hours=2)).isoformat()


def test_rate_limit_faults_lose_no_update() -> None:
    skus = [f"SKU-{i:02d}" for i in range(20)]
    sandbox = make_sandbox(skus)
    for i, sku in enumerate(skus):
        sandbox.orderwise.set_free_stock(sku, i, at=T0 + timedelta(seconds=i))
    conn = connector(sandbox, max_workers=4)
    sandbox.scayle.faults = Faults(rate_limit_rate=0.9, seed=3)
    results = [conn.sync_inventory() for _ in range(3)]
    sandbox.scayle.faults = Faults()
    results.append(conn.sync_inventory())
    assert any(code == 429 for _, _, code in sandbox.scayle.requests)
    assert results[0].deferred > 0  # some pushes ran out of retries and waited for a later pass
    assert [sandbox.scayle.stock(s) for s in skus] == list(range(20))
    assert sum(r.pushed for r in results) == 20  # each figure accepted exactly once
    assert results[-1].deferred == 0


def test_per_scope_budget_paces_pushes_under_a_small_limit() -> None:
    skus = [f"P{i}" for i in range(12)]
    sandbox = make_sandbox(skus, rate_limits={"stocksWrite": 5})
    for sku in skus:
        sandbox.orderwise.set_free_stock(sku, 1, at=T0)
    started = sandbox.clock.monotonic()
    result = connector(sandbox).sync_inventory()
    assert result.pushed == 12
    assert [code for _, _, code in stock_posts(sandbox)] == [200] * 12  # no 429: paced, not bounced
    assert sandbox.clock.monotonic() - started >= 120  # 12 calls at 5/min need two window resets


def test_pushes_on_a_thread_pool_count_exactly() -> None:
    skus = [f"T{i:03d}" for i in range(60)]
    sandbox = make_sandbox(skus)
    for i, sku in enumerate(skus):
        sandbox.orderwise.set_free_stock(sku, i % 7, at=T0)
    result = connector(sandbox, max_workers=8).sync_inventory()
    assert (result.pushed, result.rows_read) == (60, 60)
    assert sorted(posted_skus(sandbox)) == skus
    assert [sandbox.scayle.stock(s) for s in skus] == [i % 7 for i in range(60)]


# ---------------------------------------------------------------------------------- stale echo


def test_stale_echo_is_counted_alerted_once_and_not_recorded_as_sent() -> None:
    sandbox = make_sandbox(["A", "B"])
    sandbox.scayle.set_stock("A", 99, changed_at=(T0 + timedelta(hours=1)).isoformat())
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    sandbox.orderwise.set_free_stock("B", 5, at=T0)
    sink = MemoryAlertSink()
    conn = connector(sandbox, sink=sink)

    first = conn.sync_inventory()
    assert (first.stale_rejected, first.pushed) == (1, 1)
    assert sandbox.scayle.stock("A") == 99
    alerts = sink.of_kind(AlertKind.STOCK_STALE_REJECTED)
    assert [a.subject for a in alerts] == ["A@WH1"]
    state = PairState.from_json(conn.store.get_cursor(stock_cursor("A", "WH1")))
    assert state.sent_quantity is None  # not recorded as sent

    writes = len(stock_posts(sandbox))
    again = conn.sync_inventory()
    assert again.stale_rejected == 0 and again.pushed == 0
    assert len(stock_posts(sandbox)) == writes  # SCAYLE holds newer: no pointless re-push
    assert len(sink.of_kind(AlertKind.STOCK_STALE_REJECTED)) == 1

    # A figure newer than SCAYLE's goes through and closes the alert; a new stale one re-alerts.
    sandbox.orderwise.set_free_stock("A", 4, at=T0 + timedelta(hours=2))
    assert conn.sync_inventory().pushed == 1
    assert sandbox.scayle.stock("A") == 4
    assert conn.health().open_alerts == ()
    sandbox.scayle.set_stock("A", 50, changed_at=(T0 + timedelta(hours=4)).isoformat())
    sandbox.orderwise.set_free_stock("A", 3, at=T0 + timedelta(hours=3))
    assert conn.sync_inventory().stale_rejected == 1
    assert len(sink.of_kind(AlertKind.STOCK_STALE_REJECTED)) == 2


# ---------------------------------------------------------------------- restarts and stalls


def test_a_restarted_connector_over_the_same_sqlite_store_does_not_re_push(tmp_path: Path) -> None:
    sandbox = make_sandbox(["A", "B"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    sandbox.orderwise.set_free_stock("B", 8, at=T0)
    path = tmp_path / "ledger.db"
    with SqliteStore(path) as store:
        assert connector(sandbox, store=store).sync_inventory().pushed == 2

    # OrderWise recalculates both later; A's figure is the same, B's changed.
    sandbox.orderwise.set_free_stock("A", 5, at=T0 + timedelta(hours=1))
    sandbox.orderwise.set_free_stock("B", 9, at=T0 + timedelta(hours=1))
    with SqliteStore(path) as store:
        result = connector(sandbox, store=store).sync_inventory()
    assert (result.pushed, result.unchanged) == (1, 1)
    assert posted_skus(sandbox) == ["A", "B", "B"]
    assert sandbox.scayle.stock("B") == 9


def test_a_crash_after_scayle_stored_a_figure_is_recovered_by_the_next_worker(
    tmp_path: Path,
) -> None:
    sandbox = make_sandbox(["A", "B"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    sandbox.orderwise.set_free_stock("B", 6, at=T0)
    path = tmp_path / "ledger.db"
    sandbox.scayle.faults = Faults(crash_after_commit_rate=1.0)
    with SqliteStore(path) as store, pytest.raises(SimulatedCrash):
        connector(sandbox, store=store).sync_inventory()
    assert sandbox.scayle.stock("A") == 5  # SCAYLE stored it; the worker died before recording
    sandbox.scayle.faults = Faults()
    with SqliteStore(path) as store:
        result = connector(sandbox, store=store).sync_inventory()
    assert result.pushed == 2 and result.stale_rejected == 0  # A re-sent with the same changedAt
    assert (sandbox.scayle.stock("A"), sandbox.scayle.stock("B")) == (5, 6)
    assert {changed_at(u) for u in sandbox.scayle.stock_updates} == {T0}


def test_sync_stalled_alert_is_raised_once_and_resolved_after_success() -> None:
    sandbox = make_sandbox(["A"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    sink = MemoryAlertSink()
    clock = Clock(T0)
    conn = connector(
        sandbox, sink=sink, clock=clock, flows=FlowSettings(sync_stalled_after_seconds=600)
    )
    assert conn.sync_inventory().pushed == 1

    sandbox.orderwise.set_free_stock("A", 4, at=T0 + timedelta(minutes=1))
    sandbox.scayle.faults = Faults(error_rate=1.0)
    for minutes in (5, 20, 40):  # failing passes; stalled from minute 20 on
        clock.now = T0 + timedelta(minutes=minutes)
        assert conn.sync_inventory().deferred == 1
    stalled = sink.of_kind(AlertKind.SYNC_STALLED)
    assert [a.subject for a in stalled] == ["inventory"]
    assert stalled[0].raised_at == T0 + timedelta(minutes=20)

    sandbox.scayle.faults = Faults()
    clock.now = T0 + timedelta(minutes=50)
    assert conn.sync_inventory().pushed == 1
    assert conn.health().open_alerts == ()
    clock.now = T0 + timedelta(minutes=55)
    conn.sync_inventory()
    assert len(sink.of_kind(AlertKind.SYNC_STALLED)) == 1


def test_a_pass_that_dies_reading_orderwise_leaves_the_watermark() -> None:
    sandbox = make_sandbox(["A"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    conn = connector(sandbox)
    sandbox.faults = Faults(error_rate=1.0)  # both fakes: the OrderWise export fails
    with pytest.raises(TransientError):
        conn.sync_inventory()
    assert conn.store.get_cursor(WATERMARK_CURSOR) is None
    assert stock_posts(sandbox) == []
    sandbox.faults = Faults()
    assert conn.sync_inventory().pushed == 1


# ------------------------------------------------------------------------------- drift report


def test_drift_report_compares_shaped_orderwise_stock_with_scayle() -> None:
    sandbox = make_sandbox(["A", "B", "C"])
    sandbox.scayle.add_warehouse("WH2")
    for sku, qty in (("A", 10), ("B", 4), ("C", 7), ("GHOST", 3)):
        sandbox.orderwise.set_free_stock(sku, qty, at=T0)
    conn = connector(sandbox, default=StockShaping(buffer=Decimal(1)))
    conn.sync_inventory()
    assert conn.reconcile_stock().ok is False  # GHOST is unknown to SCAYLE

    sandbox.scayle.set_stock("B", 40)  # changed directly in SCAYLE
    sandbox.scayle.set_stock("C", 2, warehouse="WH2")  # a warehouse OrderWise does not feed
    report = conn.reconcile_stock()
    rows = {(r.sku, r.warehouse): (r.expected, r.actual, str(r.reason)) for r in report.rows}
    assert rows == {
        ("B", "WH1"): (3, 40, "drift"),
        ("C", "WH2"): (None, 2, "unknown_in_erp"),
        ("GHOST", "WH1"): (2, None, "missing_in_shop"),
    }
    assert report.summary.in_sync == 2  # A and C in WH1


# ------------------------------------------------------------------------- shaping properties


def test_per_sku_rules_override_only_the_fields_they_set() -> None:
    default = StockShaping(buffer=Decimal(2), cap=100)
    rule = effective_shaping(default, {"X": StockShaping(cap=None)}, " X ")
    assert (rule.buffer, rule.cap) == (Decimal(2), None)
    assert effective_shaping(default, {}, "Y") is default


shapes = st.builds(
    StockShaping,
    buffer=st.decimals(min_value=0, max_value=50, places=2),
    percentage=st.none() | st.decimals(min_value=0, max_value=100, places=1),
    cap=st.none() | st.integers(min_value=0, max_value=500),
    zero_at_or_below=st.none() | st.decimals(min_value=-5, max_value=20, places=1),
)
frees = st.decimals(min_value=-1000, max_value=10_000, places=3)


@settings(max_examples=200, deadline=None)
@given(free=frees, rule=shapes)
def test_sellable_is_a_whole_bounded_quantity(free: Decimal, rule: StockShaping) -> None:
    qty = sellable_quantity(free, rule)
    assert isinstance(qty, int) and qty >= 0
    assert qty <= max(0, int(free - rule.buffer) if free > rule.buffer else 0)
    if rule.cap is not None:
        assert qty <= rule.cap
    if rule.zero_at_or_below is not None and free <= rule.zero_at_or_below:
        assert qty == 0
    if rule.percentage is None and rule.cap is None and rule.zero_at_or_below is None:
        assert qty == max(0, int((free - rule.buffer).to_integral_value(rounding="ROUND_FLOOR")))


@settings(max_examples=200, deadline=None)
@given(a=frees, b=frees, rule=shapes)
def test_more_free_stock_never_shows_less(a: Decimal, b: Decimal, rule: StockShaping) -> None:
    low, high = sorted((a, b))
    assert sellable_quantity(low, rule) <= sellable_quantity(high, rule)


def test_sellable_refuses_floats() -> None:
    with pytest.raises(TypeError):
        sellable_quantity(2.5, StockShaping())  # type: ignore[arg-type]


# ------------------------------------------------------- SCAYLE's value in doubt (review fixes)


def test_a_figure_back_to_the_old_value_after_an_unclear_push_is_pushed() -> None:
    sandbox = make_sandbox(["A"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    conn = connector(sandbox)
    assert conn.sync_inventory().pushed == 1

    sandbox.orderwise.set_free_stock("A", 4, at=T0 + timedelta(minutes=1))
    sandbox.scayle.faults = Faults(timeout_after_commit_rate=1.0)  # stored, answer lost
    assert conn.sync_inventory().deferred == 1
    sandbox.scayle.faults = Faults()
    assert sandbox.scayle.stock("A") == 4
    state = PairState.from_json(conn.store.get_cursor(stock_cursor("A", "WH1")))
    assert state.sent_quantity is None  # SCAYLE's value is no longer known

    sandbox.orderwise.set_free_stock("A", 5, at=T0 + timedelta(minutes=2))  # back to the old value
    result = conn.sync_inventory()
    assert (result.pushed, result.unchanged) == (1, 0)
    assert sandbox.scayle.stock("A") == 5
    assert changed_at(sandbox.scayle.stock_updates[-1]) == T0 + timedelta(minutes=2)
    assert conn.sync_inventory().unchanged == 1  # known again: the next idle pass pushes nothing


def test_a_figure_back_to_the_old_value_after_a_stale_rejection_is_pushed() -> None:
    sandbox = make_sandbox(["A"])
    sink = MemoryAlertSink()
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    conn = connector(sandbox, sink=sink)
    assert conn.sync_inventory().pushed == 1

    # Someone else writes 3 with a changedAt ahead of OrderWise's next figure.
    sandbox.scayle.set_stock("A", 3, changed_at=(T0 + timedelta(seconds=100)).isoformat())
    sandbox.orderwise.set_free_stock("A", 4, at=T0 + timedelta(seconds=10))
    assert conn.sync_inventory().stale_rejected == 1
    assert sandbox.scayle.stock("A") == 3

    sandbox.orderwise.set_free_stock("A", 5, at=T0 + timedelta(seconds=310))
    result = conn.sync_inventory()
    assert (result.pushed, result.unchanged) == (1, 0)
    assert sandbox.scayle.stock("A") == 5
    assert conn.health().open_alerts == ()  # the stale-rejection alert is resolved


def test_a_stale_rejection_recorded_before_the_fix_does_not_count_as_unchanged() -> None:
    old = PairState(
        sent_quantity=5,
        sent_at=T0,
        refused_quantity=4,
        refused_at=T0 + timedelta(seconds=10),
        refused_outcome="stale_rejected",
        held_at=T0 + timedelta(seconds=100),
    )
    sandbox = make_sandbox(["A"])
    sandbox.scayle.set_stock("A", 3, changed_at=(T0 + timedelta(seconds=100)).isoformat())
    sandbox.orderwise.set_free_stock("A", 5, at=T0 + timedelta(seconds=310))
    conn = connector(sandbox)
    conn.store.set_cursor(stock_cursor("A", "WH1"), old.to_json())
    assert conn.sync_inventory().pushed == 1
    assert sandbox.scayle.stock("A") == 5


# ------------------------------------------------------------------------------ malformed rows


def test_a_malformed_stock_row_is_skipped_counted_logged_and_alerted_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sandbox = make_sandbox(["A", "B"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    ow = sandbox.orderwise
    original = ow._export_stock
    bad_row = {"sku": None, "freeStock": 3, "stockLocationId": 1, "apiToken": "s3cr3t-value"}
    inject = {"bad": True}

    def with_bad_row(params: Any) -> list[dict[str, Any]]:
        return original(params) + ([dict(bad_row)] if inject["bad"] else [])

    ow.register_export(ow.export_definitions.stock_changes, with_bad_row, ["since"])
    sink = MemoryAlertSink()
    conn = connector(sandbox, sink=sink)

    first = conn.sync_inventory()
    assert (first.bad_rows, first.pushed, first.rows_read) == (1, 1, 2)
    assert sandbox.scayle.stock("A") == 5
    assert conn.store.get_cursor(WATERMARK_CURSOR) == T0.isoformat()  # the watermark moves on
    logged = [r for r in caplog.records if getattr(r, "event", None) == "bad_export_row"]
    assert len(logged) == 1 and "stockLocationId" in logged[0].getMessage()
    assert "s3cr3t-value" not in caplog.text

    sandbox.orderwise.set_free_stock("B", 7, at=T0 + timedelta(minutes=1))
    second = conn.sync_inventory()  # the same bad row again: counted, not re-alerted
    assert (second.bad_rows, second.pushed) == (1, 1)
    assert sandbox.scayle.stock("B") == 7
    alerts = sink.of_kind(AlertKind.SYNC_STALLED)
    assert [a.subject for a in alerts] == ["inventory:bad_rows"]
    assert "sku" in alerts[0].message and "s3cr3t-value" not in str(alerts[0].to_dict())

    inject["bad"] = False
    assert conn.sync_inventory().bad_rows == 0
    assert conn.health().open_alerts == ()


def test_a_malformed_row_in_the_full_stock_export_does_not_break_the_drift_report() -> None:
    sandbox = make_sandbox(["A"])
    sandbox.orderwise.set_free_stock("A", 5, at=T0)
    ow = sandbox.orderwise
    original = ow._export_stock

    def with_bad_row(params: Any) -> list[dict[str, Any]]:
        return [*original(params), {"sku": "A", "freeStock": "lots"}]

    export_id = ow.export_definitions.stock_full or ow.export_definitions.stock_changes
    ow.register_export(export_id, with_bad_row, [])
    conn = connector(sandbox)
    assert conn.sync_inventory().pushed == 1
    report = conn.reconcile_stock()  # the odd row is skipped (and logged), the rest compared
    assert report.ok and report.summary.in_sync == 1


# ------------------------------------------------------------- the tenant's warehouses, its flag


def test_stock_pushes_never_switch_off_sellable_without_stock() -> None:
    """Issue 15 A.2: 0.1.0 sent ``sellableWithoutStock: false`` with every push."""
    sandbox = make_sandbox(["PRE-ORDER"])
    sandbox.scayle.set_stock(
        "PRE-ORDER", 0, changed_at="2026-05-04T08:00:00+00:00", sellable_without_stock=True
    )
    sandbox.orderwise.set_free_stock("PRE-ORDER", 3, at=T0)
    result = connector(sandbox).sync_inventory()
    assert result.pushed == 1
    record = sandbox.scayle.stock_record("PRE-ORDER")
    assert record is not None and (record["quantity"], record["sellableWithoutStock"]) == (3, True)
    assert all("sellableWithoutStock" not in u["body"] for u in sandbox.scayle.stock_updates)


def test_a_missing_warehouse_is_told_apart_from_missing_variants_without_a_push() -> None:
    """Issue 15 A.3: 0.1.0 read a 404 as "unknown variant" unless its error key said WAREHOUSE
    (not evidenced); a tenant answering otherwise made every SKU of the warehouse look missing."""
    sandbox = make_sandbox(["A", "B", "C"], unknown_warehouse_error_key="ENTITY_NOT_FOUND")
    for sku in ("A", "B", "C"):
        sandbox.orderwise.set_free_stock(sku, 4, stock_location_id=1, at=T0)
        sandbox.orderwise.set_free_stock(sku, 6, stock_location_id=2, at=T0)
    sandbox.orderwise.set_free_stock("GHOST", 1, stock_location_id=1, at=T0)
    sink = MemoryAlertSink()
    conn = connector(sandbox, sink=sink, location_warehouses={"1": "WH1", "2": "WH9"})

    result = conn.sync_inventory()

    assert (result.pushed, result.unknown_warehouse, result.unknown_variant) == (3, 3, 1)
    sent_to = {u["body"]["warehouseReferenceKey"] for u in sandbox.scayle.stock_updates}
    assert sent_to == {"WH1"}  # nothing was sent to the missing warehouse
    assert [r for r in sandbox.scayle.requests if r[2] == 404] == [
        ("POST", "/variants/key=GHOST/stocks", 404)
    ]
    (alert,) = sink.of_kind(AlertKind.SETUP_MISMATCH)
    assert alert.subject == "warehouse:WH9" and "3 SKU(s)" in alert.message
    assert [e for e in result.errors if "WH9" in e] == [alert.message]  # one line, not three
    assert [r[1] for r in sandbox.scayle.requests].count("/warehouses") == 1

    # The warehouse is created in SCAYLE; the next read of the list (after an hour, or at the
    # next start-up check) finds it, and the next figures go out.
    sandbox.scayle.add_warehouse("WH9")
    assert conn.check_setup().missing_warehouses == ()
    sandbox.orderwise.set_free_stock("A", 7, stock_location_id=2, at=T0 + timedelta(minutes=1))
    again = conn.sync_inventory()
    assert (again.pushed, again.unknown_warehouse) == (1, 0)
    assert sandbox.scayle.stock("A", "WH9") == 7
    assert conn.health().open_alerts == ()


def test_without_the_warehouse_list_a_404_is_read_from_its_error_key() -> None:
    """A token that may not read ``GET /warehouses`` (403): the stock flow goes on as before."""
    sandbox = make_sandbox(["A"])
    sandbox.orderwise.set_free_stock("A", 4, stock_location_id=2, at=T0)
    inner = sandbox.scayle.transport

    class NoGlobalRead(httpx.BaseTransport):
        def handle_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith(("/warehouses", "/carriers")):
                return httpx.Response(403, json={"errors": [{"errorKey": "FORBIDDEN"}]})
            response: httpx.Response = inner.handle_request(request)
            return response

    conn = Connector(
        scayle=sandbox.scayle_client(transport=NoGlobalRead()),
        orderwise=sandbox.orderwise_client(),
        settings=ConnectorSettings(
            inventory=InventorySettings(
                default_warehouse="WH1", location_warehouses={"2": "WH9"}, max_workers=1
            )
        ),
    )
    result = conn.sync_inventory()
    assert (result.unknown_warehouse, result.unknown_variant) == (1, 0)  # WAREHOUSE_NOT_FOUND
    report = conn.check_setup()
    assert report.ok and not report.checked
    assert "could not check: GET /warehouses" in " ".join(report.warnings())
