"""Every failure of the ``scayle-orderwise`` command as one ``error:`` line and an exit code.

:class:`CommandGroup` is the command's root group. It runs the command and turns whatever escapes
into one line on standard error, so that every command (also ones added later) behaves alike:

* exit 2: bad configuration or input (a usage error, a :class:`~scayle_orderwise.errors.ConfigError`,
  an optional dependency that is not installed);
* exit 1: the command ran but could not finish (any other
  :class:`~scayle_orderwise.errors.ConnectorError`, e.g. an unreachable ledger, or an unexpected error);
* exit 130: interrupted.

Every message is redacted before it is printed: the secrets set in the environment and anything that
looks like a DSN password are masked. ``--debug`` (see :func:`set_debug`) lets the exception through
with its traceback instead.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

import typer
from rich.console import Console
from typer.core import TyperGroup

from ._cli_help import tidy_help
from .config import SECRET_FIELDS
from .errors import ConfigError, ConnectorError
from .redaction import Redactor, dsn_redactor, scrub_dsns

__all__ = ["CommandGroup", "err_console", "fail", "redact_for_output", "set_debug"]

err_console = Console(stderr=True, soft_wrap=True)
"""Standard error: error lines, notices and progress (never wrapped mid-word)."""

_DEBUG_KEY = "scayle_orderwise_debug"


def redact_for_output(text: str) -> str:
    """``text`` without the secrets of the environment and without DSN passwords."""
    redactor = Redactor()
    for section, names in SECRET_FIELDS.items():
        for name in names:
            redactor.add(os.environ.get(f"SCAYLE_ORDERWISE_{section.upper()}__{name.upper()}"))
    store_url = os.environ.get("SCAYLE_ORDERWISE_STORE__URL")
    if store_url:
        text = dsn_redactor(store_url)(text)
    return scrub_dsns(redactor(text))


def print_error(message: str) -> None:
    """One ``error:`` line on standard error (redacted, on one line, printed as it is: no markup)."""
    line = re.sub(r"\s*\n\s*", " ", redact_for_output(message).strip())
    err_console.print("[bold red]error:[/] ", end="", highlight=False)
    err_console.print(line, markup=False, highlight=False)


def fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` and return the :class:`typer.Exit` to raise (``raise fail(...)``)."""
    print_error(message)
    return typer.Exit(code)


def set_debug(ctx: typer.Context, debug: bool) -> None:
    """Remember ``--debug`` for this run: errors then show their traceback."""
    if isinstance(ctx.obj, dict):
        ctx.obj[_DEBUG_KEY] = debug


def _describe(exc: BaseException) -> tuple[str, int]:
    """The one line and the exit code for an exception that escaped a command."""
    if isinstance(exc, ConfigError):
        return str(exc), 2
    if isinstance(exc, ConnectorError):
        return f"{exc}", 1
    if isinstance(exc, ImportError):
        missing = exc.name or str(exc)
        return (
            f"a module this command needs is not installed ({missing}); "
            "for a PostgreSQL ledger: pip install 'scayle-orderwise[postgres]'",
            2,
        )
    if isinstance(exc, OSError) and exc.filename is not None:
        return f"{exc.filename}: {exc.strerror or exc}", 2
    detail = f": {exc}" if str(exc) else ""
    return (f"unexpected {type(exc).__name__}{detail} (run with --debug for the traceback)", 1)


class CommandGroup(TyperGroup):
    """The root group: tidy help, and one ``error:`` line for anything a command lets escape."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        tidy_help(self)
        obj = extra.setdefault("obj", {})
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except typer.Abort:
            self._exit(130, "interrupted")
        except typer.exceptions.TyperException as exc:  # click's usage and parameter errors
            if type(exc).__name__ == "NoArgsIsHelpError":  # the help was printed already
                sys.exit(getattr(exc, "exit_code", 2))
            format_message = getattr(exc, "format_message", None)
            message = format_message() if callable(format_message) else str(exc)
            context = getattr(exc, "ctx", None)
            if context is not None:
                message += f" (see '{context.command_path} --help')"
            self._exit(getattr(exc, "exit_code", 2), message)
        except Exception as exc:
            if isinstance(obj, dict) and obj.get(_DEBUG_KEY):
                raise
            message, status = _describe(exc)
            self._exit(status, message)
        sys.exit(code if isinstance(code, int) else 0)

    @staticmethod
    def _exit(code: int, message: str) -> NoReturn:
        print_error(message)
        sys.exit(code)
