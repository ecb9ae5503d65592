"""The comment reads of the GitHub adapter against the stand-in: every page of a long thread, the App's own
markers only, and the repository's recent comments (issue comments and commit comments) from where the
window starts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from github_standin_helpers import (
    API,
    SECRET,
    SEED,
    Clock,
    ferry_repo,  # noqa: F401 - the ``repo`` fixture
    person,
)

from bot.command_replies import reply_marker
from bot.github.repo import RepoGitHub
from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.github_state import BOT_LOGIN


@pytest.fixture(name="clock")
def fixed_clock() -> Clock:
    return Clock()


@pytest.fixture(name="standin")
async def clocked_standin(tmp_path: Path, clock: Clock) -> AsyncIterator[GitHubStandIn]:
    github = GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock)
    await github.seed(SEED)
    async with github:
        yield github


async def test_the_app_is_its_bot_account_by_slug(repo: RepoGitHub) -> None:
    identity = await repo.app()
    assert identity is not None and identity.login == BOT_LOGIN and identity.app_id == 1


async def test_a_reply_past_the_first_100_comments_is_found_and_not_posted_again(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    async with person(standin, "rita") as rita:
        number = (await rita.post(f"{API}/issues", json={"title": "Long"})).json()["number"]
        for n in range(120):
            (
                await rita.post(f"{API}/issues/{number}/comments", json={"body": f"note {n}"})
            ).raise_for_status()
    marker = reply_marker(5)
    assert await repo.comment_once(number, "Answer", marker=marker) is True  # comment 121, on page 2
    assert await repo.comment_once(number, "Answer", marker=marker) is False
    assert len(await repo.thread_comments(number)) == 121


async def test_a_persons_comment_holding_the_marker_does_not_stop_the_apps_reply(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    marker = reply_marker(5)
    async with person(standin, "watcher", "read") as watcher:
        number = (await watcher.post(f"{API}/issues", json={"title": "Q"})).json()["number"]
        await watcher.post(f"{API}/issues/{number}/comments", json={"body": f"ha {marker}"})
    assert await repo.comment_once(number, "Answer", marker=marker) is True
    ours = [c for c in await repo.thread_comments(number) if c.login == BOT_LOGIN]
    assert len(ours) == 1 and ours[0].account_type == "Bot"


async def test_recent_comments_come_from_the_windows_start_issue_and_commit_alike(
    standin: GitHubStandIn, repo: RepoGitHub, clock: Clock
) -> None:
    head = await standin_head(standin)
    async with person(standin, "rita") as rita:
        number = (await rita.post(f"{API}/issues", json={"title": "T"})).json()["number"]
        for n in range(3):
            await rita.post(f"{API}/issues/{number}/comments", json={"body": f"old {n}"})
            await rita.post(f"{API}/commits/{head}/comments", json={"body": f"old {n}"})
        clock.now += 3600
        since = datetime.fromtimestamp(clock.now, UTC) - timedelta(seconds=1)
        await rita.post(f"{API}/issues/{number}/comments", json={"body": "/status"})
        await rita.post(f"{API}/commits/{head}/comments", json={"body": "/help"})
    issue = await repo.recent_issue_comments(since)
    commit, page = await repo.recent_commit_comments(since, 1)
    assert [c.body for c in issue] == ["/status"] and issue[0].issue_number == number
    assert [c.body for c in commit] == ["/help"] and commit[0].commit_sha == head and page == 1


async def test_recent_commit_comments_of_a_long_list_are_read_from_its_last_pages(
    standin: GitHubStandIn, repo: RepoGitHub, clock: Clock
) -> None:
    head = await standin_head(standin)
    async with person(standin, "rita") as rita:
        for n in range(230):
            await rita.post(f"{API}/commits/{head}/comments", json={"body": f"old {n}"})
        clock.now += 3600
        since = datetime.fromtimestamp(clock.now, UTC)
        await rita.post(f"{API}/commits/{head}/comments", json={"body": "/status"})
    before = standin.requests["GET /repos/{owner}/{repo}/comments"]
    found, page = await repo.recent_commit_comments(since, 1)
    assert [c.body for c in found] == ["/status"] and page == 3
    assert standin.requests["GET /repos/{owner}/{repo}/comments"] - before == 2  # page 1, then the last
    async with person(standin, "rita") as rita:
        await rita.post(f"{API}/commits/{head}/comments", json={"body": "/help"})
    found, page = await repo.recent_commit_comments(since, page)
    assert [c.body for c in found] == ["/status", "/help"] and page == 3


async def standin_head(standin: GitHubStandIn) -> str:
    async with person(standin, "reader", "read") as reader:
        return str((await reader.get(f"{API}/commits/main")).json()["sha"])


async def test_a_comment_after_a_full_cached_page_is_still_read(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    """An unchanged full page answers 304 and comes from the cache with the Link header it had: one
    that named no next page. The page after it is asked for all the same."""
    async with person(standin, "rita") as rita:
        number = (await rita.post(f"{API}/issues", json={"title": "Exactly a page"})).json()["number"]
        for n in range(100):
            (
                await rita.post(f"{API}/issues/{number}/comments", json={"body": f"note {n}"})
            ).raise_for_status()
        assert len(await repo.thread_comments(number)) == 100
        await rita.post(f"{API}/issues/{number}/comments", json={"body": "/status"})
    assert [c.body for c in await repo.thread_comments(number)][-1] == "/status"
