"""MemoryStore: the conformance suite plus what is specific to the in-memory store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from scayle_orderwise.store import IdempotencyStore, MemoryStore
from scayle_orderwise.store.base import Clock
from scayle_orderwise.testing import ManualClock, StoreConformanceSuite, run_conformance


class TestMemoryStoreConformance(StoreConformanceSuite):
    def make_store(self, clock: Clock) -> IdempotencyStore:
        return MemoryStore(clock=clock)


def test_run_conformance_in_one_call() -> None:
    ran = run_conformance(lambda clock: MemoryStore(clock=clock))
    assert "concurrent_claims" in ran
    assert "persistence" not in ran  # needs reopen_store


def test_run_conformance_names_the_failing_check() -> None:
    class AlwaysWins(MemoryStore):
        """Hands out held records too: must fail the exclusivity check."""

        def claim(self, key, *, owner, lease, now=None):  # type: ignore[no-untyped-def]
            result = super().claim(key, owner=owner, lease=lease, now=now)
            return result if result is not None else self.get(key)

    with pytest.raises(AssertionError, match="claim_exclusive"):
        run_conformance(lambda clock: AlwaysWins(clock=clock), checks=["claim_exclusive"])


def test_payload_is_detached_from_the_caller() -> None:
    store = MemoryStore(clock=ManualClock())
    payload = {"lines": [1, 2]}
    record = store.ensure("order:1", kind="order", subject="1", payload=payload)
    payload["lines"].append(3)
    record.payload["lines"].append(4)
    stored = store.get("order:1")
    assert stored is not None and stored.payload == {"lines": [1, 2]}


def test_repr_is_short() -> None:
    store = MemoryStore()
    store.ensure("order:1", kind="order", subject="1")
    assert repr(store) == "MemoryStore(records=1)"


def test_claim_defaults_to_the_store_clock() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    store.ensure("order:1", kind="order", subject="1")
    record = store.claim("order:1", owner="w1", lease=timedelta(seconds=5))
    assert record is not None and record.lease_expires_at == clock() + timedelta(seconds=5)
