"""The chaos scenario for many seeds (issue 12's table): does Ferry keep every invariant under any ordering?

Runs ``ferry sandbox --scenario chaos`` (in process) once per seed: several Ferry replicas, webhooks late,
reordered and doubled, lists lagging, eight releases, a person's push to a Ferry branch, a Ferry process
killed mid-verification, a manual Argo CD sync backwards, GitHub's secondary limits. Prints one Markdown
row per seed (ok, wall seconds, the secondary limits met, each invariant's count) and a total line; exits 1
when any seed is not ok.

    .venv/bin/python bench/chaos.py [--seeds 20] [--first-seed 1] [--replicas 3] [--failures DIR]

``--failures DIR`` keeps each seed that is not ok as ``DIR/seed-N.json`` (what ``ferry sandbox --scenario
chaos --seed N --json`` prints: the error, the stages as they ended, the timeline of events) to read why.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from bot.sandbox.chaos_invariants import INVARIANTS
from bot.sandbox.run import run_scenario


async def one(seed: int, replicas: int) -> dict[str, Any]:
    started = time.monotonic()
    try:
        result = await run_scenario("chaos", seed=seed, replicas=replicas)
    except Exception as exc:  # one broken seed is a row, not the end of the table
        error = f"{type(exc).__name__}: {exc}"
        result = {"ok": False, "error": error, "traceback": traceback.format_exc(), "invariants": {}}
    result["wall_s"] = time.monotonic() - started
    return result


def header() -> list[str]:
    names = list(INVARIANTS)
    return [
        "| seed | ok | wall s | secondary limits | " + " | ".join(names) + " |",
        "| ---: | --- | ---: | --- | " + " | ".join("---:" for _ in names) + " |",
    ]


def row(seed: int, result: dict[str, Any]) -> str:
    counts = []
    for name, target in INVARIANTS.items():
        entry = result.get("invariants", {}).get(name)
        counts.append(
            "—" if entry is None else f"{entry['count']}" + ("" if entry["count"] == target else " ✗")
        )
    ok = "ok" if result["ok"] else "NOT ok"
    limits = next((e["detail"] for e in result.get("events", ()) if e["kind"] == "secondary_limits"), "—")
    return f"| {seed} | {ok} | {result['wall_s']:.1f} | {limits} | " + " | ".join(counts) + " |"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="how many seeds (default 20)")
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--failures", type=Path, help="write each seed that is not ok here as seed-N.json")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    print("targets: " + ", ".join(f"{name} {target}" for name, target in INVARIANTS.items()))
    print()
    for line in header():
        print(line, flush=True)
    failed: list[str] = []
    walls: list[float] = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        result = asyncio.run(one(seed, args.replicas))
        walls.append(result["wall_s"])
        print(row(seed, result), flush=True)
        if not result["ok"]:
            failed.append(f"seed {seed}: {result.get('error') or 'an invariant missed its target'}")
            if args.failures is not None:
                args.failures.mkdir(parents=True, exist_ok=True)
                (args.failures / f"seed-{seed}.json").write_text(json.dumps(result, indent=2, default=str))
    print()
    print(
        f"total: {args.seeds - len(failed)}/{args.seeds} seeds ok, {args.replicas} replicas, "
        f"wall {sum(walls):.0f} s (max {max(walls):.1f} s per seed)"
    )
    for line in failed:
        print(f"  {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
