"""The request budget of a pass, asserted from the GitHub stand-in's own request records: an idle pass is the
change check's two conditional requests, a change nobody announced still reaches Ferry through that check, a
verifying pass asks GitHub next to nothing, and opening a promotion costs its writes and guards only."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from bot.core.gates import health_context
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0"], "worker": ["1.4.0"]}
CHECK = collections.Counter(
    {"GET /repos/{owner}/{repo}/git/ref/{ref}": 1, "GET /repos/{owner}/{repo}/issues": 1}
)


def dev_only(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="30s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


@contextlib.asynccontextmanager
async def quiet_sandbox(progress_seconds: float = 0.2) -> AsyncIterator[World]:
    """The sandbox with dev verified, Ferry's timers stopped (only the passes a test runs, and those webhooks
    start, run) and every queued webhook handled."""
    world = World(progress_seconds=progress_seconds)
    try:
        await world.start(dev_only, RELEASES)
        await world.wait_for("dev verified", lambda: dev_health(world) == "success", 60)
        assert world.runtime is not None
        for task in world.runtime.tasks:
            task.cancel()
        await settle(world)
        yield world
    finally:
        await world.stop()


async def settle(world: World) -> None:
    assert world.runtime is not None
    async with asyncio.timeout(60):
        for _ in range(3):
            await world.github.wait_for_deliveries()
            await asyncio.sleep(0.05)  # the webhook handler starts its work off the request path
            await world.runtime.reconciler.idle()


def dev_health(world: World) -> str | None:
    """The newest ``ferry/health/dev`` state on any commit, overtaken merges' "Superseded" left out."""
    latest: tuple[float, str] | None = None
    for records in world.github.state.statuses.values():
        for record in records:
            if record.description.startswith("Superseded"):
                continue  # an overtaken merge's verdict, written after the newer merge's pending
            if record.context == health_context("dev") and (latest is None or record.created_at >= latest[0]):
                latest = (record.created_at, record.state)
    return latest[1] if latest else None


async def recorded_pass(world: World) -> collections.Counter[str]:
    """One whole pass as the timer starts it; the requests the stand-in recorded for it, by route."""
    return (await kind_of_pass(world))[1]


async def kind_of_pass(world: World) -> tuple[str, collections.Counter[str]]:
    """One whole pass as the timer starts it: its kind, and the requests the stand-in recorded for it."""
    assert world.runtime is not None
    before = collections.Counter(world.github.requests)
    count = await world.runtime.reconciler.run_pass(FULL_NAME)
    grown = collections.Counter(world.github.requests)
    grown.subtract(before)
    grown = +grown
    assert count.total == grown.total(), "Ferry's own count of the pass agrees with GitHub's records"
    return count.kind, grown


async def until_idle(world: World, within: int = 20) -> None:
    """Passes until one is idle: lists show a write a moment late (read-after-write lag), so the change
    check may see an earlier write of the test's one pass later and read in full once more."""
    for _ in range(within):
        if await recorded_pass(world) == CHECK:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"no pass within {within} was idle (the change check's two requests only)")


async def test_an_idle_pass_sends_github_only_the_two_conditional_requests_of_the_change_check() -> None:
    async with quiet_sandbox() as world:
        await until_idle(world)  # the first passes after the webhooks settled may still read in full
        used = world.github.rate_limit_used()
        for _ in range(3):
            assert await recorded_pass(world) == CHECK
        assert world.github.rate_limit_used() == used  # both answered 304 Not Modified: free
        assert world.runtime is not None
        metrics = world.runtime.metrics.render()[0].decode().splitlines()
        prefix = 'ferry_pass_github_requests_bucket{kind="idle",le="2.0"} '
        [within_two] = [float(line.removeprefix(prefix)) for line in metrics if line.startswith(prefix)]
        assert within_two >= 3  # /metrics shows the three passes within the idle budget


async def test_every_pass_reads_everything_again_without_the_change_check() -> None:
    async with quiet_sandbox() as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        reconciler.reads.enabled = False
        gh = reconciler.repo_client(FULL_NAME)
        read = gh.statuses
        asked: list[str] = []

        async def statuses(sha: str) -> dict[str, Any]:
            asked.append(sha)
            return await read(sha)

        gh.statuses = statuses  # type: ignore[method-assign]
        for _ in range(10):  # a pass that still acts (reads a status right before writing it) is not idle
            asked.clear()
            kind, full = await kind_of_pass(world)
            if kind == "idle":
                break
            await asyncio.sleep(0.2)
        assert kind == "idle", "an idle pass within ten"
        assert full.total() > 2 * CHECK.total()
        # The config's commit is staging's and prod's deploy commit too, dev's is its promotion's merge: two
        # commits, each one's statuses read once however many stages share it (and each open pull request's).
        snapshot = world.runtime.reconciler.observed[FULL_NAME]
        assert snapshot is not None and snapshot.config_commit is not None
        deploys = {snapshot.config_commit, *(d.commit for d in snapshot.deploys.values())}
        assert len(deploys) == 2
        commits = deploys | {pr.head_sha for pr in snapshot.open_prs}
        assert sorted(asked) == sorted(commits)
        assert full["GET /repos/{owner}/{repo}/commits/{ref}/status"] >= len(commits)


