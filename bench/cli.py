"""Benchmark: CPU time and peak memory of each offline ``ferry`` command, a fresh process per run.

Each command runs as a person runs it (``python -m bot ...``, "after": the command's own module
alone is imported) and as the command line used to start, importing every command's module to
build its parser before running the one asked for ("before": the sandbox, the web server, the
GitHub client and the HTTP client came along). CPU is user + system time of the child process and
RSS its peak resident memory, both from ``os.wait4``; the table gives the medians of ``--runs``.

    .venv/bin/python bench/cli.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "tests" / "fixtures" / "manifests" / "large-values.yaml"
# The command line as it was: every command module imported to build the parser, then the command run.
EAGER = (
    "import importlib, sys\n"
    "from bot.cli import COMMANDS, main\n"
    "for module, _ in COMMANDS.values():\n"
    "    importlib.import_module(module)\n"
    "sys.exit(main(sys.argv[1:]))\n"
)
COMMANDS: list[tuple[str, list[str], str]] = [
    ("ferry --help", ["--help"], ""),
    (
        "ferry bump (6,000-line values, --stdout)",
        ["bump", str(VALUES), "ghcr.io/acme/svc056=9.9.9", "--stdout"],
        "",
    ),
    ("ferry images (6,000-line values)", ["images", str(VALUES)], ""),
    ("ferry select --semver (stdin)", ["select", "--semver", ">=1.0.0 <2.0.0"], "1.0.0\n1.4.2\n2.0.0\n"),
    ("ferry validate config/example", ["validate", "config/example"], ""),
    ("ferry schema", ["schema"], ""),
]


def run_once(prefix: list[str], args: list[str], stdin: str) -> tuple[float, float]:
    """(CPU ms, peak RSS MB) of one run; exits if the command fails."""
    child = subprocess.Popen(
        [*prefix, *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stderr is not None
    child.stdin.write(stdin)
    child.stdin.close()
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"bench: {' '.join(args)} exited {child.returncode}: {errors[-500:]}")
    return (usage.ru_utime + usage.ru_stime) * 1000, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=5)
    runs = parser.parse_args().runs
    eager = [sys.executable, "-c", EAGER]
    lazy = [sys.executable, "-m", "bot"]
    rows = []
    for name, args, stdin in COMMANDS:
        measured = {}
        for label, prefix in (("before", eager), ("after", lazy)):
            samples = [run_once(prefix, args, stdin) for _ in range(runs)]
            measured[label] = (
                statistics.median(cpu for cpu, _ in samples),
                statistics.median(rss for _, rss in samples),
            )
        rows.append((name, measured["before"], measured["after"]))
    load = " ".join(f"{value:.1f}" for value in os.getloadavg())
    print(f"ferry commands, median of {runs} fresh processes (load average {load}, {os.cpu_count()} CPUs)\n")
    print("| command | CPU ms before | CPU ms after | RSS MB before | RSS MB after |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, (cpu_before, rss_before), (cpu_after, rss_after) in rows:
        print(f"| {name} | {cpu_before:.0f} | {cpu_after:.0f} | {rss_before:.0f} | {rss_after:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
