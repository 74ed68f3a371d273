"""Hypothesis strategies for realistic SCAYLE order JSON, to test mappers (ours and yours).

``scayle_orders()`` draws order dicts in the shape of the SCAYLE Admin API (``reference/
scayle-admin-api.md`` §2): one item per unit, mixed VAT rates (20 %, 5 %, 0 %), item reductions
(sales, some to zero), order-level vouchers (some larger than the basket, some already inside item
prices), delivery and payment fees, gift-card payments, zero-value lines, and currencies with 0, 2
and 3 decimals (JPY, GBP/EUR, KWD). Amounts are int minor units, rates JSON floats, as SCAYLE sends
them. Every drawn order adds up: ``cost.withTax`` = items + fees − the applied voucher.

``build_order_json()`` builds one such order from a short description, for example-based tests::

    order = build_order_json(1001, [("TEE", 999, "0.2"), ("TEE", 999, "0.2")], delivery=495)

Orders use :data:`SERVICE_SKU` for a non-deliverable, exempt service (map it with
:func:`strategy_mapping_config`) and :data:`PAYMENT_FEE_KEY` for a payment surcharge.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ..mapping.config import MappingConfig
from ..money import round_half_up, to_fraction

__all__ = [
    "PAYMENT_FEE_KEY",
    "SERVICE_SKU",
    "ItemSpec",
    "build_order_json",
    "scayle_orders",
    "strategy_mapping_config",
]

SERVICE_SKU = "SVC-WARRANTY-3Y"
"""A service SKU in drawn orders: exempt (``T2``), takes no delivery share."""

PAYMENT_FEE_KEY = "base_payment_service_cost"
"""The fee key of the payment surcharge in drawn orders."""

_SCALE = {"JPY": 1, "GBP": 100, "EUR": 100, "USD": 100, "KWD": 1000, "BHD": 1000}
_SKU_PREFIXES = ("TEE", "MUG", "BOOK", "SHOE", "CAP", "PRAM", "SEAT", "SOCK")
_COUNTRIES = ("GBR", "DEU", "FRA", "IRL", "NLD", "USA", "CHE", "NOR", "ESP", "ITA")


def strategy_mapping_config(**overrides: Any) -> MappingConfig:
    """The ``MappingConfig`` that maps every drawn order (service SKU exempt and non-deliverable,
    payment fee mapped to a service code); keyword arguments override fields."""
    fields: dict[str, Any] = {
        "tax_code_overrides": {SERVICE_SKU: "T2"},
        "non_deliverable_skus": [SERVICE_SKU],
        "fee_variant_codes": {PAYMENT_FEE_KEY: "SURCHARGE"},
    }
    fields.update(overrides)
    return MappingConfig(**fields)


def _rate_json(rate: str | Decimal) -> float | int:
    value = Decimal(str(rate))
    return int(value) if value == value.to_integral_value() else float(value)


def _vat(gross: int, rate: str | Decimal) -> int:
    r = to_fraction(str(rate))
    return round_half_up(gross * r / (1 + r))


def _price(gross: int, rate: str | Decimal, undiscounted: int | None = None) -> dict[str, Any]:
    vat = _vat(gross, rate)
    base = gross if undiscounted is None else undiscounted
    base_vat = _vat(base, rate)
    price: dict[str, Any] = {
        "withTax": gross,
        "withoutTax": gross - vat,
        "tax": {"vat": {"amount": vat, "rate": _rate_json(rate)}},
        "undiscountedWithTax": base,
        "undiscountedWithOutTax": base - base_vat,
        "appliedReductions": [],
    }
    if base != gross:
        price["appliedReductions"] = [
            {
                "category": "sale",
                "type": "absolute",
                "amount": {"absoluteWithTax": base - gross, "relative": 0},
            }
        ]
    return price


def _fee(category: str, key: str, gross: int, rate: str | Decimal) -> dict[str, Any]:
    vat = _vat(gross, rate)
    return {
        "category": category,
        "key": key,
        "option": "deliveryCosts" if category == "delivery" else "default",
        "amount": {"withTax": gross, "withoutTax": gross - vat},
        "tax": {"vat": {"amount": vat, "rate": _rate_json(rate)}},
    }


ItemSpec = tuple[str, int, str] | tuple[str, int, str, int] | Mapping[str, Any]


def build_order_json(
    order_id: int,
    items: Sequence[ItemSpec],
    *,
    currency: str = "GBP",
    delivery: int | None = 0,
    delivery_rate: str = "0.2",
    reductions: Sequence[int] = (),
    reductions_in_prices: bool = False,
    payment_fee: int = 0,
    payment_fee_rate: str = "0.2",
    gift_card: int = 0,
    first_item_id: int | None = None,
    country: str = "GBR",
    created_at: str = "2026-05-04T09:10:02+00:00",
    carrier: str = "DPD",
    email: str = "jane.doe@example.com",
) -> dict[str, Any]:
    """A consistent SCAYLE order dict.

    ``delivery`` is the delivery fee (``None``: no delivery fee at all). ``items`` are units: ``(sku, unit_gross, rate)`` or ``(sku, unit_gross, rate, undiscounted)``
    (an item reduction of ``undiscounted - unit_gross``), or a mapping with ``sku``, ``gross``,
    ``rate`` and optional ``undiscounted`` and ``id``. Items get ids ``first_item_id + n``
    (default ``order_id * 100 + n``) unless given. ``reductions`` are order-level
    ``absoluteWithTax`` amounts; with ``reductions_in_prices`` they are taken as already inside
    the item prices (``cost.withTax`` = items + fees). ``gift_card`` pays part of the total with a
    gift card, the rest is a card payment.
    """
    start = order_id * 100 if first_item_id is None else first_item_id
    built_items: list[dict[str, Any]] = []
    for n, spec in enumerate(items):
        if isinstance(spec, Mapping):
            sku, gross, rate = spec["sku"], int(spec["gross"]), str(spec["rate"])
            undiscounted = spec.get("undiscounted")
            item_id = int(spec.get("id", start + n))
        else:
            sku, gross, rate = spec[0], int(spec[1]), str(spec[2])
            undiscounted = spec[3] if len(spec) > 3 else None
            item_id = start + n
        built_items.append(
            {
                "id": item_id,
                "key": f"{item_id:016x}",
                "status": "available",
                "currency": currency,
                "variant": {"id": 50000 + zlib.crc32(sku.encode()) % 10000, "referenceKey": sku},
                "product": {"id": 3000 + n, "name": f"Product {sku}"},
                "merchant": {"id": 1, "referenceKey": "acme"},
                "warehouseId": 12,
                "packageId": 901,
                "price": _price(gross, rate, undiscounted),
            }
        )
    goods = sum(i["price"]["withTax"] for i in built_items)
    fees: list[dict[str, Any]] = []
    if delivery is not None:
        fees.append(_fee("delivery", "base_shipping_service_cost", delivery, delivery_rate))
    if payment_fee:
        fees.append(_fee("payment", PAYMENT_FEE_KEY, payment_fee, payment_fee_rate))
    fees_total = sum(f["amount"]["withTax"] for f in fees)
    requested = sum(reductions)
    applied = 0 if reductions_in_prices else min(requested, goods)
    total = goods + fees_total - applied
    vat_total = sum(i["price"]["tax"]["vat"]["amount"] for i in built_items) + sum(
        f["tax"]["vat"]["amount"] for f in fees
    )
    payments = []
    gift = min(gift_card, total)
    if gift:
        payments.append(
            {
                "amount": gift,
                "key": "giftcard",
                "transactionKey": f"gc-{order_id}",
                "isGiftCard": True,
            }
        )
    if total - gift:
        payments.append(
            {
                "amount": total - gift,
                "key": "adyen_creditcard",
                "transactionKey": f"tx-{order_id}",
                "data": {},
                "isGiftCard": False,
            }
        )
    address = {
        "id": 5501,
        "street": "High Street",
        "houseNumber": "12",
        "additional": "Flat 3",
        "zipCode": "LS1 4AP",
        "city": "Leeds",
        "countryCode": country,
        "state": None,
        "phone": None,
        "recipient": {"firstName": "Jane", "lastName": "Doe", "type": "personal"},
    }
    return {
        "id": order_id,
        "referenceKey": None,
        "publicKey": f"AC-{order_id}",
        "status": "payment_reserved",
        "detailedStatus": {"order": {"code": "order_delegated", "name": "Delegated"}},
        "currencyCode": currency,
        "createdAt": created_at,
        "confirmedAt": created_at,
        "updatedAt": created_at,
        "shopCountry": {"id": 17, "shopKey": "ac", "countryCode": "GB", "currencyCode": currency},
        "customer": {
            "id": 8812,
            "firstName": "Jane",
            "lastName": "Doe",
            "email": email,
            "type": "personal",
            "groups": [],
        },
        "address": {"billing": dict(address), "shipping": {**address, "collectionPoint": None}},
        "cost": {
            "withTax": total,
            "withoutTax": total - vat_total,
            "tax": {"vat": {"amount": vat_total}},
            "appliedFees": fees,
            "appliedReductions": [
                {
                    "category": "voucher",
                    "type": "absolute",
                    "code": f"VOUCHER{n}",
                    "amount": {"absoluteWithTax": amount, "relative": 0},
                }
                for n, amount in enumerate(reductions)
            ],
            "costCapture": total - gift,
            "hasExternalPrices": False,
        },
        "shipping": {
            "policy": "least_packages",
            "deliveryCosts": delivery or 0,
            "expressDeliveryCosts": 0,
        },
        "payment": payments,
        "vouchers": [],
        "promotion": [],
        "packages": [{"id": 901, "carrierKey": carrier, "deliveryStatus": "open"}],
        "items": built_items,
    }


@st.composite
def scayle_orders(
    draw: st.DrawFn,
    *,
    currencies: Sequence[str] = ("GBP", "GBP", "EUR", "JPY", "KWD"),
    rates: Sequence[str] = ("0.2", "0.2", "0.05", "0"),
    max_skus: int = 5,
    max_units: int = 4,
    services: bool = True,
    vouchers: bool = True,
    vouchers_in_prices: bool = True,
    shipping: bool = True,
    payment_fees: bool = True,
    gift_cards: bool = True,
) -> dict[str, Any]:
    """A consistent SCAYLE order dict (see the module docstring); items come in random order."""
    currency = draw(st.sampled_from(list(currencies)))
    scale = _SCALE.get(currency, 100)
    order_id = draw(st.integers(1, 10**9))
    n_skus = draw(st.integers(1, max_skus))
    numbers = draw(st.lists(st.integers(1, 9999), min_size=n_skus, max_size=n_skus, unique=True))
    skus = [f"{draw(st.sampled_from(_SKU_PREFIXES))}-{n}" for n in numbers]
    specs: list[dict[str, Any]] = []
    for sku in skus:
        is_service = services and draw(st.integers(0, 9)) == 0
        if is_service:
            sku, rate = SERVICE_SKU, "0"
        else:
            rate = draw(st.sampled_from(list(rates)))
        price_kind = draw(st.sampled_from(["any", "any", "any", "x.99", "x.99", "zero"]))
        if price_kind == "zero":
            list_price = 0
        elif price_kind == "x.99":
            list_price = draw(st.integers(1, 60)) * scale - (1 if scale > 1 else 0)
        else:
            list_price = draw(st.integers(1, 300 * scale))
        for _ in range(draw(st.integers(1, max_units))):
            kind = draw(st.sampled_from(["plain"] * 7 + ["sale", "sale", "free"]))
            if kind == "sale" and list_price:
                gross = draw(st.integers(0, list_price))
            elif kind == "free":
                gross = 0
            else:
                gross = list_price
            specs.append({"sku": sku, "gross": gross, "rate": rate, "undiscounted": list_price})
    # the same SKU may appear twice (service drawn twice): keep its rate consistent
    rate_of: dict[str, str] = {}
    for spec in specs:
        spec["rate"] = rate_of.setdefault(spec["sku"], spec["rate"])
    ids = draw(
        st.lists(st.integers(1, 10**12), min_size=len(specs), max_size=len(specs), unique=True)
    )
    for spec, item_id in zip(specs, ids, strict=True):
        spec["id"] = item_id
    specs = draw(st.permutations(specs))
    goods = sum(s["gross"] for s in specs)
    delivery = draw(st.one_of(st.just(0), st.integers(1, 15 * scale))) if shipping else 0
    payment_fee = draw(st.one_of(st.just(0), st.integers(1, 3 * scale))) if payment_fees else 0
    reductions: list[int] = []
    in_prices = False
    if vouchers and draw(st.booleans()):
        in_prices = vouchers_in_prices and draw(st.integers(0, 3)) == 0
        if in_prices:
            # SCAYLE put the voucher on one item (Price Calculator v1): reduce that item's price.
            target = draw(st.sampled_from(range(len(specs))))
            cut = draw(st.integers(0, specs[target]["gross"]))
            specs[target]["gross"] -= cut
            reductions = [cut]
        else:
            reductions = draw(
                st.lists(st.integers(0, max(1, goods + goods // 2 + scale)), min_size=1, max_size=2)
            )
    total = goods + delivery + payment_fee - (0 if in_prices else min(sum(reductions), goods))
    gift = draw(st.integers(0, total)) if gift_cards and total and draw(st.booleans()) else 0
    return build_order_json(
        order_id,
        specs,
        currency=currency,
        delivery=delivery,
        reductions=reductions,
        reductions_in_prices=in_prices,
        payment_fee=payment_fee,
        gift_card=gift,
        country=draw(st.sampled_from(_COUNTRIES)),
    )
