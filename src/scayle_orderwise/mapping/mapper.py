"""``OrderMapper``: a SCAYLE ``Order`` → ``MappedOrder`` (int minor units) → OrderWise ``SalesOrderCreate``.

:meth:`OrderMapper.map` reads as the money policy's list of steps (DESIGN §3 mapping,
``reference/money-policy.md``); each step is a small function in :mod:`.steps` or a method here
when it calls a hook:

1. Group SCAYLE units into product lines, one per (SKU, unit gross after item reductions, VAT rate,
   tax code); a line's key is its smallest SCAYLE item id (item ids must be unique). Lines worth 0
   stay (P5). Item-level reductions are already inside ``price.withTax``: mirrored (P6).
2. Read the fees; never re-priced.
3. Cap the order-level reductions (``cost.appliedReductions``, ``absoluteWithTax`` summed) at the
   goods total; the rest is ``unused_voucher`` (P9). If the order adds up with them *outside* the
   item prices, allocate the applied amount over the lines by line gross (P7); if already inside,
   allocate nothing; otherwise ``InconsistentOrderError``.
4. VAT per product line on the line gross, half-up (P3, P5).
5. Split each delivery charge over the tax codes of the deliverable lines (P10, :mod:`.shipping`);
   other fees become service lines at their own VAT rate.
6. Payments as they are; gift cards are payments, not discounts (P12).
7. Check that the mapped gross equals ``cost.withTax``; :meth:`MappedOrder.to_orderwise` builds the
   wire body (see :mod:`.wire`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import attrs
from pydantic import ValidationError

from ..errors import (
    InconsistentOrderError,
    MixedCurrencyError,
    NegativeAmountError,
    NonIntegralAmountError,
    UnknownSkuError,
    UnknownTaxRateError,
)
from ..money import exponent
from ..orderwise.models import CustomerRef, DeliveryAddress, SalesOrderCreate
from ..scayle.models import Fee, Order, OrderItem
from .address import delivery_address_from
from .config import UK_TAX_CODES, MappingConfig, external_reference
from .discounts import allocate_discount, decide_voucher
from .errors import MalformedOrderError, UnmappedFeeError
from .hooks import (
    CustomerResolver,
    DeliveryAddressResolver,
    DeliveryMethodResolver,
    PostProcessor,
    SkuResolver,
    TaxCodeResolver,
)
from .shipping import ShippingPart, delivery_groups, split_delivery
from .sku import variant_code_for
from .steps import (
    ProductLines,
    check_payments,
    check_total,
    group_units,
    read_fees,
    requested_reductions,
    require_cost,
)
from .tax import parse_rate, split_line_gross, tax_code_for
from .wire import SubLine, WireContext, build_sales_order, goods_wire_lines, split_line

__all__ = ["MappedFee", "MappedLine", "MappedOrder", "MappedPayment", "OrderMapper"]


@attrs.frozen
class MappedLine:
    """One OrderWise product line built from SCAYLE units; amounts in minor units.

    ``sku`` is the SCAYLE SKU (trimmed); ``item_ids`` the SCAYLE item ids of its units (sorted);
    ``key`` the smallest of them. ``unit_gross`` is SCAYLE's unit price after item reductions,
    ``base = unit_gross * quantity``, ``discount`` the allocated order-level reduction,
    ``gross = base - discount = net + vat``.
    """

    key: int
    sku: str
    quantity: int
    unit_gross: int
    base: int
    discount: int
    gross: int
    net: int
    vat: int
    rate: Decimal
    tax_code: str
    item_ids: tuple[int, ...]
    deliverable: bool = True

    def sub_lines(self) -> tuple[SubLine, ...]:
        """This line split into whole-minor-unit unit prices (P11: at most two, 1 apart).

        What OrderWise receives depends on ``unit_price_decimals``; see
        :meth:`MappedOrder.item_ids_by_item_number` and :func:`.wire.wire_lines`.
        """
        return split_line(self.gross, self.vat, self.quantity, self.item_ids)


@attrs.frozen
class MappedFee:
    """A fee other than delivery, sent as a service line at its own VAT rate."""

    key: str
    category: str | None
    gross: int
    net: int
    vat: int
    rate: Decimal
    tax_code: str


@attrs.frozen
class MappedPayment:
    """A SCAYLE payment; gift cards (``is_gift_card``) are payments, not discounts (P12)."""

    key: str | None
    amount: int
    is_gift_card: bool = False
    transaction_key: str | None = None


@attrs.frozen
class MappedOrder:
    """A SCAYLE order mapped to the penny; every amount is ``int`` minor units of ``currency``.

    ``total_gross`` = lines + shipping parts + fees, which equals SCAYLE's ``cost.withTax``.
    ``voucher_requested`` is the sum of order-level reductions, ``voucher_applied`` the part
    applied to the goods (capped, P9), ``unused_voucher`` the rest. ``voucher_in_item_prices`` says
    SCAYLE had already put the reductions inside the item prices (then nothing was allocated).
    """

    order_id: int
    external_reference: str
    currency: str
    lines: tuple[MappedLine, ...]
    shipping: tuple[ShippingPart, ...]
    fees: tuple[MappedFee, ...]
    payments: tuple[MappedPayment, ...]
    total_gross: int
    total_net: int
    total_vat: int
    voucher_requested: int = 0
    voucher_applied: int = 0
    unused_voucher: int = 0
    voucher_in_item_prices: bool = False
    wire: WireContext | None = attrs.field(default=None, eq=False, repr=False)

    @property
    def shipping_gross(self) -> int:
        """The delivery charge (sum of the shipping parts)."""
        return sum(p.gross for p in self.shipping)

    @property
    def goods_gross(self) -> int:
        """Sum of the product lines' gross (after all discounts)."""
        return sum(line.gross for line in self.lines)

    @property
    def gift_card_total(self) -> int:
        """Amount paid with gift cards (payments, not discounts)."""
        return sum(p.amount for p in self.payments if p.is_gift_card)

    def item_ids_by_item_number(self) -> dict[int, tuple[int, ...]]:
        """``orderLines[].itemNumber`` of the wire body → the SCAYLE item ids that line carries.

        Lets the fulfilment flow turn despatched OrderWise lines back into SCAYLE units. Fee and
        delivery lines carry no units and are absent.
        """
        config = self.wire.config if self.wire is not None else MappingConfig()
        return {
            number: sub.item_ids
            for number, (_, sub) in enumerate(goods_wire_lines(self, config), start=1)
        }

    def to_orderwise(self) -> SalesOrderCreate:
        """The OrderWise ``POST sales/order`` body (Decimal major units), after ``post_process``.

        Raises ``InconsistentOrderError`` when ``post_process`` changed the money of the body.
        """
        if self.wire is None:
            raise ValueError("this MappedOrder was not made by OrderMapper.map; no wire context")
        payload = build_sales_order(self, self.wire)
        if self.wire.post_process is not None:
            before = _wire_money(payload)  # taken first: the hook may mutate the payload in place
            payload = self.wire.post_process(payload, self, self.wire.order)
            if not isinstance(payload, SalesOrderCreate):
                raise TypeError("post_process must return a SalesOrderCreate")
            changed = _money_changes(before, _wire_money(payload))
            if changed:
                raise InconsistentOrderError(
                    f"post_process changed the money of order {self.order_id} "
                    f"({'; '.join(changed)}): it may shape the body, not re-price it"
                )
        return payload


