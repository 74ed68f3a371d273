"""A griffe extension for the API reference: Sphinx cross-reference roles in docstrings become links.

The library's docstrings refer to other objects the Sphinx way (``:class:`~scayle_orderwise.store.State```,
``:meth:`reserve```, ``:mod:`.sync.orders```), which mkdocstrings would print as raw text. When
mkdocstrings loads the package, this extension resolves each role in the scope of the docstring it
appears in (as Python would resolve the name there; a leading ``.`` is relative to the module's
package) and replaces it with an optional autorefs link: a link where the object is documented on
some page, plain code where it is not. ``~`` shows only the last part of the name, as in Sphinx.

Used from ``mkdocs.yml`` (``handlers.python.options.extensions``).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import griffe

ROLE = re.compile(
    r":(?:py:)?(?P<role>class|func|meth|mod|data|attr|exc|obj|const):`(?P<target>[^`]+)`"
)


def convert_roles(text: str, resolve: Callable[[str], str | None]) -> str:
    """``text`` with every role replaced by a link (resolved) or by code (not resolvable).

    ``resolve`` turns a written target (``~`` already removed) into a full dotted path, or ``None``.
    """

    def replace(match: re.Match[str]) -> str:
        written = match["target"].strip()
        short = written.startswith("~")
        target = written.lstrip("~!")
        title = target.rsplit(".", 1)[-1] if short else target.lstrip(".")
        code = f"<code>{html.escape(title)}</code>"
        path = resolve(target)
        if path is None:
            return code
        return f'<autoref identifier="{html.escape(path)}" optional>{code}</autoref>'

    return ROLE.sub(replace, text)


def _relative(module: Any, target: str) -> str:
    """A ``.name`` target resolved against the module's package, as a relative import would."""
    dots = len(target) - len(target.lstrip("."))
    package = module.path if module.is_init_module else module.parent.path
    parts = package.split(".")
    if dots > 1:
        parts = parts[: len(parts) - (dots - 1)]
    return ".".join([*parts, target.lstrip(".")])


class SphinxRoles(griffe.Extension):
    """Rewrites the roles in every docstring of a package once it is loaded."""

    def on_package(self, *, pkg: griffe.Module, loader: griffe.GriffeLoader, **kwargs: Any) -> None:
        collection = loader.modules_collection

        def exists(path: str) -> bool:
            try:
                collection[path]
            except (KeyError, ValueError, griffe.AliasResolutionError):
                return False
            return True

        def visit(obj: griffe.Object) -> None:
            def resolve(target: str) -> str | None:
                if target.startswith("."):
                    path = _relative(obj.module, target)
                    return path if exists(path) else None
                first, _, rest = target.partition(".")
                try:
                    base = obj.resolve(first)
                except griffe.NameResolutionError:
                    base = first
                path = f"{base}.{rest}" if rest else base
                if exists(path):
                    return path
                # Outside the package (``decimal.Decimal``): an optional link costs nothing.
                return path if "." in path and not path.startswith(pkg.name + ".") else None

            if obj.docstring is not None:
                obj.docstring.value = convert_roles(obj.docstring.value, resolve)
            for member in obj.members.values():
                if not member.is_alias:
                    visit(member)  # type: ignore[arg-type]

        visit(pkg)
