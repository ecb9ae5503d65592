"""The registry client on responses shaped like Docker Hub's and ghcr.io's (respx), with a fake clock.

Distribution 2.8 (the real registry in test_registry_real.py) runs without auth and ignores ``n=``,
so token auth, pagination, retries and rate caps are exercised here.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
import respx
from pydantic import SecretStr

from bot.cli.select import registry_access_from_env
from bot.core.config import ImageRule, Warehouse
from bot.core.selection import TagRule
from bot.errors import RegistryError, SettingsError
from bot.registry import MANIFEST_MEDIA_TYPES, RegistryClient, discover_freight
from bot.registry_auth import is_loopback, next_link, parse_challenge, parse_retry_after
from bot.settings import RegistryAccess

HUB_CHALLENGE = 'Bearer realm="https://auth.docker.io/token",service="registry.docker.io"'
GHCR_CHALLENGE = 'Bearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:user/image:pull"'
DIGEST = "sha256:" + "ab" * 32
OTHER_DIGEST = "sha256:" + "cd" * 32


class FakeTime:
    """A clock that moves only when the client sleeps; every sleep is recorded."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as router:
        yield router


def client_for(
    fake_time: FakeTime, access: dict[str, RegistryAccess] | None = None, **kw: object
) -> RegistryClient:
    return RegistryClient(access, sleep=fake_time.sleep, clock=fake_time.clock, **kw)  # type: ignore[arg-type]


