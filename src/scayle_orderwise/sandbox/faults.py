"""Fault injection for the sandbox fakes: 5xx, timeouts before/after commit, 429 and crashes."""

from __future__ import annotations

import random
import threading
from collections import Counter
from enum import StrEnum

import attrs

__all__ = ["FaultInjector", "FaultKind", "Faults", "SimulatedCrash"]


class SimulatedCrash(BaseException):  # the name (no "Error" suffix) is public API
    """Raised after the server committed, to emulate the worker process dying mid-call.

    A ``BaseException`` so that ordinary ``except Exception`` handlers in flows do not swallow it,
    exactly as a real process death would not be "handled".
    """


class FaultKind(StrEnum):
    """The kinds of fault the sandbox can inject."""

    ERROR = "error"  # 5xx answer, nothing committed
    TIMEOUT_BEFORE = "timeout_before"  # timeout, nothing committed
    TIMEOUT_AFTER_COMMIT = "timeout_after_commit"  # committed, but the client sees a timeout
    RATE_LIMIT = "rate_limit"  # 429 with X-RateLimit-Reset, nothing committed
    CRASH_AFTER_COMMIT = "crash_after_commit"  # committed, then SimulatedCrash is raised


def _rate(value: float) -> float:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"fault rates are probabilities between 0 and 1, got {value}")
    return value


@attrs.frozen
class Faults:
    """Probabilities (0..1) of each fault per eligible request. ``Faults()`` turns faults off.

    Before-commit faults (``error_rate``, ``timeout_before_rate``, ``rate_limit_rate``) apply to any
    request; after-commit faults (``timeout_after_commit_rate``, ``crash_after_commit_rate``) apply to
    requests that change state (POST, PUT, PATCH, DELETE). ``seed`` makes the draws reproducible.
    ``paths`` narrows the faults to requests whose path contains one of these fragments (e.g.
    ``("sales/order",)`` to fail the create but not the lookup before it); empty: every request.
    """

    error_rate: float = attrs.field(default=0.0, converter=_rate)
    timeout_before_rate: float = attrs.field(default=0.0, converter=_rate)
    timeout_after_commit_rate: float = attrs.field(default=0.0, converter=_rate)
    rate_limit_rate: float = attrs.field(default=0.0, converter=_rate)
    crash_after_commit_rate: float = attrs.field(default=0.0, converter=_rate)
    seed: int | None = None
    paths: tuple[str, ...] = attrs.field(default=(), converter=tuple)

    def applies_to(self, path: str) -> bool:
        """Whether faults may hit a request to ``path``."""
        return not self.paths or any(fragment in path for fragment in self.paths)

    @property
    def enabled(self) -> bool:
        """True when any rate is above zero."""
        return any(
            (
                self.error_rate,
                self.timeout_before_rate,
                self.timeout_after_commit_rate,
                self.rate_limit_rate,
                self.crash_after_commit_rate,
            )
        )


class FaultInjector:
    """Draws faults for one fake server; thread-safe, deterministic for a seed, counts what it injected."""

    def __init__(self, faults: Faults, seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._base_seed = seed
        self.injected: Counter[FaultKind] = Counter()
        self.faults = faults

    @property
    def faults(self) -> Faults:
        """The fault settings in force; may be reassigned at any time."""
        return self._faults

    @faults.setter
    def faults(self, value: Faults) -> None:
        with self._lock:
            self._faults = value
            self._random = random.Random(value.seed if value.seed is not None else self._base_seed)

    def before_commit(self, path: str = "") -> FaultKind | None:
        """Draw a fault that happens before the server does anything (or ``None``)."""
        with self._lock:
            f = self._faults
            if not f.enabled or not f.applies_to(path):
                return None
            for kind, rate in (
                (FaultKind.ERROR, f.error_rate),
                (FaultKind.TIMEOUT_BEFORE, f.timeout_before_rate),
                (FaultKind.RATE_LIMIT, f.rate_limit_rate),
            ):
                if rate and self._random.random() < rate:
                    self.injected[kind] += 1
                    return kind
            return None

    def after_commit(self, path: str = "") -> FaultKind | None:
        """Draw a fault that happens after the server committed a change (or ``None``)."""
        with self._lock:
            f = self._faults
            if not f.enabled or not f.applies_to(path):
                return None
            for kind, rate in (
                (FaultKind.TIMEOUT_AFTER_COMMIT, f.timeout_after_commit_rate),
                (FaultKind.CRASH_AFTER_COMMIT, f.crash_after_commit_rate),
            ):
                if rate and self._random.random() < rate:
                    self.injected[kind] += 1
                    return kind
            return None
