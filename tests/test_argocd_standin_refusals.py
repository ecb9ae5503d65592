"""Sync requests Argo CD refuses, with its words, gRPC codes and HTTP statuses
(server/application/application.go ``Sync`` and ``resolveSourceRevisions``, util/rbac ``EnforceErr``).

The earlier stand-in accepted every one of these syncs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from argocd_standin_kit import FakeClock, GitRepo, Sandbox, assert_shape, running, shop_repo

from bot.sandbox.argocd_apps import git_app
from bot.sandbox.argocd_windows import SyncWindow, can_sync

VIEWER = "viewer-token"
DEPLOYER = "deployer-token"


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path / "gitops")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(repo: GitRepo, clock: FakeClock) -> AsyncIterator[Sandbox]:
    apps = {
        "web-auto": git_app("overlays/dev", "main", automated=True, self_heal=True),
        "web-manual": git_app("overlays/dev", "main"),
    }
    async with running(repo, clock, apps, require_override_for_revision_sync=True) as sandbox:
        sandbox.standin.add_token(VIEWER, subject="viewer", actions=["get"])
        sandbox.standin.add_token(DEPLOYER, subject="deployer", actions=["get", "sync"])
        yield sandbox


def refusal(code: int, message: str) -> dict[str, Any]:
    return {"error": message, "code": code, "message": message}


async def test_a_revision_override_on_an_automated_app_is_refused_with_code_9(sandbox: Sandbox) -> None:
    commit = sandbox.repo.release("1.1.0")
    refused = await sandbox.sync("web-auto", {"revision": commit})
    assert refused.status_code == 400
    assert refused.json() == refusal(9, f"Cannot sync to {commit}: auto-sync currently set to main")
    assert_shape(refused.json(), "runtimeError")
    assert sandbox.standin.syncs == []
    accepted = await sandbox.sync("web-auto", {"revision": "main"})  # the target revision itself is fine
    assert accepted.status_code == 200
    assert accepted.json()["operation"]["sync"]["revision"] == commit


async def test_a_dry_run_may_name_another_revision_on_an_automated_app(sandbox: Sandbox) -> None:
    older = sandbox.repo.head()
    sandbox.repo.release("1.1.0")
    response = await sandbox.sync("web-auto", {"revision": older, "dryRun": True})
    assert response.status_code == 200
    assert response.json()["operation"]["sync"]["dryRun"] is True


async def test_a_deny_window_blocks_manual_and_automated_syncs(sandbox: Sandbox) -> None:
    sandbox.standin.add_sync_window("deny", "0 10 * * *", "1h", applications=["web-*"])
    sandbox.clock.advance(60)  # active once a start lies before now: 10:01
    refused = await sandbox.sync("web-manual", {})
    assert (refused.status_code, refused.json()) == (403, refusal(7, "cannot sync: blocked by sync window"))
    sandbox.repo.release("1.2.0")
    blocked = await sandbox.get("web-auto", refresh="normal")
    assert blocked["status"]["sync"]["status"] == "OutOfSync" and "operation" not in blocked
    async with sandbox.raw() as http:
        windows = (await http.get("/api/v1/applications/web-auto/syncwindows")).json()
    assert windows == {
        "canSync": False,
        "activeWindows": [{"kind": "deny", "schedule": "0 10 * * *", "duration": "1h", "manualSync": False}],
        "assignedWindows": [
            {"kind": "deny", "schedule": "0 10 * * *", "duration": "1h", "manualSync": False}
        ],
    }
    sandbox.clock.advance(3540)  # 11:00: the window has closed
    opened = await sandbox.get("web-auto")
    assert opened["operation"]["initiatedBy"] == {"automated": True}


async def test_a_deny_window_with_manual_sync_lets_people_sync(sandbox: Sandbox) -> None:
    sandbox.standin.add_sync_window("deny", manual_sync=True)
    assert (await sandbox.sync("web-manual", {})).status_code == 200
    sandbox.repo.release("1.2.0")
    assert "operation" not in await sandbox.get("web-auto", refresh="normal")


async def test_an_operation_running_when_a_window_opens_waits_for_it_to_close(sandbox: Sandbox) -> None:
    sandbox.repo.release("1.3.0")
    assert (await sandbox.sync("web-manual", {})).status_code == 200
    sandbox.standin.add_sync_window("deny", "* * * * *", "1m")
    sandbox.clock.advance(5)
    held = await sandbox.get("web-manual")
    state = held["status"]["operationState"]
    assert (state["phase"], state["message"]) == ("Running", "Sync operation blocked by sync window")
    sandbox.standin.clear_sync_windows()
    await sandbox.standin.tick()  # the controller takes it up again once nothing blocks it
    sandbox.clock.advance(2)
    done = await sandbox.get("web-manual")
    assert done["status"]["operationState"]["phase"] == "Succeeded"


def test_sync_windows_follow_argo_cds_rules() -> None:
    at_10 = 1_740_823_200.0  # Saturday 2025-03-01 10:00 UTC
    deny = SyncWindow("deny", "0 10 * * *", "1h")
    allow = SyncWindow("allow", "0 22 * * 1-5", "2h", manual_sync=True)
    assert not deny.active(at_10)  # cron.Next(now - duration) must be before now, not equal
    assert deny.active(at_10 + 60) and not deny.active(at_10 + 3600)
    assert not can_sync([deny], at_10 + 60, manual=True)
    assert can_sync([allow], at_10, manual=True) and not can_sync([allow], at_10, manual=False)
    assert SyncWindow("allow", "0 22 * * 1", "2h").active(at_10 + 2 * 86400 + 12 * 3600 + 60)  # Monday 22:01
    assert SyncWindow("deny", "0 0 1 * 6", "1h").active(at_10 - 10 * 3600 + 60)  # day 1 OR Saturday
    assert not deny.matches("web-dev", "web-dev", "https://kubernetes.default.svc")  # names no app
    assert SyncWindow("deny", "* * * * *", "1h", namespaces=("web-*",)).matches("web-dev", "web-dev", "x")
    assert not SyncWindow("deny", "* * * * *", "1h", ("api-*",)).matches("web-dev", "web-dev", "x")


async def test_an_app_being_deleted_refuses_syncs_and_stops_syncing_itself(sandbox: Sandbox) -> None:
    sandbox.standin.delete_app("web-auto")
    refused = await sandbox.sync("web-auto", {})
    assert (refused.status_code, refused.json()) == (400, refusal(9, "application is deleting"))
    sandbox.repo.release("1.4.0")
    body = await sandbox.get("web-auto", refresh="normal")
    assert body["metadata"]["deletionTimestamp"] == "2025-03-01T10:00:00Z"
    assert body["metadata"]["finalizers"] == ["resources-finalizer.argocd.argoproj.io"]
    assert "operation" not in body and body["status"]["sync"]["status"] == "OutOfSync"


async def test_a_token_without_sync_permission_is_refused_naming_the_rule(sandbox: Sandbox) -> None:
    refused = await sandbox.sync("web-manual", {}, token=VIEWER)
    message = (
        "permission denied: applications, sync, default/web-manual, sub: viewer, iat: 2025-03-01T10:00:00Z"
    )
    assert (refused.status_code, refused.json()) == (403, refusal(7, message))
    async with sandbox.raw(VIEWER) as http:
        assert (await http.get("/api/v1/applications/web-manual")).status_code == 200


async def test_a_revision_override_needs_the_override_permission(sandbox: Sandbox) -> None:
    older = sandbox.repo.head()
    sandbox.repo.release("1.5.0")
    refused = await sandbox.sync("web-manual", {"revision": older}, token=DEPLOYER)
    rule = "applications, override, default/web-manual, sub: deployer, iat: 2025-03-01T10:00:00Z"
    assert (refused.status_code, refused.json()) == (403, refusal(7, f"permission denied: {rule}"))
    assert (await sandbox.sync("web-manual", {}, token=DEPLOYER)).status_code == 200


async def test_the_override_check_comes_before_the_auto_sync_refusal(sandbox: Sandbox) -> None:
    sandbox.repo.release("1.5.0")
    refused = await sandbox.sync("web-auto", {"revision": "v9"}, token=DEPLOYER)
    assert refused.status_code == 403 and "override" in refused.json()["message"]


async def test_a_token_that_may_not_read_an_app_cannot_tell_it_exists(sandbox: Sandbox) -> None:
    sandbox.standin.add_token("other-team", subject="other", objects="other/*")
    async with sandbox.raw("other-team") as http:
        hidden = await http.get("/api/v1/applications/web-manual")
        named = await http.get("/api/v1/applications/web-manual", params={"project": "default"})
        listing = await http.get("/api/v1/applications")
    assert (hidden.status_code, hidden.json()) == (403, refusal(7, "permission denied"))
    assert named.status_code == 403  # may not get default/* at all: denied before looking
    assert listing.json()["items"] == []


async def test_an_app_in_another_project_is_not_found_in_this_one(sandbox: Sandbox) -> None:
    async with sandbox.raw() as http:
        wrong = await http.get("/api/v1/applications/web-manual", params={"project": "payments"})
    message = 'applications.argoproj.io "web-manual" not found'
    assert (wrong.status_code, wrong.json()) == (404, refusal(5, message))


async def test_a_revision_that_does_not_resolve_is_refused_before_any_operation(sandbox: Sandbox) -> None:
    refused = await sandbox.sync("web-manual", {"revision": "release-9"})
    detail = "unable to resolve 'release-9' to a commit SHA: revision not found"
    message = f"error resolving repo revision: rpc error: code = Unknown desc = {detail}"
    assert (refused.status_code, refused.json()) == (400, refusal(9, message))
    assert sandbox.standin.operations == []
