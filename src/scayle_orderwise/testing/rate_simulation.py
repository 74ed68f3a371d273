"""A discrete-event simulation of workers calling a rate-limited SCAYLE scope (for rate budgets).

The server counts arrivals in fixed windows that start with the first call after the last window
ended (as SCAYLE and the sandbox do), answers 429 past the limit and sends ``X-RateLimit-*``
headers (``Reset`` rounded up to whole seconds). Each worker calls in a loop: ask its budget, wait
if told to, send (the call arrives ``0..latency`` later), read the answer (``0..latency`` later),
and go again. Time is simulated, so minutes of traffic run in milliseconds::

    clock = [0.0]
    ledger = MemoryRateLedger()
    budgets = [SharedRateBudget(ledger, clock=lambda: clock[0]) for _ in range(8)]
    outcome = simulate(budgets, limit=300, window=60.0, duration=300, latency=0.1, seed=1,
                       clock=clock)
    assert outcome.refused == 0
"""

from __future__ import annotations

import heapq
import math
import random
from collections.abc import Callable

import attrs

from .._http import RateBudget

__all__ = ["SCOPE", "FixedWindowServer", "Outcome", "simulate"]

SCOPE = "ordersWrite"


class FixedWindowServer:
    """SCAYLE's counting for one scope: a window opens with the first call after the last ended."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.start: float | None = None
        self.count = 0
        self.accepted = 0
        self.refused = 0

    def arrive(self, now: float) -> tuple[int, dict[str, str]]:
        """Count a call arriving at ``now``: its status (200 or 429) and rate-limit headers."""
        if self.start is None or now >= self.start + self.window:
            self.start, self.count = now, 0
        reset = max(0, math.ceil(self.start + self.window - now))
        if self.count >= self.limit:
            self.refused += 1
            status = 429
        else:
            self.count += 1
            self.accepted += 1
            status = 200
        return status, {
            "x-ratelimit-scope": SCOPE,
            "x-ratelimit-limit": str(self.limit),
            "x-ratelimit-remaining": str(self.limit - self.count),
            "x-ratelimit-reset": str(reset),
        }


@attrs.frozen
class Outcome:
    """Calls the server accepted and refused (429), and what the workers could have had at best
    (the limit's share of the time, or what their latency allows, whichever is less)."""

    accepted: int
    refused: int
    feasible: float


def simulate(
    budgets: list[RateBudget],
    *,
    limit: int,
    window: float,
    duration: float,
    latency: float,
    seed: int,
    clock: list[float],
    think: float = 0.025,
) -> Outcome:
    """Run one worker per entry of ``budgets`` (entries may repeat: threads sharing a budget).

    ``clock`` is the one-element list the budgets read their time from.
    """
    rng = random.Random(seed)
    server = FixedWindowServer(limit, window)
    queue: list[tuple[float, int, Callable[[], None]]] = []
    counter = [0]

    def later(at: float, action: Callable[[], None]) -> None:
        counter[0] += 1
        heapq.heappush(queue, (at, counter[0], action))

    def worker(budget: RateBudget) -> Callable[[], None]:
        def ask() -> None:
            wait, tracked = budget.reserve_tracked(SCOPE)  # as the HTTP core asks
            if wait > 0:
                later(clock[0] + wait, ask)
                return

            def arrive() -> None:
                status, headers = server.arrive(clock[0])

                def answer() -> None:
                    budget.update(headers, SCOPE)
                    if status == 429:
                        budget.exhaust(SCOPE, float(headers["x-ratelimit-reset"]))
                    if tracked:
                        budget.release(SCOPE)
                    later(clock[0] + rng.uniform(0, think), ask)

                later(clock[0] + rng.uniform(0, latency), answer)

            later(clock[0] + rng.uniform(0, latency), arrive)

        return ask

    for budget in budgets:
        later(rng.uniform(0, 1.0), worker(budget))
    while queue:
        at, _, action = heapq.heappop(queue)
        if at > duration:
            break
        clock[0] = at
        action()
    per_worker = duration / (latency + think / 2 + 1e-3)
    feasible = min(len(budgets) * per_worker, limit * duration / window)
    return Outcome(server.accepted, server.refused, feasible)
