"""Month-end close: reconcile a month of SCAYLE orders against OrderWise and export the postings.

What it shows, on the in-process sandbox:

1. a month (May 2026) of a few dozen SCAYLE orders, mixed VAT rates, vouchers and delivery, plus
   one order of the following month, pushed to OrderWise by ``sync_orders()``;
2. four planted problems, each of the kind finance meets in real life:

   * an order whose SKU was never set up in OrderWise (quarantined, so **missing in ERP**);
   * the same sales-order body posted twice through the OrderWise client (**duplicate in ERP**);
   * a customer who cancelled in the shop after the warehouse started picking (**status
     mismatch**: cancelled in SCAYLE, still live in OrderWise);
   * an order keyed by hand in OrderWise with a shop reference that SCAYLE does not know
     (**unknown in shop**);

3. ``connector.reconcile(since, until)`` finds exactly those, leaves the clean orders alone and
   ignores the June order; ``connector.export_postings(since=..., until=...)`` builds the month's
   batched journal (net, VAT and gross per tax code, shipping, discounts);
4. the report is written as ``reconciliation.html`` (self-contained, for finance),
   ``reconciliation.csv`` and ``reconciliation.json``, and the journal as ``postings.csv``.

Run it::

    python examples/month_end_reconciliation.py               # writes to a new temporary folder
    python examples/month_end_reconciliation.py ./month-end   # writes to ./month-end

Adapting it to real systems: build the connector with ``Connector.from_settings(...)`` (the same
mapping configuration as the workers that push orders, so amounts are compared like for like),
drop the sandbox set-up and the planted problems, and call ``reconcile`` / ``export_postings``
for the closed month, e.g. from a scheduled job on the first working day. The same is available
on the command line: ``scayle-orderwise reconcile --since 2026-05-01 --until 2026-06-01 --format
html --output may.html`` and ``scayle-orderwise export-postings``. The month is May in the books'
time zone (Europe/London): reconciliation and postings cut it the same way. Delivery is booked, by
default, as a line of the OrderWise carriage item ``CARRIAGE`` per VAT code, so a mixed basket's
delivery VAT matches SCAYLE's split.
"""

from __future__ import annotations

import random
import sys
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from scayle_orderwise.config import FlowSettings
from scayle_orderwise.connector import Connector
from scayle_orderwise.reconcile import Tier
from scayle_orderwise.reconcile import report as render
from scayle_orderwise.sandbox import Sandbox, make_order

BOOKS = ZoneInfo("Europe/London")  # the books' time zone (ConnectorSettings.timezone)
MONTH_START = datetime(2026, 5, 1, tzinfo=BOOKS)
MONTH_END = datetime(2026, 6, 1, tzinfo=BOOKS)
CATALOGUE: list[tuple[str, int, str]] = [
    ("TEE-BLK-M", 2400, "0.20"),
    ("HOODIE-GRY-L", 4995, "0.20"),
    ("BOOK-01", 1250, "0"),
    ("KIDS-SHOE-12", 2999, "0"),
    ("CAR-SEAT-01", 12000, "0.05"),
    ("MUG-ENAMEL", 999, "0.20"),
]
GHOST_SKU = "TEE-LIMITED-EDITION"  # sold in the shop, never set up in OrderWise
FIRST_ID = 60001
MONTH_ORDERS = 36
GHOST_ID = 60100  # unknown SKU: quarantined, so missing in OrderWise
DUPLICATED_ID = FIRST_ID + 5  # posted twice to OrderWise
LATE_CANCEL_ID = FIRST_ID + 9  # cancelled in the shop after picking started
NEXT_MONTH_ID = 60200  # confirmed in June: outside the period
HAND_KEYED_REFERENCE = "SCAYLE-69999"  # keyed in OrderWise by hand; SCAYLE has no such order


