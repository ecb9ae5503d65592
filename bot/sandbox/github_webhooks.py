"""The GitHub stand-in's webhook sender: one queue and one sender task, so deliveries leave in the order
their causes happened, signed and headed as GitHub signs and heads them, never retried, each recorded.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp

from bot.sandbox.github_state import Delivery

log = logging.getLogger(__name__)

HOOK_ID = 424242
USER_AGENT = "GitHub-Hookshot/sandbox"
WEBHOOK_TIMEOUT = 10.0  # GitHub gives a receiver ten seconds


class WebhookSender:
    """Queues events for ``url`` (None: observers only) and posts them one at a time."""

    def __init__(self, url: str | None, secret: str, app_id: int, clock: Callable[[], float]) -> None:
        self.url = url
        self._secret = secret.encode()
        self._app_id = app_id
        self._clock = clock
        self.deliveries: list[Delivery] = []
        self.on_event: list[Callable[[str, dict[str, Any]], None]] = []
        self._queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._send_loop(), name="github-standin-webhooks")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        for observer in self.on_event:
            try:
                observer(event, payload)
            except Exception:
                log.exception("on_event observer failed for %s", event)
        if self.url is not None:
            self._queue.put_nowait((event, payload))

    async def drained(self) -> None:
        """Return once every queued webhook has been sent (or failed to be)."""
        await self._queue.join()

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    async def _send_loop(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)) as session:
            while True:
                event, payload = await self._queue.get()
                try:
                    await self._deliver(session, event, payload)
                finally:
                    self._queue.task_done()

    async def _deliver(self, session: aiohttp.ClientSession, event: str, payload: dict[str, Any]) -> None:
        assert self.url is not None
        body = json.dumps(payload, separators=(",", ":")).encode()
        delivery_id = str(uuid.uuid4())
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self._app_id),
            "X-Hub-Signature": "sha1=" + hmac.new(self._secret, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": self.sign(body),
        }
        status, error = None, None
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(
            Delivery(event, payload.get("action"), delivery_id, status, self._clock(), error)
        )
