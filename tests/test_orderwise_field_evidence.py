"""The fields of ``POST sales/order``: their evidence, the docs page, and leaving them out."""

from __future__ import annotations

import re
import typing
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from scayle_orderwise.config import ConnectorSettings, OrderwiseSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.errors import ConfigError
from scayle_orderwise.orderwise.field_evidence import (
    INFERRED_HEADER_FIELDS,
    SALES_ORDER_FIELDS,
    checked_omissions,
    without_fields,
)
from scayle_orderwise.orderwise.models import SalesOrderCreate
from scayle_orderwise.sandbox import Sandbox, make_order

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reference" / "orderwise-fields.md"


def wire_paths(model: type[BaseModel], prefix: str = "") -> set[str]:
    """``block.field`` paths of every field ``model`` can put on the wire."""
    paths: set[str] = set()
    for name, field in model.model_fields.items():
        alias = field.serialization_alias or field.alias or name
        nested = [
            arg
            for arg in typing.get_args(field.annotation) or (field.annotation,)
            for arg in (typing.get_args(arg) or (arg,))
            if isinstance(arg, type) and issubclass(arg, BaseModel)
        ]
        if nested and not prefix:
            paths |= wire_paths(nested[0], alias)
        else:
            paths.add(f"{prefix}.{alias}" if prefix else alias)
    return paths


def test_every_field_the_library_can_send_has_its_evidence() -> None:
    assert wire_paths(SalesOrderCreate) == set(SALES_ORDER_FIELDS)
    assert {e.level for e in SALES_ORDER_FIELDS.values()} <= {"E", "E-weak", "I", "P"}


def test_the_docs_page_shows_each_field_with_its_level() -> None:
    """Issue 15 A.7: the docs mark each field with the evidence behind it."""
    rows = re.findall(
        r"^\| `([A-Za-z0-9.]+)` \| (E-weak|E|I|P) \| (.+) \|$", DOCS.read_text(), re.M
    )
    assert {path: level for path, level, _ in rows} == {
        path: e.level for path, e in SALES_ORDER_FIELDS.items()
    }
    assert all(basis.strip() == SALES_ORDER_FIELDS[path].basis for path, _, basis in rows)


def test_inferred_header_fields_can_be_switched_off_and_the_order_still_goes_through() -> None:
    """Issue 15 A.7: 0.1.0 always sent the inferred header fields."""
    sandbox = Sandbox(seed=2)
    sandbox.orderwise.add_variant("SKU-A")
    sandbox.scayle.add_order(make_order(7001, [("SKU-A", 1200, 2, "0.20")], shipping=395))
    settings = ConnectorSettings(orderwise=OrderwiseSettings(inferred_header_fields=False))
    connector = Connector.for_sandbox(sandbox, settings=settings)

    assert connector.sync_orders()["pushed"] == 1

    (body,) = sandbox.orderwise.sales_orders
    header = body["orderHeader"]
    assert not {f"orderHeader.{k}" for k in header} & INFERRED_HEADER_FIELDS
    assert {"deliveryGross", "orderGross", "eCommerceOrderNumber"} <= set(header)
    assert header["orderGross"] == Decimal("27.95")
    assert body["orderLines"][0]["taxCode"] == "T1"  # only the header fields were asked for


def test_default_settings_send_the_inferred_fields_too() -> None:
    sandbox = Sandbox(seed=2)
    sandbox.orderwise.add_variant("SKU-A")
    sandbox.scayle.add_order(make_order(7001, [("SKU-A", 1200, 2, "0.20")], shipping=395))
    assert Connector.for_sandbox(sandbox).sync_orders()["pushed"] == 1
    assert {"orderNet", "orderTax", "deliveryNet"} <= set(
        sandbox.orderwise.sales_orders[0]["orderHeader"]
    )


@pytest.mark.parametrize(
    ("paths", "needle"),
    [
        (["orderHeader.colour"], "does not send: orderHeader.colour"),
        (["orderLines.variantCode"], "cannot leave out orderLines.variantCode"),
    ],
)
def test_omissions_are_checked(paths: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        checked_omissions(paths)
    with pytest.raises(ValueError, match=needle):
        OrderwiseSettings(omit_fields=paths)


def test_fields_and_blocks_are_left_out_of_a_body() -> None:
    body: dict[str, Any] = {
        "orderHeader": {"orderGross": 1, "currencyId": 2},
        "orderLines": [{"variantCode": "A", "taxCode": "T1"}, {"variantCode": "B"}],
        "payments": [{"amount": 1}],
    }
    stripped = without_fields(body, {"orderHeader.currencyId", "orderLines.taxCode", "payments"})
    assert stripped == {
        "orderHeader": {"orderGross": 1},
        "orderLines": [{"variantCode": "A"}, {"variantCode": "B"}],
    }
    assert body["orderHeader"]["currencyId"] == 2  # the original is untouched
    settings = OrderwiseSettings(inferred_header_fields=False, omit_fields=["payments"])
    assert settings.omitted_fields() == INFERRED_HEADER_FIELDS | {"payments"}
