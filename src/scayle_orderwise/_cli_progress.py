"""What the ``scayle-orderwise`` command shows while it works: rows read, hosts that do not answer.

:func:`reading_progress` counts the orders a reconciliation reads from each system, one tick per
order, on standard error. :func:`host_notices` prints a line each time a request to SCAYLE or
OrderWise fails and is retried (a host that is down, a timeout, a 5xx, a 429), so a command waiting
on its retries is never silent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .redaction import scrub_dsns

__all__ = ["host_notices", "reading_progress"]

HTTP_LOGGER = "scayle_orderwise.http"
_SIDES = {"scayle": "SCAYLE orders read", "orderwise": "OrderWise orders read"}


@contextmanager
def reading_progress(console: Console) -> Iterator[Callable[[str], None]]:
    """A live count of orders read per system; yields the callback to call once per order."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<24}"),
        TextColumn("{task.completed:>8,.0f}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    ) as progress:
        tasks = {side: progress.add_task(label, total=None) for side, label in _SIDES.items()}

        def tick(side: str) -> None:
            task = tasks.get(side)
            if task is not None:
                progress.advance(task)

        yield tick


class _RetryNotice(logging.Handler):
    """Turns the HTTP core's retry log records into one readable line each.

    ``forward_from``: records at or above this level also go on to the parent loggers' handlers, as
    they would without the notice (the logger's level is lowered to INFO only for the notices).
    """

    def __init__(self, console: Console, forward_from: int | None) -> None:
        super().__init__(logging.INFO)
        self.console = console
        self.forward_from = forward_from

    def emit(self, record: logging.LogRecord) -> None:
        if self.forward_from is not None and record.levelno >= self.forward_from:
            parent = logging.getLogger(HTTP_LOGGER).parent
            if parent is not None:
                parent.handle(record)
        args = record.args if isinstance(record.args, tuple) else ()
        if "retry" not in str(record.msg) or len(args) != 3:
            return
        service, attempt, error = args
        line = f"note: {service} did not answer as hoped: {error}; trying again (retry {attempt})"
        self.console.print(scrub_dsns(line), markup=False, highlight=False)


@contextmanager
def host_notices(console: Console) -> Iterator[None]:
    """Print a line on ``console`` for every retried request while the block runs.

    When the operator's logging already shows the retries (``--log-level info`` or lower), the log
    lines are enough and nothing is added.
    """
    logger = logging.getLogger(HTTP_LOGGER)
    if logger.isEnabledFor(logging.INFO) and logging.getLogger().handlers:
        yield
        return
    level, propagate = logger.level, logger.propagate
    forward_from = None
    if not logger.isEnabledFor(logging.INFO):
        # Lower the level for the notices only: what the operator's logging did not show before
        # must not reach it now, so propagation stops and the notice forwards the rest.
        forward_from = logger.getEffectiveLevel()
        logger.setLevel(logging.INFO)
        logger.propagate = False
    handler = _RetryNotice(console, forward_from)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate
