"""Everything the GitHub stand-in sends, held to GitHub's published description: each REST response of every
route it serves (as an App, as its installation and as a person calls them) and each webhook it emits.

Where the stand-in is found kinder or looser than the description, the stand-in is wrong: it would let
Ferry rely on a body GitHub never sends. Runs when ``FERRY_GITHUB_OPENAPI`` names the description (see
``tests/github_openapi.py``; ``.ci/run`` sets it).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import jwt
import pytest
from aiohttp import web
from github_openapi import GitHubDescription

from bot.sandbox.github_standin import GitHubStandIn

OWNER, REPO = "acme", "gitops"
SEED = {"envs/dev/values.yaml": b"image:\n  tag: 1.0.0\n", "README.md": b"# gitops\n"}
MANIFEST = Path(__file__).resolve().parent.parent / ".github" / "app-manifest.json"  # Ferry's own


@dataclass
class Exchange:
    method: str
    template: str  # the description's
    route: str  # the stand-in's, when it serves the same operation under another template
    status: int
    body: Any
    web: bool = False  # a github.com page a browser loads, not the REST API: no description to hold it to


@dataclass
class Recorder:
    """Calls the stand-in by the description's path templates and keeps every answer."""

    base_url: str
    exchanges: list[Exchange] = field(default_factory=list)
    webhooks: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    served: set[str] = field(default_factory=set)  # "METHOD template" of every route the stand-in has

    async def call(
        self,
        http: httpx.AsyncClient,
        method: str,
        template: str,
        status: int,
        *,
        json: Any = None,
        params: dict[str, str] | None = None,
        route: str | None = None,
        **path: str,
    ) -> Any:
        """``route`` is the path called when the description knows the operation by another template
        (the repository root's contents are ``/contents/{path}`` with an empty path)."""
        # Path parameters are percent-encoded as clients do; a ref or file path keeps its slashes.
        quoted = {k: quote(v, safe="/" if k in ("ref", "path") else "") for k, v in path.items()}
        url = (route or template).format(owner=OWNER, repo=REPO, **quoted)
        response = await http.request(method, self.base_url + url, json=json, params=params)
        assert response.status_code == status, (method, url, response.status_code, response.text)
        body = response.json() if response.content else None
        self.exchanges.append(Exchange(method, template, route or template, status, body))
        return body

    async def browse(
        self,
        http: httpx.AsyncClient,
        template: str,
        status: int,
        *,
        form: dict[str, str],
        params: dict[str, str] | None = None,
        **path: str,
    ) -> httpx.Response:
        """A browser's form POST to a github.com page (not in the REST description), not redirected."""
        url = template.format(**{k: quote(v, safe="") for k, v in path.items()})
        response = await http.post(self.base_url + url, data=form, params=params)
        assert response.status_code == status, ("POST", url, response.status_code, response.text)
        self.exchanges.append(Exchange("POST", template, template, status, None, web=True))
        return response


Call = Callable[..., Awaitable[Any]]  # Recorder.call


def app_jwt(standin: GitHubStandIn) -> str:
    now = int(time.time())
    claims = {"iat": now - 60, "exp": now + 540, "iss": "1"}
    return jwt.encode(claims, standin.app_private_key_pem, algorithm="RS256")


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorder:
    """One drive through the stand-in for the whole module (it takes a few seconds)."""

    async def run() -> Recorder:
        async with receiver() as url:
            github = GitHubStandIn(
                tmp_path_factory.mktemp("github"), webhook_url=url, webhook_secret="not-a-real-secret"
            )
            await github.seed(SEED)
            async with github:
                rec = await drive(github)
        rec.served = {
            f"{route.method} {route.resource.canonical}"
            for route in github.app.router.routes()
            if route.resource is not None and route.method != "HEAD"
        }
        return rec

    return asyncio.run(run())


@asynccontextmanager
async def receiver() -> AsyncIterator[str]:
    """Where the App's webhooks go, over loopback: it takes each delivery but fails every
    ``commit_comment`` (502), so the App's delivery log holds successes and failures."""

    async def take(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=502 if request.headers.get("X-GitHub-Event") == "commit_comment" else 200)

    app = web.Application()
    app.router.add_post("/webhooks", take)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/webhooks"
    finally:
        await runner.cleanup()


