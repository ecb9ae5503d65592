"""A TCP proxy that can make a service silent (connections accepted, requests read, no byte back) until
the fault is lifted, and sandbox worlds whose Ferry reaches GitHub through it or runs with changed settings.
Shared by the fault tests and ``bench/faults.py``."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from bot.sandbox.world import World
from bot.settings import Settings


class SilentProxy:
    """Listens on 127.0.0.1; while ``silent``, accepts connections and never answers (as a GitHub that
    hangs does); ``forward_to(port)`` drops the held connections, as a restarted service does, and
    from then on pipes every connection to ``port``."""

    def __init__(self) -> None:
        self.port = 0
        self.upstream: int | None = None
        self._server: asyncio.Server | None = None
        self._held: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def start(self, port: int = 0) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", port)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    def forward_to(self, port: int) -> None:
        self.upstream = port
        for writer in list(self._held):
            writer.close()
        self._held.clear()

    def silence(self) -> None:
        """Go silent again, as GitHub going away does: connections piped so far are cut (a client's
        keep-alive connections fail), new ones are accepted and never answered."""
        self.upstream = None
        for task in list(self._pipes):
            task.cancel()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._held):
            writer.close()
        for task in list(self._pipes):
            task.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.upstream is None:
            self._held.add(writer)
            with contextlib.suppress(ConnectionError):
                while await reader.read(65536):
                    pass  # read and answer nothing
            self._held.discard(writer)
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)
        except OSError:
            writer.close()
            return
        pipes = [
            asyncio.create_task(_pipe(reader, up_writer)),
            asyncio.create_task(_pipe(up_reader, writer)),
        ]
        self._pipes.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)
        self._pipes.difference_update(pipes)


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


class Tuned(World):
    """The sandbox world with some of Ferry's settings changed (``overrides``, read at each start)."""

    def __init__(self, **overrides: Any) -> None:
        super().__init__(progress_seconds=0.2)
        self.overrides = overrides

    def settings(self) -> Settings:
        return super().settings().model_copy(update=self.overrides)


class BehindAProxy(Tuned):
    """Ferry reaches GitHub through a proxy the test can make silent (GitHub unreachable for Ferry, while
    people and webhooks still get through), with a short deadline on each request."""

    def __init__(self) -> None:
        super().__init__(github_timeout=1.0)
        self.proxy = SilentProxy()

    def settings(self) -> Settings:
        self.proxy.forward_to(int(self.github_url.rsplit(":", 1)[1]))
        return super().settings().model_copy(update={"github_url": f"http://127.0.0.1:{self.proxy.port}"})

    async def start(
        self,
        edit: Callable[[dict[str, Any]], None],
        releases: dict[str, list[str]],
        *,
        before_ferry: Callable[[World], Awaitable[None]] | None = None,
    ) -> None:
        await self.proxy.start()
        await super().start(edit, releases, before_ferry=before_ferry)

    async def stop(self) -> None:
        try:
            await super().stop()
        finally:
            await self.proxy.stop()
