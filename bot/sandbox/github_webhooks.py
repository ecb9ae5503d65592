"""The GitHub stand-in's webhook sender: signed and headed as GitHub signs and heads them, never retried,
each recorded, only for the events the App subscribes to.

By default deliveries leave one at a time in the order their causes happened, to one URL. Real GitHub
promises neither order nor timing nor a single receiver, and ``DeliveryOptions`` (off unless set) make
the stand-in as unkind, reproducibly from a seed:

- ``delay``: each delivery leaves 0–``delay`` s after its cause. GitHub queues deliveries and sends them
  asynchronously; receivers are told to answer fast and process later ("Best practices for using
  webhooks", docs.github.com/en/webhooks/using-webhooks/best-practices-for-using-webhooks).
- ``reorder``: deliveries do not wait for each other, so a later event may arrive first (nothing in
  GitHub's webhook documentation promises an order).
- ``duplicate``: that share of deliveries is sent a second time with the same ``X-GitHub-Delivery``, as a
  redelivery does ("Redelivering webhooks" and "Handling failed webhook deliveries": a redelivery is the
  same delivery, same GUID; the best-practices page says to use ``X-GitHub-Delivery`` to spot replays).
- ``replicas``: several receivers (Ferry replicas behind one hostname); each send goes to one chosen at
  random, a duplicate possibly to another.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable, Collection, Coroutine
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bot.sandbox.github_state import Delivery

log = logging.getLogger(__name__)

HOOK_ID = 424242
USER_AGENT = "GitHub-Hookshot/sandbox"
WEBHOOK_TIMEOUT = 10.0  # GitHub gives a receiver ten seconds
# Sent to an App whatever it subscribes to: "All GitHub Apps receive this event by default. You cannot
# manually subscribe to this event." (docs.github.com/en/webhooks/webhook-events-and-payloads#installation,
# the same for installation_repositories and github_app_authorization; ping answers hook creation).
ALWAYS_SENT = frozenset({"installation", "installation_repositories", "ping", "github_app_authorization"})


@dataclass
class DeliveryOptions:
    """How unkindly webhooks are delivered; see the module docstring. All off by default."""

    delay: float = 0.0  # seconds, upper bound of a uniform random delay
    reorder: bool = False
    duplicate: float = 0.0  # probability that a delivery is sent twice
    replicas: list[str] = field(default_factory=list)  # receiver URLs; empty: the stand-in's one URL
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.delay < 0:
            raise ValueError(f"delivery delay must be 0 or more seconds, not {self.delay}")
        if not 0.0 <= self.duplicate <= 1.0:
            raise ValueError(f"duplicate is a probability between 0 and 1, not {self.duplicate}")
        if self.reorder and self.delay <= 0:
            raise ValueError("reorder needs a delay > 0: deliveries overtake each other within it")

    @property
    def active(self) -> bool:
        return self.delay > 0 or self.duplicate > 0 or bool(self.replicas)


@dataclass
class _Queued:
    event: str
    payload: dict[str, Any]
    delivery_id: str
    emitted_at: float  # loop time


class WebhookSender:
    """Queues events for ``url`` (None and no replicas: observers only) and posts them."""

    def __init__(
        self,
        url: str | None,
        secret: str,
        app_id: int,
        clock: Callable[[], float],
        events: Collection[str] | None = None,
    ) -> None:
        self.url = url
        self._secret = secret.encode()
        self._app_id = app_id
        self._clock = clock
        # The App's subscriptions; None sends everything. A list shared with the state follows it.
        self.events = events
        self.options = DeliveryOptions()
        self._rng = random.Random()
        self.deliveries: list[Delivery] = []
        self.on_event: list[Callable[[str, dict[str, Any]], None]] = []
        self._queue: asyncio.Queue[_Queued] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._last_due = 0.0

    def configure(self, options: DeliveryOptions) -> None:
        self.options = options
        self._rng = random.Random(options.seed)

    def start(self) -> None:
        self._task = asyncio.create_task(self._send_loop(), name="github-standin-webhooks")

    async def stop(self) -> None:
        tasks = [*self._sends, *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._task = None

    def emit(self, event: str, payload: dict[str, Any]) -> None:
        for observer in self.on_event:
            try:
                observer(event, payload)
            except Exception:
                log.exception("on_event observer failed for %s", event)
        if self.url is None and not self.options.replicas:
            return
        if self.events is not None and event not in self.events and event not in ALWAYS_SENT:
            return  # GitHub sends an App only the events it subscribes to
        loop_time = asyncio.get_running_loop().time()
        self._queue.put_nowait(_Queued(event, payload, str(uuid.uuid4()), loop_time))

    async def drained(self) -> None:
        """Return once every queued webhook has been sent (or failed to be), delayed ones and
        duplicates included."""
        while True:
            await self._queue.join()
            pending = [task for task in self._sends if not task.done()]
            if not pending:
                return
            await asyncio.gather(*pending, return_exceptions=True)

    def sign(self, body: bytes) -> str:
        return "sha256=" + hmac.new(self._secret, body, hashlib.sha256).hexdigest()

    async def _send_loop(self) -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=WEBHOOK_TIMEOUT)) as session:
            while True:
                item = await self._queue.get()
                try:
                    if self.options.active:
                        await self._dispatch(session, item)
                    else:
                        await self._deliver(session, item, self.url)
                finally:
                    self._queue.task_done()

    async def _dispatch(self, session: aiohttp.ClientSession, item: _Queued) -> None:
        """Plan one delivery from the seeded RNG (in queue order, so a seed replays the same plan)."""
        options, rng = self.options, self._rng
        due = item.emitted_at + rng.uniform(0.0, options.delay)
        target = rng.choice(options.replicas) if options.replicas else self.url
        again = rng.random() < options.duplicate
        later = rng.uniform(0.0, options.delay)
        second_target = rng.choice(options.replicas) if options.replicas else self.url
        if options.reorder:
            first = self._spawn(self._at(due, session, item, target))
        else:
            due = self._last_due = max(due, self._last_due)
            await self._at(due, session, item, target)
            first = None
        if again:
            self._spawn(self._redeliver(session, item, second_target, first, later))

    async def _redeliver(
        self,
        session: aiohttp.ClientSession,
        item: _Queued,
        target: str | None,
        first: asyncio.Task[None] | None,
        after: float,
    ) -> None:
        if first is not None:
            await asyncio.gather(first, return_exceptions=True)  # a redelivery follows the original
        await asyncio.sleep(after)
        await self._deliver(session, item, target, redelivery=True)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)
        return task

    async def _at(self, due: float, session: aiohttp.ClientSession, item: _Queued, url: str | None) -> None:
        await asyncio.sleep(max(0.0, due - asyncio.get_running_loop().time()))
        await self._deliver(session, item, url)

    async def _deliver(
        self, session: aiohttp.ClientSession, item: _Queued, url: str | None, *, redelivery: bool = False
    ) -> None:
        if url is None:
            return
        body = json.dumps(item.payload, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Event": item.event,
            "X-GitHub-Delivery": item.delivery_id,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
            "X-GitHub-Hook-Installation-Target-ID": str(self._app_id),
            "X-Hub-Signature": "sha1=" + hmac.new(self._secret, body, hashlib.sha1).hexdigest(),
            "X-Hub-Signature-256": self.sign(body),
        }
        status, error = None, None
        try:
            async with session.post(url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        self.deliveries.append(
            Delivery(
                item.event,
                item.payload.get("action"),
                item.delivery_id,
                status,
                self._clock(),
                error,
                url,
                redelivery,
            )
        )
