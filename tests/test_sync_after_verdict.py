"""A sync decided before a verdict is not sent after it: a pass that reused its snapshot (the change check
cannot see a new commit status) or a replica that decided a moment earlier would otherwise sync a judged
commit again, undoing what was done to the app since, such as a person's sync back by hand that the watch
over verified stages must report as drift. Ferry's real code path against the sandbox's stand-ins."""

from __future__ import annotations

from test_argocd_faults import (
    argocd,
    dev_merge_commit,
    health_states,
    manual_dev,
    release,
    sandbox,
    starting_commit_verified,
)

from bot.actor import Actor
from bot.core.verification import start_verification


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
