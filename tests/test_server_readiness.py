"""GET /readyz apart from /healthz, and a signed delivery refused with 503 while Ferry cannot hold more."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot import __version__
from bot.metrics import OUTCOME_BUSY, Metrics
from bot.server import HEALTH_PATH, READY_PATH, WEBHOOK_PATH, WebhookDelivery, create_app, signature_for
from bot.settings import Settings

SECRET = "s3cret-for-readiness"
SETTINGS = Settings(webhook_secret=SecretStr(SECRET))
NOT_YET = {"ready": False, "reason": "GitHub not reached yet (3 attempts)", "attempts": 3}


def signed(body: bytes, delivery_id: str) -> dict[str, str]:
    return {
        "X-Hub-Signature-256": signature_for(SECRET.encode(), body),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery_id,
    }


async def test_readyz_is_503_with_the_reason_while_healthz_is_200() -> None:
    def not_ready() -> tuple[bool, Mapping[str, Any]]:
        return False, NOT_YET

    app = create_app(SETTINGS, _ignore, metrics=Metrics(), ready=not_ready)
    async with TestClient(TestServer(app)) as client:
        live = await client.get(HEALTH_PATH)
        ready = await client.get(READY_PATH)

        assert live.status == 200
        assert ready.status == 503
        assert await ready.json() == {**NOT_YET, "version": __version__}


async def test_readyz_is_200_once_ready_and_without_a_runtime() -> None:
    def is_ready() -> tuple[bool, Mapping[str, Any]]:
        return True, {"ready": True, "installations": 1}

    for ready in (is_ready, None):
        async with TestClient(TestServer(create_app(SETTINGS, _ignore, metrics=Metrics(), ready=ready))) as c:
            response = await c.get(READY_PATH)
            assert response.status == 200
            assert (await response.json())["ready"] is True


async def test_a_delivery_past_the_bound_is_refused_with_503_and_not_run() -> None:
    ran: list[str] = []
    refusal: list[str | None] = [None]

    async def deliver(delivery: WebhookDelivery) -> None:
        ran.append(delivery.delivery_id)

    metrics = Metrics()
    app = create_app(SETTINGS, deliver, metrics=metrics, admit=lambda: refusal[0])
    async with TestClient(TestServer(app)) as client:
        body = b'{"ref": "refs/heads/main"}'
        accepted = await client.post(WEBHOOK_PATH, data=body, headers=signed(body, "d-1"))
        refusal[0] = "Ferry is starting and already holds 1000 deliveries"
        refused = await client.post(WEBHOOK_PATH, data=body, headers=signed(body, "d-2"))
        refusal[0] = None
        redelivered = await client.post(WEBHOOK_PATH, data=body, headers=signed(body, "d-2"))

        assert accepted.status == 202
        assert refused.status == 503
        assert (await refused.json())["message"] == "Ferry is starting and already holds 1000 deliveries"
        assert redelivered.status == 202  # not remembered as seen: GitHub's redelivery is taken
    assert ran == ["d-1", "d-2"]
    assert metrics.deliveries.labels("push", OUTCOME_BUSY)._value.get() == 1


async def _ignore(delivery: WebhookDelivery) -> None:
    return None
