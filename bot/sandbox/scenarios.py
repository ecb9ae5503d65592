"""Sandbox scenarios: what happens, told the way a release manager would live it.

Each scenario starts the world, plays its story through the real code path, and returns whether
the outcome it promises came true. A scenario is a name, a one-line promise and a coroutine.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from bot import events
from bot.sandbox import (
    scenario_approvals,
    scenario_busy_main,
    scenario_chaos,
    scenario_commands,
    scenario_rollback,
)
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import World

# Tags the example repository's files already hold, so the registry knows them before Ferry arrives.
EXISTING = ["1.4.0", "1.4.1", "1.4.2"]
NEW_RELEASE = "1.5.0"
BROKEN_RELEASE = "1.5.1-broken"
RELEASE_MANAGER = "rita"
RELEASE_TEAM = "acme/release-managers"


@dataclass(frozen=True)
class Scenario:
    name: str
    promise: str
    play: Callable[[World], Awaitable[bool]]
    edit: Callable[[dict[str, Any]], None]


async def _verdict_after_merge(world: World, stage: str, within: float = 60.0) -> str:
    """Wait for a verdict on the stage's newest merge; return success or failure."""

    def decided() -> str | None:
        merges = world.kinds(events.PR_MERGED, stage)
        verdicts = world.kinds(events.HEALTH_VERDICT, stage)
        if merges and verdicts and verdicts[-1].at >= merges[-1].at:
            return verdicts[-1].detail.split(":", 1)[0]
        return None

    return str(await world.wait_for(f"a health verdict for {stage}", decided, within))


async def _ferry_pull(world: World, client: Any, stage: str) -> dict[str, Any] | None:
    pulls = await world.open_pulls(client)
    return next((p for p in pulls if p["head"]["ref"].startswith(f"ferry/{stage}/")), None)


async def quickstart(world: World) -> bool:
    rita = world.person(RELEASE_MANAGER, "write", [RELEASE_TEAM])
    async with rita:
        await world.wait_for(
            "every stage verified on the starting commit", scenario_busy_main.verified_now(world), 60
        )
        world.registry.push("acme/web", NEW_RELEASE)
        world.registry.push("acme/worker", NEW_RELEASE)
        world.timeline.add("release_pushed", "", f"web and worker {NEW_RELEASE} pushed to the registry")
        dev = await _verdict_after_merge(world, "dev")
        staging = await _verdict_after_merge(world, "staging")
        prod_pull = await world.wait_for(
            "the prod promotion PR", lambda: _ferry_pull(world, rita, "prod"), 60
        )
        await world.approve(rita, prod_pull, f"@{RELEASE_MANAGER} (release manager)")  # prod's promoters
        await world.wait_for(
            "the prod gate to open",
            lambda: _gate_open(world, rita, prod_pull["head"]["sha"]),
            30,
        )
        await world.merge(rita, prod_pull, f"@{RELEASE_MANAGER} (release manager)")
        prod = await _verdict_after_merge(world, "prod")
    return dev == staging == prod == "success"


async def degraded(world: World) -> bool:
    reader = world.person("watcher", "read")
    async with reader:
        await world.wait_for(
            "every stage verified on the starting commit", scenario_busy_main.verified_now(world), 60
        )
        world.registry.push("acme/web", BROKEN_RELEASE)
        world.registry.push("acme/worker", BROKEN_RELEASE)
        world.timeline.add("release_pushed", "", f"web and worker {BROKEN_RELEASE} pushed to the registry")
        dev = await _verdict_after_merge(world, "dev")
        await world.wait_for("the failure comment", lambda: world.kinds(events.COMMENT_POSTED), 20)
        staging_prs = await _ferry_pull(world, reader, "staging")
    return dev == "failure" and staging_prs is None


async def _gate_open(world: World, client: Any, sha: str) -> bool:
    response = await client.get(f"/repos/acme/gitops/commits/{sha}/status")
    statuses = response.json().get("statuses", [])
    return any(s["context"] == "ferry/gate" and s["state"] == "success" for s in statuses)


def _degraded_edit(config: dict[str, Any]) -> None:
    quick_pipeline(config)
    for warehouse in config["warehouses"].values():
        for image in warehouse["images"]:
            image["prerelease"] = True  # the broken build is tagged like a prerelease


SCENARIOS = {
    s.name: s
    for s in (
        Scenario(
            "quickstart",
            "new freight goes dev → staging → prod; all three end verified on it",
            quickstart,
            quick_pipeline,
        ),
        Scenario(
            "degraded",
            "a broken release fails verification in dev; staging and prod keep their freight",
            degraded,
            _degraded_edit,
        ),
        Scenario(
            "rollback",
            "a broken release fails in dev, which rolls itself back to the last verified freight and stays"
            " there; a fixed release then flows dev → staging → prod",
            scenario_rollback.rollback,
            scenario_rollback.rollback_edit,
        ),
        Scenario(
            "busy-main",
            "dev → staging → prod while people push to main and open and close 60 PRs; all verified",
            scenario_busy_main.busy_main,
            scenario_busy_main.busy_main_edit,
        ),
        Scenario(
            "commands",
            "prod moves only by /promote from a release manager; a reader is refused; /rollback shown",
            scenario_commands.commands,
            scenario_commands.commands_edit,
        ),
        Scenario(
            "approvals",
            "prod's PR merged by a writer outside promoters is not deployed and is reported; a promoter's"
            " approval turns the gate green",
            scenario_approvals.approvals,
            scenario_approvals.approvals_edit,
        ),
        Scenario(
            "chaos",
            "eight releases through several Ferry replicas with late, reordered, doubled webhooks, a"
            " person's push, a killed Ferry and a sync back by hand; every stage ends verified on the newest",
            scenario_chaos.chaos,
            scenario_chaos.chaos_edit,
        ),
    )
}
