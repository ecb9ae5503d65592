"""Argo CD misbehaving while Ferry verifies a stage: errors, a refused token, a missing application,
someone else's operation, and two merges in quick succession. The sandbox world runs Ferry's real
code path; the Argo CD stand-in injects the faults. Ferry must never crash and must always end with a
verdict on the deploy commit."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from bot import events
from bot.argocd import PROMOTION_INFO_KEY
from bot.core.gates import health_context
from bot.sandbox.argocd_apps import git_app
from bot.sandbox.argocd_standin import ArgoCDStandIn
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
DEV_APP = "/api/v1/applications/shop-dev"
DEV_SYNC = f"{DEV_APP}/sync"
DEV_HEALTH = health_context("dev")
Edit = Callable[[dict[str, Any]], None]


def dev_only(config: dict[str, Any], *, timeout: str = "20s", auto_merge: bool = True) -> None:
    quick_pipeline(config, verify_timeout=timeout)
    config["stages"]["dev"]["auto_merge"] = auto_merge
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


def dev_merged_by_people(config: dict[str, Any]) -> None:
    dev_only(config, auto_merge=False)


@contextlib.asynccontextmanager
async def sandbox(edit: Edit = dev_only, progress_seconds: float = 0.2) -> AsyncIterator[World]:
    world = World(progress_seconds=progress_seconds)
    try:
        await world.start(edit, RELEASES)
        yield world
    finally:
        await world.stop()


def argocd(world: World) -> ArgoCDStandIn:
    assert world.argocd is not None
    return world.argocd


def release(world: World, tag: str) -> None:
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)


def record_pass_outcomes(world: World) -> list[str]:
    """Every reconcile pass's outcome (ok, retry, failed, crashed) from now on."""
    assert world.runtime is not None
    reconciler = world.runtime.reconciler
    outcomes: list[str] = []
    previous = reconciler.on_pass

    def on_pass(repo: str, seconds: float, outcome: str) -> None:
        outcomes.append(outcome)
        if previous is not None:
            previous(repo, seconds, outcome)

    reconciler.on_pass = on_pass
    return outcomes


def health_states(world: World, sha: str) -> list[tuple[str, str]]:
    """(state, description) of every ferry/health/dev status on ``sha``, oldest first."""
    records = sorted(world.github.statuses.get(sha, []), key=lambda s: s["id"])
    return [(s["state"], s["description"]) for s in records if s["context"] == DEV_HEALTH]


def final_state(world: World, sha: str) -> str | None:
    states = health_states(world, sha)
    return states[-1][0] if states else None


async def starting_commit_verified(world: World) -> str:
    """Wait for dev's verdict on the seeded commit; return that commit."""
    await world.wait_for("dev verified at the start", lambda: world.kinds(events.HEALTH_VERDICT, "dev"), 30)
    return next(sha for sha in world.github.statuses if health_states(world, sha))


async def decided(world: World, sha: str, within: float = 30) -> str:
    def verdict() -> str | None:
        state = final_state(world, sha)
        return state if state in ("success", "failure", "error") else None

    return str(await world.wait_for(f"a verdict on {sha[:7]}", verdict, within))


async def dev_merge_commit(world: World, number: int | None = None) -> str:
    def merged() -> str | None:
        for n, pull in sorted(world.github.pulls.items(), reverse=True):
            if pull["head"]["ref"].startswith("ferry/dev/") and pull["merged"] and number in (None, n):
                return str(pull["merge_commit_sha"])
        return None

    return str(await world.wait_for("dev's promotion merged", merged, 45))


async def open_dev_pull(world: World, title_has: str) -> dict[str, Any]:
    async def found() -> dict[str, Any] | None:
        for pull in world.github.pulls.values():
            ref = pull["head"]["ref"]
            if pull["state"] == "open" and ref.startswith("ferry/dev/") and title_has in pull["title"]:
                return pull
        return None

    return dict(await world.wait_for(f"dev's {title_has} PR", found, 30))


