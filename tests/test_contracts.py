"""The recorded shapes in tests/fixtures/ against the descriptions they follow.

GitHub webhook payloads are held to GitHub's published OpenAPI description (``x-webhooks``; needs
``FERRY_GITHUB_OPENAPI``, see ``tests/github_openapi.py``) and parsed by githubkit's 2022-11-28 models (a
later cut of the same description). Argo CD bodies are held to the trimmed Argo CD description in
``tests/fixtures/argocd/swagger.json``, strictly: a key the description does not name is an error, as
Argo CD's Go types could not produce it. What the stand-ins send is checked in test_contracts_standin.py
and test_argocd_standin.py.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
import respx
from github_openapi import GitHubDescription
from githubkit_schemas.v2022_11_28.webhooks import WebhookNamespace
from jsonschema import Draft4Validator
from pydantic import SecretStr

from bot.argocd import PROMOTION_INFO_KEY, ArgoCDClient, app_state_from_application
from bot.settings import ArgoCDServer

FIXTURES = Path(__file__).resolve().parent / "fixtures"
WEBHOOKS = FIXTURES / "github-webhooks"
ARGOCD = FIXTURES / "argocd"
WEBHOOK_FILES = sorted(WEBHOOKS.glob("*.json"))
# Each Argo CD fixture and the definition it is an instance of.
ARGOCD_FILES = {
    "application-healthy.json": "v1alpha1Application",
    "application-syncing.json": "v1alpha1Application",
    "application-degraded.json": "v1alpha1Application",
    "application-newer-revision.json": "v1alpha1Application",
    "application-adopted.json": "v1alpha1Application",
    "application-multisource-git-second.json": "v1alpha1Application",
    "application-list.json": "v1alpha1ApplicationList",
    "sync-request.json": "applicationApplicationSyncRequest",
    "error-operation-in-progress.json": "runtimeError",
    "error-permission-denied.json": "runtimeError",
}
DEPLOY = "2011efc948a207c52267cb635d39dd9f452bf6e0"  # the deploy commit the Argo CD fixtures name


def event_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


# --- GitHub webhooks -------------------------------------------------------------------------------
def test_the_webhook_fixtures_cover_every_delivery_ferry_handles() -> None:
    present = {(event_of(p), load(p).get("action"), load(p).get("pull_request", {}).get("merged")) for p in
               WEBHOOK_FILES}  # fmt: skip
    wanted = {
        ("pull_request", "opened", False),
        ("pull_request", "closed", False),
        ("pull_request", "closed", True),
        ("pull_request", "synchronize", False),
        ("push", None, None),
        ("issue_comment", "created", None),
        ("issue_comment", "edited", None),
        ("commit_comment", "created", None),
        ("status", None, None),
        ("check_suite", "completed", None),
        ("installation", "created", None),
        ("installation_repositories", "added", None),
        ("package", "published", None),
        ("ping", None, None),
    }
    assert wanted <= present
    containers = [load(p)["package"] for p in WEBHOOK_FILES if event_of(p) == "package"]
    assert any(package["package_type"] == "CONTAINER" for package in containers)


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=lambda p: p.name)
def test_a_webhook_fixture_matches_githubs_description(
    path: Path, github_description: GitHubDescription
) -> None:
    payload = load(path)
    assert github_description.webhook_problems(event_of(path), payload.get("action"), payload) == []


@pytest.mark.parametrize("path", WEBHOOK_FILES, ids=lambda p: p.name)
def test_a_webhook_fixture_parses_with_githubkits_models(path: Path) -> None:
    WebhookNamespace.parse(event_of(path), path.read_bytes())  # raises when a model rejects the payload


def test_the_description_check_finds_what_a_payload_gets_wrong(github_description: GitHubDescription) -> None:
    payload = load(WEBHOOKS / "pull_request.opened.json")
    del payload["pull_request"]["head"]["sha"]
    payload["pull_request"]["merged"] = "no"
    payload["pull_request"]["base"]["repo"]["stars"] = 3
    problems = github_description.webhook_problems("pull_request", "opened", payload)
    assert problems == [
        "(top)/pull_request/base/repo: 'stars' is not in GitHub's description",
        "pull_request/head: 'sha' is a required property",
        "pull_request/merged: 'no' is not of type 'boolean'",
    ]


def test_the_webhook_fixtures_are_what_make_fixtures_writes() -> None:
    script = WEBHOOKS / "make_fixtures.py"
    done = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


# --- Argo CD ---------------------------------------------------------------------------------------
def _strict(schema: Any) -> None:
    """Close every object schema that names its properties: Argo CD's Go types have no other fields."""
    if isinstance(schema, dict):
        if "properties" in schema and "additionalProperties" not in schema:
            schema["additionalProperties"] = False
        for key in ("properties", "definitions"):
            for child in schema.get(key, {}).values():
                _strict(child)
        for key in ("items", "additionalProperties"):
            _strict(schema.get(key))
        for child in schema.get("allOf", []):
            _strict(child)


