"""A planted-discrepancy study: plant known faults in a sandbox month, reconcile, score the report.

Each :data:`KINDS` entry is a fault finance meets in real life, planted the way it happens (an
order never pushed, a sales order posted twice, a price or VAT code edited in OrderWise, a voucher
dropped, a cancellation only one system knows, ...) with the reason the report must give. Orders
left untouched must raise nothing: any exception on them above ``auto_accept`` is a false alarm.
:func:`run_study` does it all on the sandbox and returns a :class:`StudyScore`::

    score = run_study(orders=600, per_kind=12, seed=3)
    score.recall, score.false_alarms, score.by_kind     # 1.0, 0, {...}

The tests run a small study; ``benchmarks/reconciliation_study.py`` runs a large one and prints
the table published in ``docs/guides/reconciliation.md``.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import attrs

from ..reconcile import Reason, ReconciliationReport, Tier
from .baskets import stock_sandbox, uk_baskets

if TYPE_CHECKING:
    from ..connector import Connector
    from ..mapping import MappedOrder
    from ..sandbox import Sandbox

__all__ = ["KINDS", "Plant", "PlantKind", "StudyScore", "plant", "run_study", "score"]


@attrs.frozen
class Plant:
    """One planted fault: its kind, the order's reference and the reason the report must give."""

    kind: str
    reference: str
    expected: Reason


Planter = Callable[["Sandbox", "Connector", "MappedOrder", random.Random], None]


@attrs.frozen
class PlantKind:
    """How to plant one kind of fault, on which orders, and the reason expected."""

    name: str
    expected: Reason
    applies: Callable[[MappedOrder], bool]
    apply: Planter


def _major(amount: int) -> Decimal:
    return Decimal(amount).scaleb(-2)


def _any(mapped: MappedOrder) -> bool:
    return True


