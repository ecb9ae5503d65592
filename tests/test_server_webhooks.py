"""POST /webhooks/github: every real payload, signed and not, and the bad input GitHub never sends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from pydantic import SecretStr

from bot.metrics import Metrics
from bot.server import (
    MSG_BAD_SIGNATURE,
    WEBHOOK_PATH,
    WebhookDelivery,
    create_app,
    signature_for,
    wait_for_deliveries,
)
from bot.settings import Settings

SECRET = "It's a Secret to Everybody"
CONTRACTS = Path(__file__).resolve().parent / "fixtures" / "github-webhooks"
# (file name, event name, raw bytes) of every real payload; the event is the name's part before the first dot.
PAYLOADS = [
    (path.name, path.name.split(".", 1)[0], path.read_bytes()) for path in sorted(CONTRACTS.glob("*.json"))
]
PUSH = (CONTRACTS / "push.json").read_bytes()


class RecordingDeliver:
    """A deliver callable that records what it was given, and raises when told to. ``at_once``: it deals
    with a delivery before returning (as Ferry's router does with a push: a pass queued); otherwise it
    returns work the server runs off the request path (a command to answer, a merge to sync)."""

    def __init__(self, at_once: bool = False) -> None:
        self.deliveries: list[WebhookDelivery] = []
        self.fail_next = False
        self.at_once = at_once

    def __call__(self, delivery: WebhookDelivery) -> Awaitable[None] | None:
        if self.at_once:
            self._record(delivery)
            return None
        return self._later(delivery)

    async def _later(self, delivery: WebhookDelivery) -> None:
        await asyncio.sleep(0)  # it waits for something, as real work does
        self._record(delivery)

    def _record(self, delivery: WebhookDelivery) -> None:
        self.deliveries.append(delivery)
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("the reconciler fell over")


class Harness:
    def __init__(self, client: TestClient[web.Request, web.Application], deliver: RecordingDeliver) -> None:
        self.client = client
        self.deliver = deliver
        self.count = 0

    @property
    def app(self) -> web.Application:
        return self.client.app

    async def post(
        self,
        body: bytes,
        event: str = "push",
        *,
        delivery_id: str | None = None,
        signature: str | None = "",
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        self.count += 1
        sent = {
            "X-GitHub-Event": event,
            "X-GitHub-Delivery": delivery_id or f"delivery-{self.count}",
            "Content-Type": "application/json",
        }
        if signature == "":
            sent["X-Hub-Signature-256"] = signature_for(SECRET.encode(), body)
        elif signature is not None:
            sent["X-Hub-Signature-256"] = signature
        sent.update(headers or {})
        response = await self.client.post(WEBHOOK_PATH, data=body, headers=sent)
        answer = await response.json()
        await wait_for_deliveries(self.app)
        return response.status, answer

    async def metrics_text(self) -> str:
        response = await self.client.get("/metrics")
        return await response.text()


@pytest.fixture(params=["at once", "off the request path"])
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    deliver = RecordingDeliver(at_once=request.param == "at once")
    app = create_app(Settings(webhook_secret=SecretStr(SECRET)), deliver, metrics=Metrics())
    async with TestClient(TestServer(app)) as client:
        yield Harness(client, deliver)


def test_the_contracts_folder_holds_payloads() -> None:
    assert len(PAYLOADS) > 20, "the github-webhooks contracts are missing"


@pytest.mark.parametrize(("name", "event", "body"), PAYLOADS, ids=[name for name, _, _ in PAYLOADS])
async def test_every_real_payload_signed_is_acknowledged_and_delivered_once(
    harness: Harness, name: str, event: str, body: bytes
) -> None:
    status, answer = await harness.post(body, event, delivery_id="72d3162e-cc78-11e3-81ab-4c9367dc0958")

    if event == "ping":
        assert (status, answer) == (200, {"ok": True, "zen": json.loads(body)["zen"]})
        assert harness.deliver.deliveries == []
    else:
        assert status == 202
        [delivery] = harness.deliver.deliveries
        assert delivery.event == event
        assert delivery.delivery_id == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
        assert delivery.payload == json.loads(body)


@pytest.mark.parametrize(("name", "event", "body"), PAYLOADS, ids=[name for name, _, _ in PAYLOADS])
async def test_every_real_payload_unsigned_is_refused_and_not_delivered(
    harness: Harness, name: str, event: str, body: bytes
) -> None:
    status, answer = await harness.post(body, event, signature=None)

    assert status == 401
    assert "X-Hub-Signature-256" in answer["message"]
    assert harness.deliver.deliveries == []


@pytest.mark.parametrize(("name", "event", "body"), PAYLOADS, ids=[name for name, _, _ in PAYLOADS])
async def test_every_real_payload_wrongly_signed_is_refused_and_not_delivered(
    harness: Harness, name: str, event: str, body: bytes
) -> None:
    wrong_secret = signature_for(b"not the secret", body)

    status, answer = await harness.post(body, event, signature=wrong_secret)

    assert (status, answer["message"]) == (401, MSG_BAD_SIGNATURE)
    assert harness.deliver.deliveries == []


async def test_a_signature_over_a_different_body_is_refused(harness: Harness) -> None:
    signed_for_other = signature_for(SECRET.encode(), b'{"action": "opened"}')

    status, _ = await harness.post(b'{"action": "closed"}', signature=signed_for_other)

    assert status == 401
    assert harness.deliver.deliveries == []


@pytest.mark.parametrize(
    "signature", ["sha1=0123", "sha256=", "sha256=zz", "0" * 64, "sha256=é", "sha256=" + "0" * 64]
)
async def test_garbage_signatures_are_refused(harness: Harness, signature: str) -> None:
    status, _ = await harness.post(b"{}", signature=signature)

    assert status == 401
    assert harness.deliver.deliveries == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b'{"action": "opened"', "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
        (b'["a list"]', "not an object"),
        (b"42", "not an object"),
    ],
    ids=["truncated", "empty", "not-utf8", "deeply-nested", "list", "number"],
)
async def test_signed_but_malformed_json_is_a_bad_request(harness: Harness, body: bytes, reason: str) -> None:
    status, answer = await harness.post(body)

    assert status == 400
    assert reason in answer["message"]
    assert harness.deliver.deliveries == []


async def test_a_form_encoded_delivery_says_to_switch_to_json(harness: Harness) -> None:
    status, answer = await harness.post(
        b"payload=%7B%7D", headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert status == 400
    assert "application/json" in answer["message"]


@pytest.mark.parametrize("missing", ["X-GitHub-Event", "X-GitHub-Delivery"])
async def test_a_signed_delivery_without_event_or_id_is_a_bad_request(harness: Harness, missing: str) -> None:
    status, answer = await harness.post(b"{}", headers={missing: ""})

    assert status == 400
    assert missing in answer["message"]
    assert harness.deliver.deliveries == []


async def test_the_same_delivery_id_twice_is_delivered_once(harness: Harness) -> None:
    first = await harness.post(PUSH, delivery_id="same-id")
    second = await harness.post(PUSH, delivery_id="same-id")

    assert first[0] == 202
    assert second == (200, {"ok": True, "duplicate": True, "delivery": "same-id"})
    assert len(harness.deliver.deliveries) == 1
    assert (
        'ferry_webhook_deliveries_total{event="push",outcome="duplicate"} 1.0' in await harness.metrics_text()
    )


async def test_a_failing_delivery_is_counted_and_the_server_keeps_answering(harness: Harness) -> None:
    harness.deliver.fail_next = True

    status, _ = await harness.post(b'{"n": 1}')
    after, _ = await harness.post(b'{"n": 2}')
    health = await harness.client.get("/healthz")

    assert (status, after, health.status) == (202, 202, 200)
    assert len(harness.deliver.deliveries) == 2
    text = await harness.metrics_text()
    assert 'ferry_webhook_deliveries_total{event="push",outcome="failed"} 1.0' in text
    assert 'ferry_webhook_deliveries_total{event="push",outcome="accepted"} 2.0' in text


async def test_a_failed_delivery_is_retried_when_github_redelivers_it(harness: Harness) -> None:
    harness.deliver.fail_next = True

    await harness.post(b"{}", delivery_id="flaky")
    status, _ = await harness.post(b"{}", delivery_id="flaky")

    assert status == 202
    assert len(harness.deliver.deliveries) == 2


async def test_a_body_over_the_cap_declared_in_content_length_is_refused_unread(harness: Harness) -> None:
    server = harness.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    # Headers only: a server that tried to read the declared 26 MB would never answer.
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {server.host}\r\nContent-Length: {26 * 1024 * 1024}\r\n"
        "X-Hub-Signature-256: sha256=00\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\n\r\n".encode()
    )
    await writer.drain()

    status_line = await asyncio.wait_for(reader.readline(), timeout=30)

    writer.close()
    assert status_line.split()[1] == b"413"
    assert harness.deliver.deliveries == []


async def test_a_chunked_body_over_the_cap_is_cut_off_without_being_buffered(harness: Harness) -> None:
    server = harness.client.server
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(
        f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: {server.host}\r\nTransfer-Encoding: chunked\r\n"
        "X-Hub-Signature-256: sha256=00\r\nX-GitHub-Event: push\r\nX-GitHub-Delivery: big\r\n\r\n".encode()
    )
    megabyte = b" " * (1024 * 1024)
    chunk = f"{len(megabyte):x}\r\n".encode() + megabyte + b"\r\n"

    async def send_26_megabytes_and_never_finish() -> None:
        for _ in range(26):
            writer.write(chunk)
            await writer.drain()
        await asyncio.Event().wait()  # no terminating chunk: a server that buffers the whole body hangs

    sending = asyncio.create_task(send_26_megabytes_and_never_finish())
    try:
        status_line = await asyncio.wait_for(reader.readline(), timeout=30)
    finally:
        sending.cancel()
        writer.close()

    assert status_line.split()[1] == b"413"
    assert harness.deliver.deliveries == []
    assert 'outcome="too_large"} 1.0' in await harness.metrics_text()


async def test_a_body_exactly_at_the_cap_is_read_and_checked() -> None:
    deliver = RecordingDeliver()
    app = create_app(
        Settings(webhook_secret=SecretStr(SECRET)), deliver, metrics=Metrics(), max_body_bytes=64
    )
    async with TestClient(TestServer(app)) as client:
        harness = Harness(client, deliver)
        at_cap = b'{"pad": "' + b"x" * 53 + b'"}'
        over_cap = b'{"pad": "' + b"x" * 54 + b'"}'

        assert len(at_cap) == 64
        assert (await harness.post(at_cap))[0] == 202
        assert (await harness.post(over_cap))[0] == 413


async def test_rejections_are_counted_under_an_untrusted_event_label(harness: Harness) -> None:
    await harness.post(b"{}", event="made-up-event-name", signature=None)
    await harness.post(b"{}", event="made-up-event-name", signature="sha256=" + "0" * 64)

    text = await harness.metrics_text()

    assert "made-up-event-name" not in text
    assert 'ferry_webhook_deliveries_total{event="unverified",outcome="unsigned"} 1.0' in text
    assert 'ferry_webhook_deliveries_total{event="unverified",outcome="bad_signature"} 1.0' in text
