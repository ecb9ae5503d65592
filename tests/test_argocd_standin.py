"""The Argo CD stand-in over real loopback HTTP and a real git repository, driven by ArgoCDClient.

Every response is checked against Argo CD's swagger.json: each key exists in the schema, types agree,
required fields are present.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.argocd import PROMOTION_INFO_KEY, ArgoCDClient
from bot.core.verdict import app_verdict, stage_verdict
from bot.errors import ArgoCDError
from bot.sandbox.argocd_standin import ArgoCDStandIn, deployed_images
from bot.settings import ArgoCDServer

TOKEN = "sandbox-token"
START = 1_740_823_200.0  # 2025-03-01T10:00:00Z

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources: [deployment.yaml]
images:
  - name: ghcr.io/acme/web
    newTag: "{tag}"
"""
DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:0.0.1
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "ferry@example.com")
        self.git("config", "user.name", "Ferry Test")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def commit(self, files: dict[str, str], message: str) -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    def release(self, tag: str) -> str:
        return self.commit({"overlays/dev/kustomization.yaml": KUSTOMIZATION.format(tag=tag)}, f"web {tag}")


@dataclass
class Sandbox:
    repo: GitRepo
    clock: FakeClock
    standin: ArgoCDStandIn
    client: ArgoCDClient
    base_url: str
    first: str

    def raw(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers={"Authorization": f"Bearer {TOKEN}"})


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    return GitRepo(tmp_path / "gitops")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def sandbox(repo: GitRepo, clock: FakeClock) -> AsyncIterator[Sandbox]:
    repo.commit({"overlays/dev/deployment.yaml": DEPLOYMENT}, "base")
    first = repo.release("1.0.0")
    standin = ArgoCDStandIn(
        repo.path,
        token=TOKEN,
        apps={"web-dev": "overlays/dev", "web-values": "charts/values-dev.yaml"},
        progress_seconds=2.0,
        clock=clock,
    )
    base_url = await standin.start()
    server = ArgoCDServer(url=base_url, token=SecretStr(TOKEN), timeout=5.0)

    async def no_sleep(_: float) -> None:
        return None

    client = ArgoCDClient({"sandbox": server}, sleep=no_sleep)
    try:
        yield Sandbox(repo, clock, standin, client, base_url, first)
    finally:
        await client.aclose()
        await standin.stop()


