"""Start-up that survives outages: ``ferry serve`` listens before GitHub has answered.

- **Discovery** (the App's installations and their repositories: the only source of the reconcile set)
  runs in the background and is tried again after every failure, with the one retry policy
  (``bot.core.backoff.retry_delay``), from ``DISCOVERY_BASE_SECONDS`` doubling up to a cap that depends on
  what GitHub said: ``SILENT_CAP_SECONDS`` while nothing answers (refused connections, timeouts), so a
  GitHub that comes back is seen within a second (an attempt every half second costs nothing against a
  service that does not answer, and reaches no rate limit); ``FAILING_CAP_SECONDS`` while GitHub answers
  5xx (those requests reach GitHub), and never sooner than a rate limit asks (``retry_after``); and
  ``REFUSED_CAP_SECONDS`` while GitHub refuses (401, 404: the App's id or key is wrong, and a person must
  fix it).
- **Readiness** (``GET /readyz``): ready once one discovery has completed, i.e. the settings were valid
  (the process only starts with valid settings) and GitHub answered. It stays ready when GitHub goes
  away later: a readiness that followed GitHub would take every replica out of its Service during a
  GitHub incident, and webhooks would have nowhere to go; passes back off on their own meanwhile.
  Liveness (``GET /healthz``) says only that the process and its event loop work.
- **Held deliveries**: a delivery accepted before discovery completes waits for it, then goes on in
  arrival order, so its repository is checked against installation data (``bot.webhooks``) and not
  against nothing. At most ``MAX_HELD_DELIVERIES`` wait; past that the server answers 503, so GitHub
  records the delivery as failed (and it can be redelivered from the App's settings) rather than Ferry
  dropping it after acknowledging it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from bot.core.backoff import retry_delay
from bot.errors import ExternalError
from bot.github.client import status_of

if TYPE_CHECKING:
    from bot.reconciler import Reconciler
    from bot.server import Deliver, WebhookDelivery

log = logging.getLogger("ferry.startup")

DISCOVERY_BASE_SECONDS: Final = 0.25
SILENT_CAP_SECONDS: Final = 0.5
FAILING_CAP_SECONDS: Final = 5.0
REFUSED_CAP_SECONDS: Final = 60.0
MAX_HELD_DELIVERIES: Final = 1000

MSG_NOT_YET: Final = "discovering the App's installations: GitHub has not answered yet"
MSG_FAILING: Final = "GitHub not reached yet ({attempts}); trying again in {delay:.2g}s: {error}"
MSG_REFUSED: Final = (
    "GitHub refused the App ({attempts}); trying again in {delay:.2g}s: {error} "
    "(check FERRY_APP_ID, FERRY_PRIVATE_KEY or FERRY_PRIVATE_KEY_FILE, and FERRY_GITHUB_URL)"
)
MSG_CRASHED: Final = "discovery failed unexpectedly ({attempts}); trying again in {delay:.2g}s: {error}"
MSG_STOPPING: Final = "shutting down: finishing in-flight deliveries and passes"
MSG_HELD_FULL: Final = (
    "Ferry is starting and already holds {count} deliveries until GitHub answers; "
    "this one is refused so that GitHub records it as failed: redeliver it from the App's settings"
)


@dataclass(frozen=True)
class Discovered:
    """What one discovery found: installations read, repositories known, installations skipped (why)."""

    installations: int
    repositories: int
    skipped: tuple[str, ...] = ()


async def discover(reconciler: Reconciler) -> Discovered:
    """List the App's installations and each one's repositories into ``reconciler.repos``.

    A temporary failure (GitHub down, 5xx, rate limit) fails the whole discovery so it is tried again;
    an installation GitHub refuses for good (suspended, or its token denied) is skipped and named, so one
    broken installation does not keep every other one from being served.
    """
    installations = await reconciler.github.installations()
    skipped: list[str] = []
    for installation_id, account in installations:
        try:
            await reconciler.add_installation(installation_id, reconcile=False)
        except ExternalError as exc:
            if exc.temporary:
                raise
            skipped.append(f"installation {installation_id} ({account}): {exc}")
            log.warning("installation skipped", extra={"installation": installation_id, "error": str(exc)})
    return Discovered(len(installations), len(reconciler.repos), tuple(skipped))


def delay_after(failures: int, error: BaseException) -> float:
    """Seconds before discovery is tried again after its ``failures``-th consecutive failure."""
    if not (isinstance(error, ExternalError) and error.temporary):
        cap = REFUSED_CAP_SECONDS
    elif error.retry_after is None and not answered(error):
        cap = SILENT_CAP_SECONDS
    else:
        cap = FAILING_CAP_SECONDS
    asked = error.retry_after if isinstance(error, ExternalError) else None
    return retry_delay(failures, asked=asked, base=DISCOVERY_BASE_SECONDS, cap=cap)


def answered(error: BaseException) -> bool:
    """Whether GitHub answered the request that failed (with an HTTP status), rather than nothing."""
    cause = error.__cause__
    return isinstance(cause, Exception) and status_of(cause) is not None


@dataclass
class Startup:
    """Discovery in the background, readiness, and the deliveries held until discovery completes.

    ``find`` performs one discovery (``discover`` bound to a reconciler); ``on_ready`` runs once, right
    after the first discovery that completes (it starts the passes and the timer).
    """

    find: Callable[[], Awaitable[Discovered]]
    on_ready: Callable[[Discovered], None]
    max_held: int = MAX_HELD_DELIVERIES
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep
    clock: Callable[[], float] = time.monotonic
    reason: str = field(default=MSG_NOT_YET, init=False)
    failures: int = field(default=0, init=False)  # consecutive failed discoveries
    held: int = field(default=0, init=False)  # deliveries waiting for discovery
    stopping: bool = field(default=False, init=False)
    discovered: Discovered | None = field(default=None, init=False)
    started_at: float = field(default=0.0, init=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, init=False)

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    @property
    def ready(self) -> bool:
        return self.discovered is not None and not self.stopping

    async def discover_once(self) -> Discovered:
        """One discovery; its failure is raised (``ferry sandbox`` and tests, where GitHub is local)."""
        found = await self.find()
        self._complete(found)
        return found

    async def run(self) -> Discovered:
        """Discover until it succeeds, waiting ``delay_after`` each failure; then start everything."""
        while True:
            try:
                found = await self.find()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                delay = delay_after(self.failures, exc)
                self.reason = _reason(self.failures, delay, exc)
                extra = {"attempts": self.failures, "retry_in": round(delay, 3), "error": str(exc)}
                if not isinstance(exc, ExternalError):
                    log.exception("discovery crashed; trying again", extra=extra)
                elif self.failures & (self.failures - 1) == 0:  # 1, 2, 4, 8...: a long outage, few lines
                    log.warning("GitHub not reached; trying again", extra=extra)
                await self.sleep(delay)
                continue
            self._complete(found)
            return found

    def _complete(self, found: Discovered) -> None:
        if self.discovered is not None:
            return
        self.discovered = found
        self.reason = ""
        log.info(
            "installations discovered",
            extra={
                "installations": found.installations,
                "repositories": found.repositories,
                "skipped": list(found.skipped),
                "attempts": self.failures + 1,
                "seconds": round(self.clock() - self.started_at, 3),
                "held_deliveries": self.held,
            },
        )
        self.on_ready(found)
        self._done.set()  # held deliveries go on, in the order they arrived

    def hold(self, deliver: Deliver) -> Deliver:
        """``deliver``, waiting first (bounded by ``admit``) until discovery has completed."""

        async def held(delivery: WebhookDelivery) -> None:
            self.held += 1
            try:
                await self._done.wait()
            finally:
                self.held -= 1
            rest = deliver(delivery)
            if rest is not None:
                await rest

        def deliver_or_hold(delivery: WebhookDelivery) -> Awaitable[None] | None:
            return deliver(delivery) if self._done.is_set() else held(delivery)

        return deliver_or_hold

    def admit(self) -> str | None:
        """None when one more delivery may be accepted; else why the server should answer 503."""
        if self._done.is_set() or self.held < self.max_held:
            return None
        return MSG_HELD_FULL.format(count=self.held)

    def readiness(self) -> tuple[bool, Mapping[str, Any]]:
        """(ready, the body of ``GET /readyz``)."""
        if self.stopping:
            return False, {"ready": False, "reason": MSG_STOPPING}
        found = self.discovered
        if found is None:
            return False, {
                "ready": False,
                "reason": self.reason,
                "attempts": self.failures,
                "held_deliveries": self.held,
                "waiting_seconds": round(self.clock() - self.started_at, 3),
            }
        return True, {
            "ready": True,
            "installations": found.installations,
            "repositories": found.repositories,
            "skipped_installations": list(found.skipped),
        }


def _reason(failures: int, delay: float, error: BaseException) -> str:
    attempts = f"{failures} attempt" + ("" if failures == 1 else "s")
    if isinstance(error, ExternalError):
        template = MSG_FAILING if error.temporary else MSG_REFUSED
    else:
        template = MSG_CRASHED
    return template.format(attempts=attempts, delay=delay, error=error)
