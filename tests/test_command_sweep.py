"""Comment commands survive whatever happens between the comment and Ferry's answer: a restart, GitHub
out for a while, a secondary rate limit, a crash in the middle, a forged reply marker, a redelivery on a
long thread. The sandbox world runs Ferry's real code path; people comment through the stand-in's REST
API, and every command must end with exactly one answer written by the App."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from bot import events
from bot.command_sweep import CommandSweep
from bot.config_prs import ConfigReview
from bot.sandbox.example import quick_pipeline
from bot.sandbox.github_state import BOT_LOGIN
from bot.sandbox.proxy import BehindAProxy, Tuned
from bot.sandbox.world import FULL_NAME, World
from bot.server import WEBHOOK_PATH, signature_for

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
MANAGER, TEAM, READER = "rita", "acme/release-managers", "watcher"
REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
ANSWER_WITHIN = 45.0  # seconds: retries back off, and the machine is shared


def staging_by_command(config: dict[str, Any]) -> None:
    """dev follows the registry by itself; staging and prod move only when a person asks."""
    quick_pipeline(config, verify_timeout="20s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


@contextlib.asynccontextmanager
async def sandbox(world: World | None = None) -> AsyncIterator[World]:
    world = world or World(progress_seconds=0.2)
    try:
        await world.start(staging_by_command, RELEASES)
        yield world
    finally:
        await world.stop()


async def open_issue(person: httpx.AsyncClient, title: str = "Release train") -> int:
    created = await person.post(f"/repos/{FULL_NAME}/issues", json={"title": title})
    created.raise_for_status()
    return int(created.json()["number"])


async def comment(person: httpx.AsyncClient, issue: int, body: str) -> dict[str, Any]:
    response = await person.post(f"/repos/{FULL_NAME}/issues/{issue}/comments", json={"body": body})
    response.raise_for_status()
    return dict(response.json())


def replies(world: World, comment_id: int) -> list[dict[str, Any]]:
    """The App's comments that answer ``comment_id``."""
    marker = f"<!-- ferry:reply-to:{comment_id} -->"
    return [c for c in world.github.comments if c["user"]["login"] == BOT_LOGIN and marker in c["body"]]


async def answered(world: World, asked: dict[str, Any], within: float = ANSWER_WITHIN) -> dict[str, Any]:
    """Wait for the App's answer to ``asked``; fail (naming the comment) when none comes in time."""
    found = await world.wait_for(
        f"Ferry's answer to {asked['body']!r}", lambda: replies(world, asked["id"]), within
    )
    return dict(found[0])


async def settle(world: World, within: float = 30.0) -> None:
    """Let queued webhooks arrive and the passes they start finish, within a bound."""
    assert world.runtime is not None
    async with asyncio.timeout(within):
        await world.github.wait_for_deliveries()
        await asyncio.sleep(0.3)  # the webhook handler starts its work off the request path
        await world.runtime.reconciler.idle()


async def dev_verified_on(world: World, tag: str) -> None:
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)

    def verified() -> bool:
        merged = world.kinds(events.PR_MERGED, "dev")
        verdicts = world.kinds(events.HEALTH_VERDICT, "dev")
        return bool(merged) and any(
            v.detail.startswith("success") and v.at >= merged[-1].at for v in verdicts
        )

    await world.wait_for(f"dev verified on {tag}", verified, 60)


def staging_pulls(world: World) -> list[dict[str, Any]]:
    return [p for p in world.github.pulls.values() if p["head"]["ref"].startswith("ferry/staging/")]


