"""`ferry serve`: the GitHub App: webhooks in, reconcile passes, promotions out.

It listens at once, whatever GitHub, Argo CD or the registries are doing: the App's installations are
discovered in the background (``bot.startup``), ``/healthz`` answers while the process works and
``/readyz`` once GitHub has answered. SIGTERM (or SIGINT) stops taking requests and lets in-flight
deliveries and passes finish for up to FERRY_DRAIN_TIMEOUT, then exits 0; a second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal

from bot.cli import command_help
from bot.logs import configure_logging, settings_secrets
from bot.runtime import build_runtime
from bot.server import run_server
from bot.settings import Settings, load_settings
from bot.settings_checks import require

log = logging.getLogger("ferry.serve")

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
# Past the drain, whatever still holds the process (a connection that will not close) is cut off.
EXIT_MARGIN_SECONDS = 5.0
SIGNALS = (signal.SIGTERM, signal.SIGINT)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "serve",
        help=command_help("serve"),
        description="Run Ferry as a GitHub App. Settings come from FERRY_* environment variables.",
    )
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}; 0.0.0.0 in a container)",
    )
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port to listen on (default {DEFAULT_PORT})"
    )
    parser.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    settings = require(load_settings(), "serve")
    configure_logging(settings.log_level, settings.log_format, secrets=settings_secrets(settings))
    return asyncio.run(serve(settings, args.host, args.port))


async def serve(settings: Settings, host: str, port: int) -> int:
    """Serve until SIGTERM or SIGINT, then drain (bounded by ``settings.drain_timeout``); the exit code."""
    loop = asyncio.get_running_loop()
    drain = settings.drain_timeout.total_seconds()
    stop = asyncio.Event()

    def on_signal(signum: int) -> None:
        if stop.is_set():
            log.warning("second signal: exiting at once", extra={"signal": signal.Signals(signum).name})
            os._exit(128 + signum)
        log.info(
            "stopping: draining in-flight deliveries and passes",
            extra={"signal": signal.Signals(signum).name, "drain_seconds": drain},
        )
        stop.set()
        loop.call_later(drain + EXIT_MARGIN_SECONDS, _give_up, drain + EXIT_MARGIN_SECONDS)

    for signum in SIGNALS:
        loop.add_signal_handler(signum, on_signal, signum)
    runtime = build_runtime(settings)
    try:
        server = loop.create_task(run_server(runtime.app, host, port), name="server")
        runtime.start_in_background()
        log.info("serving", extra={"host": host, "port": port, "shard": settings.shard})
        stopping = loop.create_task(stop.wait(), name="signal")
        await asyncio.wait({server, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if server.done():  # it could not listen, or stopped by itself
            stopping.cancel()
            server.result()
            return 1
        started = loop.time()
        runtime.startup.stopping = True  # /readyz says so while the server still answers
        server.cancel()  # stop listening, then wait for in-flight deliveries (at most ``drain``)
        with contextlib.suppress(asyncio.CancelledError):
            await server
        await runtime.close(grace=max(0.0, drain - (loop.time() - started)))
        log.info("stopped", extra={"seconds": round(loop.time() - started, 3)})
        return 0
    finally:
        await runtime.close(grace=0)
        for signum in SIGNALS:
            loop.remove_signal_handler(signum)


def _give_up(after: float) -> None:
    log.error("still not stopped after the drain; exiting", extra={"seconds": after})
    os._exit(1)
