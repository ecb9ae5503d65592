"""GitHub requests per promotion on the sandbox: each release promoted through dev by Ferry (opened, merged,
synced, verified), with Ferry's own timers running as in production.

Starts the sandbox world (GitHub, Argo CD and registry stand-ins on 127.0.0.1, the real Ferry between them),
lets it settle, then pushes ``--releases`` releases one after another and waits for each one's verdict in dev.
Prints the requests Ferry sent to GitHub per promotion, writes (POST/PATCH/PUT) and reads, and the routes
that cost most. Timers poll too, so the figures include the passes a promotion's wall time holds.

    .venv/bin/python bench/promotion_requests.py [--releases 3]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
from typing import Any

from bot import events
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
WRITES = ("POST", "PATCH", "PUT", "DELETE")


def dev_only(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="60s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


async def settle(world: World) -> None:
    assert world.runtime is not None
    await asyncio.wait_for(world.github.wait_for_deliveries(), 60)
    await asyncio.sleep(0.5)
    await asyncio.wait_for(world.runtime.reconciler.idle(), 60)


async def measure(releases: int) -> collections.Counter[str]:
    world = World(progress_seconds=0.2)
    try:
        await world.start(dev_only, RELEASES)
        await world.wait_for("first contact verified", lambda: world.kinds(events.HEALTH_VERDICT, "dev"), 60)
        await settle(world)
        before = collections.Counter(world.github.requests)
        for n in range(releases):
            tag = f"1.{5 + n}.0"
            world.registry.push("acme/web", tag)
            world.registry.push("acme/worker", tag)
            verdicts = len(world.kinds(events.HEALTH_VERDICT, "dev"))

            def verified(count: int = verdicts) -> bool:
                return len(world.kinds(events.HEALTH_VERDICT, "dev")) > count

            await world.wait_for(f"dev's verdict on {tag}", verified, 90)
            await settle(world)
        return collections.Counter(world.github.requests) - before
    finally:
        await world.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--releases", type=int, default=3)
    args = parser.parse_args()
    used = asyncio.run(measure(args.releases))
    n = args.releases
    total = sum(used.values())
    writes = sum(v for k, v in used.items() if k.startswith(WRITES))
    print("| per promotion | requests | writes | reads |")
    print("| --- | --- | --- | --- |")
    print(f"| dev, {n} release(s) | {total / n:.1f} | {writes / n:.1f} | {(total - writes) / n:.1f} |")
    print()
    print("| route | per promotion |")
    print("| --- | --- |")
    for route, count in used.most_common(12):
        print(f"| {route} | {count / n:.1f} |")


if __name__ == "__main__":
    main()