def _price_change(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    line = next(x for x in m.lines if x.quantity == 1)
    code = line.sku  # identity SKUs in the study
    delta = rng.choice((-500, -100, 100, 250))
    sandbox.orderwise.amend_line(
        m.external_reference, code, item_gross=_major(max(line.gross + delta, 0))
    )


def _penny_cut(sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random) -> None:
    line = next(x for x in m.lines if x.quantity == 1 and x.gross > 0)
    code = line.sku  # identity SKUs in the study
    sandbox.orderwise.amend_line(m.external_reference, code, item_gross=_major(line.gross - 1))


def _line_vat_code(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    line = next(x for x in m.lines if x.gross > 0 and x.tax_code in ("T1", "T0"))
    code = line.sku  # identity SKUs in the study
    other = "T0" if line.tax_code == "T1" else "T1"
    sandbox.orderwise.amend_line(m.external_reference, code, tax_code=other)


def _delivery_vat_code(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    part = max(m.shipping, key=lambda p: p.gross)
    other = "T0" if part.tax_code != "T0" else "T1"
    carriage = connector.mapper.config.delivery_variant_code
    assert carriage is not None
    _amend_carriage(sandbox, m, carriage, part.tax_code, tax_code=other)


def _delivery_charge(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    part = max(m.shipping, key=lambda p: p.gross)
    carriage = connector.mapper.config.delivery_variant_code
    assert carriage is not None
    new = _major(part.gross + rng.choice((-100, 100, 200)))
    _amend_carriage(sandbox, m, carriage, part.tax_code, item_gross=new)


def _amend_carriage(
    sandbox: Sandbox, m: MappedOrder, carriage: str, part_code: str, **changes: Any
) -> None:
    # One carriage line per part, in the order of the parts: amend the one of this tax code.
    lines = sandbox.orderwise.order(m.external_reference)["lines"]
    numbers = [x["itemNumber"] for x in lines if x["variantCode"] == carriage]
    position = [p.tax_code for p in m.shipping].index(part_code)
    sandbox.orderwise.amend_line(
        m.external_reference, carriage, item_number=numbers[position], **changes
    )


def _voucher_dropped(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    for line in m.lines:
        if line.discount and line.quantity == 1:
            code = line.sku  # identity SKUs in the study
            sandbox.orderwise.amend_line(m.external_reference, code, item_gross=_major(line.base))


def _quantity(sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random) -> None:
    line = m.lines[0]
    code = line.sku  # identity SKUs in the study
    sandbox.orderwise.amend_line(m.external_reference, code, quantity=line.quantity + 1)


def _line_removed(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    line = m.lines[-1]
    code = line.sku  # identity SKUs in the study
    sandbox.orderwise.remove_line(m.external_reference, code)


def _duplicate(sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random) -> None:
    connector.orderwise.create_sales_order(m.to_orderwise())


def _cancelled_after_despatch(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    sandbox.orderwise.despatch(m.external_reference, consignment=f"CN-{m.order_id}")
    sandbox.scayle.cancel_order(m.order_id)


def _cancelled_in_erp(
    sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random
) -> None:
    sandbox.orderwise.cancel_order(m.external_reference)


def _currency(sandbox: Sandbox, connector: Connector, m: MappedOrder, rng: random.Random) -> None:
    sandbox.orderwise.amend_delivery(m.external_reference, currency="EUR")


def _has_single_unit(mapped: MappedOrder) -> bool:
    return any(x.quantity == 1 and x.gross > 0 for x in mapped.lines)


def _has_voucher_on_single_units(mapped: MappedOrder) -> bool:
    return (
        mapped.voucher_applied > 0
        and not mapped.voucher_in_item_prices
        and all(x.quantity == 1 for x in mapped.lines if x.discount)
        and any(x.discount for x in mapped.lines)
    )


def _has_delivery(mapped: MappedOrder) -> bool:
    return bool(mapped.shipping)


def _has_taxed_delivery_or_zero(mapped: MappedOrder) -> bool:
    return bool(mapped.shipping) and len({p.tax_code for p in mapped.shipping}) == len(
        mapped.shipping
    )


def _several_lines(mapped: MappedOrder) -> bool:
    return len(mapped.lines) > 1


KINDS: tuple[PlantKind, ...] = (
    PlantKind("line price edited", Reason.TOTAL_MISMATCH, _has_single_unit, _price_change),
    PlantKind("a penny off a price", Reason.TOTAL_MISMATCH, _has_single_unit, _penny_cut),
    PlantKind(
        "line booked under another VAT code",
        Reason.TAX_MISMATCH,
        lambda m: any(x.gross > 0 and x.tax_code in ("T1", "T0") for x in m.lines),
        _line_vat_code,
    ),
    PlantKind(
        "delivery booked under another VAT code",
        Reason.TAX_MISMATCH,
        _has_taxed_delivery_or_zero,
        _delivery_vat_code,
    ),
    PlantKind("delivery charge edited", Reason.SHIPPING_MISMATCH, _has_delivery, _delivery_charge),
    PlantKind(
        "voucher dropped", Reason.DISCOUNT_MISMATCH, _has_voucher_on_single_units, _voucher_dropped
    ),
    PlantKind("quantity changed", Reason.LINE_SET_MISMATCH, _any, _quantity),
    PlantKind("line deleted", Reason.LINE_SET_MISMATCH, _several_lines, _line_removed),
    PlantKind("posted twice", Reason.DUPLICATE_IN_ERP, _any, _duplicate),
    PlantKind(
        "cancelled in SCAYLE after despatch",
        Reason.CANCELLED_AFTER_DESPATCH,
        _any,
        _cancelled_after_despatch,
    ),
    PlantKind("cancelled in OrderWise only", Reason.STATUS_MISMATCH, _any, _cancelled_in_erp),
    PlantKind("booked in another currency", Reason.CURRENCY_MISMATCH, _any, _currency),
)
"""The kinds of fault the study plants (two more, missing and unknown orders, need no order)."""


def plant(
    sandbox: Sandbox,
    connector: Connector,
    mapped: list[MappedOrder],
    *,
    per_kind: int,
    rng: random.Random,
) -> list[Plant]:
    """Plant ``per_kind`` faults of every kind on distinct orders; returns what was planted."""
    free = list(mapped)
    rng.shuffle(free)
    plants: list[Plant] = []
    for kind in KINDS:
        chosen = [m for m in free if kind.applies(m)][:per_kind]
        for m in chosen:
            free.remove(m)
            kind.apply(sandbox, connector, m, rng)
            plants.append(Plant(kind.name, m.external_reference, kind.expected))
    return plants


@attrs.frozen
class StudyScore:
    """What the report found: per kind ``(planted, found with the right reason, found with
    another reason)``, and the exceptions raised on untouched orders."""

    planted: int
    right: int
    wrong: int
    by_kind: dict[str, tuple[int, int, int]]
    untouched: int
    false_alarms: int
    explained_untouched: int

    @property
    def recall(self) -> float:
        """Share of the planted faults found with the expected reason."""
        return self.right / self.planted if self.planted else 1.0

    @property
    def missed(self) -> int:
        """Planted faults the report did not flag at all."""
        return self.planted - self.right - self.wrong

    def table(self) -> str:
        """The score as a Markdown table (kind, planted, right reason, other reason, missed)."""
        out = [
            "| Planted fault | Planted | Right reason | Other reason | Missed |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for kind, (n, right, wrong) in self.by_kind.items():
            out.append(f"| {kind} | {n} | {right} | {wrong} | {n - right - wrong} |")
        out.append(
            f"| **all kinds** | {self.planted} | {self.right} | {self.wrong} | {self.missed} |"
        )
        return "\n".join(out)


def score(report: ReconciliationReport, plants: list[Plant], references: set[str]) -> StudyScore:
    """Score ``report`` against ``plants``; ``references`` are every order of the study."""
    found: dict[str, set[Reason]] = {}
    for exc in report.exceptions:
        if exc.tier is not Tier.AUTO_ACCEPT:
            found.setdefault(exc.reference, set()).add(exc.reason)
    explained = {e.reference for e in report.exceptions if e.tier is Tier.AUTO_ACCEPT}
    by_kind: dict[str, list[int]] = {}
    right = wrong = 0
    for p in plants:
        acc = by_kind.setdefault(p.kind, [0, 0, 0])
        acc[0] += 1
        reasons = found.get(p.reference, set())
        if p.expected in reasons:
            acc[1] += 1
            right += 1
        elif reasons:
            acc[2] += 1
            wrong += 1
    touched = {p.reference for p in plants}
    untouched = references - touched
    return StudyScore(
        planted=len(plants),
        right=right,
        wrong=wrong,
        by_kind={k: (v[0], v[1], v[2]) for k, v in by_kind.items()},
        untouched=len(untouched),
        false_alarms=sum(1 for ref in untouched if ref in found),
        explained_untouched=sum(1 for ref in untouched if ref in explained),
    )


def run_study(*, orders: int = 300, per_kind: int = 6, seed: int = 0) -> StudyScore:
    """Push ``orders`` random UK baskets through the sandbox, plant every kind, reconcile, score.

    Also plants ``per_kind`` SCAYLE orders never pushed (``missing_in_erp``) and ``per_kind``
    OrderWise orders keyed by hand under a reference SCAYLE does not know (``unknown_in_shop``).
    """
    from ..connector import Connector
    from ..sandbox import Sandbox

    rng = random.Random(seed)
    sandbox = Sandbox(seed=seed)
    stock_sandbox(sandbox)
    baskets = uk_baskets(orders, seed=seed)
    for order in baskets:
        sandbox.scayle.add_order(order)
    connector = Connector.for_sandbox(sandbox)
    connector.sync_orders()
    mapped = [connector.mapper.map(order) for order in baskets]
    plants = plant(sandbox, connector, mapped, per_kind=per_kind, rng=rng)
    late = uk_baskets(per_kind, seed=seed + 1, first_id=orders + 1)
    for order in late:  # confirmed in SCAYLE, never pushed: missing in OrderWise
        sandbox.scayle.add_order(order)
        reference = connector.mapper.external_reference(order["id"])
        plants.append(Plant("never pushed", reference, Reason.MISSING_IN_ERP))
    for n, m in enumerate(mapped[:per_kind]):  # keyed by hand under an unknown reference
        body = m.to_orderwise()
        reference = connector.mapper.external_reference(10_000_000 + n)
        header = body.order_header.model_copy(update={"e_commerce_order_number": reference})
        connector.orderwise.create_sales_order(body.model_copy(update={"order_header": header}))
        plants.append(Plant("keyed by hand in OrderWise", reference, Reason.UNKNOWN_IN_SHOP))
    report = connector.reconcile()
    references = {m.external_reference for m in mapped} | {p.reference for p in plants}
    return score(report, plants, references)
