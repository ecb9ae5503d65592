"""End to end through Ferry's real code path against the sandbox's stand-ins (all on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from bot import events
from bot.cli import main
from bot.core.gates import health_context
from bot.runtime import build_runtime
from bot.sandbox.example import quick_pipeline
from bot.sandbox.run import run_scenario
from bot.sandbox.world import FULL_NAME, World

EVENT_KINDS = {events.FREIGHT_DISCOVERED, events.PR_OPENED, events.PR_MERGED, events.SYNC_REQUESTED}
RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}


async def test_quickstart_ends_with_every_stage_verified_on_the_same_freight() -> None:
    result = await run_scenario("quickstart")
    assert result["ok"], result.get("error")
    assert set(result) >= {"scenario", "ok", "stages", "github_requests", "events", "wall_ms"}
    # GitHub requests per pass by kind, and per promotion merged (three: dev, staging, prod).
    assert set(result["requests_per_pass"]) == {"idle", "verifying", "acting"}
    assert result["requests_per_pass"]["acting"] > 0
    assert 0 < result["requests_per_promotion"] < result["github_requests"]
    # The wall time covers the whole story: starting the stand-ins comes before the first event.
    assert isinstance(result["wall_ms"], int)
    assert result["wall_ms"] >= max(event["t_ms"] for event in result["events"])
    stages = result["stages"]
    assert list(stages) == ["dev", "staging", "prod"]
    freights = {stage["freight"] for stage in stages.values()}
    assert len(freights) == 1 and None not in freights
    for name, stage in stages.items():
        assert stage["health"] == "success", name
        assert stage["images"] == {"acme/web": "1.5.0", "acme/worker": "1.5.0"}
        assert isinstance(stage["pr"], int)
        assert 0 <= stage["merge_to_sync_ms"] <= stage["merge_to_verdict_ms"]
    kinds = {event["kind"] for event in result["events"]}
    assert EVENT_KINDS | {events.HEALTH_VERDICT, events.GATE_SET} <= kinds
    assert all(set(e) == {"t_ms", "kind", "stage", "detail"} for e in result["events"])


async def test_degraded_release_stops_at_dev_and_says_why() -> None:
    result = await run_scenario("degraded")
    assert result["ok"], result.get("error")
    stages = result["stages"]
    assert stages["dev"]["health"] == "failure"
    assert stages["dev"]["images"]["acme/web"] == "1.5.1-broken"
    assert stages["staging"]["images"]["acme/web"] == "1.4.1"
    assert stages["prod"]["images"]["acme/web"] == "1.4.0"
    verdicts = [e for e in result["events"] if e["kind"] == events.HEALTH_VERDICT and e["stage"] == "dev"]
    assert "ImagePullBackOff" in verdicts[-1]["detail"]


def test_sandbox_command_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["scenario"] == "quickstart" and printed["ok"] is True


async def _dev_health(world: World) -> str | None:
    assert world.runtime is not None
    snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
    assert snapshot is not None
    deploy = snapshot.deploys.get("dev")
    status = deploy.statuses.get(health_context("dev")) if deploy else None
    return status.state if status else None


async def test_verdict_is_posted_after_ferry_restarts_mid_verification() -> None:
    world = World(progress_seconds=3.0)
    try:
        await world.start(quick_pipeline, RELEASES)
        await world.wait_for("the starting commit verified", _is(world, "success"), 60)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        await world.wait_for("dev's promotion merged", lambda: world.kinds(events.PR_MERGED, "dev"), 60)
        await world.wait_for("dev's sync requested", _is(world, "pending"), 30)
        await world.stop_ferry(crash=True)  # killed while Argo CD is still progressing
        restarted_at = datetime.now(UTC).replace(microsecond=0)
        await world.start_ferry()  # a new process: nothing carried over but what GitHub holds
        await world.wait_for("dev's verdict after the restart", _is(world, "success"), 30)
        assert world.runtime is not None
        snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
        assert snapshot is not None
        verdict = snapshot.deploys["dev"].statuses[health_context("dev")]
        assert verdict.created_at is not None and verdict.created_at >= restarted_at
        assert snapshot.deploys["dev"].promotion is not None  # the verdict sits on the promotion's merge
    finally:
        await world.stop()


def _is(world: World, state: str) -> Any:
    async def check() -> bool:
        return await _dev_health(world) == state

    return check


async def test_a_second_replica_reconciling_at_once_opens_no_duplicate_pr() -> None:
    world = World()
    twin = None
    try:
        await world.start(quick_pipeline, RELEASES)
        assert world.runtime is not None
        twin = build_runtime(world.settings())  # a second Ferry process: same settings, its own memory
        await twin.reconciler.discover()
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        for _ in range(3):
            await asyncio.gather(
                world.runtime.reconciler.reconcile(FULL_NAME), twin.reconciler.reconcile(FULL_NAME)
            )
        async with world.person("observer", "read") as observer:
            response = await observer.get(f"/repos/{FULL_NAME}/pulls", params={"state": "all"})
        heads = [p["head"]["ref"] for p in response.json()]
        assert len([h for h in heads if h.startswith("ferry/dev/")]) == 1, heads
    finally:
        if twin is not None:
            await twin.close()
        await world.stop()


async def test_busy_main_ends_with_every_stage_verified_and_nothing_asked_off_main() -> None:
    result = await run_scenario("busy-main")
    assert result["ok"], result.get("error")
    stages = result["stages"]
    assert {stage["health"] for stage in stages.values()} == {"success"}
    assert len({stage["freight"] for stage in stages.values()}) == 1
    kinds = {event["kind"] for event in result["events"]}
    assert {events.SYNC_REQUESTED, events.HEALTH_VERDICT} <= kinds
    asked = [e["detail"] for e in result["events"] if e["kind"] == events.SYNC_REQUESTED]
    assert asked and all(": refresh for " in d or ": sync for " in d for d in asked)
    assert result["sync_requests"]["refresh"] >= 3 and result["sync_requests"]["sync"] >= 1
    verdicts = [e["detail"] for e in result["events"] if e["kind"] == events.HEALTH_VERDICT]
    assert not [v for v in verdicts if v.startswith("failure")]
