"""Discovery in the background (bot.startup) against the GitHub stand-in: how soon it asks again after each
kind of failure, what /readyz says meanwhile, and the deliveries it holds until GitHub has answered."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.errors import GitHubError
from bot.github.client import GitHubApp
from bot.reconciler import Reconciler
from bot.sandbox.github_standin import GitHubStandIn, _process_app_key
from bot.sandbox.world import free_port
from bot.server import WebhookDelivery
from bot.startup import (
    FAILING_CAP_SECONDS,
    REFUSED_CAP_SECONDS,
    SILENT_CAP_SECONDS,
    Discovered,
    Startup,
    discover,
)

INSTALLATIONS = "/app/installations"
SECONDARY = {"message": "You have exceeded a secondary rate limit. Please wait a few minutes."}


@pytest.fixture
async def github(tmp_path: Path) -> AsyncIterator[GitHubStandIn]:
    async with GitHubStandIn(tmp_path, webhook_secret="s" * 20) as standin:
        await standin.seed({"README.md": b"GitOps\n"})
        yield standin


def reconciler_for(url: str, key: str) -> Reconciler:
    return Reconciler(GitHubApp(app_id=1, private_key=key, base_url=url, timeout=2))


class Waits:
    """A fake ``sleep`` that records each wait and lets the next attempt run at once."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._counted = asyncio.Condition()

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)
        async with self._counted:
            self._counted.notify_all()
        await asyncio.sleep(0)

    async def until(self, count: int, task: asyncio.Task[Discovered]) -> None:
        """Wait (at most 30 s) for ``count`` waits, then stop ``task``."""
        try:
            async with asyncio.timeout(30), self._counted:
                await self._counted.wait_for(lambda: len(self.seconds) >= count)
        except TimeoutError:
            raise AssertionError(f"discovery waited {len(self.seconds)} times, not {count}") from None
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def startup_for(reconciler: Reconciler, waits: Waits, started: list[Discovered]) -> Startup:
    async def find() -> Discovered:
        return await discover(reconciler)

    return Startup(find, started.append, sleep=waits)


async def test_while_nothing_answers_discovery_asks_again_at_least_every_half_second() -> None:
    reconciler = reconciler_for(f"http://127.0.0.1:{free_port()}", _process_app_key())  # nobody listens
    waits, started = Waits(), []
    startup = startup_for(reconciler, waits, started)
    await waits.until(6, asyncio.create_task(startup.run()))
    await reconciler.github.aclose()

    assert waits.seconds[:3] == [0.25, 0.5, 0.5]
    assert max(waits.seconds) <= SILENT_CAP_SECONDS
    ready, body = startup.readiness()
    assert not ready and started == []
    assert "GitHub not reached yet" in body["reason"] and body["attempts"] >= 6


async def test_github_answering_5xx_is_asked_less_often_and_discovery_completes_when_it_recovers(
    github: GitHubStandIn,
) -> None:
    github.fail_next("GET", INSTALLATIONS, 502, times=7)
    reconciler = reconciler_for(github.base_url, github.app_private_key_pem)
    waits, started = Waits(), []
    startup = startup_for(reconciler, waits, started)

    found = await startup.run()
    await reconciler.github.aclose()

    assert waits.seconds == [0.25, 0.5, 1.0, 2.0, 4.0, FAILING_CAP_SECONDS, FAILING_CAP_SECONDS]
    assert found == Discovered(installations=1, repositories=1)
    assert started == [found] and reconciler.repos == {"acme/gitops": 1}
    assert startup.readiness() == (
        True,
        {"ready": True, "installations": 1, "repositories": 1, "skipped_installations": []},
    )


async def test_a_secondary_rate_limit_is_waited_out_as_github_asks(github: GitHubStandIn) -> None:
    github.fail_next("GET", INSTALLATIONS, 403, headers={"Retry-After": "30"}, body=SECONDARY)
    reconciler = reconciler_for(github.base_url, github.app_private_key_pem)
    waits, started = Waits(), []
    startup = startup_for(reconciler, waits, started)
    await waits.until(1, asyncio.create_task(startup.run()))
    await reconciler.github.aclose()

    assert waits.seconds[0] >= 30
    assert "rate limit" in startup.readiness()[1]["reason"]


