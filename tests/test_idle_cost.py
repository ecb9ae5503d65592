"""An idle repository costs no rate limit: every read of a quiet pass is a conditional request."""

from __future__ import annotations

from test_sandbox import RELEASES, _is

from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World


async def test_passes_over_an_unchanged_repository_decide_nothing_and_cost_no_rate_limit() -> None:
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        await world.wait_for("every stage verified", _is(world, "success"), 60)
        assert world.runtime is not None
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below run now
        reconciler = world.runtime.reconciler
        await reconciler.idle()
        await reconciler.reconcile(FULL_NAME)  # settle anything still in flight
        used_before, requests_before = world.github.rate_limit_used(), sum(world.github.requests.values())
        for _ in range(3):
            assert await reconciler.reconcile(FULL_NAME) == []
        assert sum(world.github.requests.values()) > requests_before  # it did look
        assert world.github.rate_limit_used() == used_before
    finally:
        await world.stop()
