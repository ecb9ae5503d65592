"""`ferry sandbox`: Ferry end to end on this machine, offline: GitHub, Argo CD and a registry stand in."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
from typing import Any

from bot.cli import command_help
from bot.logs import configure_logging
from bot.sandbox.run import run_scenario
from bot.sandbox.scenarios import SCENARIOS
from bot.sandbox.world import World


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
    parser.add_argument("--keep", action="store_true", help="leave everything running and print the URLs")
    parser.add_argument("--verbose", action="store_true", help="show Ferry's own logs")
    parser.set_defaults(handler=_sandbox)


def _sandbox(args: argparse.Namespace) -> int:
    configure_logging("INFO" if args.verbose else "ERROR", "text")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    try:
        result = asyncio.run(run_scenario(args.scenario, keep=args.keep, announce=_announce))
    except KeyboardInterrupt:
        return 130
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(narrate(result))
    return 0 if result["ok"] else 1


def _announce(world: World, summary: dict[str, Any]) -> None:
    print(narrate(summary))
    print("\nStill running (Ctrl-C to stop):")
    print(f"  GitHub stand-in   {world.github_url}  (repo acme/gitops: {world.github.repo_path})")
    print(f"  Argo CD stand-in  {world.argocd_url}")
    print(f"  registry          http://{world.registry.host}")
    print(f"  Ferry             http://127.0.0.1:{world.ferry_port}/  (/metrics, /healthz)", flush=True)


def narrate(result: dict[str, Any]) -> str:
    lines = [f"Ferry sandbox: scenario {result['scenario']}", ""]
    for event in result["events"]:
        stage = f"[{event['stage']}] " if event["stage"] else ""
        lines.append(f"{event['t_ms'] / 1000:7.2f}s  {event['kind']:<18} {stage}{event['detail']}")
    lines += [
        "",
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
    lines += ["", f"GitHub requests made by Ferry: {result['github_requests']}"]
    if result.get("error"):
        lines.append(f"Stopped: {result['error']}")
    lines.append("Result: " + ("ok" if result["ok"] else "NOT ok"))
    return "\n".join(lines)