@pytest.fixture(scope="module")
def argocd_swagger() -> dict[str, Any]:
    return load(ARGOCD / "swagger.json")


def argocd_problems(swagger: dict[str, Any], definition: str, value: Any) -> list[str]:
    definitions = copy.deepcopy(swagger["definitions"])
    _strict({"definitions": definitions})
    schema = {"$ref": f"#/definitions/{definition}", "definitions": definitions}
    validator = Draft4Validator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)
    return sorted(
        f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in validator.iter_errors(value)
    )


def test_every_argocd_fixture_is_listed_with_its_definition() -> None:
    present = {p.name for p in ARGOCD.glob("*.json")} - {"swagger.json"}
    assert present == set(ARGOCD_FILES)


@pytest.mark.parametrize(("name", "definition"), sorted(ARGOCD_FILES.items()))
def test_an_argocd_fixture_matches_argo_cds_description(
    name: str, definition: str, argocd_swagger: dict[str, Any]
) -> None:
    assert argocd_problems(argocd_swagger, definition, load(ARGOCD / name)) == []


def test_the_argocd_check_finds_an_unknown_key_a_wrong_type_and_a_bad_time(
    argocd_swagger: dict[str, Any],
) -> None:
    app = load(ARGOCD / "application-healthy.json")
    app["status"]["sync"]["revison"] = DEPLOY
    app["status"]["health"]["status"] = 1
    app["status"]["reconciledAt"] = "yesterday"
    assert argocd_problems(argocd_swagger, "v1alpha1Application", app) == [
        "status/health/status: 1 is not of type 'string'",
        "status/reconciledAt: 'yesterday' is not a 'date-time'",
        "status/sync: Additional properties are not allowed ('revison' was unexpected)",
    ]


def test_the_trimmed_argocd_description_is_closed_and_holds_the_operations_ferry_calls(
    argocd_swagger: dict[str, Any],
) -> None:
    text = json.dumps(argocd_swagger)
    named = {ref.split('"', 1)[0] for ref in text.split('"$ref": "#/definitions/')[1:]}
    assert named <= set(argocd_swagger["definitions"])
    operations = {(path, method) for path, ops in argocd_swagger["paths"].items() for method in ops}
    assert operations == {
        ("/api/v1/applications", "get"),
        ("/api/v1/applications/{name}", "get"),
        ("/api/v1/applications/{name}/sync", "post"),
        ("/api/v1/applications/{applicationName}/resource-tree", "get"),
        ("/api/v1/applications/{name}/syncwindows", "get"),
    }
    assert "Apache License 2.0" in argocd_swagger["info"]["description"]


def test_ferry_reads_each_argocd_fixture_as_argo_cd_means_it() -> None:
    healthy = app_state_from_application(load(ARGOCD / "application-healthy.json"))
    assert (healthy.sync_status, healthy.sync_revision, healthy.health_status) == (
        "Synced",
        DEPLOY,
        "Healthy",
    )
    assert healthy.operation_phase == "Succeeded" and not healthy.operation_requested
    assert healthy.operation_infos == {PROMOTION_INFO_KEY: "staging-5f0c2e9a81b4"}
    assert healthy.images == ("ghcr.io/acme/web:1.4.2",)
    syncing = app_state_from_application(load(ARGOCD / "application-syncing.json"))
    assert (syncing.operation_phase, syncing.operation_requested) == ("Running", True)
    assert syncing.operation_initiated_by == "ferry" and syncing.health_status == "Progressing"
    degraded = app_state_from_application(load(ARGOCD / "application-degraded.json"))
    assert degraded.unhealthy_resources == (
        'Deployment/web: Back-off pulling image "ghcr.io/acme/web:1.4.3": ImagePullBackOff',
    )


@respx.mock
async def test_ferrys_sync_request_is_the_fixture() -> None:
    server = ArgoCDServer(url="https://argocd.acme.example", token=SecretStr("argocd-token"))
    route = respx.post("https://argocd.acme.example/api/v1/applications/web-staging/sync").mock(
        return_value=httpx.Response(200, json=load(ARGOCD / "application-syncing.json"))
    )
    async with ArgoCDClient({"main": server}) as client:
        result = await client.sync(
            "main",
            "web-staging",
            revision=DEPLOY,
            prune=True,
            app_namespace="argocd",
            project="shop",
            infos={PROMOTION_INFO_KEY: "staging-5f0c2e9a81b4"},
            sync_options=["ServerSideApply=true"],
        )
    assert result.outcome == "started"
    assert json.loads(route.calls.last.request.content) == load(ARGOCD / "sync-request.json")
