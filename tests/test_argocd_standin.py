"""The Argo CD stand-in over real loopback HTTP and a real git repository, driven by ArgoCDClient.

Every response is checked against Argo CD's swagger.json: each key exists in the schema, types agree,
required fields are present. Behaviour tests for branch tracking, auto-sync, refusals, rendering,
health and multi-source apps are in the other test_argocd_standin_*.py files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from argocd_standin_kit import (
    START,
    FakeClock,
    GitRepo,
    Sandbox,
    assert_shape,
    running,
    schema_problems,
    shop_repo,
    swagger,
)
from pydantic import SecretStr

from bot.argocd import PROMOTION_INFO_KEY, ArgoCDClient
from bot.core.verdict import app_verdict, stage_verdict
from bot.errors import ArgoCDError
from bot.sandbox.argocd_apps import git_app
from bot.settings import ArgoCDServer

SHAPES = {
    "": "v1alpha1Application",
    "/resource-tree": "v1alpha1ApplicationTree",
    "/syncwindows": "applicationApplicationSyncWindowsResponse",
}
CHART = {
    "charts/web/Chart.yaml": "apiVersion: v2\nname: web\nversion: 0.1.0\nappVersion: 1.0.0\n",
    "charts/web/values.yaml": "image:\n  repository: ghcr.io/acme/web\n  tag: ''\n",
    "charts/web/templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  template:
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
""",
}


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return shop_repo(tmp_path / "gitops")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(repo: GitRepo, clock: FakeClock) -> AsyncIterator[Sandbox]:
    repo.commit(CHART, "chart")
    apps = {
        "web-dev": git_app("overlays/dev"),
        "web-values": git_app("charts/web", value_files=["values-dev.yaml"]),
    }
    repo.commit({"charts/web/values-dev.yaml": "image: {tag: 1.0.0}\n"}, "values")
    async with running(repo, clock, apps) as sandbox:
        yield sandbox


# --- shapes -------------------------------------------------------------------------------------


def test_the_schema_check_can_fail() -> None:
    definitions = swagger()["definitions"]
    bad = {"status": {"reconciledAt": 5, "sync": {"revison": "x"}}}
    problems = list(schema_problems(bad, definitions["v1alpha1Application"], definitions))
    assert problems == [
        "$.status.reconciledAt: expected string, got int",
        "$.status.sync: 'revison' is not in the schema",
    ]


async def test_every_response_matches_swagger_through_a_whole_sync(sandbox: Sandbox) -> None:
    broken = sandbox.repo.release("1.0.1-broken")
    async with sandbox.raw() as http:
        synced = await http.post(
            "/api/v1/applications/web-dev/sync",
            json={"revision": broken, "prune": True, "infos": [{"name": PROMOTION_INFO_KEY, "value": "p1"}]},
        )
        assert synced.status_code == 200
        assert_shape(synced.json(), "v1alpha1Application")
        again = await http.post("/api/v1/applications/web-dev/sync", json={"revision": broken})
        assert again.status_code == 400
        assert_shape(again.json(), "runtimeError")
    seen = []
    for _ in range(8):  # 12 s: past the 10 s progress deadline
        async with sandbox.raw() as http:
            for path in ("", "/resource-tree", "/syncwindows"):
                response = await http.get(f"/api/v1/applications/web-dev{path}")
                assert response.status_code == 200
                assert_shape(response.json(), SHAPES[path])
                if not path:
                    seen.append(response.json()["status"]["health"]["status"])
            listing = await http.get("/api/v1/applications")
            assert_shape(listing.json(), "v1alpha1ApplicationList")
        sandbox.clock.advance(1.5)
    assert seen == ["Progressing"] * 7 + ["Degraded"]


async def test_error_bodies_match_swagger_and_argo_cd_codes(sandbox: Sandbox) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as anonymous:
        unauthenticated = await anonymous.get("/api/v1/applications/web-dev")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == 16
    assert_shape(unauthenticated.json(), "runtimeError")
    async with sandbox.raw() as http:
        denied = await http.get("/api/v1/applications/nope")
        missing = await http.get("/api/v1/applications/nope", params={"project": "default"})
    assert (denied.status_code, denied.json()) == (
        403,
        {"error": "permission denied", "code": 7, "message": "permission denied"},
    )
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": 'applications.argoproj.io "nope" not found', "code": 5,
         "message": 'applications.argoproj.io "nope" not found'},
    )  # fmt: skip
    assert_shape(missing.json(), "runtimeError")