async def test_github_refusing_the_app_waits_longer_and_says_which_settings_to_check(
    github: GitHubStandIn,
) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = stranger.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()
    reconciler = reconciler_for(github.base_url, pem)  # a key GitHub does not know for this App
    waits, started = Waits(), []
    startup = startup_for(reconciler, waits, started)
    await waits.until(9, asyncio.create_task(startup.run()))
    await reconciler.github.aclose()

    assert waits.seconds[-1] == REFUSED_CAP_SECONDS
    reason = startup.readiness()[1]["reason"]
    assert "GitHub refused the App" in reason and "401" in reason
    assert "FERRY_APP_ID" in reason and "FERRY_PRIVATE_KEY" in reason


class FakeApp:
    """Two installations; GitHub refuses the second one's token for good (a suspended installation)."""

    async def installations(self) -> list[tuple[int, str]]:
        return [(1, "acme"), (2, "suspended-org")]


class FakeReconciler:
    def __init__(self) -> None:
        self.github = FakeApp()
        self.repos: dict[str, int] = {}

    async def add_installation(self, installation_id: int, *, reconcile: bool = True) -> list[str]:
        if installation_id == 2:
            raise GitHubError("GitHub answered 403: This installation has been suspended", temporary=False)
        self.repos["acme/gitops"] = installation_id
        return ["acme/gitops"]


async def test_an_installation_github_refuses_for_good_is_skipped_and_named_not_fatal() -> None:
    found = await discover(FakeReconciler())  # type: ignore[arg-type]
    assert found.installations == 2 and found.repositories == 1
    assert len(found.skipped) == 1 and "suspended-org" in found.skipped[0] and "403" in found.skipped[0]


def delivery(number: int) -> WebhookDelivery:
    return WebhookDelivery("push", f"d-{number}", {"n": number}, time.time())


async def test_deliveries_wait_for_discovery_then_go_on_in_arrival_order() -> None:
    gate = asyncio.Event()

    async def find() -> Discovered:
        await gate.wait()
        return Discovered(1, 1)

    handled: list[str] = []

    async def deliver(d: WebhookDelivery) -> None:
        handled.append(d.delivery_id)

    startup = Startup(find, lambda found: handled.append("discovered"))
    held = startup.hold(deliver)
    waiting = [asyncio.create_task(held(delivery(n))) for n in range(5)]
    await asyncio.sleep(0.05)
    assert handled == [] and startup.held == 5
    assert startup.readiness()[1]["held_deliveries"] == 5

    gate.set()
    await startup.run()
    await asyncio.gather(*waiting)
    assert handled == ["discovered", "d-0", "d-1", "d-2", "d-3", "d-4"]
    assert startup.held == 0

    await held(delivery(5))  # after discovery a delivery goes straight on
    assert handled[-1] == "d-5"


async def test_past_the_bound_deliveries_are_refused_so_github_records_them_as_failed() -> None:
    async def never() -> Discovered:
        await asyncio.Event().wait()
        raise AssertionError

    async def deliver(d: WebhookDelivery) -> None:
        pass

    startup = Startup(never, lambda found: None, max_held=3)
    held = startup.hold(deliver)
    tasks = [asyncio.create_task(held(delivery(n))) for n in range(3)]
    await asyncio.sleep(0.05)

    refusal = startup.admit()
    assert refusal is not None and "redeliver" in refusal

    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert startup.admit() is None


async def test_stopping_makes_readiness_fail_with_the_reason() -> None:
    async def find() -> Discovered:
        return Discovered(1, 2)

    startup = Startup(find, lambda found: None)
    await startup.discover_once()
    assert startup.readiness()[0]
    startup.stopping = True
    ready, body = startup.readiness()
    assert not ready and "shutting down" in body["reason"]
