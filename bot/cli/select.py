"""``ferry select`` picks a tag as a warehouse would; ``ferry freight`` shows each warehouse's newest freight.

``select`` reads tags one per line from stdin, or lists them from the registry with ``--image``.
Registry credentials come from ``FERRY_REGISTRIES`` (the same JSON as the App's ``registries``
setting: ``{"ghcr.io": {"username": "bot", "password": "..."}}``); the rest of the App's settings are
not needed here, so they are not read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.cli import command_help
from bot.core.selection import Strategy, TagRule, check_rule, select_tag
from bot.errors import FerryError, SettingsError

if TYPE_CHECKING:
    from bot.core.freight import Freight
    from bot.settings import RegistryAccess

# Selecting from stdin needs only the selection rules: the registry client (httpx), the App's settings
# (pydantic-settings) and the config loader are imported by the code paths that use them.
REGISTRIES_VARIABLE = "FERRY_REGISTRIES"  # bot.settings.ENV_PREFIX + "REGISTRIES"
CONFIG_PATH = ".github/ferry.yml"
STRATEGY_CHOICES: dict[str, Strategy] = {"semver": "semver", "lexical": "lexical", "numeric": "numeric"}
CLI_RETRIES = 2  # a person is waiting: give up sooner than the App does

SELECT_HELP = command_help("select")
SELECT_EPILOG = """examples:
  skopeo list-tags docker://nginx | jq -r '.Tags[]' | ferry select --semver '~1.26'
  ferry select --image ghcr.io/acme/web --semver '>=1.0.0 <2.0.0' --digest
  ferry select --image nginx --allow '^(?P<version>\\d+\\.\\d+\\.\\d+)-alpine$'
  ferry select --image acme/web --strategy numeric --allow '^v(?P<date>\\d+-\\d+-\\d+)(-(?P<n>\\d+))?$'
  ferry select --image ghcr.io/acme/web --follow latest --digest

Registry credentials: FERRY_REGISTRIES='{"ghcr.io": {"username": "bot", "password": "..."}}'.
Rules are explained in docs/selection.md."""
SEMVER_HELP = 'a Masterminds semver range, e.g. ">=1.2.0 <2.0.0", "~1.4", "^2" (implies --strategy semver)'
STRATEGY_HELP = "how to order tags (default: semver)"
FOLLOW_HELP = "follow this mutable tag (the digest strategy); with --digest, print its current digest"
ALLOW_HELP = "only tags this regex finds; a named group (?P<version>...) is compared instead of the tag"
IGNORE_HELP = "drop tags this regex finds (repeatable)"
PRERELEASE_HELP = "let prereleases such as 1.2.0-rc.1 qualify"
LENIENT_HELP = (
    "read tags leniently as versions (semver_strict: false): v1.2 is 1.2.0, 40213377 is 40213377.0.0; "
    "by default only [v]X.Y.Z tags are versions"
)
IMAGE_HELP = "list the tags of this repository (e.g. ghcr.io/acme/web, nginx, 127.0.0.1:5000/acme/web)"
DIGEST_HELP = "print TAG@DIGEST with the digest the registry reports (needs --image)"
FREIGHT_HELP = command_help("freight")
FREIGHT_PATH_HELP = f"a config file, or a repository directory holding {CONFIG_PATH} (default: .)"
JSON_HELP = "print JSON instead of a table"

MSG_DIGEST_NEEDS_IMAGE = "--digest needs --image: the digest comes from the registry"
MSG_FOLLOW_NEEDS_IMAGE = "--follow needs --image: following a tag means asking the registry for its digest"
MSG_LENIENT_NEEDS_SEMVER = "--lenient applies to the semver strategy only"
MSG_NO_STDIN = "no tags on stdin: pipe tags one per line, or pass --image to list them from a registry"
MSG_BAD_REGISTRIES = (
    f"{REGISTRIES_VARIABLE}: expected JSON like "
    + '{{"ghcr.io": {{"username": "bot", "password": "..."}}}}: {error}'
)
MSG_NO_CONFIG = "{root} holds no {config}; pass the config file, or the repository directory that holds it"
MSG_NO_SUCH_PATH = "{path} does not exist; pass a config file or a repository directory"
MSG_NO_WAREHOUSES = "{source} defines no warehouses"
MSG_WAREHOUSE_FAILED = 'ferry: warehouse "{name}": {error}'
TABLE_HEADERS = ("WAREHOUSE", "IMAGE", "TAG", "DIGEST", "FREIGHT")
SHORT_DIGEST = len("sha256:") + 12


def register(subparsers: Any) -> None:
    select = subparsers.add_parser(
        "select",
        help=SELECT_HELP,
        description=SELECT_HELP,
        epilog=SELECT_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    how = select.add_mutually_exclusive_group()
    how.add_argument("--semver", metavar="RANGE", help=SEMVER_HELP)
    how.add_argument("--strategy", choices=tuple(STRATEGY_CHOICES), help=STRATEGY_HELP)
    how.add_argument("--follow", metavar="TAG", help=FOLLOW_HELP)
    select.add_argument("--allow", metavar="RE", help=ALLOW_HELP)
    select.add_argument("--ignore", metavar="RE", action="append", default=[], help=IGNORE_HELP)
    select.add_argument("--prerelease", action="store_true", help=PRERELEASE_HELP)
    select.add_argument("--lenient", action="store_true", help=LENIENT_HELP)
    select.add_argument("--image", metavar="REF", help=IMAGE_HELP)
    select.add_argument("--digest", action="store_true", help=DIGEST_HELP)
    select.set_defaults(handler=run_select)

    freight = subparsers.add_parser("freight", help=FREIGHT_HELP, description=FREIGHT_HELP)
    freight.add_argument("path", nargs="?", default=".", help=FREIGHT_PATH_HELP)
    freight.add_argument("--json", action="store_true", help=JSON_HELP)
    freight.set_defaults(handler=run_freight)


def registry_access_from_env(environ: Mapping[str, str] | None = None) -> dict[str, RegistryAccess]:
    """Registry credentials from ``FERRY_REGISTRIES`` (JSON), without the App's other settings."""
    from pydantic import TypeAdapter, ValidationError

    from bot.settings import RegistryAccess

    text = (os.environ if environ is None else environ).get(REGISTRIES_VARIABLE, "").strip()
    if not text:
        return {}
    try:
        return TypeAdapter(dict[str, RegistryAccess]).validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        error = f"{where}: {first['msg']}" if where else first["msg"]
        raise SettingsError(MSG_BAD_REGISTRIES.format(error=error)) from None


