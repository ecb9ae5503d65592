"""Auto-rollback in a stage with ``promoters``: the rollback is a promotion like any other there, so Ferry
merges it only once a promoter approved it (a merge without approval would be held, not deployed)."""

from __future__ import annotations

from dataclasses import replace

from test_command_runner import NEW, OLDER, snapshot
from test_history import _build, _failed_dev, entry, views

from bot.core.actions import MergePromotion, PostComment
from bot.core.approvals import PullReviews, Review
from bot.core.auto_rollback import auto_rollback_actions
from bot.core.ledger import TASK_BASELINE
from bot.core.promotion import branch_name
from bot.core.snapshot import PullRequest, Snapshot

HEAD = "r" * 40


def _rollback_open_in_guarded_dev(*reviews: Review) -> Snapshot:
    ledger = (entry("dev", OLDER, "verified", 1, TASK_BASELINE), entry("dev", NEW, "failed", 3))
    snap = _failed_dev(replace(snapshot(), ledger=ledger))
    assert snap.config is not None
    stages = dict(snap.config.stages)
    stages["dev"] = stages["dev"].model_copy(update={"promoters": ["rita"], "auto_merge": True})
    snap = replace(snap, config=snap.config.model_copy(update={"stages": stages}))
    built = _build(snap)("dev", OLDER, "")
    pull = PullRequest(
        9,
        "https://gh/pull/9",
        branch_name("dev", OLDER.id),
        "dev",
        OLDER.id,
        HEAD,
        "Roll back dev",
        built.body,
    )
    approvals = {9: PullReviews(9, HEAD, "ferry[bot]", reviews, frozenset({"rita"}))}
    return replace(snap, open_prs=(pull,), approvals=approvals)


def test_an_auto_rollback_in_a_stage_with_promoters_waits_for_a_promoters_approval() -> None:
    snap = _rollback_open_in_guarded_dev()
    actions, merges = auto_rollback_actions(snap, views(snap), _build(snap))
    assert merges == []
    comment = next(a for a in actions if isinstance(a, PostComment))
    assert "once @rita approves it" in comment.body


def test_an_approved_auto_rollback_in_a_stage_with_promoters_is_merged() -> None:
    snap = _rollback_open_in_guarded_dev(Review("rita", "APPROVED", HEAD))
    _, merges = auto_rollback_actions(snap, views(snap), _build(snap))
    assert merges == [MergePromotion(9, "dev", HEAD, "Roll back dev")]
