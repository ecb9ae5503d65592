"""When the reconciler comes back to a repository: poll while a stage verifies, wake at a soak's end while
every verifying stage only soaks, neither when nothing verifies."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from test_decide import snapshot

from bot.core.argo_app import AppState
from bot.core.snapshot import CommitStatus, Deploy, Snapshot
from bot.core.wake import Wake, next_wake

DEPLOY = "d" * 40
STAGING_SOAK = timedelta(minutes=10)  # config/example/.github/ferry.yml


def staging_app(healthy_for: timedelta, **changes: Any) -> AppState:
    now = snapshot().now
    state = AppState(
        name="shop-staging",
        sync_status="Synced",
        sync_revision=DEPLOY,
        health_status="Healthy",
        operation_phase="Succeeded",
        operation_revision=DEPLOY,
        operation_finished_at=now - healthy_for,
        reconciled_at=now - timedelta(seconds=5),
        automated=True,
        target_revision="main",
    )
    return replace(state, **changes)


def verifying_staging(app: AppState | None, state: str = "pending") -> Snapshot:
    base = snapshot()
    status = CommitStatus("ferry/health/staging", state, "verifying", None, base.now - timedelta(minutes=3))
    deploy = Deploy(commit=DEPLOY, changed_by=DEPLOY, statuses={status.context: status})
    return snapshot(
        deploys={"staging": deploy},
        app_states={"staging": (app,)} if app is not None else {},
        relations={"staging": {}},
    )


def test_a_stage_that_only_soaks_wakes_its_repository_at_the_soak_end_instead_of_polling() -> None:
    snap = verifying_staging(staging_app(healthy_for=timedelta(minutes=2)))
    assert next_wake(snap) == Wake(at=snap.now - timedelta(minutes=2) + STAGING_SOAK)


def test_a_stage_whose_app_still_syncs_is_polled() -> None:
    progressing = staging_app(timedelta(minutes=2), health_status="Progressing", operation_phase="Running")
    assert next_wake(verifying_staging(progressing)) == Wake(poll=True)


def test_a_verifying_stage_whose_apps_were_not_read_is_polled() -> None:
    assert next_wake(verifying_staging(None)) == Wake(poll=True)


def test_a_soak_that_is_over_is_polled_so_the_verdict_is_posted_now() -> None:
    assert next_wake(verifying_staging(staging_app(healthy_for=STAGING_SOAK * 2))) == Wake(poll=True)


def test_a_repository_with_nothing_verifying_is_left_to_the_idle_interval() -> None:
    assert next_wake(verifying_staging(staging_app(timedelta(minutes=2)), state="success")) == Wake()
    assert next_wake(snapshot()) == Wake()