def build_month(sandbox: Sandbox, seed: int = 5) -> list[int]:
    """Add May's orders (and one of June) to the SCAYLE fake; returns the May order ids."""
    rng = random.Random(seed)
    for sku, _price, _rate in CATALOGUE:
        sandbox.orderwise.add_variant(sku)
        sandbox.scayle.add_variant(sku)
    ids = []
    for n in range(MONTH_ORDERS):
        order_id = FIRST_ID + n
        picks = rng.sample(CATALOGUE, k=rng.choice([1, 2, 3]))
        lines = [(sku, price, rng.choice([1, 1, 2, 3]), rate) for sku, price, rate in picks]
        goods = sum(price * qty for _sku, price, qty, _rate in lines)
        extra: dict[str, Any] = {"voucher": 500} if n % 7 == 3 else {}
        created = MONTH_START + timedelta(hours=20 * n + 3)
        sandbox.scayle.add_order(
            make_order(
                order_id,
                lines,
                shipping=0 if goods >= 5000 else 495,
                created_at=created,
                **extra,
            )
        )
        ids.append(order_id)
    ghost = make_order(
        GHOST_ID,
        [(GHOST_SKU, 3500, 1, "0.20")],
        shipping=495,
        created_at=MONTH_START + timedelta(days=10),
    )
    sandbox.scayle.add_order(ghost)
    ids.append(GHOST_ID)
    sandbox.scayle.add_order(
        make_order(
            NEXT_MONTH_ID,
            [("BOOK-01", 1250, 1, "0")],
            shipping=495,
            created_at=MONTH_END + timedelta(days=1),
        )
    )
    return ids


def plant_problems(sandbox: Sandbox, connector: Connector) -> None:
    """Create the duplicate, the late cancellation and the hand-keyed order (see the docstring)."""
    # Someone re-sends an order by hand with the OrderWise client: a second sales order.
    body = connector.mapper.map(connector.scayle.get_order(DUPLICATED_ID)).to_orderwise()
    connector.orderwise.create_sales_order(body)
    # Someone keys a copy of an order in OrderWise under a shop reference SCAYLE does not know.
    header = body.order_header.model_copy(update={"e_commerce_order_number": HAND_KEYED_REFERENCE})
    connector.orderwise.create_sales_order(body.model_copy(update={"order_header": header}))
    # The warehouse starts picking, then the customer cancels in the shop: too late to cancel.
    sandbox.orderwise.set_status(f"SCAYLE-{LATE_CANCEL_ID}", "Picking")
    sandbox.scayle.cancel_order(LATE_CANCEL_ID)
    connector.sync_cancellations()


def run(folder: Path) -> dict[str, Any]:
    """Run the month-end story and write the four files into ``folder``; returns what happened."""
    folder.mkdir(parents=True, exist_ok=True)
    sandbox = Sandbox(seed=3)
    ids = build_month(sandbox)
    connector = Connector.for_sandbox(
        sandbox,
        worker_id="month-end",
        flows=FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0),
    )
    pushed = connector.sync_orders()
    print(
        f"pushed {pushed.pushed} orders to OrderWise, {pushed.quarantined} quarantined "
        f"({len(ids)} confirmed in May, 1 in June)"
    )
    plant_problems(sandbox, connector)

    report = connector.reconcile(MONTH_START, MONTH_END)
    postings = connector.export_postings(since=MONTH_START, until=MONTH_END)
    title = f"Reconciliation {MONTH_START:%B %Y}"
    files = {
        "reconciliation.html": render.to_html(report, title=title),
        "reconciliation.csv": render.to_csv(report),
        "reconciliation.json": render.to_json(report),
        "postings.csv": postings,
    }
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")

    summary = report.summary
    print(
        f"\n{title}: {summary.shop_orders} SCAYLE orders, {summary.erp_orders} OrderWise orders, "
        f"{summary.matched} matched, {summary.clean} clean, {summary.exceptions} exceptions"
    )
    print("\nexceptions by tier:")
    for tier in Tier:
        print(f"  {tier.value:<12} {summary.by_tier.get(tier.value, 0)}")
    print("\nexceptions by reason (most urgent first):")
    for reason, exceptions in report.by_reason().items():
        print(f"  {reason.value:<18} {len(exceptions)}  [{exceptions[0].tier}] {reason.action}")
        for exc in exceptions:
            print(f"      {exc.reference}: {exc.detail}")
    print("\nthe month's postings (postings.csv):")
    for line in postings.splitlines():
        print(f"  {line}")
    print(f"\nwritten to {folder}/: {', '.join(files)}")
    return {
        "folder": folder,
        "files": [folder / name for name in files],
        "report": report,
        "postings": postings,
        "sandbox": sandbox,
    }


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Command line: the output folder (default: a new temporary folder that is kept)."""
    args = list(sys.argv[1:] if argv is None else argv)
    folder = Path(args[0]) if args else Path(tempfile.mkdtemp(prefix="scayle-orderwise-month-end-"))
    return run(folder)


if __name__ == "__main__":
    main()
