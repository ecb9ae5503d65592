"""OCI registry adapter (httpx): tag lists and manifest digests, as Docker Hub, ghcr.io and others serve them.

Belongs here: every request to a registry. It pings ``/v2/`` once per registry to learn how it
authenticates (none, basic with the App's credentials, or the bearer-token flow from
``WWW-Authenticate``, tokens cached per scope until they expire), follows relative ``Link``
pagination, HEADs manifests with the full Accept list (HEAD does not count against Docker Hub's pull
limit), caps the request rate per registry, retries 429 and 5xx after ``Retry-After`` or
``bot.core.backoff``'s exponential wait, bounds every request by a deadline, and turns every failure
into a ``RegistryError`` that names the registry and image and says whether it is temporary. Secrets
never reach a message or a log line.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import NoReturn
from urllib.parse import urljoin

import httpx

from bot.call_deadlines import REGISTRY, bounded
from bot.core.backoff import retry_delay
from bot.core.freight import Freight
from bot.core.images import DIGEST_RE, parse_image
from bot.core.selection import TagRule, compile_rule, select_tag
from bot.core.warehouse import WarehouseLike, freight_from_selection, image_rules
from bot.errors import RegistryError
from bot.registry_auth import (
    Challenge,
    TokenBucket,
    base_url,
    canonical_registry,
    error_code,
    next_link,
    parse_challenge,
    parse_retry_after,
)
from bot.settings import RegistryAccess

logger = logging.getLogger(__name__)

MANIFEST_MEDIA_TYPES = (
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
TAG_PAGE_SIZE = 1000
MAX_TAG_PAGES = 500
MAX_INLINE_DELAY = 30.0  # a longer Retry-After is handed to the caller's scheduler, not slept on here
TOKEN_MARGIN = 10.0  # renew a bearer token this many seconds before it expires
DEFAULT_TOKEN_LIFETIME = 60.0  # the distribution spec's default for tokens without expires_in

MSG_UNREACHABLE = (
    'registry "{registry}" is unreachable for image "{image}" ({problem}; {attempts}): '
    "check the host name and that the registry is up"
)
MSG_TEMPORARY = (
    'registry "{registry}" answered HTTP {status} for image "{image}" ({attempts}): '
    "it is busy or failing, try again later"
)
MSG_NOT_A_REGISTRY = 'registry "{registry}" does not serve the OCI distribution API at {url} (HTTP {status})'
MSG_UNKNOWN_REPOSITORY = (
    'repository "{repository}" not found on registry "{registry}" (unknown repository): '
    'check the image "{image}"'
)
MSG_UNKNOWN_TAG = 'image "{image}": tag "{tag}" not found on registry "{registry}"'
MSG_DENIED = (
    'registry "{registry}" refused access to repository "{repository}" (HTTP {status}{code}): '
    'set credentials for "{registry}" in the App\'s registry settings, or check that the repository '
    "exists (registries answer 401 for unknown private repositories)"
)
MSG_UNEXPECTED = 'registry "{registry}" answered HTTP {status}{code} for image "{image}"'
MSG_BAD_BODY = 'registry "{registry}" answered with a malformed {what} for image "{image}"'
MSG_FOREIGN_LINK = 'registry "{registry}" paginated the tags of "{image}" to another host ({url}); refused'

Sleep = Callable[[float], Awaitable[None]]


@dataclass
class _Registry:
    """What one client knows about one registry: where, who, how it authenticates, how fast."""

    name: str
    base: str
    access: RegistryAccess | None
    limiter: TokenBucket
    challenge: Challenge | None = None
    pinged: bool = False
    ping_lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # images of one warehouse ping once
    tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # scope -> (token, expires at)

    @property
    def basic(self) -> str | None:
        """The ``Authorization`` value for the App's credentials, when it has them for this registry."""
        if self.access is None or self.access.username is None or self.access.password is None:
            return None
        pair = f"{self.access.username}:{self.access.password.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode()


