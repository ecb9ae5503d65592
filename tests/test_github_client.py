"""The GitHub adapter's HTTP layer: one connection pool, a deadline on every call, GitHub's rate rules.

Real HTTP over loopback where the connection matters (reuse, stalls); httpx's MockTransport where only
the answers do (rate limits, write order).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.errors import GitHubError
from bot.github.client import GitHubApp, call

SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
COMMENTS = "/repos/acme/gitops/issues/1/comments"
API = "https://api.github.test"


@pytest.fixture(scope="module")
def app_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem.decode()


def token_answer(installation: str) -> httpx.Response:
    return httpx.Response(201, json={"token": f"ghs_{installation}", "expires_at": "2099-01-01T00:00:00Z"})


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def get(app: GitHubApp, installation: int, path: str) -> Any:
    return await call(f"reading {path}", app.installation(installation).arequest("GET", path))


async def post(app: GitHubApp, installation: int, path: str) -> Any:
    return await call(f"writing {path}", app.installation(installation).arequest("POST", path, json={}))


# ---- nothing hangs -----------------------------------------------------------------------------


async def silent_server(answer: bytes) -> tuple[asyncio.Server, str]:
    """Accepts connections, reads the request, writes ``answer`` (maybe nothing) and then says nothing."""

    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(answer)
        await asyncio.sleep(3600)

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    "answer",
    [b"", b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"],
    ids=["never answers", "stalls mid-body"],
)
async def test_a_github_that_accepts_and_never_answers_fails_the_call_within_its_deadline(
    app_key: str, answer: bytes
) -> None:
    # With githubkit's HTTP cache on (hishel 1.x), httpx's own timeout is dropped on the way down and
    # this call used to wait forever; the deadline now sits above every library layer.
    server, url = await silent_server(answer)
    app = GitHubApp(app_id=1, private_key=app_key, base_url=url, timeout=0.5)
    started = time.monotonic()
    try:
        with pytest.raises(GitHubError) as caught:
            await asyncio.wait_for(call("reading the App", app.app_client.arequest("GET", "/app")), 10)
    finally:
        await app.aclose()
        server.close()
    assert caught.value.temporary
    assert "within 0.5s" in str(caught.value)
    assert time.monotonic() - started < 5


# ---- one pool --------------------------------------------------------------------------------


@pytest.fixture
async def counting_github() -> AsyncIterator[tuple[str, dict[str, Any]]]:
    """A GitHub that answers anything and records which connection and token each request came on."""
    seen: dict[str, Any] = {"connections": set(), "tokens": []}

    async def handle(request: web.Request) -> web.Response:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen["connections"].add(peer)
        if request.path.endswith("/access_tokens"):
            installation = request.path.split("/")[3]
            return web.json_response(
                {"token": f"ghs_{installation}", "expires_at": "2099-01-01T00:00:00Z"}, status=201
            )
        seen["tokens"].append((request.path, request.headers.get("Authorization", "")))
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    seen["server"] = runner.server
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        await runner.cleanup()


async def test_the_app_and_its_installations_share_one_keep_alive_connection(
    app_key: str, counting_github: tuple[str, dict[str, Any]]
) -> None:
    url, seen = counting_github
    app = GitHubApp(app_id=1, private_key=app_key, base_url=url)
    await call("reading the App", app.app_client.arequest("GET", "/app"))
    for _ in range(5):
        await get(app, 7, "/repos/acme/one")
        await get(app, 8, "/repos/acme/two")
    assert len(seen["connections"]) == 1
    # Each installation still speaks with its own token.
    assert {token for path, token in seen["tokens"] if path == "/repos/acme/one"} == {"token ghs_7"}
    assert {token for path, token in seen["tokens"] if path == "/repos/acme/two"} == {"token ghs_8"}
    server = seen["server"]
    assert server.connections  # kept alive between requests
    await app.aclose()
    for _ in range(100):
        if not server.connections:
            break
        await asyncio.sleep(0.02)
    assert not server.connections, "closing the App closes its connections"


# ---- GitHub's rate rules -------------------------------------------------------------------------


Answer = Callable[[httpx.Request], Awaitable[httpx.Response]]


def mock_github(answer: Answer) -> tuple[httpx.MockTransport, list[str]]:
    """A MockTransport that hands out installation tokens and records every other request it answers."""
    reached: list[str] = []

    async def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/access_tokens"):
            return token_answer(request.url.path.split("/")[3])
        reached.append(f"{request.method} {request.url.path}")
        return await answer(request)

    return httpx.MockTransport(handler), reached


def limited(status: int, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"message": message}, headers=headers)


async def test_a_secondary_rate_limit_without_retry_after_holds_the_installation_a_minute_then_longer(
    app_key: str,
) -> None:
    answers = [limited(403, SECONDARY, **{"x-ratelimit-remaining": "4990"})]

    async def answer(request: httpx.Request) -> httpx.Response:
        return answers.pop(0) if answers else httpx.Response(200, json={})

    transport, reached = mock_github(answer)
    clock = Clock()
    app = GitHubApp(app_id=1, private_key=app_key, base_url=API, transport=transport, clock=clock)
    with pytest.raises(GitHubError) as first:
        await post(app, 1, COMMENTS)
    assert (first.value.temporary, first.value.retry_after) == (True, 60.0)

    # Nothing more is asked of GitHub for that installation until the minute has passed ...
    clock.now += 59
    with pytest.raises(GitHubError) as held:
        await get(app, 1, "/repos/acme/gitops")
    assert held.value.temporary and held.value.retry_after == pytest.approx(1.0)
    assert reached == [f"POST {COMMENTS}"]
    await get(app, 2, "/repos/acme/other")  # ... while another installation goes on

    # A second secondary limit in a row waits twice as long; a success ends the streak.
    clock.now += 1
    answers.append(limited(429, SECONDARY))
    with pytest.raises(GitHubError):
        await post(app, 1, COMMENTS)
    clock.now += 119
    with pytest.raises(GitHubError) as longer:
        await get(app, 1, "/repos/acme/gitops")
    assert longer.value.retry_after == pytest.approx(1.0)
    clock.now += 1
    await get(app, 1, "/repos/acme/gitops")
    answers.append(limited(403, SECONDARY))
    with pytest.raises(GitHubError) as fresh:
        await post(app, 1, COMMENTS)
    assert fresh.value.retry_after == 60.0
    clock.now += 60
    await get(app, 1, "/repos/acme/gitops")
    await app.aclose()


async def test_a_secondary_rate_limit_with_retry_after_waits_what_github_asked(app_key: str) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        return limited(403, SECONDARY, **{"Retry-After": "7", "x-ratelimit-remaining": "12"})

    transport, _ = mock_github(answer)
    app = GitHubApp(app_id=1, private_key=app_key, base_url=API, transport=transport)
    with pytest.raises(GitHubError) as caught:
        await post(app, 1, COMMENTS)
    await app.aclose()
    assert (caught.value.temporary, caught.value.retry_after) == (True, 7.0)
    assert "secondary rate limit" in str(caught.value)


async def test_a_primary_rate_limit_waits_until_github_resets_it(app_key: str) -> None:
    reset = int(time.time()) + 100

    async def answer(request: httpx.Request) -> httpx.Response:
        headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)}
        return limited(403, "API rate limit exceeded for installation ID 1.", **headers)

    transport, _ = mock_github(answer)
    app = GitHubApp(app_id=1, private_key=app_key, base_url=API, transport=transport)
    with pytest.raises(GitHubError) as caught:
        await get(app, 1, "/repos/acme/gitops")
    await app.aclose()
    assert caught.value.temporary
    assert caught.value.retry_after == pytest.approx(100, abs=3)
    assert "primary rate limit" in str(caught.value)


async def test_a_refusal_that_is_no_rate_limit_is_permanent_and_holds_nothing(app_key: str) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return limited(403, "Resource not accessible by integration", **{"x-ratelimit-remaining": "4000"})
        return httpx.Response(200, json={})

    transport, reached = mock_github(answer)
    app = GitHubApp(app_id=1, private_key=app_key, base_url=API, transport=transport)
    with pytest.raises(GitHubError) as caught:
        await post(app, 1, COMMENTS)
    await get(app, 1, "/repos/acme/gitops")
    await app.aclose()
    assert not caught.value.temporary
    assert len(reached) == 2


async def test_content_creating_requests_go_one_at_a_time_per_installation(app_key: str) -> None:
    in_flight: dict[str, int] = {"POST": 0, "GET": 0}
    most: dict[str, int] = {"POST": 0, "GET": 0}

    async def answer(request: httpx.Request) -> httpx.Response:
        in_flight[request.method] += 1
        most[request.method] = max(most[request.method], in_flight[request.method])
        await asyncio.sleep(0.02)
        in_flight[request.method] -= 1
        return httpx.Response(201 if request.method == "POST" else 200, json={})

    transport, _ = mock_github(answer)
    app = GitHubApp(app_id=1, private_key=app_key, base_url=API, transport=transport)
    await get(app, 1, "/repos/acme/gitops")  # the token first, so the burst below is all ours
    await asyncio.gather(
        *(post(app, 1, COMMENTS) for _ in range(5)),
        *(get(app, 1, f"/repos/acme/gitops/{i}") for i in range(5)),
    )
    await app.aclose()
    assert most["POST"] == 1
    assert most["GET"] > 1


async def test_the_request_counter_sees_every_answer_once(app_key: str) -> None:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=json.dumps({}).encode())

    transport, _ = mock_github(answer)
    app = GitHubApp(app_id=1, private_key=app_key, base_url=API, transport=transport)
    for _ in range(3):
        await get(app, 1, "/repos/acme/gitops")
    await app.aclose()
    assert app.counter.by_route["GET /repos/acme/gitops"] == 3
