"""`ferry/config` warns when the default branch does not require `ferry/gate`; branch protection is read
through the GitHub stand-in, whose 403 without ``administration: read`` (optional) is said, not failed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from github_standin_helpers import (
    ferry_repo,  # noqa: F401 - the ``repo`` fixture
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)
from test_decide import snapshot

from bot.core.actions import SetStatus
from bot.core.config_review import config_verdict
from bot.core.decide import decide
from bot.github.repo import RepoGitHub
from bot.github.reviews import ReviewReader, gate_protection
from bot.observe_approvals import observe_gate_rule
from bot.sandbox.github_standin import GitHubStandIn

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


async def test_protection_reads_as_forbidden_unprotected_missing_or_required(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    assert (await gate_protection(repo, "main")).state == "forbidden"  # 403: no administration: read
    standin.set_app_permissions({"contents": "write", "pull_requests": "write", "administration": "read"})
    assert (await gate_protection(repo, "main")).state == "unprotected"  # 404 "Branch not protected"
    reader = ReviewReader(repo)
    standin.set_branch_protection("main", contexts=["ci"])
    assert await reader.gate_rule("main", NOW) == "missing"
    standin.set_branch_protection("main", contexts=["ci", "ferry/gate"])
    assert await reader.gate_rule("main", NOW + timedelta(minutes=1)) == "missing"  # read again only later
    assert await reader.gate_rule("main", NOW + timedelta(minutes=11)) == "required"


async def test_a_config_change_reads_protection_again_at_once(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    standin.set_app_permissions({"contents": "write", "administration": "read"})
    standin.set_branch_protection("main", contexts=["ci"])
    assert await observe_gate_rule(repo, "main", NOW, "c1" * 20) == "missing"
    standin.set_branch_protection("main", contexts=["ferry/gate"])
    assert await observe_gate_rule(repo, "main", NOW, "c1" * 20) == "missing"
    assert await observe_gate_rule(repo, "main", NOW, "c2" * 20) == "required"


def test_a_valid_config_warns_when_the_gate_is_not_required_and_stays_a_success() -> None:
    config = snapshot().config
    valid = "Valid: 1 warehouse(s), stages dev → staging → prod"
    assert config_verdict(config, (), gate_rule="required") == ("success", valid)
    assert config_verdict(config, (), gate_rule="missing", branch="trunk") == (
        "success",
        f"{valid}; warning: trunk does not require ferry/gate",
    )
    assert config_verdict(config, (), gate_rule="unprotected") == (
        "success",
        f"{valid}; warning: main is not protected, so ferry/gate is not required",
    )
    state, description = config_verdict(config, (), gate_rule="forbidden") or ("", "")
    assert state == "success" and "(optional administration: read)" in description and len(description) <= 140


def test_the_default_branchs_ferry_config_status_carries_the_warning() -> None:
    [config_status] = [
        a
        for a in decide(snapshot(gate_rule="missing"))
        if isinstance(a, SetStatus) and a.context == "ferry/config"
    ]
    assert config_status.state == "success"
    assert config_status.description.endswith("; warning: main does not require ferry/gate")
