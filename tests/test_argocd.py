"""ArgoCDClient against respx: request shapes from swagger.json, classification, adoption, retries."""

from __future__ import annotations

import json
import ssl
from pathlib import Path
from typing import Any

import certifi
import httpx
import pytest
import respx
from pydantic import SecretStr

from bot.argocd import PROMOTION_INFO_KEY, ArgoCDClient
from bot.errors import ArgoCDError
from bot.settings import ArgoCDServer

TOKEN = "s3cr3t-token-value"
BASE = "https://argocd.example.com"
DEPLOY = "1f3c0d2e4b5a69788796a5b4c3d2e1f0a9b8c7d6"
APP_URL = f"{BASE}/api/v1/applications/web-dev"
SYNC_URL = f"{APP_URL}/sync"
BUSY_TEXT = "another operation is already in progress"
IN_PROGRESS = {"error": BUSY_TEXT, "code": 9, "message": BUSY_TEXT}


class FakeSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


def servers(**changes: Any) -> dict[str, ArgoCDServer]:
    fields: dict[str, Any] = {"url": BASE, "token": SecretStr(TOKEN), "timeout": 5.0}
    fields.update(changes)
    return {"main": ArgoCDServer(**fields)}


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def client(sleep: FakeSleep) -> Any:
    async with ArgoCDClient(servers(), sleep=sleep) as argocd:
        yield argocd


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    path = Path(__file__).resolve().parent / "fixtures" / "argocd" / "swagger.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def running_app(infos: dict[str, str], username: str = "ferry") -> dict[str, Any]:
    operation = {
        "sync": {"revision": DEPLOY},
        "info": [{"name": k, "value": v} for k, v in infos.items()],
        "initiatedBy": {"username": username},
    }
    return {
        "metadata": {"name": "web-dev"},
        "operation": operation,
        "status": {
            "operationState": {
                "operation": operation,
                "phase": "Running",
                "startedAt": "2025-03-01T10:00:00Z",
            },
            "health": {"status": "Progressing"},
        },
    }


@respx.mock
async def test_sync_posts_a_swagger_shaped_body_with_the_bearer_token(
    client: ArgoCDClient, swagger: dict[str, Any]
) -> None:
    route = respx.post(SYNC_URL).respond(200, json={"metadata": {"name": "web-dev"}})
    result = await client.sync(
        "main",
        "web-dev",
        prune=True,
        app_namespace="argocd",
        project="shop",
        infos={PROMOTION_INFO_KEY: "dev-abc123"},
        sync_options=["ServerSideApply=true"],
    )
    assert result.outcome == "started"
    request = route.calls.last.request
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    body = json.loads(request.content)
    assert body == {
        "name": "web-dev",
        "prune": True,
        "appNamespace": "argocd",
        "project": "shop",
        "infos": [{"name": PROMOTION_INFO_KEY, "value": "dev-abc123"}],
        "syncOptions": {"items": ["ServerSideApply=true"]},
    }
    schema = swagger["definitions"]["applicationApplicationSyncRequest"]["properties"]
    assert set(body) <= set(schema)
    assert set(body["infos"][0]) <= set(swagger["definitions"]["v1alpha1Info"]["properties"])
    assert set(body["syncOptions"]) <= set(swagger["definitions"]["applicationSyncOptions"]["properties"])


@respx.mock
async def test_sync_sends_no_revision_so_argo_cd_syncs_the_apps_own_target_revision(
    client: ArgoCDClient,
) -> None:
    # Without a revision Argo CD resolves the app's targetRevision itself (server/application/
    # application.go resolveSourceRevisions); the request used to carry the merge commit as an override.
    route = respx.post(SYNC_URL).respond(200, json={"spec": {"source": {"targetRevision": "main"}}})
    result = await client.sync("main", "web-dev")
    body = json.loads(route.calls.last.request.content)
    assert body == {"name": "web-dev", "prune": False, "infos": []}
    assert (result.outcome, result.mode) == ("started", "sync")
    assert "targetRevision main" in result.message


@respx.mock
async def test_operation_in_progress_carrying_our_promotion_is_adopted(client: ArgoCDClient) -> None:
    respx.post(SYNC_URL).respond(400, json=IN_PROGRESS)
    respx.get(APP_URL).respond(200, json=running_app({PROMOTION_INFO_KEY: "dev-abc123"}))
    result = await client.sync("main", "web-dev", infos={PROMOTION_INFO_KEY: "dev-abc123"})
    assert result.outcome == "adopted"
    assert "dev-abc123" in result.message


@respx.mock
async def test_operation_in_progress_for_another_promotion_is_busy(client: ArgoCDClient) -> None:
    respx.post(SYNC_URL).respond(400, json=IN_PROGRESS)
    respx.get(APP_URL).respond(200, json=running_app({PROMOTION_INFO_KEY: "dev-old999"}))
    result = await client.sync("main", "web-dev", infos={PROMOTION_INFO_KEY: "dev-abc123"})
    assert result.outcome == "busy"


@respx.mock
async def test_operation_started_by_someone_else_is_busy_and_says_who(client: ArgoCDClient) -> None:
    respx.post(SYNC_URL).respond(400, json=IN_PROGRESS)
    respx.get(APP_URL).respond(200, json=running_app({}, username="alice@example.com"))
    result = await client.sync("main", "web-dev", infos={PROMOTION_INFO_KEY: "dev-abc123"})
    assert result.outcome == "busy"
    assert "alice@example.com" in result.message


