"""Helpers for the GitHub stand-in's tests: a seeded stand-in (fixture ``standin``), a clock moved by hand,
a githubkit client as Ferry builds it, a person's httpx client, webhook receivers that record what
arrived, and a promotion-like branch made through the Git Data API. Import with
``from github_standin_helpers import ...`` (pytest puts tests/ on the path); importing
``seeded_standin`` provides the ``standin`` fixture, importing ``ferry_repo`` the ``repo`` fixture."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from githubkit import AppAuthStrategy, GitHub

from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.sandbox.github_standin import GitHubStandIn

OWNER, REPO = "acme", "gitops"
API = f"/repos/{OWNER}/{REPO}"
SECRET = "webhook-secret-for-tests"
SEED = {"envs/dev/values.yaml": b"tag: 1.0.0\n", "README.md": b"hello\n"}


class Clock:
    """A clock the test moves by hand (``now`` in Unix seconds)."""

    def __init__(self) -> None:
        self.now = 1_750_000_000.0  # 2025-06-15T15:06:40Z

    def __call__(self) -> float:
        return self.now


@pytest.fixture(name="standin")
async def seeded_standin(tmp_path: Path) -> AsyncIterator[GitHubStandIn]:
    """``standin``: a started stand-in over a seeded repository, without a webhook URL."""
    github = GitHubStandIn(tmp_path, webhook_secret=SECRET)
    await github.seed(SEED)
    async with github:
        yield github


@pytest.fixture(name="repo")
async def ferry_repo(standin: GitHubStandIn) -> AsyncIterator[RepoGitHub]:
    """``repo``: Ferry's GitHub adapter for the seeded repository, as the App's installation sees it."""
    app = GitHubApp(app_id=1, private_key=standin.app_private_key_pem, base_url=standin.base_url)
    try:
        yield RepoGitHub(app.installation(1), f"{OWNER}/{REPO}", identity=app.identity)
    finally:
        await app.aclose()


class Rest:
    """REST 2022-11-28 of a githubkit client, holding the client (githubkit keeps only a weak reference)."""

    def __init__(self, github: Any) -> None:
        self.github = github

    def __getattr__(self, name: str) -> Any:
        return getattr(self.github.rest("2022-11-28"), name)


def installation_client(standin: GitHubStandIn) -> Rest:
    """The client Ferry builds: App auth, then the installation; no retries, no cache."""
    app = GitHub(
        AppAuthStrategy(1, standin.app_private_key_pem),
        base_url=standin.base_url,
        auto_retry=False,
        http_cache=False,
    )
    return Rest(app.with_auth(app.auth.as_installation(1)))


def person(standin: GitHubStandIn, login: str, permission: str = "write") -> httpx.AsyncClient:
    token = standin.add_user(login, permission)
    return httpx.AsyncClient(
        base_url=standin.base_url, headers={"Authorization": f"token {token}"}, timeout=10
    )


class Receiver:
    """One webhook receiver (a Ferry replica) that records every delivery."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), json.loads(await request.read())))
        return web.Response(status=202)

    def events(self) -> list[str]:
        return [h["X-GitHub-Event"] for h, _ in self.received]


@asynccontextmanager
async def receivers(count: int) -> AsyncIterator[list[Receiver]]:
    """``count`` receivers listening on 127.0.0.1, each at its own ``url``."""
    targets = [Receiver() for _ in range(count)]
    runners = []
    for target in targets:
        app = web.Application()
        app.router.add_post("/webhooks/github", target.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        target.url = f"http://{host}:{port}/webhooks/github"
        runners.append(runner)
    try:
        yield targets
    finally:
        for runner in runners:
            await runner.cleanup()


@asynccontextmanager
async def delivering(tmp_path: Path, **delivery: Any) -> AsyncIterator[tuple[GitHubStandIn, Receiver]]:
    """A seeded stand-in delivering to one receiver, with ``set_delivery(**delivery)`` when given."""
    async with (
        receivers(1) as (target,),
        GitHubStandIn(tmp_path, webhook_url=target.url, webhook_secret=SECRET) as github,
    ):
        await github.seed(SEED)
        if delivery:
            github.set_delivery(**delivery)
        yield github, target


async def branch_with_change(
    gh: httpx.AsyncClient, branch: str, path: str, text: str, base: str = "main"
) -> str:
    """One commit on a new ``branch`` off ``base`` through the Git Data API, as Ferry makes promotions."""
    parent = (await gh.get(f"{API}/git/ref/heads/{base}")).json()["object"]["sha"]
    tree = (await gh.get(f"{API}/git/commits/{parent}")).json()["tree"]["sha"]
    made = await gh.post(
        f"{API}/git/trees",
        json={"base_tree": tree, "tree": [{"path": path, "mode": "100644", "type": "blob", "content": text}]},
    )
    commit = await gh.post(
        f"{API}/git/commits",
        json={"message": f"Change {path}", "tree": made.json()["sha"], "parents": [parent]},
    )
    sha = str(commit.json()["sha"])
    created = await gh.post(f"{API}/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha})
    assert created.status_code == 201, created.text
    return sha


async def open_pull(gh: httpx.AsyncClient, branch: str, title: str = "Promote") -> dict[str, Any]:
    answer = await gh.post(f"{API}/pulls", json={"title": title, "head": branch, "base": "main"})
    assert answer.status_code == 201, answer.text
    return dict(answer.json())