async def drive(standin: GitHubStandIn) -> Recorder:
    """Every route the stand-in serves, called as Ferry and as people call them, plus their errors."""
    rec = Recorder(standin.base_url)
    standin.on_event.append(lambda event, payload: rec.webhooks.append((event, payload)))
    call = rec.call
    person = standin.add_user("alice", "admin", teams=["acme/release-managers"])
    async with (
        httpx.AsyncClient(headers={"Authorization": f"Bearer {app_jwt(standin)}"}) as app,
        httpx.AsyncClient() as bot,
        httpx.AsyncClient(headers={"Authorization": f"token {person}"}) as alice,
    ):
        # The App and its installation.
        await call(app, "GET", "/app", 200)
        await call(app, "GET", "/app/installations", 200)
        await call(app, "GET", "/app/installations/{installation_id}", 200, installation_id="1")
        await call(app, "GET", "/app/installations/{installation_id}", 404, installation_id="9")
        await call(app, "GET", "/repos/{owner}/{repo}/installation", 200)
        token = await call(
            app, "POST", "/app/installations/{installation_id}/access_tokens", 201, installation_id="1"
        )
        bot.headers["Authorization"] = f"token {token['token']}"
        await call(bot, "GET", "/installation/repositories", 200)
        await call(bot, "GET", "/rate_limit", 200)

        # Reading a repository as Ferry does.
        repos = "/repos/{owner}/{repo}"
        await call(bot, "GET", repos, 200)
        main = (await call(bot, "GET", repos + "/git/ref/{ref}", 200, ref="heads/main"))["object"]["sha"]
        await call(bot, "GET", repos + "/git/ref/{ref}", 404, ref="heads/nowhere")
        await call(bot, "GET", repos + "/git/matching-refs/{ref}", 200, ref="heads/")
        commit = await call(bot, "GET", repos + "/git/commits/{commit_sha}", 200, commit_sha=main)
        tree = await call(
            bot,
            "GET",
            repos + "/git/trees/{tree_sha}",
            200,
            params={"recursive": "1"},
            tree_sha=commit["tree"]["sha"],
        )
        blob_sha = next(e["sha"] for e in tree["tree"] if e["path"] == "envs/dev/values.yaml")
        await call(bot, "GET", repos + "/git/blobs/{file_sha}", 200, file_sha=blob_sha)
        await call(bot, "GET", repos + "/contents/{path}", 200, path="envs/dev/values.yaml")
        await call(bot, "GET", repos + "/contents/{path}", 200, path="envs")
        await call(bot, "GET", repos + "/contents/{path}", 200, route=repos + "/contents", path="")
        await call(
            bot, "GET", repos + "/commits", 200, params={"sha": "main", "path": "envs", "per_page": "1"}
        )
        await call(bot, "GET", repos + "/commits/{ref}", 200, ref=main)

        # Writing a promotion: blob, tree, commit, branch, pull request, label, status.
        blob = await call(bot, "POST", repos + "/git/blobs", 201, json={"content": "tag: 1.1.0\n"})
        made = await call(
            bot,
            "POST",
            repos + "/git/trees",
            201,
            json={
                "base_tree": commit["tree"]["sha"],
                "tree": [
                    {"path": "envs/dev/values.yaml", "mode": "100644", "type": "blob", "sha": blob["sha"]}
                ],
            },
        )
        first = await call(
            bot,
            "POST",
            repos + "/git/commits",
            201,
            json={"message": "Promote 1.1.0 to dev", "tree": made["sha"], "parents": [main]},
        )
        branch = "ferry/dev/0123456789ab"
        await call(
            bot, "POST", repos + "/git/refs", 201, json={"ref": f"refs/heads/{branch}", "sha": first["sha"]}
        )
        await call(
            bot, "POST", repos + "/git/refs", 422, json={"ref": f"refs/heads/{branch}", "sha": first["sha"]}
        )
        pr = await call(
            bot,
            "POST",
            repos + "/pulls",
            201,
            json={"title": "Promote 1.1.0 to dev", "head": branch, "base": "main", "body": "Freight 0123"},
        )
        number = str(pr["number"])
        await call(
            bot, "POST", repos + "/pulls", 422, json={"title": "again", "head": branch, "base": "main"}
        )
        await call(bot, "GET", repos + "/pulls", 200, params={"state": "open", "head": f"{OWNER}:{branch}"})
        await call(bot, "GET", repos + "/pulls/{pull_number}", 200, pull_number=number)
        await call(bot, "GET", repos + "/pulls/{pull_number}/files", 200, pull_number=number)
        await call(
            bot,
            "PATCH",
            repos + "/pulls/{pull_number}",
            200,
            json={"body": "Freight 0123 (edited)"},
            pull_number=number,
        )
        issue = "/repos/{owner}/{repo}/issues/{issue_number}"
        await call(
            bot, "POST", issue + "/labels", 200, json={"labels": ["ferry", "ferry/dev"]}, issue_number=number
        )
        await call(bot, "GET", issue + "/labels", 200, issue_number=number)
        await call(bot, "DELETE", issue + "/labels/{name}", 200, issue_number=number, name="ferry/dev")
        await call(bot, "GET", issue, 200, issue_number=number)
        second = await call(
            bot,
            "POST",
            repos + "/git/commits",
            201,
            json={"message": "Promote 1.2.0 to dev", "tree": made["sha"], "parents": [first["sha"]]},
        )
        await call(
            bot,
            "PATCH",
            repos + "/git/refs/{ref}",
            200,
            json={"sha": second["sha"], "force": False},
            ref=f"heads/{branch}",
        )
        await call(
            bot,
            "POST",
            repos + "/statuses/{sha}",
            201,
            sha=second["sha"],
            json={
                "state": "pending",
                "context": "ferry/gate",
                "description": "Waiting for staging",
                "target_url": "https://ferry.example.com/acme/gitops",
            },
        )
        await call(bot, "GET", repos + "/commits/{ref}/status", 200, ref=second["sha"])
        await call(bot, "GET", repos + "/commits/{ref}/statuses", 200, ref=second["sha"])

        # A person comments a command; Ferry reacts, answers and checks who asked.
        said = await call(
            alice, "POST", issue + "/comments", 201, json={"body": "/status"}, issue_number=number
        )
        comment = "/repos/{owner}/{repo}/issues/comments/{comment_id}"
        ident = str(said["id"])
        await call(alice, "PATCH", comment, 200, json={"body": "/promote dev"}, comment_id=ident)
        await call(bot, "GET", comment, 200, comment_id=ident)
        await call(bot, "POST", comment + "/reactions", 201, json={"content": "eyes"}, comment_id=ident)
        eyes = await call(
            bot, "POST", comment + "/reactions", 200, json={"content": "eyes"}, comment_id=ident
        )
        await call(bot, "GET", comment + "/reactions", 200, comment_id=ident)
        # A claim taken over: the reaction deleted by its id.
        await call(
            bot,
            "DELETE",
            comment + "/reactions/{reaction_id}",
            204,
            comment_id=ident,
            reaction_id=str(eyes["id"]),
        )
        await call(bot, "POST", issue + "/comments", 201, json={"body": "Promoting."}, issue_number=number)
        twice = await call(
            bot, "POST", issue + "/comments", 201, json={"body": "Promoting."}, issue_number=number
        )
        await call(bot, "GET", issue + "/comments", 200, issue_number=number)
        await call(bot, "DELETE", comment, 204, comment_id=str(twice["id"]))  # a second copy, deleted
        on_commit = await call(
            alice,
            "POST",
            repos + "/commits/{commit_sha}/comments",
            201,
            json={"body": "/promote dev"},
            commit_sha=second["sha"],
        )
        commit_comment = repos + "/comments/{comment_id}"
        await call(bot, "GET", commit_comment, 200, comment_id=str(on_commit["id"]))
        await call(
            bot,
            "POST",
            commit_comment + "/reactions",
            201,
            json={"content": "rocket"},
            comment_id=str(on_commit["id"]),
        )
        rocket = await call(bot, "GET", commit_comment + "/reactions", 200, comment_id=str(on_commit["id"]))
        await call(bot, "GET", repos + "/commits/{commit_sha}/comments", 200, commit_sha=second["sha"])
        await call(
            bot,
            "DELETE",
            commit_comment + "/reactions/{reaction_id}",
            204,
            comment_id=str(on_commit["id"]),
            reaction_id=str(rocket[0]["id"]),
        )
        bot_said = await call(
            bot,
            "POST",
            repos + "/commits/{commit_sha}/comments",
            201,
            json={"body": "Promoting."},
            commit_sha=second["sha"],
        )
        await call(bot, "DELETE", commit_comment, 204, comment_id=str(bot_said["id"]))
        await call(bot, "GET", repos + "/collaborators/{username}/permission", 200, username="alice")
        await call(bot, "GET", repos + "/collaborators/{username}/permission", 404, username="nobody")
        memberships = "/orgs/{org}/teams/{team_slug}/memberships/{username}"
        await call(bot, "GET", memberships, 200, org="acme", team_slug="release-managers", username="alice")
        await call(bot, "GET", memberships, 404, org="acme", team_slug="release-managers", username="bob")

        # Merging: a stale head is refused, the right one merges; a second branch is closed and deleted.
        merge = repos + "/pulls/{pull_number}/merge"
        await call(alice, "PUT", merge, 409, json={"sha": first["sha"]}, pull_number=number)
        merged = await call(
            alice, "PUT", merge, 200, json={"sha": second["sha"], "merge_method": "merge"}, pull_number=number
        )
        await call(alice, "PUT", merge, 405, json={"sha": second["sha"]}, pull_number=number)
        # History as Ferry reads it: the merged pull request behind a commit, and how two commits compare.
        await call(bot, "GET", repos + "/commits/{commit_sha}/pulls", 200, commit_sha=merged["sha"])
        await call(bot, "GET", repos + "/commits/{commit_sha}/pulls", 200, commit_sha=main)
        await call(bot, "GET", repos + "/compare/{basehead}", 200, basehead=f"{main}...{merged['sha']}")
        await call(bot, "GET", repos + "/compare/{basehead}", 200, basehead=f"{merged['sha']}...{main}")
        await call(bot, "GET", repos + "/compare/{basehead}", 404, basehead=f"{main}...{'f' * 40}")
        other = "ferry/dev/ba9876543210"
        third = await call(
            bot,
            "POST",
            repos + "/git/commits",
            201,
            json={
                "message": "Promote 1.3.0 to dev",
                "tree": commit["tree"]["sha"],
                "parents": [merged["sha"]],
            },
        )
        await call(
            bot, "POST", repos + "/git/refs", 201, json={"ref": f"refs/heads/{other}", "sha": third["sha"]}
        )
        stale = await call(
            bot,
            "POST",
            repos + "/pulls",
            201,
            json={"title": "Promote 1.1.0 to dev", "head": other, "base": "main"},
        )
        await call(
            bot,
            "PATCH",
            repos + "/pulls/{pull_number}",
            200,
            json={"state": "closed"},
            pull_number=str(stale["number"]),
        )
        await call(bot, "DELETE", repos + "/git/refs/{ref}", 204, ref=f"heads/{other}")
        await call(bot, "GET", repos + "/pulls", 200, params={"state": "closed"})

        # Issues (Ferry's history and problem reports).
        opened = await call(bot, "POST", repos + "/issues", 201, json={"title": "Ferry: config problem"})
        await call(bot, "GET", repos + "/issues", 200, params={"state": "all"})
        await call(bot, "GET", issue, 200, issue_number=str(opened["number"]))

        # Comments nobody answered yet, repository-wide.
        await call(bot, "GET", repos + "/issues/comments", 200)
        await call(
            bot,
            "GET",
            repos + "/issues/comments",
            200,
            params={"sort": "updated", "direction": "desc", "since": "2000-01-01T00:00:00Z"},
        )
        await call(bot, "GET", repos + "/issues/comments", 422, params={"since": "yesterday"})
        await call(bot, "GET", repos + "/comments", 200)

        await drive_reviews(call, standin, bot, alice, merged["sha"])
        await drive_deployments(
            call, bot, alice, main=merged["sha"], behind=first["sha"], pending=second["sha"]
        )

        await drive_manifest_flow(rec)
    for action in ("created", "suspend", "unsuspend", "new_permissions_accepted", "deleted"):
        standin.announce_installation(action)
    await standin.wait_for_deliveries()
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {app_jwt(standin)}"}) as app:
        await call(app, "GET", "/app/hook/config", 200)
        await call(app, "GET", "/app/hook/deliveries", 200, params={"per_page": "100"})
        await call(app, "GET", "/app/hook/deliveries", 200, params={"status": "failure"})
        await call(app, "GET", "/app/hook/deliveries", 422, params={"status": "broken"})
    return rec