# --- behaviour through the client ---------------------------------------------------------------


async def test_each_app_starts_healthy_at_its_target_revision(sandbox: Sandbox) -> None:
    state = await sandbox.client.get_app("sandbox", "web-dev")
    head = sandbox.repo.head()
    assert app_verdict(state, head).state == "success"
    assert state.images == ("ghcr.io/acme/web:1.0.0",)
    assert (await sandbox.client.get_app("sandbox", "web-values")).images == ("ghcr.io/acme/web:1.0.0",)


async def test_sync_progresses_then_turns_healthy_at_the_full_sha(sandbox: Sandbox) -> None:
    commit = sandbox.repo.release("1.1.0")
    result = await sandbox.client.sync(
        "sandbox", "web-dev", revision=commit[:7], infos={PROMOTION_INFO_KEY: "dev-111"}
    )
    assert result.outcome == "started"
    during = await sandbox.client.get_app("sandbox", "web-dev")
    assert during.health_status == "Progressing"
    assert during.operation_phase == "Running"
    assert during.operation_requested
    assert app_verdict(during, commit).state == "pending"
    sandbox.clock.advance(2.0)
    after = await sandbox.client.get_app("sandbox", "web-dev")
    assert (after.sync_status, after.sync_revision, after.health_status) == ("Synced", commit, "Healthy")
    assert after.operation_infos == {PROMOTION_INFO_KEY: "dev-111"}
    assert after.images == ("ghcr.io/acme/web:1.1.0",)
    assert app_verdict(after, commit).state == "success"
    assert sandbox.standin.syncs == [("web-dev", commit[:7], {PROMOTION_INFO_KEY: "dev-111"}, START)]


async def test_broken_release_progresses_until_the_deadline_then_degrades(sandbox: Sandbox) -> None:
    # Before: Degraded as soon as the sync finished, with the pod's message on the Deployment. Real
    # Kubernetes keeps the Deployment Progressing until progressDeadlineSeconds; the back-off is the Pod's.
    commit = sandbox.repo.release("1.2.0-broken")
    await sandbox.client.sync("sandbox", "web-dev", revision=commit)
    sandbox.clock.advance(5)
    waiting = await sandbox.client.get_app("sandbox", "web-dev")
    assert (waiting.operation_phase, waiting.health_status) == ("Succeeded", "Progressing")
    sandbox.clock.advance(5)
    state = await sandbox.client.get_app("sandbox", "web-dev")
    now = datetime.fromtimestamp(sandbox.clock.now, UTC)
    verdict = stage_verdict(
        [state], commit, requested_at=now, now=now, timeout=timedelta(minutes=15), soak=timedelta(0)
    )
    assert verdict.state == "failure"
    assert 'Deployment "web" exceeded its progress deadline' in verdict.reason
    async with sandbox.raw() as http:
        tree = (await http.get("/api/v1/applications/web-dev/resource-tree")).json()
    pods = [node for node in tree["nodes"] if node["kind"] == "Pod"]
    assert pods and pods[0]["health"] == {
        "status": "Degraded",
        "message": 'Back-off pulling image "ghcr.io/acme/web:1.2.0-broken"',
    }
    assert {"name": "Status Reason", "value": "ImagePullBackOff"} in pods[0]["info"]


async def test_missing_app_reads_as_not_existing_and_its_sync_as_missing(sandbox: Sandbox) -> None:
    assert not (await sandbox.client.get_app("sandbox", "api-dev")).exists
    assert not (await sandbox.client.get_app("sandbox", "api-dev", project="default")).exists
    result = await sandbox.client.sync("sandbox", "api-dev", revision=sandbox.repo.head())
    assert result.outcome == "missing"


async def test_wrong_token_is_refused_permanently(sandbox: Sandbox) -> None:
    server = ArgoCDServer(url=sandbox.base_url, token=SecretStr("wrong"))
    async with ArgoCDClient({"sandbox": server}) as client:
        with pytest.raises(ArgoCDError) as caught:
            await client.get_app("sandbox", "web-dev")
    assert not caught.value.temporary
    assert "invalid session" in str(caught.value)


