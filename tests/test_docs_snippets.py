"""Worked examples in the docs run as printed: each Python block followed by a ``text`` block of its
output is executed in a fresh process and must print exactly that output."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_FENCE = re.compile(r"^```(?P<lang>\w*)\n(?P<body>.*?)^```$", re.S | re.M)


def _worked_example(page: str, marker: str) -> tuple[str, str]:
    """The Python block of ``page`` holding ``marker`` and the ``text`` block right after it."""
    blocks = [(m["lang"], m["body"]) for m in _FENCE.finditer((DOCS / page).read_text("utf-8"))]
    for (lang, code), (next_lang, output) in itertools.pairwise(blocks):
        if lang == "python" and marker in code and next_lang == "text":
            return code, output
    raise AssertionError(f"{page}: no Python block with {marker!r} followed by its output")


@pytest.mark.parametrize(
    ("page", "marker"),
    [
        ("guides/cutover.md", "def preflight"),
        ("guides/sandbox.md", "session_interval"),
    ],
)
def test_worked_example_prints_what_the_page_says(page: str, marker: str, tmp_path: Path) -> None:
    code, expected = _worked_example(page, marker)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    run = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout == expected
