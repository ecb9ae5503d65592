"""decide() on verification: what Ferry asks of Argo CD and which status it posts, from observed apps."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from test_decide import snapshot

from bot.core.actions import RequestSync, SetStatus
from bot.core.argo_app import AppState
from bot.core.decide import decide
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion
from bot.core.text import STATUS_DESCRIPTION_LIMIT
from bot.core.verification import refused_status

DEPLOY = "d" * 40
LATER = "a" * 40
OLDER = "e" * 40
HEALTH = "ferry/health/dev"


def dev_app(**changes: Any) -> AppState:
    base = snapshot()
    state = AppState(
        name="shop-dev",
        sync_status="Synced",
        sync_revision=DEPLOY,
        health_status="Healthy",
        operation_phase="Succeeded",
        operation_revision=DEPLOY,
        operation_finished_at=base.now - timedelta(seconds=30),
        reconciled_at=base.now - timedelta(seconds=20),
        automated=True,
        target_revision="main",
    )
    return replace(state, **changes)


def promotion_deploy(**changes: Any) -> Deploy:
    promotion = MergedPromotion(9, "u", "dev", "0123456789ab", "h" * 40, DEPLOY)
    return replace(Deploy(commit=DEPLOY, changed_by="h" * 40, promotion=promotion), **changes)


def dev_actions(deploy: Deploy, app: AppState, relation: dict[str, Any] | None = None) -> list[Any]:
    snap = snapshot(
        deploys={"dev": deploy},
        app_states={"dev": (app,)},
        relations={"dev": relation or {}},
        warehouse_freight={},
    )
    return [a for a in decide(snap) if isinstance(a, RequestSync) or getattr(a, "context", "") == HEALTH]


def test_a_merged_promotion_of_an_automated_app_records_pending_then_asks_for_a_refresh() -> None:
    behind = dev_app(sync_revision=OLDER, operation_revision=OLDER)
    pending, request = dev_actions(promotion_deploy(), behind)
    assert isinstance(request, RequestSync)
    assert [(a.app, a.mode) for a in request.asks] == [("shop-dev", "refresh")]
    assert request.revision == DEPLOY and request.promotion_id == "dev/dddddddddddd"
    assert isinstance(pending, SetStatus) and pending.state == "pending" and pending.sha == DEPLOY
    assert "(refresh)" in pending.description


def test_a_merged_promotion_of_a_manual_app_syncs_its_own_target_revision() -> None:
    behind = dev_app(sync_revision=OLDER, operation_revision=OLDER, automated=False)
    _pending, request = dev_actions(promotion_deploy(), behind)
    assert [(a.app, a.mode) for a in request.asks] == [("shop-dev", "sync")]


def test_first_contact_with_a_manual_app_changes_nothing_and_says_it_observes() -> None:
    behind = dev_app(sync_revision=OLDER, operation_revision=OLDER, automated=False)
    [status] = dev_actions(Deploy(commit=DEPLOY, changed_by=DEPLOY), behind)
    assert isinstance(status, SetStatus) and status.state == "pending"
    assert status.description.startswith(
        "Observing shop-dev (not deployed by Ferry; Ferry syncs nothing here)"
    )


def test_first_contact_with_a_healthy_app_at_an_equivalent_commit_says_what_runs_there() -> None:
    app = dev_app(sync_revision=LATER, operation_revision=LATER)
    [status] = dev_actions(Deploy(commit=DEPLOY, changed_by=DEPLOY), app, {LATER: "equivalent"})
    assert (status.state, status.description) == (
        "success",
        "shop-dev runs web 1.4.2, worker 1.4.2 at aaaaaaa (not deployed by Ferry)",
    )


def test_a_stage_that_moved_on_marks_the_old_deploy_commit_superseded() -> None:
    pending = {HEALTH: CommitStatus(HEALTH, "pending", "Asked", created_at=snapshot().now)}
    app = dev_app(sync_revision=LATER, operation_revision=LATER)
    [status] = dev_actions(promotion_deploy(statuses=pending), app, {LATER: "moved_on"})
    assert status.state == "error"
    assert status.description.startswith("Superseded: dev moved on to aaaaaaa")


def test_while_verifying_an_app_that_caught_up_is_not_asked_again() -> None:
    pending = {HEALTH: CommitStatus(HEALTH, "pending", "Asked", created_at=snapshot().now)}
    actions = dev_actions(promotion_deploy(statuses=pending), dev_app(health_status="Progressing"))
    assert actions == []


def test_a_refusal_that_needs_a_person_fails_the_deploy_commit_with_what_to_do() -> None:
    behind = dev_app(automated=False, sync_revision=OLDER, operation_revision=OLDER)
    _, request = dev_actions(promotion_deploy(), behind)
    message = (
        'Argo CD token may not sync "shop-dev": add "p, <role>, applications, sync, default/shop-dev, allow" '
        "to argocd-rbac-cm"
    )
    status = refused_status(request, "shop-dev", message)
    assert (status.sha, status.context, status.state) == (DEPLOY, HEALTH, "failure")
    assert "applications, sync, default/shop-dev" in status.description
    assert len(status.description) <= STATUS_DESCRIPTION_LIMIT


def test_a_soaking_stage_says_since_when_it_is_healthy_and_until_when_it_soaks() -> None:
    base = snapshot()
    assert base.config is not None
    stages = dict(base.config.stages)
    stages["dev"] = stages["dev"].model_copy(
        update={"verify": stages["dev"].verify.model_copy(update={"soak": timedelta(minutes=30)})}
    )
    asked = {
        HEALTH: CommitStatus(HEALTH, "pending", "Asking Argo CD", created_at=base.now - timedelta(minutes=1))
    }
    snap = snapshot(
        deploys={"dev": promotion_deploy(statuses=asked)},
        app_states={"dev": (dev_app(),)},
        relations={"dev": {}},
        warehouse_freight={},
    )
    snap = replace(snap, config=base.config.model_copy(update={"stages": stages}))
    [status] = [a for a in decide(snap) if getattr(a, "context", "") == HEALTH]
    healthy = (base.now - timedelta(seconds=30)).strftime("%H:%M:%S")
    until = (base.now + timedelta(minutes=29, seconds=30)).strftime("%H:%M:%S")
    assert (status.state, status.description) == (
        "pending",
        f"Pending: healthy since {healthy} UTC; soaking until {until} UTC (30m)",
    )
    assert status.ledger is None  # a restated pending is no new verification
