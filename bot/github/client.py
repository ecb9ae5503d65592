"""githubkit clients for the App and its installations: one connection pool, deadlines, GitHub's rate rules.

One ``GitHubApp`` per process holds one HTTP connection pool (one TLS context, keep-alive
connections) shared by the App's JWT client and every installation client, and each client keeps
its own httpx client for its whole life. githubkit otherwise builds a new httpx client, TLS context
and connection for every request unless its ``GitHub`` object is opened as a context, and that
context lives in a ``ContextVar`` that tasks started before it was entered never see.

Every request passes through its installation's ``Lane`` (githubkit's throttler hook, wrapped
around the whole exchange, token refresh and HTTP cache included):

- a deadline (``asyncio.timeout``) no library layer can drop: under ``http_cache`` (hishel 1.x)
  httpx's own timeout is lost and a stalled GitHub would hold a pass forever;
- content-creating requests (POST, PATCH, PUT, DELETE) one at a time per installation, and at most
  100 requests in flight per process, as GitHub asks
  (https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
  #avoid-concurrent-requests; #about-secondary-rate-limits in rate-limits-for-the-rest-api);
- after a rate limit, no request of that installation until the wait ``bot.core.backoff`` computes
  from GitHub's rules has passed: each is refused at once as a temporary ``GitHubError``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Generator
from typing import Any, Final, Literal

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.auth import BaseAuthStrategy
from githubkit.cache import MemCacheStrategy
from githubkit.config import get_config
from githubkit.exception import GitHubException, RequestFailed
from githubkit.throttling import BaseThrottler

from bot.call_deadlines import GITHUB, bounded
from bot.command_replies import AppIdentity
from bot.core.backoff import github_rate_limit
from bot.errors import GitHubError
from bot.pass_budget import note_request

REST_API_VERSION: Final[Literal["2022-11-28"]] = "2022-11-28"
USER_AGENT = "ferry-gitops-promoter"
WRITE_METHODS: Final = frozenset({"POST", "PATCH", "PUT", "DELETE"})
MAX_IN_FLIGHT: Final = 100  # GitHub: "No more than 100 concurrent requests are allowed"
KEEPALIVE: Final = 20  # idle connections kept open

RequestObserver = Callable[[str, int, str | None], None]  # method, status, rate-limit remaining


class RequestCounter:
    """Counts GitHub requests (for figures and metrics) through httpx event hooks."""

    def __init__(self, observer: RequestObserver | None = None) -> None:
        self.total = 0
        self.by_route: Counter[str] = Counter()
        self.observer = observer

    async def on_response(self, response: httpx.Response) -> None:
        self.total += 1
        self.by_route[f"{response.request.method} {response.request.url.path}"] += 1
        if self.observer is not None:
            self.observer(
                response.request.method, response.status_code, response.headers.get("x-ratelimit-remaining")
            )


def translate(exc: Exception, doing: str) -> GitHubError:
    """Classify a githubkit failure: temporary (5xx, rate limits by GitHub's rules, timeouts) or
    permanent (other 4xx). A rate limit carries the wait ``bot.core.backoff`` computes."""
    if isinstance(exc, RequestFailed):
        raw = exc.response.raw_response
        status = raw.status_code
        message = _message(raw)
        limit = github_rate_limit(status, raw.headers, message, now=time.time())
        if limit is not None:
            return GitHubError(
                f"GitHub {limit.kind} rate limit while {doing}; retrying after {limit.wait:.0f}s: {message}",
                temporary=True,
                retry_after=limit.wait,
            )
        return GitHubError(f"GitHub answered {status} while {doing}: {message}", temporary=status >= 500)
    if isinstance(exc, GitHubException | httpx.HTTPError | TimeoutError):
        return GitHubError(f"GitHub did not answer while {doing}: {exc.__class__.__name__}", temporary=True)
    return GitHubError(f"unexpected failure while {doing}: {exc}", temporary=False)


def _message(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(data, dict):
        return str(data.get("message", ""))[:200]
    return ""


def status_of(exc: Exception) -> int | None:
    return exc.response.status_code if isinstance(exc, RequestFailed) else None


async def call(doing: str, request: Awaitable[Any]) -> Any:
    """Await a githubkit request, turning its failures into GitHubError; a ``Lane``'s own GitHubError
    (deadline passed, installation held after a rate limit) passes through as it is."""
    try:
        return await request
    except (GitHubException, httpx.HTTPError, TimeoutError) as exc:
        raise translate(exc, doing) from exc


class Lane(BaseThrottler):
    """GitHub's rules for one caller (an installation, or the App itself), around every request.

    ``deadline`` bounds each request in seconds; ``in_flight`` is shared by every lane of the process;
    ``clock`` is monotonic seconds.
    """

    def __init__(
        self,
        name: str,
        *,
        deadline: float,
        in_flight: asyncio.Semaphore,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.deadline = deadline
        self._in_flight = in_flight
        self._writes = asyncio.Lock()
        self._clock = clock
        self._held_until = 0.0
        self._held_for = ""
        self.strikes = 0  # consecutive rate-limit answers

    def held(self) -> float:
        """Seconds this caller must still wait before GitHub may be asked anything (0: none)."""
        return max(0.0, self._held_until - self._clock())

    @contextlib.contextmanager
    def acquire(self, request: httpx.Request) -> Generator[None, Any, Any]:
        raise NotImplementedError("Ferry calls GitHub asynchronously only")
        yield  # pragma: no cover

    @contextlib.asynccontextmanager
    async def async_acquire(self, request: httpx.Request) -> AsyncGenerator[None, Any]:
        waiting = self.held()
        if waiting > 0:
            raise GitHubError(
                f"GitHub {self._held_for} for {self.name}: not asking again for {waiting:.0f}s "
                f"({request.method} {request.url.path})",
                temporary=True,
                retry_after=waiting,
            )
        async with contextlib.AsyncExitStack() as stack:
            if request.method in WRITE_METHODS:
                await stack.enter_async_context(self._writes)
            await stack.enter_async_context(self._in_flight)
            try:
                async with bounded(GITHUB, self.deadline):
                    yield
            except TimeoutError:
                raise GitHubError(
                    f"GitHub did not answer {request.method} {request.url.path} within {self.deadline:g}s",
                    temporary=True,
                ) from None

    async def on_response(self, response: httpx.Response) -> None:
        """Learn rate limits from every answer (an httpx response hook of this caller's client)."""
        if response.status_code not in (403, 429):
            if response.status_code < 400:
                self.strikes = 0
            return
        await response.aread()
        limit = github_rate_limit(response.status_code, response.headers, _message(response), now=time.time())
        if limit is None:
            return
        self.strikes += 1
        self._held_until = max(self._held_until, self._clock() + limit.wait_after(self.strikes))
        self._held_for = f"{limit.kind} rate limit"


class _SharedPool(httpx.AsyncBaseTransport):
    """The process's one connection pool, built at the first request (its TLS context costs ~20 ms).

    Clients closing do not close it; ``GitHubApp.aclose`` does. It also puts httpx's timeouts back on
    requests that arrive without them: hishel 1.x, under githubkit's ``http_cache``, rebuilds each
    request without ``extensions["timeout"]``, and httpcore then waits forever on a silent connection.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport | None, timeout: httpx.Timeout) -> None:
        self._inner = inner
        self._timeout = timeout.as_dict()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self._inner is None:
            limits = httpx.Limits(max_connections=MAX_IN_FLIGHT, max_keepalive_connections=KEEPALIVE)
            self._inner = httpx.AsyncHTTPTransport(limits=limits)
        if "timeout" not in request.extensions:
            request.extensions = {**request.extensions, "timeout": self._timeout}
        note_request(request.method)  # sent to GitHub: counted against the pass that sent it
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        """Shared: a client closing leaves the pool to the App."""

    async def close_pool(self) -> None:
        inner, self._inner = self._inner, None
        if inner is not None:
            await inner.aclose()


class _PooledGitHub(GitHub[Any]):
    """A githubkit client whose httpx client lives until ``aclose`` instead of one request."""

    def __init__(self, auth: BaseAuthStrategy, *, config: Any) -> None:
        super().__init__(auth, config=config)
        self._client: httpx.AsyncClient | None = None

    @contextlib.asynccontextmanager
    async def get_async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._client is None:
            client = await self._create_async_client()
            if self._client is None:
                self._client = client
            else:  # another request built one meanwhile
                await client.aclose()
        yield self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()


class GitHubApp:
    """The App's clients: one JWT client, and installation clients built from it, over one pool.

    ``timeout`` is the deadline of one request in seconds; ``clock`` (monotonic seconds) times rate-limit
    holds. Close with ``aclose``.
    """

    def __init__(
        self,
        *,
        app_id: int,
        private_key: str,
        base_url: str,
        timeout: float = 10.0,
        counter: RequestCounter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.counter = counter or RequestCounter()
        self.timeout = timeout
        self._clock = clock
        self._pool = _SharedPool(transport, httpx.Timeout(timeout))
        self._cache = MemCacheStrategy()  # ETags and tokens of this App only, dropped on close
        self._in_flight = asyncio.Semaphore(MAX_IN_FLIGHT)
        self._config = get_config(
            base_url=base_url,
            timeout=timeout,
            user_agent=USER_AGENT,
            auto_retry=False,
            http_cache=True,
            async_transport=self._pool,
            cache_strategy=self._cache,
        )
        self._auth = AppAuthStrategy(app_id, private_key)
        self.lanes: dict[int | None, Lane] = {}
        self.app_id = app_id
        self._identity: AppIdentity | None = None
        self._app = self._client(self._auth, None)
        self._installations: dict[int, _PooledGitHub] = {}

    def _client(self, auth: BaseAuthStrategy, installation_id: int | None) -> _PooledGitHub:
        name = "the App" if installation_id is None else f"installation {installation_id}"
        lane = Lane(name, deadline=self.timeout, in_flight=self._in_flight, clock=self._clock)
        self.lanes[installation_id] = lane
        config = dataclasses.replace(
            self._config,
            throttler=lane,
            async_event_hooks={"response": [self.counter.on_response, lane.on_response]},
        )
        return _PooledGitHub(auth, config=config)

    @property
    def app_client(self) -> GitHub[Any]:
        return self._app

    def installation(self, installation_id: int) -> GitHub[Any]:
        # Cached: githubkit's REST namespaces hold only a weak reference to their client; the
        # installation token lives in this App's cache and is renewed there when it expires.
        if installation_id not in self._installations:
            auth = self._auth.as_installation(installation_id)
            self._installations[installation_id] = self._client(auth, installation_id)
        return self._installations[installation_id]

    async def aclose(self) -> None:
        """Close every client, then the pool and the cache."""
        clients = [self._app, *self._installations.values()]
        self._installations = {}
        for client in clients:
            await client.aclose()
        await self._pool.close_pool()
        await self._cache.acleanup()

    async def identity(self) -> AppIdentity:
        """Who the App is on GitHub: its id and its bot account's login, ``<slug>[bot]``, from ``GET /app``
        (read once; docs.github.com/en/rest/apps/apps#get-the-authenticated-app). The comments the App
        writes with an installation token are authored by that account."""
        if self._identity is None:
            response = await call(
                "reading the App", self._app.rest(REST_API_VERSION).apps.async_get_authenticated()
            )
            data = response.parsed_data
            slug = getattr(data, "slug", None) or ""
            if not slug:
                raise GitHubError("GitHub's GET /app did not name the App's slug", temporary=False)
            self._identity = AppIdentity(int(data.id), f"{slug}[bot]")
        return self._identity

    async def installations(self) -> list[tuple[int, str]]:
        """(installation id, account login) of every installation of the App."""
        app = self._app
        rest = app.rest(REST_API_VERSION)
        found: list[tuple[int, str]] = []
        page = 1
        while True:
            response = await call(
                "listing the App's installations", rest.apps.async_list_installations(per_page=100, page=page)
            )
            items = response.parsed_data
            for item in items:
                login = getattr(item.account, "login", None) or getattr(item.account, "slug", "") or ""
                found.append((item.id, login))
            if len(items) < 100:
                return found
            page += 1

    @staticmethod
    def preload_discovery() -> None:
        """Import the githubkit models that listing installations and their repositories parse.

        githubkit imports each model module at the first request that needs it (0.3-0.6 s of imports
        and pydantic class building). Run in a thread while GitHub is unreachable, it leaves only the
        requests themselves for when GitHub answers again.
        """
        from githubkit_schemas.latest.models import InstallationToken  # noqa: F401, PLC0415
        from githubkit_schemas.v2022_11_28.models import (  # noqa: F401, PLC0415
            BasicError,
            Installation,
            InstallationRepositoriesGetResponse200,
        )

    async def repositories(self, installation_id: int) -> list[str]:
        client = self.installation(installation_id)
        rest = client.rest(REST_API_VERSION)
        names: list[str] = []
        page = 1
        while True:
            response = await call(
                "listing an installation's repositories",
                rest.apps.async_list_repos_accessible_to_installation(per_page=100, page=page),
            )
            repos = response.parsed_data.repositories
            names += [r.full_name for r in repos]
            if len(repos) < 100:
                return names
            page += 1
