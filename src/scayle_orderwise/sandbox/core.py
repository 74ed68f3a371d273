"""``Sandbox``: both fakes, shared fault settings and a shared clock, plus ready-made clients."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from .._http import RateBudget, RetryPolicy
from .clock import SandboxClock, VirtualClock
from .faults import FaultInjector, Faults
from .orderwise import OrderwiseSandbox
from .scayle import ScayleSandbox

if TYPE_CHECKING:
    from ..orderwise.client import AsyncOrderwiseClient, OrderwiseClient
    from ..scayle.client import AsyncScayleClient, ScayleClient

__all__ = ["Sandbox"]


class Sandbox:
    """Faithful in-process fakes of SCAYLE (:attr:`scayle`) and OrderWise (:attr:`orderwise`).

    ``Sandbox(seed=0, faults=Faults(...))``. Thread-safe (each fake guards its state with one lock)
    and deterministic for a seed (fault draws, generated ids and keys). :attr:`faults` may be
    reassigned at any time; ``Faults()`` turns faults off.

    The clients made by :meth:`scayle_client` & co. sleep on :attr:`clock`, a
    :class:`~scayle_orderwise.sandbox.clock.VirtualClock` by default: retries, backoffs and
    rate-limit waits advance the clock instead of waiting, so fault-heavy tests stay fast. Pass
    ``clock=RealClock()`` to wait for real (as the loopback server does).

    ``scayle_options`` / ``orderwise_options`` are passed to the fakes' constructors (e.g.
    ``scayle_options={"rate_limits": {"stocksWrite": 50}, "company_ids": [1]}``).
    """

    def __init__(
        self,
        seed: int = 0,
        faults: Faults | None = None,
        *,
        clock: SandboxClock | None = None,
        scayle_options: Mapping[str, Any] | None = None,
        orderwise_options: Mapping[str, Any] | None = None,
    ) -> None:
        self.seed = seed
        self.clock: SandboxClock = clock or VirtualClock()
        initial = faults or Faults()
        self._scayle_injector = FaultInjector(initial, seed=seed)
        self._orderwise_injector = FaultInjector(initial, seed=seed + 1)
        self.scayle = ScayleSandbox(
            self._scayle_injector, seed=seed, clock=self.clock, **dict(scayle_options or {})
        )
        self.orderwise = OrderwiseSandbox(
            self._orderwise_injector, seed=seed, clock=self.clock, **dict(orderwise_options or {})
        )
        self.scayle_budget = RateBudget(clock=self.clock.monotonic)
        """Rate budget shared by every SCAYLE client this sandbox makes (as workers of one app)."""
        self._jitter = random.Random(seed)

    def __repr__(self) -> str:
        return f"Sandbox(seed={self.seed}, faults={self.faults!r})"

    @property
    def faults(self) -> Faults:
        """The fault settings of both fakes; assign a new :class:`Faults` at any time."""
        return self._scayle_injector.faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        self._scayle_injector.faults = value
        self._orderwise_injector.faults = value

    @property
    def injected(self) -> dict[str, int]:
        """How many faults of each kind were injected so far, over both fakes."""
        total: dict[str, int] = {}
        for injector in (self._scayle_injector, self._orderwise_injector):
            for kind, count in injector.injected.items():
                total[str(kind)] = total.get(str(kind), 0) + count
        return total

    def retry_policy(self, **changes: Any) -> RetryPolicy:
        """The retry policy of the sandbox's clients: sleeps on :attr:`clock`, seeded jitter."""
        policy = RetryPolicy(
            sleep=self.clock.sleep,
            async_sleep=self.clock.async_sleep,
            random=self._jitter.random,
        )
        return policy.with_(**changes) if changes else policy

    # -- ready clients ------------------------------------------------------------------------------

    def _policy_for(self, overrides: Mapping[str, Any]) -> RetryPolicy:
        if "max_retries" in overrides:
            return self.retry_policy(max_retries=overrides["max_retries"])
        return self.retry_policy()

    def _scayle_kwargs(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "transport": self.scayle.transport,
            "shop_key": self.scayle.shop_key,
            "country_code": self.scayle.country_code,
            "retry": self._policy_for(overrides),
            "budget": self.scayle_budget,
        }
        kwargs.update(overrides)
        return kwargs

    def scayle_client(self, **overrides: Any) -> ScayleClient:
        """A :class:`~scayle_orderwise.scayle.client.ScayleClient` wired to the SCAYLE fake.

        Keyword ``overrides`` go to the constructor (e.g. ``max_retries=0``, ``company_id=7``).
        """
        from ..scayle.client import ScayleClient

        return ScayleClient(
            self.scayle.base_url,
            self.scayle.token,
            **self._scayle_kwargs(overrides),
        )

    def async_scayle_client(self, **overrides: Any) -> AsyncScayleClient:
        """An :class:`~scayle_orderwise.scayle.client.AsyncScayleClient` wired to the SCAYLE fake."""
        from ..scayle.client import AsyncScayleClient

        return AsyncScayleClient(
            self.scayle.base_url,
            self.scayle.token,
            **self._scayle_kwargs(overrides),
        )

    def _orderwise_kwargs(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "transport": self.orderwise.transport,
            "session_id": self.orderwise.session_id,
            "export_definitions": self.orderwise.export_definitions,
            "retry": self._policy_for(overrides),
            "monotonic": self.clock.monotonic,
        }
        if self.orderwise.cancel_enabled:
            kwargs["cancel_endpoint"] = self.orderwise.cancel_path
        kwargs.update(overrides)
        return kwargs

    def orderwise_client(self, **overrides: Any) -> OrderwiseClient:
        """An :class:`~scayle_orderwise.orderwise.client.OrderwiseClient` wired to the OrderWise fake."""
        from ..orderwise.client import OrderwiseClient

        return OrderwiseClient(
            self.orderwise.api_root,
            self.orderwise.username,
            self.orderwise.password,
            **self._orderwise_kwargs(overrides),
        )

    def async_orderwise_client(self, **overrides: Any) -> AsyncOrderwiseClient:
        """An :class:`~scayle_orderwise.orderwise.client.AsyncOrderwiseClient` for the OrderWise fake."""
        from ..orderwise.client import AsyncOrderwiseClient

        return AsyncOrderwiseClient(
            self.orderwise.api_root,
            self.orderwise.username,
            self.orderwise.password,
            **self._orderwise_kwargs(overrides),
        )
