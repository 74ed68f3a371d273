"""The start-up check of the SCAYLE tenant (warehouses, carriers) against the settings."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from scayle_orderwise.config import FlowSettings, InventorySettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.sandbox import Faults, Sandbox
from scayle_orderwise.sync.fulfilment import DEFAULT_CARRIER_MAP
from scayle_orderwise.sync.tenant_setup import TenantSetupCache


def connector(sandbox: Sandbox, flows: FlowSettings, **inventory: object) -> Connector:
    return Connector.for_sandbox(
        sandbox,
        flows=flows,
        inventory=InventorySettings(**inventory),  # type: ignore[arg-type]
    )


def test_a_tenant_with_everything_configured_passes() -> None:
    sandbox = Sandbox()
    sandbox.scayle.add_warehouse("WH2")
    conn = connector(
        sandbox,
        FlowSettings(carrier_map={"Royal Mail": "DPD"}, default_carrier="EVRI"),
        default_warehouse="WH1",
        location_warehouses={"2": "WH2"},
    )
    report = conn.check_setup()
    assert report.ok and report.checked
    assert report.problems() == [] and report.warnings() == []
    assert report.warehouses == {"WH1", "WH2"}
    assert set(DEFAULT_CARRIER_MAP.values()) <= (report.carriers or set())


def test_carriers_and_warehouses_the_settings_name_but_the_tenant_lacks_are_problems() -> None:
    """Issue 15 A.6: 0.1.0 had no ``GET /carriers`` and sent whatever key the map gave."""
    sandbox = Sandbox(scayle_options={"carriers": ["DHL_STD_NATIONAL", "DPD"]})
    conn = connector(
        sandbox,
        FlowSettings(carrier_map={"DHL": "DHL_STD_NATIONAL", "Royal Mail": "RM_TRACKED_48"}),
        default_warehouse="WH1",
        location_warehouses={"2": "WH9"},
    )
    report = conn.check_setup()
    assert not report.ok and report.checked
    assert report.missing_warehouses == ("WH9",)
    assert report.missing_carriers == (("carrier_map['Royal Mail']", "RM_TRACKED_48"),)
    problems = report.problems()
    assert len(problems) == 2
    assert "'WH9'" in problems[0] and "WH1" in problems[0]
    assert "RM_TRACKED_48" in problems[1] and "DHL_STD_NATIONAL, DPD" in problems[1]
    # Built-in entries whose carrier the tenant lacks are warnings; DHL and Royal Mail are
    # configured, DPD exists.
    builtin = dict(report.unknown_builtin_carriers)
    assert "DHL" not in builtin and "Royal Mail" not in builtin and "DPD" not in builtin
    assert builtin["Evri"] == "EVRI"
    assert "map them in flows.carrier_map" in report.warnings()[0]
    as_dict = report.as_dict()
    assert as_dict["ok"] is False and as_dict["warehouses"] == ["WH1"]


def test_the_lists_are_read_once_and_reused_by_the_stock_flow() -> None:
    sandbox = Sandbox()
    sandbox.orderwise.set_free_stock("A", 3)
    sandbox.scayle.add_variant("A")
    conn = connector(sandbox, FlowSettings(), default_warehouse="WH1")
    conn.check_setup()
    conn.sync_inventory()
    conn.sync_inventory()
    paths = [r[1] for r in sandbox.scayle.requests]
    assert (paths.count("/warehouses"), paths.count("/carriers")) == (1, 1)


def test_a_kept_list_is_read_again_after_its_age_and_a_passing_failure_is_not_kept() -> None:
    sandbox = Sandbox()
    cache = TenantSetupCache(max_age=timedelta(minutes=10))
    t0 = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    with sandbox.scayle_client(max_retries=0) as client:
        assert cache.warehouses(client, t0).keys == {"WH1"}
        sandbox.scayle.add_warehouse("WH2")
        assert cache.warehouses(client, t0 + timedelta(minutes=9)).keys == {"WH1"}
        assert cache.warehouses(client, t0 + timedelta(minutes=11)).keys == {"WH1", "WH2"}
        sandbox.scayle.faults = Faults(error_rate=1.0)
        failed = cache.carriers(client, t0)
        assert failed.keys is None and failed.error is not None
        sandbox.scayle.faults = Faults()
        assert "DPD" in (cache.carriers(client, t0).keys or set())  # tried again at once
