"""Shared test fixtures. Real payloads and API descriptions come from ../shared/contracts/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from github_openapi import ENV, PACKAGE, GitHubDescription, description_path

REPO_ROOT = Path(__file__).resolve().parent.parent
CONTRACTS = REPO_ROOT.parent / "shared" / "contracts"


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    if not CONTRACTS.is_dir():
        pytest.fail(f"the contracts folder {CONTRACTS} is missing: tests are built on it")
    return CONTRACTS


@pytest.fixture(scope="session")
def github_description() -> GitHubDescription:
    """GitHub's published OpenAPI description; skipped where it is absent, a failure in CI."""
    path = description_path()
    if path is None:
        reason = (
            f"GitHub's OpenAPI description is absent: set {ENV} to {PACKAGE}'s generated/api.github.com.json "
            f"(.ci/run installs it: npm install --prefix <cache> {PACKAGE})"
        )
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return GitHubDescription(path)
