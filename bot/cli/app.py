"""``ferry app create``: create Ferry's GitHub App in one click; ``ferry app manifest``: print its manifest.

``create`` serves GitHub's App manifest flow on 127.0.0.1 (``bot.app_setup``) and puts the new App's id,
private key and webhook secret into a settings file (mode 0600) or prints them as a Kubernetes Secret
(``bot.app_outputs``). Messages go to stderr; stdout carries only the Secret, for ``kubectl apply -f -``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bot.cli import command_help
from bot.errors import FerryError

DEFAULT_OUT = "ferry-settings.yaml"
DEFAULT_TIMEOUT = "15m"
URL_HELP = (
    "where Ferry will be reachable from GitHub (https://ferry.example.com): the App's webhooks go to "
    "URL/webhooks/github, its homepage is the status page at URL/"
)
MSG_BAD_URL = "--url {url}: expected an absolute http(s) URL such as https://ferry.example.com"
MSG_OPEN = (
    'Open {url} in a browser and click "Create the App on GitHub"; GitHub asks you to confirm, then sends '
    "you back to that page. Waiting up to {timeout}."
)
MSG_CREATED = 'Created GitHub App "{name}" (id {id}) owned by {owner}: {html_url}'
MSG_WROTE = "Wrote app_id, private_key{secret} to {path} (mode 0600); use it with FERRY_SETTINGS_FILE={path}"
MSG_SECRET = "Printed Secret {namespace}/{name} on stdout (app-id, private-key.pem, webhook-secret)"
MSG_NEXT = (
    "Next: install the App on your GitOps repository: {install}\n"
    "then check the installation: ferry doctor OWNER/REPO (docs/install.md walks through the rest)"
)
MSG_NO_WEBHOOK_SECRET = (
    "note: GitHub returned no webhook secret; set one on the App's settings page and give it to Ferry "
    "as FERRY_WEBHOOK_SECRET"
)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("app", help=command_help("app"), description=command_help("app"))
    actions = parser.add_subparsers(dest="app_command", metavar="<action>")
    create = actions.add_parser(
        "create",
        help="create the App from Ferry's manifest through a local page (one click on GitHub)",
        description=(
            "Serve a page on 127.0.0.1 that sends Ferry's App manifest to GitHub; once you confirm there, "
            "write the new App's id, private key and webhook secret to a settings file or print them as a "
            "Kubernetes Secret. The key never appears in the log."
        ),
    )
    _manifest_options(create)
    create.add_argument("--org", help="create the App for this organization (default: your own account)")
    create.add_argument(
        "--github-url",
        default=os.environ.get("FERRY_GITHUB_URL"),
        help="GitHub's REST API root (default: FERRY_GITHUB_URL, else https://api.github.com; "
        "GitHub Enterprise Server: https://HOST/api/v3)",
    )
    where = create.add_mutually_exclusive_group()
    where.add_argument(
        "--out",
        type=Path,
        help=f"settings file to create (YAML for .yml/.yaml, JSON otherwise; default: {DEFAULT_OUT})",
    )
    where.add_argument(
        "--kubernetes-secret",
        metavar="NAME",
        nargs="?",
        const="ferry-github-app",
        help="print a Kubernetes Secret instead (default name ferry-github-app, as deploy/ reads it)",
    )
    create.add_argument("--namespace", default="ferry", help="the Secret's namespace (default: ferry)")
    create.add_argument("--port", type=int, default=0, help="local port of the page (default: any free one)")
    create.add_argument(
        "--timeout", default=DEFAULT_TIMEOUT, help=f"how long to wait for GitHub (default: {DEFAULT_TIMEOUT})"
    )
    create.set_defaults(handler=_create)
    manifest = actions.add_parser(
        "manifest",
        help="print the App manifest (for registering the App by hand)",
        description="Print Ferry's GitHub App manifest as JSON (.github/app-manifest.json is this for "
        "https://ferry.example.com).",
    )
    _manifest_options(manifest)
    manifest.set_defaults(handler=_print_manifest)

    def app_help(_args: argparse.Namespace) -> int:
        parser.print_help(sys.stderr)
        return 2

    parser.set_defaults(handler=app_help)


def _manifest_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help=URL_HELP)
    parser.add_argument(
        "--name", default="Ferry", help="the App's name (unique on GitHub; you can change it there too)"
    )
    parser.add_argument(
        "--minimal",
        action="store_true",
        help="leave out the optional permission (administration: read, to check branch protection)",
    )


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise FerryError(MSG_BAD_URL.format(url=url))
    return url.rstrip("/")


def _manifest(args: argparse.Namespace, redirect_url: str | None) -> dict[str, Any]:
    from bot.app_manifest import build_manifest

    return build_manifest(
        _check_url(args.url), name=args.name, redirect_url=redirect_url, optional=not args.minimal
    )


def _print_manifest(args: argparse.Namespace) -> int:
    from bot.app_manifest import manifest_json

    sys.stdout.write(manifest_json(_manifest(args, None)))
    return 0


def _create(args: argparse.Namespace) -> int:
    import asyncio

    from bot.app_outputs import check_writable, kubernetes_secret, settings_values, write_settings
    from bot.app_setup import CreatedApp, ManifestFlow
    from bot.core.durations import DurationError, parse_duration
    from bot.settings import DEFAULT_GITHUB_URL

    _manifest(args, None)  # a bad --url is refused before anything is served
    try:
        timeout = parse_duration(args.timeout).total_seconds()
    except DurationError as exc:
        raise FerryError(f"--timeout: {exc}") from None
    out = None if args.kubernetes_secret else (args.out or Path(DEFAULT_OUT))
    if out is not None:
        check_writable(out)
    api_url = (args.github_url or DEFAULT_GITHUB_URL).rstrip("/")

    async def run() -> CreatedApp:
        flow = ManifestFlow(lambda redirect: _manifest(args, redirect), api_url=api_url, org=args.org)
        async with flow:
            page = await flow.start(port=args.port)
            print(MSG_OPEN.format(url=page, timeout=args.timeout), file=sys.stderr, flush=True)
            return await flow.wait(timeout)

    created = asyncio.run(run())
    print(
        MSG_CREATED.format(name=created.name, id=created.id, owner=created.owner, html_url=created.html_url),
        file=sys.stderr,
    )
    if out is not None:
        github_url = api_url if api_url != DEFAULT_GITHUB_URL else None
        write_settings(out, settings_values(created, github_url))
        secret = ", webhook_secret" if created.webhook_secret is not None else ""
        print(MSG_WROTE.format(secret=secret, path=out), file=sys.stderr)
    else:
        sys.stdout.write(kubernetes_secret(created, name=args.kubernetes_secret, namespace=args.namespace))
        sys.stdout.flush()
        print(MSG_SECRET.format(namespace=args.namespace, name=args.kubernetes_secret), file=sys.stderr)
    if created.webhook_secret is None:
        print(MSG_NO_WEBHOOK_SECRET, file=sys.stderr)
    print(MSG_NEXT.format(install=created.install_url), file=sys.stderr)
    return 0
