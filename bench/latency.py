"""Deploy latency and GitHub cost per promotion on the sandbox (issue 5's figures; issue 4's request count).

Starts the sandbox world (GitHub, Argo CD and registry stand-ins on 127.0.0.1, the real Ferry between them)
with a pipeline where only dev moves: it auto-promotes and auto-merges. Then, N times, a new release is
pushed to the registry and timed through dev:

- merge -> sync request: the GitHub stand-in applying the merge (its ``pull_request`` closed event) to the
  Argo CD stand-in receiving Ferry's request for it (a refresh of the automated app, or a sync);
- merge -> verdict: the same merge to the ``ferry/health/dev`` success or failure status on that commit;
- release push -> merge: for context (warehouse discovery, the PR, its gate, the auto-merge);
- GitHub requests for the act phase of one promotion (Ferry's own request counter around opening the PR:
  the look-before head read, tree, commit, ref, pull request, labels), for the merge, and end to end
  (every request the GitHub stand-in received from the release push to the verdict, observation passes
  included, the verdict's own status included), and how many of those GitHub would charge to the rate
  limit (not answered 304 Not Modified).

Prints Markdown tables with the goals next to the numbers and the load average. Bounded by
``--max-seconds``: every wait has a deadline, and nothing waits for the reconciler to be idle (while a
stage verifies, a new pass is always queued, so it may never be).

    .venv/bin/python bench/latency.py [--promotions 10] [--progress-seconds 0.3] [--max-seconds 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.actor import Actor
from bot.core.gates import health_context
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
GOAL_SYNC_P99_MS = 100.0
GOAL_REQUESTS_PER_PROMOTION = 6
DEV_HEALTH = health_context("dev")
PER_PROMOTION_TIMEOUT = 60.0


@dataclass
class Promotion:
    tag: str
    merge_sha: str = ""
    pushed_at: float = 0.0
    merged_at: float = 0.0
    synced_at: float | None = None
    verdict_at: float | None = None
    verdict: str = ""
    open_requests: int = 0
    merge_requests: int = 0
    total_requests: int = 0
    charged_requests: int = 0

    @property
    def merge_to_sync_ms(self) -> float | None:
        return None if self.synced_at is None else (self.synced_at - self.merged_at) * 1000

    @property
    def push_to_merge_ms(self) -> float:
        return (self.merged_at - self.pushed_at) * 1000

    @property
    def merge_to_verdict_ms(self) -> float | None:
        return None if self.verdict_at is None else (self.verdict_at - self.merged_at) * 1000


@dataclass
class Recorder:
    """What the stand-ins and Ferry's request counter say, keyed by merge commit."""

    merges: dict[str, float] = field(default_factory=dict)
    open_requests: list[int] = field(default_factory=list)
    merge_requests: list[int] = field(default_factory=list)

    def on_github_event(self, event: str, payload: dict[str, Any]) -> None:
        pull = payload.get("pull_request") or {}
        if event == "pull_request" and payload.get("action") == "closed" and pull.get("merged"):
            self.merges[str(pull["merge_commit_sha"])] = time.time()


def count_requests(world: World, recorder: Recorder) -> None:
    """Wrap the Actor's promotion handlers so each one's GitHub requests are counted on their own."""

    def counting(
        original: Callable[[Actor, Any], Awaitable[bool]], into: list[int]
    ) -> Callable[[Actor, Any], Awaitable[bool]]:
        async def wrapper(actor: Actor, action: Any) -> bool:
            assert world.runtime is not None
            before = world.runtime.github.counter.total
            try:
                return await original(actor, action)  # what it answers decides what the pass does next
            finally:
                into.append(world.runtime.github.counter.total - before)

        return wrapper

    Actor.open_promotion = counting(Actor.open_promotion, recorder.open_requests)  # type: ignore[method-assign,assignment]
    Actor.merge = counting(Actor.merge, recorder.merge_requests)  # type: ignore[method-assign,assignment]


def dev_only(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="30s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


def received(world: World) -> int:
    """Requests the GitHub stand-in has received (counted as each arrives, before it is answered)."""
    return sum(world.github.requests.values())


def charged(world: World) -> int:
    """Requests the GitHub stand-in charged to Ferry's installation (304s are free, as on GitHub)."""
    usage: dict[str, tuple[int, int]] = world.github._pipeline.rate_usage  # the stand-in's own accounting
    return usage.get(f"installation ID {world.github.state.site.installation_id}", (0, 0))[0]


def verdict_on(world: World, sha: str) -> tuple[str, float] | None:
    for record in world.github.state.statuses.get(sha, []):
        if record.context == DEV_HEALTH and record.state != "pending":
            return record.state, record.created_at
    return None


async def wait(what: str, check: Callable[[], Any], deadline: float) -> Any:
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        await asyncio.sleep(0.005)
    raise TimeoutError(f"gave up waiting for {what}")


async def promote(world: World, recorder: Recorder, tag: str, deadline: float) -> Promotion:
    assert world.runtime is not None and world.argocd is not None
    promotion = Promotion(tag)
    requests_before, charged_before = received(world), charged(world)
    opens_before, merges_before = len(recorder.open_requests), len(recorder.merge_requests)
    known = set(recorder.merges)
    promotion.pushed_at = time.time()
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)
    limit = min(deadline, time.monotonic() + PER_PROMOTION_TIMEOUT)
    promotion.merge_sha = await wait(
        f"the merge of {tag}", lambda: next((s for s in recorder.merges if s not in known), None), limit
    )
    promotion.merged_at = recorder.merges[promotion.merge_sha]
    state, promotion.verdict_at = await wait(
        f"the verdict on {tag}", lambda: verdict_on(world, promotion.merge_sha), limit
    )
    promotion.verdict = state
    # Ferry asks Argo CD for a refresh (automated apps) or a sync of the app's own targetRevision: the
    # first of either for shop-dev after the merge is when the merge reached Argo CD.
    asked = [at for app, _, _, at in world.argocd.syncs if app == "shop-dev" and at >= promotion.merged_at]
    asked += [at for app, _, at in world.argocd.refreshes if app == "shop-dev" and at >= promotion.merged_at]
    promotion.synced_at = min(asked) if asked else None
    # Counted when the verdict is seen: the stand-in counts a request as it arrives, so the verdict's
    # own status is in, and the passes that keep polling after it are not.
    promotion.total_requests = received(world) - requests_before
    promotion.charged_requests = charged(world) - charged_before
    promotion.open_requests = sum(recorder.open_requests[opens_before:])
    promotion.merge_requests = sum(recorder.merge_requests[merges_before:])
    return promotion


