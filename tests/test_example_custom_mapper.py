"""examples/custom_mapper.py runs standalone and against the sandbox."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from scayle_orderwise.errors import UnknownSkuError

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "custom_mapper.py"


@pytest.fixture(scope="module")
def example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("custom_mapper_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_standalone_trade_buyer(example: ModuleType) -> None:
    body = example.run_standalone("buyer@BigCorp.example")
    assert body["customer"] == {"accountNumber": "BIGC001"}
    assert body["orderHeader"]["specialInstructions"] == "Trade order"
    codes = {line["variantCode"] for line in body["orderLines"]}
    assert codes == {"TEE-BLK-M", "BOOK-42", "CARRIAGE"}  # delivery: carriage lines per code
    assert {line["eCommerceCode"] for line in body["orderLines"]} == {
        "ACME-TEE-BLK-M",
        "ACME-BOOK-42",
        "delivery",
    }


def test_standalone_consumer_keeps_web_account(example: ModuleType) -> None:
    body = example.run_standalone("jane@home.example")
    assert body["customer"] == {"accountNumber": "WEB001"}
    assert "specialInstructions" not in body["orderHeader"]


def test_unprefixed_sku_is_refused(example: ModuleType) -> None:
    order = example.example_order()
    order["items"][0]["variant"]["referenceKey"] = "TEE-BLK-M"
    with pytest.raises(UnknownSkuError, match="prefix"):
        example.AcmeMapper().map(order)


def test_against_the_sandbox(example: ModuleType) -> None:
    body = example.run_sandbox("buyer@smallshop.example")
    assert body["customer"] == {"accountNumber": "SMAL002"}
    assert body["orderHeader"]["eCommerceOrderNumber"] == "SCAYLE-7001"
    codes = {line["variantCode"] for line in body["orderLines"]}
    assert codes == {"TEE-BLK-M", "BOOK-42", "CARRIAGE"}


def test_main_prints_json(example: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    example.main(["--email", "x@bigcorp.example"])
    out = capsys.readouterr().out
    assert '"accountNumber": "BIGC001"' in out


def test_both_modes_print_money_the_same_way(
    example: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 15 B14: the sandbox mode printed amounts as strings, the standalone mode as numbers."""
    example.main(["--email", "x@bigcorp.example"])
    standalone = json.loads(capsys.readouterr().out)
    example.main(["--sandbox", "--email", "x@bigcorp.example"])
    sandboxed = json.loads(capsys.readouterr().out)
    assert sandboxed == standalone
    header = sandboxed["orderHeader"]
    assert isinstance(header["orderGross"], int | float) and header["orderGross"] == 60.45