def bearer_protected(token: str, body: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    """A route handler that answers ``body`` only to requests carrying the bearer token."""

    def handler(request: httpx.Request) -> httpx.Response:
        if request.headers.get("Authorization") != f"Bearer {token}":
            return httpx.Response(401, headers={"WWW-Authenticate": HUB_CHALLENGE})
        return body

    return handler


def serve_docker_hub(mock: respx.MockRouter, tags: list[str]) -> respx.Route:
    mock.get("https://registry-1.docker.io/v2/").respond(401, headers={"WWW-Authenticate": HUB_CHALLENGE})
    token = mock.get("https://auth.docker.io/token").respond(
        200,
        json={
            "token": "hub-token",
            "access_token": "hub-token",
            "expires_in": 300,
            "issued_at": "2024-06-11T10:00:00Z",
        },
    )
    mock.get("https://registry-1.docker.io/v2/library/nginx/tags/list").mock(
        side_effect=bearer_protected(
            "hub-token", httpx.Response(200, json={"name": "library/nginx", "tags": tags})
        )
    )
    mock.head("https://registry-1.docker.io/v2/library/nginx/manifests/1.27.1").mock(
        side_effect=bearer_protected(
            "hub-token", httpx.Response(200, headers={"Docker-Content-Digest": DIGEST})
        )
    )
    return token


async def test_docker_hub_official_images_are_listed_from_registry_1_with_an_anonymous_token(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    token = serve_docker_hub(mock, ["1.27.1", "latest"])
    async with client_for(fake_time) as client:
        assert await client.list_tags("nginx") == ["1.27.1", "latest"]
    assert token.call_count == 1
    params = token.calls[0].request.url.params
    assert (params["scope"], params["service"]) == ("repository:library/nginx:pull", "registry.docker.io")
    assert "Authorization" not in token.calls[0].request.headers  # anonymous: no credentials configured


async def test_a_token_is_reused_until_it_expires(mock: respx.MockRouter, fake_time: FakeTime) -> None:
    token = serve_docker_hub(mock, ["1.27.1"])
    async with client_for(fake_time) as client:
        await client.list_tags("docker.io/library/nginx")
        await client.digest("nginx", "1.27.1")
        assert token.call_count == 1
        fake_time.now += 300
        await client.list_tags("nginx")
    assert token.call_count == 2


async def test_ghcr_tags_are_followed_across_relative_link_pages_in_any_order(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(401, headers={"WWW-Authenticate": GHCR_CHALLENGE})
    mock.get("https://ghcr.io/token").respond(200, json={"token": "djE6YWNtZQ=="})
    pages = mock.get("https://ghcr.io/v2/acme/web/tags/list")
    pages.side_effect = [
        httpx.Response(
            200,
            json={"name": "acme/web", "tags": ["1.10.0", "1.9.0"]},
            headers={"Link": '</v2/acme/web/tags/list?last=1.9.0&n=1000>; rel="next"'},
        ),
        httpx.Response(
            200,
            json={"name": "acme/web", "tags": ["1.2.0", "1.9.0"]},
            headers={"Link": '<https://ghcr.io/v2/acme/web/tags/list?last=1.2.0&n=1000>; rel="next"'},
        ),
        httpx.Response(200, json={"name": "acme/web", "tags": None}),
    ]
    async with client_for(fake_time) as client:
        assert sorted(await client.list_tags("ghcr.io/acme/web")) == ["1.10.0", "1.2.0", "1.9.0"]
        # ping, token, three pages: the token answered for the first page serves the rest
        assert client.requests_made == 5
    assert pages.calls[1].request.url.params["last"] == "1.9.0"
    assert all(c.request.headers["Authorization"] == "Bearer djE6YWNtZQ==" for c in pages.calls)


async def test_a_link_to_another_host_is_refused_so_tokens_stay_home(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(200)
    mock.get("https://ghcr.io/v2/acme/web/tags/list").respond(
        200,
        json={"tags": ["1"]},
        headers={"Link": '<https://evil.example/v2/acme/web/tags/list?last=1>; rel="next"'},
    )
    async with client_for(fake_time) as client:
        with pytest.raises(RegistryError, match="to another host"):
            await client.list_tags("ghcr.io/acme/web")


async def test_configured_credentials_are_sent_to_the_token_service(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(401, headers={"WWW-Authenticate": GHCR_CHALLENGE})
    token = mock.get("https://ghcr.io/token").respond(200, json={"token": "private"})
    mock.get("https://ghcr.io/v2/acme/private/tags/list").respond(200, json={"tags": ["2.0.0"]})
    access = {"ghcr.io": RegistryAccess(username="ferry-bot", password=SecretStr("ghp_s3cret"))}
    async with client_for(fake_time, access) as client:
        await client.list_tags("ghcr.io/acme/private")
    expected = "Basic " + base64.b64encode(b"ferry-bot:ghp_s3cret").decode()
    assert token.calls[0].request.headers["Authorization"] == expected


async def test_basic_auth_registries_get_the_credentials_on_every_request_and_never_in_messages(
    mock: respx.MockRouter, fake_time: FakeTime, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    mock.get("https://registry.acme.internal/v2/").respond(
        401, headers={"WWW-Authenticate": 'Basic realm="acme"'}
    )
    tags = mock.get("https://registry.acme.internal/v2/team/app/tags/list").respond(200, json={"tags": ["1"]})
    mock.head("https://registry.acme.internal/v2/team/app/manifests/1").respond(
        403, json={"errors": [{"code": "DENIED"}]}
    )
    access = {"registry.acme.internal": RegistryAccess(username="robot", password=SecretStr("hunter2"))}
    async with client_for(fake_time, access) as client:
        await client.list_tags("registry.acme.internal/team/app")
        with pytest.raises(RegistryError) as caught:
            await client.digest("registry.acme.internal/team/app", "1")
    assert tags.calls[0].request.headers["Authorization"].startswith("Basic ")
    message = str(caught.value)
    assert (
        'registry "registry.acme.internal" refused access to repository "team/app" (HTTP 403 DENIED)'
        in message
    )
    assert not caught.value.temporary
    secret_forms = ("hunter2", base64.b64encode(b"robot:hunter2").decode())
    assert not any(s in message or s in caplog.text for s in secret_forms)


async def test_digest_is_taken_from_a_head_with_every_manifest_media_type_accepted(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("http://127.0.0.1:5000/v2/").respond(200)
    head = mock.head("http://127.0.0.1:5000/v2/acme/web/manifests/1.0.0").respond(
        200, headers={"Docker-Content-Digest": DIGEST}
    )
    async with client_for(fake_time) as client:
        assert await client.digest("127.0.0.1:5000/acme/web", "1.0.0") == DIGEST
    accepted = head.calls[0].request.headers["Accept"]
    assert all(media_type in accepted for media_type in MANIFEST_MEDIA_TYPES)


async def test_without_a_digest_header_the_digest_is_the_hash_of_the_manifest(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    manifest = b'{"schemaVersion":2}'
    mock.get("http://localhost:5000/v2/").respond(200)
    mock.head("http://localhost:5000/v2/acme/web/manifests/1.0.0").respond(200)
    mock.get("http://localhost:5000/v2/acme/web/manifests/1.0.0").respond(200, content=manifest)
    async with client_for(fake_time) as client:
        digest = await client.digest("localhost:5000/acme/web", "1.0.0")
    assert digest == "sha256:" + hashlib.sha256(manifest).hexdigest()


@pytest.mark.parametrize(
    ("registry", "access", "scheme"),
    [
        ("127.0.0.1:5000", None, "http"),
        ("localhost:5000", None, "http"),
        ("[::1]:5000", None, "http"),
        ("registry.acme.internal", RegistryAccess(insecure=True), "http"),
        ("registry.acme.internal", None, "https"),
        ("127.0.0.1.nip.io", None, "https"),
    ],
)
async def test_plain_http_only_for_loopback_or_registries_marked_insecure(
    mock: respx.MockRouter, fake_time: FakeTime, registry: str, access: RegistryAccess | None, scheme: str
) -> None:
    ping = mock.get(f"{scheme}://{registry}/v2/").respond(200)
    mock.get(f"{scheme}://{registry}/v2/acme/web/tags/list").respond(200, json={"tags": ["1"]})
    async with client_for(fake_time, {registry: access} if access else None) as client:
        assert await client.list_tags(f"{registry}/acme/web") == ["1"]
    assert ping.called


async def test_429_is_retried_after_the_delay_the_registry_asked_for(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(200)
    tags = mock.get("https://ghcr.io/v2/acme/web/tags/list")
    tags.side_effect = [
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(200, json={"tags": ["1"]}),
    ]
    async with client_for(fake_time) as client:
        assert await client.list_tags("ghcr.io/acme/web") == ["1"]
    assert fake_time.sleeps == [7.0]


async def test_5xx_is_retried_with_exponential_backoff(mock: respx.MockRouter, fake_time: FakeTime) -> None:
    mock.get("https://ghcr.io/v2/").respond(200)
    tags = mock.get("https://ghcr.io/v2/acme/web/tags/list")
    tags.side_effect = [httpx.Response(503), httpx.Response(502), httpx.Response(200, json={"tags": ["1"]})]
    async with client_for(fake_time) as client:
        assert await client.list_tags("ghcr.io/acme/web") == ["1"]
    assert fake_time.sleeps == [0.5, 1.0]


async def test_a_registry_failing_every_retry_is_a_temporary_error_naming_registry_and_image(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(200)
    mock.get("https://ghcr.io/v2/acme/web/tags/list").respond(503)
    async with client_for(fake_time, max_retries=3) as client:
        with pytest.raises(RegistryError) as caught:
            await client.list_tags("ghcr.io/acme/web")
    assert caught.value.temporary
    assert str(caught.value).startswith(
        'registry "ghcr.io" answered HTTP 503 for image "ghcr.io/acme/web" (4 attempts): it is busy'
    )
    assert fake_time.sleeps == [0.5, 1.0, 2.0]


async def test_a_long_retry_after_is_handed_back_instead_of_slept_on(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(200)
    mock.get("https://ghcr.io/v2/acme/web/tags/list").respond(429, headers={"Retry-After": "3600"})
    async with client_for(fake_time) as client:
        with pytest.raises(RegistryError) as caught:
            await client.list_tags("ghcr.io/acme/web")
    assert (caught.value.temporary, caught.value.retry_after, fake_time.sleeps) == (True, 3600.0, [])


@pytest.mark.parametrize(
    ("failure", "problem"),
    [
        (httpx.ConnectError("Connection refused"), "ConnectError: Connection refused"),
        (httpx.ReadTimeout("slow"), "no answer within 10s"),
    ],
)
async def test_an_unreachable_registry_is_a_clean_temporary_error(
    mock: respx.MockRouter, fake_time: FakeTime, failure: Exception, problem: str
) -> None:
    mock.get("https://ghcr.io/v2/").mock(side_effect=failure)
    async with client_for(fake_time, max_retries=1) as client:
        with pytest.raises(RegistryError) as caught:
            await client.list_tags("ghcr.io/acme/web")
    assert caught.value.temporary
    assert str(caught.value).startswith(
        f'registry "ghcr.io" is unreachable for image "ghcr.io/acme/web" ({problem}; 2 attempts)'
    )


async def test_docker_hubs_401_for_an_unknown_repository_says_it_may_not_exist(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    serve_docker_hub(mock, [])
    mock.get("https://registry-1.docker.io/v2/acme/nope/tags/list").respond(
        401,
        headers={
            "WWW-Authenticate": HUB_CHALLENGE
            + ',scope="repository:acme/nope:pull",error="insufficient_scope"'
        },
        json={"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
    )
    async with client_for(fake_time) as client:
        with pytest.raises(RegistryError) as caught:
            await client.list_tags("acme/nope")
    assert not caught.value.temporary
    assert 'refused access to repository "acme/nope" (HTTP 401 UNAUTHORIZED)' in str(caught.value)
    assert "check that the repository exists" in str(caught.value)


async def test_name_unknown_is_reported_as_an_unknown_repository(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://quay.io/v2/").respond(200)
    mock.get("https://quay.io/v2/acme/nope/tags/list").respond(
        404, json={"errors": [{"code": "NAME_UNKNOWN"}]}
    )
    async with client_for(fake_time) as client:
        with pytest.raises(
            RegistryError, match=r'repository "acme/nope" not found on registry "quay.io" \(unknown'
        ):
            await client.list_tags("quay.io/acme/nope")


async def test_a_host_that_is_no_registry_is_reported_as_such(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://example.com/v2/").respond(404)
    async with client_for(fake_time) as client:
        with pytest.raises(RegistryError, match=r'"example.com" does not serve the OCI distribution API'):
            await client.list_tags("example.com/acme/web")


async def test_requests_beyond_the_rate_cap_wait_their_turn(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    mock.get("https://ghcr.io/v2/").respond(200)
    mock.get("https://ghcr.io/v2/acme/web/tags/list").respond(200, json={"tags": ["1"]})
    access = {"ghcr.io": RegistryAccess(requests_per_second=2)}
    async with client_for(fake_time, access) as client:
        for _ in range(4):
            await client.list_tags("ghcr.io/acme/web")
        assert client.requests_made == 5
    # a burst of two, then one request every half second
    assert fake_time.sleeps == [0.5, 0.5, 0.5]


async def test_a_warehouse_poll_selects_each_image_and_records_its_digest(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    serve_docker_hub(mock, ["1.27.1", "1.27.1-alpine", "1.26.2", "latest"])
    mock.get("https://ghcr.io/v2/").respond(200)
    mock.head("https://ghcr.io/v2/acme/web/manifests/stable").respond(
        200, headers={"Docker-Content-Digest": OTHER_DIGEST}
    )
    warehouse = Warehouse(
        images=[ImageRule(image="nginx", semver="^1"), ImageRule(image="ghcr.io/acme/web", digest="stable")]
    )
    async with client_for(fake_time) as client:
        freight = await discover_freight(client, "web", warehouse)
    assert [(i.image, i.tag, i.digest) for i in freight.images] == [
        ("docker.io/library/nginx", "1.27.1", DIGEST),
        ("ghcr.io/acme/web", "stable", OTHER_DIGEST),
    ]
    assert TagRule.from_image_rule(warehouse.images[1]).strategy == "digest"


def test_challenges_are_parsed_with_quoted_commas() -> None:
    challenge = parse_challenge(
        'Bearer realm="https://r.example/token",service="r",scope="repository:a/b:pull,push"'
    )
    assert challenge is not None
    assert (challenge.scheme, challenge.realm, challenge.scope) == (
        "bearer",
        "https://r.example/token",
        "repository:a/b:pull,push",
    )


@pytest.mark.parametrize(
    ("header", "target"),
    [
        ('</v2/x/tags/list?n=100&last=abc>; rel="next"', "/v2/x/tags/list?n=100&last=abc"),
        ("<https://r/v2/x/tags/list?last=b>; rel=next", "https://r/v2/x/tags/list?last=b"),
        ('</prev>; rel="prev", </next>; rel="next"', "/next"),
        ('</prev>; rel="prev"', None),
        (None, None),
    ],
)
def test_next_links_are_found_relative_or_absolute(header: str | None, target: str | None) -> None:
    assert next_link(header) == target


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=lambda: 1445412480.0) == 30.0
    assert parse_retry_after("soon") is None


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("127.8.9.1", True),
        ("localhost", True),
        ("[::1]:443", True),
        ("ghcr.io", False),
        ("10.0.0.1:5000", False),
    ],
)
def test_loopback_hosts_are_recognised(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


async def test_images_of_one_registry_polled_together_ping_it_once(
    mock: respx.MockRouter, fake_time: FakeTime
) -> None:
    ping = mock.get("https://ghcr.io/v2/").respond(200)
    for name in ("web", "api", "worker"):
        mock.get(f"https://ghcr.io/v2/acme/{name}/tags/list").respond(200, json={"tags": ["1.0.0"]})
        mock.head(f"https://ghcr.io/v2/acme/{name}/manifests/1.0.0").respond(
            200, headers={"Docker-Content-Digest": DIGEST}
        )
    warehouse = Warehouse(
        images=[ImageRule(image=f"ghcr.io/acme/{name}", semver="^1") for name in ("web", "api", "worker")]
    )
    async with client_for(fake_time) as client:
        freight = await discover_freight(client, "app", warehouse)
        assert client.requests_made == 1 + 3 * 2
    assert ping.call_count == 1
    assert len(freight.images) == 3


def test_registry_credentials_for_the_command_line_come_from_ferry_registries() -> None:
    access = registry_access_from_env(
        {"FERRY_REGISTRIES": '{"ghcr.io": {"username": "bot", "password": "pw"}}'}
    )
    assert access["ghcr.io"].username == "bot"
    assert access["ghcr.io"].password is not None and access["ghcr.io"].password.get_secret_value() == "pw"
    assert registry_access_from_env({}) == {}


def test_malformed_ferry_registries_is_refused_naming_the_variable_and_field() -> None:
    with pytest.raises(SettingsError) as caught:
        registry_access_from_env({"FERRY_REGISTRIES": '{"ghcr.io": {"user": "bot", "password": "hunter2"}}'})
    assert str(caught.value).startswith("FERRY_REGISTRIES: expected JSON like")
    assert "ghcr.io.user: Extra inputs are not permitted" in str(caught.value)
    assert "hunter2" not in str(caught.value)
