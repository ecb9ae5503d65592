"""The GitHub stand-in serves the Deployments API with GitHub's shapes and rules: deployments of a ref to
an environment (auto-merge, required contexts, payloads), deployment statuses (auto-inactive, no webhook
for inactive), environments, filters and pages, and the ``deployment``/``deployment_status`` webhooks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from github_standin_helpers import (
    API,
    OWNER,
    REPO,
    branch_with_change,
    installation_client,
    person,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)
from githubkit.exception import RequestFailed
from githubkit_schemas.v2022_11_28.webhooks import WebhookNamespace

from bot.sandbox.github_standin import GitHubStandIn

# What Ferry's ledger sends (issue: freight history on GitHub Deployments).
LEDGER = {
    "task": "ferry:promote",
    "auto_merge": False,
    "required_contexts": [],
    "environment": "dev",
    "transient_environment": False,
    "production_environment": False,
    "payload": {"freight": "abc123", "images": {"acme/web": "1.5.0"}},
    "description": "web 1.5.0",
}


@pytest.fixture
async def gh(standin: GitHubStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with person(standin, "alice", "admin") as client:
        yield client


async def main_sha(gh: httpx.AsyncClient) -> str:
    return str((await gh.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"])


async def deploy(gh: httpx.AsyncClient, ref: str, **fields: Any) -> httpx.Response:
    return await gh.post(f"{API}/deployments", json={"ref": ref, **LEDGER, **fields})


async def test_a_ledger_deployment_reads_back_through_githubkit_with_its_environment(
    standin: GitHubStandIn,
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    standin.on_event.append(lambda event, payload: seen.append((event, payload)))
    rest = installation_client(standin)
    sha = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    answer = await rest.repos.async_create_deployment(OWNER, REPO, data={"ref": sha, **LEDGER})
    created = answer.parsed_data
    assert (created.sha, created.ref, created.environment, created.task) == (sha, sha, "dev", "ferry:promote")
    assert answer.json()["payload"] == LEDGER["payload"] and created.production_environment is False
    assert created.creator is not None and created.creator.login == "ferry-sandbox[bot]"
    assert created.performed_via_github_app is not None and created.performed_via_github_app.id == 1
    again = (await rest.repos.async_get_deployment(OWNER, REPO, created.id)).parsed_data
    assert again.id == created.id and again.original_environment == "dev"
    environments = (await rest.repos.async_get_all_environments(OWNER, REPO)).parsed_data
    assert (environments.total_count, [e.name for e in environments.environments or []]) == (1, ["dev"])
    assert [event for event, _ in seen] == ["deployment"]
    parsed = WebhookNamespace.parse(
        "deployment", json.dumps(seen[0][1])
    )  # raises when githubkit's model rejects it
    assert parsed.deployment.id == created.id


async def test_defaults_are_githubs_production_deploy_task_and_every_context_required(
    gh: httpx.AsyncClient,
) -> None:
    sha = await main_sha(gh)
    created = (await gh.post(f"{API}/deployments", json={"ref": "main", "auto_merge": False})).json()
    assert (created["environment"], created["task"], created["production_environment"]) == (
        "production",
        "deploy",
        True,
    )
    assert created["sha"] == sha and created["transient_environment"] is False
    await gh.post(f"{API}/statuses/{sha}", json={"state": "pending", "context": "ferry/gate"})
    refused = await gh.post(f"{API}/deployments", json={"ref": "main", "auto_merge": False})
    assert refused.status_code == 409
    assert refused.json()["message"] == "Conflict: Commit status checks failed for main."
    assert refused.json()["errors"][0]["contexts"] == [{"context": "ferry/gate", "state": "pending"}]
    named = await deploy(gh, "main", required_contexts=["ferry/health/dev"])
    assert named.status_code == 409  # a required context nobody set is not success either
    assert (await deploy(gh, "main", required_contexts=[])).status_code == 201  # [] skips the check


async def test_a_payload_given_as_json_text_reads_back_as_an_object(gh: httpx.AsyncClient) -> None:
    as_text = (await deploy(gh, "main", payload='{"freight": "abc"}')).json()
    assert as_text["payload"] == {"freight": "abc"}
    plain = (await deploy(gh, "main", payload="just words")).json()
    assert plain["payload"] == "just words"
    wrong = await deploy(gh, "main", auto_merge="no")
    assert wrong.status_code == 422 and "auto_merge" in wrong.json()["message"]


async def test_an_unknown_ref_is_refused_with_422(gh: httpx.AsyncClient) -> None:
    refused = await deploy(gh, "nope")
    assert (refused.status_code, refused.json()["message"]) == (422, "No ref found for: nope")
    missing = await gh.post(f"{API}/deployments", json={"environment": "dev"})
    assert missing.status_code == 422


async def test_auto_merge_merges_the_default_branch_into_a_branch_behind_it_instead_of_deploying(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    await branch_with_change(gh, "topic", "topic.txt", "topic\n")
    await standin.push_files({"README.md": b"newer\n"}, "Move main on")
    answer = await gh.post(f"{API}/deployments", json={"ref": "topic", "required_contexts": []})
    assert (answer.status_code, answer.json()) == (
        202,
        {"message": "Auto-merged main into topic on deployment."},
    )
    assert standin.deployments() == []
    topic = (await gh.get(f"{API}/commits/topic")).json()
    assert [p["sha"] for p in topic["parents"]][1] == await main_sha(gh)
    deployed = await gh.post(f"{API}/deployments", json={"ref": "topic", "required_contexts": []})
    assert deployed.status_code == 201  # no longer behind
    behind_sha = topic["parents"][0]["sha"]
    assert (await gh.post(f"{API}/deployments", json={"ref": behind_sha})).status_code == 409


async def test_auto_merge_that_conflicts_answers_409(standin: GitHubStandIn, gh: httpx.AsyncClient) -> None:
    await branch_with_change(gh, "clash", "README.md", "theirs\n")
    await standin.push_files({"README.md": b"ours\n"}, "Conflicting change")
    refused = await gh.post(f"{API}/deployments", json={"ref": "clash"})
    assert (refused.status_code, refused.json()["message"]) == (409, "Conflict merging main into clash.")


async def test_a_success_marks_earlier_successful_deployments_of_that_environment_inactive(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    standin.on_event.append(lambda event, payload: seen.append((event, payload)))
    first = (await deploy(gh, "main")).json()
    second = (await deploy(gh, "main")).json()
    prod = (await deploy(gh, "main", environment="prod", production_environment=True)).json()
    prod_later = (await deploy(gh, "main", environment="prod", production_environment=True)).json()

    async def status(deployment: dict[str, Any], state: str, **fields: Any) -> dict[str, Any]:
        answer = await gh.post(f"{deployment['statuses_url']}", json={"state": state, **fields})
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    await status(first, "in_progress", log_url="https://argocd.example/applications/web-dev")
    done = await status(first, "success", environment_url="https://dev.example")
    assert done["environment"] == "dev" and done["target_url"] == done["log_url"] == ""
    logged = await status(second, "success", log_url="https://argocd.example/applications/web-dev")
    assert logged["target_url"] == logged["log_url"] == "https://argocd.example/applications/web-dev"
    states = {d["id"]: [s["state"] for s in d["statuses"]] for d in standin.deployments()}
    assert states[first["id"]] == ["inactive", "success", "in_progress"]  # newest first
    assert states[second["id"]] == ["success"]
    await status(prod, "success")
    await status(prod_later, "success")  # "non-transient, non-production" only: prod stays
    assert [
        s["state"] for s in next(d for d in standin.deployments("prod") if d["id"] == prod["id"])["statuses"]
    ] == ["success"]
    kept = (await deploy(gh, "main")).json()
    await status(kept, "success", auto_inactive=False)
    assert standin.deployments("dev")[1]["statuses"][0]["state"] == "success"  # second stays active
    await status(kept, "inactive")
    events = [(e, p["deployment_status"]["state"]) for e, p in seen if e == "deployment_status"]
    assert ("deployment_status", "inactive") not in events and len(events) == 6
    for event, payload in seen:
        WebhookNamespace.parse(event, json.dumps(payload))


async def test_deployment_lists_filter_and_page_newest_first(gh: httpx.AsyncClient) -> None:
    made = [(await deploy(gh, "main", environment=env)).json()["id"] for env in ("dev", "dev", "staging")]
    listed = (await gh.get(f"{API}/deployments", params={"environment": "dev"})).json()
    assert [d["id"] for d in listed] == [made[1], made[0]]
    assert [d["id"] for d in (await gh.get(f"{API}/deployments", params={"task": "deploy"})).json()] == []
    by_sha = (await gh.get(f"{API}/deployments", params={"sha": await main_sha(gh)})).json()
    assert len(by_sha) == 3
    first_page = await gh.get(f"{API}/deployments", params={"per_page": 2})
    assert [d["id"] for d in first_page.json()] == [made[2], made[1]]
    assert first_page.links["next"]["url"].endswith("page=2") or "page=2" in first_page.links["next"]["url"]
    statuses_url = f"{API}/deployments/{made[0]}/statuses"
    for state in ("queued", "in_progress", "failure"):
        await gh.post(statuses_url, json={"state": state})
    page = await gh.get(statuses_url, params={"per_page": 2})
    assert [s["state"] for s in page.json()] == ["failure", "in_progress"] and "last" in page.links
    one = page.json()[0]
    assert (await gh.get(one["url"].removeprefix(str(gh.base_url).rstrip("/")))).json()["id"] == one["id"]
    assert (await gh.get(f"{API}/deployments/999999")).status_code == 404
    bad = await gh.post(statuses_url, json={"state": "deployed"})
    assert bad.status_code == 422


async def test_an_app_without_the_deployments_permission_is_refused_with_403(standin: GitHubStandIn) -> None:
    standin.set_app_permissions({"contents": "write", "statuses": "write", "pull_requests": "write"})
    rest = installation_client(standin)
    with pytest.raises(RequestFailed) as refused:
        await rest.repos.async_list_deployments(OWNER, REPO)
    assert refused.value.response.status_code == 403
    assert refused.value.response.json()["message"] == "Resource not accessible by integration"
