"""Extension points: subclass methods and keyword callables (Singer-SDK style)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from scayle_orderwise.errors import UnknownSkuError
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
    assert codes == ["OW-TEE", "OW-MUG"]


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
    assert [x.variant_code for x in body.order_lines] == ["UK-T-1", "UK-M-1"]
    assert body.customer.account_number == "TRADE01"
    assert [(p.tax_code, p.gross) for p in mapped.shipping] == [("T1", 395)]


def test_callable_wins_over_the_subclass_method() -> None:
    mapper = PrefixMapper(resolve_sku=lambda sku, item, order: sku.lower())
    codes = [x.variant_code for x in mapper.map(ORDER).to_orderwise().order_lines]
    assert codes == ["tee", "mug"]


def test_hooks_run_at_map_time() -> None:
    # A hook that raises quarantines the order before anything could be sent.
    def boom(order: Order) -> CustomerRef:
        raise LookupError("no account")

    with pytest.raises(LookupError):
        OrderMapper(customer=boom).map(ORDER)