def _rule(args: argparse.Namespace) -> TagRule:
    if args.follow:
        return TagRule("digest", digest_tag=args.follow)
    strategy: Strategy = "semver" if args.semver is not None else STRATEGY_CHOICES[args.strategy or "semver"]
    return TagRule(
        strategy=strategy,
        semver=args.semver,
        allow=args.allow,
        ignore=tuple(args.ignore),
        prerelease=args.prerelease,
        strict=not args.lenient,
    )


def run_select(args: argparse.Namespace) -> int:
    if args.lenient and (args.follow or (args.strategy or "semver") != "semver"):
        raise FerryError(MSG_LENIENT_NEEDS_SEMVER)
    rule = _rule(args)
    check_rule(rule)  # a malformed range or regex fails before any network call
    if args.digest and not args.image:
        raise FerryError(MSG_DIGEST_NEEDS_IMAGE)
    if args.follow and not args.image:
        raise FerryError(MSG_FOLLOW_NEEDS_IMAGE)
    if args.image:
        print(asyncio.run(_select_from_registry(args.image, rule, with_digest=args.digest)))
        return 0
    if sys.stdin.isatty():
        raise FerryError(MSG_NO_STDIN)
    tags = [line.strip() for line in sys.stdin if line.strip()]
    print(select_tag(tags, rule, subject="tags on stdin"))
    return 0


async def _select_from_registry(image: str, rule: TagRule, *, with_digest: bool) -> str:
    from bot.registry import RegistryClient

    async with RegistryClient(registry_access_from_env(), max_retries=CLI_RETRIES) as client:
        if rule.strategy == "digest" and rule.digest_tag:
            tag = rule.digest_tag
        else:
            tag = select_tag(await client.list_tags(image), rule, subject=f'image "{image}"')
        if with_digest or rule.strategy == "digest":
            return f"{tag}@{await client.digest(image, tag)}"
        return tag


def _locate_config(path: Path) -> tuple[Path, str]:
    if path.is_dir():
        config_file = path / CONFIG_PATH
        if not config_file.is_file():
            raise FerryError(MSG_NO_CONFIG.format(root=path, config=CONFIG_PATH))
        return config_file, CONFIG_PATH
    if not path.is_file():
        raise FerryError(MSG_NO_SUCH_PATH.format(path=path))
    return path, str(path)


def run_freight(args: argparse.Namespace) -> int:
    from bot.core.config_load import load_config
    from bot.core.freight import Freight

    config_file, source = _locate_config(Path(args.path))
    config = load_config(config_file.read_text(encoding="utf-8"), source)
    if not config.warehouses:
        raise FerryError(MSG_NO_WAREHOUSES.format(source=source))
    results = asyncio.run(_discover_all(dict(config.warehouses)))
    freights = [f for f in results.values() if isinstance(f, Freight)]
    if args.json:
        print(json.dumps([_freight_json(f) for f in freights], indent=2))
    else:
        print(_table(freights))
    for name, outcome in results.items():
        if isinstance(outcome, FerryError):
            print(MSG_WAREHOUSE_FAILED.format(name=name, error=outcome), file=sys.stderr)
    return 0 if len(freights) == len(results) else 1


async def _discover_all(warehouses: dict[str, Any]) -> dict[str, Freight | FerryError]:
    from bot.registry import RegistryClient, discover_freight

    async with RegistryClient(registry_access_from_env(), max_retries=CLI_RETRIES) as client:

        async def one(name: str) -> Freight | FerryError:
            try:
                return await discover_freight(client, name, warehouses[name])
            except FerryError as exc:
                return exc

        outcomes = await asyncio.gather(*(one(name) for name in warehouses))
    return dict(zip(warehouses, outcomes, strict=True))


def _freight_json(freight: Freight) -> dict[str, Any]:
    return {
        "warehouse": freight.warehouse,
        "freight": freight.id,
        "images": [image.as_dict() for image in freight.images],
    }


def _table(freights: list[Freight]) -> str:
    rows = [TABLE_HEADERS]
    for freight in freights:
        for image in freight.images:
            digest = (image.digest or "-")[:SHORT_DIGEST]
            rows.append((freight.warehouse, image.image, image.tag, digest, freight.id))
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_HEADERS))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )
