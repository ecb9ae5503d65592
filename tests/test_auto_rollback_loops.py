"""Auto-rollback tried where it could loop: two broken releases in a row, a rollback that fails too, and a
stage without ``auto_merge`` (Ferry's real code path in the sandbox world)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from test_ledger_reproductions import open_pull, release, sandbox, verified_on, with_prerelease

from bot import events
from bot.sandbox import world as world_module
from bot.sandbox.argocd_health import broken_tag_pull_error
from bot.sandbox.scenario_commands import MANAGER, TEAM
from bot.sandbox.world import World


def rollback_edit(config: dict[str, Any]) -> None:
    with_prerelease(config)
    config["stages"]["dev"]["verify"]["on_failure"] = "rollback"


def by_hand_edit(config: dict[str, Any]) -> None:
    rollback_edit(config)
    config["stages"]["dev"]["auto_merge"] = False


def failures(world: World) -> int:
    return len([e for e in world.kinds(events.HEALTH_VERDICT, "dev") if e.detail.startswith("failure")])


def rollbacks_opened(world: World) -> list[str]:
    return [e.detail for e in world.kinds(events.PR_OPENED, "dev") if "Roll back" in e.detail]


async def test_a_second_broken_release_is_rolled_back_too() -> None:
    async with sandbox(rollback_edit) as world:
        await verified_on(world, "dev", "1.4.2")
        release(world, "1.6.0-broken")
        await world.wait_for("dev to fail once", lambda: failures(world) >= 1, 60)
        await verified_on(world, "dev", "1.4.2")
        release(world, "1.7.0-broken")
        await world.wait_for("dev to fail twice", lambda: failures(world) >= 2, 60)
        await verified_on(world, "dev", "1.4.2")
        assert len(rollbacks_opened(world)) == 2


async def test_a_rollback_that_fails_too_stops_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    async with sandbox(rollback_edit) as world:
        await verified_on(world, "dev", "1.4.2")
        # from now on 1.4.2 cannot be pulled either (its image was deleted from the cluster's mirror)
        monkeypatch.setattr(
            world_module,
            "broken_tag_pull_error",
            lambda image: broken_tag_pull_error(image.replace("1.4.2", "1.4.2-broken")),
        )
        release(world, "1.6.0-broken")
        await world.wait_for("dev to fail twice", lambda: failures(world) >= 2, 60)
        await asyncio.sleep(3)
        await world.settle()
        assert len(rollbacks_opened(world)) == 1
        said = [e.detail for e in world.kinds(events.COMMENT_POSTED)]
        assert any("This rollback failed verification too" in d for d in said), said


async def test_without_auto_merge_the_rollback_waits_for_a_person() -> None:
    async with sandbox(by_hand_edit) as world:
        rita = world.person(MANAGER, "write", [TEAM])
        async with rita:
            await verified_on(world, "dev", "1.4.2")
            release(world, "1.6.0-broken")
            broken = await open_pull(world, rita, "ferry/dev/", "1.6.0-broken")
            await world.merge(rita, broken, "@rita")
            await world.wait_for("dev to fail", lambda: failures(world) >= 1, 60)
            back = await open_pull(world, rita, "ferry/dev/", "Roll back")
            await asyncio.sleep(3)
            await world.settle()
            assert not world.kinds(events.PR_MERGED, "dev")[1:]  # only the person's merge
            assert len(rollbacks_opened(world)) == 1 and back["state"] == "open"
            said = [e.detail for e in world.kinds(events.COMMENT_POSTED)]
            # said once: the passes that find the comment there already post (and report) nothing
            assert sum("so Ferry is rolling it back" in d for d in said) == 1, said
