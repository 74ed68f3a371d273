"""When to run a flow's next pass: :class:`AdaptivePacer` (soon while work flows, seldom while
quiet) and :class:`FixedPacer` (a fixed interval).

A loop that repeats a flow asks its pacer after every pass how long to wait::

    pacer = pacer_for("inventory", settings.inventory)
    while running:
        result = connector.sync_inventory()
        time.sleep(pacer.next_delay(result))      # or: await asyncio.sleep(...)

The pacers also fit :class:`scayle_orderwise.service.FlowScheduler` (its ``Pacer`` takes the flow's
configured interval as a second argument, which these ignore)::

    FlowScheduler(connector, pacers={"inventory": pacer_for("inventory", settings.inventory)})

The stock flow is the one that needs it: a pass that finds nothing costs one OrderWise export
call, and a stock change should reach the shop in seconds. With the defaults it polls every 2 s
while changes flow and backs off by half each quiet pass to 10 s, so a change waits at most about
10 s plus the pass, and a quiet night costs six exports a minute. A failed pass counts as quiet (a
struggling OrderWise is not polled harder), and so does a stock pass whose pushes were only
deferred (a struggling SCAYLE is not pushed to harder). Pacers keep no clock and no thread: one per loop.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Protocol

import attrs

from ..config import InventorySettings
from .context import SyncResult

__all__ = [
    "BUSY_OUTCOMES",
    "DEFAULT_INTERVAL",
    "AdaptivePacer",
    "FixedPacer",
    "Pacer",
    "pacer_for",
]

BUSY_OUTCOMES: dict[str, frozenset[str]] = {
    # not "deferred": a pass whose pushes all failed transiently (SCAYLE down or rate-limited)
    # is retried at a slowing pace, not re-pushed every few seconds
    "inventory": frozenset({"pushed", "stale_rejected", "failed"}),
    "orders": frozenset({"pushed", "adopted", "discovered", "deferred", "references_written"}),
    "fulfilments": frozenset({"shipped", "packages_recorded", "adopted", "deferred"}),
    "cancellations": frozenset(
        {"shop_cancellations_found", "erp_cancellations_found", "deferred", "ambiguous"}
    ),
}
"""Outcomes that mean a pass of the flow found work: the next pass comes soon."""

DEFAULT_INTERVAL = 60.0
"""Seconds between passes of the flows other than stock, unless told otherwise."""


class Pacer(Protocol):
    """Tells a loop how long to wait after a pass (the shape of ``service.scheduler.Pacer``)."""

    def next_delay(self, result: SyncResult | None, interval: float | None = None) -> float:
        """Seconds to wait after the pass that produced ``result`` (``None``: it raised);
        ``interval`` is the loop's own configured interval, if it has one."""
        ...


@attrs.frozen
class FixedPacer:
    """The same wait after every pass."""

    interval: float = attrs.field(validator=attrs.validators.gt(0))

    def next_delay(self, result: SyncResult | None, interval: float | None = None) -> float:
        """``interval``, whatever the pass did (the loop's own interval is ignored)."""
        return self.interval


def _busy_by_outcomes(outcomes: Collection[str]) -> Callable[[SyncResult], bool]:
    def busy(result: SyncResult) -> bool:
        return any(result[name] > 0 for name in outcomes)

    return busy


@attrs.define
class AdaptivePacer:
    """``min_interval`` after a pass that found work, then ``growth`` times longer after each
    quiet (or failed) pass, up to ``max_interval``. ``busy`` decides whether a pass found work
    (default: any count in ``outcomes``)."""

    min_interval: float = attrs.field(default=2.0, validator=attrs.validators.gt(0))
    max_interval: float = attrs.field(default=10.0)
    growth: float = attrs.field(default=1.5, validator=attrs.validators.ge(1))
    outcomes: frozenset[str] = BUSY_OUTCOMES["inventory"]
    busy: Callable[[SyncResult], bool] | None = None
    interval: float = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        if self.max_interval < self.min_interval:
            raise ValueError("max_interval must be at least min_interval")
        self.interval = self.min_interval

    def found_work(self, result: SyncResult | None) -> bool:
        """Whether the pass found work (a failed pass did not)."""
        if result is None or result["failed_pass"] > 0:
            return False
        check = self.busy or _busy_by_outcomes(self.outcomes)
        return check(result)

    def next_delay(self, result: SyncResult | None, interval: float | None = None) -> float:
        """The wait before the next pass (and the pacer's new :attr:`interval`); the loop's own
        ``interval`` is ignored: the bounds are ``min_interval`` and ``max_interval``."""
        if self.found_work(result):
            self.interval = self.min_interval
        else:
            self.interval = min(self.max_interval, self.interval * self.growth)
        return self.interval


def pacer_for(
    flow: str, inventory: InventorySettings | None = None, *, interval: float | None = None
) -> FixedPacer | AdaptivePacer:
    """The pacer a loop over ``flow`` should use: ``interval`` seconds when given; otherwise the
    stock flow adapts between ``inventory.poll_min_seconds`` and ``poll_max_seconds`` and the
    other flows wait :data:`DEFAULT_INTERVAL` seconds."""
    if interval is not None:
        return FixedPacer(interval)
    if flow == "inventory":
        settings = inventory or InventorySettings()
        return AdaptivePacer(
            min_interval=settings.poll_min_seconds,
            max_interval=settings.poll_max_seconds,
            growth=settings.poll_growth,
            outcomes=BUSY_OUTCOMES["inventory"],
        )
    return FixedPacer(DEFAULT_INTERVAL)
