"""Where the SCAYLE SDK fixtures live: ``shared/`` beside the repository (as in CI and sessions)."""

from __future__ import annotations

import os
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
_CANDIDATES = [
    Path(os.environ["SCAYLE_ORDERWISE_SDK_FIXTURES"])
    if "SCAYLE_ORDERWISE_SDK_FIXTURES" in os.environ
    else None,
    _ROOT.parent / "shared" / "fixtures" / "scayle-sdk",
    Path("/work/shared/fixtures/scayle-sdk"),
]
SDK_FIXTURES = next((p for p in _CANDIDATES if p is not None and p.is_dir()), _CANDIDATES[1])
"""The SDK fixture folder; tests that read it fail (not skip) when it is missing."""
