"""How the Argo CD adapter tells Argo CD's refusals apart, against respx answers shaped as the real server's.

Bodies are grpc-gateway's ``runtimeError`` (``{"error", "code", "message"}``) with the messages of argo-cd
server/application/application.go (``Sync``, ``resolveSourceRevisions``), util/argo/argo.go
(``SetAppOperation``: "another operation is already in progress", wrapped as "error setting app operation:
…" by ``Sync``) and util/rbac/rbac.go (``EnforceErr``: "permission denied: applications, sync,
<project>/<app>, sub: …, iat: …"). A missing app is a bare "permission denied" without ``project`` and
404 with it (``getAppEnforceRBAC``).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
import respx
from pydantic import SecretStr

from bot.argocd import PROMOTION_INFO_KEY, ArgoCDClient
from bot.argocd_deploy import perform
from bot.core.actions import RequestSync
from bot.core.argo_app import AppAsk
from bot.settings import ArgoCDServer

BASE = "https://argocd.example.com"
APP_URL = f"{BASE}/api/v1/applications/web-dev"
SYNC_URL = f"{APP_URL}/sync"
WINDOWS_URL = f"{APP_URL}/syncwindows"
DEPLOY = "1f3c0d2e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
NOW = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)


def refusal(code: int, message: str) -> dict[str, Any]:
    return {"error": message, "code": code, "message": message}


def application(*, automated: bool, target: str = "main", operation: dict[str, Any] | None = None) -> Any:
    spec: dict[str, Any] = {
        "project": "default",
        "source": {
            "repoURL": "https://github.com/acme/gitops.git",
            "path": "overlays/dev",
            "targetRevision": target,
        },
        "syncPolicy": {"automated": {"prune": True, "selfHeal": True}} if automated else {},
    }
    data: dict[str, Any] = {"metadata": {"name": "web-dev"}, "spec": spec, "status": {}}
    if operation is not None:
        data["operation"] = operation
    return data


async def _sleep(_: float) -> None:
    return None


@pytest.fixture
async def client() -> Any:
    servers = {"main": ArgoCDServer(url=BASE, token=SecretStr("t0ken"), timeout=5.0)}
    async with ArgoCDClient(servers, sleep=_sleep) as argocd:
        yield argocd


def request(*asks: AppAsk, project: str | None = None) -> RequestSync:
    return RequestSync(
        stage="dev",
        server="main",
        asks=asks,
        revision=DEPLOY,
        promotion_id="dev/1f3c0d2e4b5a",
        default_branch="main",
        project=project,
    )


@respx.mock
async def test_an_app_that_refuses_revision_overrides_is_refreshed_never_reported_busy(
    client: ArgoCDClient,
) -> None:
    # Argo CD answers a sync naming another revision than targetRevision on an automated app with
    # code 9 "Cannot sync to <rev>: auto-sync currently set to <target>" (resolveSourceRevisions).
    respx.post(SYNC_URL).respond(
        400, json=refusal(9, f"Cannot sync to {DEPLOY}: auto-sync currently set to main")
    )
    refresh = respx.get(APP_URL, params={"refresh": "normal"}).respond(200, json=application(automated=True))
    result = await client.sync("main", "web-dev", revision=DEPLOY)
    assert (result.outcome, result.mode) == ("refreshed", "refresh")
    assert "busy" not in result.message and "auto-sync currently set to main" in result.message
    assert refresh.called


@respx.mock
async def test_an_automated_app_gets_a_refresh_and_no_sync_at_all(client: ArgoCDClient) -> None:
    route = respx.get(APP_URL).respond(200, json=application(automated=True))
    sync = respx.post(SYNC_URL).respond(200, json={})
    ask = AppAsk("web-dev", "auto")
    result = await perform(client, request(ask), ask, repo=None, now=NOW)
    assert (result.outcome, result.mode) == ("refreshed", "refresh")
    refreshes = [call.request.url.params.get("refresh") for call in route.calls]
    assert refreshes == [None, "normal"]  # read the app first, then one refresh
    assert not sync.called


@respx.mock
async def test_a_manual_app_is_synced_to_its_own_target_revision_with_the_promotion_in_infos(
    client: ArgoCDClient,
) -> None:
    respx.get(APP_URL).respond(200, json=application(automated=False))
    sync = respx.post(SYNC_URL).respond(200, json=application(automated=False))
    result = await perform(
        client, request(AppAsk("web-dev", "auto")), AppAsk("web-dev", "auto"), repo=None, now=NOW
    )
    body = json.loads(sync.calls.last.request.content)
    assert "revision" not in body and "revisions" not in body and "sourcePositions" not in body
    assert body["infos"] == [{"name": PROMOTION_INFO_KEY, "value": "dev/1f3c0d2e4b5a"}]
    assert (result.outcome, result.mode) == ("started", "sync")


@respx.mock
async def test_an_app_pinned_to_a_tag_is_asked_nothing(client: ArgoCDClient) -> None:
    respx.get(APP_URL).respond(200, json=application(automated=False, target="v1.4.0"))
    sync = respx.post(SYNC_URL).respond(200, json={})
    result = await perform(
        client, request(AppAsk("web-dev", "auto")), AppAsk("web-dev", "auto"), repo=None, now=NOW
    )
    assert (result.outcome, result.mode) == ("nothing", "none")
    assert not sync.called


@respx.mock
@pytest.mark.parametrize(
    "message",
    [
        "another operation is already in progress",
        "error setting app operation: another operation is already in progress",
    ],
)
async def test_an_operation_in_progress_is_adopted_when_ours_even_wrapped(
    client: ArgoCDClient, message: str
) -> None:
    respx.post(SYNC_URL).respond(400, json=refusal(9, message))
    running = {"sync": {}, "info": [{"name": PROMOTION_INFO_KEY, "value": "dev/1f3c0d2e4b5a"}]}
    respx.get(APP_URL).respond(200, json=application(automated=False, operation=running))
    result = await client.sync("main", "web-dev", infos={PROMOTION_INFO_KEY: "dev/1f3c0d2e4b5a"})
    assert result.outcome == "adopted"


@respx.mock
async def test_an_app_being_deleted_is_a_refusal_a_person_must_resolve(client: ArgoCDClient) -> None:
    respx.post(SYNC_URL).respond(400, json=refusal(9, "application is deleting"))
    result = await client.sync("main", "web-dev")
    assert result.outcome == "deleting" and result.refused
    assert "being deleted" in result.message


@respx.mock
async def test_a_sync_window_block_names_the_window(client: ArgoCDClient) -> None:
    respx.post(SYNC_URL).respond(403, json=refusal(7, "cannot sync: blocked by sync window"))
    respx.get(WINDOWS_URL).respond(
        200,
        json={
            "activeWindows": [
                {"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "manualSync": False}
            ],
            "assignedWindows": [{"kind": "deny", "schedule": "0 22 * * *", "duration": "1h"}],
            "canSync": False,
        },
    )
    result = await client.sync("main", "web-dev")
    assert result.outcome == "blocked" and not result.refused
    assert "blocked by sync window deny '0 22 * * *' for 1h" in result.message


@respx.mock
async def test_an_invalid_sync_window_is_a_block_quoting_argo_cd_not_a_missing_app(
    client: ArgoCDClient,
) -> None:
    message = "cannot sync: invalid sync window: Cannot parse schedule '0 25 * * *'"
    respx.post(SYNC_URL).respond(403, json=refusal(7, message))
    result = await client.sync("main", "web-dev")
    assert result.outcome == "blocked"
    assert "invalid sync window: Cannot parse schedule '0 25 * * *'" in result.message


@respx.mock
@pytest.mark.parametrize(
    ("rule", "project"),
    [("sync", None), ("override", "shop")],
)
async def test_a_token_without_the_rbac_rule_is_told_which_policy_line_to_add(
    client: ArgoCDClient, rule: str, project: str | None
) -> None:
    denied = f"permission denied: applications, {rule}, shop/web-dev, sub: ferry, iat: 2025-03-01T09:00:00Z"
    respx.post(SYNC_URL).respond(403, json=refusal(7, denied))
    result = await client.sync("main", "web-dev", project=project)
    assert result.outcome == "forbidden" and result.refused
    assert f'"p, <role>, applications, {rule}, shop/web-dev, allow"' in result.message
    assert "argocd-rbac-cm" in result.message


@respx.mock
@pytest.mark.parametrize(
    ("status", "body", "project"),
    [
        (403, refusal(7, "permission denied"), None),
        (404, refusal(5, 'applications.argoproj.io "web-dev" not found'), "default"),
    ],
)
async def test_a_missing_app_is_missing_not_forbidden(
    client: ArgoCDClient, status: int, body: dict[str, Any], project: str | None
) -> None:
    respx.post(SYNC_URL).respond(status, json=body)
    result = await client.sync("main", "web-dev", project=project)
    assert result.outcome == "missing" and not result.refused


@respx.mock
async def test_a_hard_refresh_asks_for_hard(client: ArgoCDClient) -> None:
    route = respx.get(APP_URL).respond(200, json=application(automated=True))
    result = await client.refresh("main", "web-dev", hard=True)
    assert route.calls.last.request.url.params["refresh"] == "hard"
    assert result.outcome == "refreshed"
