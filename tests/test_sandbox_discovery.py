"""A starting Ferry in the sandbox asks GitHub again when it did not answer, as `ferry serve` does
(bot.startup), rather than ending the story: a killed replica restarted during a GitHub hiccup still
comes back. A refusal is still raised."""

from __future__ import annotations

import pytest

from bot import events
from bot.errors import ExternalError
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}


async def test_a_ferry_starting_while_github_answers_503_discovers_once_github_answers() -> None:
    world = World()

    async def hiccup(world: World) -> None:
        world.github.fail_next("GET", "/app/installations", 503, times=2)

    try:
        await world.start(quick_pipeline, RELEASES, before_ferry=hiccup)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        opened = lambda: world.kinds(events.PR_OPENED, "dev")  # noqa: E731
        await world.wait_for("dev's promotion opened after the hiccup", opened, 60)
    finally:
        await world.stop()


async def test_a_ferry_whose_discovery_github_refuses_does_not_start() -> None:
    world = World()

    async def refuse(world: World) -> None:
        world.github.fail_next("GET", "/app/installations", 401, times=10)

    try:
        with pytest.raises(ExternalError):
            await world.start(quick_pipeline, RELEASES, before_ferry=refuse)
    finally:
        await world.stop()
