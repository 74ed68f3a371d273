"""Test helpers for users of scayle-orderwise.

- :mod:`scayle_orderwise.testing.store_conformance`: the conformance suite every idempotency
  store (a custom one included) must pass: ``run_conformance(factory)`` in one call, or
  subclass ``StoreConformanceSuite`` in pytest for one test per check. ``ManualClock`` drives
  lease expiry without sleeping.
"""

from __future__ import annotations

from .store_conformance import ManualClock, StoreConformanceSuite, run_conformance

__all__ = ["ManualClock", "StoreConformanceSuite", "run_conformance"]
