"""The GitHub stand-in's pull request reviews, branch protection, merge settings and App manifest flow
behave as GitHub's: approvals by people with write access, 405s in GitHub's words, 403 without
``administration``, and a one-time code that turns a manifest into App credentials."""

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
    SECRET,
    Rest,
    branch_with_change,
    installation_client,
    open_pull,
    person,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)
from githubkit import AppAuthStrategy, GitHub, UnauthAuthStrategy
from githubkit.exception import RequestFailed
from githubkit_schemas.v2022_11_28.webhooks import WebhookNamespace

from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.gitstore import GitStore


@pytest.fixture
async def gh(standin: GitHubStandIn) -> AsyncIterator[httpx.AsyncClient]:
    async with person(standin, "alice") as client:
        yield client


async def promotion(gh: httpx.AsyncClient, branch: str = "ferry/prod/one") -> dict[str, Any]:
    await branch_with_change(gh, branch, "envs/dev/values.yaml", f"tag: {branch}\n")
    return await open_pull(gh, branch)


async def merge(gh: httpx.AsyncClient, pr: dict[str, Any], **fields: Any) -> httpx.Response:
    return await gh.put(f"{API}/pulls/{pr['number']}/merge", json={"sha": pr["head"]["sha"], **fields})


async def test_a_person_approves_and_the_review_reads_back_with_its_webhook(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    standin.on_event.append(lambda event, payload: seen.append((event, payload)))
    pr = await promotion(gh)
    standin.add_user("rel", "maintain", teams=["acme/release-managers"])
    approved = await standin.approve(pr["number"], "rel", "ship it")
    assert (approved["state"], approved["user"]["login"], approved["commit_id"]) == (
        "APPROVED",
        "rel",
        pr["head"]["sha"],
    )
    async with person(standin, "bob", "read") as reader:
        answer = await reader.post(
            f"{API}/pulls/{pr['number']}/reviews", json={"event": "REQUEST_CHANGES", "body": "not yet"}
        )
        assert answer.status_code == 200 and answer.json()["state"] == "CHANGES_REQUESTED"
        draft = await reader.post(f"{API}/pulls/{pr['number']}/reviews", json={"body": "draft"})
        assert draft.json()["state"] == "PENDING" and "submitted_at" not in draft.json()
    rest = installation_client(standin)
    reviews = (await rest.pulls.async_list_reviews(OWNER, REPO, pr["number"])).parsed_data
    assert [(r.user.login, r.state) for r in reviews if r.user] == [
        ("rel", "APPROVED"),
        ("bob", "CHANGES_REQUESTED"),
    ]
    submitted = [p for e, p in seen if e == "pull_request_review"]
    assert [(p["action"], p["review"]["state"]) for p in submitted] == [
        ("submitted", "approved"),
        ("submitted", "changes_requested"),
    ]
    for payload in submitted:
        WebhookNamespace.parse("pull_request_review", json.dumps(payload))


async def test_an_author_cannot_approve_their_own_pull_request(gh: httpx.AsyncClient) -> None:
    pr = await promotion(gh)
    refused = await gh.post(f"{API}/pulls/{pr['number']}/reviews", json={"event": "APPROVE"})
    assert refused.status_code == 422 and refused.json()["errors"] == [
        "Can not approve your own pull request"
    ]
    bodiless = await gh.post(f"{API}/pulls/{pr['number']}/reviews", json={"event": "COMMENT"})
    assert bodiless.status_code == 422


async def test_required_status_checks_refuse_the_merge_in_githubs_words(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    standin.set_branch_protection("main", contexts=["ferry/gate", "ferry/config"])
    pr = await promotion(gh)
    assert (await gh.get(f"{API}/pulls/{pr['number']}")).json()["mergeable_state"] == "blocked"
    refused = await merge(gh, pr)
    assert refused.status_code == 405
    assert refused.json()["message"] == (
        'Required status check "ferry/config" is expected. Required status check "ferry/gate" is expected.'
    )
    head = pr["head"]["sha"]
    await gh.post(f"{API}/statuses/{head}", json={"state": "success", "context": "ferry/config"})
    await gh.post(f"{API}/statuses/{head}", json={"state": "pending", "context": "ferry/gate"})
    assert (await merge(gh, pr)).json()["message"] == 'Required status check "ferry/gate" is in progress.'
    await gh.post(f"{API}/statuses/{head}", json={"state": "failure", "context": "ferry/gate"})
    assert (await merge(gh, pr)).json()["message"] == 'Required status check "ferry/gate" is failing.'
    await gh.post(f"{API}/statuses/{head}", json={"state": "success", "context": "ferry/gate"})
    assert (await merge(gh, pr)).status_code == 200


async def test_a_check_pinned_to_the_app_counts_only_the_apps_statuses(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    standin.set_branch_protection("main", checks=[("ferry/gate", 1)])
    pr = await promotion(gh)
    await gh.post(f"{API}/statuses/{pr['head']['sha']}", json={"state": "success", "context": "ferry/gate"})
    assert (await merge(gh, pr)).status_code == 405  # a person's green is not the App's
    rest = installation_client(standin)
    await rest.repos.async_create_commit_status(
        OWNER, REPO, pr["head"]["sha"], state="success", context="ferry/gate"
    )
    assert (await merge(gh, pr)).status_code == 200


async def test_required_approvals_count_people_with_write_access_and_a_push_dismisses_them(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    standin.set_branch_protection("main", required_approving_review_count=1, dismiss_stale_reviews=True)
    pr = await promotion(gh)
    needs = "At least 1 approving review is required by reviewers with write access."
    assert (await merge(gh, pr)).json()["message"] == needs
    standin.add_user("viewer", "read")
    await standin.approve(pr["number"], "viewer")
    assert (await merge(gh, pr)).status_code == 405  # read access does not count
    standin.add_user("rel", "write")
    await standin.approve(pr["number"], "rel")
    newer = await standin.push_files({"extra.txt": b"x"}, "Fix-up", branch="ferry/prod/one", login="alice")
    states = [r["state"] for r in (await gh.get(f"{API}/pulls/{pr['number']}/reviews")).json()]
    assert states == ["DISMISSED", "DISMISSED"]
    refreshed = (await gh.get(f"{API}/pulls/{pr['number']}")).json()
    assert refreshed["head"]["sha"] == newer and (await merge(gh, refreshed)).json()["message"] == needs
    await standin.approve(pr["number"], "rel")
    assert (await merge(gh, refreshed)).status_code == 200


async def test_admins_pass_protection_unless_it_is_enforced_for_admins(standin: GitHubStandIn) -> None:
    standin.set_branch_protection("main", contexts=["ferry/gate"])
    async with person(standin, "boss", "admin") as admin:
        first = await promotion(admin, "ferry/prod/a")
        assert (await merge(admin, first)).status_code == 200
        standin.set_branch_protection("main", contexts=["ferry/gate"], enforce_admins=True)
        second = await promotion(admin, "ferry/prod/b")
        assert (await merge(admin, second)).status_code == 405


async def test_reading_branch_protection_needs_the_administration_permission(standin: GitHubStandIn) -> None:
    rest = installation_client(standin)
    with pytest.raises(RequestFailed) as denied:
        await rest.repos.async_get_branch_protection(OWNER, REPO, "main")
    assert denied.value.response.status_code == 403
    standin.set_app_permissions({"contents": "write", "administration": "read"})
    with pytest.raises(RequestFailed) as unprotected:
        await rest.repos.async_get_branch_protection(OWNER, REPO, "main")
    assert (unprotected.value.response.status_code, unprotected.value.response.json()["message"]) == (
        404,
        "Branch not protected",
    )
    standin.set_branch_protection("main", contexts=["ferry/gate"], checks=[("ferry/config", 1)])
    protection = (await rest.repos.async_get_branch_protection(OWNER, REPO, "main")).parsed_data
    assert protection.required_status_checks is not None
    assert protection.required_status_checks.contexts == ["ferry/config", "ferry/gate"]
    assert [(c.context, c.app_id) for c in protection.required_status_checks.checks] == [
        ("ferry/config", 1),
        ("ferry/gate", None),
    ]
    async with person(standin, "writer", "write") as writer:
        assert (await writer.get(f"{API}/branches/main/protection")).status_code == 403


async def test_a_merge_method_the_repository_turns_off_answers_405(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    standin.set_merge_settings(allow_merge_commit=False)
    assert (await gh.get(API)).json()["allow_merge_commit"] is False
    pr = await promotion(gh)
    refused = await merge(gh, pr)
    assert (refused.status_code, refused.json()["message"]) == (
        405,
        "Merge commits are not allowed on this repository.",
    )
    assert (await merge(gh, pr, merge_method="squash")).status_code == 200


async def test_a_rebase_merge_replays_the_commits_onto_the_base(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    standin.set_merge_settings(allow_rebase_merge=True, delete_branch_on_merge=True)
    pr = await promotion(gh)
    await standin.push_files({"README.md": b"moved on\n"}, "Main moves")
    merged = await merge(gh, pr, merge_method="rebase")
    assert merged.status_code == 200
    info = await GitStore(standin.repo_path).read_commit(merged.json()["sha"])
    assert len(info.parents) == 1 and info.committer.name == "GitHub" and info.author.name == "alice"
    assert (await gh.get(f"{API}/git/ref/heads/ferry/prod/one")).status_code == 404  # deleted on merge


async def test_a_stale_sha_answers_409_head_branch_was_modified(
    standin: GitHubStandIn, gh: httpx.AsyncClient
) -> None:
    pr = await promotion(gh)
    await standin.push_files({"extra.txt": b"x"}, "Fix-up", branch="ferry/prod/one")
    refused = await merge(gh, pr)
    assert (refused.status_code, refused.json()["message"]) == (
        409,
        "Head branch was modified. Review and try the merge again.",
    )


async def test_a_manifest_code_is_exchanged_once_for_the_apps_credentials(standin: GitHubStandIn) -> None:
    manifest = {
        "name": "Ferry for Acme",
        "url": "https://ferry.example.com",
        "hook_attributes": {"url": "https://ferry.example.com/webhooks/github"},
        "redirect_url": "https://ferry.example.com/app/created",
        "default_permissions": {"contents": "write", "pull_requests": "write", "administration": "read"},
        "default_events": ["push", "pull_request"],
    }
    code = standin.register_manifest(manifest)
    anonymous = Rest(GitHub(UnauthAuthStrategy(), base_url=standin.base_url, auto_retry=False))
    app = (await anonymous.apps.async_create_from_manifest(code)).parsed_data
    assert (app.id, app.slug, app.name) == (1, "ferry-for-acme", "Ferry for Acme")
    assert app.webhook_secret == SECRET and app.client_id and app.client_secret
    assert app.html_url.endswith("/apps/ferry-for-acme") and app.pem == standin.app_private_key_pem
    with pytest.raises(RequestFailed) as again:
        await anonymous.apps.async_create_from_manifest(code)
    assert again.value.response.status_code == 404
    signed_in = Rest(GitHub(AppAuthStrategy(app.id, app.pem), base_url=standin.base_url, auto_retry=False))
    me = (await signed_in.apps.async_get_authenticated()).parsed_data
    assert me is not None and me.events == ["push", "pull_request"]
    assert me.permissions.model_dump(exclude_none=True)["administration"] == "read"
    with pytest.raises(ValueError, match="url"):
        standin.register_manifest({"name": "no homepage"})
