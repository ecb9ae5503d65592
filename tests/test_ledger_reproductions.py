"""The three reproductions of the freight-history problem, tried as a release manager would, through
Ferry's real code path in the sandbox world: a rollback sticks, gates remember, and the first rollback
after adopting Ferry has somewhere to go (the baseline)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from bot import events
from bot.core.gates import STATUS_GATE, health_context
from bot.core.stage_view import stage_view
from bot.sandbox.example import quick_pipeline
from bot.sandbox.scenario_commands import MANAGER, TEAM, commands_edit
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
Edit = Callable[[dict[str, Any]], None]


def with_prerelease(config: dict[str, Any]) -> None:
    quick_pipeline(config)
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False
    for warehouse in config["warehouses"].values():
        for image in warehouse["images"]:
            image["prerelease"] = True  # "1.6.0-broken" is the warehouse's newest


@contextlib.asynccontextmanager
async def sandbox(edit: Edit) -> AsyncIterator[World]:
    world = World(progress_seconds=0.2)
    try:
        await world.start(edit, RELEASES)
        yield world
    finally:
        await world.stop()


def release(world: World, tag: str) -> None:
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)


async def stage_state(world: World, stage: str) -> tuple[set[str | None], str | None]:
    """(the tags the stage's files hold, its health state) as Ferry reads them now."""
    assert world.runtime is not None
    snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
    assert snapshot is not None and snapshot.config is not None
    deploy = snapshot.deploys.get(stage)
    status = deploy.statuses.get(health_context(stage)) if deploy is not None else None
    return set(stage_view(snapshot, stage).tags.values()), status.state if status else None


async def verified_on(world: World, stage: str, tag: str, within: float = 60) -> None:
    async def check() -> bool:
        return await stage_state(world, stage) == ({tag}, "success")

    await world.wait_for(f"{stage} verified on {tag}", check, within)


async def comment(world: World, who: httpx.AsyncClient, issue: int, body: str, kind: str) -> str:
    """Comment as a person; wait for Ferry's answer (an event of ``kind``); return its reply text."""
    before = len(world.kinds(kind))
    response = await who.post(f"/repos/{FULL_NAME}/issues/{issue}/comments", json={"body": body})
    response.raise_for_status()
    await world.wait_for(f"Ferry's answer to {body!r}", lambda: len(world.kinds(kind)) > before, 30)
    replies = (await who.get(f"/repos/{FULL_NAME}/issues/{issue}/comments")).json()
    return str(replies[-1]["body"])


async def new_issue(who: httpx.AsyncClient) -> int:
    created = await who.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})
    created.raise_for_status()
    return int(created.json()["number"])


async def open_pull(world: World, who: httpx.AsyncClient, prefix: str, title_has: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        pulls = await world.open_pulls(who)
        return next(
            (p for p in pulls if p["head"]["ref"].startswith(prefix) and title_has in p["title"]), None
        )

    found: dict[str, Any] = await world.wait_for(f"an open {prefix} PR: {title_has}", find, 30)
    return found


async def gate(who: httpx.AsyncClient, sha: str) -> str | None:
    statuses = (await who.get(f"/repos/{FULL_NAME}/commits/{sha}/status")).json()["statuses"]
    return next((s["state"] for s in statuses if s["context"] == STATUS_GATE), None)


async def test_a_rollback_sticks_while_the_failed_freight_is_still_the_newest() -> None:
    async with sandbox(with_prerelease) as world:
        rita = world.person(MANAGER, "write", [TEAM])
        async with rita:
            await verified_on(world, "dev", "1.4.2")
            release(world, "1.5.0")
            await verified_on(world, "dev", "1.5.0")
            release(world, "1.6.0-broken")
            await world.wait_for(
                "dev to fail on 1.6.0-broken",
                lambda: any(
                    e.detail.startswith("failure") for e in world.kinds(events.HEALTH_VERDICT, "dev")
                ),
                60,
            )
            issue = await new_issue(rita)
            reply = await comment(world, rita, issue, "/rollback dev", events.COMMAND_ACCEPTED)
            assert "Roll back dev to web 1.5.0" in reply
            pull = await open_pull(world, rita, "ferry/dev/", "Roll back")
            await world.merge(rita, pull, "@rita")
            await verified_on(world, "dev", "1.5.0")
            opened = len(world.kinds(events.PR_OPENED, "dev"))
            await asyncio.sleep(4)  # several warehouse intervals (1s) and passes
            await world.settle()
            assert await stage_state(world, "dev") == ({"1.5.0"}, "success")
            assert len(world.kinds(events.PR_OPENED, "dev")) == opened  # 1.6.0-broken is not proposed again
            # A promoter may bring it back, saying why; without a reason Ferry refuses and says how.
            refused = await comment(world, rita, issue, "/promote dev 1.6.0-broken", events.COMMAND_REFUSED)
            assert "failed verification in `dev`" in refused and "--reason" in refused
            back = '/promote dev 1.6.0-broken --reason "the pull secret is fixed"'
            accepted = await comment(world, rita, issue, back, events.COMMAND_ACCEPTED)
            assert "1.6.0-broken" in accepted


async def test_gates_remember_freight_verified_upstream_after_upstream_moves_on() -> None:
    async with sandbox(commands_edit) as world:
        rita = world.person(MANAGER, "write", [TEAM])
        async with rita:
            await verified_on(world, "dev", "1.4.2", 90)
            release(world, "1.5.0")
            await verified_on(world, "staging", "1.5.0", 90)
            issue = await new_issue(rita)
            await comment(world, rita, issue, "/promote prod", events.COMMAND_ACCEPTED)
            pull = await open_pull(world, rita, "ferry/prod/", "1.5.0")
            await world.approve(rita, pull, "@rita")  # prod has promoters: its gate also needs an approval
            await world.wait_for(
                "prod's gate green", lambda: _is(gate(rita, pull["head"]["sha"]), "success"), 30
            )
            release(world, "1.6.0")
            await verified_on(world, "staging", "1.6.0", 90)
            await world.settle()
            assert await gate(rita, pull["head"]["sha"]) == "success"  # not "staging does not run it yet"
            reply = await comment(world, rita, issue, "/promote prod 1.5.0", events.COMMAND_ACCEPTED)
            assert pull["html_url"] in reply  # the freight is known and promotable: its PR is already open


async def _is(value: Any, wanted: str) -> bool:
    return bool(await value == wanted)


async def test_the_first_rollback_after_adopting_ferry_returns_to_the_baseline() -> None:
    async with sandbox(with_prerelease) as world:
        rita = world.person(MANAGER, "write", [TEAM])
        async with rita:
            await verified_on(world, "dev", "1.4.2")
            release(world, "1.5.0")
            await verified_on(world, "dev", "1.5.0")
            issue = await new_issue(rita)
            reply = await comment(world, rita, issue, "/rollback dev", events.COMMAND_ACCEPTED)
            assert "Roll back dev to web 1.4.2, worker 1.4.2" in reply
            pull = await open_pull(world, rita, "ferry/dev/", "Roll back")
            await world.merge(rita, pull, "@rita")
            await verified_on(world, "dev", "1.4.2")


async def test_rollback_to_freight_whose_tags_left_the_registry_is_refused_with_the_reason() -> None:
    async with sandbox(with_prerelease) as world:
        rita = world.person(MANAGER, "write", [TEAM])
        async with rita:
            await verified_on(world, "dev", "1.4.2")
            release(world, "1.5.0")
            await verified_on(world, "dev", "1.5.0")
            del world.registry.manifests["acme/web"]["1.4.2"]  # the registry's retention policy ran
            issue = await new_issue(rita)
            reply = await comment(world, rita, issue, "/rollback dev", events.COMMAND_REFUSED)
            assert "can no longer be deployed" in reply and "1.4.2" in reply
            assert not [p for p in await world.open_pulls(rita) if "Roll back" in p["title"]]