async def redeliver(world: World, event: str, payload: dict[str, Any]) -> None:
    """Send a delivery again as GitHub's "Redeliver" does after a restart (a new id Ferry never saw)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_for(world.webhook_secret.encode(), body),
    }
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"http://127.0.0.1:{world.ferry_port}{WEBHOOK_PATH}", content=body, headers=headers
        )
    assert response.status_code == 202, response.text


def record_payloads(world: World) -> list[tuple[str, dict[str, Any]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    world.github.on_event.append(lambda event, payload: sent.append((event, json.loads(json.dumps(payload)))))
    return sent


def created_comment(sent: list[tuple[str, dict[str, Any]]], comment_id: int) -> dict[str, Any]:
    return next(
        p
        for e, p in sent
        if e == "issue_comment" and p["action"] == "created" and p["comment"]["id"] == comment_id
    )


# ---- a restart, an outage, a rate limit ------------------------------------------------------------


async def test_a_command_posted_while_ferry_is_stopped_is_answered_by_the_next_process() -> None:
    async with sandbox() as world, world.person(MANAGER, "write", [TEAM]) as rita:
        issue = await open_issue(rita)
        await settle(world)
        await world.stop_ferry()
        asked = await comment(rita, issue, "/status")  # the webhook finds nobody listening
        await world.github.wait_for_deliveries()
        assert world.github.deliveries[-1].status is None, "GitHub could not deliver it and will not retry"
        await world.start_ferry()
        reply = await answered(world, asked)
        assert "**Ferry status of acme/gitops**" in reply["body"]
        await settle(world)
        assert len(replies(world, asked["id"])) == 1


async def test_a_command_posted_while_github_is_unreachable_is_answered_once_it_is_back() -> None:
    world = BehindAProxy()
    async with sandbox(world), world.person(MANAGER, "write", [TEAM]) as rita:
        issue = await open_issue(rita)
        await settle(world)
        world.proxy.silence()  # every request of Ferry's now stalls until its deadline
        asked = await comment(rita, issue, "/help")
        await world.github.wait_for_deliveries()
        await asyncio.sleep(3.0)  # the outage (30 s in the field; short here, with a 1 s deadline)
        assert replies(world, asked["id"]) == []
        world.proxy.forward_to(int(world.github_url.rsplit(":", 1)[1]))
        reply = await answered(world, asked)
        assert "**Ferry commands**" in reply["body"]
        await settle(world)
        assert len(replies(world, asked["id"])) == 1


@pytest.mark.parametrize("status", [403, 429])
async def test_a_command_hit_by_a_secondary_rate_limit_is_answered_after_the_wait(status: int) -> None:
    async with sandbox() as world, world.person(MANAGER, "write", [TEAM]) as rita:
        issue = await open_issue(rita)
        await settle(world)
        # The first write of a command is its 👀: GitHub refuses it as a secondary limit, asking for a
        # second's wait (without Retry-After GitHub asks for a minute, too long for a test).
        world.github.fail_next_secondary_limit("POST", REACTIONS, status=status, retry_after=1)
        asked = await comment(rita, issue, "/help")
        await answered(world, asked)
        await settle(world)
        assert world.github.requests[f"POST {REACTIONS}"] >= 2  # the refused 👀, then the retry
        assert len(replies(world, asked["id"])) == 1
        reactions = {r["content"] for r in world.github.reactions if r["subject"]["id"] == asked["id"]}
        assert reactions == {"eyes"}


# ---- a crash in the middle ------------------------------------------------------------------------


async def test_a_promote_in_flight_when_ferry_is_killed_is_finished_once_by_the_next_process() -> None:
    # The killed process's 👀 claims the command; the next one answers it once that claim lapses.
    world = Tuned(command_claim_timeout=timedelta(seconds=2))  # FERRY_COMMAND_CLAIM_TIMEOUT=2s
    async with sandbox(world), world.person(MANAGER, "write", [TEAM]) as rita:
        await dev_verified_on(world, "1.5.0")
        issue = await open_issue(rita)
        await settle(world)
        crashes: list[asyncio.Task[None]] = []

        def kill_when_the_pull_request_opens(event: str, payload: dict[str, Any]) -> None:
            opened = event == "pull_request" and payload.get("action") == "opened"
            if opened and payload["pull_request"]["head"]["ref"].startswith("ferry/staging/") and not crashes:
                # kill -9 between opening the pull request and answering: no reply, no label yet.
                crashes.append(asyncio.get_running_loop().create_task(world.stop_ferry(crash=True)))

        world.github.on_event.append(kill_when_the_pull_request_opens)
        asked = await comment(rita, issue, "/promote staging")
        await world.wait_for("the crash mid-command", lambda: crashes and crashes[0].done(), 30)
        assert replies(world, asked["id"]) == [] and len(staging_pulls(world)) == 1
        await world.start_ferry()
        reply = await answered(world, asked)
        await settle(world)
        (pull,) = staging_pulls(world)
        assert pull["html_url"] in reply["body"]
        assert len(replies(world, asked["id"])) == 1
        assert {"ferry", "stage:staging"} <= {label["name"] for label in pull["labels"]}


# ---- who may say a command was answered ---------------------------------------------------------


async def test_a_reply_marker_forged_by_a_reader_does_not_cancel_a_release_managers_command() -> None:
    async with sandbox() as world, world.person(MANAGER, "write", [TEAM]) as rita:
        sent = record_payloads(world)
        async with world.person(READER, "read") as reader:
            await dev_verified_on(world, "1.5.0")
            issue = await open_issue(rita)
            decoy = await comment(reader, issue, "Looks good to me")
            await settle(world)
            await world.stop_ferry()
            asked = await comment(rita, issue, "/promote staging")
            forged = f"Looks good to me\n\n<!-- ferry:reply-to:{asked['id']} -->\n"
            edit = await reader.patch(
                f"/repos/{FULL_NAME}/issues/comments/{decoy['id']}", json={"body": forged}
            )
            edit.raise_for_status()
        await world.start_ferry()
        await redeliver(world, "issue_comment", created_comment(sent, asked["id"]))
        reply = await answered(world, asked)
        await settle(world)
        (pull,) = staging_pulls(world)
        assert pull["html_url"] in reply["body"] and "@rita opened" in reply["body"]
        assert len(replies(world, asked["id"])) == 1


async def test_a_command_redelivered_on_a_thread_of_more_than_100_comments_is_answered_once() -> None:
    async with sandbox() as world, world.person(MANAGER, "write", [TEAM]) as rita:
        sent = record_payloads(world)
        issue = await open_issue(rita, "A long discussion")
        await settle(world)
        await world.stop_ferry()  # the discussion before the command needs no pass each
        for n in range(105):
            await comment(rita, issue, f"Note {n}: checkout latency looks fine")
        await world.start_ferry()
        asked = await comment(rita, issue, "/status")
        await answered(world, asked)
        await settle(world)
        assert len([c for c in world.github.comments if c["issue_url"].endswith(f"/issues/{issue}")]) > 100
        await redeliver(world, "issue_comment", created_comment(sent, asked["id"]))
        await settle(world)
        assert len(replies(world, asked["id"])) == 1


# ---- late, and cheap when nothing happens ----------------------------------------------------------


async def test_a_promote_older_than_the_max_age_is_answered_as_expired_not_run() -> None:
    world = Tuned()
    async with sandbox(world), world.person(MANAGER, "write", [TEAM]) as rita:
        await dev_verified_on(world, "1.5.0")
        issue = await open_issue(rita)
        await settle(world)
        await world.stop_ferry()
        asked = await comment(rita, issue, "/promote staging")
        await asyncio.sleep(2.5)
        world.overrides["command_max_age"] = timedelta(seconds=2)  # FERRY_COMMAND_MAX_AGE=2s
        await world.start_ferry()
        reply = await answered(world, asked)
        await settle(world)
        assert "Ferry did not run `/promote staging`: it was posted" in reply["body"]
        assert "comment `/promote staging` again to run it now" in reply["body"]
        assert staging_pulls(world) == []


async def test_idle_passes_read_each_comment_list_with_one_conditional_request_and_no_rate_limit() -> None:
    async with sandbox() as world, world.person(MANAGER, "write", [TEAM]) as rita:
        issue = await open_issue(rita)
        asked = await comment(rita, issue, "/help")
        await answered(world, asked)
        await settle(world)
        assert world.runtime is not None
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below run now
        reconciler = world.runtime.reconciler
        (sweep,) = [step for step in reconciler.change_steps if isinstance(step, CommandSweep)]
        (review,) = [step for step in reconciler.change_steps if isinstance(step, ConfigReview)]
        # Two settling rounds: after a list changed (Ferry's answer moved the newest-updated issue the change
        # check reads) the HTTP cache revalidates it once more unconditionally (it keeps the old entry next
        # to the new one), which GitHub charges; from then on every read is a 304.
        for _ in range(2):
            await reconciler.reconcile(FULL_NAME)
            await sweep(FULL_NAME)
            await review(FULL_NAME)
        used = world.github.rate_limit_used()
        before = dict(world.github.requests)
        for _ in range(3):
            assert await reconciler.reconcile(FULL_NAME) == []
            assert await sweep(FULL_NAME) == 0
            assert await review(FULL_NAME) == 0  # every open pull request's head is settled
        grown = {route: n - before.get(route, 0) for route, n in world.github.requests.items()}
        assert grown["GET /repos/{owner}/{repo}/issues/comments"] == 3
        assert grown["GET /repos/{owner}/{repo}/comments"] == 3
        assert world.github.rate_limit_used() == used
