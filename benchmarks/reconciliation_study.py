"""Planted-discrepancy study: how many planted faults the reconciliation names, and false alarms.

    python benchmarks/reconciliation_study.py [--quick] [--orders N] [--per-kind K] [--seed S]

Random UK fashion baskets (``scayle_orderwise.testing.baskets``: 60 % mixed VAT rates, delivery on
every order, some vouchers and sales) go through the sandbox with default settings; then every
kind of fault of ``scayle_orderwise.testing.planted.KINDS`` is planted on ``K`` orders of its own
(plus ``K`` orders never pushed and ``K`` keyed by hand in OrderWise) and ``Connector.reconcile()``
runs over the month. Printed: per kind, how many were planted, found with the expected reason,
found with another reason, missed; and the false alarms (an exception above ``auto_accept`` on an
untouched order). Targets: every plant found with its reason, no false alarm.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from scayle_orderwise.testing.planted import run_study


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 orders, 4 of each kind")
    parser.add_argument("--orders", type=int, default=None)
    parser.add_argument("--per-kind", type=int, default=None)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    orders = args.orders or (300 if args.quick else 2_100)
    per_kind = args.per_kind or (4 if args.quick else 60)
    start = time.perf_counter()
    score = run_study(orders=orders, per_kind=per_kind, seed=args.seed)
    seconds = time.perf_counter() - start
    print(
        f"{orders:,} orders (seed {args.seed}), {score.planted:,} planted, "
        f"{score.untouched:,} untouched; {seconds:.1f} s\n"
    )
    print(score.table())
    print(
        f"\nrecall with the right reason: {score.recall:.1%}; found under another reason: "
        f"{score.wrong}; missed: {score.missed}; false alarms: {score.false_alarms}; "
        f"rounding explained on untouched orders: {score.explained_untouched}"
    )
    ok = score.recall == 1.0 and score.false_alarms == 0
    print("all targets hold" if ok else "FAIL: a target does not hold")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
