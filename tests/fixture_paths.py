"""Where the SCAYLE SDK fixtures live, and what happens when they are absent.

The fixtures are SCAYLE's own SDK request and response examples, kept outside the repository in
``shared/fixtures/scayle-sdk`` beside it (``../shared``), or wherever
``SCAYLE_ORDERWISE_SDK_FIXTURES`` points. Tests that need them call :func:`sdk_fixtures` (or
:func:`sdk_files`), which skips with the reason when they are absent; CI sets
``SCAYLE_ORDERWISE_REQUIRE_FIXTURES=1`` so that they fail instead.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

SDK_FIXTURES_ENV = "SCAYLE_ORDERWISE_SDK_FIXTURES"
REQUIRE_FIXTURES_ENV = "SCAYLE_ORDERWISE_REQUIRE_FIXTURES"
_BESIDE_THE_REPOSITORY = (
    Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "scayle-sdk"
)


def _find() -> Path | None:
    configured = os.environ.get(SDK_FIXTURES_ENV)
    candidate = Path(configured) if configured else _BESIDE_THE_REPOSITORY
    return candidate if candidate.is_dir() else None


FOUND: Path | None = _find()
"""The SDK fixture folder, or ``None`` when it is absent."""


def sdk_fixtures() -> Path:
    """The SDK fixture folder; skips the test (fails when required) when it is absent."""
    if FOUND is not None:
        return FOUND
    where = os.environ.get(SDK_FIXTURES_ENV) or str(_BESIDE_THE_REPOSITORY)
    reason = (
        f"SCAYLE SDK fixtures not found at {where}: put shared/ beside the repository "
        f"or set {SDK_FIXTURES_ENV}"
    )
    if os.environ.get(REQUIRE_FIXTURES_ENV):
        pytest.fail(f"{reason} ({REQUIRE_FIXTURES_ENV} is set)")
    pytest.skip(reason)


def sdk_files(suffix: str) -> list[Any]:
    """The fixture files ending in ``suffix`` (also under ``java/``) as test parameters.

    Without the fixtures there is one parameter, ``None``, whose test skips through
    :func:`sdk_fixtures`.
    """
    if FOUND is None:
        return [pytest.param(None, id="sdk-fixtures-absent")]
    found = sorted([*FOUND.glob(f"*{suffix}"), *(FOUND / "java").glob(f"*{suffix}")])
    return [pytest.param(p, id=str(p.relative_to(FOUND))) for p in found]


class _FixtureRoot:
    """``SDK_FIXTURES / "name"`` is the fixture's path, or a skip (a failure when required)."""

    def __truediv__(self, name: str) -> Path:
        return sdk_fixtures() / name

    def __repr__(self) -> str:
        return f"SDK_FIXTURES({FOUND or 'absent'})"


SDK_FIXTURES = _FixtureRoot()
"""Join names onto it like a folder: ``SDK_FIXTURES / "OrderGetResponse.json"``."""