async def drive_manifest_flow(rec: Recorder) -> None:
    """The App manifest flow as a browser and then ``ferry app create`` walk it ("Registering a GitHub App
    from a manifest", docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest):
    the form POST to github.com, the redirect to ``redirect_url`` with ``code`` and ``state``, the code
    exchanged once at ``POST /app-manifests/{code}/conversions``. Last: it gives the App the manifest's
    events."""
    manifest = {**json.loads(MANIFEST.read_text()), "redirect_url": "http://127.0.0.1:9/created"}
    personal, organization = "/settings/apps/new", "/organizations/{org}/settings/apps/new"
    async with httpx.AsyncClient() as browser:
        await rec.browse(browser, personal, 422, form={"manifest": "[]"})
        await rec.browse(browser, organization, 404, form={"manifest": json.dumps(manifest)}, org="elsewhere")
        await rec.browse(browser, personal, 302, form={"manifest": json.dumps(manifest)})
        created = await rec.browse(
            browser,
            organization,
            302,
            form={"manifest": json.dumps(manifest)},
            params={"state": "a1b2c3"},
            org=OWNER,
        )
        location = urlsplit(created.headers["Location"])
        query = dict(parse_qsl(location.query))
        assert (location.netloc, location.path, query["state"]) == ("127.0.0.1:9", "/created", "a1b2c3")
        await rec.call(browser, "POST", "/app-manifests/{code}/conversions", 201, code=query["code"])
        await rec.call(browser, "POST", "/app-manifests/{code}/conversions", 404, code=query["code"])


