"""Issue 12's acceptance: under default settings OrderWise books the shop's VAT per tax code.

Orders go through ``Connector.for_sandbox`` unchanged; the sandbox's OrderWise books VAT as
OrderWise does (from the tax code of each line and of the header delivery), so these tests fail
when the body sent does not carry the mapped VAT split (as 0.1.0's header delivery did not).
"""

from __future__ import annotations

import importlib.util
import re
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from rich.console import Console

from scayle_orderwise import Connector, demo
from scayle_orderwise.mapping import MappedOrder, OrderMapper
from scayle_orderwise.money import round_half_up, to_fraction
from scayle_orderwise.reconcile import Tier
from scayle_orderwise.sandbox import Sandbox
from scayle_orderwise.testing.baskets import stock_sandbox, uk_baskets
from scayle_orderwise.testing.strategies import scayle_orders


def _pence(value: Decimal | None) -> int:
    return round_half_up(to_fraction(value or 0) * 100)


def booked_vat(sandbox: Sandbox) -> dict[str, Counter[str]]:
    """VAT per tax code of every order in the sandbox's OrderWise, as it booked it."""
    out: dict[str, Counter[str]] = {}
    for order in sandbox.orderwise_client().iter_order_details():
        per_code: Counter[str] = Counter()
        for line in order.lines or []:
            per_code[line.tax_code or "?"] += _pence(line.line_vat)
        if order.delivery_gross:  # a header delivery: booked under the header's tax code
            per_code["header delivery"] += _pence(order.delivery_vat)
        assert order.reference is not None
        out[order.reference] = per_code
    return out


def mapped_vat(mapped: MappedOrder) -> Counter[str]:
    per_code: Counter[str] = Counter()
    for part in (*mapped.lines, *mapped.shipping, *mapped.fees):
        per_code[part.tax_code] += part.vat
    return per_code


def _push(sandbox: Sandbox, orders: list[dict[str, Any]]) -> Connector:
    for order in orders:
        sandbox.scayle.add_order(order)
    connector = Connector.for_sandbox(sandbox)
    result = connector.sync_orders()
    assert result.counts["pushed"] == len(orders), result.counts
    return connector


def test_150_mixed_rate_uk_baskets_reconcile_with_nothing_to_review() -> None:
    orders = uk_baskets(150, seed=12)
    mixed = sum(
        1 for o in orders if len({i["price"]["tax"]["vat"]["rate"] for i in o["items"]}) > 1
    )
    assert mixed >= 75 and all(o["cost"]["appliedFees"] for o in orders)
    assert sum(1 for o in orders if o["cost"]["appliedReductions"]) >= 30
    sandbox = Sandbox(seed=12)
    stock_sandbox(sandbox)
    connector = _push(sandbox, orders)
    booked = booked_vat(sandbox)
    for order in orders:
        mapped = connector.mapper.map(order)
        assert +booked[mapped.external_reference] == +mapped_vat(mapped), order["id"]
    report = connector.reconcile()
    assert report.summary.matched == 150
    assert report.summary.by_tier.get(Tier.BLOCK.value, 0) == 0
    assert report.summary.by_tier.get(Tier.REVIEW.value, 0) == 0
    assert report.ok


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    order=scayle_orders(
        currencies=("GBP",),
        rates=("0.2", "0.2", "0.05", "0"),
        services=False,
        payment_fees=False,
    )
)
def test_orderwise_books_the_mapped_vat_per_code_for_any_order(order: dict[str, Any]) -> None:
    sandbox = Sandbox(seed=1)
    for item in order["items"]:
        sandbox.orderwise.add_variant(item["variant"]["referenceKey"])
    connector = _push(sandbox, [order])
    mapped = connector.mapper.map(order)
    [booked] = booked_vat(sandbox).values()
    assert +booked == +mapped_vat(mapped)
    report = connector.reconcile()
    assert [e for e in report.exceptions if e.tier is not Tier.AUTO_ACCEPT] == []
    assert report.summary.clean == 1


# ------------------------------------------------- a new user's first runs, without any delivery setting


class _Captured:
    """Stands in for ``Sandbox`` in a module and remembers the sandboxes it made."""

    def __init__(self) -> None:
        self.made: list[Sandbox] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Sandbox:
        sandbox = Sandbox(*args, **kwargs)
        self.made.append(sandbox)
        return sandbox


def _assert_booked_as_mapped(sandbox: Sandbox) -> int:
    """Every sales order in the sandbox's OrderWise holds the mapped VAT per tax code."""
    mapper = OrderMapper()
    booked = booked_vat(sandbox)
    mixed = 0
    for reference, per_code in booked.items():
        order_id = int(reference.removeprefix("SCAYLE-"))
        mapped = mapper.map(sandbox.scayle.orders[order_id])
        assert +per_code == +mapped_vat(mapped), reference
        mixed += len({p.tax_code for p in mapped.shipping}) > 1
    return mixed


def _example(name: str) -> Any:
    path = Path(__file__).resolve().parents[1] / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"vat_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_quickstart_books_the_right_vat(tmp_path: Any, monkeypatch: Any, capsys: Any) -> None:
    quickstart = _example("quickstart")
    captured = _Captured()
    monkeypatch.setattr(quickstart, "Sandbox", captured)
    quickstart.main([str(tmp_path)])
    [sandbox] = captured.made
    assert _assert_booked_as_mapped(sandbox) >= 2  # its mixed baskets split their delivery


def test_the_demo_books_the_right_vat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    captured = _Captured()
    monkeypatch.setattr(demo, "Sandbox", captured)
    outcome = demo.run_demo(tmp_path / "demo", orders=40, console=Console(quiet=True))
    assert outcome.ok
    [sandbox] = captured.made
    assert _assert_booked_as_mapped(sandbox) >= 1


def test_the_readme_snippet_books_the_right_vat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    snippet = next(
        block
        for block in re.findall(r"```python\n(.*?)```", readme, re.S)
        if "Connector.for_sandbox" in block
    )
    monkeypatch.chdir(tmp_path)  # the snippet writes its ledger in the current folder
    namespace: dict[str, Any] = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    sandbox = next(v for v in namespace.values() if isinstance(v, Sandbox))
    assert booked_vat(sandbox)
    _assert_booked_as_mapped(sandbox)
