"""GitHub and Argo CD requests of one reconcile pass on the sandbox: idle, and while a stage verifies.

Starts the sandbox world (GitHub, Argo CD and registry stand-ins on 127.0.0.1, the real Ferry between them),
waits until every stage is verified, stops Ferry's own timers, and then runs passes by hand:

- idle: a pass over an unchanged repository (after one settling pass), averaged over ``--passes``;
- verifying: a pass while dev's promotion is being verified (its health status pending), averaged over the
  passes it takes to reach the verdict (at most ``--passes``);

For each it prints the requests Ferry sent to GitHub (and how many GitHub would charge to the rate limit,
that is, not answered 304 Not Modified) and to Argo CD, by route.

    .venv/bin/python bench/pass_cost.py [--passes 5] [--progress-seconds 2.0]
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
    routes: collections.Counter[str] = field(default_factory=collections.Counter)

    def row(self, name: str) -> str:
        n = max(1, self.passes)
        figures = (self.github / n, self.charged / n, self.argocd / n)
        return f"| {name} | {self.passes} | " + " | ".join(f"{f:.1f}" for f in figures) + " |"


def dev_only(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="60s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


def charged(world: World) -> int:
    usage: dict[str, tuple[int, int]] = world.github._pipeline.rate_usage  # the stand-in's own accounting
    return usage.get(f"installation ID {world.github.state.site.installation_id}", (0, 0))[0]


async def one_pass(world: World, cost: Cost) -> None:
    assert world.runtime is not None and world.argocd is not None
    github = collections.Counter(world.github.requests)
    argocd = collections.Counter(world.argocd.requests)
    before_charged = charged(world)
    await world.runtime.reconciler.reconcile(FULL_NAME)
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


async def run(passes: int, progress_seconds: float) -> str:
    world = World(progress_seconds=progress_seconds)
    idle, verifying = Cost(), Cost()
    try:
        await world.start(dev_only, RELEASES)
        await wait("dev verified at the start", lambda: dev_state(world) == "success", 60)
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below run now
        await reconciler.idle()
        await reconciler.reconcile(FULL_NAME)  # settle
        for _ in range(passes):
            await one_pass(world, idle)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        merged = False
        for _ in range(100):  # discover, open, gate, merge: passes until dev's promotion merged
            await reconciler.reconcile(FULL_NAME)
            await reconciler.idle()
            merged = any(
                r.pull is not None and r.pull.merged and r.pull.head_ref.startswith("ferry/dev/")
                for r in world.github.state.pulls()
            )
            if merged:
                break
            await asyncio.sleep(0.05)
        if not merged:
            raise TimeoutError("dev's promotion never merged")
        while verifying.passes < passes and dev_state(world) in (None, "pending", "success"):
            await one_pass(world, verifying)
            if dev_state(world) != "pending" and verifying.passes > 1:
                break
            await asyncio.sleep(progress_seconds / 4)
    finally:
        await world.stop()
    lines = [
        "| pass | n | GitHub requests | charged (not 304) | Argo CD requests |",
        "| --- | --- | --- | --- | --- |",
        idle.row("idle"),
        verifying.row("verifying (dev pending)"),
        "",
        "| route (all passes above) | requests |",
        "| --- | --- |",
    ]
    lines += [f"| {route} | {count} |" for route, count in sorted(idle.routes.items())]
    lines += [f"| (verifying) {route} | {count} |" for route, count in sorted(verifying.routes.items())]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=5, help="passes to average (default 5)")
    parser.add_argument("--progress-seconds", type=float, default=2.0, help="how long stand-in syncs run")
    args = parser.parse_args()
    print(asyncio.run(run(args.passes, args.progress_seconds)))


if __name__ == "__main__":
    main()
