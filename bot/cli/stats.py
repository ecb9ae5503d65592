"""``ferry stats OWNER/REPO [--json] [--days 7,30]``: delivery figures (DORA's four keys) per stage, read
from the repository's ledger of GitHub Deployments with the App's settings (as ``ferry doctor``).

Reads only. The stages come in the order of ``.github/ferry.yml`` on the default branch when it can be
read, then any stage only the ledger remembers. The figures' definitions are ``bot.core.dora``'s.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from bot.cli import command_help
from bot.errors import FerryError

if TYPE_CHECKING:
    from bot.core.ledger import LedgerEntry
    from bot.settings import Settings

MSG_NOT_INSTALLED = "the App is not installed on {repo}: install it there, or check the name"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "stats",
        help=command_help("stats"),
        description=(
            "Print each stage's delivery figures over the last days, read from the ledger Ferry keeps as "
            "GitHub Deployments: deployment frequency, lead time (median / p90), change failure rate and "
            "time to restore; n/a where there is no data. Reads only."
        ),
    )
    parser.add_argument("repo", help="owner/name of the GitOps repository")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON (keys: see README)")
    parser.add_argument(
        "--days", default="7,30", help="windows in whole days, comma-separated (default: 7,30)"
    )
    parser.set_defaults(handler=_stats)


def _stats(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    from bot.cli.doctor import REPO_RE
    from bot.core.dora import figures, parse_windows, render_json, render_table
    from bot.settings import load_settings
    from bot.settings_checks import require

    if not REPO_RE.match(args.repo):
        raise FerryError(f"{args.repo}: expected OWNER/REPO, e.g. acme/gitops")
    try:
        windows = parse_windows(args.days)
    except ValueError as exc:
        raise FerryError(f"--days: {exc}") from None
    settings = require(load_settings(), "stats")
    stages, entries = asyncio.run(_read(settings, args.repo))
    now = datetime.now(UTC)
    found = figures(entries, now=now, windows=windows, stages=stages)
    if args.json:
        sys.stdout.write(json.dumps(render_json(args.repo, now, windows, found), indent=2) + "\n")
    else:
        sys.stdout.write(render_table(args.repo, now, found))
    return 0


async def _read(settings: Settings, repo: str) -> tuple[list[str], list[LedgerEntry]]:
    from bot.core.config_load import CONFIG_PATH, load_config
    from bot.core.pipeline import stage_order
    from bot.errors import ConfigError, ExternalError
    from bot.github.client import GitHubApp
    from bot.github.repo import RepoGitHub
    from bot.github.setup import repo_installation
    from bot.settings_checks import private_key_pem

    github = GitHubApp(
        app_id=settings.app_id or 0,
        private_key=private_key_pem(settings),
        base_url=str(settings.github_url),
        timeout=settings.github_timeout,
    )
    try:
        installation = await repo_installation(github, repo)
        if installation is None:
            raise FerryError(MSG_NOT_INSTALLED.format(repo=repo))
        gh = RepoGitHub(github.installation(installation.id), repo)
        stages: list[str] = []
        try:  # the config only orders the stages: without it the ledger's names still count
            tree = await gh.tree(await gh.head(await gh.default_branch()))
            if CONFIG_PATH in tree:
                stages = stage_order(load_config(await gh.blob_text(tree[CONFIG_PATH], CONFIG_PATH)))
        except (ExternalError, ConfigError):
            stages = []
        return stages, await gh.read_ledger()
    finally:
        await github.aclose()
