"""Stock reconciliation: drift, missing and unknown rows; ordering and input checks."""

from __future__ import annotations

import pytest

from scayle_orderwise.reconcile import StockReason, StockReport, reconcile_stock_levels


def test_each_reason_is_found_and_agreeing_rows_are_left_alone() -> None:
    expected = [
        ("SKU-OK", "WH1", 10),
        ("SKU-DRIFT", "WH1", 7),
        ("SKU-NONE", "WH1", 3),
        ("SKU-ABSENT", "WH2", 0),
        ("SKU-OK", "WH2", 0),
    ]
    actual = [
        ("SKU-OK", "WH1", 10),
        ("SKU-DRIFT", "WH1", 9),
        ("SKU-NONE", "WH1", None),
        ("SKU-EXTRA", "WH1", 4),
        ("SKU-EXTRA-ZERO", "WH1", 0),
        (" SKU-OK ", "WH2", 0),
    ]
    report = reconcile_stock_levels(expected, actual)
    got = {
        (r.sku, r.warehouse): (r.reason, r.expected, r.actual, r.difference) for r in report.rows
    }
    assert got == {
        ("SKU-DRIFT", "WH1"): (StockReason.DRIFT, 7, 9, 2),
        ("SKU-NONE", "WH1"): (StockReason.MISSING_IN_SHOP, 3, None, -3),
        ("SKU-ABSENT", "WH2"): (StockReason.MISSING_IN_SHOP, 0, None, 0),
        ("SKU-EXTRA", "WH1"): (StockReason.UNKNOWN_IN_ERP, None, 4, None),
    }
    s = report.summary
    assert (s.expected_rows, s.actual_rows, s.in_sync) == (5, 6, 2)
    assert s.by_reason == {"drift": 1, "missing_in_shop": 2, "unknown_in_erp": 1}
    assert not report.ok
    assert [r.sku for r in report.rows] == sorted(r.sku for r in report.rows)
    assert all(r.action for r in report.rows)


def test_in_sync_stock_gives_an_empty_report() -> None:
    rows = [("A", None, 5), ("B", None, 0)]
    report = reconcile_stock_levels(rows, reversed(rows))
    assert report.ok and report.rows == []
    assert report.summary.in_sync == 2


def test_tolerance_absorbs_small_drift_only() -> None:
    report = reconcile_stock_levels(
        [("A", "W", 10), ("B", "W", 10)], [("A", "W", 11), ("B", "W", 13)], tolerance=1
    )
    assert [(r.sku, r.reason) for r in report.rows] == [("B", StockReason.DRIFT)]


def test_warehouses_are_distinct_keys() -> None:
    report = reconcile_stock_levels([("A", "W1", 5)], [("A", "W2", 5)])
    assert sorted((r.warehouse, r.reason.value) for r in report.rows) == [
        ("W1", "missing_in_shop"),
        ("W2", "unknown_in_erp"),
    ]


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        reconcile_stock_levels([("A", "W", 1), ("A", "W", 2)], [])
    with pytest.raises(TypeError):
        reconcile_stock_levels([("A", "W", 1.5)], [])  # type: ignore[list-item]


def test_stock_report_to_dict() -> None:
    report = reconcile_stock_levels([("A", "W", 1)], [("A", "W", 0)])
    assert isinstance(report, StockReport)
    d = report.to_dict()
    assert d["kind"] == "stock"
    assert d["rows"] == [
        {
            "sku": "A",
            "warehouse": "W",
            "expected": 1,
            "actual": 0,
            "difference": -1,
            "reason": "drift",
            "action": report.rows[0].action,
        }
    ]