@pytest.fixture(scope="module")
def swagger() -> dict[str, Any]:
    path = Path(__file__).resolve().parent / "fixtures" / "argocd" / "swagger.json"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def schema_problems(
    value: Any, schema: dict[str, Any], definitions: dict[str, Any], where: str = "$"
) -> Iterator[str]:
    """Where ``value`` strays from a Swagger 2.0 schema: unknown keys, wrong types, missing required."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    kind = schema.get("type", "object" if "properties" in schema else None)
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        yield f"{where}: expected {kind}, got {type(value).__name__}"
        return
    if kind == "string" and schema.get("format") == "date-time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            yield f"{where}: {value!r} is not a date-time"
    if kind == "array":
        for index, item in enumerate(value):
            yield from schema_problems(item, schema.get("items", {}), definitions, f"{where}[{index}]")
    if kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                yield f"{where}: required {name!r} missing"
        for key, item in value.items():
            if key in properties:
                yield from schema_problems(item, properties[key], definitions, f"{where}.{key}")
            elif isinstance(extra, dict):
                yield from schema_problems(item, extra, definitions, f"{where}.{key}")
            else:
                yield f"{where}: {key!r} is not in the schema"


def assert_shape(value: Any, definition: str, swagger: dict[str, Any]) -> None:
    definitions = swagger["definitions"]
    problems = list(schema_problems(value, definitions[definition], definitions))
    assert problems == [], "\n".join(problems)


async def get_json(sandbox: Sandbox, path: str, **params: str) -> tuple[int, Any]:
    async with sandbox.raw() as http:
        response = await http.get(path, params=params)
    return response.status_code, response.json()


# --- shapes -------------------------------------------------------------------------------------


def test_the_schema_check_can_fail(swagger: dict[str, Any]) -> None:
    definitions = swagger["definitions"]
    bad = {"status": {"reconciledAt": 5, "sync": {"revison": "x"}}}
    problems = list(schema_problems(bad, definitions["v1alpha1Application"], definitions))
    assert problems == [
        "$.status.reconciledAt: expected string, got int",
        "$.status.sync: 'revison' is not in the schema",
    ]


async def test_every_response_matches_swagger_through_a_whole_sync(
    sandbox: Sandbox, swagger: dict[str, Any]
) -> None:
    broken = sandbox.repo.release("1.0.1-broken")
    async with sandbox.raw() as http:
        synced = await http.post(
            "/api/v1/applications/web-dev/sync",
            json={"revision": broken, "prune": True, "infos": [{"name": PROMOTION_INFO_KEY, "value": "p1"}]},
        )
        assert synced.status_code == 200
        assert_shape(synced.json(), "v1alpha1Application", swagger)
        again = await http.post("/api/v1/applications/web-dev/sync", json={"revision": broken})
        assert again.status_code == 400
        assert_shape(again.json(), "runtimeError", swagger)
    seen = []
    for _ in range(3):
        status, body = await get_json(sandbox, "/api/v1/applications/web-dev")
        assert status == 200
        assert_shape(body, "v1alpha1Application", swagger)
        status, listing = await get_json(sandbox, "/api/v1/applications")
        assert_shape(listing, "v1alpha1ApplicationList", swagger)
        seen.append(body["status"]["health"]["status"])
        sandbox.clock.advance(1.5)
    assert seen == ["Progressing", "Progressing", "Degraded"]


async def test_error_bodies_match_swagger_and_argo_cd_codes(
    sandbox: Sandbox, swagger: dict[str, Any]
) -> None:
    async with httpx.AsyncClient(base_url=sandbox.base_url) as anonymous:
        unauthenticated = await anonymous.get("/api/v1/applications/web-dev")
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["code"] == 16
    assert_shape(unauthenticated.json(), "runtimeError", swagger)
    status, denied = await get_json(sandbox, "/api/v1/applications/nope")
    assert (status, denied) == (
        403,
        {"error": "permission denied", "code": 7, "message": "permission denied"},
    )
    status, missing = await get_json(sandbox, "/api/v1/applications/nope", project="default")
    assert (status, missing["code"]) == (404, 5)
    assert_shape(missing, "runtimeError", swagger)


# --- behaviour through the client ---------------------------------------------------------------


async def test_each_app_starts_healthy_at_head(sandbox: Sandbox) -> None:
    state = await sandbox.client.get_app("sandbox", "web-dev")
    assert app_verdict(state, sandbox.first).state == "success"
    assert state.images == ("ghcr.io/acme/web:1.0.0",)


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


async def test_broken_release_degrades_with_the_image_in_the_reason(sandbox: Sandbox) -> None:
    commit = sandbox.repo.release("1.2.0-broken")
    await sandbox.client.sync("sandbox", "web-dev", revision=commit)
    sandbox.clock.advance(5)
    state = await sandbox.client.get_app("sandbox", "web-dev")
    now = datetime.fromtimestamp(sandbox.clock.now, UTC)
    verdict = stage_verdict(
        [state], commit, requested_at=now, now=now, timeout=timedelta(minutes=15), soak=timedelta(0)
    )
    assert verdict.state == "failure"
    assert verdict.reason.startswith("web-dev: Degraded: Deployment/web-dev: Back-off pulling image")
    assert "ghcr.io/acme/web:1.2.0-broken" in verdict.reason
    assert "ImagePullBackOff" in verdict.details[0]


async def test_missing_app_reads_as_not_existing_and_its_sync_as_missing(sandbox: Sandbox) -> None:
    assert not (await sandbox.client.get_app("sandbox", "api-dev")).exists
    assert not (await sandbox.client.get_app("sandbox", "api-dev", project="default")).exists
    assert (await sandbox.client.sync("sandbox", "api-dev", revision=sandbox.first)).outcome == "missing"


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
    sandbox.standin.start_foreign_operation("web-dev", sandbox.first)
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


async def test_sync_to_an_unknown_revision_fails_the_operation(sandbox: Sandbox) -> None:
    missing = "ffffffffffffffffffffffffffffffffffffffff"
    await sandbox.client.sync("sandbox", "web-dev", revision=missing)
    sandbox.clock.advance(2.0)
    state = await sandbox.client.get_app("sandbox", "web-dev")
    verdict = app_verdict(state, missing)
    assert verdict.state == "failure"
    assert "unable to resolve" in verdict.reason


async def test_reconciled_at_advances_after_the_operation_finishes(sandbox: Sandbox) -> None:
    commit = sandbox.repo.release("1.5.0")
    await sandbox.client.sync("sandbox", "web-dev", revision=commit)
    sandbox.clock.advance(3.0)
    first = await sandbox.client.get_app("sandbox", "web-dev")
    sandbox.clock.advance(10.0)
    second = await sandbox.client.get_app("sandbox", "web-dev")
    assert first.operation_finished_at is not None
    assert first.reconciled_at is not None
    assert second.reconciled_at is not None
    assert first.reconciled_at >= first.operation_finished_at
    assert second.reconciled_at - first.reconciled_at == timedelta(seconds=10)


async def test_an_app_made_of_a_helm_values_file_is_deployed_from_that_file(sandbox: Sandbox) -> None:
    values = "image:\n  repository: ghcr.io/acme/web\n  tag: 2.0.0-broken\n"
    commit = sandbox.repo.commit({"charts/values-dev.yaml": values}, "values")
    await sandbox.client.sync("sandbox", "web-values", revision=commit)
    sandbox.clock.advance(2.0)
    state = await sandbox.client.get_app("sandbox", "web-values")
    assert state.images == ("ghcr.io/acme/web:2.0.0-broken",)
    assert state.health_status == "Degraded"


def test_kustomize_overrides_replace_the_image_they_name() -> None:
    assert deployed_images(DEPLOYMENT, KUSTOMIZATION.format(tag="1.0.0")) == ["ghcr.io/acme/web:1.0.0"]
    assert deployed_images(DEPLOYMENT, "not: [valid") == ["ghcr.io/acme/web:0.0.1"]