async def drive_reviews(
    call: Call, standin: GitHubStandIn, bot: httpx.AsyncClient, alice: httpx.AsyncClient, main: str
) -> None:
    """Branch protection read back; a promotion reviewed, its approval dismissed by a push, approved again
    and dismissed by a person, closed and reopened."""
    repos = "/repos/{owner}/{repo}"
    protection = repos + "/branches/{branch}/protection"
    await call(alice, "GET", protection, 404, branch="main")
    standin.set_branch_protection(
        "main",
        contexts=["ferry/gate"],
        checks=[("ferry/health/dev", 1)],
        strict=True,
        required_approving_review_count=1,
        dismiss_stale_reviews=True,
    )
    await call(alice, "GET", protection, 200, branch="main")
    commit = await call(bot, "GET", repos + "/git/commits/{commit_sha}", 200, commit_sha=main)
    first = await call(
        bot,
        "POST",
        repos + "/git/commits",
        201,
        json={"message": "Promote 1.3.0 to staging", "tree": commit["tree"]["sha"], "parents": [main]},
    )
    branch = "ferry/staging/0123456789ab"
    await call(
        bot, "POST", repos + "/git/refs", 201, json={"ref": f"refs/heads/{branch}", "sha": first["sha"]}
    )
    pr = await call(
        bot,
        "POST",
        repos + "/pulls",
        201,
        json={"title": "Promote 1.3.0 to staging", "head": branch, "base": "main"},
    )
    number = str(pr["number"])
    reviews = repos + "/pulls/{pull_number}/reviews"
    await call(bot, "POST", reviews, 422, json={"event": "APPROVE"}, pull_number=number)  # its own
    await call(alice, "POST", reviews, 200, json={"event": "APPROVE", "body": "Soaked."}, pull_number=number)
    await call(alice, "POST", reviews, 200, json={"body": "One more thing"}, pull_number=number)  # pending
    await call(alice, "GET", reviews, 200, pull_number=number)
    again = await call(
        bot,
        "POST",
        repos + "/git/commits",
        201,
        json={
            "message": "Promote 1.3.1 to staging",
            "tree": commit["tree"]["sha"],
            "parents": [first["sha"]],
        },
    )
    await call(
        bot, "PATCH", repos + "/git/refs/{ref}", 200, json={"sha": again["sha"]}, ref=f"heads/{branch}"
    )  # dismisses the approval
    await call(bot, "GET", reviews, 200, pull_number=number)
    review = await call(alice, "POST", reviews, 200, json={"event": "APPROVE"}, pull_number=number)
    dismissals = reviews + "/{review_id}/dismissals"
    ids = {"pull_number": number, "review_id": str(review["id"])}
    await call(alice, "PUT", dismissals, 200, json={"message": "Approved the wrong release"}, **ids)
    await call(alice, "PUT", dismissals, 422, json={"message": "Again"}, **ids)  # dismissed already
    pull = repos + "/pulls/{pull_number}"
    await call(bot, "PATCH", pull, 200, json={"state": "closed"}, pull_number=number)
    await call(bot, "PATCH", pull, 200, json={"state": "open"}, pull_number=number)
    standin.remove_branch_protection("main")


