"""Headless Chromium for the tests (Debian's ``chromium``), driven over the Chrome DevTools Protocol.

Only what a page test needs: a phone- or desktop-sized viewport (``Emulation.setDeviceMetricsOverride``:
a headless window cannot be narrower than 500 px, an emulated viewport can), navigate and wait for the
load event, evaluate an expression, take a PNG. Chromium is started with every networking extra turned
off, so it fetches nothing but the pages it is told to open; every wait is bounded and names what it
waited for. The protocol: https://chromedevtools.github.io/devtools-protocol/ (Page, Runtime, Emulation).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

START_TIMEOUT = 30.0
COMMAND_TIMEOUT = 30.0
FLAGS = (
    "--headless",
    "--no-sandbox",  # tests may run as root in a container, where Chromium's sandbox cannot start
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    "--remote-debugging-port=0",  # Chromium picks a free port and writes it to DevToolsActivePort
)
MISSING = "chromium is not installed (apt-get install chromium; .ci/run does it)"


def chromium_binary() -> str:
    """The Chromium to run (``FERRY_CHROMIUM`` or ``chromium`` on PATH); skips, or fails when CI=true."""
    found = os.environ.get("FERRY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{MISSING}; CI must run the page test in a real browser")
    pytest.skip(MISSING)


class Page:
    """One browser tab over its DevTools websocket."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._events: list[dict[str, Any]] = []

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        await self._ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        async with asyncio.timeout(COMMAND_TIMEOUT):
            while True:
                message = await self._ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"Chromium closed the DevTools connection during {method}")
                data = json.loads(message.data)
                if data.get("id") == ident:
                    if "error" in data:
                        raise RuntimeError(f"{method} failed: {data['error']}")
                    return dict(data.get("result", {}))
                if "method" in data:
                    self._events.append(data)

    async def _event(self, method: str, within: float) -> None:
        async with asyncio.timeout(within):
            while not any(e["method"] == method for e in self._events):
                message = await self._ws.receive()
                if message.type != aiohttp.WSMsgType.TEXT:
                    raise RuntimeError(f"Chromium closed the DevTools connection waiting for {method}")
                data = json.loads(message.data)
                if "method" in data:
                    self._events.append(data)

    async def viewport(self, width: int, height: int, *, mobile: bool, scale: float = 1) -> None:
        await self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=scale,
            mobile=mobile,
        )

    async def goto(self, url: str, within: float = COMMAND_TIMEOUT) -> None:
        """Open ``url`` and wait for its load event."""
        self._events.clear()
        await self.send("Page.enable")
        result = await self.send("Page.navigate", url=url)
        if result.get("errorText"):
            raise RuntimeError(f"Chromium could not open {url}: {result['errorText']}")
        try:
            await self._event("Page.loadEventFired", within)
        except TimeoutError:
            raise TimeoutError(f"Chromium: {url} did not finish loading within {within:.0f}s") from None

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of ``expression`` evaluated in the page."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"the page threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def screenshot(self) -> bytes:
        """A PNG of the viewport."""
        data = await self.send("Page.captureScreenshot", format="png")
        return base64.b64decode(data["data"])


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Page]:
    """A headless Chromium with one blank tab; stopped (and its profile removed) afterwards."""
    binary = chromium_binary()
    profile = Path(tempfile.mkdtemp(prefix="ferry-chromium-"))
    log = (profile / "chromium.log").open("wb")
    process = await asyncio.create_subprocess_exec(
        binary, *FLAGS, f"--user-data-dir={profile}", "about:blank", stdout=log, stderr=log
    )
    try:
        port = await _devtools_port(profile, process)
        async with aiohttp.ClientSession() as session:
            async with asyncio.timeout(COMMAND_TIMEOUT):
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = await response.json()
            url = next(t["webSocketDebuggerUrl"] for t in targets if t.get("type") == "page")
            async with session.ws_connect(url, max_msg_size=0) as ws:
                yield Page(ws)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()
        log.close()
        shutil.rmtree(profile, ignore_errors=True)


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    active = profile / "DevToolsActivePort"
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if process.returncode is not None:
            tail = (profile / "chromium.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"chromium exited with {process.returncode} at start-up:\n{tail}")
        if active.is_file():
            first = active.read_text().split("\n", 1)[0].strip()
            if first.isdigit():
                return int(first)
        await asyncio.sleep(0.05)
    raise TimeoutError(f"chromium did not open its DevTools port within {START_TIMEOUT:.0f}s ({active})")