async def test_an_issue_nobody_announced_makes_the_next_timer_pass_read_in_full_and_answer_it() -> None:
    async with quiet_sandbox() as world, world.person("rita", "write") as rita:
        assert world.runtime is not None
        await until_idle(world)
        world.github.set_app_events([])  # the webhook is lost: only the change check can notice
        created = await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})
        created.raise_for_status()
        asked = await rita.post(
            f"/repos/{FULL_NAME}/issues/{created.json()['number']}/comments", json={"body": "/help"}
        )
        asked.raise_for_status()
        noticed = await recorded_pass(world)
        assert noticed["GET /repos/{owner}/{repo}/issues/comments"] == 1  # the command sweep ran
        marker = f"<!-- ferry:reply-to:{asked.json()['id']} -->"
        assert any(marker in c["body"] for c in world.github.comments)  # ... and answered /help
        await until_idle(world)  # the pass after it reads in full: the pass above wrote (its answer)


async def test_a_push_nobody_announced_makes_the_next_timer_pass_read_the_new_head() -> None:
    async with quiet_sandbox() as world:
        assert world.runtime is not None
        await until_idle(world)
        world.github.set_app_events([])
        head = await world.github.push_files({"docs/notes.md": b"release notes\n"}, "Add notes")
        noticed = await recorded_pass(world)
        assert noticed["GET /repos/{owner}/{repo}/git/trees/{tree_sha}"] == 1
        snapshot = world.runtime.reconciler.observed[FULL_NAME]
        assert snapshot is not None and snapshot.head_sha == head
        await until_idle(world)


async def test_opening_a_promotion_costs_the_check_two_guard_reads_and_five_writes() -> None:
    async with quiet_sandbox() as world:
        assert world.runtime is not None
        await until_idle(world)
        world.github.set_app_events([])  # only this pass: not the ones its own writes' webhooks start
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        world.runtime.freight.invalidate(FULL_NAME)  # as the registry's package event does
        opened = await recorded_pass(world)
        assert opened == CHECK + collections.Counter(
            {
                "GET /repos/{owner}/{repo}/git/ref/{ref}": 1,  # the base, right before writing on it
                "GET /repos/{owner}/{repo}/pulls": 1,  # a promotion a person closed is never reopened
                "POST /repos/{owner}/{repo}/git/trees": 1,
                "POST /repos/{owner}/{repo}/git/commits": 1,
                "POST /repos/{owner}/{repo}/git/refs": 1,
                "POST /repos/{owner}/{repo}/pulls": 1,
                "POST /repos/{owner}/{repo}/issues/{issue_number}/labels": 1,
            }
        )


async def test_a_verifying_pass_asks_argo_cd_and_github_at_most_four_times() -> None:
    async with quiet_sandbox(progress_seconds=3.0) as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        merged = False
        for _ in range(20):  # open, gate, merge
            await recorded_pass(world)
            await settle(world)
            merged = any(
                r.pull is not None and r.pull.merged and r.pull.head_ref.startswith("ferry/dev/")
                for r in world.github.state.pulls()
            )
            if merged:
                break
        assert merged, "dev's promotion merged"
        await world.wait_for("dev verifying", lambda: FULL_NAME in reconciler.verifying, 30)
        argocd = sum(world.argocd.requests.values())
        verifying = []
        while dev_health(world) == "pending" and len(verifying) < 5:
            # The pass after one that wrote reads GitHub in full once (Ferry's own writes move no mark of
            # the change check): the budget is that of the passes that only verify.
            follows_a_write = FULL_NAME in reconciler._full_due
            kind, grown = await kind_of_pass(world)
            if (
                kind == "verifying" and not follows_a_write
            ):  # not a pass that acted (a status restated, a pull request opened)
                verifying.append(grown)
            await settle(world)
            await asyncio.sleep(0.3)
        assert verifying, "dev was verifying"
        assert all(grown.total() <= 4 for grown in verifying), [dict(g) for g in verifying]
        assert sum(world.argocd.requests.values()) > argocd  # Argo CD is what a verifying pass reads


async def test_a_command_a_lagging_list_shows_late_is_answered_once_the_list_shows_it() -> None:
    async with quiet_sandbox() as world, world.person("rita", "write") as rita:
        assert world.runtime is not None
        await until_idle(world)
        world.github.set_app_events([])  # no webhook: the change check alone must notice
        world.github.set_list_lag(3.0)  # lists show writes seconds late, as GitHub's may
        created = await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})
        created.raise_for_status()
        asked = await rita.post(
            f"/repos/{FULL_NAME}/issues/{created.json()['number']}/comments", json={"body": "/help"}
        )
        asked.raise_for_status()
        marker = f"<!-- ferry:reply-to:{asked.json()['id']} -->"
        assert await recorded_pass(world) == CHECK  # the list does not show it yet: nothing to read
        for _ in range(60):
            await asyncio.sleep(0.25)
            await recorded_pass(world)
            if any(marker in c["body"] for c in world.github.comments):
                break
        else:
            raise AssertionError("the /help the list showed late was never answered")
