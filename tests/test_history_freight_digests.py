"""Freight that comes from history rather than a warehouse (a baseline, or a rollback to it) going on to a
stage whose files pin digests (Ferry's real code path in the sandbox world)."""

from __future__ import annotations

import pytest
from test_ledger_reproductions import new_issue, open_pull, sandbox, verified_on, with_prerelease

from bot import events
from bot.sandbox.scenario_commands import MANAGER, TEAM
from bot.sandbox.world import FULL_NAME


@pytest.mark.xfail(
    strict=True,
    reason="a baseline records tags only; prod pins digests and /promote does not resolve them",
)
async def test_baseline_freight_verified_in_staging_is_promotable_to_prod_which_pins_digests() -> None:
    async with sandbox(with_prerelease) as world:
        rita = world.person(MANAGER, "write", [TEAM])
        async with rita:
            await verified_on(world, "staging", "1.4.1")  # the baseline: what staging ran before Ferry
            issue = await new_issue(rita)
            response = await rita.post(
                f"/repos/{FULL_NAME}/issues/{issue}/comments", json={"body": "/promote prod 1.4.1"}
            )
            response.raise_for_status()
            answers = (events.COMMAND_ACCEPTED, events.COMMAND_REFUSED)
            await world.wait_for(
                "Ferry's answer to /promote prod 1.4.1",
                lambda: any(world.kinds(kind) for kind in answers),
                30,
            )
            reply = (await rita.get(f"/repos/{FULL_NAME}/issues/{issue}/comments")).json()[-1]["body"]
            assert world.kinds(events.COMMAND_ACCEPTED), reply
            await open_pull(world, rita, "ferry/prod/", "1.4.1")
