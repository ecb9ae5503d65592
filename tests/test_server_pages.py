"""GET /healthz, /metrics and the status page, and the server's start and graceful stop."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot import __version__
from bot.errors import SettingsError
from bot.metrics import Metrics
from bot.server import WEBHOOK_PATH, WebhookDelivery, create_app, run_server, signature_for
from bot.settings import Settings
from bot.status_model import Pipeline, StatusView

SECRET = "s3cret-for-pages"
SETTINGS = Settings(webhook_secret=SecretStr(SECRET))


async def ignore(delivery: WebhookDelivery) -> None:
    return None


async def test_healthz_says_ok_and_the_version() -> None:
    async with TestClient(TestServer(create_app(SETTINGS, ignore, metrics=Metrics()))) as client:
        response = await client.get("/healthz")

        assert response.status == 200
        assert await response.json() == {"ok": True, "version": __version__}


async def test_metrics_are_prometheus_text_with_every_family() -> None:
    metrics = Metrics()
    metrics.reconcile_passes.labels("ok").inc()
    metrics.github_requests.labels("GET", "200").inc(3)
    metrics.github_rate_limit_remaining.set(4990)
    metrics.actions.labels("open_pr").inc()
    metrics.sync_latency.observe(0.3)
    metrics.reconcile_duration.observe(1.2)
    async with TestClient(TestServer(create_app(SETTINGS, ignore, metrics=metrics))) as client:
        body = b"{}"
        await client.post(
            WEBHOOK_PATH,
            data=body,
            headers={
                "X-Hub-Signature-256": signature_for(SECRET.encode(), body),
                "X-GitHub-Event": "pull_request",
                "X-GitHub-Delivery": "d-1",
            },
        )
        response = await client.get("/metrics")
        text = await response.text()

    assert response.status == 200
    assert response.content_type == "text/plain"
    for line in [
        'ferry_webhook_deliveries_total{event="pull_request",outcome="accepted"} 1.0',
        'ferry_reconcile_passes_total{outcome="ok"} 1.0',
        'ferry_github_requests_total{method="GET",status="200"} 3.0',
        "ferry_github_rate_limit_remaining 4990.0",
        'ferry_actions_total{kind="open_pr"} 1.0',
        "ferry_sync_latency_seconds_count 1.0",
        "ferry_reconcile_duration_seconds_count 1.0",
    ]:
        assert line in text


def test_two_metrics_objects_do_not_share_counters() -> None:
    first, second = Metrics(), Metrics()

    first.actions.labels("merge").inc()

    assert b'ferry_actions_total{kind="merge"}' in first.render()[0]
    assert b'ferry_actions_total{kind="merge"}' not in second.render()[0]


async def test_the_status_page_is_html_for_people_and_json_for_machines() -> None:
    now = datetime(2026, 11, 26, 14, 0, tzinfo=UTC)

    async def status() -> StatusView:
        return StatusView(
            generated_at=now,
            version=__version__,
            pipelines=(Pipeline("<script>alert(1)</script>", "https://github.com/x", note="a & b"),),
            repositories=("acme/gitops",),
            last_pass={"acme/gitops": {"at": now.isoformat(), "actions": 0}},
        )

    app = create_app(SETTINGS, ignore, metrics=Metrics(), status=status)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/")
        page = await response.text()
        machine = await (await client.get("/status.json")).json()
        asked = await (await client.get("/?format=json")).json()

    assert response.content_type == "text/html"
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "a &amp; b" in page
    assert '<meta http-equiv="refresh" content="30">' in page
    assert machine == asked
    assert machine["repositories"] == ["acme/gitops"]
    assert machine["last_pass"]["acme/gitops"]["at"] == now.isoformat()
    assert machine["pipelines"][0]["note"] == "a & b"


async def test_the_status_page_without_a_reconciler_still_links_health_and_metrics() -> None:
    async with TestClient(TestServer(create_app(SETTINGS, ignore, metrics=Metrics()))) as client:
        page = await (await client.get("/")).text()

    assert 'href="/healthz"' in page
    assert 'href="/metrics"' in page
    assert "No reconciler is attached" in page


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_stopping_the_server_lets_an_in_flight_delivery_finish() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[str] = []

    async def slow(delivery: WebhookDelivery) -> None:
        started.set()
        await release.wait()
        finished.append(delivery.delivery_id)

    port = free_port()
    server = asyncio.create_task(run_server(create_app(SETTINGS, slow, metrics=Metrics()), "127.0.0.1", port))
    body = b'{"ref": "refs/heads/main"}'
    headers = {
        "X-Hub-Signature-256": signature_for(SECRET.encode(), body),
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": "in-flight",
    }
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            try:
                response = await session.post(
                    f"http://127.0.0.1:{port}{WEBHOOK_PATH}", data=body, headers=headers
                )
                break
            except aiohttp.ClientConnectionError:
                await asyncio.sleep(0.01)  # the listener is not up yet
        assert response.status == 202
    await started.wait()

    server.cancel()
    asyncio.get_running_loop().call_soon(release.set)
    await asyncio.gather(server, return_exceptions=True)

    assert finished == ["in-flight"]


async def test_a_port_already_in_use_is_reported_with_the_fix() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        app = create_app(SETTINGS, ignore, metrics=Metrics())

        with pytest.raises(SettingsError, match=f"cannot listen on 127.0.0.1:{port}.*--port"):
            await run_server(app, "127.0.0.1", port)


async def test_a_delivery_still_running_after_the_grace_period_is_cancelled() -> None:
    started = asyncio.Event()
    cancelled: list[bool] = []

    async def stuck(delivery: WebhookDelivery) -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    app = create_app(SETTINGS, stuck, metrics=Metrics(), shutdown_grace=0)
    client = TestClient(TestServer(app))
    await client.start_server()
    body = b"{}"
    await client.post(
        WEBHOOK_PATH,
        data=body,
        headers={
            "X-Hub-Signature-256": signature_for(SECRET.encode(), body),
            "X-GitHub-Event": "push",
            "X-GitHub-Delivery": "stuck",
        },
    )
    await started.wait()

    await client.close()

    assert cancelled == [True]
