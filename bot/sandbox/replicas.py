"""More Ferry replicas beside the sandbox world's own: each a real runtime and webhook server on 127.0.0.1,
and a mirroring proxy that sends every webhook delivery to all of them (as a load balancer that fans out,
or GitHub configured with several webhook URLs, would).
Shared by the sharding tests and ``bench/faults.py``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

from bot import events
from bot.github.client import WRITE_METHODS
from bot.runtime import Runtime, build_runtime
from bot.sandbox.world import free_port
from bot.server import WEBHOOK_PATH, run_server
from bot.settings import Settings


class Mirror:
    """Receives each webhook delivery and sends it, headers and body unchanged, to every replica."""

    def __init__(self, targets: list[str]) -> None:
        self.targets = targets
        self.port = free_port()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{WEBHOOK_PATH}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        app = web.Application()
        app.router.add_post(WEBHOOK_PATH, self._mirror)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def _mirror(self, request: web.Request) -> web.Response:
        assert self._session is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith(("x-", "content-type"))}

        async def send(url: str) -> int:
            assert self._session is not None
            async with self._session.post(url, data=body, headers=headers) as response:
                return response.status

        statuses = await asyncio.gather(*(send(url) for url in self.targets))
        return web.json_response({"statuses": statuses}, status=max(statuses))


@contextlib.asynccontextmanager
async def replica(settings: Settings, port: int, sink: list[events.Event]) -> AsyncIterator[Runtime]:
    runtime = build_runtime(settings, emit=sink.append)
    server = asyncio.get_running_loop().create_task(run_server(runtime.app, "127.0.0.1", port))
    try:
        async with asyncio.timeout(10):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                break
        await runtime.start()
        yield runtime
    finally:
        server.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await server
        await runtime.close()


def writes(runtime: Runtime) -> dict[str, int]:
    """The GitHub writes a replica made (installation tokens it asked for are not writes to a repository)."""
    return {
        route: n
        for route, n in runtime.github.counter.by_route.items()
        if route.split(" ", 1)[0] in WRITE_METHODS and not route.endswith("/access_tokens")
    }