async def drive_deployments(
    call: Call, bot: httpx.AsyncClient, alice: httpx.AsyncClient, *, main: str, behind: str, pending: str
) -> None:
    """Ferry's ledger: a deployment per promotion, its statuses, environments; GitHub's refusals."""
    deployments = "/repos/{owner}/{repo}/deployments"
    ledger = {
        "task": "ferry:promote",
        "auto_merge": False,
        "required_contexts": [],
        "environment": "dev",
        "transient_environment": False,
        "production_environment": False,
        "payload": {"freight": "0123456789ab", "images": {"acme/web": "1.1.0"}},
        "description": "web 1.1.0",
    }
    created = await call(bot, "POST", deployments, 201, json={"ref": main, **ledger})
    await call(alice, "POST", deployments, 201, json={"ref": "main", "required_contexts": []})  # production
    await call(bot, "POST", deployments, 422, json={"task": "deploy"})
    await call(bot, "POST", deployments, 422, json={"ref": "nowhere", **ledger})
    gated = {**ledger, "required_contexts": ["ferry/gate"]}
    await call(bot, "POST", deployments, 409, json={"ref": pending, **gated})  # ferry/gate is pending
    branch = "ferry/dev/behind-main"
    await call(
        bot,
        "POST",
        "/repos/{owner}/{repo}/git/refs",
        201,
        json={"ref": f"refs/heads/{branch}", "sha": behind},
    )
    await call(bot, "POST", deployments, 202, json={"ref": branch, "required_contexts": []})  # auto-merged
    await call(bot, "GET", deployments, 200)
    await call(bot, "GET", deployments, 200, params={"environment": "dev", "task": "ferry:promote"})
    one = deployments + "/{deployment_id}"
    ident = str(created["id"])
    await call(bot, "GET", one, 200, deployment_id=ident)
    await call(bot, "GET", one, 404, deployment_id="99999999")
    statuses = one + "/statuses"
    for state in ("in_progress", "success"):
        status = await call(
            bot,
            "POST",
            statuses,
            201,
            json={
                "state": state,
                "description": f"Argo CD: {state}",
                "log_url": "https://argocd.example.com/applications/web-dev",
                "environment_url": "https://dev.shop.example.com",
            },
            deployment_id=ident,
        )
    await call(bot, "POST", statuses, 422, json={"state": "done"}, deployment_id=ident)
    await call(bot, "GET", statuses, 200, deployment_id=ident)
    await call(bot, "GET", statuses, 404, deployment_id="99999999")
    await call(bot, "GET", statuses + "/{status_id}", 200, deployment_id=ident, status_id=str(status["id"]))
    await call(bot, "GET", statuses + "/{status_id}", 404, deployment_id=ident, status_id="99999999")
    await call(bot, "GET", "/repos/{owner}/{repo}/environments", 200)


