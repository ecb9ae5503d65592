"""A sync Argo CD fails is sent again after a backoff only while its commit is still the stage's newest
deploy commit (the default branch's head re-read right before the retry): a retry never replays a request a
newer merge made outdated. And a sync decided before a verdict is not sent after it: a pass that reused its
snapshot (the change check cannot see a new commit status) or a replica that decided a moment earlier would
otherwise sync a judged commit again, undoing what was done to the app since, such as a person's sync back
by hand that the watch over verified stages must report as drift. The sandbox world runs Ferry's real code
path against the stand-ins."""

from __future__ import annotations

from test_argocd_faults import (
    DEV_SYNC,
    argocd,
    dev_merge_commit,
    health_states,
    manual_dev,
    release,
    sandbox,
    starting_commit_verified,
)
from test_faults import DEV_FILE, git

from bot.actor import Actor
from bot.argocd import PROMOTION_INFO_KEY
from bot.core.verification import promotion_id, start_verification


async def test_a_sync_failed_with_503_is_not_retried_for_a_merge_a_newer_commit_overtook() -> None:
    async with sandbox() as world:
        assert world.runtime is not None and world.runtime.reconciler.argocd is not None
        client = world.runtime.reconciler.argocd
        await starting_commit_verified(world)
        manual_dev(world)
        argocd(world).fail_next("POST", DEV_SYNC, 503)  # Argo CD's server restarting
        sleep = client._sleep
        pushed: list[str] = []

        async def backoff_while_a_newer_commit_lands(seconds: float) -> None:
            if not pushed:  # during the first backoff, a person changes dev's file on main
                text = git(world, "show", f"main:{DEV_FILE}") + "# replicas: 3\n"
                pushed.append(await world.github.push_files({DEV_FILE: text.encode()}, "Scale dev by hand"))
            await sleep(seconds)

        client._sleep = backoff_while_a_newer_commit_lands  # type: ignore[method-assign]
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        await world.wait_for("a backoff after the 503", lambda: pushed, 45)
        await world.wait_for(
            "a verdict on the merge",
            lambda: [s for s, _ in health_states(world, merge) if s != "pending"],
            30,
        )
        await world.settle()
        older = promotion_id("dev", merge)
        assert not [s for s in argocd(world).syncs if s[2].get(PROMOTION_INFO_KEY) == older]
        state, description = health_states(world, merge)[-1]
        assert state == "error" and description.startswith("Superseded: dev moved on"), description


async def test_a_sync_decided_before_the_merge_was_verified_is_not_sent_once_it_is() -> None:
    async with sandbox() as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        await starting_commit_verified(world)
        manual_dev(world)  # Ferry syncs shop-dev itself: a sync request is a real sync
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        await world.wait_for(
            "dev verified on the merge", lambda: "success" in dict(health_states(world, merge)), 60
        )
        await world.settle()
        snapshot = await reconciler.snapshot(repo)
        assert snapshot is not None and snapshot.config is not None
        # The sync a pass decided while the merge was still pending (its snapshot older than the verdict).
        dev = snapshot.config.stages["dev"]
        sync, _pending = start_verification("dev", dev, merge, reconciler.argocd_urls)
        assert sync is not None
        syncs = len(argocd(world).syncs)

        assert await Actor(reconciler, repo, snapshot).request_sync(sync) is False
        assert len(argocd(world).syncs) == syncs  # Argo CD was not asked again
