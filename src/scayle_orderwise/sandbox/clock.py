"""Clocks for the sandbox: a virtual one (sleeping advances time instantly) and the real one."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

__all__ = ["RealClock", "SandboxClock", "VirtualClock"]


class SandboxClock:
    """Interface shared by the clocks: ``monotonic()``, ``sleep()``, ``async_sleep()``, ``utcnow()``."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        raise NotImplementedError

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        raise NotImplementedError

    async def async_sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        raise NotImplementedError

    def utcnow(self) -> datetime:
        """The current wall-clock time (timezone-aware, UTC)."""
        raise NotImplementedError


class RealClock(SandboxClock):
    """The real time: ``time.monotonic``, ``time.sleep``, ``datetime.now(UTC)``."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale."""
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds``."""
        time.sleep(max(0.0, seconds))

    async def async_sleep(self, seconds: float) -> None:
        """Wait ``seconds`` without blocking the event loop."""
        await asyncio.sleep(max(0.0, seconds))

    def utcnow(self) -> datetime:
        """The current wall-clock time (UTC)."""
        return datetime.now(UTC)


class VirtualClock(SandboxClock):
    """Real time plus skipped sleeps: sleeping advances the clock at once instead of waiting.

    Clients built by the sandbox sleep on this clock, so backoffs and rate-limit waits cost no real
    time while the fakes still see time pass (rate-limit windows reset, timestamps move on).
    Thread-safe. By default time also flows with the real clock (so timestamps stay close to what
    the code under test sees as "now"); ``frozen=True`` makes time move only by :meth:`sleep` and
    :meth:`advance` (monotonic starts at 0, wall time at ``wall_start``), for exact pacing tests.
    """

    def __init__(self, *, frozen: bool = False, wall_start: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0
        self._frozen = frozen
        self._wall_start = wall_start or datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
        self.slept: list[float] = []
        """Every sleep requested on this clock, in seconds."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (real monotonic time + skipped sleeps, or virtual only)."""
        with self._lock:
            return self._offset if self._frozen else time.monotonic() + self._offset

    def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``."""
        with self._lock:
            self._offset += max(0.0, seconds)

    def sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` at once (and remember the sleep in :attr:`slept`)."""
        with self._lock:
            self._offset += max(0.0, seconds)
            self.slept.append(seconds)

    async def async_sleep(self, seconds: float) -> None:
        """Advance time by ``seconds`` and yield to the event loop once."""
        self.sleep(seconds)
        await asyncio.sleep(0)

    def utcnow(self) -> datetime:
        """The wall-clock time: real now (or ``wall_start`` when frozen) plus skipped sleeps."""
        with self._lock:
            base = self._wall_start if self._frozen else datetime.now(UTC)
            return base + timedelta(seconds=self._offset)
