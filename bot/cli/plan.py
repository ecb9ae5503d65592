"""`ferry plan OWNER/REPO`: observe and decide against a real repository, print the actions, act on none."""

from __future__ import annotations

import argparse
import asyncio
import json

from bot.cli import command_help
from bot.runtime import running
from bot.settings import load_settings
from bot.settings_checks import require


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "plan",
        help=command_help("plan"),
        description="Observe and decide for one repository the App is installed on; change nothing.",
    )
    parser.add_argument("repo", help="owner/name of a repository the App is installed on")
    parser.add_argument("--json", action="store_true", help="print the actions as JSON")
    parser.set_defaults(handler=_plan)


def _plan(args: argparse.Namespace) -> int:
    settings = require(load_settings(), "plan")

    async def main() -> list[tuple[str, str]]:
        async with running(settings, serve=False) as runtime:
            await runtime.reconciler.discover()
            if args.repo not in runtime.reconciler.repos:
                known = ", ".join(sorted(runtime.reconciler.repos)) or "none"
                raise SystemExit(f"ferry: the App is not installed on {args.repo} (installed on: {known})")
            actions = await runtime.reconciler.plan(args.repo)
            return [(a.kind, a.describe()) for a in actions]

    planned = asyncio.run(main())
    if args.json:
        print(json.dumps([{"kind": k, "action": d} for k, d in planned], indent=2))
    elif not planned:
        print(f"{args.repo}: nothing to do")
    else:
        for _kind, description in planned:
            print(description)
    return 0
