"""Help text of the ``scayle-orderwise`` command in the usual Unix style.

Typer labels every parameter with its Python type (``--json <bool>``, ``<list[str]>``) and writes a
required argument as ``{subject}`` but an optional one as ``[order_ids]...``. :func:`tidy_help`
walks the command tree once and makes the help read as people expect: flags without a type,
arguments in capitals (``SUBJECT``, ``[ORDER_ID]...``) with their choices in their help text.
"""

from __future__ import annotations

from typing import Any

import typer
from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["tidy_help"]

_TIDIED = "_scayle_orderwise_tidied"


def _argument_name(param: TyperArgument) -> str:
    return (param.metavar or (param.name or "value").upper()).removesuffix("...")


def _tidy_argument(param: TyperArgument) -> None:
    name = _argument_name(param)
    many = param.nargs != 1
    usage = name if param.required else f"[{name}]"
    usage += "..." if many else ""
    label = name + ("..." if many else "")
    param.metavar = label  # the name column of the help; "..." marks an argument taking many
    param._usage_display_name = lambda: usage  # type: ignore[method-assign]
    param._rich_display_name = lambda: label  # type: ignore[method-assign]
    param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]


def _tidy_option(param: TyperOption) -> None:
    if param.is_flag:
        param.display_type_rich = lambda ctx: None  # type: ignore[method-assign]
        return
    default_type = param.display_type_rich

    def display_type_rich(ctx: Any) -> str | None:
        shown = default_type(ctx)
        return "TEXT" if shown == "<str>" else shown

    param.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _tidy_command(command: Any) -> None:
    if getattr(command, _TIDIED, False):
        return
    setattr(command, _TIDIED, True)
    params = list(command.params)
    help_option = command.get_help_option(typer.Context(command))
    if help_option is not None:
        params.append(help_option)
    for param in params:
        if isinstance(param, TyperArgument):
            _tidy_argument(param)
        elif isinstance(param, TyperOption):
            _tidy_option(param)
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            _tidy_command(sub)


def tidy_help(root: TyperGroup) -> None:
    """Make the help of ``root`` and every command under it read in the usual style (idempotent)."""
    _tidy_command(root)
