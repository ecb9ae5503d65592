"""Replicas that all see every webhook and all reconcile the same repository (no ``FERRY_SHARD``): a command
is answered once, a comment Ferry posts stands once, and a promotion branch another replica just wrote is
adopted, never forced over. Each replica here is Ferry's own GitHub adapter with an App client of its own,
racing another over the GitHub stand-in."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from github_standin_helpers import OWNER, REPO, person, seeded_standin
from test_faults import dev_waits_for_a_person, git, release, sandbox, settle

from bot.command_replies import Comment, reply_marker
from bot.command_runner import CommandRunner
from bot.core.actions import OpenPromotion
from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.github_state import BOT_LOGIN

__all__ = ["seeded_standin"]  # the ``standin`` fixture
FULL = f"{OWNER}/{REPO}"


@pytest.fixture(name="replicas")
async def two_replicas(standin: GitHubStandIn) -> AsyncIterator[list[RepoGitHub]]:
    """Two replicas' GitHub adapters for the seeded repository: two Apps' clients, one bot account."""
    apps = [
        GitHubApp(app_id=1, private_key=standin.app_private_key_pem, base_url=standin.base_url)
        for _ in range(2)
    ]
    try:
        yield [RepoGitHub(app.installation(1), FULL, identity=app.identity) for app in apps]
    finally:
        for app in apps:
            await app.aclose()


async def a_command(standin: GitHubStandIn, body: str) -> Comment:
    async with person(standin, "rita") as rita:
        issue = (await rita.post(f"/repos/{FULL}/issues", json={"title": "Release"})).json()
        made = (
            await rita.post(f"/repos/{FULL}/issues/{issue['number']}/comments", json={"body": body})
        ).json()
    return Comment(
        kind="issue",
        repo=FULL,
        comment_id=int(made["id"]),
        body=body,
        login="rita",
        account_type="User",
        association="COLLABORATOR",
        url=made["html_url"],
        issue_number=int(issue["number"]),
        created_at=datetime.fromisoformat(made["created_at"].replace("Z", "+00:00")),
    )


def runner(gh: RepoGitHub, *, claim_timeout: float = 120.0, late: float = 0.0) -> CommandRunner:
    async def no_snapshot(repo: str) -> None:
        return None

    return CommandRunner(
        snapshot=no_snapshot,
        client=lambda repo: gh,
        claim_timeout=timedelta(seconds=claim_timeout),
        clock=lambda: datetime.now(UTC) + timedelta(seconds=late),
    )


def replies(standin: GitHubStandIn, comment: Comment) -> list[dict[str, Any]]:
    marker = reply_marker(comment.comment_id)
    return [c for c in standin.comments if marker in c["body"] and c["user"]["login"] == BOT_LOGIN]


def both_look_first(replicas: list[RepoGitHub]) -> None:
    """Hold each replica's first look at a thread until the other has looked too, as two replicas woken
    by one webhook at the same moment do: each then finds no comment of the other's yet."""
    barrier = asyncio.Barrier(2)
    for gh in replicas:
        gh.thread_comments = _first_look_waits(gh.thread_comments, barrier)  # type: ignore[method-assign]


def _first_look_waits(
    read: Callable[..., Awaitable[list[Comment]]], barrier: asyncio.Barrier
) -> Callable[..., Awaitable[list[Comment]]]:
    looked = False

    async def thread_comments(number: int, since: datetime | None = None) -> list[Comment]:
        nonlocal looked
        found = await read(number, since)
        if not looked:
            looked = True
            async with asyncio.timeout(10):
                await barrier.wait()
        return found

    return thread_comments


async def test_two_replicas_answering_one_command_at_once_reply_once(
    standin: GitHubStandIn, replicas: list[RepoGitHub]
) -> None:
    comment = await a_command(standin, "/help")
    both_look_first(replicas)
    outcomes = await asyncio.gather(*(runner(gh).handle(comment) for gh in replicas))
    assert sorted(o.verdict for o in outcomes) == ["answered", "claimed"]
    assert len(replies(standin, comment)) == 1


async def test_a_command_claimed_by_a_replica_that_died_is_answered_by_another_after_the_claim_timeout(
    standin: GitHubStandIn, replicas: list[RepoGitHub]
) -> None:
    comment = await a_command(standin, "/help")
    dead, alive = replicas
    assert (await dead.claim_comment("issue", comment.comment_id, "eyes")).new  # then killed: no reply

    soon = await runner(alive, claim_timeout=60).handle(comment)
    assert soon.verdict == "claimed" and 0 < soon.retry_in <= 60
    assert replies(standin, comment) == []

    later = await runner(alive, claim_timeout=60, late=61).handle(comment)
    assert later.verdict == "answered"
    assert len(replies(standin, comment)) == 1
    eyes = [r for r in standin.reactions if r["content"] == "eyes"]
    assert len(eyes) == 1, eyes  # the dead replica's claim was replaced, not doubled


async def test_two_replicas_posting_the_same_marked_comment_at_once_leave_one(
    standin: GitHubStandIn, replicas: list[RepoGitHub]
) -> None:
    async with person(standin, "rita") as rita:
        issue = (await rita.post(f"/repos/{FULL}/issues", json={"title": "Promote"})).json()
    marker = "<!-- ferry:verdict:dev:abc1234 -->"
    both_look_first(replicas)
    posted = await asyncio.gather(
        *(gh.comment_once(issue["number"], "**dev failed verification**", marker=marker) for gh in replicas)
    )
    standing = [c for c in standin.comments if marker in c["body"]]
    assert len(standing) == 1, standing
    assert sorted(posted) == [False, True]  # the one whose copy stands says it posted


async def test_a_replica_opening_the_promotion_another_just_wrote_adopts_its_branch_without_forcing() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        client = reconciler.repo_client(repo)
        opened: list[OpenPromotion] = []
        forced: list[str] = []
        world.github.on_event.append(
            lambda event, payload: (
                forced.append(payload["ref"]) if event == "push" and payload.get("forced") else None
            )
        )
        open_promotion = client.open_promotion

        async def recording(action: OpenPromotion) -> tuple[int, str]:
            opened.append(action)
            return await open_promotion(action)

        client.open_promotion = recording  # type: ignore[method-assign]
        release(world, "1.5.0")
        await world.wait_for("the 1.5.0 promotion", lambda: opened and world.github.pulls, 30)
        await settle(world)
        (decided,) = opened
        branch = decided.branch
        head = git(world, "rev-parse", branch).strip()

        # A second replica decided the same promotion from the same snapshot and writes it a moment later.
        number, _ = await open_promotion(decided)
        assert git(world, "rev-parse", branch).strip() == head
        assert forced == []
        assert [p["number"] for p in world.github.pulls.values() if p["head"]["ref"] == branch] == [number]
