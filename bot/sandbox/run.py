"""Run a sandbox scenario end to end and summarise it (the `--json` object is a contract)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot import events
from bot.core import dora
from bot.core.gates import health_context
from bot.core.images import parse_image
from bot.core.pipeline import stage_order
from bot.core.stage_view import stage_view
from bot.errors import ExternalError
from bot.pass_budget import per_pass
from bot.sandbox.chaos_invariants import missed
from bot.sandbox.keep import write_env_file
from bot.sandbox.scenarios import SCENARIOS
from bot.sandbox.world import FULL_NAME, EventListener, World, until_answered

Ready = Callable[[World, Path], None]
SUMMARY_WITHIN = 130.0  # seconds the summary waits for GitHub to answer again: two secondary-limit blocks
Announce = Callable[[World, dict[str, Any]], None]


async def run_scenario(
    name: str,
    *,
    keep: bool = False,
    announce: Announce | None = None,
    on_event: EventListener | None = None,
    on_ready: Ready | None = None,
    seed: int = 1,
    replicas: int = 3,
) -> dict[str, Any]:
    """Play scenario ``name``; its events go to ``on_event`` as they happen. ``seed`` and ``replicas``
    (Ferry processes) are for the scenarios that use them (chaos).

    With ``keep``, an env file is written as soon as the world runs and ``on_ready(world, env_file)`` is
    told; after the story ``announce(world, summary)``, then everything runs until cancelled (Ctrl-C).
    The world's temporary directory is removed in every case.
    """
    scenario = SCENARIOS[name]
    started = time.monotonic()
    world = World(on_event=on_event, seed=seed, replicas=replicas)
    ok = False
    error = ""
    try:
        await world.start(
            scenario.edit, {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
        )
        if keep:
            env_file = write_env_file(world)
            if on_ready is not None:
                on_ready(world, env_file)
        try:
            ok = await scenario.play(world)
        except TimeoutError as exc:
            error = str(exc)
        summary = await summarise(world, name, ok, error, wall_ms=elapsed_ms(started))
        if keep:
            if announce is not None:
                announce(world, summary)
            await _forever()
        return summary
    finally:
        await world.stop()


async def _forever() -> None:
    await asyncio.Event().wait()  # until Ctrl-C cancels the run


async def summarise(
    world: World, name: str, ok: bool, error: str, *, wall_ms: int | None = None
) -> dict[str, Any]:
    """The ``--json`` object: ``ok``, each stage's freight and health, request counts, the events,
    ``delivery`` (when the ledger has entries: ``ferry stats --json``'s ``figures``),
    ``wall_ms``: milliseconds from starting the stand-ins to the end of the story (what a person waits),
    and ``invariants`` the scenario counted (``{name: {"count": N, "target": M}}``; ``ok`` is false when a
    count misses its target)."""
    assert world.runtime is not None
    reconciler = world.runtime.reconciler
    # A scenario may end while GitHub holds the installation after a secondary limit (chaos meets them on
    # purpose): the summary waits that out, as Ferry's own passes do.
    snapshot = await until_answered(lambda: reconciler.snapshot(FULL_NAME), SUMMARY_WITHIN)
    stages: dict[str, Any] = {}
    if snapshot is not None and snapshot.config is not None:
        for stage in snapshot.config.stages:
            view = stage_view(snapshot, stage)
            status = view.deploy.statuses.get(health_context(stage)) if view.deploy else None
            stages[stage] = {
                "images": {_short_image(image): tag for image, tag in sorted(view.tags.items())},
                "freight": view.freight_id,
                "health": status.state if status else "none",
                "pr": view.deploy.promotion.number if view.deploy and view.deploy.promotion else None,
                "merge_to_sync_ms": _latency(world, stage, events.SYNC_REQUESTED),
                "merge_to_verdict_ms": _latency(world, stage, events.HEALTH_VERDICT),
            }
    checked = world.invariants
    result: dict[str, Any] = {
        "scenario": name,
        "ok": ok and not missed(checked),
        "stages": stages,
        "github_requests": world.runtime.github.counter.total,
        # GitHub requests of one pass by kind (idle, verifying, acting), and per promotion merged.
        "requests_per_pass": per_pass(world.runtime.reconciler.budget.totals),
        "requests_per_promotion": _per_promotion(world),
        "sync_requests": sync_request_counts(world),
        "events": world.timeline.as_json(),
        "invariants": checked,
        "ledger": await _ledger(world),
    }
    if snapshot is not None and snapshot.config is not None:
        # After counting requests: a ledger not read since the last verdict costs a few more.
        try:
            found = await world.runtime.reconciler.delivery.refresh(FULL_NAME, stage_order(snapshot.config))
        except ExternalError:
            found = None  # GitHub held the installation again: the summary goes without the figures
        if found is not None and found.entries:
            result["delivery"] = [dora.as_json(f) for f in found.figures]
    if wall_ms is not None:
        result["wall_ms"] = wall_ms
    if error:
        result["error"] = error
    return result


def _per_promotion(world: World) -> float | None:
    """Every GitHub request Ferry's passes sent, over the promotions merged (None: none merged)."""
    assert world.runtime is not None
    merged = len(world.kinds(events.PR_MERGED))
    total = sum(requests for _passes, requests in world.runtime.reconciler.budget.totals.values())
    return round(total / merged, 1) if merged else None


def _short_image(image: str) -> str:
    return parse_image(image).repository


def _latency(world: World, stage: str, kind: str) -> int | None:
    merges = world.kinds(events.PR_MERGED, stage)
    if not merges:
        return None
    merged_at = merges[-1].at
    after = [e.at for e in world.kinds(kind, stage) if e.at >= merged_at]
    return round((after[0] - merged_at) * 1000) if after else None


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started``, a ``time.monotonic()`` reading."""
    return round((time.monotonic() - started) * 1000)


def sync_request_counts(world: World) -> dict[str, int]:
    """``sync_requested`` events by what Ferry asked (``refresh`` or ``sync``)."""
    counts = {"refresh": 0, "sync": 0}
    for event in world.kinds(events.SYNC_REQUESTED):
        asked = event.detail.split(": ", 1)[-1].split(" ", 1)[0]
        counts[asked] = counts.get(asked, 0) + 1
    return counts


async def _ledger(world: World) -> dict[str, list[dict[str, Any]]]:
    """Per stage, the freight ledger (GitHub Deployments Ferry wrote) newest first, as ``--json`` shows it."""
    assert world.runtime is not None
    try:
        entries = await world.runtime.reconciler.repo_client(FULL_NAME).read_ledger()
    except ExternalError:
        return {}
    ledger: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        ledger.setdefault(entry.stage, []).append(
            {
                "task": entry.task,
                "sha": entry.sha[:7],
                "freight": entry.freight.id,
                "tags": sorted({image.tag for image in entry.freight.images}),
                "outcome": entry.outcome,
                "active": entry.active,
            }
        )
    return ledger
