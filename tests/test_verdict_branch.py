"""Verdicts for apps that track a branch: what Argo CD compares to is the branch head, so a later commit that
leaves the stage's files alone still runs the deploy commit's freight (the class of akuity/kargo#2952 and
#2968); one that changes them means the stage moved on. Relations are data the adapters observed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.core.argo_app import AppState, ask_for
from bot.core.text import STATUS_DESCRIPTION_LIMIT
from bot.core.verdict import Observed, app_verdict, stage_verdict

DEPLOY = "d" * 40
README = "a" * 40  # a later commit on main that changed only the README
OTHER_STAGE = "b" * 40  # a later commit that changed another stage's overlay
OWN_FILES = "c" * 40  # a later commit that changed this stage's files
OLDER = "e" * 40
PR_HEAD = "f" * 40
RELATION: dict[str, Any] = {
    README: "equivalent",
    OTHER_STAGE: "equivalent",
    OWN_FILES: "moved_on",
    OLDER: "behind",
    PR_HEAD: "diverged",
}
T0 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=10)


def auto_synced(**changes: Any) -> AppState:
    """An automated app tracking main that auto-sync moved to the deploy commit, then Argo CD re-compared."""
    state = AppState(
        name="shop-dev",
        sync_status="Synced",
        sync_revision=DEPLOY,
        health_status="Healthy",
        operation_phase="Succeeded",
        operation_revision=DEPLOY,
        operation_started_at=T0,
        operation_finished_at=T0 + timedelta(seconds=20),
        reconciled_at=T0 + timedelta(seconds=25),
        automated=True,
        operation_automated=True,
        target_revision="main",
    )
    return replace(state, **changes)


def judge(app: AppState, **options: Any) -> Any:
    return app_verdict(app, DEPLOY, RELATION, default_branch="main", **options)


def stage(apps: list[AppState], *, now: datetime = T0, observed: Observed | None = None) -> Any:
    return stage_verdict(
        apps,
        DEPLOY,
        requested_at=T0,
        now=now,
        timeout=TIMEOUT,
        soak=timedelta(0),
        relation=RELATION,
        default_branch="main",
        observed=observed,
    )


@pytest.mark.parametrize("later", [README, OTHER_STAGE])
def test_a_commit_on_main_during_verification_that_leaves_the_stage_alone_still_verifies(later: str) -> None:
    # Argo CD compares to the new head; nothing it renders changed, so no new sync ran.
    app = auto_synced(sync_revision=later)
    assert judge(app).state == "success"
    assert judge(app).reason == f"Healthy at {later[:7]}"


def test_auto_sync_of_an_equivalent_later_commit_counts_as_applying_the_deploy_commit() -> None:
    # Argo CD first saw the merge at a later head and auto-synced that: same freight.
    assert judge(auto_synced(sync_revision=README, operation_revision=README)).state == "success"


def test_a_commit_on_main_that_changes_the_stage_files_supersedes_never_fails() -> None:
    verdict = stage(
        [auto_synced(sync_revision=OWN_FILES, operation_revision=OWN_FILES)], now=T0 + TIMEOUT * 2
    )
    assert verdict.state == "superseded"
    assert "moved on to ccccccc" in verdict.reason


def test_argo_cd_not_caught_up_is_pending_and_names_both_commits() -> None:
    verdict = judge(auto_synced(sync_revision=OLDER, operation_revision=OLDER))
    assert verdict.state == "pending"
    assert verdict.reason == "Argo CD compares to eeeeeee, which does not contain ddddddd yet"


def test_a_revision_off_the_branch_fails_at_the_timeout_saying_so() -> None:
    app = auto_synced(sync_revision=PR_HEAD, operation_revision=PR_HEAD)
    assert stage([app]).state == "pending"
    verdict = stage([app], now=T0 + TIMEOUT)
    assert verdict.state == "failure"
    assert "which is not on main after ddddddd" in verdict.reason


def test_a_permanently_out_of_sync_healthy_app_verifies_unless_the_stage_requires_synced() -> None:
    app = auto_synced(sync_status="OutOfSync")
    assert judge(app).state == "success"
    required = judge(app, require_synced=True)
    assert required.state == "pending" and "verify.require_synced" in required.reason


def test_a_comparison_error_is_pending_with_its_message_then_fails_naming_the_condition() -> None:
    message = "rpc error: code = Unknown desc = kustomize build overlays/dev failed: missing resource"
    app = auto_synced(conditions=(("ComparisonError", message),))
    pending = stage([app])
    assert pending.state == "pending" and pending.reason.startswith("shop-dev: ComparisonError: rpc error")
    failed = stage([app], now=T0 + TIMEOUT)
    assert failed.state == "failure"
    assert failed.reason.startswith("timed out after 10m waiting for shop-dev: ComparisonError:")
    assert len(failed.reason) <= STATUS_DESCRIPTION_LIMIT


def test_an_invalid_spec_is_judged_like_a_comparison_error() -> None:
    app = auto_synced(
        conditions=(("InvalidSpecError", "Namespace for web apps/v1, Kind=Deployment is missing."),)
    )
    assert stage([app]).reason.startswith("shop-dev: InvalidSpecError: Namespace")


def test_a_sync_window_keeps_the_stage_pending_saying_so_then_fails_at_the_timeout() -> None:
    window = "deny '0 22 * * *' for 1h"
    app = auto_synced(
        sync_revision=README, sync_status="OutOfSync", operation_revision=OLDER, sync_blocked=window
    )
    assert stage([app]).reason == f"shop-dev: blocked by sync window {window}"
    failed = stage([app], now=T0 + TIMEOUT)
    assert failed.state == "failure" and "blocked by sync window deny" in failed.reason


def test_an_app_being_deleted_fails_at_once() -> None:
    verdict = stage([auto_synced(deleting=True)])
    assert verdict.state == "failure"
    assert (
        verdict.reason
        == "shop-dev: is being deleted in Argo CD; recreate it, or remove it from the stage's argocd apps"
    )


def test_a_pinned_app_fails_naming_the_fix() -> None:
    app = auto_synced(
        target_revision="v1.4.0", sync_revision=OLDER, operation_revision=OLDER, automated=False
    )
    verdict = stage([app])
    assert verdict.state == "failure"
    assert (
        "pinned to targetRevision v1.4.0" in verdict.reason and "set it to main (or HEAD)" in verdict.reason
    )
    assert (
        ask_for(app, DEPLOY, RELATION, default_branch="main", promotion_id="p", now=T0, started=False) is None
    )


def test_a_pinned_app_that_runs_the_deploy_commit_is_not_a_failure() -> None:
    assert judge(auto_synced(target_revision=DEPLOY, automated=False)).state == "success"


def test_progressing_until_the_progress_deadline_is_pending() -> None:
    waiting = "Deployment/web: Waiting for rollout to finish: 0 of 1 updated replicas are available..."
    app = auto_synced(health_status="Progressing", unhealthy_resources=(waiting,))
    assert stage([app], now=T0 + timedelta(minutes=9)).state == "pending"
    deadline = 'Deployment/web: Deployment "web" exceeded its progress deadline'
    degraded = auto_synced(health_status="Degraded", unhealthy_resources=(deadline,))
    assert stage([degraded]).state == "failure"


def test_a_stage_ferry_did_not_deploy_says_what_runs_there() -> None:
    verdict = stage([auto_synced(sync_revision=README)], observed=Observed("web 1.4.0"))
    assert verdict == verdict.__class__(
        "success", "shop-dev runs web 1.4.0 at aaaaaaa (not deployed by Ferry)"
    )


def test_a_stage_ferry_did_not_deploy_fails_at_the_timeout_with_the_reason() -> None:
    app = auto_synced(automated=False, sync_revision=OLDER, operation_revision=OLDER)
    verdict = stage([app], now=T0 + TIMEOUT, observed=Observed("web 1.4.0"))
    assert verdict.state == "failure"
    assert verdict.reason.startswith(
        "not deployed by Ferry: timed out after 10m waiting for shop-dev: Argo CD"
    )


# --- what Ferry asks -----------------------------------------------------------------------------


def ask(app: AppState, *, started: bool = False, by_ferry: bool = True, now: datetime = T0) -> Any:
    return ask_for(
        app,
        DEPLOY,
        RELATION,
        default_branch="main",
        promotion_id="dev/dddddddddddd",
        now=now,
        started=started,
        deployed_by_ferry=by_ferry,
    )


def test_an_automated_app_is_refreshed_and_a_manual_one_synced_never_with_a_revision() -> None:
    behind = auto_synced(sync_revision=OLDER, operation_revision=OLDER)
    assert ask(behind).mode == "refresh"
    assert ask(replace(behind, automated=False)).mode == "sync"


def test_a_stale_status_asks_for_a_hard_refresh() -> None:
    stale = auto_synced(reconciled_at=T0 + timedelta(seconds=10))
    refresh = ask(stale, started=True, now=T0 + timedelta(minutes=1))
    assert (refresh.mode, refresh.hard) == ("refresh", True)


def test_once_started_an_app_that_caught_up_is_asked_nothing_and_one_behind_only_now_and_then() -> None:
    assert ask(auto_synced(), started=True, now=T0 + timedelta(minutes=1)) is None
    behind = auto_synced(sync_revision=OLDER, operation_revision=OLDER)
    assert ask(behind, started=True, now=T0 + timedelta(seconds=30)) is None  # reconciled 5 s ago
    assert ask(behind, started=True, now=T0 + timedelta(seconds=40)).mode == "refresh"


def test_first_contact_refreshes_an_automated_app_and_never_syncs_a_manual_one() -> None:
    behind = auto_synced(sync_revision=OLDER, operation_revision=OLDER)
    later = T0 + timedelta(minutes=1)
    assert ask(behind, by_ferry=False, now=later).mode == "refresh"
    assert ask(replace(behind, automated=False), by_ferry=False, now=later) is None
    assert ask(auto_synced(), by_ferry=False, now=later) is None  # caught up: nothing to ask


def test_our_own_finished_sync_is_not_repeated_for_a_manual_app() -> None:
    ours = auto_synced(
        automated=False,
        sync_revision=OLDER,
        operation_revision=OLDER,
        operation_phase="Failed",
        operation_infos={"ferry.promotion": "dev/dddddddddddd"},
    )
    assert ask(ours, started=True, now=T0 + timedelta(minutes=1)) is None
    assert ask(replace(ours, operation_infos={}), started=True, now=T0 + timedelta(minutes=1)).mode == "sync"


def test_a_degraded_app_names_what_its_pods_say_first() -> None:
    pods = ('Pod/web-7d9f: Back-off pulling image "ghcr.io/acme/web:1.5.1" (ImagePullBackOff)',)
    deadline = 'Deployment/web: Deployment "web" exceeded its progress deadline'
    app = auto_synced(health_status="Degraded", unhealthy_resources=(deadline,), pod_problems=pods)
    verdict = stage([app])
    assert verdict.state == "failure"
    assert verdict.reason.startswith("shop-dev: Degraded: Pod/web-7d9f: Back-off pulling image")
    assert "ImagePullBackOff" in verdict.reason
    progressing = auto_synced(health_status="Progressing", unhealthy_resources=(deadline,), pod_problems=pods)
    assert "ImagePullBackOff" in stage([progressing]).reason  # said while still pending, before the deadline


def test_a_manual_app_blocked_by_a_sync_window_is_not_asked_again_until_the_window_closes() -> None:
    blocked = auto_synced(automated=False, sync_revision=OLDER, operation_revision=OLDER, sync_blocked="deny")
    later = T0 + timedelta(minutes=1)
    assert ask(blocked, started=True, now=later) is None
    assert ask(replace(blocked, sync_blocked=None), started=True, now=later).mode == "sync"


def test_a_manual_app_whose_sync_argo_cd_has_not_re_compared_is_asked_for_a_hard_refresh() -> None:
    # Our sync of the deploy commit Succeeded, but Argo CD has not compared since (its post-operation
    # refresh is queued): it still compares to an older head and its health may predate the sync.
    synced = auto_synced(
        automated=False,
        operation_automated=False,
        sync_revision=OLDER,
        sync_status="OutOfSync",
        reconciled_at=T0 + timedelta(seconds=10),
        operation_infos={"ferry.promotion": "dev/dddddddddddd"},
    )
    refresh = ask(synced, started=True, now=T0 + timedelta(minutes=1))
    assert (refresh.mode, refresh.hard) == ("refresh", True)
    assert ask(synced, started=True, now=T0 + timedelta(seconds=15)) is None  # at most every 10 s
    assert (
        ask(
            replace(
                synced, sync_revision=DEPLOY, sync_status="Synced", reconciled_at=T0 + timedelta(seconds=25)
            ),
            started=True,
            now=T0 + timedelta(minutes=1),
        )
        is None
    )  # fresh: nothing


def test_an_automated_app_whose_auto_sync_did_not_start_says_why() -> None:
    # Argo CD records why autoSync skipped the compared revision as a SyncError condition
    # (controller/appcontroller.go autoSync); the stage waits with that reason, then fails naming it.
    why = f"Skipping sync attempt to [{DEPLOY}]: auto-sync will wipe out all resources"
    app = auto_synced(sync_status="OutOfSync", operation_revision=OLDER, conditions=(("SyncError", why),))
    pending = stage([app])
    assert (pending.state, pending.reason) == ("pending", f"shop-dev: SyncError: {why}")
    late = stage([app], now=T0 + TIMEOUT)
    assert late.state == "failure" and "SyncError: Skipping sync attempt" in late.reason