def manual_dev(world: World) -> None:
    """shop-dev without automated sync, so Ferry syncs it (its own targetRevision) rather than refreshing."""
    argocd(world).set_spec("shop-dev", git_app("overlays/dev", "main"))


async def test_argocd_answering_500_for_a_while_still_ends_in_a_verdict() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        manual_dev(world)
        outcomes = record_pass_outcomes(world)
        # More failures in a row than the adapter retries within one call, so whole passes meet them.
        argocd(world).fail_next("POST", DEV_SYNC, 500, times=5)
        argocd(world).fail_next("GET", DEV_APP, 500, times=6)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"
        states = [state for state, _ in health_states(world, merge)]
        assert states[0] == "pending" and states[-1] == "success"
        assert argocd(world).requests[f"POST {DEV_SYNC}"] > 5  # every injected 500 was met, then the sync
        assert "crashed" not in outcomes


async def test_a_refused_argocd_token_fails_verification_after_the_timeout_saying_why() -> None:
    async with sandbox(lambda config: dev_only(config, timeout="3s")) as world:
        await starting_commit_verified(world)
        outcomes = record_pass_outcomes(world)
        argocd(world).fail_next("POST", DEV_SYNC, 401, times=10_000)
        argocd(world).fail_next("GET", DEV_APP, 401, times=10_000)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        (first, _), *_, (last, why) = health_states(world, merge)
        assert (first, last) == ("pending", "failure")
        assert "timed out" in why.lower()
        assert "token" in why.lower() or "401" in why
        assert "crashed" not in outcomes


def dev_points_at_a_missing_app(config: dict[str, Any]) -> None:
    dev_only(config, timeout="3s")
    config["stages"]["dev"]["argocd"] = {"app": "no-such-app"}


async def test_an_argocd_app_that_does_not_exist_fails_verification_after_the_timeout_naming_it() -> None:
    async with sandbox(dev_points_at_a_missing_app) as world:
        outcomes = record_pass_outcomes(world)
        verdicts = await world.wait_for(
            "dev's verdict", lambda: world.kinds(events.HEALTH_VERDICT, "dev"), 30
        )
        start = next(sha for sha in world.github.statuses if health_states(world, sha))
        (first, _), *_, (last, why) = health_states(world, start)
        assert (first, last) == ("pending", "failure")
        assert verdicts[0].detail.startswith("failure")
        assert "no-such-app" in why and "not found" in why
        assert "timed out" in why.lower()
        assert "crashed" not in outcomes


async def test_an_operation_started_by_someone_else_is_waited_out_and_the_merge_verified() -> None:
    async with sandbox(dev_merged_by_people, progress_seconds=1.5) as world:
        await starting_commit_verified(world)
        manual_dev(world)
        release(world, "1.5.0")
        pull = await open_dev_pull(world, "1.5.0")
        base = pull["base"]["sha"]
        asked_before = argocd(world).requests[f"POST {DEV_SYNC}"]
        async with world.person("dora", "write") as dora:
            foreign_started = time.time()
            argocd(world).start_foreign_operation("shop-dev", base)  # someone clicks Sync in the UI
            await world.merge(dora, pull, "@dora")
        merge = await dev_merge_commit(world, pull["number"])
        assert await decided(world, merge) == "success"
        # Ferry's sync names no revision (the app syncs its own targetRevision, whose head holds the
        # merge); its infos name the promotion of the merge commit. (It used to send the merge commit.)
        promotion = f"dev/{merge[:12]}"
        ours = [
            s for s in argocd(world).syncs if s[0] == "shop-dev" and s[2].get(PROMOTION_INFO_KEY) == promotion
        ]
        assert ours, "Ferry never synced for the merge commit"
        assert all(s[1] in ("", "HEAD") for s in ours)
        # Ferry read the app first and waited the other operation out instead of being refused as busy
        # (it used to send a sync at once and count on the refusal).
        assert ours[0][3] >= foreign_started + 1.5
        assert argocd(world).requests[f"POST {DEV_SYNC}"] - asked_before == len(ours)


