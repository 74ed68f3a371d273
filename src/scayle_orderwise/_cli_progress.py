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
    """Turns the HTTP core's retry log records into one readable line each."""

    def __init__(self, console: Console) -> None:
        super().__init__(logging.INFO)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args if isinstance(record.args, tuple) else ()
        if "retry" not in str(record.msg) or len(args) != 3:
            return
        service, attempt, error = args
        line = f"note: {service} did not answer as hoped: {error}; trying again (retry {attempt})"
        self.console.print(scrub_dsns(line), markup=False, highlight=False)


@contextmanager
def host_notices(console: Console) -> Iterator[None]:
    """Print a line on ``console`` for every retried request while the block runs."""
    logger = logging.getLogger(HTTP_LOGGER)
    handler = _RetryNotice(console)
    level = logger.level
    if not logger.isEnabledFor(logging.INFO):
        logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
