"""The ``scayle-orderwise demo`` story: every flow on the embedded sandbox with a SQLite ledger.

A catalogue and a few hundred orders with planted problems (a SKU OrderWise does not know, lost
responses and crashes, a late cancellation, stock changes including negative and fractional free
stock) go through every flow; the month is reconciled into a self-contained HTML report for
finance, and a summary table says what happened. The same seed tells the same story.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import attrs
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from .alerts import MemoryAlertSink
from .config import FlowSettings, InventorySettings, StockShaping
from .connector import Connector
from .reconcile import report as render
from .sandbox import Faults, Sandbox, SimulatedCrash, make_order
from .store import SqliteStore, State
from .sync.context import SyncResult

__all__ = ["DemoOutcome", "run_demo"]

CATALOGUE: list[tuple[str, int, str]] = [
    *[
        (f"TEE-{colour}-{size}", 2400, "0.20")
        for colour in ("BLK", "WHT", "NVY")
        for size in ("S", "M", "L")
    ],
    *[(f"HOODIE-{colour}", 4995, "0.20") for colour in ("GRY", "BLK")],
    *[(f"BOOK-{n:02d}", 1250 + 100 * n, "0") for n in range(1, 6)],
    *[(f"KIDS-SHOE-{n}", 2999, "0") for n in range(10, 14)],
    ("CAR-SEAT-01", 12000, "0.05"),
    ("MUG-ENAMEL", 999, "0.20"),
    ("SOCKS-3PK", 1495, "0.20"),
]
GHOST_SKU = "TEE-LIMITED-EDITION"  # sold in the shop, never set up in OrderWise
FLOWS = FlowSettings(backoff_base_seconds=0, resend_grace_seconds=0)
WAREHOUSE = "WH1"


@attrs.define
class DemoOutcome:
    """What the demo did; ``ok`` is False when an invariant was broken (a duplicate or lost order)."""

    folder: Path
    counts: Counter[str] = attrs.field(factory=Counter)
    problems: list[str] = attrs.field(factory=list)
    report_path: Path | None = None

    @property
    def ok(self) -> bool:
        """True when no duplicate and no lost order, and the report was written."""
        return not self.problems and self.report_path is not None


def _random_order(rng: random.Random, order_id: int) -> dict[str, Any]:
    picks = rng.sample(CATALOGUE, k=rng.choice([1, 1, 2, 2, 3]))
    lines = [(sku, price, rng.choice([1, 1, 1, 2, 3]), rate) for sku, price, rate in picks]
    goods = sum(price * qty for _sku, price, qty, _rate in lines)
    kwargs: dict[str, Any] = {
        "shipping": 0 if goods >= 5000 else 495,
        "email": f"buyer{order_id}@example.com",
    }
    if rng.random() < 0.15:
        kwargs["voucher"] = rng.choice([500, 1000, 1500])
    if rng.random() < 0.05:
        kwargs["gift_card"] = min(1000, goods // 2)
    return make_order(order_id, lines, **kwargs)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("{task.description:<34}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


class _Bars:
    """Moves the current bar after every request the fakes answer: one order, parcel or SKU at a time.

    A bar counts what its step produced (sales orders in OrderWise, shipments in SCAYLE, ...), read
    from the sandbox after each request, so it moves while a pass runs instead of once per pass.
    """

    def __init__(self, progress: Progress, sandbox: Sandbox) -> None:
        self.progress = progress
        self._task: TaskID | None = None
        self._done: Callable[[], int] = lambda: 0
        for transport in (sandbox.scayle.transport, sandbox.orderwise.transport):
            self._follow_requests(transport)

    def _follow_requests(self, transport: Any) -> None:
        answer = transport.handle_request

        def handle_request(request: Any) -> Any:
            try:
                return answer(request)
            finally:
                self.refresh()

        transport.handle_request = handle_request

    def refresh(self) -> None:
        """Show the current count on the current bar."""
        if self._task is not None:
            self.progress.update(self._task, completed=self._done())

    def passes(
        self,
        label: str,
        total: int | None,
        done: Callable[[], int],
        passes: list[Callable[[], SyncResult | None]],
    ) -> SyncResult:
        """Run ``passes`` under one bar of ``total`` items, ``done()`` of which are finished."""
        merged = SyncResult(label)
        start = done()
        self._task = self.progress.add_task(label, total=total)
        self._done = lambda: done() - start
        try:
            for one_pass in passes:
                result = one_pass()
                if result is not None:
                    merged.merge(result)
            self.refresh()
        finally:
            self._task = None
        return merged


def run_demo(
    folder: Path, *, orders: int = 300, seed: int = 7, console: Console | None = None
) -> DemoOutcome:
    """Run the whole story into ``folder`` (created); returns the outcome and prints a summary."""
    console = console or Console()
    folder.mkdir(parents=True, exist_ok=True)
    outcome = DemoOutcome(folder)
    rng = random.Random(seed)
    sandbox = Sandbox(seed=seed)
    sink = MemoryAlertSink()
    ledger = folder / "ledger.db"
    inventory = InventorySettings(
        default=StockShaping(buffer=Decimal(2)),
        per_sku={"CAR-SEAT-01": StockShaping(buffer=Decimal(0), cap=5)},
        default_warehouse=WAREHOUSE,
    )

    # Default settings: delivery is booked as a line of the carriage item (CARRIAGE, which the
    # sandbox's OrderWise has) per VAT code, so mixed baskets keep their split.
    def connector(worker: str = "demo-worker") -> Connector:
        return Connector.for_sandbox(
            sandbox,
            store=SqliteStore(ledger),
            alerts=[sink],
            worker_id=worker,
            flows=FLOWS,
            inventory=inventory,
        )

    console.print(f"[bold]scayle-orderwise demo[/] (seed {seed}) in {folder}/")
    for sku, _price, _rate in CATALOGUE:
        sandbox.scayle.add_variant(sku)
        sandbox.orderwise.set_free_stock(sku, rng.randint(20, 200))
    sandbox.scayle.add_variant(GHOST_SKU)
    order_ids = list(range(100_001, 100_001 + orders))
    ghost_id = order_ids[len(order_ids) // 3]
    for order_id in order_ids:
        if order_id == ghost_id:
            sandbox.scayle.add_order(
                make_order(order_id, [(GHOST_SKU, 3500, 1, "0.20")], shipping=495)
            )
        else:
            sandbox.scayle.add_order(_random_order(rng, order_id))

    with _progress(console) as progress:
        bars = _Bars(progress, sandbox)
        # 1. Webhooks arrive (one of them twice), then passes run while OrderWise loses answers.
        hooks = progress.add_task("webhooks received", total=len(sandbox.scayle.webhooks) + 1)
        first = connector()
        for envelope in [*sandbox.scayle.webhooks, sandbox.scayle.webhooks[0]]:
            outcome.counts[f"webhook_{first.ingest_webhook(json.dumps(envelope)).outcome}"] += 1
            progress.advance(hooks)
        sandbox.orderwise.injector.faults = Faults(
            timeout_after_commit_rate=0.04, error_rate=0.03, crash_after_commit_rate=0.01, seed=seed
        )

        def order_pass() -> SyncResult | None:
            try:
                return connector().sync_orders()
            except SimulatedCrash:
                outcome.counts["worker_crashes"] += 1
                return None

        def settling_pass() -> SyncResult:
            sandbox.orderwise.injector.faults = Faults()  # OrderWise behaves again
            return connector().sync_orders()

        pushed = bars.passes(
            "orders → OrderWise",
            len(order_ids) - 1,  # all but the order with the unknown SKU
            lambda: len(sandbox.orderwise.sales_orders),
            [order_pass] * 4 + [settling_pass] * 2,
        )
        outcome.counts.update({f"orders_{k}": v for k, v in pushed.counts.items()})

        # 2. The warehouse despatches most orders; some leave in two parcels.
        acknowledged = [
            r for r in SqliteStore(ledger).records(states=[State.ACKNOWLEDGED], kind="order")
        ]
        despatch = progress.add_task("warehouse despatches", total=len(acknowledged))
        early_cancel = acknowledged[-1].subject if len(acknowledged) > 1 else None
        late_cancel = acknowledged[-2].subject if len(acknowledged) > 2 else None
        parcels = 0
        for record in acknowledged:
            progress.advance(despatch)
            if record.subject == late_cancel:  # the warehouse is already picking this one
                sandbox.orderwise.set_status(f"SCAYLE-{record.subject}", "Picking")
            if record.subject in (early_cancel, late_cancel) or rng.random() < 0.2:
                continue
            reference = f"SCAYLE-{record.subject}"
            lines = sandbox.orderwise.order(reference).get("orderLines", [])
            codes = [line["variantCode"] for line in lines if line.get("variantCode")]
            if len(codes) > 1 and rng.random() < 0.3:
                sandbox.orderwise.despatch(reference, courier="DPD", lines=[codes[0]])
                parcels += 1
            sandbox.orderwise.despatch(reference, courier=rng.choice(["Royal Mail", "DPD", "DHL"]))
            parcels += 1
        shipped = bars.passes(
            "parcels → SCAYLE shipments",
            parcels,
            lambda: len(sandbox.scayle.shipments),
            [lambda: connector().sync_fulfilments()] * 2,
        )
        outcome.counts.update({f"fulfilment_{k}": v for k, v in shipped.counts.items()})

        # 3. Two customers cancel: one before picking, one after the parcel left (too late).
        for subject in (early_cancel, late_cancel):
            if subject is not None:
                sandbox.scayle.cancel_order(int(subject))
                connector().ingest_webhook(json.dumps(sandbox.scayle.webhooks[-1]))
        cancelled = bars.passes(
            "cancellations → OrderWise",
            None,
            lambda: sum(1 for r in sandbox.orderwise.requests if "cancel" in r[1]),
            [lambda: connector().sync_cancellations()],
        )
        outcome.counts.update({f"cancellation_{k}": v for k, v in cancelled.counts.items()})

        # 4. Stock moves in OrderWise (sales, a stock take, an oversold and a part-pack SKU).
        for sku, _price, _rate in rng.sample(CATALOGUE, k=8):
            sandbox.orderwise.set_free_stock(sku, rng.randint(0, 60))
        sandbox.orderwise.set_free_stock("MUG-ENAMEL", Decimal(-3))
        sandbox.orderwise.set_free_stock("SOCKS-3PK", Decimal("7.5"))
        stock = bars.passes(
            "stock figures → SCAYLE",
            None,
            lambda: sum(
                1
                for m, path, code in sandbox.scayle.requests
                if m == "POST" and "stock" in path and 200 <= code < 300
            ),
            [lambda: connector().sync_inventory()] * 2,
        )
        outcome.counts.update({f"stock_{k}": v for k, v in stock.counts.items()})

        # 5. Month-end: reconcile both systems into the finance report.
        recon_task = progress.add_task(
            "reconciliation: orders read",
            total=len(sandbox.scayle.orders) + len(sandbox.orderwise.sales_orders),
        )
        report = connector().reconcile(progress=lambda _side: progress.advance(recon_task))
        outcome.report_path = folder / "reconciliation.html"
        outcome.report_path.write_text(
            render.to_html(report, title="Demo month reconciliation"), encoding="utf-8"
        )
        (folder / "reconciliation.json").write_text(render.to_json(report), encoding="utf-8")

    _check_invariants(sandbox, SqliteStore(ledger), order_ids, ghost_id, outcome)
    outcome.counts["alerts"] = len(sink.alerts)
    for alert in sink.alerts:
        outcome.counts[f"alert_{alert.kind}"] += 1
    for tier, n in report.summary.by_tier.items():
        outcome.counts[f"reconciliation_{tier}"] = n
    _print_summary(console, outcome, report)
    return outcome


def _check_invariants(
    sandbox: Sandbox, store: SqliteStore, order_ids: list[int], ghost_id: int, outcome: DemoOutcome
) -> None:
    per_ref = Counter(
        body["orderHeader"]["eCommerceOrderNumber"] for body in sandbox.orderwise.sales_orders
    )
    duplicates = sorted(ref for ref, n in per_ref.items() if n > 1)
    lost = []
    for order_id in order_ids:
        record = store.get(f"order:{order_id}")
        if record is None or record.state not in (
            State.ACKNOWLEDGED,
            State.QUARANTINED,
            State.CANCELLED,
        ):
            lost.append(order_id)
    outcome.counts["orders_total"] = len(order_ids)
    outcome.counts["orderwise_sales_orders"] = len(sandbox.orderwise.sales_orders)
    outcome.counts["duplicates"] = len(duplicates)
    outcome.counts["lost"] = len(lost)
    outcome.counts["quarantined"] = store.counts(kind="order")[State.QUARANTINED]
    outcome.counts["scayle_shipments"] = len(sandbox.scayle.shipments)
    if duplicates:
        outcome.problems.append(f"duplicate sales orders for {', '.join(duplicates[:5])}")
    if lost:
        outcome.problems.append(f"orders not settled: {lost[:5]}")
    ghost = store.get(f"order:{ghost_id}")
    if ghost is None or ghost.state != State.QUARANTINED:
        outcome.problems.append("the order with an unknown SKU was not quarantined")


def _print_summary(console: Console, outcome: DemoOutcome, report: Any) -> None:
    c = outcome.counts
    table = Table(title="What happened")
    table.add_column("")
    table.add_column("count", justify="right")
    rows = [
        ("orders in SCAYLE", c["orders_total"]),
        ("sales orders in OrderWise", c["orderwise_sales_orders"]),
        ("adopted after a lost answer or crash", c["orders_adopted"]),
        ("worker crashes survived", c["worker_crashes"]),
        ("duplicate sales orders (must be 0)", c["duplicates"]),
        ("orders lost (must be 0)", c["lost"]),
        ("quarantined (unknown SKU)", c["quarantined"]),
        ("shipments sent to SCAYLE", c["scayle_shipments"]),
        ("cancelled in OrderWise", c["cancellation_cancelled_in_orderwise"]),
        ("cancellations too late (return needed)", c["cancellation_return_needed"]),
        ("stock figures pushed", c["stock_pushed"]),
        ("alerts raised", c["alerts"]),
        ("reconciliation: blocking", c["reconciliation_block"]),
        ("reconciliation: to review", c["reconciliation_review"]),
        ("reconciliation: explained rounding", c["reconciliation_auto_accept"]),
    ]
    for label, value in rows:
        table.add_row(label, str(value))
    console.print(table)
    # Paths and the command are printed whole (soft wrap): a terminal may fold them, but they are
    # never broken mid-word, so they can be copied from a log or a pipe.
    console.print(f"finance report: {outcome.report_path}", soft_wrap=True, markup=False)
    ledger = outcome.folder / "ledger.db"
    console.print(f"ledger: {ledger}", soft_wrap=True, markup=False)
    console.print(
        f"  look inside: SCAYLE_ORDERWISE_STORE__URL=sqlite:///{ledger} scayle-orderwise status",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    if outcome.problems:
        console.print("[bold red]problems:[/] " + "; ".join(outcome.problems))
    else:
        console.print("[bold green]no duplicates, nothing lost[/]")
