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
    "console",
    "finish",
    "machine",
    "mixed_orders",
    "print_table",
    "timed",
]

console = Console(width=110, highlight=False)

_SCALE = {"GBP": 100, "EUR": 100, "JPY": 1, "KWD": 1000}
_CURRENCIES = ("GBP", "GBP", "GBP", "GBP", "GBP", "EUR", "JPY", "KWD")
_RATES = ("0.2", "0.2", "0.2", "0.05", "0")
CATALOGUE = [f"{p}-{n:04d}" for p in ("TEE", "MUG", "BOOK", "SHOE", "CAP", "SOCK") for n in range(40)]
"""SKUs the generated orders draw from (every benchmark sandbox knows them)."""


def mixed_orders(
    count: int,
    *,
    seed: int = 1,
    first_id: int = 100_000,
    catalogue: Sequence[str] = CATALOGUE,
    currencies: Sequence[str] = _CURRENCIES,
) -> list[dict[str, Any]]:
    """``count`` consistent SCAYLE order dicts of mixed shape, the same for a seed.

    Shapes mix 1 to 12 units over 1 to 5 SKUs, VAT rates of 20 %, 5 % and 0 %, item reductions
    (sales, some free units), order-level vouchers (outside and inside item prices, some larger
    than the basket), delivery fees, payment surcharges, gift cards, a warranty service line, and
    GBP/EUR/JPY/KWD amounts.
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
            list_price = rng.choice((rng.randint(1, 60) * scale - (1 if scale > 1 else 0),
                                     rng.randint(1, 300 * scale)))
            for _ in range(rng.choice((1, 1, 1, 2, 2, 3))):
                kind = rng.random()
                gross = list_price
                if kind < 0.15:
                    gross = rng.randint(0, list_price)
                elif kind < 0.18:
                    gross = 0
                items.append((sku, gross, rate, list_price))
        if rng.random() < 0.08:
            items.append((SERVICE_SKU, 2999 if scale == 100 else 30 * scale, "0", 2999 if scale == 100 else 30 * scale))
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
                reductions = [rng.randint(0, max(1, goods + goods // 3))
                              for _ in range(rng.choice((1, 1, 2)))]
        delivery = rng.choice((0, 395 if scale == 100 else 4 * scale, 495 if scale == 100 else 5 * scale))
        payment_fee = rng.choice((0, 0, 0, 150 if scale == 100 else 2 * scale))
        total = goods + delivery + payment_fee - (0 if in_prices else min(sum(reductions), goods))
        gift = rng.randint(1, total) if total and rng.random() < 0.1 else 0
        orders.append(
            build_order_json(
                first_id + n,
                items,
                currency=currency,
                delivery=delivery,
                reductions=reductions,
                reductions_in_prices=in_prices,
                payment_fee=payment_fee,
                gift_card=gift,
            )
        )
    return orders
