"""A real `ferry serve` process started while GitHub answers nothing (a proxy that accepts and stays
silent), and Argo CD's port closed: it listens, is alive but not ready, holds the webhooks it acknowledges,
becomes ready once GitHub answers, then acts on them; SIGTERM drains and exits 0, a second signal at once."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from serve_process import ServeProcess, SilentProxy, dump

from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.world import free_port
from bot.server import WEBHOOK_PATH, signature_for

SECRET = "whsec-outage-0123456789abcdef"
REPO = "acme/gitops"
DRAIN = 4.0  # FERRY_DRAIN_TIMEOUT of the process under test, seconds
STARTUP = 60.0  # a cold Python start on a busy machine


@dataclass
class Outage:
    github: GitHubStandIn
    proxy: SilentProxy
    ferry: ServeProcess


@pytest.fixture
async def outage(tmp_path: Path) -> AsyncIterator[Outage]:
    """Ferry up, GitHub silent behind the proxy; Argo CD configured on a port nobody listens on."""
    ferry_port = free_port()
    github = GitHubStandIn(
        tmp_path / "github",
        webhook_url=f"http://127.0.0.1:{ferry_port}{WEBHOOK_PATH}",
        webhook_secret=SECRET,
    )
    proxy = SilentProxy()
    await proxy.start()
    env = {
        "FERRY_APP_ID": "1",
        "FERRY_PRIVATE_KEY": github.app_private_key_pem,
        "FERRY_WEBHOOK_SECRET": SECRET,
        "FERRY_GITHUB_URL": f"http://127.0.0.1:{proxy.port}",
        "FERRY_GITHUB_TIMEOUT": "3",
        "FERRY_ARGOCD_SERVERS": json.dumps(
            {"default": {"url": f"http://127.0.0.1:{free_port()}", "token": "argocd-token"}}
        ),
        "FERRY_DRAIN_TIMEOUT": f"{DRAIN:g}s",
        "FERRY_LOG_FORMAT": "text",
        "FERRY_POLL_IDLE": "2s",
    }
    ferry = ServeProcess(ferry_port, env, tmp_path / "serve.log")
    await ferry.start()
    try:
        yield Outage(github, proxy, ferry)
    finally:
        await ferry.kill()
        await proxy.stop()
        await github.stop()


async def alive(ferry: ServeProcess) -> bool:
    return (await ferry.healthz())[0] == 200


async def test_serve_outlives_a_silent_github_and_answers_a_comment_sent_meanwhile_once_it_is_back(
    outage: Outage,
) -> None:
    ferry, github, proxy = outage.ferry, outage.github, outage.proxy
    await ferry.wait_until("/healthz to answer 200", lambda: alive(ferry), STARTUP)

    async def failed_once() -> bool:
        return (await ferry.readyz())[1].get("attempts", 0) >= 1

    await ferry.wait_until("a first discovery attempt to fail", failed_once, 30)
    status, body = await ferry.readyz()
    assert status == 503, dump(body)
    assert body["ready"] is False and "GitHub" in body["reason"], dump(body)

    # A person asks for /help while Ferry cannot reach GitHub: the delivery is acknowledged and held.
    await github.start()
    await github.seed({"README.md": b"GitOps\n"})
    token = github.add_user("rita", "write")
    async with httpx.AsyncClient(
        base_url=github.base_url, headers={"Authorization": f"token {token}"}, timeout=10
    ) as rita:
        issue = (await rita.post(f"/repos/{REPO}/issues", json={"title": "How?"})).json()
        comment = (
            await rita.post(f"/repos/{REPO}/issues/{issue['number']}/comments", json={"body": "/help"})
        ).json()
    await github.wait_for_deliveries()
    sent = [d for d in github.deliveries if d.event == "issue_comment"]
    assert [d.status for d in sent] == [202], github.deliveries
    status, body = await ferry.readyz()
    assert status == 503 and body["held_deliveries"] >= 1, dump(body)
    assert (await ferry.healthz())[0] == 200

    # GitHub answers again: ready within the bounded wait, then the held comment is answered, once.
    proxy.forward_to(int(github.base_url.rsplit(":", 1)[1]))

    async def ready() -> bool:
        return (await ferry.readyz())[0] == 200

    await ferry.wait_until("/readyz to answer 200 after GitHub came back", ready, 15, every=0.02)
    marker = f"ferry:reply-to:{comment['id']}"

    async def answered() -> bool:
        return any(marker in c["body"] for c in github.comments)

    await ferry.wait_until("the held /help comment to be answered", answered, 30)
    replies = [c for c in github.comments if marker in c["body"]]
    assert len(replies) == 1 and "/promote" in replies[0]["body"], dump(replies)

    ferry.signal(signal.SIGTERM)
    assert await ferry.exit_code(within=DRAIN + 10) == 0, ferry.log()


async def test_sigterm_while_deliveries_wait_for_github_drains_within_its_bound_and_exits_0(
    outage: Outage,
) -> None:
    ferry = outage.ferry
    await ferry.wait_until("/healthz to answer 200", lambda: alive(ferry), STARTUP)
    await post_comment_delivery(ferry)  # held: GitHub is silent, so the drain has work that cannot finish
    status, body = await ferry.readyz()
    assert status == 503 and body["held_deliveries"] == 1, dump(body)

    started = time.monotonic()
    ferry.signal(signal.SIGTERM)
    assert await ferry.exit_code(within=DRAIN + 10) == 0, ferry.log()
    assert time.monotonic() - started >= DRAIN - 1, "it waited for the held delivery"
    assert "stopping" in ferry.log()


async def test_a_second_signal_exits_at_once_without_waiting_for_the_drain(outage: Outage) -> None:
    ferry = outage.ferry
    await ferry.wait_until("/healthz to answer 200", lambda: alive(ferry), STARTUP)
    await post_comment_delivery(ferry)

    ferry.signal(signal.SIGTERM)
    await ferry.wait_until("the drain to start", _log_says(ferry, "stopping"), 10)
    ferry.signal(signal.SIGINT)
    assert await ferry.exit_code(within=DRAIN - 1) == 128 + signal.SIGINT


def _log_says(ferry: ServeProcess, text: str) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return text in ferry.log()

    return check


async def post_comment_delivery(ferry: ServeProcess) -> None:
    """A signed issue_comment delivery, as GitHub sends one (Ferry acknowledges it with 202)."""
    payload = {
        "action": "created",
        "issue": {"number": 1},
        "comment": {"id": 7, "body": "/help", "user": {"login": "rita", "type": "User"}},
        "repository": {"full_name": REPO},
        "installation": {"id": 1},
        "sender": {"login": "rita", "type": "User"},
    }
    body = json.dumps(payload).encode()
    headers = {
        "X-Hub-Signature-256": signature_for(SECRET.encode(), body),
        "X-GitHub-Event": "issue_comment",
        "X-GitHub-Delivery": "held-1",
        "Content-Type": "application/json",
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(ferry.url + WEBHOOK_PATH, content=body, headers=headers)
    assert response.status_code == 202, response.text
    await asyncio.sleep(0.1)  # the held count is taken when the delivery's task first runs