def test_every_rest_response_of_the_stand_in_matches_githubs_description(
    recorded: Recorder, github_description: GitHubDescription
) -> None:
    problems = [
        f"{x.method} {x.template} {x.status}: {problem}"
        for x in recorded.exchanges
        if not x.web
        for problem in github_description.response_problems(x.method, x.template, x.status, x.body)
    ]
    assert problems == [], "\n".join(problems)


def test_every_webhook_the_stand_in_sends_matches_githubs_description(
    recorded: Recorder, github_description: GitHubDescription
) -> None:
    sent = {(event, payload.get("action")) for event, payload in recorded.webhooks}
    assert sent >= {
        ("push", None),
        ("pull_request", "opened"),
        ("pull_request", "synchronize"),
        ("pull_request", "labeled"),
        ("pull_request", "unlabeled"),
        ("pull_request", "edited"),
        ("pull_request", "closed"),
        ("pull_request", "reopened"),
        ("pull_request_review", "submitted"),
        ("pull_request_review", "dismissed"),
        ("issue_comment", "created"),
        ("issue_comment", "edited"),
        ("commit_comment", "created"),
        ("status", None),
        ("deployment", "created"),
        ("deployment_status", "created"),
        ("installation", "created"),
        ("installation", "suspend"),
        ("installation", "unsuspend"),
        ("installation", "new_permissions_accepted"),
        ("installation", "deleted"),
    }
    problems = [
        f"{event} {payload.get('action') or ''}: {problem}"
        for event, payload in recorded.webhooks
        for problem in github_description.webhook_problems(
            event, None if event == "status" else payload.get("action"), payload
        )
    ]
    assert problems == [], "\n".join(problems)


