"""GitHub and Argo CD requests of one reconcile pass on the sandbox: idle, and while a stage verifies.

Starts the sandbox world (GitHub, Argo CD and registry stand-ins on 127.0.0.1, the real Ferry between them),
waits until every stage is verified, stops Ferry's own timers, and then runs passes by hand:

- idle: a pass over an unchanged repository (after one settling pass), averaged over ``--passes``;
- opening: the pass that opened dev's promotion pull request;
- verifying: a pass while dev's promotion is being verified (its health status pending), averaged over the
  passes it takes to reach the verdict (at most ``--passes``), at the fast interval's pace;

each a whole pass (reconcile and its steps: the command sweep, the config review), twice in one run:
"full" with every pass reading GitHub in full (``Reconciler(reuse=False)``, as before the change check),
then "checked" (the default: a pass reads GitHub in full only when the change check says something changed).

For each it prints the GitHub requests of the pass itself (Ferry's own count, ``bot.pass_budget``), and as
the stand-ins recorded them together with the passes its own writes' webhooks triggered: all of them, how
many GitHub would charge to the rate limit (not answered 304 Not Modified), Argo CD's; and all by route.

    .venv/bin/python bench/pass_cost.py [--passes 5] [--progress-seconds 2.0] [--mode both|full|checked]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import time
from dataclasses import dataclass, field
from typing import Any

from bot.core.gates import health_context
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
DEV_HEALTH = health_context("dev")


@dataclass
class Cost:
    passes: int = 0
    github: int = 0
    charged: int = 0
    argocd: int = 0
    own: int = 0
    routes: collections.Counter[str] = field(default_factory=collections.Counter)

    def row(self, name: str) -> str:
        n = max(1, self.passes)
        figures = (self.own / n, self.github / n, self.charged / n, self.argocd / n)
        return f"| {name} | {self.passes} | " + " | ".join(f"{f:.1f}" for f in figures) + " |"


def dev_only(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="60s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


def charged(world: World) -> int:
    usage: dict[str, tuple[int, int]] = world.github._pipeline.rate_usage  # the stand-in's own accounting
    return usage.get(f"installation ID {world.github.state.site.installation_id}", (0, 0))[0]


async def quiet(world: World) -> None:
    """Let webhook deliveries of earlier writes and the passes they trigger finish before measuring."""
    assert world.runtime is not None
    for _ in range(3):
        await world.github.wait_for_deliveries()
        await world.runtime.reconciler.idle()


async def one_pass(world: World, cost: Cost) -> None:
    assert world.runtime is not None and world.argocd is not None
    await quiet(world)
    github = collections.Counter(world.github.requests)
    argocd = collections.Counter(world.argocd.requests)
    before_charged = charged(world)
    own = await world.runtime.reconciler.run_pass(FULL_NAME)  # not those of passes its webhooks trigger
    cost.own += own.total
    await quiet(world)  # ... which the stand-in's figures include
    cost.passes += 1
    github_delta = collections.Counter(world.github.requests)
    github_delta.subtract(github)
    argocd_delta = collections.Counter(world.argocd.requests)
    argocd_delta.subtract(argocd)
    cost.github += sum(github_delta.values())
    cost.argocd += sum(argocd_delta.values())
    cost.charged += charged(world) - before_charged
    cost.routes.update({k: v for k, v in github_delta.items() if v})
    cost.routes.update({f"argocd {k}": v for k, v in argocd_delta.items() if v})


def dev_state(world: World) -> str | None:
    """The newest ``ferry/health/dev`` state on any commit."""
    latest: tuple[float, str] | None = None
    for records in world.github.state.statuses.values():
        for record in records:
            if record.context == DEV_HEALTH and (latest is None or record.created_at >= latest[0]):
                latest = (record.created_at, record.state)
    return latest[1] if latest else None


async def wait(what: str, check: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"gave up waiting for {what}")


def dev_pulls(world: World) -> int:
    return sum(
        1
        for r in world.github.state.pulls()
        if r.pull is not None and r.pull.head_ref.startswith("ferry/dev/")
    )


def dev_merged(world: World) -> bool:
    return any(
        r.pull is not None and r.pull.merged and r.pull.head_ref.startswith("ferry/dev/")
        for r in world.github.state.pulls()
    )


@dataclass
class Costs:
    idle: Cost = field(default_factory=Cost)
    opening: Cost = field(default_factory=Cost)
    verifying: Cost = field(default_factory=Cost)
    # dev's whole promotion, from the release's push to the verdict: every request, and the writes of them
    promotion: Cost = field(default_factory=Cost)
    promotion_writes: int = 0


async def measure(passes: int, progress_seconds: float, *, reuse: bool) -> Costs:
    world = World(progress_seconds=progress_seconds)
    costs = Costs()
    try:
        await world.start(dev_only, RELEASES)
        await wait("dev verified at the start", lambda: dev_state(world) == "success", 60)
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        reconciler.reads.enabled = reuse
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below (and those webhooks trigger) run now
        await quiet(world)
        await reconciler.run_pass(FULL_NAME)  # settle
        for _ in range(passes):
            await one_pass(world, costs.idle)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        promotion_started = collections.Counter(world.github.requests), charged(world)
        for _ in range(100):  # discover, open, gate, merge: passes until dev's promotion merged
            before = dev_pulls(world)
            cost = Cost()
            await one_pass(world, cost)
            if dev_pulls(world) > before and not costs.opening.passes:
                costs.opening = cost
            await quiet(world)
            if dev_merged(world):
                break
            await asyncio.sleep(0.05)
        else:
            raise TimeoutError("dev's promotion never merged")
        await wait("dev's promotion verifying", lambda: dev_state(world) != "success", 30)
        while costs.verifying.passes < passes and dev_state(world) in (None, "pending"):
            await one_pass(world, costs.verifying)
            await asyncio.sleep(progress_seconds / 4)
        deadline = time.monotonic() + 60
        while dev_state(world) in (None, "pending") and time.monotonic() < deadline:
            await reconciler.run_pass(FULL_NAME)  # to the verdict, at the same pace
            await asyncio.sleep(progress_seconds / 4)
        await quiet(world)
        grown = collections.Counter(world.github.requests)
        grown.subtract(promotion_started[0])
        costs.promotion = Cost(passes=1, github=grown.total(), charged=charged(world) - promotion_started[1])
        costs.promotion_writes = sum(n for route, n in grown.items() if not route.startswith("GET "))
    finally:
        await world.stop()
    return costs


async def run(passes: int, progress_seconds: float, mode: str) -> str:
    modes = {"both": (False, True), "full": (False,), "checked": (True,)}[mode]
    measured = {reuse: await measure(passes, progress_seconds, reuse=reuse) for reuse in modes}
    lines = [
        "| reads | pass | n | GitHub requests: the pass | with passes its webhooks triggered "
        "| charged (not 304) "
        "| Argo CD requests |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for reuse, costs in measured.items():
        name = "checked" if reuse else "full"
        lines += [
            f"| {name} " + costs.idle.row("idle"),
            f"| {name} " + costs.opening.row("opening dev's PR"),
            f"| {name} " + costs.verifying.row("verifying (dev pending)"),
        ]
    for reuse, costs in measured.items():
        name = "checked" if reuse else "full"
        lines += ["", f"| route ({name}, all passes above) | requests |", "| --- | --- |"]
        for label, cost in (("idle", costs.idle), ("opening", costs.opening), ("verifying", costs.verifying)):
            lines += [f"| ({label}) {route} | {count} |" for route, count in sorted(cost.routes.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=5, help="passes to average (default 5)")
    parser.add_argument("--progress-seconds", type=float, default=2.0, help="how long stand-in syncs run")
    parser.add_argument("--mode", choices=("both", "full", "checked"), default="both", help="which reads")
    args = parser.parse_args()
    print(asyncio.run(run(args.passes, args.progress_seconds, args.mode)))


if __name__ == "__main__":
    main()
