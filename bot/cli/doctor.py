"""``ferry doctor OWNER/REPO``: check one installation end to end, print a table of ✔/✘/! with fixes.

The checks are ``bot.doctor``'s, over what ``bot.doctor_facts`` reads; the exit code is 1 when any check
failed (✘), 0 otherwise (warnings, !, do not fail).
"""

from __future__ import annotations

import argparse
import re
import sys

from bot.cli import command_help
from bot.errors import FerryError

REPO_RE = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help=command_help("doctor"),
        description=(
            "Check one installation end to end with the App's settings: the App's permissions and events, "
            ".github/ferry.yml, each stage's files, Argo CD access, registries and branch protection. "
            "Reads only. Exit code 1 when a check fails."
        ),
    )
    parser.add_argument("repo", help="owner/name of the GitOps repository")
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.set_defaults(handler=_doctor)


def _doctor(args: argparse.Namespace) -> int:
    import asyncio

    from bot.doctor import failed, render_json, render_table
    from bot.doctor_facts import diagnose
    from bot.settings import load_settings
    from bot.settings_checks import require

    if not REPO_RE.match(args.repo):
        raise FerryError(f"{args.repo}: expected OWNER/REPO, e.g. acme/gitops")
    settings = require(load_settings(), "doctor")
    checks = asyncio.run(diagnose(settings, args.repo))
    render = render_json if args.json else render_table
    sys.stdout.write(render(args.repo, checks))
    return 1 if failed(checks) else 0
