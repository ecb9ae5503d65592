"""A real `ferry serve` process for tests, and a TCP proxy in front of the GitHub stand-in that can
answer nothing at all (connections accepted, requests read, no byte back) until the fault is lifted."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from bot.server import HEALTH_PATH, READY_PATH

ROOT = Path(__file__).resolve().parent.parent


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


class ServeProcess:
    """`python -m bot serve` on 127.0.0.1:``port`` with ``env`` (FERRY_* only; the rest is inherited),
    its log in ``log_path``."""

    def __init__(self, port: int, env: Mapping[str, str], log_path: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")} | dict(env)
        self.log_path = log_path
        self.process: asyncio.subprocess.Process | None = None
        self._client: httpx.AsyncClient | None = None

    async def start(self) -> None:
        with self.log_path.open("wb") as log:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "bot",
                "serve",
                "--port",
                str(self.port),
                cwd=ROOT,
                env=self.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def exit_code(self, within: float) -> int:
        assert self.process is not None
        try:
            async with asyncio.timeout(within):
                return await self.process.wait()
        except TimeoutError:
            raise AssertionError(f"ferry serve did not exit within {within:g}s; log:\n{self.log()}") from None

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def get(self, path: str) -> tuple[int, Any]:
        """(status, JSON body) of GET ``path``; (0, None) while nothing listens."""
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=5)
        try:
            response = await self._client.get(self.url + path)
        except httpx.TransportError:
            return 0, None
        return response.status_code, response.json()

    async def healthz(self) -> tuple[int, Any]:
        return await self.get(HEALTH_PATH)

    async def readyz(self) -> tuple[int, Any]:
        return await self.get(READY_PATH)

    async def wait_until(
        self, what: str, check: Callable[[], Awaitable[bool]], within: float, *, every: float = 0.05
    ) -> float:
        """Poll ``check`` until it holds; the seconds it took. Fails naming ``what`` and showing the log."""
        started = time.monotonic()
        while time.monotonic() - started < within:
            if self.process is not None and self.process.returncode is not None:
                raise AssertionError(
                    f"ferry serve exited ({self.process.returncode}) while waiting for {what}:\n{self.log()}"
                )
            if await check():
                return time.monotonic() - started
            await asyncio.sleep(every)
        raise AssertionError(f"gave up after {within:g}s waiting for {what}; log:\n{self.log()}")


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)
