"""Verdict rules, one by one, on Argo CD Application objects (tests/fixtures/argocd/) and made-up states."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.argocd_state import app_state_from_application
from bot.core.argo_app import AppState, same_revision
from bot.core.text import STATUS_DESCRIPTION_LIMIT
from bot.core.verdict import app_verdict, format_duration, stage_verdict

CONTRACT_SHA = "2011efc948a207c52267cb635d39dd9f452bf6e0"  # application-newer-revision.json: its operation's
COMPARED = "c0ffee5"  # ...and the newer commit Argo CD compared to
DEPLOY = "1f3c0d2e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
OLDER = "0a0b0c0d0e0f101112131415161718191a1b1c1d"
T0 = datetime(2025, 3, 1, 10, 0, 0, tzinfo=UTC)
TIMEOUT = timedelta(minutes=15)


def load(contracts_dir: Path, name: str) -> dict[str, Any]:
    data = YAML(typ="safe").load((contracts_dir / "argocd" / name).read_text())
    assert isinstance(data, dict)
    return data


def healthy(name: str = "web-dev", **changes: Any) -> AppState:
    """A stage app that Argo CD synced to DEPLOY at T0+30s and re-assessed afterwards."""
    state = AppState(
        name=name,
        sync_status="Synced",
        sync_revision=DEPLOY,
        health_status="Healthy",
        health_message=None,
        operation_phase="Succeeded",
        operation_revision=DEPLOY,
        operation_infos={"ferry.promotion": "p1"},
        operation_started_at=T0,
        operation_finished_at=T0 + timedelta(seconds=30),
        operation_message="successfully synced (all tasks run)",
        reconciled_at=T0 + timedelta(seconds=31),
        unhealthy_resources=(),
    )
    return replace(state, **changes)


def stage(apps: list[AppState], *, now: datetime, soak: timedelta = timedelta(0)) -> Any:
    return stage_verdict(apps, DEPLOY, requested_at=T0, now=now, timeout=TIMEOUT, soak=soak)


# --- the contract Application objects -------------------------------------------------------


def test_contract_app_synced_to_its_operation_revision_is_success(contracts_dir: Path) -> None:
    data = load(contracts_dir, "application-newer-revision.json")
    data["status"]["sync"]["revision"] = CONTRACT_SHA
    verdict = app_verdict(app_state_from_application(data), CONTRACT_SHA)
    assert verdict.state == "success"
    assert "2011efc" in verdict.reason


def test_contract_app_comparing_to_another_revision_is_not_trusted(contracts_dir: Path) -> None:
    # As recorded, Argo CD compared to main's newer commit although the operation synced 2011efc. The
    # app tracks main, the repository's default branch.
    state = app_state_from_application(load(contracts_dir, "application-newer-revision.json"))
    verdict = app_verdict(state, CONTRACT_SHA, default_branch="main")
    assert verdict.state == "pending"
    assert COMPARED in verdict.reason


def test_contract_app_is_pending_for_a_commit_it_never_synced(contracts_dir: Path) -> None:
    state = app_state_from_application(load(contracts_dir, "application-newer-revision.json"))
    verdict = app_verdict(state, DEPLOY, default_branch="main")
    assert verdict.state == "pending"
    assert "does not contain 1f3c0d2 yet" in verdict.reason


def test_contract_app_tracking_another_branch_than_the_default_one_fails_saying_how_to_fix_it(
    contracts_dir: Path,
) -> None:
    data = load(contracts_dir, "application-newer-revision.json")
    data["spec"]["source"]["targetRevision"] = "release-1"
    verdict = app_verdict(app_state_from_application(data), DEPLOY, default_branch="main")
    assert verdict.state == "failure"
    assert "targetRevision release-1" in verdict.reason and "set it to main" in verdict.reason


def test_contract_reconciled_at_equal_to_finished_at_is_trusted(contracts_dir: Path) -> None:
    data = load(contracts_dir, "application-newer-revision.json")
    data["status"]["sync"]["revision"] = CONTRACT_SHA
    state = app_state_from_application(data)
    assert state.reconciled_at == state.operation_finished_at
    assert app_verdict(state, CONTRACT_SHA).state == "success"


def test_contract_degraded_app_after_our_sync_fails(contracts_dir: Path) -> None:
    data = load(contracts_dir, "application-degraded.json")
    data["status"].update(
        sync={"status": "Synced", "revision": DEPLOY},
        operationState={
            "phase": "Succeeded",
            "finishedAt": "2025-03-01T10:00:30Z",
            "syncResult": {"revision": DEPLOY},
        },
        reconciledAt="2025-03-01T10:00:40Z",
    )
    verdict = app_verdict(app_state_from_application(data, name="web-dev"), DEPLOY)
    assert verdict.state == "failure"
    assert verdict.reason.startswith("Degraded")


def test_contract_healthy_app_without_any_sync_operation_is_pending(contracts_dir: Path) -> None:
    state = app_state_from_application(load(contracts_dir, "application-adopted.json"), name="web-dev")
    assert state.health_status == "Healthy"
    assert app_verdict(state, DEPLOY).state == "pending"


def test_contract_degraded_app_before_our_sync_is_not_our_failure(contracts_dir: Path) -> None:
    state = app_state_from_application(load(contracts_dir, "application-degraded.json"), name="web-dev")
    assert app_verdict(state, DEPLOY).state == "pending"


# --- one application -------------------------------------------------------------------------


def test_synced_healthy_app_at_the_deploy_commit_is_success() -> None:
    assert app_verdict(healthy(), DEPLOY).state == "success"


def test_stale_reconciled_at_is_never_trusted() -> None:
    verdict = app_verdict(healthy(reconciled_at=T0 + timedelta(seconds=29)), DEPLOY)
    assert verdict.state == "pending"
    assert "re-assess health" in verdict.reason
    assert "10:00:30" in verdict.reason


def test_missing_reconciled_at_after_an_operation_is_not_trusted() -> None:
    assert app_verdict(healthy(reconciled_at=None), DEPLOY).state == "pending"


def test_stale_degraded_health_is_not_a_failure_yet() -> None:
    # The Degraded health may predate the sync that fixes it.
    state = healthy(health_status="Degraded", reconciled_at=T0)
    assert app_verdict(state, DEPLOY).state == "pending"


def test_wrong_sync_revision_is_pending_and_names_both() -> None:
    verdict = app_verdict(healthy(sync_revision=OLDER), DEPLOY)
    assert verdict.state == "pending"
    assert "0a0b0c0" in verdict.reason
    assert "1f3c0d2" in verdict.reason


def test_out_of_sync_app_whose_last_sync_was_an_older_revision_waits_for_a_sync() -> None:
    verdict = app_verdict(healthy(operation_revision=OLDER, sync_status="OutOfSync"), DEPLOY)
    assert verdict.state == "pending"
    assert "waiting for a sync (last: Succeeded at 0a0b0c0)" in verdict.reason


def test_app_synced_at_the_deploy_commit_needs_no_operation_of_its_own() -> None:
    # Argo CD compares to the deploy commit and finds nothing to apply (the merge changed nothing it
    # renders): the cluster runs it, though the last sync was of an older commit.
    assert app_verdict(healthy(operation_revision=OLDER), DEPLOY).state == "success"


def test_failed_operation_for_an_older_revision_is_not_our_failure() -> None:
    state = healthy(operation_revision=OLDER, operation_phase="Failed", sync_status="OutOfSync")
    assert app_verdict(state, DEPLOY).state == "pending"


@pytest.mark.parametrize("phase", ["Failed", "Error"])
def test_failed_operation_for_our_revision_fails_with_its_message(phase: str) -> None:
    state = healthy(operation_phase=phase, operation_message="one or more objects failed to apply")
    verdict = app_verdict(state, DEPLOY)
    assert verdict.state == "failure"
    assert f"sync to 1f3c0d2 {phase}: one or more objects failed to apply" in verdict.reason


def test_running_operation_for_our_revision_is_pending() -> None:
    verdict = app_verdict(healthy(operation_phase="Running", operation_finished_at=None), DEPLOY)
    assert verdict == verdict.__class__("pending", "syncing 1f3c0d2: operation Running")


def test_requested_but_not_started_operation_is_pending_even_if_an_old_one_succeeded() -> None:
    verdict = app_verdict(healthy(operation_requested=True), DEPLOY)
    assert verdict.state == "pending"
    assert "requested" in verdict.reason


def test_degraded_app_fails_naming_the_unhealthy_resources() -> None:
    broken = 'Deployment/web: Back-off pulling image "ghcr.io/acme/web:1.4.3-broken": ImagePullBackOff'
    verdict = app_verdict(healthy(health_status="Degraded", unhealthy_resources=(broken,)), DEPLOY)
    assert verdict.state == "failure"
    assert verdict.reason == f"Degraded: {broken}"
    assert verdict.details == (broken,)


def test_missing_health_fails() -> None:
    verdict = app_verdict(
        healthy(health_status="Missing", unhealthy_resources=("Service/web: Missing",)), DEPLOY
    )
    assert verdict.state == "failure"
    assert "Service/web: Missing" in verdict.reason


@pytest.mark.parametrize("health", ["Progressing", "Suspended", "Unknown", None])
def test_unsettled_health_is_pending(health: str | None) -> None:
    assert app_verdict(healthy(health_status=health), DEPLOY).state == "pending"


def test_permanently_out_of_sync_healthy_app_after_its_sync_is_success() -> None:
    # Mutating webhooks and HPA-managed replicas keep many healthy apps OutOfSync for good; Kargo does
    # not require Synced either. (This used to be pending: Synced was required.)
    assert app_verdict(healthy(sync_status="OutOfSync"), DEPLOY).state == "success"


def test_out_of_sync_app_is_pending_when_the_stage_requires_synced() -> None:
    verdict = app_verdict(healthy(sync_status="OutOfSync"), DEPLOY, require_synced=True)
    assert verdict.state == "pending"
    assert "OutOfSync" in verdict.reason and "require_synced" in verdict.reason


def test_app_that_does_not_exist_is_pending() -> None:
    verdict = app_verdict(AppState.missing("web-dev"), DEPLOY)
    assert verdict.state == "pending"
    assert "not found" in verdict.reason


def test_unreachable_argo_cd_is_pending_then_times_out_with_the_error() -> None:
    error = 'Argo CD server "main" is unreachable (reading app "web-dev"): connection refused'
    app = AppState.unobserved("web-dev", error)
    assert app_verdict(app, DEPLOY).reason == error
    verdict = stage([app], now=T0 + TIMEOUT)
    assert verdict.state == "failure"
    assert verdict.reason.startswith(
        'timed out after 15m waiting for web-dev: Argo CD server "main" is unreachable'
    )


def test_abbreviated_and_full_shas_match_but_different_ones_do_not() -> None:
    assert same_revision(DEPLOY[:7], DEPLOY)
    assert same_revision(DEPLOY.upper(), DEPLOY)
    assert not same_revision(DEPLOY[:6], DEPLOY)
    assert not same_revision(OLDER, DEPLOY)
    assert not same_revision(None, DEPLOY)


# --- a stage: time, soak, several apps ---------------------------------------------------------


def test_stage_pending_before_the_timeout_names_the_app() -> None:
    verdict = stage([AppState.missing("web-dev")], now=T0 + timedelta(minutes=14))
    assert verdict.state == "pending"
    assert verdict.reason.startswith("web-dev: application not found")


def test_missing_app_fails_once_the_timeout_passes_with_the_reason() -> None:
    verdict = stage([AppState.missing("web-dev")], now=T0 + TIMEOUT)
    assert verdict.state == "failure"
    assert verdict.reason.startswith("timed out after 15m waiting for web-dev: application not found")


def test_progressing_stage_times_out_saying_what_it_waited_for() -> None:
    verdict = stage([healthy(health_status="Progressing")], now=T0 + timedelta(minutes=20))
    assert verdict == verdict.__class__(
        "failure", "timed out after 15m waiting for web-dev: health Progressing"
    )


def test_soaking_stage_is_pending_and_says_healthy_since_and_soaking_until() -> None:
    verdict = stage([healthy()], now=T0 + timedelta(minutes=2), soak=timedelta(minutes=5))
    assert verdict.state == "pending"
    assert verdict.reason == "healthy since 10:00:30 UTC; soaking until 10:05:30 UTC (5m)"


def test_soaked_stage_is_success() -> None:
    verdict = stage([healthy()], now=T0 + timedelta(minutes=5, seconds=30), soak=timedelta(minutes=5))
    assert verdict.state == "success"
    assert verdict.reason == "verified: healthy at 1f3c0d2 for 5m"


def test_soak_counts_from_the_last_health_transition() -> None:
    app = healthy(health_since=T0 + timedelta(minutes=3))
    verdict = stage([app], now=T0 + timedelta(minutes=6), soak=timedelta(minutes=5))
    assert verdict.reason == "healthy since 10:03 UTC; soaking until 10:08 UTC (5m)"


def test_soak_is_not_cut_short_by_the_timeout() -> None:
    app = healthy(operation_finished_at=T0 + timedelta(minutes=14), reconciled_at=T0 + timedelta(minutes=14))
    verdict = stage([app], now=T0 + timedelta(minutes=16), soak=timedelta(minutes=5))
    assert verdict.state == "pending"
    assert "soaking until" in verdict.reason


def test_degrade_during_soak_fails() -> None:
    broken = "Deployment/web: CrashLoopBackOff"
    app = healthy(health_status="Degraded", unhealthy_resources=(broken,))
    verdict = stage([app], now=T0 + timedelta(minutes=2), soak=timedelta(minutes=5))
    assert verdict.state == "failure"
    assert verdict.reason == f"web-dev: Degraded: {broken}"


def test_several_apps_must_all_pass() -> None:
    verdict = stage([healthy("web-dev"), healthy("api-dev", health_status="Progressing")], now=T0)
    assert verdict.state == "pending"
    assert verdict.reason == "api-dev: health Progressing"


def test_the_worst_app_wins_and_every_failure_is_named() -> None:
    apps = [
        healthy("web-dev"),
        healthy("api-dev", health_status="Progressing"),
        healthy("db-dev", health_status="Degraded", unhealthy_resources=("StatefulSet/db: not ready",)),
        healthy("cache-dev", operation_phase="Failed", operation_message="hook failed"),
    ]
    verdict = stage(apps, now=T0)
    assert verdict.state == "failure"
    assert (
        verdict.reason
        == "db-dev: Degraded: StatefulSet/db: not ready; cache-dev: sync to 1f3c0d2 Failed: hook failed"
    )
    assert verdict.details == ("db-dev: StatefulSet/db: not ready",)


def test_several_pending_apps_name_the_first_and_count_the_rest() -> None:
    apps = [AppState.missing("web-dev"), AppState.missing("api-dev"), healthy("db-dev")]
    assert (
        stage(apps, now=T0).reason
        == 'web-dev: application not found on Argo CD, or the token may not get it (RBAC "applications, get")'
        " (+1 more)"
    )


def test_reasons_fit_a_commit_status() -> None:
    long = tuple(
        f"Deployment/web-{i}: Back-off pulling image ghcr.io/acme/web:1.4.{i}-broken" for i in range(5)
    )
    verdict = stage([healthy(health_status="Degraded", unhealthy_resources=long)], now=T0)
    assert len(verdict.reason) <= STATUS_DESCRIPTION_LIMIT
    assert verdict.reason.endswith("…")
    assert verdict.details == tuple(f"web-dev: {line}" for line in long)


def test_a_stage_without_apps_has_nothing_to_verify() -> None:
    assert stage([], now=T0).state == "success"


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(minutes=15), "15m"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=45), "45s"),
    ],
)
def test_durations_read_like_the_config(span: timedelta, text: str) -> None:
    assert format_duration(span) == text


def test_parsing_tolerates_an_empty_application() -> None:
    state = app_state_from_application({}, name="web-dev")
    assert state.name == "web-dev"
    assert state.exists
    assert app_verdict(state, DEPLOY).state == "pending"


def test_parsing_reads_unhealthy_resources_with_their_messages(contracts_dir: Path) -> None:
    data = copy.deepcopy(load(contracts_dir, "application-newer-revision.json"))
    data["status"]["resources"][1]["health"] = {"status": "Degraded", "message": "Deadline exceeded"}
    state = app_state_from_application(data)
    assert state.unhealthy_resources == ("Deployment/web: Deadline exceeded",)
    assert state.operation_initiated_by == "ferry"
    assert state.images == ("ghcr.io/acme/web:1.4.2",)
