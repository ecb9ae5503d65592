"""The ``commands`` sandbox scenario: people move prod with comments, and Ferry checks who is asking.

Two releases go dev → staging by themselves; prod moves only by command. A reader's ``/promote prod`` is
refused with the reason; a release manager (team ``acme/release-managers``, prod's ``promoters``) promotes
the first release from an issue and the second from a commit comment, then rolls prod back with
``/rollback prod``. Every stage ends verified; prod ends on the first release again.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot import events
from bot.core.stage_view import stage_view
from bot.sandbox.example import quick_pipeline
from bot.sandbox.scenario_busy_main import all_verified, verified_now
from bot.sandbox.world import FULL_NAME, World

FIRST, SECOND = "1.5.0", "1.6.0"
MANAGER, TEAM, READER = "rita", "acme/release-managers", "watcher"
STAGES = ("dev", "staging", "prod")
ROLLBACK_REASON = "checkout errors after 1.6.0"


def commands_edit(config: dict[str, Any]) -> None:
    """The quick pipeline, except that nothing reaches prod unless a person asks for it by comment."""
    quick_pipeline(config)
    config["stages"]["prod"]["auto_promote"] = False
    config["stages"]["prod"]["auto_merge"] = False


async def _verdict(world: World, stage: str, merges_before: int, within: float = 60.0) -> str:
    """Wait for the stage's next merge after ``merges_before`` merges, then for its verdict."""

    def decided() -> str | None:
        merges = world.kinds(events.PR_MERGED, stage)
        verdicts = world.kinds(events.HEALTH_VERDICT, stage)
        if len(merges) > merges_before and verdicts and verdicts[-1].at >= merges[-1].at:
            return verdicts[-1].detail.split(":", 1)[0]
        return None

    return str(await world.wait_for(f"a health verdict for {stage}", decided, within))


async def _release(world: World, tag: str) -> bool:
    merged = {stage: len(world.kinds(events.PR_MERGED, stage)) for stage in ("dev", "staging")}
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)
    world.timeline.add("release_pushed", "", f"web and worker {tag} pushed to the registry")
    dev = await _verdict(world, "dev", merged["dev"])
    staging = await _verdict(world, "staging", merged["staging"])
    return dev == staging == "success"


async def _comment(world: World, person: httpx.AsyncClient, path: str, body: str, kind: str) -> None:
    """Comment as a person and wait for Ferry's answer (an event of ``kind``)."""
    before = len(world.kinds(kind))
    response = await person.post(f"/repos/{FULL_NAME}/{path}", json={"body": body})
    response.raise_for_status()
    await world.wait_for(f"Ferry's answer to {body!r}", lambda: len(world.kinds(kind)) > before, 30)


async def _merge_prod(world: World, person: httpx.AsyncClient, label: str | None = None) -> str:
    def prod_pull(pulls: list[dict[str, Any]]) -> dict[str, Any] | None:
        return next(
            (
                p
                for p in pulls
                if p["head"]["ref"].startswith("ferry/prod/")
                and (label is None or label in {x["name"] for x in p["labels"]})
            ),
            None,
        )

    async def find() -> dict[str, Any] | None:
        return prod_pull(await world.open_pulls(person))

    pull = await world.wait_for("the prod pull request Ferry opened on command", find, 30)
    merged = len(world.kinds(events.PR_MERGED, "prod"))
    await world.merge(person, pull, f"@{MANAGER}")
    return await _verdict(world, "prod", merged)


async def commands(world: World) -> bool:
    rita = world.person(MANAGER, "write", [TEAM])
    reader = world.person(READER, "read")
    async with rita, reader:
        await world.wait_for("every stage verified on the starting commit", verified_now(world), 60)
        created = await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})
        created.raise_for_status()
        issue = f"issues/{created.json()['number']}/comments"
        first = await _release(world, FIRST)
        await _comment(world, reader, issue, "/promote prod", events.COMMAND_REFUSED)
        await _comment(world, rita, issue, "/promote prod", events.COMMAND_ACCEPTED)
        prod_first = await _merge_prod(world, rita)
        second = await _release(world, SECOND)
        head = (await rita.get(f"/repos/{FULL_NAME}/commits/main")).json()["sha"]
        await _comment(world, rita, f"commits/{head}/comments", "/promote prod", events.COMMAND_ACCEPTED)
        prod_second = await _merge_prod(world, rita)
        rollback = f'/rollback prod --reason "{ROLLBACK_REASON}"'
        await _comment(world, rita, issue, rollback, events.COMMAND_ACCEPTED)
        prod_back = await _merge_prod(world, rita, label="rollback")
        await _comment(world, rita, issue, "/status", events.COMMAND_ACCEPTED)
    verdicts_ok = first and second and prod_first == prod_second == prod_back == "success"
    return verdicts_ok and await _ends_as_promised(world)


async def _ends_as_promised(world: World) -> bool:
    """Every stage verified; dev and staging on the second release, prod back on the first."""
    assert world.runtime is not None
    snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
    if snapshot is None or snapshot.config is None or not await all_verified(world)():
        return False
    tags = {stage: set(stage_view(snapshot, stage).tags.values()) for stage in STAGES}
    refused = world.kinds(events.COMMAND_REFUSED)
    return tags == {"dev": {SECOND}, "staging": {SECOND}, "prod": {FIRST}} and len(refused) == 1
