"""Approvals guard the merge into a stage with ``promoters``: which approvals count, what the gate says,
and what happens to a merge nobody entitled approved (pure: snapshots built by hand)."""

from __future__ import annotations

from test_decide import NEW, snapshot

from bot.command_views import render_status
from bot.core.actions import PostComment, RequestSync, SetStatus
from bot.core.approvals import PullReviews, Review, approval_gate, approvers, merge_approved
from bot.core.argo_app import AppState
from bot.core.decide import decide
from bot.core.gates import Gate
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion

HEAD, OLD = "h" * 40, "0" * 40
TEAM = ["@acme/release-managers"]
UPSTREAM_OK = Gate("success", "web 1.5.0 is verified in staging")


def pull(*reviews: Review, promoters: tuple[str, ...] = ("rita",), merged_by: str = "") -> PullReviews:
    return PullReviews(12, HEAD, "ferry[bot]", reviews, frozenset(promoters), merged_by)


def test_a_promoters_approval_of_the_head_opens_the_gate() -> None:
    gate = approval_gate(UPSTREAM_OK, TEAM, pull(Review("rita", "APPROVED", HEAD)))
    assert gate.state == "success"
    assert gate.description.startswith("Approved by @rita; web 1.5.0 is verified in staging")


def test_without_an_approval_the_gate_waits_and_names_who_may_approve() -> None:
    gate = approval_gate(UPSTREAM_OK, TEAM, pull())
    assert gate.state == "pending"
    assert gate.description == (
        "Waiting for an approving review from @acme/release-managers; web 1.5.0 is verified in staging"
    )


def test_an_approval_by_a_bot_does_not_count() -> None:
    bot = Review("renovate[bot]", "APPROVED", HEAD, bot=True)
    assert approvers(pull(bot, promoters=("renovate[bot]",))) == []
    assert approval_gate(UPSTREAM_OK, TEAM, pull(bot)).state == "pending"


def test_an_approval_by_the_pull_requests_author_does_not_count() -> None:
    own = PullReviews(
        12, HEAD, "rita", (Review("rita", "APPROVED", HEAD, via="/approve"),), frozenset({"rita"})
    )
    assert approvers(own) == []
    assert approval_gate(UPSTREAM_OK, TEAM, own).state == "pending"


def test_an_approval_of_an_earlier_commit_is_stale_and_said_so() -> None:
    gate = approval_gate(UPSTREAM_OK, TEAM, pull(Review("rita", "APPROVED", OLD)))
    assert gate.state == "pending"
    assert "(@rita approved an earlier commit)" in gate.description


def test_a_dismissed_approval_and_one_followed_by_requested_changes_do_not_count() -> None:
    assert approvers(pull(Review("rita", "DISMISSED", HEAD))) == []
    later = pull(Review("rita", "APPROVED", HEAD), Review("rita", "CHANGES_REQUESTED", HEAD))
    assert approvers(later) == []
    comment_after = pull(Review("rita", "APPROVED", HEAD), Review("rita", "COMMENTED", HEAD))
    assert approvers(comment_after) == ["rita"]  # a comment decides nothing


def test_an_approval_by_someone_outside_the_promoters_does_not_count() -> None:
    assert approval_gate(UPSTREAM_OK, TEAM, pull(Review("bob", "APPROVED", HEAD))).state == "pending"


def test_an_upstream_failure_stays_a_failure_and_pending_upstream_waits_for_both() -> None:
    failed = Gate("failure", "web 1.5.0 failed in staging")
    assert approval_gate(failed, TEAM, pull(Review("rita", "APPROVED", HEAD))) == failed
    waiting = approval_gate(Gate("pending", "Waiting: staging does not run web 1.5.0 yet"), TEAM, pull())
    assert waiting.state == "pending" and "staging does not run web 1.5.0 yet" in waiting.description
    approved_early = approval_gate(
        Gate("pending", "Waiting: x"), TEAM, pull(Review("rita", "APPROVED", HEAD))
    )
    assert approved_early.state == "pending"