_HEADER_MONEY = (
    ("order_gross", "orderGross"),
    ("order_net", "orderNet"),
    ("order_tax", "orderTax"),
    ("delivery_gross", "deliveryGross"),
    ("delivery_net", "deliveryNet"),
    ("delivery_tax", "deliveryTax"),
    ("amount_paid", "amountPaid"),
)

_WireMoney = tuple[tuple[Decimal | None, ...], dict[str | None, tuple[Decimal, int]]]


def _wire_money(payload: SalesOrderCreate) -> _WireMoney:
    """Header money fields, and per line tax code Σ itemGross × quantity with the unpriced count."""
    header = payload.order_header
    by_code: dict[str | None, tuple[Decimal, int]] = {}
    for line in payload.order_lines:
        total, unpriced = by_code.get(line.tax_code, (Decimal(0), 0))
        if line.item_gross is None:
            unpriced += 1
        else:
            total += line.item_gross * line.quantity
        by_code[line.tax_code] = (total, unpriced)
    return tuple(getattr(header, name) for name, _ in _HEADER_MONEY), by_code


def _money_changes(before: _WireMoney, after: _WireMoney) -> list[str]:
    """What ``post_process`` changed in the money of the wire body (empty when nothing did)."""
    changes = [
        f"{wire_name} {old} -> {new}"
        for (_, wire_name), old, new in zip(_HEADER_MONEY, before[0], after[0], strict=True)
        if old != new
    ]
    old_lines, new_lines = before[1], after[1]
    old_total = sum((t for t, _ in old_lines.values()), Decimal(0))
    new_total = sum((t for t, _ in new_lines.values()), Decimal(0))
    if old_total != new_total:
        changes.append(f"lines' itemGross x quantity {old_total} -> {new_total}")
    elif old_lines != new_lines:
        for code in sorted(old_lines.keys() | new_lines.keys(), key=str):
            old = old_lines.get(code, (Decimal(0), 0))
            new = new_lines.get(code, (Decimal(0), 0))
            if old[0] != new[0]:
                changes.append(
                    f"lines' itemGross x quantity at tax code {code} {old[0]} -> {new[0]}"
                )
            if old[1] != new[1]:
                changes.append(f"lines without itemGross at tax code {code} {old[1]} -> {new[1]}")
    return changes


