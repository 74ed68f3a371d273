"""Extension points: subclass methods and keyword callables (Singer-SDK style)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest

from scayle_orderwise.errors import (
    InconsistentOrderError,
    MappingError,
    UnknownSkuError,
    UnknownTaxRateError,
)
from scayle_orderwise.mapping import MappedOrder, MappingConfig, OrderMapper
from scayle_orderwise.orderwise.models import CustomerRef, DeliveryAddress, SalesOrderCreate
from scayle_orderwise.scayle.models import Order, OrderItem
from scayle_orderwise.testing.strategies import build_order_json

ORDER = build_order_json(
    31, [("TEE", 2000, "0.2"), ("TEE", 2000, "0.2"), ("MUG", 800, "0.2")], delivery=395
)


def test_resolve_sku_callable_sees_sku_item_and_order() -> None:
    calls: list[tuple[str, int, int]] = []

    def resolve(sku: str, item: OrderItem, order: Order) -> str:
        calls.append((sku, item.id, order.id))
        return f"OW-{sku}"

    mapped = OrderMapper(resolve_sku=resolve).map(ORDER)
    assert calls == [("TEE", 3100, 31), ("MUG", 3102, 31)]  # once per line, first unit
    assert [x.sku for x in mapped.lines] == ["TEE", "MUG"]  # the SCAYLE SKU stays
    codes = [x.variant_code for x in mapped.to_orderwise().order_lines]
    assert codes == ["OW-TEE", "OW-MUG", "CARRIAGE"]  # delivery is a carriage line, not a SKU


def test_resolve_sku_may_refuse() -> None:
    def resolve(sku: str, item: OrderItem, order: Order) -> str:
        raise UnknownSkuError(sku)

    with pytest.raises(UnknownSkuError) as info:
        OrderMapper(resolve_sku=resolve).map(ORDER)
    assert info.value.sku == "TEE"


def test_resolve_tax_code_callable() -> None:
    seen: list[tuple[Decimal, str | None]] = []

    def tax(rate: Decimal, sku: str | None, order: Order) -> str:
        seen.append((rate, sku))
        return "T9" if sku == "MUG" else "T1"

    mapped = OrderMapper(resolve_tax_code=tax).map(ORDER)
    assert {x.sku: x.tax_code for x in mapped.lines} == {"TEE": "T1", "MUG": "T9"}
    assert (Decimal("0.2"), "TEE") in seen and (Decimal("0.2"), "MUG") in seen
    # the tax code is part of the line identity and of the delivery split
    assert {p.tax_code for p in mapped.shipping} == {"T1", "T9"}


def test_customer_delivery_and_address_callables() -> None:
    mapper = OrderMapper(
        customer=lambda order: CustomerRef(id=order.customer.id if order.customer else 0),
        delivery_method=lambda order: 42,
        delivery_address=lambda order: DeliveryAddress(delivery_name="Depot", country_code="GB"),
    )
    body = mapper.map(ORDER).to_orderwise()
    assert body.customer == CustomerRef(id=8812)
    assert body.order_header.delivery_method_id == 42
    assert body.customer_delivery_address is not None
    assert body.customer_delivery_address.delivery_name == "Depot"
    assert body.customer_delivery_address.delivery_method_id == 42


def test_post_process_callable_shapes_the_payload() -> None:
    def post(payload: SalesOrderCreate, mapped: MappedOrder, order: Order) -> SalesOrderCreate:
        header = payload.order_header.model_copy(
            update={"special_instructions": f"{len(mapped.lines)} lines for {order.public_key}"}
        )
        return payload.model_copy(update={"order_header": header})

    body = OrderMapper(post_process=post).map(ORDER).to_orderwise()
    assert body.order_header.special_instructions == "2 lines for AC-31"


def test_post_process_must_return_a_sales_order() -> None:
    mapped = OrderMapper(post_process=lambda p, m, o: None).map(ORDER)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="SalesOrderCreate"):
        mapped.to_orderwise()


class PrefixMapper(OrderMapper):
    """A subclass overriding hook methods."""

    def resolve_sku(self, sku: str, item: OrderItem, order: Order) -> str:
        return "UK-" + super().resolve_sku(sku, item, order)

    def customer(self, order: Order) -> CustomerRef:
        return CustomerRef(account_number="TRADE01")

    def is_deliverable(self, sku: str, order: Order) -> bool:
        return sku != "MUG"


def test_subclass_overrides() -> None:
    mapped = PrefixMapper(MappingConfig(sku_map={"TEE": "T-1", "MUG": "M-1"})).map(ORDER)
    body = mapped.to_orderwise()
    assert [x.variant_code for x in body.order_lines] == ["UK-T-1", "UK-M-1", "CARRIAGE"]
    assert body.customer.account_number == "TRADE01"
    assert [(p.tax_code, p.gross) for p in mapped.shipping] == [("T1", 395)]


def test_callable_wins_over_the_subclass_method() -> None:
    mapper = PrefixMapper(resolve_sku=lambda sku, item, order: sku.lower())
    codes = [x.variant_code for x in mapper.map(ORDER).to_orderwise().order_lines]
    assert codes == ["tee", "mug", "CARRIAGE"]


def test_hooks_run_at_map_time() -> None:
    # A hook that raises quarantines the order before anything could be sent.
    def boom(order: Order) -> CustomerRef:
        raise LookupError("no account")

    with pytest.raises(LookupError):
        OrderMapper(customer=boom).map(ORDER)


# --------------------------------------------------------------------------- hook results checked

RATE_IDS = MappingConfig(
    tax_codes={"0.20": "S", "0.05": "R", "0": "Z"}, tax_rate_ids={"S": 1, "R": 2, "Z": 3}
)


@pytest.mark.parametrize(
    ("config", "bad"),
    [
        (RATE_IDS, "S20"),  # not in tax_rate_ids: taxRateId would silently be None
        (RATE_IDS, "T1"),
        (MappingConfig(), "S20"),  # without tax_rate_ids codes must be T0-T9
        (MappingConfig(), ""),
        (MappingConfig(), None),
        (MappingConfig(), 1),
    ],
)
def test_resolve_tax_code_result_must_be_a_known_code(config: MappingConfig, bad: object) -> None:
    mapper = OrderMapper(config, resolve_tax_code=lambda rate, sku, order: bad)  # type: ignore[arg-type,return-value]
    with pytest.raises(UnknownTaxRateError, match="resolve_tax_code returned") as info:
        mapper.map(ORDER)
    assert repr(bad) in str(info.value)
    assert info.value.rate == Decimal("0.2")


def test_resolve_tax_code_checked_for_fees_and_delivery_too() -> None:
    # Goods get a good code; fees and delivery without deliverable goods (sku None) a bad one.
    def tax(rate: Decimal, sku: str | None, order: Order) -> str:
        return "S" if sku is not None else "S20"

    fee_order = build_order_json(32, [("TEE", 2000, "0.2")], delivery=0, payment_fee=150)
    config = MappingConfig(
        tax_codes={"0.20": "S"}, tax_rate_ids={"S": 1}, fee_variant_codes={"payment": "FEE"}
    )
    assert OrderMapper(config).map(fee_order).fees  # the order has a fee line
    with pytest.raises(UnknownTaxRateError, match="'S20'"):
        OrderMapper(config, resolve_tax_code=tax).map(fee_order)
    no_goods_delivery = PrefixMapper(config, resolve_tax_code=tax)  # MUG takes no delivery
    mug_only = build_order_json(33, [("MUG", 800, "0.2")], delivery=395)
    with pytest.raises(UnknownTaxRateError, match="'S20'"):
        no_goods_delivery.map(mug_only)
    # A known code goes out with its taxRateId.
    good = OrderMapper(config, resolve_tax_code=lambda rate, sku, order: "S")
    body = good.map(fee_order).to_orderwise()
    assert {(line.tax_code, line.tax_rate_id) for line in body.order_lines} == {("S", 1)}


@pytest.mark.parametrize("bad", ["", "   ", None, 42, b"TEE"])
def test_resolve_sku_result_must_be_a_non_empty_string(bad: object) -> None:
    mapper = OrderMapper(resolve_sku=lambda sku, item, order: bad)  # type: ignore[arg-type,return-value]
    with pytest.raises(UnknownSkuError, match="resolve_sku returned") as info:
        mapper.map(ORDER)
    assert info.value.sku == "TEE"
    assert repr(bad) in str(info.value)


def _reprice_header(payload: SalesOrderCreate) -> SalesOrderCreate:
    header = payload.order_header.model_copy(update={"order_gross": Decimal("1.00")})
    return payload.model_copy(update={"order_header": header})


def _reprice_lines(payload: SalesOrderCreate) -> SalesOrderCreate:
    lines = [x.model_copy(update={"item_gross": Decimal("0.01")}) for x in payload.order_lines]
    return payload.model_copy(update={"order_lines": lines})


def _mutate_lines_in_place(payload: SalesOrderCreate) -> SalesOrderCreate:
    # The models are frozen but the list is not: the check must not compare the body with itself.
    payload.order_lines[1] = payload.order_lines[1].model_copy(update={"item_gross": Decimal(9)})
    return payload


def _drop_delivery(payload: SalesOrderCreate) -> SalesOrderCreate:
    header = payload.order_header.model_copy(update={"delivery_gross": None})
    return payload.model_copy(update={"order_header": header})


def _drop_carriage_line(payload: SalesOrderCreate) -> SalesOrderCreate:
    lines = [x for x in payload.order_lines if x.variant_code != "CARRIAGE"]
    return payload.model_copy(update={"order_lines": lines})


def _move_between_tax_codes(payload: SalesOrderCreate) -> SalesOrderCreate:
    first, *rest = payload.order_lines
    return payload.model_copy(
        update={"order_lines": [first.model_copy(update={"tax_code": "T0"}), *rest]}
    )


def _unprice_a_line(payload: SalesOrderCreate) -> SalesOrderCreate:
    first, *rest = payload.order_lines
    return payload.model_copy(
        update={"order_lines": [first.model_copy(update={"item_gross": None}), *rest]}
    )


@pytest.mark.parametrize(
    ("hook", "named"),
    [
        (_reprice_header, "orderGross 51.95 -> 1.00"),
        (_reprice_lines, "itemGross x quantity 51.95 -> 0.04"),
        (_mutate_lines_in_place, "itemGross x quantity 51.95 -> 52.95"),
        (_drop_delivery, "deliveryGross 0.00 -> None"),
        (_drop_carriage_line, "itemGross x quantity 51.95 -> 48.00"),
        (_move_between_tax_codes, "at tax code T0 0 -> 40.00"),
        (_unprice_a_line, "itemGross x quantity 51.95 -> 11.95"),
    ],
)
def test_post_process_may_not_change_money(
    hook: Callable[[SalesOrderCreate], SalesOrderCreate], named: str
) -> None:
    mapped = OrderMapper(post_process=lambda p, m, o: hook(p)).map(ORDER)
    with pytest.raises(InconsistentOrderError, match="post_process changed the money") as info:
        mapped.to_orderwise()
    assert named in str(info.value)
    assert isinstance(info.value, MappingError)  # the orders flow quarantines it


def test_post_process_may_reshape_lines_without_changing_money() -> None:
    # Merging nothing, renumbering and annotating lines keeps the money: accepted.
    def post(payload: SalesOrderCreate, mapped: MappedOrder, order: Order) -> SalesOrderCreate:
        lines = [
            x.model_copy(update={"item_number": 10 * (n + 1), "stock_location_id": 3})
            for n, x in enumerate(reversed(payload.order_lines))
        ]
        header = payload.order_header.model_copy(update={"special_instructions": "gift wrap"})
        return payload.model_copy(update={"order_lines": lines, "order_header": header})

    body = OrderMapper(post_process=post).map(ORDER).to_orderwise()
    assert [x.item_number for x in body.order_lines] == [10, 20, 30]
    assert body.order_header.order_gross == Decimal("51.95")


def test_post_process_may_not_unprice_a_free_line() -> None:
    # Without itemGross OrderWise would use its own price: a money change even at 0.00.
    order = build_order_json(34, [("TEE", 2000, "0.2"), ("GIFT", 0, "0.2")], delivery=0)
    mapped = OrderMapper(post_process=lambda p, m, o: _unprice_last(p)).map(order)
    with pytest.raises(
        InconsistentOrderError, match="lines without itemGross at tax code T1 0 -> 1"
    ):
        mapped.to_orderwise()


def _unprice_last(payload: SalesOrderCreate) -> SalesOrderCreate:
    *rest, last = payload.order_lines
    assert last.item_gross == 0
    return payload.model_copy(
        update={"order_lines": [*rest, last.model_copy(update={"item_gross": None})]}
    )