def test_reviews_not_read_keep_the_gate_closed_and_stages_without_promoters_are_untouched() -> None:
    assert approval_gate(UPSTREAM_OK, TEAM, None).state == "pending"
    assert approval_gate(UPSTREAM_OK, [], None) == UPSTREAM_OK


def _merged_prod(merged_by: str, *reviews: Review, automated: tuple[str, ...] = ()) -> dict[str, object]:
    promotion = MergedPromotion(12, "https://github.com/acme/gitops/pull/12", "prod", NEW.id, HEAD, "m" * 40)
    deploy = Deploy(commit="m" * 40, changed_by=HEAD, promotion=promotion)
    states = tuple(AppState(name, automated=name in automated) for name in ("shop-prod-eu", "shop-prod-us"))
    return {
        "deploys": {"prod": deploy},
        "approvals": {12: pull(*reviews, merged_by=merged_by)},
        "app_states": {"prod": states},
    }


def test_a_merge_by_a_writer_outside_the_promoters_is_not_deployed_and_is_reported() -> None:
    actions = decide(snapshot(**_merged_prod("bob")))
    assert not [a for a in actions if isinstance(a, RequestSync) and a.stage == "prod"]
    [health] = [a for a in actions if isinstance(a, SetStatus) and a.context == "ferry/health/prod"]
    assert health.state == "failure"
    assert health.description == (
        "Not deployed: merged by @bob without an approving review from @acme/release-managers"
    )
    [comment] = [a for a in actions if isinstance(a, PostComment)]
    assert comment.number == 12 and "@bob merged this pull request" in comment.body
    assert (
        "@acme/release-managers" in comment.body
        and "did not ask Argo CD to sync shop-prod-eu" in comment.body
    )


def test_an_unapproved_merge_says_truthfully_that_auto_sync_apps_deploy_on_their_own() -> None:
    actions = decide(snapshot(**_merged_prod("bob", automated=("shop-prod-us",))))
    [health] = [a for a in actions if isinstance(a, SetStatus) and a.context == "ferry/health/prod"]
    assert health.state == "failure" and "shop-prod-us syncs on its own" in health.description
    [comment] = [a for a in actions if isinstance(a, PostComment)]
    assert "shop-prod-us syncs automatically" in comment.body and "Revert the merge" in comment.body
    assert not [a for a in actions if isinstance(a, RequestSync)]


def test_a_merge_a_promoter_approved_or_made_is_deployed() -> None:
    approved = decide(snapshot(**_merged_prod("bob", Review("rita", "APPROVED", HEAD))))
    assert any(isinstance(a, RequestSync) and a.stage == "prod" for a in approved)
    by_promoter = decide(snapshot(**_merged_prod("rita")))
    assert any(isinstance(a, RequestSync) and a.stage == "prod" for a in by_promoter)


def test_a_stale_approval_does_not_let_a_merge_deploy() -> None:
    actions = decide(snapshot(**_merged_prod("bob", Review("rita", "APPROVED", OLD))))
    assert not [a for a in actions if isinstance(a, RequestSync)]
    assert [a.state for a in actions if isinstance(a, SetStatus) and a.context == "ferry/health/prod"] == [
        "failure"
    ]


def test_status_lists_a_merge_held_for_want_of_approval() -> None:
    held = "Not deployed: merged by @bob without an approving review from @acme/release-managers"
    statuses = {"ferry/health/prod": CommitStatus("ferry/health/prod", "failure", held)}
    deploy = Deploy(commit="m" * 40, changed_by=HEAD, statuses=statuses)
    assert f"- **prod** {held}" in render_status(snapshot(deploys={"prod": deploy}))


def test_a_promoter_merging_their_own_pull_request_is_no_approval() -> None:
    own = PullReviews(12, HEAD, "rita", (), frozenset({"rita"}), merged_by="rita")
    assert not merge_approved(own)
    assert merge_approved(PullReviews(12, HEAD, "dora", (), frozenset({"rita"}), merged_by="rita"))
