"""Shared helpers for the flow tests: a stocked sandbox with confirmed SCAYLE orders."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from scayle_orderwise.sandbox import Sandbox, make_order

CATALOGUE = ["SKU-TEE-BLK-M", "SKU-TEE-WHT-L", "SKU-BOOK-01", "SKU-MUG-02", "SKU-CAP-03"]
LINES = [
    ("SKU-TEE-BLK-M", 2400, 1, "0.20"),
    ("SKU-BOOK-01", 1250, 2, "0"),
    ("SKU-MUG-02", 999, 3, "0.20"),
    ("SKU-CAP-03", 1495, 1, "0.20"),
]


def order_json(order_id: int, **kwargs: Any) -> dict[str, Any]:
    """A realistic confirmed order; the lines vary with the id."""
    n = order_id % len(LINES)
    lines = kwargs.pop("lines", [LINES[n], LINES[(n + 1) % len(LINES)]])
    kwargs.setdefault("shipping", 495)
    return make_order(order_id, lines, **kwargs)


def stocked_sandbox(seed: int = 0, **kwargs: Any) -> Sandbox:
    """A sandbox whose OrderWise knows every catalogue SKU."""
    sandbox = Sandbox(seed=seed, **kwargs)
    for sku in CATALOGUE:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
    return sandbox


def add_orders(sandbox: Sandbox, ids: Iterable[int], **kwargs: Any) -> list[int]:
    """Add confirmed orders to the SCAYLE fake; returns the ids."""
    added = []
    for order_id in ids:
        sandbox.scayle.add_order(order_json(order_id, **kwargs))
        added.append(order_id)
    return added


def orderwise_orders_per_reference(sandbox: Sandbox) -> Counter[str]:
    """How many sales orders OrderWise accepted per eCommerceOrderNumber (duplicates show as > 1)."""
    return Counter(
        body["orderHeader"]["eCommerceOrderNumber"] for body in sandbox.orderwise.sales_orders
    )


def calls(sandbox_part: Any, method: str, fragment: str) -> int:
    """Requests to a fake whose method matches and whose path contains ``fragment``."""
    return sum(1 for m, path, _status in sandbox_part.requests if m == method and fragment in path)
