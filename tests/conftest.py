"""Shared test fixtures. Real payloads and API descriptions come from ../shared/contracts/."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = REPO_ROOT.parent / "shared" / "contracts"


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    if not CONTRACTS.is_dir():
        pytest.fail(f"the contracts folder {CONTRACTS} is missing: tests are built on it")
    return CONTRACTS