@respx.mock
async def test_get_app_does_not_ask_for_a_refresh_unless_told(client: ArgoCDClient) -> None:
    route = respx.get(APP_URL).respond(200, json={"metadata": {"name": "web-dev"}})
    await client.get_app("main", "web-dev", app_namespace="argocd")
    assert "refresh" not in route.calls.last.request.url.params
    assert route.calls.last.request.url.params["appNamespace"] == "argocd"
    await client.get_app("main", "web-dev", refresh=True)
    assert route.calls.last.request.url.params["refresh"] == "normal"


@respx.mock
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, {"error": "permission denied", "code": 7, "message": "permission denied"}),
        (404, {"error": 'applications.argoproj.io "web-dev" not found', "code": 5, "message": "not found"}),
    ],
)
async def test_missing_app_reads_as_not_existing(
    client: ArgoCDClient, status: int, body: dict[str, Any]
) -> None:
    respx.get(APP_URL).respond(status, json=body)
    respx.post(SYNC_URL).respond(status, json=body)
    state = await client.get_app("main", "web-dev")
    assert state.name == "web-dev"
    assert not state.exists
    assert (await client.sync("main", "web-dev")).outcome == "missing"


@respx.mock
async def test_refused_token_is_a_permanent_error_that_never_shows_the_token(
    client: ArgoCDClient, sleep: FakeSleep
) -> None:
    respx.get(APP_URL).respond(
        401, json={"error": "invalid session", "code": 16, "message": "invalid session"}
    )
    with pytest.raises(ArgoCDError) as caught:
        await client.get_app("main", "web-dev")
    assert not caught.value.temporary
    assert 'token for server "main"' in str(caught.value)
    assert TOKEN not in str(caught.value)
    assert sleep.delays == []


@respx.mock
async def test_server_errors_are_retried_with_backoff_then_reported_as_temporary(
    client: ArgoCDClient, sleep: FakeSleep
) -> None:
    route = respx.get(APP_URL).respond(500, json={"error": "boom", "code": 13, "message": "etcd unavailable"})
    with pytest.raises(ArgoCDError) as caught:
        await client.get_app("main", "web-dev")
    assert caught.value.temporary
    assert '"main"' in str(caught.value)
    assert '"web-dev"' in str(caught.value)
    assert "etcd unavailable" in str(caught.value)
    assert route.call_count == 4
    assert client.requests_made == 4
    assert sleep.delays == [0.5, 1.0, 2.0]


@respx.mock
async def test_retry_after_is_honoured_and_a_later_success_is_returned(
    client: ArgoCDClient, sleep: FakeSleep
) -> None:
    respx.get(APP_URL).mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "7"}, json={}),
            httpx.Response(
                200, json={"metadata": {"name": "web-dev"}, "status": {"health": {"status": "Healthy"}}}
            ),
        ]
    )
    state = await client.get_app("main", "web-dev")
    assert state.health_status == "Healthy"
    assert sleep.delays == [7.0]


@respx.mock
async def test_timeouts_and_connection_errors_are_temporary(client: ArgoCDClient, sleep: FakeSleep) -> None:
    respx.get(APP_URL).mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(ArgoCDError) as timed_out:
        await client.get_app("main", "web-dev")
    assert timed_out.value.temporary
    assert "within 5s" in str(timed_out.value)
    respx.post(SYNC_URL).mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(ArgoCDError) as unreachable:
        await client.sync("main", "web-dev")
    assert unreachable.value.temporary
    assert "unreachable" in str(unreachable.value)
    assert len(sleep.delays) == 6


@respx.mock
async def test_other_client_errors_are_permanent_and_quote_argo_cd(client: ArgoCDClient) -> None:
    respx.post(SYNC_URL).respond(400, json={"error": "x", "code": 3, "message": "revision must be set"})
    with pytest.raises(ArgoCDError) as caught:
        await client.sync("main", "web-dev")
    assert not caught.value.temporary
    assert "revision must be set" in str(caught.value)


async def test_unknown_server_lists_the_configured_ones(client: ArgoCDClient) -> None:
    with pytest.raises(ArgoCDError) as caught:
        await client.get_app("staging-cluster", "web-dev")
    assert not caught.value.temporary
    assert '"staging-cluster"' in str(caught.value)
    assert '"main"' in str(caught.value)


async def test_missing_ca_file_is_reported_with_the_path(tmp_path: Path) -> None:
    async with ArgoCDClient(servers(ca_file=tmp_path / "nope.pem")) as argocd:
        with pytest.raises(ArgoCDError) as caught:
            await argocd.get_app("main", "web-dev")
    assert "nope.pem" in str(caught.value)


@pytest.mark.parametrize("tls", ["insecure", "ca_file", "default"])
async def test_tls_options_reach_the_http_client(tls: str, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    real = httpx.AsyncClient

    def recording(**kwargs: Any) -> httpx.AsyncClient:
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr("bot.argocd.httpx.AsyncClient", recording)
    choices: dict[str, dict[str, Any]] = {
        "insecure": {"insecure": True},
        "ca_file": {"ca_file": Path(certifi.where())},
        "default": {},
    }
    options = choices[tls]
    async with ArgoCDClient(servers(**options)) as argocd:
        argocd._client("main")
    expected = {"insecure": False, "default": True}.get(tls)
    if expected is None:
        assert isinstance(seen["verify"], ssl.SSLContext)
    else:
        assert seen["verify"] is expected
    assert seen["timeout"] == 5.0


def test_app_url_points_to_the_argo_cd_ui() -> None:
    assert ArgoCDClient(servers()).app_url("main", "web-dev") == f"{BASE}/applications/web-dev"
