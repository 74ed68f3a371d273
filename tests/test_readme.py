"""The README's commands and snippet do what it says, as a newcomer runs them (issue 15 B1, B2)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _python_snippet() -> str:
    (snippet,) = re.findall(r"```python\n(.*?)```", README, flags=re.DOTALL)
    return snippet


def test_the_snippet_prints_what_its_comments_say_on_every_run(tmp_path: Path) -> None:
    script = tmp_path / "snippet.py"
    script.write_text(_python_snippet(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCAYLE_ORDERWISE_")}
    runs = [
        subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=env,
            timeout=60,
        )
        for _ in range(2)
    ]
    for run in runs:
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines() == [
            "orders: discovered=1, pushed=1",
            "acknowledged",
            "SCAYLE-1001",
        ]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["snippet.py"]  # nothing left in the cwd


def test_the_readme_names_the_test_command_and_the_variables_it_reads() -> None:
    assert re.search(r"^python -m pytest$", README, flags=re.MULTILINE)  # .ci/run runs this line
    assert "SCAYLE_ORDERWISE_STORE__URL" in README
    assert "SCAYLE_ORDERWISE_TEST_PG_DSN" not in README
