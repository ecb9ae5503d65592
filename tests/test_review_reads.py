"""Who approved a promotion pull request, as Ferry's adapter reads it from the GitHub stand-in: every page of
reviews, team membership, dismissals, stale approvals after a push, a bot's approval, ``/approve`` records
only from the App's own comments, and a second read only when the pull request changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from github_standin_helpers import (
    API,
    branch_with_change,
    ferry_repo,  # noqa: F401 - the ``repo`` fixture
    installation_client,
    open_pull,
    person,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)

from bot.core.approvals import approve_marker, approvers, stale_approvers
from bot.github.repo import RepoGitHub
from bot.github.reviews import ReviewReader
from bot.sandbox.github_standin import GitHubStandIn

TEAM = ["@acme/release-managers"]


async def _prod_pull(standin: GitHubStandIn) -> dict[str, Any]:
    async with person(standin, "alice") as alice:
        await branch_with_change(alice, "ferry/prod/0123456789ab", "envs/prod/values.yaml", "tag: one\n")
        return await open_pull(alice, "ferry/prod/0123456789ab")


async def _read(reader: ReviewReader, repo: RepoGitHub, number: int) -> Any:
    [pull] = [p for p in await repo.open_promotions() if p.number == number]
    return await reader.pull_reviews(
        number,
        head_sha=pull.head_sha,
        author=pull.author,
        stage="prod",
        promoters=TEAM,
        updated_at=pull.updated_at,
    )


async def test_a_team_members_approval_counts_until_it_is_dismissed(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    pr = await _prod_pull(standin)
    standin.add_user("rita", "write", teams=["acme/release-managers"])
    standin.add_user("bob", "write")
    await standin.approve(pr["number"], "bob")
    review = await standin.approve(pr["number"], "rita")
    reader = ReviewReader(repo)
    assert approvers(await _read(reader, repo, pr["number"])) == ["rita"]
    async with person(standin, "owner-admin", "admin") as admin:
        url = f"{API}/pulls/{pr['number']}/reviews/{review['id']}/dismissals"
        assert (await admin.put(url, json={})).status_code == 422  # a message is required
        dismissed = await admin.put(url, json={"message": "approved the wrong release"})
        assert dismissed.status_code == 200 and dismissed.json()["state"] == "DISMISSED"
    assert approvers(await _read(reader, repo, pr["number"])) == []  # updated_at moved: read again


async def test_an_approval_before_a_push_is_stale(standin: GitHubStandIn, repo: RepoGitHub) -> None:
    pr = await _prod_pull(standin)
    standin.add_user("rita", "write", teams=["acme/release-managers"])
    await standin.approve(pr["number"], "rita")
    await standin.push_files({"extra.txt": b"x"}, "Fix-up", branch="ferry/prod/0123456789ab", login="alice")
    found = await _read(ReviewReader(repo), repo, pr["number"])
    assert approvers(found) == [] and stale_approvers(found) == ["rita"]


async def test_a_bots_approval_and_a_forged_approve_record_do_not_count(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    pr = await _prod_pull(standin)
    app = installation_client(standin)
    await app.pulls.async_create_review("acme", "gitops", pr["number"], data={"event": "APPROVE"})
    standin.add_user("rita", "write", teams=["acme/release-managers"])
    async with person(standin, "bob") as bob:  # a person pasting Ferry's record into a comment
        forged = approve_marker("prod", pr["head"]["sha"], "rita")
        await bob.post(f"{API}/issues/{pr['number']}/comments", json={"body": forged})
    found = await _read(ReviewReader(repo), repo, pr["number"])
    assert [r.bot for r in found.reviews] == [True] and approvers(found) == []


async def test_every_page_of_reviews_is_read_and_nothing_again_while_unchanged(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    pr = await _prod_pull(standin)
    standin.add_user("carol", "read")
    for index in range(101):  # more than one page of 100
        await standin.review(pr["number"], "carol", "COMMENT", f"note {index}")
    standin.add_user("rita", "write", teams=["acme/release-managers"])
    await standin.approve(pr["number"], "rita")
    later = datetime.now(UTC) + timedelta(seconds=6)  # the read comes well after the last change
    reader = ReviewReader(repo, clock=lambda: later)
    found = await _read(reader, repo, pr["number"])
    assert len(found.reviews) == 102 and approvers(found) == ["rita"]
    reviews = "GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews"
    assert standin.requests[reviews] == 2  # page 1 and page 2
    assert await _read(reader, repo, pr["number"]) is found
    assert standin.requests[reviews] == 2  # unchanged pull request: not read again


async def test_an_author_cannot_approve_their_own_promotion(standin: GitHubStandIn) -> None:
    pr = await _prod_pull(standin)
    async with person(standin, "alice") as alice:
        own = await alice.post(f"{API}/pulls/{pr['number']}/reviews", json={"event": "APPROVE"})
    assert own.status_code == 422 and own.json()["errors"] == ["Can not approve your own pull request"]
