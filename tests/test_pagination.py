"""Every list that decides something is read to its end: GitHub lists at most 100 items a page (the stand-in
pages the same way, tests/test_github_standin_lists.py), so a busy repository's hundred-and-first pull
request or check is as real to Ferry as its first."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from github_standin_helpers import (
    OWNER,
    REPO,
    SECRET,
    SEED,
    Clock,
    ferry_repo,  # noqa: F401 - the ``repo`` fixture
    installation_client,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)
from test_compare_and_swap import open_dev_pulls
from test_faults import dev_waits_for_a_person, git, release, sandbox, settle

from bot import events
from bot.core.gates import health_context
from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.world import FULL_NAME, World

DEV = health_context("dev")
PEOPLES_PULLS = 150


def branches_at(world: World, sha: str, branches: list[str]) -> None:
    """Make ``branches`` at ``sha`` in one git call (people's pushes; no webhook, as the test wants)."""
    refs = "".join(f"create refs/heads/{branch} {sha}\n" for branch in branches)
    subprocess.run(
        ["git", "-C", str(world.github.repo_path), "update-ref", "--stdin"], input=refs, check=True, text=True
    )
    world.github.state.store.refs_moved_outside()  # the stand-in keeps its ref listing until a ref moves


async def post(rest: Any, sha: str, context: str, state: str = "success") -> None:
    await rest.repos.async_create_commit_status(OWNER, REPO, sha, state=state, context=context)


async def test_a_commit_with_more_than_a_hundred_checks_still_shows_ferrys_status(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    rest = installation_client(standin)
    sha = await repo.head("main")
    await post(rest, sha, DEV, "failure")
    for n in range(PEOPLES_PULLS):  # contexts named before Ferry's push it off the first page
        await post(rest, sha, f"ci/check-{n:03}")
    found = await repo.statuses(sha)
    assert len(found) == PEOPLES_PULLS + 1
    assert found[DEV].state == "failure"


async def test_a_pending_run_that_began_before_a_hundred_other_statuses_is_dated_from_its_start(
    tmp_path: Path,
) -> None:
    clock = Clock()
    github = GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock)
    await github.seed(SEED)
    async with github:
        app = GitHubApp(app_id=1, private_key=github.app_private_key_pem, base_url=github.base_url)
        try:
            repo = RepoGitHub(app.installation(1), f"{OWNER}/{REPO}", identity=app.identity)
            rest = installation_client(github)
            sha = await repo.head("main")
            began = clock.now
            await post(rest, sha, DEV, "pending")
            for n in range(120):
                clock.now += 1
                await post(rest, sha, f"ci/check-{n:03}")
            clock.now += 1
            await post(rest, sha, DEV, "pending")  # restated later: the run still began at ``began``
            since = await repo.history.pending_since(sha, DEV)
        finally:
            await app.aclose()
    assert since is not None and since.timestamp() == began


async def test_an_older_promotion_behind_150_peoples_pull_requests_is_neither_reopened_nor_forced() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        assert world.runtime is not None
        release(world, "1.5.0")
        (pull,) = await world.wait_for("the 1.5.0 PR", lambda: open_dev_pulls(world), 30)
        await settle(world)
        branch = pull["head"]["ref"]
        head = git(world, "rev-parse", branch).strip()
        opened = len(world.kinds(events.PR_OPENED, "dev"))
        world.github.set_app_events(["installation"])  # Renovate's pushes are no hint to Ferry
        reconciler = world.runtime.reconciler
        reconciler.steps.clear()  # ferry/config on each of them is tests/test_config_pull_requests.py's
        one = await world.github.push_files(
            {"deps/lock.txt": b"1\n"}, "Update deps", branch="renovate/dep-000"
        )
        deps = [f"renovate/dep-{n:03}" for n in range(PEOPLES_PULLS)]
        branches_at(world, one, deps[1:])
        async with world.person("renovate") as renovate:
            for n, dep in enumerate(deps):  # newer than the promotion: GitHub lists them first
                answer = await renovate.post(
                    f"/repos/{FULL_NAME}/pulls",
                    json={"title": f"Update dep {n}", "head": dep, "base": "main"},
                )
                assert answer.status_code == 201, answer.text
        (repo,) = reconciler.repos
        for _ in range(2):  # passes run to their end here (the timer's may run alongside, as replicas do)
            await reconciler.reconcile(repo)
        assert git(world, "rev-parse", branch).strip() == head
        assert len(world.kinds(events.PR_OPENED, "dev")) == opened
        assert not world.kinds(events.PR_REBUILT, "dev")
        assert [p["number"] for p in open_dev_pulls(world)] == [pull["number"]]