_INTEGRAL_MARKER = "integral number of minor units"


def _validate(order: Order | Mapping[str, Any]) -> Order:
    if isinstance(order, Order):
        return order
    try:
        return Order.model_validate(order)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            if _INTEGRAL_MARKER in str(err.get("msg", "")):
                where = ".".join(str(p) for p in err.get("loc", ()))
                raise NonIntegralAmountError(
                    f"{where} = {err.get('input')!r} is not a whole number of minor units"
                ) from None
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise MalformedOrderError(
            f"malformed SCAYLE order at {where}: {first.get('msg')}"
        ) from None


def _payments(order: Order) -> tuple[MappedPayment, ...]:
    """SCAYLE payments as they are; gift cards are payments, not discounts (P12)."""
    payments = []
    for payment in order.payment:
        amount = payment.amount or 0
        if amount < 0:
            raise NegativeAmountError(f"payment {payment.key!r} has a negative amount {amount}")
        payments.append(
            MappedPayment(payment.key, amount, payment.is_gift_card, payment.transaction_key)
        )
    return tuple(payments)


class OrderMapper:
    """Map SCAYLE orders to OrderWise sales orders under a :class:`MappingConfig`.

    Extend it by subclassing and overriding the hook methods (``resolve_sku``, ``resolve_tax_code``,
    ``delivery_method``, ``customer``, ``delivery_address``, ``post_process``, and
    ``is_deliverable``, ``fee_variant_code``, ``order_date``, ``external_reference``), or pass
    callables for the first six as keyword arguments (see :mod:`scayle_orderwise.mapping.hooks`);
    a callable wins over the method.
    """

    def __init__(
        self,
        config: MappingConfig | None = None,
        *,
        resolve_sku: SkuResolver | None = None,
        resolve_tax_code: TaxCodeResolver | None = None,
        delivery_method: DeliveryMethodResolver | None = None,
        customer: CustomerResolver | None = None,
        delivery_address: DeliveryAddressResolver | None = None,
        post_process: PostProcessor | None = None,
    ) -> None:
        self.config = config if config is not None else MappingConfig()
        self._resolve_sku: SkuResolver = resolve_sku or self.resolve_sku
        self._resolve_tax_code: TaxCodeResolver = resolve_tax_code or self.resolve_tax_code
        self._delivery_method: DeliveryMethodResolver = delivery_method or self.delivery_method
        self._customer: CustomerResolver = customer or self.customer
        self._delivery_address: DeliveryAddressResolver = delivery_address or self.delivery_address
        self._post_process: PostProcessor = post_process or self.post_process
        # The inherited no-op post_process needs no money check: leave it out of the wire context.
        self._post_process_is_noop = (
            getattr(self._post_process, "__func__", None) is OrderMapper.post_process
        )
        self._known_codes: tuple[MappingConfig, frozenset[str]] | None = None

    # ------------------------------------------------------------------ hooks (override these)

    def resolve_sku(self, sku: str, item: OrderItem, order: Order) -> str:
        """OrderWise variant code of a SCAYLE SKU; default ``sku_map`` or identity."""
        return variant_code_for(sku, self.config)

    def resolve_tax_code(self, rate: Decimal, sku: str | None, order: Order) -> str:
        """OrderWise tax code of a VAT rate (``sku`` is ``None`` for fees and delivery)."""
        return tax_code_for(rate, sku, self.config)

    def delivery_method(self, order: Order) -> int | None:
        """OrderWise ``deliveryMethodId``: first match of carrier, fee option/key, policy; else default."""
        methods = self.config.delivery_methods
        if methods:
            candidates: list[str | None] = [p.carrier_key for p in order.packages]
            if order.cost is not None:
                for fee in order.cost.delivery_fees:
                    candidates += [fee.option, fee.key]
            if order.shipping is not None:
                candidates.append(order.shipping.policy)
            for candidate in candidates:
                if candidate is not None and candidate in methods:
                    return methods[candidate]
        return self.config.default_delivery_method_id

    def customer(self, order: Order) -> CustomerRef:
        """OrderWise customer: the configured B2C account."""
        return CustomerRef(account_number=self.config.customer_account)

    def delivery_address(self, order: Order) -> DeliveryAddress | None:
        """``customerDeliveryAddress`` from the SCAYLE shipping address (alpha-2 country code)."""
        return delivery_address_from(order, self.config)

    def post_process(
        self, payload: SalesOrderCreate, mapped: MappedOrder, order: Order
    ) -> SalesOrderCreate:
        """Last change to the wire body; default: unchanged."""
        return payload

    def is_deliverable(self, sku: str, order: Order) -> bool:
        """Whether a SKU takes a share of delivery; default: not in ``non_deliverable_skus``."""
        return sku not in self.config.non_deliverable_skus

    def fee_variant_code(self, fee: Fee, order: Order) -> str:
        """OrderWise service code of a non-delivery fee: ``fee_variant_codes`` by key, then category."""
        codes = self.config.fee_variant_codes
        for name in (fee.key, fee.category):
            if name is not None and name in codes:
                return codes[name]
        raise UnmappedFeeError(fee.key or fee.category or "?")

    def order_date(self, order: Order) -> datetime:
        """The order date: ``confirmedAt``, else ``createdAt``, else ``updatedAt`` (sent as UK time)."""
        when = order.confirmed_at or order.created_at or order.updated_at
        if when is None:
            raise MalformedOrderError(f"order {order.id} has no confirmedAt or createdAt timestamp")
        return when

    def external_reference(self, order: Order | int) -> str:
        """The ``eCommerceOrderNumber`` of an order or order id (``reference_format``, default
        ``SCAYLE-<id>``); :func:`~scayle_orderwise.mapping.parse_external_reference` reverses it."""
        return external_reference(order if isinstance(order, int) else order.id, self.config)

    # ------------------------------------------------------------------ mapping

    def map(self, order: Order | Mapping[str, Any]) -> MappedOrder:
        """Map one order; raises a ``MappingError`` subclass naming the offending value.

        ``order`` is a validated :class:`~scayle_orderwise.scayle.models.Order` or its JSON dict.
        The steps are those of the money policy, in order (see :mod:`.steps`).
        """
        order = _validate(order)
        currency = self._currency(order)
        cost = require_cost(order)
        product = group_units(order, currency, lambda rate, sku: self._tax_code(rate, sku, order))
        fees = read_fees(cost)
        decision = decide_voucher(  # P9: cap the order reductions at the goods
            goods=product.goods,
            fees=fees.total,
            requested=requested_reductions(cost),
            order_total=cost.with_tax,  # type: ignore[arg-type]  # checked by require_cost
        )
        discounts = allocate_discount(decision.to_allocate, product.bases, product.keys)  # P7
        lines, variant_codes = self._lines(order, product, discounts)  # P3, P5
        shipping = self._shipping(order, lines, fees.delivery)  # P10
        mapped_fees, fee_codes = self._fee_lines(order, fees.other)
        payments = _payments(order)  # P12
        check_payments(order, cost, [p.amount for p in payments])
        parts: tuple[MappedLine | ShippingPart | MappedFee, ...] = (*lines, *shipping, *mapped_fees)
        total_gross = check_total([x.gross for x in parts], cost.with_tax)  # type: ignore[arg-type]
        total_vat = sum(x.vat for x in parts)
        return MappedOrder(
            order_id=order.id,
            external_reference=self.external_reference(order),
            currency=currency,
            lines=tuple(lines),
            shipping=shipping,
            fees=tuple(mapped_fees),
            payments=payments,
            total_gross=total_gross,
            total_net=total_gross - total_vat,
            total_vat=total_vat,
            voucher_requested=decision.requested,
            voucher_applied=decision.applied,
            unused_voucher=decision.unused,
            voucher_in_item_prices=decision.in_item_prices,
            wire=self._wire_context(order, variant_codes, fee_codes),
        )

    # ------------------------------------------------------------------ steps that call hooks

    def _lines(
        self, order: Order, product: ProductLines, discounts: list[int]
    ) -> tuple[list[MappedLine], dict[int, str]]:
        """Each product line's gross after its voucher share, VAT half-up on the line (P3, P5)."""
        lines: list[MappedLine] = []
        variant_codes: dict[int, str] = {}
        for group, discount in zip(product.groups, discounts, strict=True):
            key = group.key
            gross = group.base - discount
            net, vat = split_line_gross(gross, group.rate)
            first = next(i for i in group.items if i.id == key)
            variant_code = self._resolve_sku(group.sku, first, order)
            if not isinstance(variant_code, str) or not variant_code.strip():
                raise UnknownSkuError(
                    group.sku,
                    f"resolve_sku returned {variant_code!r} for SKU {group.sku!r}: "
                    "not a usable OrderWise variant code",
                )
            variant_codes[key] = variant_code
            lines.append(
                MappedLine(
                    key=key,
                    sku=group.sku,
                    quantity=len(group.items),
                    unit_gross=group.unit,
                    base=group.base,
                    discount=discount,
                    gross=gross,
                    net=net,
                    vat=vat,
                    rate=group.rate,
                    tax_code=group.tax_code,
                    item_ids=tuple(sorted(i.id for i in group.items)),
                    deliverable=self.is_deliverable(group.sku, order),
                )
            )
        return lines, variant_codes

    def _fee_lines(
        self, order: Order, other: Sequence[tuple[Fee, int]]
    ) -> tuple[list[MappedFee], tuple[str, ...]]:
        """Fees other than delivery: service lines at the fee's own VAT rate, never re-priced (P3)."""
        fees: list[MappedFee] = []
        fee_codes: list[str] = []
        for fee, gross in other:
            fee_rate = fee.tax.vat.rate if fee.tax and fee.tax.vat else None
            name = fee.key or fee.category or "?"
            if fee_rate is None:
                raise UnknownTaxRateError(None, f"fee {name!r} has no VAT rate")
            rate = parse_rate(fee_rate)
            net, vat = split_line_gross(gross, rate)
            code = self._tax_code(rate, None, order)
            fee_codes.append(self.fee_variant_code(fee, order))
            fees.append(MappedFee(name, fee.category, gross, net, vat, rate, code))
        return fees, tuple(fee_codes)

    def _wire_context(
        self, order: Order, variant_codes: dict[int, str], fee_codes: tuple[str, ...]
    ) -> WireContext:
        """What the wire body needs from the hooks: delivery method, address, customer, date."""
        delivery_method_id = self._delivery_method(order)
        address = self._delivery_address(order)
        if address is not None and address.delivery_method_id is None and delivery_method_id:
            address = address.model_copy(update={"delivery_method_id": delivery_method_id})
        return WireContext(
            config=self.config,
            order=order,
            variant_codes=variant_codes,
            fee_codes=fee_codes,
            customer=self._customer(order),
            delivery_method_id=delivery_method_id,
            delivery_address=address,
            order_date=self.order_date(order),
            post_process=None if self._post_process_is_noop else self._post_process,
        )

    # ------------------------------------------------------------------ helpers

    def _tax_code(self, rate: Decimal, sku: str | None, order: Order) -> str:
        """``resolve_tax_code``'s answer, refused unless it is a tax code the config knows."""
        code = self._resolve_tax_code(rate, sku, order)
        known = self._known_codes
        if known is None or known[0] is not self.config:
            ids = self.config.tax_rate_ids
            known = self._known_codes = (
                self.config,
                UK_TAX_CODES if ids is None else frozenset(ids),
            )
        if isinstance(code, str) and code in known[1]:
            return code
        where = "tax_rate_ids: " if self.config.tax_rate_ids is not None else ""
        where += ", ".join(sorted(known[1]))
        raise UnknownTaxRateError(
            rate,
            f"resolve_tax_code returned {code!r} for VAT rate {rate}"
            + (f" (SKU {sku!r})" if sku is not None else "")
            + f": not a known OrderWise tax code (known: {where})",
        )

    def _currency(self, order: Order) -> str:
        currency = order.currency_code
        if not currency:
            found = {i.currency.upper() for i in order.items if i.currency}
            if len(found) > 1:
                raise MixedCurrencyError(f"order {order.id} mixes currencies {sorted(found)}")
            currency = found.pop() if found else None
        if not currency:
            raise MalformedOrderError(f"order {order.id} has no currencyCode")
        currency = currency.upper()
        try:
            exponent(currency)
        except ValueError:
            raise MalformedOrderError(f"unknown currency code {currency!r}") from None
        return currency

    def _shipping(
        self,
        order: Order,
        lines: list[MappedLine],
        delivery_fees: Sequence[tuple[int, Decimal | None]],
    ) -> tuple[ShippingPart, ...]:
        """The delivery split over the deliverable goods' codes, else at the fee's own rate (P10)."""
        total = sum(amount for amount, _ in delivery_fees)
        if total == 0:
            return ()
        groups = delivery_groups(
            (line.tax_code, line.rate, line.gross, line.base) for line in lines if line.deliverable
        )
        if groups:
            return split_delivery(total, groups)
        # No deliverable goods: each delivery fee keeps its own rate.
        by_rate: dict[Decimal, int] = {}
        for amount, raw_rate in delivery_fees:
            if not amount:
                continue
            if raw_rate is None:
                raise UnknownTaxRateError(None, "delivery fee has no VAT rate")
            rate = parse_rate(raw_rate)
            by_rate[rate] = by_rate.get(rate, 0) + amount
        parts = []
        for rate, gross in sorted(by_rate.items()):
            net, vat = split_line_gross(gross, rate)
            parts.append(ShippingPart(self._tax_code(rate, None, order), rate, gross, net, vat))
        return tuple(parts)