def test_the_contract_test_drives_every_route_the_stand_in_serves(recorded: Recorder) -> None:
    checked = {f"{x.method} {x.route}" for x in recorded.exchanges}
    assert recorded.served - checked == set(), "add these routes to drive() so their answers are checked"
    assert checked <= recorded.served


def apps_within(body: Any) -> list[dict[str, Any]]:
    """Every ``performed_via_github_app`` object anywhere in a body."""
    if isinstance(body, list):
        return [app for item in body for app in apps_within(item)]
    if not isinstance(body, dict):
        return []
    found = [body["performed_via_github_app"]] if body.get("performed_via_github_app") else []
    return found + [app for value in body.values() for app in apps_within(value)]


def test_the_app_counts_its_installations_only_when_it_asks_about_itself(recorded: Recorder) -> None:
    """GitHub's description (``integration.installations_count``): "Only returned when the integration is
    requesting details about itself"."""
    itself = next(x.body for x in recorded.exchanges if (x.method, x.template) == ("GET", "/app"))
    assert "installations_count" in itself
    elsewhere = [app for x in recorded.exchanges for app in apps_within(x.body)]
    elsewhere += [app for _, payload in recorded.webhooks for app in apps_within(payload)]
    assert elsewhere, "the drive made nothing as the App"
    assert [app for app in elsewhere if "installations_count" in app] == []


def test_the_apps_delivery_log_tells_successes_from_failures_as_github_does(recorded: Recorder) -> None:
    """ "List deliveries for an app webhook" (docs.github.com/en/rest/apps/webhooks): newest first; ``status``
    ``failure`` keeps the 400–599 answers only."""
    logs = [x for x in recorded.exchanges if x.template == "/app/hook/deliveries" and x.status == 200]
    everything, failures = logs[0].body, logs[1].body
    assert {(d["status"], d["status_code"]) for d in everything} == {
        ("OK", 200),
        ("Invalid HTTP Response: 502", 502),
    }
    assert [d["id"] for d in everything] == sorted((d["id"] for d in everything), reverse=True)
    assert failures and {(d["event"], d["status_code"]) for d in failures} == {("commit_comment", 502)}
    config = next(x.body for x in recorded.exchanges if x.template == "/app/hook/config")
    assert config["secret"] == "********" and config["url"].endswith("/webhooks")