async def test_a_second_sync_of_the_same_promotion_adopts_the_running_one(sandbox: Sandbox) -> None:
    commit = sandbox.repo.release("1.3.0")
    infos = {PROMOTION_INFO_KEY: "dev-333"}
    assert (
        await sandbox.client.sync("sandbox", "web-dev", revision=commit, infos=infos)
    ).outcome == "started"
    assert (
        await sandbox.client.sync("sandbox", "web-dev", revision=commit, infos=infos)
    ).outcome == "adopted"
    other = {PROMOTION_INFO_KEY: "dev-444"}
    assert (await sandbox.client.sync("sandbox", "web-dev", revision=commit, infos=other)).outcome == "busy"
    assert len(sandbox.standin.syncs) == 1


async def test_an_operation_started_by_someone_else_makes_ferry_wait(sandbox: Sandbox) -> None:
    commit = sandbox.repo.release("1.4.0")
    sandbox.standin.start_foreign_operation("web-dev", sandbox.repo.head())
    result = await sandbox.client.sync("sandbox", "web-dev", revision=commit, infos={PROMOTION_INFO_KEY: "p"})
    assert result.outcome == "busy"
    assert "admin" in result.message
    sandbox.clock.advance(2.0)
    assert (await sandbox.client.sync("sandbox", "web-dev", revision=commit)).outcome == "started"


async def test_injected_server_errors_are_retried_by_the_client(sandbox: Sandbox) -> None:
    sandbox.standin.fail_next("GET", "/api/v1/applications/web-dev", 503, times=2)
    state = await sandbox.client.get_app("sandbox", "web-dev")
    assert state.health_status == "Healthy"
    assert sandbox.standin.requests["GET /api/v1/applications/web-dev"] == 3
    assert sandbox.client.requests_made == 3


async def test_sync_to_an_unknown_commit_fails_the_operation(sandbox: Sandbox) -> None:
    missing = "ffffffffffffffffffffffffffffffffffffffff"
    await sandbox.client.sync("sandbox", "web-dev", revision=missing)
    sandbox.clock.advance(2.0)
    state = await sandbox.client.get_app("sandbox", "web-dev")
    verdict = app_verdict(state, missing)
    assert (state.operation_phase, verdict.state) == ("Error", "failure")
    assert f"not our ref {missing}" in verdict.reason


async def test_reconciled_at_moves_at_each_comparison_not_at_each_read(sandbox: Sandbox) -> None:
    # Before: reconciledAt was "now" on every read. Argo CD moves it only when it compares
    # (controller/appcontroller.go: after an operation, on refresh, on the reconciliation timeout).
    commit = sandbox.repo.release("1.5.0")
    await sandbox.client.sync("sandbox", "web-dev", revision=commit)
    sandbox.clock.advance(3.0)
    first = await sandbox.client.get_app("sandbox", "web-dev")
    sandbox.clock.advance(10.0)
    unchanged = await sandbox.client.get_app("sandbox", "web-dev")
    sandbox.clock.advance(180.0)
    polled = await sandbox.client.get_app("sandbox", "web-dev")
    assert first.operation_finished_at is not None and first.reconciled_at is not None
    assert first.reconciled_at >= first.operation_finished_at
    assert unchanged.reconciled_at == first.reconciled_at
    assert polled.reconciled_at == datetime.fromtimestamp(sandbox.clock.now, UTC)


async def test_a_helm_chart_in_the_repository_is_rendered_with_its_value_files(sandbox: Sandbox) -> None:
    # Before: an app "path" could name a values file, read as if it were the deployment.
    commit = sandbox.repo.commit({"charts/web/values-dev.yaml": "image: {tag: 2.0.0-broken}\n"}, "values")
    await sandbox.client.sync("sandbox", "web-values", revision=commit)
    sandbox.clock.advance(11.0)
    state = await sandbox.client.get_app("sandbox", "web-values")
    assert state.images == ("ghcr.io/acme/web:1.0.0", "ghcr.io/acme/web:2.0.0-broken")  # old pods run on
    assert state.health_status == "Degraded"
    body = await sandbox.get("web-values")
    assert body["status"]["sourceType"] == "Helm"
    assert [r["name"] for r in body["status"]["resources"]] == ["web-values"]
