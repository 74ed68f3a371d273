"""A custom mapper: SKUs that differ by a prefix, and a B2B customer per buyer e-mail domain.

The shop lists variants as ``ACME-<code>`` while OrderWise knows them as ``<code>``; trade buyers
(recognised by their e-mail domain) book to their own OrderWise account instead of the web
account ``WEB001``. Everything else (VAT, vouchers, delivery) stays the library's mapping.

Run it standalone (maps one order from the sandbox factory and prints the OrderWise body)::

    python examples/custom_mapper.py

or against the in-process sandbox (pushes the order through a Connector)::

    python examples/custom_mapper.py --sandbox
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from scayle_orderwise.errors import UnknownSkuError
from scayle_orderwise.mapping import MappingConfig, OrderMapper
from scayle_orderwise.orderwise.models import CustomerRef, SalesOrderCreate
from scayle_orderwise.sandbox import Sandbox, make_order
from scayle_orderwise.scayle.models import Order, OrderItem

SHOP_PREFIX = "ACME-"
TRADE_ACCOUNTS = {"bigcorp.example": "BIGC001", "smallshop.example": "SMAL002"}


class AcmeMapper(OrderMapper):
    """Strips the shop's SKU prefix and picks the OrderWise account from the buyer's e-mail."""

    def __init__(
        self,
        config: MappingConfig | None = None,
        *,
        trade_accounts: Mapping[str, str] = TRADE_ACCOUNTS,
        **hooks: Any,
    ) -> None:
        super().__init__(config, **hooks)
        self.trade_accounts = {k.lower(): v for k, v in trade_accounts.items()}

    def resolve_sku(self, sku: str, item: OrderItem, order: Order) -> str:
        if not sku.startswith(SHOP_PREFIX):
            raise UnknownSkuError(sku, f"SKU {sku!r} lacks the shop prefix {SHOP_PREFIX!r}")
        # The default rule still applies afterwards (sku_map / identity).
        return super().resolve_sku(sku.removeprefix(SHOP_PREFIX), item, order)

    def customer(self, order: Order) -> CustomerRef:
        email = (order.customer.email or "") if order.customer else ""
        domain = email.rpartition("@")[2].lower()
        account = self.trade_accounts.get(domain)
        return CustomerRef(account_number=account) if account else super().customer(order)

    def post_process(
        self, payload: SalesOrderCreate, mapped: Any, order: Order
    ) -> SalesOrderCreate:
        if payload.customer.account_number == self.config.customer_account:
            return payload
        header = payload.order_header.model_copy(update={"special_instructions": "Trade order"})
        return payload.model_copy(update={"order_header": header})


def example_order(order_id: int = 7001, email: str = "buyer@bigcorp.example") -> dict[str, Any]:
    """A SCAYLE order from the sandbox factory with prefixed SKUs, a voucher and delivery."""
    return make_order(
        order_id,
        [
            ("ACME-TEE-BLK-M", 2400, 2, "0.20"),
            ("ACME-BOOK-42", 1250, 1, "0"),
        ],
        shipping=495,
        voucher=500,
        email=email,
    )


def run_standalone(email: str = "buyer@bigcorp.example") -> dict[str, Any]:
    """Map the example order and return the OrderWise wire body."""
    mapped = AcmeMapper().map(example_order(email=email))
    return mapped.to_orderwise().to_wire()


def run_sandbox(email: str = "buyer@bigcorp.example") -> dict[str, Any]:
    """Push the example order through a sandbox Connector; return the wire body OrderWise received."""
    from scayle_orderwise.connector import Connector

    sandbox = Sandbox(seed=1)
    for code in ("TEE-BLK-M", "BOOK-42"):
        sandbox.orderwise.add_variant(code)
    for account in TRADE_ACCOUNTS.values():
        sandbox.orderwise.add_customer(account)
    sandbox.scayle.add_order(example_order(email=email))
    connector = Connector.for_sandbox(sandbox, mapping=AcmeMapper())
    connector.sync_orders()
    (received,) = sandbox.orderwise.sales_orders
    # The fake OrderWise keeps amounts as Decimal; read them back into the wire model so both modes
    # print the body the same way, as the JSON numbers the client sent.
    return SalesOrderCreate.model_validate(received).to_wire()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--sandbox`` pushes through the sandbox, ``--email`` sets the buyer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sandbox", action="store_true", help="push through the sandbox")
    parser.add_argument("--email", default="buyer@bigcorp.example", help="buyer e-mail")
    args = parser.parse_args(argv)
    body = run_sandbox(args.email) if args.sandbox else run_standalone(args.email)
    print(json.dumps(body, indent=2))  # money as JSON numbers in major units, as on the wire


if __name__ == "__main__":
    main()