class RegistryClient:
    """An async client for many registries; ``access`` maps registry host to credentials and limits."""

    def __init__(
        self,
        access: Mapping[str, RegistryAccess] | None = None,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 10.0,
        max_retries: int = 3,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._access = {canonical_registry(host): value for host, value in (access or {}).items()}
        self._http = httpx.AsyncClient(transport=transport, timeout=httpx.Timeout(timeout))
        self._timeout = timeout
        self._max_retries = max_retries
        self._sleep = sleep
        self._clock = clock
        self._registries: dict[str, _Registry] = {}
        self.requests_made = 0

    async def __aenter__(self) -> RegistryClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def _registry(self, name: str) -> _Registry:
        name = canonical_registry(name)
        if name not in self._registries:
            access = self._access.get(name)
            rate = access.requests_per_second if access else RegistryAccess().requests_per_second
            limiter = TokenBucket(rate, clock=self._clock, sleep=self._sleep)
            base = base_url(name, insecure=bool(access and access.insecure))
            self._registries[name] = _Registry(name, base, access, limiter)
        return self._registries[name]

    # -- public API ------------------------------------------------------------------------------

    async def ping(self, registry: str, *, image: str | None = None) -> None:
        """Learn how ``registry`` authenticates (GET /v2/); RegistryError if it is no OCI registry."""
        reg = self._registry(registry)
        url = f"{reg.base}/v2/"
        response = await self._send(reg, "GET", url, {}, image=image or registry)
        if response.status_code == 401:
            reg.challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        elif response.status_code != 200:
            raise RegistryError(
                MSG_NOT_A_REGISTRY.format(registry=reg.name, url=url, status=response.status_code),
                temporary=False,
            )
        reg.pinged = True

    async def list_tags(self, image: str) -> list[str]:
        """Every tag of the repository, across all pages, in the registry's (meaningless) order."""
        ref = parse_image(image, allow_tag=False)
        reg = self._registry(ref.registry)
        url: str | None = f"{reg.base}/v2/{ref.repository}/tags/list?n={TAG_PAGE_SIZE}"
        tags: dict[str, None] = {}
        for _page in range(MAX_TAG_PAGES):
            if url is None:
                break
            response = await self._repository_request(
                reg, "GET", url, repository=ref.repository, image=image, headers={}
            )
            if response.status_code != 200:
                self._fail(response, reg, ref.repository, image)
            try:
                body = response.json()
                page = body.get("tags") or []
                tags.update((str(tag), None) for tag in page)
            except (ValueError, AttributeError, TypeError):
                raise RegistryError(
                    MSG_BAD_BODY.format(registry=reg.name, what="tag list", image=image), temporary=False
                ) from None
            url = self._next_page(response, reg, image)
        return list(tags)

    async def digest(self, image: str, tag: str) -> str:
        """The digest the registry reports for ``image:tag`` (``Docker-Content-Digest`` of a HEAD)."""
        ref = parse_image(image, allow_tag=False)
        reg = self._registry(ref.registry)
        url = f"{reg.base}/v2/{ref.repository}/manifests/{tag}"
        headers = {"Accept": ", ".join(MANIFEST_MEDIA_TYPES)}
        response = await self._repository_request(
            reg, "HEAD", url, repository=ref.repository, image=image, headers=headers
        )
        if response.status_code == 404:
            message = MSG_UNKNOWN_TAG.format(image=image, tag=tag, registry=reg.name)
            raise RegistryError(message, temporary=False)
        if response.status_code != 200:
            self._fail(response, reg, ref.repository, image)
        digest = str(response.headers.get("Docker-Content-Digest", ""))
        if not digest:
            # Some registries omit the header on HEAD: the digest is the sha256 of the manifest bytes.
            response = await self._repository_request(
                reg, "GET", url, repository=ref.repository, image=image, headers=headers
            )
            if response.status_code != 200:
                self._fail(response, reg, ref.repository, image)
            digest = str(response.headers.get("Docker-Content-Digest", "")) or (
                "sha256:" + hashlib.sha256(response.content).hexdigest()
            )
        if not DIGEST_RE.match(digest):
            raise RegistryError(
                MSG_BAD_BODY.format(registry=reg.name, what="digest", image=image), temporary=False
            )
        return digest

    # -- requests --------------------------------------------------------------------------------

    async def _repository_request(
        self, reg: _Registry, method: str, url: str, *, repository: str, image: str, headers: dict[str, str]
    ) -> httpx.Response:
        if not reg.pinged:
            async with reg.ping_lock:
                if not reg.pinged:
                    await self.ping(reg.name, image=image)
        scope = f"repository:{repository}:pull"
        auth = await self._authorization(reg, scope, image)
        response = await self._send(reg, method, url, {**headers, **auth}, image=image)
        challenge = parse_challenge(response.headers.get("WWW-Authenticate"))
        if response.status_code == 401 and challenge is not None:
            # The token expired early, the registry wants another scope, or /v2/ was open but this
            # repository is not: authenticate as this answer asks, once.
            reg.challenge = challenge
            reg.tokens.pop(scope, None)
            retry_auth = await self._authorization(reg, challenge.scope or scope, image)
            if retry_auth and retry_auth != auth:
                response = await self._send(reg, method, url, {**headers, **retry_auth}, image=image)
        return response

    async def _authorization(self, reg: _Registry, scope: str, image: str) -> dict[str, str]:
        challenge = reg.challenge
        if challenge is None:
            return {}
        if challenge.scheme == "basic":
            return {} if reg.basic is None else {"Authorization": reg.basic}
        if challenge.scheme != "bearer" or not challenge.realm:
            return {}
        cached = reg.tokens.get(scope)
        if cached is not None and cached[1] > self._clock():
            return {"Authorization": f"Bearer {cached[0]}"}
        params = {"scope": scope, **({"service": challenge.service} if challenge.service else {})}
        token_url = str(httpx.URL(challenge.realm, params=params))
        credentials = {"Authorization": reg.basic} if reg.basic is not None else {}
        response = await self._send(reg, "GET", token_url, credentials, image=image)
        if response.status_code != 200:
            self._fail(response, reg, scope.split(":")[1], image)
        try:
            body = response.json()
            token = str(body.get("token") or body.get("access_token") or "")
            lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
        except (ValueError, AttributeError, TypeError):
            token, lifetime = "", 0.0
        if not token:
            raise RegistryError(
                MSG_BAD_BODY.format(registry=reg.name, what="token answer", image=image), temporary=False
            )
        reg.tokens[scope] = (token, self._clock() + max(0.0, lifetime - TOKEN_MARGIN))
        return {"Authorization": f"Bearer {token}"}

    async def _send(
        self, reg: _Registry, method: str, url: str, headers: dict[str, str], *, image: str
    ) -> httpx.Response:
        """One request with the rate cap, retrying 429, 5xx and transport failures; other answers return."""
        problem, status, retry_after = "", 0, None
        attempts = 0
        for attempt in range(self._max_retries + 1):
            attempts = attempt + 1
            await reg.limiter.acquire()
            self.requests_made += 1
            request = self._http.build_request(method, url, headers=headers)
            try:
                # A deadline over the whole exchange: httpx's timeouts bound each read, not the answer.
                async with bounded(REGISTRY, self._timeout):
                    response = await self._http.send(request)
            except (httpx.TimeoutException, TimeoutError):
                problem, status, retry_after = f"no answer within {self._timeout:g}s", 0, None
            except httpx.TransportError as exc:
                problem, status, retry_after = f"{type(exc).__name__}: {exc}", 0, None
            else:
                logger.debug("registry %s %s -> %s", request.method, request.url.path, response.status_code)
                if response.status_code != 429 and response.status_code < 500:
                    return response
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
            delay = retry_delay(attempt + 1, asked=retry_after)
            if attempt == self._max_retries or delay > MAX_INLINE_DELAY:
                break
            await self._sleep(delay)
        tries = f"{attempts} attempt" + ("s" if attempts > 1 else "")
        if status:
            message = MSG_TEMPORARY.format(registry=reg.name, status=status, image=image, attempts=tries)
        else:
            message = MSG_UNREACHABLE.format(registry=reg.name, image=image, problem=problem, attempts=tries)
        raise RegistryError(message, temporary=True, retry_after=retry_after)

    def _next_page(self, response: httpx.Response, reg: _Registry, image: str) -> str | None:
        target = next_link(response.headers.get("Link"))
        if target is None:
            return None
        url = urljoin(str(response.url), target)
        if httpx.URL(url).netloc != response.url.netloc:
            # Never carry a bearer token for this registry to another host.
            message = MSG_FOREIGN_LINK.format(registry=reg.name, image=image, url=url)
            raise RegistryError(message, temporary=False)
        return url

    @staticmethod
    def _fail(response: httpx.Response, reg: _Registry, repository: str, image: str) -> NoReturn:
        status = response.status_code
        code = error_code(response.content) if response.content else ""
        shown = f" {code}" if code else ""
        if status == 404 or code == "NAME_UNKNOWN":
            message = MSG_UNKNOWN_REPOSITORY.format(repository=repository, registry=reg.name, image=image)
        elif status in (401, 403):
            message = MSG_DENIED.format(registry=reg.name, repository=repository, status=status, code=shown)
        else:
            message = MSG_UNEXPECTED.format(registry=reg.name, status=status, code=shown, image=image)
        raise RegistryError(message, temporary=False)


async def discover_freight(client: RegistryClient, warehouse_name: str, warehouse: WarehouseLike) -> Freight:
    """The newest freight of a warehouse: list each image's tags, select, HEAD the chosen tag."""

    async def one(image: str, rule: TagRule) -> tuple[str, tuple[str, str | None]]:
        compile_rule(rule)
        if rule.strategy == "digest" and rule.digest_tag:
            tag = rule.digest_tag  # a HEAD answers whether it exists; no need to list thousands of tags
        else:
            subject = f'warehouse "{warehouse_name}": image "{image}"'
            tag = select_tag(await client.list_tags(image), rule, subject=subject)
        return image, (tag, await client.digest(image, tag))

    rules = image_rules(warehouse)
    chosen = await asyncio.gather(*(one(image, rule) for image, rule in rules))
    return freight_from_selection(warehouse_name, dict(chosen))