def percentiles(values: list[float]) -> tuple[float, float, float, float]:
    if len(values) == 1:
        return values[0], values[0], values[0], values[0]
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98], max(values)


def report(promotions: list[Promotion], seconds: float) -> str:
    sync = [p.merge_to_sync_ms for p in promotions if p.merge_to_sync_ms is not None]
    verdict = [p.merge_to_verdict_ms for p in promotions if p.merge_to_verdict_ms is not None]
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    lines = [
        f"Promotions through dev: {len(promotions)} in {seconds:.1f}s (load average {load}) "
        f"(verdicts: {', '.join(sorted({p.verdict for p in promotions}))})",
        "",
        "| measure | n | p50 ms | p95 ms | p99 ms | max ms | goal |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, values, goal in (
        ("merge → sync request", sync, f"p99 < {GOAL_SYNC_P99_MS:.0f} ms"),
        ("merge → verdict", verdict, "—"),
        (
            "release push → merge (discovery, PR, gate, auto-merge)",
            [p.push_to_merge_ms for p in promotions],
            "—",
        ),
    ):
        if values:
            p50, p95, p99, top = percentiles(values)
            met = "" if goal == "—" else (" ✅" if p99 < GOAL_SYNC_P99_MS else " ❌")
            lines.append(
                f"| {name} | {len(values)} | {p50:.1f} | {p95:.1f} | {p99:.1f} | {top:.1f} | {goal}{met} |"
            )
    lines += [
        "",
        "| GitHub requests per promotion | min | median | max | goal |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, counts, goal in (
        ("open (look-before head, tree, commit, ref, PR, labels)", [p.open_requests for p in promotions],
         f"≤ {GOAL_REQUESTS_PER_PROMOTION}"),
        ("merge", [p.merge_requests for p in promotions], "—"),
        ("end to end (release push → verdict, observation included)", [p.total_requests for p in promotions],
         "—"),
        ("end to end, charged to the rate limit (not 304)", [p.charged_requests for p in promotions], "—"),
    ):  # fmt: skip
        met = ""
        if goal != "—":
            met = " ✅" if max(counts) <= GOAL_REQUESTS_PER_PROMOTION else " ❌"
        lines.append(
            f"| {name} | {min(counts)} | {statistics.median(counts):g} | {max(counts)} | {goal}{met} |"
        )
    return "\n".join(lines)


async def run(count: int, progress_seconds: float, max_seconds: float) -> str:
    deadline = time.monotonic() + max_seconds
    world = World(progress_seconds=progress_seconds)
    recorder = Recorder()
    world.github.on_event.append(recorder.on_github_event)
    promotions: list[Promotion] = []
    try:
        await world.start(dev_only, RELEASES)
        count_requests(world, recorder)
        head = await world.github.state.store.get_ref("refs/heads/main")
        assert head is not None
        await wait("dev verified at the start", lambda: verdict_on(world, head), deadline)
        started = time.monotonic()
        for i in range(count):
            if time.monotonic() >= deadline:
                break
            try:
                promotions.append(await promote(world, recorder, f"1.{5 + i}.0", deadline))
            except TimeoutError as exc:
                print(f"stopped early: {exc}")
                break
        seconds = time.monotonic() - started
    finally:
        # Measured: passes still polling are dropped rather than waited for (a graceful stop waits
        # for the reconciler to be idle, up to two minutes while a stage verifies).
        await world.stop_ferry(crash=True)
        await world.stop()
    if not promotions:
        return "no promotion completed within the time bound"
    return report(promotions, seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--promotions", type=int, default=10, help="releases to promote (default 10)")
    parser.add_argument(
        "--progress-seconds", type=float, default=0.3, help="how long the Argo CD stand-in's syncs run"
    )
    parser.add_argument("--max-seconds", type=float, default=300, help="stop after this long (default 300)")
    args = parser.parse_args()
    print(asyncio.run(run(args.promotions, args.progress_seconds, args.max_seconds)))


if __name__ == "__main__":
    main()
