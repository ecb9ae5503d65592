"""githubkit clients for the App and its installations, with request counting and error classes."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import httpx
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import GitHubException, RateLimitExceeded, RequestFailed, RequestTimeout

from bot.errors import GitHubError

REST_API_VERSION: Final[Literal["2022-11-28"]] = "2022-11-28"
USER_AGENT = "ferry-gitops-promoter"

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
    """Classify a githubkit failure: temporary (5xx, rate limits, timeouts) or permanent (other 4xx)."""
    if isinstance(exc, RateLimitExceeded):
        return GitHubError(
            f"GitHub rate limit while {doing}; retrying after {exc.retry_after.total_seconds():.0f}s",
            temporary=True,
            retry_after=exc.retry_after.total_seconds(),
        )
    if isinstance(exc, RequestFailed):
        status = exc.response.status_code
        message = _message(exc.response.raw_response)
        return GitHubError(f"GitHub answered {status} while {doing}: {message}", temporary=status >= 500)
    if isinstance(exc, RequestTimeout | GitHubException | httpx.HTTPError):
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
    """Await a githubkit request, turning its failures into GitHubError."""
    try:
        return await request
    except (GitHubException, httpx.HTTPError) as exc:
        raise translate(exc, doing) from exc


class GitHubApp:
    """The App's clients: one JWT client, and installation clients built from it."""

    def __init__(
        self,
        *,
        app_id: int,
        private_key: str,
        base_url: str,
        timeout: float = 10.0,
        counter: RequestCounter | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.counter = counter or RequestCounter()
        self._app = GitHub(
            AppAuthStrategy(app_id, private_key),
            base_url=base_url,
            timeout=timeout,
            user_agent=USER_AGENT,
            auto_retry=False,
            http_cache=True,
            async_transport=transport,
            async_event_hooks={"response": [self.counter.on_response]},
        )
        self._installations: dict[int, GitHub[Any]] = {}

    @property
    def app_client(self) -> GitHub[Any]:
        return self._app

    def installation(self, installation_id: int) -> GitHub[Any]:
        # Cached: githubkit's REST namespaces hold only a weak reference to their client, and the
        # client carries the installation token until it expires.
        if installation_id not in self._installations:
            auth = self._app.auth
            assert isinstance(auth, AppAuthStrategy)
            self._installations[installation_id] = self._app.with_auth(auth.as_installation(installation_id))
        return self._installations[installation_id]

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