async def two_quick_merges(world: World) -> tuple[str, str]:
    """Merge a 1.5.0 promotion, then a 1.6.0 one while the first is still syncing: both merge commits."""
    await starting_commit_verified(world)
    async with world.person("dora", "write") as dora:
        release(world, "1.5.0")
        first = await open_dev_pull(world, "1.5.0")
        await world.merge(dora, first, "@dora")
        release(world, "1.6.0")
        second = await open_dev_pull(world, "1.6.0")
        await world.merge(dora, second, "@dora")
    return await dev_merge_commit(world, first["number"]), await dev_merge_commit(world, second["number"])


async def test_of_two_merges_in_quick_succession_the_later_is_verified() -> None:
    # Syncs run long enough that the second merge lands while the first is still being verified.
    async with sandbox(dev_merged_by_people, progress_seconds=8.0) as world:
        outcomes = record_pass_outcomes(world)
        _, later = await two_quick_merges(world)
        assert await decided(world, later) == "success"
        assert world.runtime is not None and world.runtime.reconciler.argocd is not None
        # Argo CD runs the later merge (checked on the app itself: Ferry's syncs name no revision).
        app = await world.runtime.reconciler.argocd.get_app("default", "shop-dev")
        assert app.sync_revision == later
        snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
        assert snapshot is not None and snapshot.deploys["dev"].commit == later
        assert "crashed" not in outcomes


async def test_of_two_merges_in_quick_succession_the_earlier_says_it_was_superseded() -> None:
    # Syncs run long enough that the second merge lands while the first is still being verified.
    async with sandbox(dev_merged_by_people, progress_seconds=8.0) as world:
        earlier, later = await two_quick_merges(world)
        assert await decided(world, later) == "success"
        state = await decided(world, earlier, within=15)
        (description,) = [d for s, d in health_states(world, earlier)[-1:]]
        assert state != "success"
        assert "superseded" in description.lower() and later[:7] in description


def dev_status_records(world: World, sha: str) -> list[tuple[float, str, str]]:
    """(time GitHub recorded it, state, description) of every ferry/health/dev status on ``sha``."""
    records = world.github.state.statuses.get(sha, [])
    return [(r.created_at, r.state, r.description or "") for r in records if r.context == DEV_HEALTH]


async def test_argocd_answering_503_at_the_merge_gets_pending_at_once_then_a_failure_naming_it() -> None:
    async with sandbox(lambda config: dev_only(config, timeout="3s")) as world:
        await starting_commit_verified(world)
        manual_dev(world)
        outcomes = record_pass_outcomes(world)
        argocd(world).fail_next("POST", DEV_SYNC, 503, times=10_000)
        argocd(world).fail_next("GET", DEV_APP, 503, times=10_000)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        merged_at = time.time()
        # Pending at once, well inside the 3 s timeout (it used to be sent after the deploy request, so a
        # failing Argo CD left the merge without any status and the timeout never started).
        first = await world.wait_for("pending on the merge", lambda: dev_status_records(world, merge), 2.5)
        assert first[0][1] == "pending" and first[0][0] - merged_at < 2.5
        assert first[0][2].startswith(f"Asking Argo CD to deploy {merge[:7]}")
        assert await decided(world, merge) == "failure"
        (_, last, why), *_ = dev_status_records(world, merge)[::-1]
        assert last == "failure" and "timed out" in why.lower() and "503" in why
        assert "crashed" not in outcomes


async def test_the_pending_status_is_written_before_argocd_is_asked_to_sync() -> None:
    async with sandbox(lambda config: dev_only(config, timeout="3s")) as world:
        await starting_commit_verified(world)
        manual_dev(world)
        argocd(world).fail_next("POST", DEV_SYNC, 503, times=10_000)  # the sync fails, reads answer
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        statuses = dev_status_records(world, merge)
        syncs = [at for at, request in argocd(world).journal if request == f"POST {DEV_SYNC}"]
        assert syncs, "Ferry never asked Argo CD to sync the merge"
        assert statuses[0][1] == "pending" and statuses[0][0] <= min(syncs)
        assert statuses[-1][1] == "failure"
