"""The compare-and-swap decisions (``bot.core.guards``): whether a write decided on a snapshot still stands
against the one fact it depends on, re-read right before it."""

from __future__ import annotations

import pytest

from bot.core.freight import Freight, FreightImage
from bot.core.guards import branch_rebuild, deploy_still_newest, may_close, status_write, sync_stands
from bot.core.promotion import commit_message
from bot.core.snapshot import CommitStatus

PENDING = CommitStatus("ferry/health/dev", "pending", "Asking Argo CD to deploy abc1234")
FREIGHT = Freight("shop", (FreightImage("ghcr.io/acme/web", "1.5.0"),))
SUCCESS = CommitStatus("ferry/health/dev", "success", "verified: healthy at abc1234")


@pytest.mark.parametrize(
    ("relation", "stands"),
    [("same", True), ("equivalent", True), ("moved_on", False), ("behind", False), ("diverged", False)],
)
def test_a_sync_stands_only_while_the_head_is_the_deploy_commit_or_leaves_the_stage_files_alone(
    relation: str, stands: bool
) -> None:
    assert deploy_still_newest(relation) is stands  # type: ignore[arg-type]


def test_a_verdict_written_since_the_decision_is_never_overwritten_by_an_older_pending() -> None:
    assert status_write(None, SUCCESS, "pending", PENDING.description) == "stale"
    assert status_write(PENDING, SUCCESS, "pending", "Pending: waiting for shop-dev") == "stale"


def test_a_status_is_written_when_nothing_changed_since_the_decision_and_not_again_when_already_there() -> (
    None
):
    assert status_write(None, None, "pending", PENDING.description) == "write"
    assert status_write(PENDING, PENDING, "success", SUCCESS.description) == "write"
    assert status_write(PENDING, SUCCESS, "success", SUCCESS.description) == "done"


def test_only_an_open_unmerged_promotion_is_closed() -> None:
    assert may_close("open", merged=False)
    assert not may_close("closed", merged=True)
    assert not may_close("closed", merged=False)


def test_a_branch_is_rebuilt_only_over_ferrys_own_head_as_the_decision_saw_it() -> None:
    ferrys = commit_message("dev", FREIGHT)
    assert branch_rebuild("dev", "a" * 40, "a" * 40, ferrys) == "rebuild"
    assert branch_rebuild("dev", "a" * 40, "b" * 40, ferrys) == "moved"  # another replica rebuilt it
    assert branch_rebuild("dev", "a" * 40, None, "") == "moved"  # deleted
    assert branch_rebuild("dev", "a" * 40, "b" * 40, "Pin replicas\n") == "foreign"
    assert branch_rebuild("dev", "a" * 40, "a" * 40, "Pin replicas\n") == "foreign"
    assert branch_rebuild("staging", "a" * 40, "a" * 40, ferrys) == "foreign"


def test_a_commit_is_synced_only_while_its_verification_is_under_way() -> None:
    assert sync_stands(None)  # verification not begun: its pending is written first
    assert sync_stands(CommitStatus("ferry/health/dev", "pending", "Syncing shop-dev to 1a2b3c4"))
    for verdict in ("success", "failure", "error"):
        assert not sync_stands(CommitStatus("ferry/health/dev", verdict, "decided"))
