"""Benchmark: the sandbox quickstart's wall time, CPU and git processes, before and after in one run.

Runs ``ferry sandbox --json`` (the quickstart) in fresh processes, alternating between the GitHub
stand-in as it was ("before": every commit lookup and ref listing asks git again, a full sha tried
as a branch and a tag first) and as it is ("after": commits and the ref listing kept until a ref
moves). Prints, per variant, the median ``wall_ms`` (stand-ins started to the end of the story, what
``--json`` reports), the process's wall time and CPU (user + system, git children included, from
``os.wait4``), the git processes the stand-in ran and whether every run was ``ok``. Goal: ``wall_ms``
under 10,000 on a quiet 2-core machine; the load average is printed beside the table.

    .venv/bin/python bench/quickstart.py [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 10_000
# Counts the stand-in's git processes; with BEFORE, puts back the lookups as they were.
RUN = """
import sys
from bot.sandbox import gitstore
runs = 0
original_run = gitstore.GitStore.run
async def run(self, *args, **kwargs):
    global runs
    runs += 1
    return await original_run(self, *args, **kwargs)
gitstore.GitStore.run = run
if {before}:
    gitstore._full_sha = lambda rev: False  # no commit kept, and a sha tried as a branch and tag first
    async def refs(self):
        out = await self._out("for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split(" ", 1) for line in out.splitlines() if line)
    gitstore.GitStore.refs = refs
from bot.cli import main
code = main(["sandbox", "--json"])
print(runs, file=sys.stderr)
sys.exit(code)
"""


def run_once(before: bool) -> dict[str, float]:
    """One quickstart in a fresh process: its ``--json`` figures, wall time, CPU and git processes."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, "-c", RUN.format(before=before)], cwd=ROOT, stdout=out, stderr=err
        )
        _, status, usage = os.wait4(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        out.seek(0)
        err.seek(0)
        output, errors = out.read(), err.read()
    if not output.strip():
        raise SystemExit(f"bench: the quickstart printed nothing (exit {child.returncode}): {errors[-1000:]}")
    result = json.loads(output)
    return {
        "wall_ms": float(result.get("wall_ms", 0)),
        "process_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "git": float(errors.strip().splitlines()[-1]),
        "ok": 1.0 if result.get("ok") else 0.0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=3)
    runs = parser.parse_args().runs
    samples: dict[str, list[dict[str, float]]] = {"before": [], "after": []}
    for _ in range(runs):
        for label, rows in samples.items():
            rows.append(run_once(before=label == "before"))
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"ferry sandbox --json (quickstart), median of {runs} runs each, alternating")
    print(f"(load average {load} at the end, {os.cpu_count()} CPUs)\n")
    print("| stand-in | wall_ms | process wall s | CPU s | git processes | ok | goal |")
    print("| --- | ---: | ---: | ---: | ---: | --- | --- |")
    for label, rows in samples.items():

        def median(key: str, rows: list[dict[str, float]] = rows) -> float:
            return statistics.median(row[key] for row in rows)

        ok = sum(int(row["ok"]) for row in rows)
        goal = f"wall_ms < {GOAL_MS:,} on a quiet machine: " + (
            "met" if median("wall_ms") < GOAL_MS else "not here"
        )
        print(
            f"| {label} | {median('wall_ms'):,.0f} | {median('process_s'):.1f} | {median('cpu_s'):.1f} | "
            f"{median('git'):.0f} | {ok}/{len(rows)} | {goal} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
