"""The documentation site as people use it (issue 15 B12).

The site is built once with ``mkdocs build --strict``: no raw Sphinx roles in the API reference (they
are links), every link works from a plain folder (``file://``, a file share), the overview diagram is
not cut off at 1400 px in a real headless browser, and ``docs/cli.md`` describes the command as it is.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROLE = re.compile(r":(class|func|meth|mod|data|attr|exc):")


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    built = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    return out


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.links: list[tuple[str, str, str]] = []  # (tag, attribute, value)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.links.append((tag, name, value))


def test_api_reference_has_links_not_raw_roles(site: Path) -> None:
    pages = sorted((site / "reference").glob("*.html"))
    assert len(pages) >= 10
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert not ROLE.search(text), f"raw role left in {page.name}: {ROLE.search(text)}"
    errors = (site / "reference" / "errors.html").read_text(encoding="utf-8")
    assert re.search(
        r'<a class="autorefs autorefs-internal"[^>]*href="[^"]*#scayle_orderwise\.', errors
    )


def test_every_link_works_from_a_plain_folder(site: Path) -> None:
    broken: list[str] = []
    for page in site.rglob("*.html"):
        if page.name == "404.html":
            continue  # served by a web server only, for a missing page
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        for tag, _attr, value in parser.links:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https"):
                # Outbound links are fine; nothing the page needs may come from the network.
                assert tag == "a", f"{page.name} loads {value}"
                continue
            if parts.scheme or not parts.path:
                continue  # mailto:, data:, or a link within the page
            target = (page.parent / unquote(parts.path)).resolve()
            if value.endswith("/") or not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {value}")
    assert not broken, broken[:10]
    assert (site / "search" / "search_index.js").is_file()  # search without a server (offline)


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_overview_diagram_fits_at_1400_px_and_search_works_offline(
    site: Path, tmp_path: Path
) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("needs Debian's chromium (apt-get install -y chromium)")
    page = site / "index.html"
    probe = site / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => { document.title = JSON.stringify("
        "[...document.querySelectorAll('pre')].map(p => [p.scrollWidth, p.clientWidth])); });"
        "</script></body>"
    )
    probe.write_text(page.read_text(encoding="utf-8").replace("</body>", script), "utf-8")
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,1000",
    ]
    dumped = subprocess.run(
        [browser, *flags, "--virtual-time-budget=3000", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    title = re.search(r"<title>(\[.*?\])</title>", dumped.stdout)
    assert title, dumped.stderr[-500:]
    blocks = json.loads(title.group(1))
    assert blocks, "no code block measured"
    scroll, client = blocks[0]  # the overview diagram is the page's first code block
    assert scroll <= client, f"diagram is {scroll}px wide in a {client}px box"
    searched = subprocess.run(
        [
            browser,
            *flags,
            "--virtual-time-budget=8000",
            "--dump-dom",
            page.as_uri() + "?q=quarantine",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert re.search(r"\d+ matching documents", searched.stdout)  # search works over file://
    shot = tmp_path / "index.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", page.as_uri()], capture_output=True, timeout=120
    )
    assert shot.is_file() and shot.stat().st_size > 10_000


def test_cli_page_describes_every_command_and_option() -> None:
    import typer.main

    from scayle_orderwise.cli import app

    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    root = typer.main.get_command(app)
    missing: list[str] = []

    def walk(command: object, path: tuple[str, ...]) -> None:
        for name, sub in getattr(command, "commands", {}).items():
            full = " ".join((*path, name))
            if not hasattr(sub, "commands") and f"scayle-orderwise {full}" not in text:
                missing.append(f"command {full}")
            for param in getattr(sub, "params", []):
                for opt in getattr(param, "opts", []):
                    if opt.startswith("--") and opt not in text:
                        missing.append(f"{full} {opt}")
            walk(sub, (*path, name))

    walk(root, ())
    for opt in ("--version", "--debug"):
        if opt not in text:
            missing.append(opt)
    assert not missing, missing
    assert "created empty" not in text  # the ledger commands refuse a missing ledger
    assert "schema_version" in text and "--check" in text


def _crossrefs() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "docs_crossrefs", ROOT / "tools" / "docs_crossrefs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_roles_become_optional_links_or_code() -> None:
    convert = _crossrefs().convert_roles
    known = {"State": "scayle_orderwise.store.State"}

    def resolve(target: str) -> str | None:
        return known.get(target, target if target.startswith("scayle_orderwise.") else None)

    text = "See :class:`State`, :exc:`~scayle_orderwise.errors.ConfigError` and :meth:`nowhere`."
    out = convert(text, resolve)
    assert '<autoref identifier="scayle_orderwise.store.State" optional><code>State</code>' in out
    assert '<autoref identifier="scayle_orderwise.errors.ConfigError" optional>' in out
    assert "<code>ConfigError</code></autoref>" in out  # ~ shows the last part only
    assert "<code>nowhere</code>" in out and ":meth:" not in out
