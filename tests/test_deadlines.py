"""Nothing hangs: every outside call has a deadline over the whole exchange, and slow clients are dropped.

Real sockets on 127.0.0.1: a server that trickles its answer one byte at a time (each read arrives well
inside httpx's per-read timeout, so only a deadline over the whole answer ends it), and raw clients
that send half a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest

from bot.argocd import ArgoCDClient
from bot.call_deadlines import ARGOCD, CALLS, REGISTRY
from bot.errors import ArgoCDError, RegistryError
from bot.metrics import Metrics
from bot.registry import RegistryClient
from bot.server import SIGNATURE_HEADER, WEBHOOK_PATH, create_app, run_server
from bot.settings import ArgoCDServer, Settings

TRICKLE_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"


@contextlib.asynccontextmanager
async def trickling_server() -> AsyncIterator[str]:
    """Answers every request with headers, then one body byte every 50 ms, forever."""

    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(TRICKLE_HEAD)
        with contextlib.suppress(ConnectionError):
            while True:
                writer.write(b" ")
                await writer.drain()
                await asyncio.sleep(0.05)

    server = await asyncio.start_server(trickle, "127.0.0.1", 0)
    try:
        yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        server.close()


async def no_sleep(seconds: float) -> None:
    return None


async def test_an_argocd_trickling_its_answer_is_a_temporary_failure_at_the_deadline() -> None:
    async with trickling_server() as host:
        server = ArgoCDServer(url=f"http://{host}", token="t", timeout=0.3)  # type: ignore[arg-type]
        started = time.monotonic()
        async with ArgoCDClient({"in-cluster": server}, max_retries=1, sleep=no_sleep) as client:
            with pytest.raises(ArgoCDError) as caught:
                await asyncio.wait_for(client.get_app("in-cluster", "shop-dev"), 10)
    assert caught.value.temporary
    assert "did not answer within 0.3s" in str(caught.value)
    assert time.monotonic() - started < 3  # two attempts of 0.3 s each


async def test_a_registry_trickling_its_answer_is_a_temporary_failure_at_the_deadline() -> None:
    async with trickling_server() as host:
        started = time.monotonic()
        async with RegistryClient(timeout=0.3, max_retries=1, sleep=no_sleep) as client:
            with pytest.raises(RegistryError) as caught:
                await asyncio.wait_for(client.list_tags(f"{host}/acme/web"), 10)
    assert caught.value.temporary
    assert "no answer within 0.3s" in str(caught.value)
    assert time.monotonic() - started < 3


async def test_the_longest_call_each_service_took_is_recorded_and_stops_at_its_deadline() -> None:
    CALLS.reset()
    async with trickling_server() as host:
        server = ArgoCDServer(url=f"http://{host}", token="t", timeout=0.3)  # type: ignore[arg-type]
        async with ArgoCDClient({"in-cluster": server}, max_retries=0, sleep=no_sleep) as argocd:
            with pytest.raises(ArgoCDError):
                await asyncio.wait_for(argocd.get_app("in-cluster", "shop-dev"), 10)
        async with RegistryClient(timeout=0.2, max_retries=0, sleep=no_sleep) as registry:
            with pytest.raises(RegistryError):
                await asyncio.wait_for(registry.list_tags(f"{host}/acme/web"), 10)
    assert CALLS.deadline == {ARGOCD: 0.3, REGISTRY: 0.2}
    assert 0.3 <= CALLS.longest[ARGOCD] < 0.3 + 1.0  # cut at the deadline (a busy loop may be late)
    assert 0.2 <= CALLS.longest[REGISTRY] < 0.2 + 1.0


# ---- slow clients ----------------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def serving(header_timeout: float, body_timeout: float) -> AsyncIterator[int]:
    settings = Settings(webhook_secret="s" * 32)  # type: ignore[arg-type]

    async def deliver(delivery: object) -> None:
        return None

    app = create_app(settings, deliver, metrics=Metrics(), body_timeout=body_timeout)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    task = asyncio.get_running_loop().create_task(
        run_server(app, "127.0.0.1", port, header_timeout=header_timeout)
    )
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        break
    try:
        yield port
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def read_until_closed(reader: asyncio.StreamReader, within: float) -> bytes:
    """What the server sends until it closes the connection; fails if still open after ``within``."""
    return await asyncio.wait_for(reader.read(), within)


async def test_a_client_that_sends_half_its_headers_is_dropped_within_the_header_timeout() -> None:
    async with serving(header_timeout=0.5, body_timeout=5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: ferry\r\nContent-Le".encode())
        await writer.drain()
        assert await read_until_closed(reader, 5) == b""
        assert time.monotonic() - started < 3
        writer.close()


async def test_a_webhook_whose_body_stops_halfway_gets_408_within_the_body_timeout() -> None:
    async with serving(header_timeout=5, body_timeout=0.5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()
        writer.write(
            (
                f"POST {WEBHOOK_PATH} HTTP/1.1\r\nHost: ferry\r\nContent-Type: application/json\r\n"
                f"{SIGNATURE_HEADER}: sha256=00\r\nContent-Length: 100\r\n\r\n" + '{"zen": '
            ).encode()
        )
        await writer.drain()
        answer = await read_until_closed(reader, 5)
        assert answer.startswith(b"HTTP/1.1 408")
        assert b"did not arrive within 0.5s" in answer
        assert time.monotonic() - started < 3
        writer.close()


async def test_a_connection_that_never_sends_anything_is_closed_too() -> None:
    async with serving(header_timeout=0.5, body_timeout=5) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        assert await read_until_closed(reader, 5) == b""
        writer.close()
