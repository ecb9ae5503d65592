"""Apps that track a branch, compare on a poll or a refresh, and sync themselves when automated.

Each test fails against the earlier stand-in, which reported the last synced commit as
``status.sync.revision``, compared nothing, and had no automated sync.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argocd_standin_kit import BASE, FakeClock, GitRepo, Sandbox, running, shop_repo

from bot.sandbox.argocd_apps import IgnoreDifference, git_app

POLL = 180.0  # Argo CD's default timeout.reconciliation
APPLY_FAILED = "one or more objects failed to apply: admission webhook denied the request"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path / "gitops")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(repo: GitRepo, clock: FakeClock) -> AsyncIterator[Sandbox]:
    apps = {
        "web-manual": git_app("overlays/dev", "main"),
        "web-auto": git_app("overlays/dev", "main", automated=True, prune=True),
        "web-pinned": git_app("overlays/dev", repo.head()),
    }
    async with running(repo, clock, apps) as sandbox:
        yield sandbox


def revision(body: dict[str, object]) -> object:
    status = body["status"]
    assert isinstance(status, dict)
    return status["sync"]["revision"]


async def test_sync_revision_is_the_branch_head_at_each_comparison(sandbox: Sandbox) -> None:
    started = sandbox.repo.head()
    readme = sandbox.repo.commit({"README.md": "shop\n"}, "docs")
    before_poll = await sandbox.get("web-manual")
    sandbox.clock.advance(POLL)
    after_poll = await sandbox.get("web-manual")
    assert (revision(before_poll), before_poll["status"]["sync"]["status"]) == (started, "Synced")
    assert (revision(after_poll), after_poll["status"]["sync"]["status"]) == (readme, "Synced")
    release = sandbox.repo.release("1.1.0")
    sandbox.clock.advance(POLL)
    moved = await sandbox.get("web-manual")
    assert (revision(moved), moved["status"]["sync"]["status"]) == (release, "OutOfSync")
    assert moved["status"]["operationState"]["syncResult"]["revision"] == started


async def test_a_pinned_target_revision_stays_at_its_commit(sandbox: Sandbox) -> None:
    pinned = sandbox.repo.head()
    sandbox.repo.release("1.1.0")
    sandbox.clock.advance(POLL)
    body = await sandbox.get("web-pinned", refresh="normal")
    assert (revision(body), body["status"]["sync"]["status"]) == (pinned, "Synced")


async def test_refresh_compares_now_and_returns_the_compared_state(sandbox: Sandbox) -> None:
    release = sandbox.repo.release("1.1.0")
    body = await sandbox.get("web-manual", refresh="normal")
    assert (revision(body), body["status"]["sync"]["status"]) == (release, "OutOfSync")
    assert body["status"]["reconciledAt"] == "2025-03-01T10:00:00Z"
    assert "annotations" not in body["metadata"]  # the refresh annotation is gone once compared
    assert sandbox.standin.refreshes == [("web-manual", "normal", sandbox.clock.now)]


async def test_an_automated_app_syncs_the_new_head_at_the_poll(sandbox: Sandbox) -> None:
    release = sandbox.repo.release("1.2.0")
    sandbox.clock.advance(POLL - 1)
    waiting = await sandbox.get("web-auto")
    assert "operation" not in waiting and waiting["status"]["sync"]["status"] == "Synced"
    sandbox.clock.advance(1)
    await sandbox.standin.tick()  # the controller polls by itself: no API request needed
    (record,) = sandbox.standin.operations
    assert (record.app, record.revisions, record.username, record.infos) == ("web-auto", (release,), None, {})
    body = await sandbox.get("web-auto")
    assert body["operation"]["initiatedBy"] == {"automated": True}
    assert "info" not in body["operation"]
    assert body["operation"]["sync"]["revision"] == release
    sandbox.clock.advance(2)
    done = await sandbox.get("web-auto")
    assert (done["status"]["sync"]["status"], done["status"]["health"]["status"]) == ("Synced", "Healthy")
    assert done["status"]["history"][-1]["initiatedBy"] == {"automated": True}
    assert done["status"]["summary"]["images"] == ["ghcr.io/acme/web:1.2.0"]


async def test_poll_compares_every_app_now_without_a_request(sandbox: Sandbox) -> None:
    release = sandbox.repo.release("1.2.1")
    await sandbox.standin.poll()
    assert sum(sandbox.standin.requests.values()) == 0
    assert [(r.app, r.revisions, r.username) for r in sandbox.standin.operations] == [
        ("web-auto", (release,), None)
    ]
    manual = sandbox.standin.app("web-manual").comparison
    assert manual is not None and manual.revisions == [release]


async def test_a_refresh_lets_an_automated_app_sync_at_once(sandbox: Sandbox) -> None:
    release = sandbox.repo.release("1.3.0")
    body = await sandbox.get("web-auto", refresh="normal")
    assert body["operation"]["initiatedBy"] == {"automated": True}
    assert body["status"]["operationState"]["syncResult"]["revision"] == release


async def test_a_manual_sync_without_a_revision_syncs_the_target_revisions_head(sandbox: Sandbox) -> None:
    release = sandbox.repo.release("1.4.0")
    response = await sandbox.sync("web-manual", {"prune": False})
    assert response.status_code == 200
    assert response.json()["operation"]["sync"]["revision"] == release
    assert "operationState" not in response.json()["status"]  # SetAppOperation clears it
    sandbox.clock.advance(2)
    body = await sandbox.get("web-manual")
    assert (revision(body), body["status"]["sync"]["status"]) == (release, "Synced")


async def test_a_manual_sync_to_an_older_commit_is_out_of_sync_with_the_branch(sandbox: Sandbox) -> None:
    older = sandbox.repo.release("1.5.0")
    newer = sandbox.repo.release("1.6.0")
    await sandbox.sync("web-manual", {"revision": older})
    sandbox.clock.advance(2)
    body = await sandbox.get("web-manual")
    assert (revision(body), body["status"]["sync"]["status"]) == (newer, "OutOfSync")
    assert body["status"]["operationState"]["syncResult"]["revision"] == older
    assert body["status"]["history"][-1]["revision"] == older
    assert body["status"]["summary"]["images"] == ["ghcr.io/acme/web:1.5.0"]


async def test_a_change_to_the_shared_base_shows_up_and_a_sync_deploys_it(sandbox: Sandbox) -> None:
    web = BASE["base/web.yaml"].replace("replicas: 1", "replicas: 3")
    change = sandbox.repo.commit({"base/web.yaml": web}, "more replicas everywhere")
    body = await sandbox.get("web-manual", refresh="normal")
    statuses = {r["name"]: r["status"] for r in body["status"]["resources"] if r["kind"] == "Deployment"}
    assert (revision(body), body["status"]["sync"]["status"], statuses) == (
        change,
        "OutOfSync",
        {"web": "OutOfSync"},
    )
    await sandbox.sync("web-manual", {})
    sandbox.clock.advance(2)
    synced = await sandbox.get("web-manual")
    assert synced["status"]["sync"]["status"] == "Synced"
    live = sandbox.standin.app("web-manual").live[("apps", "Deployment", "web-manual", "web")]
    assert live.manifest["spec"]["replicas"] == 3


async def test_a_failed_automated_sync_is_not_retried_for_the_same_revision(sandbox: Sandbox) -> None:
    sandbox.standin.fail_next_operation("web-auto", APPLY_FAILED)
    failing = sandbox.repo.release("1.7.0")
    await sandbox.get("web-auto", refresh="normal")
    sandbox.clock.advance(POLL)
    body = await sandbox.get("web-auto", refresh="normal")
    assert len(sandbox.standin.operations) == 1
    assert body["status"]["operationState"]["phase"] == "Failed"
    (condition,) = body["status"]["conditions"]
    assert condition["type"] == "SyncError"
    assert condition["message"] == f"Failed last sync attempt to [{failing}]: {APPLY_FAILED}"
    fixed = sandbox.repo.release("1.7.1")
    retried = await sandbox.get("web-auto", refresh="normal")
    assert retried["operation"]["sync"]["revision"] == fixed
    assert "conditions" not in retried["status"]


async def test_automated_sync_without_prune_does_not_sync_only_to_prune(sandbox: Sandbox) -> None:
    apps = {
        "keep": git_app("overlays/dev", "main", automated=True),
        "prune": git_app("overlays/dev", "main", automated=True, prune=True),
    }
    for name, spec in apps.items():
        sandbox.standin.add_app(name, spec)
        await sandbox.standin.deploy(name)
    sandbox.repo.commit({"base/kustomization.yaml": "resources: [web.yaml]\n"}, "drop the service")
    kept = await sandbox.get("keep", refresh="normal")
    pruned = await sandbox.get("prune", refresh="normal")
    service = [r for r in kept["status"]["resources"] if r["kind"] == "Service"]
    assert "operation" not in kept and service[0]["requiresPruning"] is True
    assert kept["status"]["sync"]["status"] == "OutOfSync"
    assert pruned["operation"]["sync"]["prune"] is True
    sandbox.clock.advance(2)
    after = await sandbox.get("prune")
    assert [r["kind"] for r in after["status"]["resources"]] == ["Deployment"]


@pytest.fixture
async def hpa(repo: GitRepo, clock: FakeClock) -> AsyncIterator[Sandbox]:
    replicas = IgnoreDifference("Deployment", ("/spec/replicas",), group="apps")
    apps = {
        "plain": git_app("overlays/dev", "main", automated=True),
        "healing": git_app("overlays/dev", "main", automated=True, self_heal=True),
        "ignoring": git_app("overlays/dev", "main", automated=True, ignore_differences=[replicas]),
    }
    async with running(repo, clock, apps, self_heal_timeout_seconds=5.0) as sandbox:
        for app in apps:  # an HorizontalPodAutoscaler keeps web at 3 replicas in every namespace
            sandbox.standin.set_drift(app, "Deployment", "web", "/spec/replicas", 3)
        yield sandbox


async def test_an_app_an_hpa_scales_stays_out_of_sync_while_healthy(hpa: Sandbox) -> None:
    plain = await hpa.get("plain", refresh="normal")
    ignoring = await hpa.get("ignoring", refresh="normal")
    assert (plain["status"]["sync"]["status"], plain["status"]["health"]["status"]) == (
        "OutOfSync",
        "Healthy",
    )
    assert "operation" not in plain  # the last sync already applied this revision; no self-heal
    assert ignoring["status"]["sync"]["status"] == "Synced"


async def test_self_heal_resyncs_what_drifted_after_the_self_heal_timeout(hpa: Sandbox) -> None:
    first = await hpa.get("healing", refresh="normal")
    assert "operation" in first  # the initial deploy finished long enough ago
    assert first["operation"]["sync"]["resources"] == [{"group": "apps", "kind": "Deployment", "name": "web"}]
    hpa.clock.advance(2)
    again = await hpa.get("healing")
    assert "operation" not in again and again["status"]["sync"]["status"] == "OutOfSync"
    hpa.clock.advance(5)
    healed = await hpa.get("healing")
    assert healed["operation"]["initiatedBy"] == {"automated": True}
    assert len([r for r in hpa.standin.operations if r.app == "healing"]) == 2


async def test_until_the_controller_compares_after_a_sync_the_status_is_stale(
    repo: GitRepo, clock: FakeClock
) -> None:
    apps = {"web-dev": git_app("overlays/dev", "main")}
    async with running(repo, clock, apps, post_operation_refresh_seconds=5.0) as sandbox:
        release = repo.release("1.8.0")
        await sandbox.sync("web-dev", {})
        clock.advance(2)
        stale = await sandbox.get("web-dev")
        hard = await sandbox.get("web-dev", refresh="hard")
    state = stale["status"]["operationState"]
    assert state["phase"] == "Succeeded"
    assert stale["status"]["reconciledAt"] < state["finishedAt"]  # Kargo: health not to be trusted yet
    assert revision(stale) != release
    assert hard["status"]["reconciledAt"] >= state["finishedAt"]
    assert (revision(hard), hard["status"]["sync"]["status"]) == (release, "Synced")
