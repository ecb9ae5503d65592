"""A real `ferry serve` process for tests; the TCP proxy that can make GitHub silent is
``bot.sandbox.proxy.SilentProxy`` (re-exported here)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import httpx

from bot.sandbox.proxy import SilentProxy
from bot.server import HEALTH_PATH, READY_PATH

__all__ = ["ServeProcess", "SilentProxy", "dump"]

ROOT = Path(__file__).resolve().parent.parent


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
