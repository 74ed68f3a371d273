"""The layering contract in ``pyproject.toml``, its page in the docs, and that it really refuses.

``lint-imports`` runs in CI against the real tree; these tests make sure the contract is worth
running: it names every package, the architecture page lists the same layers in the same order,
and an import that reaches up (or from one flow into another) breaks it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "src" / "scayle_orderwise"


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _layers() -> list[list[str]]:
    (layers,) = [c for c in _contracts() if c["type"] == "layers"]
    rows = layers["layers"]
    assert isinstance(rows, list)
    return [[name.strip() for name in re.split(r"[|:]", row)] for row in rows]


def test_every_top_level_module_has_a_layer() -> None:
    placed = {name for row in _layers() for name in row}
    present = {
        path.stem if path.is_file() else path.name
        for path in PACKAGE.iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists())
    }
    assert present == placed


def test_architecture_page_lists_the_contract_layers_in_order() -> None:
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    listed = re.findall(r"^    - `scayle_orderwise\.([a-z_]+)`:", page, flags=re.MULTILINE)
    assert listed == [name for row in _layers() for name in row]
    for name in listed:
        (line,) = [
            ln for ln in page.splitlines() if ln.startswith(f"    - `scayle_orderwise.{name}`:")
        ]
        assert len(line.split(":", 1)[1].strip()) > 20, f"{name} needs its sentence"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    lint = shutil.which("lint-imports", path=os.path.dirname(sys.executable)) or shutil.which(
        "lint-imports"
    )
    if lint is None:
        pytest.skip("lint-imports is not installed (pip install -e '.[dev]')")
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    return subprocess.run(
        [lint, "--no-cache"], cwd=tree, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def tree_copy(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "src" / "scayle_orderwise")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_tree_keeps_the_contract(tree_copy: Path) -> None:
    result = _lint(tree_copy)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "upward", "broken"),
    [
        ("money.py", "from scayle_orderwise.connector import Connector", "Layers"),
        ("mapping/__init__.py", "import scayle_orderwise.store", "Layers"),
        ("sync/inventory.py", "from scayle_orderwise.sync.orders import OrderSync", "Flows"),
    ],
)
def test_an_import_that_reaches_up_breaks_the_contract(
    tree_copy: Path, module: str, upward: str, broken: str
) -> None:
    target = tree_copy / "src" / "scayle_orderwise" / module
    target.write_text(
        target.read_text(encoding="utf-8") + f"\n{upward}  # noqa\n", encoding="utf-8"
    )
    result = _lint(tree_copy)
    assert result.returncode != 0
    assert re.search(rf"^{broken}\b.* BROKEN$", result.stdout, flags=re.MULTILINE), result.stdout
