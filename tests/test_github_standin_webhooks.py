"""The GitHub stand-in's webhooks reach Ferry's URL signed, in order, shaped like GitHub's real deliveries
(``tests/fixtures/github-webhooks/``) and parseable by githubkit's 2022-11-28 webhook models."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from githubkit_schemas.v2022_11_28.webhooks import WebhookNamespace

from bot.sandbox.github_standin import GitHubStandIn

SECRET = "webhook-secret-for-tests"
OWNER, REPO = "acme", "gitops"


class Receiver:
    """A tiny stand-in for Ferry's webhook endpoint that records what arrived."""

    def __init__(self) -> None:
        self.received: list[tuple[dict[str, str], bytes]] = []
        self.answer = 202

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.read()))
        return web.Response(status=self.answer)

    def events(self) -> list[tuple[str, str | None]]:
        return [(h["X-GitHub-Event"], json.loads(body).get("action")) for h, body in self.received]


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    target = Receiver()
    app = web.Application()
    app.router.add_post("/webhooks/github", target.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield target, f"http://{host}:{port}/webhooks/github"
    await runner.cleanup()


@pytest.fixture
async def standin(tmp_path: Path, receiver: tuple[Receiver, str]) -> AsyncIterator[GitHubStandIn]:
    github = GitHubStandIn(tmp_path, webhook_url=receiver[1], webhook_secret=SECRET)
    await github.seed({"envs/dev/values.yaml": b"tag: 1.0.0\n", "README.md": b"hello\n"})
    async with github:
        yield github


def contract_file(contracts_dir: Path, event: str, payload: dict[str, Any]) -> Path:
    folder = contracts_dir / "github-webhooks"
    if event == "push":
        return folder / ("push.with-new-branch.json" if payload["created"] else "push.json")
    if "action" in payload and event != "status":
        return folder / f"{event}.{payload['action']}.json"
    return folder / f"{event}.json"


# Their contents depend on how an App is configured, not on the payload's shape.
CONFIGURED = {".installation.permissions"}


def missing_keys(contract: Any, ours: Any, where: str = "") -> list[str]:
    """Keys the real delivery has that ours lacks, at any depth (lists compared by their first item)."""
    if isinstance(contract, dict) and isinstance(ours, dict) and where not in CONFIGURED:
        gaps = [f"{where}.{k}" for k in contract if k not in ours]
        return gaps + [
            g for k in contract if k in ours for g in missing_keys(contract[k], ours[k], f"{where}.{k}")
        ]
    if isinstance(contract, list) and isinstance(ours, list) and contract and ours:
        return missing_keys(contract[0], ours[0], f"{where}[0]")
    return []


async def drive_every_event(standin: GitHubStandIn) -> None:
    """A person's token drives the stand-in through everything that makes GitHub send a webhook."""

    token = standin.add_user("alice", "admin")
    api = f"/repos/{OWNER}/{REPO}"
    async with httpx.AsyncClient(
        base_url=standin.base_url, headers={"Authorization": f"token {token}"}
    ) as gh:
        main = (await gh.get(f"{api}/git/ref/heads/main")).json()["object"]["sha"]
        tree = (await gh.get(f"{api}/git/commits/{main}")).json()["tree"]["sha"]

        async def commit(parent: str, text: str) -> str:
            made = await gh.post(
                f"{api}/git/trees",
                json={
                    "base_tree": tree,
                    "tree": [
                        {"path": "envs/dev/values.yaml", "mode": "100644", "type": "blob", "content": text}
                    ],
                },
            )
            answer = await gh.post(
                f"{api}/git/commits", json={"message": text, "tree": made.json()["sha"], "parents": [parent]}
            )
            return str(answer.json()["sha"])

        first = await commit(main, "tag: 1.1.0\n")
        await gh.post(f"{api}/git/refs", json={"ref": "refs/heads/ferry/dev/one", "sha": first})
        pr = (
            await gh.post(f"{api}/pulls", json={"title": "Promote", "head": "ferry/dev/one", "base": "main"})
        ).json()
        await gh.post(f"{api}/issues/{pr['number']}/labels", json={"labels": ["ferry"]})
        second = await commit(first, "tag: 1.2.0\n")
        await gh.patch(f"{api}/git/refs/heads/ferry/dev/one", json={"sha": second})
        await gh.post(f"{api}/issues/{pr['number']}/comments", json={"body": "/status"})
        await gh.post(f"{api}/commits/{second}/comments", json={"body": "/promote dev"})
        await gh.post(f"{api}/statuses/{second}", json={"state": "success", "context": "ferry/gate"})
        await gh.put(f"{api}/pulls/{pr['number']}/merge", json={"sha": second})
        await gh.post(f"{api}/git/refs", json={"ref": "refs/heads/ferry/dev/two", "sha": main})
        await gh.post(
            f"{api}/git/refs", json={"ref": "refs/heads/ferry/dev/three", "sha": await commit(main, "x")}
        )
        other = await gh.post(
            f"{api}/pulls", json={"title": "Old", "head": "ferry/dev/three", "base": "main"}
        )
        await gh.patch(f"{api}/pulls/{other.json()['number']}", json={"state": "closed"})
        await gh.delete(f"{api}/git/refs/heads/ferry/dev/two")
    standin.announce_installation()
    await standin.wait_for_deliveries()


async def test_every_webhook_is_signed_parses_with_githubkit_and_has_the_real_deliverys_keys(
    standin: GitHubStandIn, receiver: tuple[Receiver, str], contracts_dir: Path
) -> None:
    await drive_every_event(standin)
    target = receiver[0]
    assert target.events() == [
        ("push", None),
        ("pull_request", "opened"),
        ("pull_request", "labeled"),
        ("push", None),
        ("pull_request", "synchronize"),
        ("issue_comment", "created"),
        ("commit_comment", "created"),
        ("status", None),
        ("push", None),
        ("pull_request", "closed"),
        ("push", None),
        ("push", None),
        ("pull_request", "opened"),
        ("pull_request", "closed"),
        ("push", None),
        ("installation", "created"),
    ]
    for headers, body in target.received:
        event = headers["X-GitHub-Event"]
        assert WebhookNamespace.verify(SECRET, body, headers["X-Hub-Signature-256"]), event
        assert headers["User-Agent"].startswith("GitHub-Hookshot/")
        assert headers["Content-Type"] == "application/json" and headers["X-GitHub-Hook-ID"]
        WebhookNamespace.parse(event, body)  # raises when githubkit's model rejects the payload
        payload = json.loads(body)
        contract = json.loads(contract_file(contracts_dir, event, payload).read_text())
        assert set(payload) - set(contract) <= {"installation", "requester"}, event
        assert missing_keys(contract, payload) == [], (event, payload.get("action"))
        if event != "installation":
            assert payload["installation"]["id"] == 1
    assert len({h["X-GitHub-Delivery"] for h, _ in target.received}) == len(target.received)


async def test_the_merge_is_announced_as_a_push_to_main_then_a_merged_close(
    standin: GitHubStandIn, receiver: tuple[Receiver, str]
) -> None:
    await drive_every_event(standin)
    payloads = [(h["X-GitHub-Event"], json.loads(b)) for h, b in receiver[0].received]
    closes = [p for e, p in payloads if e == "pull_request" and p["action"] == "closed"]
    assert [(p["pull_request"]["merged"], p["sender"]["login"]) for p in closes] == [
        (True, "alice"),
        (False, "alice"),
    ]
    merge_push = next(
        p for e, p in payloads if e == "push" and p["after"] == closes[0]["pull_request"]["merge_commit_sha"]
    )
    assert (
        merge_push["ref"] == "refs/heads/main" and merge_push["head_commit"]["author"]["username"] == "alice"
    )
    comment = next(p for e, p in payloads if e == "issue_comment")
    assert comment["issue"]["pull_request"]["url"].endswith("/pulls/1")
    deleted = [p for e, p in payloads if e == "push" and p["deleted"]]
    assert [p["ref"] for p in deleted] == ["refs/heads/ferry/dev/two"]


async def test_deliveries_record_the_receivers_answer_in_order(
    standin: GitHubStandIn, receiver: tuple[Receiver, str]
) -> None:
    receiver[0].answer = 500
    await standin.push_files({"a.txt": b"a"}, "first", login=None)
    await standin.push_files({"b.txt": b"b"}, "second")
    await standin.wait_for_deliveries()
    assert [(d.event, d.status) for d in standin.deliveries] == [("push", 500), ("push", 500)]
    assert len(receiver[0].received) == 2  # GitHub does not retry by itself


async def test_an_unreachable_receiver_is_recorded_not_raised(tmp_path: Path) -> None:
    async with GitHubStandIn(
        tmp_path, webhook_url="http://127.0.0.1:9/nowhere", webhook_secret=SECRET
    ) as github:
        await github.push_files({"a.txt": b"a"}, "first")
        await github.wait_for_deliveries()
    assert github.deliveries[0].status is None and github.deliveries[0].error


async def test_without_a_webhook_url_observers_still_see_every_event(tmp_path: Path) -> None:
    seen: list[str] = []
    async with GitHubStandIn(tmp_path, webhook_secret=SECRET) as github:
        github.on_event.append(lambda event, payload: seen.append(f"{event}:{payload['ref']}"))
        await github.push_files({"a.txt": b"a"}, "first", branch="feature")
        await github.wait_for_deliveries()
    assert seen == ["push:refs/heads/feature"] and github.deliveries == []
