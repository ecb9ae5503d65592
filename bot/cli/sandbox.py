"""`ferry sandbox`: Ferry end to end on this machine, offline: GitHub, Argo CD and a registry stand in."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TextIO

from bot.cli import command_help
from bot.core.dora import TABLE_HEADER, from_json, table_rows
from bot.logs import configure_logging
from bot.sandbox.keep import kept_lines
from bot.sandbox.run import run_scenario
from bot.sandbox.scenarios import SCENARIOS
from bot.sandbox.world import World

STARTING = "Starting the GitHub, Argo CD and registry stand-ins and Ferry on 127.0.0.1 ..."


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    names = ", ".join(f"{s.name} ({s.promise})" for s in SCENARIOS.values())
    parser = subparsers.add_parser(
        "sandbox",
        help=command_help("sandbox"),
        description=f"Play a scenario through Ferry's real code path on 127.0.0.1. Scenarios: {names}.",
    )
    parser.add_argument(
        "--scenario", default="quickstart", choices=sorted(SCENARIOS), help="default: quickstart"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the narration")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="leave everything running; print the URLs and an env file for ferry plan and curl at once",
    )
    parser.add_argument("--verbose", action="store_true", help="show Ferry's own logs")
    parser.add_argument(
        "--seed",
        type=int,
        default=1,
        help="what the chaos scenario draws its random choices from (default: 1)",
    )
    parser.add_argument(
        "--replicas", type=_replicas, default=3, help="Ferry processes the chaos scenario runs (default: 3)"
    )
    parser.set_defaults(handler=_sandbox)


def _sandbox(args: argparse.Namespace) -> int:
    configure_logging("INFO" if args.verbose else "ERROR", "text")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    # With --json, stdout is one JSON object: the narration is left out and --keep's notes go to stderr.
    notes = sys.stderr if args.json else sys.stdout

    def ready(world: World, env_file: Path) -> None:
        _print(notes, *kept_lines(world, env_file), "")

    def event(entry: dict[str, Any]) -> None:
        _print(notes, event_line(entry))

    def announce(world: World, summary: dict[str, Any]) -> None:
        _print(sys.stdout, json.dumps(summary, indent=2) if args.json else summary_table(summary))
        _print(notes, "", "Still running: Ctrl-C stops it.")

    if not args.json:
        _print(sys.stdout, f"Ferry sandbox: scenario {args.scenario}", STARTING, "")
    story = run_scenario(
        args.scenario,
        keep=args.keep,
        announce=announce,
        on_event=None if args.json else event,
        on_ready=ready,
        seed=args.seed,
        replicas=args.replicas,
    )
    try:
        result = asyncio.run(_stopped_by_sigterm(story))
    except (KeyboardInterrupt, asyncio.CancelledError):
        return 130  # the run was cancelled: its finally blocks stopped the world and removed its directory
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print("\n" + summary_table(result))
    return 0 if result["ok"] else 1


async def _stopped_by_sigterm(story: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """``story``, cancelled (so it cleans up, as on Ctrl-C) when SIGTERM arrives (``docker stop``, kill)."""
    task = asyncio.current_task()
    assert task is not None
    with contextlib.suppress(NotImplementedError):  # no signal handlers in this event loop (Windows)
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await story


def _replicas(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(
            f"--replicas takes a whole number of Ferry processes, 1 or more, not {text!r}"
        )
    return count


def _print(stream: TextIO, *lines: str) -> None:
    stream.write("".join(f"{line}\n" for line in lines))
    stream.flush()


def event_line(event: dict[str, Any]) -> str:
    """One narrated event: ``   1.25s  pr_opened          [dev] #1 Promote web 1.5.0 to dev``."""
    stage = f"[{event['stage']}] " if event["stage"] else ""
    return f"{event['t_ms'] / 1000:7.2f}s  {event['kind']:<18} {stage}{event['detail']}"


def summary_table(result: dict[str, Any]) -> str:
    """Every stage as a table row, the GitHub request count and the result."""
    lines = [
        "| stage | images | freight | health | PR | merge→sync | merge→verdict |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, stage in result["stages"].items():
        images = ", ".join(f"{image} {tag}" for image, tag in stage["images"].items())
        pr = f"#{stage['pr']}" if stage["pr"] else "—"
        sync = f"{stage['merge_to_sync_ms']} ms" if stage["merge_to_sync_ms"] is not None else "—"
        verdict = f"{stage['merge_to_verdict_ms']} ms" if stage["merge_to_verdict_ms"] is not None else "—"
        lines.append(
            f"| {name} | {images} | {stage['freight'] or '—'} | {stage['health']} "
            f"| {pr} | {sync} | {verdict} |"
        )
    if result.get("delivery"):
        rows = [
            TABLE_HEADER,
            ("---",) * len(TABLE_HEADER),
            *table_rows(from_json(f) for f in result["delivery"]),
        ]
        lines += [
            "",
            "Delivery figures from the ledger:",
            "",
            *("| " + " | ".join(row) + " |" for row in rows),
        ]
    lines += ["", f"GitHub requests made by Ferry: {result['github_requests']}"]
    if result.get("wall_ms") is not None:
        lines.append(f"Wall time: {result['wall_ms'] / 1000:.1f} s")
    for name, entry in (result.get("invariants") or {}).items():
        mark = "ok" if entry["count"] == entry["target"] else "MISSED"
        lines.append(f"Invariant {name}: {entry['count']} (target {entry['target']}) {mark}")
    if result.get("error"):
        lines.append(f"Stopped: {result['error']}")
    lines.append("Result: " + ("ok" if result["ok"] else "NOT ok"))
    return "\n".join(lines)


def narrate(result: dict[str, Any]) -> str:
    """The whole run told after the fact: the events, then the summary table."""
    header = [f"Ferry sandbox: scenario {result['scenario']}", ""]
    return "\n".join([*header, *(event_line(e) for e in result["events"]), "", summary_table(result)])
