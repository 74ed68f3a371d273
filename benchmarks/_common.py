"""Shared helpers of the benchmark scripts: realistic orders, timing, tables, targets.

Not part of the library. Each script in this folder imports it as ``_common`` (the script's own
folder is first on ``sys.path`` when run as ``python benchmarks/<name>.py``).
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from scayle_orderwise.testing.strategies import PAYMENT_FEE_KEY, SERVICE_SKU, build_order_json

__all__ = [
    "CATALOGUE",
    "PAYMENT_FEE_KEY",
    "Check",
    "catalogue_sandbox",
    "console",
    "finish",
    "machine",
    "mapping_config",
    "median",
    "mixed_orders",
    "print_table",
    "timed",
]

console = Console(width=110, highlight=False)

_SCALE = {"GBP": 100, "EUR": 100, "JPY": 1, "KWD": 1000}
_CURRENCIES = ("GBP", "GBP", "GBP", "GBP", "GBP", "EUR", "JPY", "KWD")
_RATES = ("0.2", "0.2", "0.2", "0.05", "0")
CATALOGUE = [
    f"{p}-{n:04d}" for p in ("TEE", "MUG", "BOOK", "SHOE", "CAP", "SOCK") for n in range(40)
]
"""SKUs the generated orders draw from (every benchmark sandbox knows them)."""


def mixed_orders(
    count: int,
    *,
    seed: int = 1,
    first_id: int = 100_000,
    catalogue: Sequence[str] = CATALOGUE,
    currencies: Sequence[str] = _CURRENCIES,
    sdk_fields: bool = True,
) -> list[dict[str, Any]]:
    """``count`` consistent SCAYLE order dicts of mixed shape, the same for a seed.

    Shapes mix 1 to 12 units over 1 to 5 SKUs, VAT rates of 20 %, 5 % and 0 %, item reductions
    (sales, some free units), order-level vouchers (outside and inside item prices, some larger
    than the basket), delivery fees, payment surcharges, gift cards, a warranty service line, and
    GBP/EUR/JPY/KWD amounts. ``sdk_fields`` adds what real orders carry besides (see
    :func:`with_sdk_fields`).
    """
    rng = random.Random(seed)
    orders = []
    for n in range(count):
        currency = rng.choice(currencies)
        scale = _SCALE[currency]
        items: list[tuple[str, int, str, int]] = []
        rate_of: dict[str, str] = {}
        for sku in rng.sample(list(catalogue), rng.choice((1, 1, 2, 2, 3, 4, 5))):
            rate = rate_of.setdefault(sku, rng.choice(_RATES))
            list_price = rng.choice(
                (rng.randint(1, 60) * scale - (1 if scale > 1 else 0), rng.randint(1, 300 * scale))
            )
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                kind = rng.random()
                gross = list_price
                if kind < 0.15:
                    gross = rng.randint(0, list_price)
                elif kind < 0.18:
                    gross = 0
                items.append((sku, gross, rate, list_price))
        if rng.random() < 0.08:
            items.append(
                (
                    SERVICE_SKU,
                    2999 if scale == 100 else 30 * scale,
                    "0",
                    2999 if scale == 100 else 30 * scale,
                )
            )
        rng.shuffle(items)
        goods = sum(i[1] for i in items)
        reductions: list[int] = []
        in_prices = False
        if rng.random() < 0.3:
            if rng.random() < 0.25:
                in_prices = True
                target = rng.randrange(len(items))
                sku, gross, rate, base = items[target]
                cut = rng.randint(0, gross)
                items[target] = (sku, gross - cut, rate, base)
                reductions = [cut]
            else:
                reductions = [
                    rng.randint(0, max(1, goods + goods // 3)) for _ in range(rng.choice((1, 1, 2)))
                ]
        delivery = rng.choice(
            (0, 395 if scale == 100 else 4 * scale, 495 if scale == 100 else 5 * scale)
        )
        payment_fee = rng.choice((0, 0, 0, 150 if scale == 100 else 2 * scale))
        total = goods + delivery + payment_fee - (0 if in_prices else min(sum(reductions), goods))
        gift = rng.randint(1, total) if total and rng.random() < 0.1 else 0
        order = build_order_json(
            first_id + n,
            items,
            currency=currency,
            delivery=delivery,
            reductions=reductions,
            reductions_in_prices=in_prices,
            payment_fee=payment_fee,
            gift_card=gift,
        )
        orders.append(with_sdk_fields(order) if sdk_fields else order)
    return orders


def with_sdk_fields(order: dict[str, Any]) -> dict[str, Any]:
    """Add the fields a real SCAYLE order carries beyond what the mapper reads.

    Taken from the shape of the SCAYLE SDK fixture ``OrderGetResponse.json`` (channel, basket key,
    contacts, legacy custom data, customer and address details, detailed billing and shipping
    status, card data of the payment, item timestamps and variant stock), so parsing costs what
    it costs on real orders. Changes ``order`` in place and returns it.
    """
    created = order["createdAt"]
    order["basketKey"] = f"basket-{order['id']}"
    order["channel"] = {"id": 123, "key": "web", "name": "Web shop", "type": "shop"}
    order["contacts"] = [{"type": "carrier"}]
    order["legacyCustomData"] = {"origin": "checkout", "device": "mobile"}
    order["customer"].update(
        {
            "createdAt": "2021-11-29T16:39:02+00:00",
            "updatedAt": "2021-12-03T10:58:37+00:00",
            "gender": "f",
            "publicKey": f"customer-{order['id']:032x}",
            "referenceKey": f"CUST-{order['id']:012d}",
            "status": {"isActive": True, "isGuestCustomer": False},
            "title": None,
        }
    )
    for address in order["address"].values():
        address["isDefault"] = {"billing": False, "shipping": False}
        address["recipient"]["gender"] = "f"
    order["detailedStatus"]["billing"] = {
        "code": "billing_payment_pending",
        "name": "Payment reserved",
    }
    order["detailedStatus"]["shipping"] = {"code": "shipping_pending", "name": "Pending"}
    for payment in order["payment"]:
        if not payment["isGiftCard"]:
            payment["data"] = {"CCBrand": "VISA", "CCExpiry": "202905", "IPZoneA2": "gb"}
    for item in order["items"]:
        item["createdAt"] = created
        item["delegatedAt"] = created
        item["legacyCustomData"] = {}
        item["variant"]["stock"] = {"supplierId": 1}
    return order


def machine() -> str:
    """One line describing where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    return (
        f"{platform.system()} {platform.machine()} ({cpu}), {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )


def timed(fn: Callable[[], object]) -> float:
    """Wall-clock seconds of one call of ``fn``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def median(values: Iterable[float]) -> float:
    """The median of ``values``."""
    return statistics.median(list(values))


def print_table(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a table (numbers right-aligned)."""
    table = Table(title=title, title_justify="left")
    for n, name in enumerate(columns):
        table.add_column(name, justify="left" if n == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    console.print(table)


class Check:
    """Targets of one run, printed PASS/FAIL; :func:`finish` turns them into the exit code.

    Invariants (nothing lost, nothing duplicated, no 429, ...) always count. Timing figures count
    too, except in ``--quick`` runs (``quick=True``), whose samples are too small to judge speed:
    there they are printed as ``info``.
    """

    def __init__(self, *, quick: bool = False) -> None:
        self.quick = quick
        self.results: list[tuple[str, bool, bool]] = []

    def invariant(self, description: str, holds: bool) -> bool:
        """Record a correctness target (counts in every run)."""
        self.results.append((description, bool(holds), True))
        return bool(holds)

    def timing(self, description: str, holds: bool) -> bool:
        """Record a speed or ratio target (counts in full runs only)."""
        self.results.append((description, bool(holds), not self.quick))
        return bool(holds)

    def finish(self) -> int:
        """Print the targets; 0 when every counted one holds, else 1."""
        failed = 0
        for description, holds, counted in self.results:
            mark = "PASS" if holds else "FAIL" if counted else "info"
            failed += counted and not holds
            console.print(f"{mark}  {description}")
        console.print("all targets hold" if not failed else f"{failed} target(s) missed")
        return 1 if failed else 0


def finish(check: Check) -> None:
    """Exit with the result of ``check``."""
    sys.exit(check.finish())


def mapping_config() -> Any:
    """The mapping configuration every generated order maps under."""
    from scayle_orderwise.testing.strategies import strategy_mapping_config

    return strategy_mapping_config()


def catalogue_sandbox(seed: int = 0, **kwargs: Any) -> Any:
    """A sandbox whose SCAYLE and OrderWise fakes know every SKU of the generated orders."""
    from scayle_orderwise.sandbox import Sandbox

    sandbox = Sandbox(seed=seed, **kwargs)
    for sku in [*CATALOGUE, SERVICE_SKU, "SURCHARGE"]:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
    return sandbox
