"""`ferry serve`: the GitHub App: webhooks in, reconcile passes, promotions out."""

from __future__ import annotations

import argparse
import asyncio
import logging

from bot.cli import command_help
from bot.logs import configure_logging, settings_secrets
from bot.runtime import running
from bot.server import run_server
from bot.settings import load_settings

log = logging.getLogger("ferry.serve")


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help=command_help("serve"),
        description="Run Ferry as a GitHub App. Settings come from FERRY_* environment variables.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8080, help="port to listen on (default 8080)")
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format, secrets=settings_secrets(settings))

    async def main() -> None:
        async with running(settings) as runtime:
            await runtime.start()
            log.info(
                "serving",
                extra={"host": args.host, "port": args.port, "repositories": len(runtime.reconciler.repos)},
            )
            await run_server(runtime.app, args.host, args.port)

    asyncio.run(main())
    return 0
