"""The ``rollback`` sandbox scenario: a broken release fails in dev, and dev rolls itself back.

dev has ``verify.on_failure: rollback``. Release ``1.6.0-broken`` (an image that cannot be pulled) is
promoted to dev and fails verification; Ferry opens a rollback to the last freight verified in dev (the
freight ledger: here the baseline, what dev ran before Ferry's first promotion), merges it (dev has
``auto_merge``) and comments under the failed promotion. dev verifies the old freight again and stays
there, although the broken freight is still the warehouse's newest: its last verification in dev failed.
A fixed release ``1.6.1`` then flows dev → staging → prod (a release manager merges prod).
"""

from __future__ import annotations

import asyncio
from typing import Any

from bot import events
from bot.core.stage_view import stage_view
from bot.sandbox.example import quick_pipeline
from bot.sandbox.scenario_busy_main import all_verified, stage_health
from bot.sandbox.world import FULL_NAME, World

BROKEN, FIXED = "1.6.0-broken", "1.6.1"
MANAGER, TEAM = "rita", "acme/release-managers"
STAGES = ("dev", "staging", "prod")
HOLD_SECONDS = 6.0  # several warehouse intervals (1s) and passes: time for a wrong re-promotion to show


def rollback_edit(config: dict[str, Any]) -> None:
    quick_pipeline(config)
    for warehouse in config["warehouses"].values():
        for image in warehouse["images"]:
            image["prerelease"] = True  # the broken build is tagged like a prerelease
    config["stages"]["dev"]["verify"]["on_failure"] = "rollback"


async def _snapshot_tags(world: World) -> dict[str, set[str | None]]:
    assert world.runtime is not None
    snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
    assert snapshot is not None and snapshot.config is not None
    return {stage: set(stage_view(snapshot, stage).tags.values()) for stage in STAGES}


def _verdicts(world: World, stage: str, state: str) -> int:
    return sum(1 for e in world.kinds(events.HEALTH_VERDICT, stage) if e.detail.startswith(state))


async def _dev_runs(world: World, tag: str, verified: bool = True) -> bool:
    tags = await _snapshot_tags(world)
    return tags["dev"] == {tag} and (not verified or await stage_health(world, "dev") == "success")


async def rollback(world: World) -> bool:
    rita = world.person(MANAGER, "write", [TEAM])
    async with rita:
        await world.wait_for("every stage verified on the starting commit", all_verified(world), 60)
        before = (await _snapshot_tags(world))["dev"]
        start_tag = next(iter(before))
        assert start_tag is not None
        world.registry.push("acme/web", BROKEN)
        world.registry.push("acme/worker", BROKEN)
        world.timeline.add("release_pushed", "", f"web and worker {BROKEN} pushed to the registry")
        await world.wait_for(
            "dev to fail on the broken release", lambda: _verdicts(world, "dev", "failure"), 90
        )
        await world.wait_for(
            f"dev rolled back to {start_tag} and verified",
            lambda: _rolled_back(world, start_tag),
            90,
        )
        opened_at = len(world.kinds(events.PR_OPENED, "dev"))
        await _hold(world)
        stayed = await _dev_runs(world, start_tag) and len(world.kinds(events.PR_OPENED, "dev")) == opened_at
        world.registry.push("acme/web", FIXED)
        world.registry.push("acme/worker", FIXED)
        world.timeline.add("release_pushed", "", f"web and worker {FIXED} pushed to the registry")
        await world.wait_for(f"dev on {FIXED}", lambda: _dev_runs(world, FIXED), 90)
        prod = await world.wait_for("the prod promotion PR", lambda: _prod_pull(world, rita), 90)
        await world.merge(rita, prod, f"@{MANAGER} (release manager)")
        await world.wait_for("every stage verified on the fixed release", lambda: _all_on(world, FIXED), 90)
    rollbacks = [e for e in world.kinds(events.PR_OPENED, "dev") if "Roll back dev" in e.detail]
    broken_again = [e for e in world.kinds(events.PR_OPENED, "dev") if BROKEN in e.detail]
    world.invariants.update(
        {
            "rollbacks_opened": {"count": len(rollbacks), "target": 1},
            "broken_promotions_to_dev": {"count": len(broken_again), "target": 1},
            "dev_stayed_rolled_back": {"count": int(stayed), "target": 1},
        }
    )
    return stayed and await _all_on(world, FIXED)


async def _rolled_back(world: World, tag: str) -> bool:
    merged = any("Roll back dev" in e.detail for e in world.kinds(events.PR_OPENED, "dev"))
    return merged and await _dev_runs(world, tag)


async def _hold(world: World) -> None:
    """Let several passes run (the broken freight is still the warehouse's newest meanwhile)."""
    await asyncio.sleep(HOLD_SECONDS)
    await world.settle()


async def _prod_pull(world: World, person: Any) -> dict[str, Any] | None:
    pulls = await world.open_pulls(person)
    return next(
        (p for p in pulls if p["head"]["ref"].startswith("ferry/prod/") and FIXED in p["title"]), None
    )


async def _all_on(world: World, tag: str) -> bool:
    tags = await _snapshot_tags(world)
    return all(tags[s] == {tag} for s in STAGES) and await all_verified(world)()
