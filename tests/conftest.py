"""Shared test fixtures. Payloads and API descriptions live in tests/fixtures/ (see its README.md)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from github_openapi import ENV, PACKAGE, GitHubDescription, description_path

REPO_ROOT = Path(__file__).resolve().parent.parent
FIXTURES = REPO_ROOT / "tests" / "fixtures"


@pytest.fixture(scope="session")
def contracts_dir() -> Path:
    """The folder of recorded shapes: ``github-webhooks/`` and ``argocd/``."""
    return FIXTURES


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
