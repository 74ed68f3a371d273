"""Random UK fashion baskets, as a new user tries the library: mixed VAT rates, delivery, vouchers.

Clothing is standard rated (20 %), children's clothing and books are zero rated (0 %), car seats
reduced rated (5 %). By default 60 % of the baskets mix rates (in UK fashion mixed baskets are the
norm), every basket pays a delivery charge between 3.95 and 9.99, some items are on sale and some
baskets use an absolute voucher (now and then larger than the goods). The orders are SCAYLE order
JSON (:func:`~scayle_orderwise.sandbox.factory.make_order`), deterministic for a seed::

    orders = uk_baskets(150, seed=5)            # 150 order dicts, ids 1..150
    stock_sandbox(sandbox)                      # both fakes know every catalogue SKU
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from ..sandbox.factory import make_order

__all__ = ["UK_CATALOGUE", "stock_sandbox", "uk_basket", "uk_baskets"]

UK_CATALOGUE: tuple[tuple[str, int, str], ...] = (
    ("TEE-ADULT-M", 1500, "0.20"),
    ("JEANS-32R", 4999, "0.20"),
    ("DRESS-12", 3995, "0.20"),
    ("HOODIE-L", 3499, "0.20"),
    ("SOCKS-3PK", 799, "0.20"),
    ("KIDS-TEE-5Y", 899, "0"),
    ("KIDS-COAT-8Y", 2450, "0"),
    ("KIDS-SHOES-12", 2999, "0"),
    ("BOOK-NOVEL", 1299, "0"),
    ("BOOK-COOKERY", 2500, "0"),
    ("CAR-SEAT-I", 12000, "0.05"),
    ("CAR-SEAT-II", 8995, "0.05"),
)
"""``(SKU, unit price in pence, VAT rate)`` of the basket catalogue."""

_MONTH = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)


def uk_basket(
    rng: random.Random,
    order_id: int,
    *,
    mixed_share: float = 0.6,
    voucher_share: float = 0.3,
    sale_share: float = 0.15,
) -> dict[str, Any]:
    """One basket as SCAYLE order JSON (see the module docstring)."""
    by_rate: dict[str, list[tuple[str, int, str]]] = {}
    for item in UK_CATALOGUE:
        by_rate.setdefault(item[2], []).append(item)
    if rng.random() < mixed_share:
        rates = rng.sample(sorted(by_rate), rng.randint(2, len(by_rate)))
        picks = [rng.choice(by_rate[rate]) for rate in rates]
        extra = rng.choice(UK_CATALOGUE)
        if rng.random() < 0.4 and extra not in picks:
            picks.append(extra)
    else:
        rate = rng.choice(sorted(by_rate))
        picks = rng.sample(by_rate[rate], rng.randint(1, min(2, len(by_rate[rate]))))
    lines: list[Any] = []
    for sku, price, rate in picks:
        quantity = rng.choice((1, 1, 1, 2, 3))
        if rng.random() < sale_share:
            sale = price - rng.randint(1, price // 3)
            lines.append((sku, sale, quantity, rate, price))
        else:
            lines.append((sku, price, quantity, rate))
    goods = sum(line[1] * line[2] for line in lines)
    voucher = None
    if rng.random() < voucher_share:
        voucher = rng.choice((500, 1000, 1500, 2000, goods + 500))
    return make_order(
        order_id,
        lines,
        shipping=rng.randint(395, 999),
        voucher=voucher,
        voucher_code=f"SAVE{voucher // 100}" if voucher else "SAVE",
        created_at=_MONTH + timedelta(minutes=order_id * 37 % (29 * 24 * 60)),
    )


def uk_baskets(
    count: int, *, seed: int = 0, first_id: int = 1, **options: Any
) -> list[dict[str, Any]]:
    """``count`` baskets with ids ``first_id``, ``first_id + 1``, ... (``options`` as in
    :func:`uk_basket`)."""
    rng = random.Random(seed)
    return [uk_basket(rng, first_id + n, **options) for n in range(count)]


def stock_sandbox(sandbox: Any) -> None:
    """Register every catalogue SKU with both fakes of a :class:`~scayle_orderwise.sandbox.Sandbox`."""
    for sku, _price, _rate in UK_CATALOGUE:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
