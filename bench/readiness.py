"""How soon `ferry serve` is ready once GitHub answers again, and how soon it is alive at all.

A real `ferry serve` process starts while GitHub is out in one of two ways: **silent** (a proxy accepts
connections and answers nothing, as a hung GitHub does; coming back drops the held connections) or
**refused** (nothing listens on GitHub's port; coming back starts listening). Then the GitHub stand-in
answers again through the proxy, and the time until `/readyz` first answers 200 is measured (polled every
10 ms). Goal (issue 13): ready within a second of GitHub answering.

    .venv/bin/python bench/readiness.py [--rounds 5] [--outage 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from serve_process import ServeProcess, SilentProxy  # noqa: E402

from bot.sandbox.github_standin import GitHubStandIn  # noqa: E402
from bot.sandbox.world import free_port  # noqa: E402

SECRET = "bench-readiness-secret-0123"
GOAL_SECONDS = 1.0


async def one_round(kind: str, outage: float, workdir: Path) -> tuple[float, float]:
    """(seconds from start to /healthz 200, seconds from GitHub answering again to /readyz 200)."""
    github = GitHubStandIn(workdir, webhook_secret=SECRET)
    await github.start()
    await github.seed({"README.md": b"GitOps\n"})
    proxy = SilentProxy()
    github_port = free_port()
    if kind == "silent":
        await proxy.start(github_port)
    env = {
        "FERRY_APP_ID": "1",
        "FERRY_PRIVATE_KEY": github.app_private_key_pem,
        "FERRY_WEBHOOK_SECRET": SECRET,
        "FERRY_GITHUB_URL": f"http://127.0.0.1:{github_port}",
        "FERRY_LOG_LEVEL": "WARNING",
    }
    ferry = ServeProcess(free_port(), env, workdir / "serve.log")
    started = time.monotonic()
    await ferry.start()
    try:

        async def alive() -> bool:
            return (await ferry.healthz())[0] == 200

        async def ready() -> bool:
            return (await ferry.readyz())[0] == 200

        await ferry.wait_until("/healthz 200", alive, 60, every=0.01)
        alive_after = time.monotonic() - started
        await asyncio.sleep(outage)
        assert (await ferry.readyz())[0] == 503, ferry.log()
        upstream = int(github.base_url.rsplit(":", 1)[1])
        if kind == "silent":
            proxy.forward_to(upstream)
        else:
            proxy.upstream = upstream
            await proxy.start(github_port)
        ready_after = await ferry.wait_until("/readyz 200", ready, 30, every=0.01)
        return alive_after, ready_after
    finally:
        await ferry.kill()
        await proxy.stop()
        await github.stop()


async def main(rounds: int, outage: float) -> None:
    print(f"`ferry serve` with GitHub out for {outage:g}s, {rounds} rounds each (seconds)\n")
    print("| GitHub | alive after start (median) | ready after GitHub is back: median | max | goal |")
    print("| --- | --- | --- | --- | --- |")
    for kind in ("silent", "refused"):
        alive, ready = [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="ferry-bench-ready-") as tmp:
                a, r = await one_round(kind, outage, Path(tmp))
            alive.append(a)
            ready.append(r)
        verdict = "met" if max(ready) <= GOAL_SECONDS else "NOT met"
        print(
            f"| {kind} | {statistics.median(alive):.2f} | {statistics.median(ready):.2f} "
            f"| {max(ready):.2f} | ≤ {GOAL_SECONDS:g}: {verdict} |"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--outage", type=float, default=3.0, help="seconds GitHub stays out after start")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.outage))
