"""Verified stages stay watched: at the idle interval Ferry reads a verified stage's apps again, and an app
that no longer runs the stage's deploy commit (synced back by hand in Argo CD) turns its health status into
a "drifted" failure that `/status` shows and no gate opens on; syncing it forward again restores it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from test_compare_and_swap import dev_merged_and_verified, health
from test_faults import RELEASES, dev_only, release

from bot import events
from bot.command_views import render_status
from bot.core.argo_app import AppState
from bot.core.drift import drifted
from bot.core.gates import verification
from bot.core.stage_view import stage_view
from bot.sandbox.argocd_apps import git_app
from bot.sandbox.example import EXAMPLE_BRANCH
from bot.sandbox.world import World


@contextlib.asynccontextmanager
async def manual_dev() -> AsyncIterator[World]:
    """The sandbox with shop-dev syncing only when asked (no automated policy to undo a manual sync)."""
    world = World(progress_seconds=0.2)

    async def manual(w: World) -> None:
        assert w.argocd is not None
        w.argocd.set_spec("shop-dev", git_app("overlays/dev", EXAMPLE_BRANCH))

    try:
        await world.start(dev_only, RELEASES, before_ferry=manual)
        yield world
    finally:
        await world.stop()


def verdicts(world: World, starting: str) -> list[events.Event]:
    return [e for e in world.kinds(events.HEALTH_VERDICT, "dev") if e.detail.startswith(starting)]


async def test_an_app_synced_back_by_hand_is_drift_and_opens_no_gate_until_it_runs_the_commit() -> None:
    async with manual_dev() as world:
        assert world.argocd is not None and world.runtime is not None
        release(world, "1.5.0")
        older = await dev_merged_and_verified(world, "1.5.0")
        release(world, "1.6.0")
        newer = await dev_merged_and_verified(world, "1.6.0")
        await world.settle()

        world.argocd.start_foreign_operation("shop-dev", older)  # someone syncs dev back in Argo CD's UI
        said = f"failure: drifted: shop-dev runs {older[:7]}, not {newer[:7]}"
        await world.wait_for("the drift reported", lambda: verdicts(world, said), 30)
        await world.settle()
        assert health(world, newer)[-1] == ("failure", said.removeprefix("failure: "))
        assert health(world, older)[-1][0] == "success"  # the older commit's own verdict stands

        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        snapshot = await reconciler.snapshot(repo)
        assert snapshot is not None and snapshot.config is not None
        assert verification(stage_view(snapshot, "dev"), snapshot.config).state == "failure"  # gates closed
        assert f"- **dev** drifted: shop-dev runs {older[:7]}" in render_status(snapshot)

        world.argocd.start_foreign_operation("shop-dev", newer)  # and forward again
        await world.wait_for(
            "the drift resolved", lambda: verdicts(world, "success: verified: shop-dev run"), 30
        )
        await world.settle()
        assert health(world, newer)[-1][0] == "success"
        assert len(verdicts(world, said)) == 1


def test_an_app_is_drift_only_when_out_of_sync_on_an_older_or_foreign_revision_and_not_syncing() -> None:
    deploy, old, newer = "d" * 40, "a" * 40, "e" * 40
    relation = {old: "behind", newer: "equivalent"}
    back = AppState("web", sync_status="OutOfSync", operation_revision=old, operation_phase="Succeeded")
    assert drifted([back], deploy, relation) == ("web", old)  # type: ignore[arg-type]
    syncing = AppState("web", sync_status="OutOfSync", operation_revision=old, operation_phase="Running")
    ahead = AppState("web", sync_status="OutOfSync", operation_revision=newer)
    unchanged = AppState("web", sync_status="Synced", operation_revision=old)  # nothing to deploy for it
    unknown = AppState("web", sync_status="OutOfSync", operation_revision="v1.2")
    for state in (syncing, ahead, unchanged, unknown, AppState.unobserved("web", "502")):
        assert drifted([state], deploy, relation) is None, state  # type: ignore[arg-type]
