"""Argo CD adapter (httpx): read an application, ask for a refresh, sync it to its own targetRevision.

Shapes follow Argo CD's API (``/api/v1/applications/{name}``, ``.../sync``, ``.../syncwindows``,
``.../resource-tree``; Swagger 2.0, the part Ferry uses is in ``tests/fixtures/argocd/swagger.json``). Ferry
never sends a ``revision``: an automated app gets a refresh, any other a sync of its own ``targetRevision``
(``bot.core.argo_app``). A sync carries ``infos`` with the promotion id under ``PROMOTION_INFO_KEY``, so a
later pass that meets "another operation is already in progress" adopts its own running operation instead of
failing, as Kargo's ``argocd-update`` step does.

Argo CD's refusals of a sync are classified in ``bot.argocd_answers``.

Failures of the transport are classified (``ArgoCDError.temporary``); temporary ones are retried here with
``bot.core.backoff``'s waits through the injected ``sleep``, honouring ``Retry-After``. A sync is retried only
while ``still_wanted`` (the caller's compare-and-swap guard, asked again after each wait) says its commit is
still the one to deploy: a sync decided before a newer merge is never replayed after it. Every request has a
deadline (``ArgoCDServer.timeout``) over the whole exchange. Tokens never appear in messages.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from types import MappingProxyType, TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from bot.argocd_answers import (
    APP_DELETING,
    AUTO_SYNC_REFUSAL,
    INVALID_WINDOW,
    MSG_ADOPTED,
    MSG_AUTO_SYNC,
    MSG_BLOCKED,
    MSG_BUSY,
    MSG_DELETING,
    MSG_FORBIDDEN,
    MSG_MISSING,
    MSG_OVERTAKEN,
    MSG_REFRESHED,
    MSG_STARTED,
    OPERATION_IN_PROGRESS,
    SYNC_WINDOW,
    SyncResult,
    denied_rule,
    error_detail,
    error_text,
)
from bot.argocd_state import app_state_from_application, blocking_window, pod_problems, target_revisions
from bot.call_deadlines import ARGOCD, bounded
from bot.core.argo_app import INFO_KEY, AppState
from bot.core.backoff import retry_delay
from bot.errors import ArgoCDError
from bot.settings import ArgoCDServer

PROMOTION_INFO_KEY = INFO_KEY
BACKOFF_MAX_SECONDS = 30.0  # in-call retries stay short; the reconciler's retry waits longer

MSG_UNKNOWN_SERVER = (
    'Argo CD server "{server}" is not configured (configured: {known}); add it to FERRY_ARGOCD_SERVERS'
)
MSG_TOKEN_REFUSED = (
    'Argo CD server "{server}" refused the token ({detail}); set a valid token for server "{server}" '
    "in FERRY_ARGOCD_SERVERS"
)
MSG_TIMEOUT = 'Argo CD server "{server}" did not answer within {timeout:g}s ({what} app "{app}")'
MSG_UNREACHABLE = 'Argo CD server "{server}" is unreachable ({what} app "{app}"): {detail}'
MSG_SERVER_ERROR = 'Argo CD server "{server}" answered {status} ({what} app "{app}"): {detail}'
MSG_REJECTED = 'Argo CD server "{server}" rejected {what} app "{app}" ({status}): {detail}'
MSG_CA_FILE = (
    'Argo CD server "{server}": cannot read ca_file {path}: {detail}; fix the path in FERRY_ARGOCD_SERVERS'
)
MSG_NOT_JSON = 'Argo CD server "{server}" answered {what} app "{app}" with something other than JSON'
_NO_INFOS: Mapping[str, str] = MappingProxyType({})
Guard = Callable[[], Awaitable[bool]]


class _NoLongerWanted(Exception):
    """A request's guard, asked before a retry, says the request no longer stands."""


class ArgoCDClient:
    """One client for every configured Argo CD server; ``requests_made`` counts HTTP attempts."""

    def __init__(
        self,
        servers: Mapping[str, ArgoCDServer],
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        max_retries: int = 3,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._servers = dict(servers)
        self._transport = transport
        self._max_retries = max_retries
        self._sleep = sleep
        self._clients: dict[str, httpx.AsyncClient] = {}
        self.requests_made = 0

    async def __aenter__(self) -> ArgoCDClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await client.aclose()

    def app_url(self, server: str, app: str) -> str:
        """The application's page in the Argo CD UI, for a status's ``target_url``."""
        base = str(self._server(server).url).rstrip("/")
        return f"{base}/applications/{quote(app, safe='')}"

    async def get_app(
        self,
        server: str,
        app: str,
        *,
        repo: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
        refresh: bool | Literal["normal", "hard"] = False,
    ) -> AppState:
        """The application's state; ``exists=False`` when Argo CD denies knowing it (403) or says 404.

        ``repo`` (``owner/name``) picks the source to read in a multi-source app. ``refresh`` (``True`` for
        ``normal``, or ``hard``) makes Argo CD re-compare with the branch head first; the request blocks until
        it has (``Server.Get``): use it to pick up a merge now rather than after Argo CD's poll.
        """
        params = _query(app_namespace=app_namespace, project=project)
        if refresh:
            params["refresh"] = "normal" if refresh is True else refresh
        response = await self._request(server, "GET", _app_path(app), app=app, what="reading", params=params)
        if response.status_code in (403, 404):
            return AppState.missing(app)
        self._raise_for_status(server, app, "reading", response)
        return app_state_from_application(self._json(server, app, "reading", response), name=app, repo=repo)

    async def sync_window(
        self,
        server: str,
        app: str,
        *,
        automated: bool,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> str | None:
        """The sync window that blocks ``app`` now (``kind 'schedule' for duration``), or None."""
        params = _query(app_namespace=app_namespace, project=project)
        response = await self._request(
            server,
            "GET",
            _app_path(app) + "/syncwindows",
            app=app,
            what="reading sync windows of",
            params=params,
        )
        if response.status_code in (403, 404):
            return None
        self._raise_for_status(server, app, "reading sync windows of", response)
        return blocking_window(
            self._json(server, app, "reading sync windows of", response), automated=automated
        )

    async def pod_problems(
        self, server: str, app: str, *, app_namespace: str | None = None, project: str | None = None
    ) -> tuple[str, ...]:
        """What the app's unhealthy pods say (``GET …/resource-tree``), for a verdict that names the cause."""
        params = _query(app_namespace=app_namespace, project=project)
        what = "reading the resource tree of"
        response = await self._request(
            server, "GET", _app_path(app) + "/resource-tree", app=app, what=what, params=params
        )
        if response.status_code in (403, 404):
            return ()
        self._raise_for_status(server, app, what, response)
        return pod_problems(self._json(server, app, what, response))

    async def refresh(
        self,
        server: str,
        app: str,
        *,
        hard: bool = False,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> SyncResult:
        """Ask Argo CD to re-compare ``app`` with its branch head now (auto-sync then applies a change)."""
        kind: Literal["normal", "hard"] = "hard" if hard else "normal"
        state = await self.get_app(server, app, app_namespace=app_namespace, project=project, refresh=kind)
        if not state.exists:
            return SyncResult("missing", MSG_MISSING.format(app=app, server=server), "refresh")
        return SyncResult("refreshed", MSG_REFRESHED.format(app=app, kind=kind), "refresh")

    async def sync(
        self,
        server: str,
        app: str,
        *,
        prune: bool = False,
        app_namespace: str | None = None,
        project: str | None = None,
        infos: Mapping[str, str] = _NO_INFOS,
        sync_options: Sequence[str] = (),
        revision: str | None = None,
        still_wanted: Guard | None = None,
    ) -> SyncResult:
        """Ask Argo CD to sync ``app`` to its own ``targetRevision`` now; adopt our own running operation.

        No ``revision`` is sent, so Argo CD resolves the app's ``targetRevision`` itself (for every source of
        a multi-source app: no ``revisions``/``sourcePositions`` needed). ``revision`` exists only to show how
        Argo CD answers an override (tests); Ferry never passes it. An app with automated sync that refuses
        the request is refreshed instead. ``still_wanted`` is asked after each backoff, before the sync is
        sent again; when it says no, nothing more is sent (``overtaken``).
        """
        body: dict[str, Any] = {
            "name": app,
            "prune": prune,
            "infos": [{"name": key, "value": value} for key, value in infos.items()],
        }
        if revision is not None:
            body["revision"] = revision
        if app_namespace:
            body["appNamespace"] = app_namespace
        if project:
            body["project"] = project
        if sync_options:
            body["syncOptions"] = {"items": list(sync_options)}
        try:
            response = await self._request(
                server,
                "POST",
                _app_path(app) + "/sync",
                app=app,
                what="syncing",
                json=body,
                guard=still_wanted,
            )
        except _NoLongerWanted:
            return SyncResult("overtaken", MSG_OVERTAKEN.format(app=app), "none")
        if response.is_success:
            target = target_revisions(self._json(server, app, "syncing", response))
            return SyncResult("started", MSG_STARTED.format(app=app, target=target))
        return await self._refused(
            server, app=app, response=response, app_namespace=app_namespace, project=project, infos=infos
        )

    async def _refused(
        self,
        server: str,
        *,
        app: str,
        response: httpx.Response,
        app_namespace: str | None,
        project: str | None,
        infos: Mapping[str, str],
    ) -> SyncResult:
        """Classify Argo CD's refusal of a sync (see the module docstring), or raise for anything else."""
        text = error_text(response)
        if response.status_code in (403, 404):
            if INVALID_WINDOW in text:
                detail = error_detail(response) or INVALID_WINDOW
                return SyncResult("blocked", MSG_BLOCKED.format(app=app, window=f"(Argo CD: {detail})"))
            if SYNC_WINDOW in text:
                window = await self.sync_window(
                    server, app, automated=False, app_namespace=app_namespace, project=project
                )
                return SyncResult("blocked", MSG_BLOCKED.format(app=app, window=window or "(no detail)"))
            denied = denied_rule(text)
            if denied is not None:
                rule, target = denied
                rbac = target or f"{project or '*'}/{app}"
                return SyncResult("forbidden", MSG_FORBIDDEN.format(rule=rule, app=app, object=rbac))
            return SyncResult("missing", MSG_MISSING.format(app=app, server=server))
        if response.status_code == 400:
            if AUTO_SYNC_REFUSAL in text:
                refreshed = await self.refresh(server, app, app_namespace=app_namespace, project=project)
                detail = error_detail(response) or AUTO_SYNC_REFUSAL
                return SyncResult(refreshed.outcome, MSG_AUTO_SYNC.format(app=app, detail=detail), "refresh")
            if APP_DELETING in text:
                return SyncResult("deleting", MSG_DELETING.format(app=app))
            if OPERATION_IN_PROGRESS in text:
                return await self._adopt_or_wait(server, app, app_namespace, project, infos)
        self._raise_for_status(server, app, "syncing", response)
        raise AssertionError("unreachable: a refused sync raises above")  # pragma: no cover

    async def _adopt_or_wait(
        self,
        server: str,
        app: str,
        app_namespace: str | None,
        project: str | None,
        infos: Mapping[str, str],
    ) -> SyncResult:
        state = await self.get_app(server, app, app_namespace=app_namespace, project=project)
        promotion = infos.get(PROMOTION_INFO_KEY)
        running_for = {
            state.requested_infos.get(PROMOTION_INFO_KEY),
            state.operation_infos.get(PROMOTION_INFO_KEY),
        }
        if promotion is not None and promotion in running_for:
            return SyncResult("adopted", MSG_ADOPTED.format(app=app, promotion=promotion))
        who = state.operation_initiated_by or "someone else"
        revision = state.operation_revision or "unknown"
        return SyncResult("busy", MSG_BUSY.format(app=app, who=who, revision=revision))

    def _server(self, server: str) -> ArgoCDServer:
        try:
            return self._servers[server]
        except KeyError:
            known = ", ".join(f'"{name}"' for name in sorted(self._servers)) or "none"
            raise ArgoCDError(
                MSG_UNKNOWN_SERVER.format(server=server, known=known), temporary=False
            ) from None

    def _client(self, server: str) -> httpx.AsyncClient:
        client = self._clients.get(server)
        if client is not None:
            return client
        config = self._server(server)
        verify: ssl.SSLContext | bool = True
        if config.insecure:
            verify = False
        elif config.ca_file is not None:
            try:
                verify = ssl.create_default_context(cafile=str(config.ca_file))
            except (OSError, ssl.SSLError) as exc:
                detail = getattr(exc, "strerror", None) or str(exc)
                message = MSG_CA_FILE.format(server=server, path=config.ca_file, detail=detail)
                raise ArgoCDError(message, temporary=False) from None
        client = httpx.AsyncClient(
            base_url=str(config.url).rstrip("/"),
            headers={
                "Authorization": f"Bearer {config.token.get_secret_value()}",
                "Accept": "application/json",
            },
            timeout=config.timeout,
            verify=verify,
            transport=self._transport,
        )
        self._clients[server] = client
        return client

    async def _request(
        self,
        server: str,
        method: str,
        path: str,
        *,
        app: str,
        what: str,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        guard: Guard | None = None,
    ) -> httpx.Response:
        """Send, retrying temporary failures; answers 4xx other than 401 to the caller to interpret.
        ``guard`` is asked after each wait, right before the retry: ``_NoLongerWanted`` when it says no."""
        client = self._client(server)
        timeout = self._servers[server].timeout
        attempt = 0
        while True:
            error: ArgoCDError
            try:
                self.requests_made += 1
                # The deadline covers the whole exchange, body included: httpx's timeouts bound
                # each read, so a server trickling bytes would otherwise hold the pass for good.
                async with bounded(ARGOCD, timeout):
                    response = await client.request(method, path, params=params, json=json)
            except (httpx.TimeoutException, TimeoutError):
                error = ArgoCDError(
                    MSG_TIMEOUT.format(server=server, timeout=timeout, what=what, app=app), temporary=True
                )
            except httpx.TransportError as exc:
                detail = str(exc) or type(exc).__name__
                error = ArgoCDError(
                    MSG_UNREACHABLE.format(server=server, what=what, app=app, detail=detail), temporary=True
                )
            else:
                if response.status_code == 401:
                    detail = error_detail(response) or "401 Unauthorized"
                    raise ArgoCDError(MSG_TOKEN_REFUSED.format(server=server, detail=detail), temporary=False)
                if response.status_code != 429 and response.status_code < 500:
                    return response
                error = ArgoCDError(
                    MSG_SERVER_ERROR.format(
                        server=server,
                        status=response.status_code,
                        what=what,
                        app=app,
                        detail=error_detail(response) or response.reason_phrase,
                    ),
                    temporary=True,
                    retry_after=_retry_after(response),
                )
            if attempt >= self._max_retries:
                raise error
            attempt += 1
            await self._sleep(retry_delay(attempt, asked=error.retry_after, cap=BACKOFF_MAX_SECONDS))
            if guard is not None and not await guard():
                raise _NoLongerWanted(what)

    @staticmethod
    def _raise_for_status(server: str, app: str, what: str, response: httpx.Response) -> None:
        if response.is_success:
            return
        detail = error_detail(response) or response.reason_phrase
        message = MSG_REJECTED.format(
            server=server, what=what, app=app, status=response.status_code, detail=detail
        )
        raise ArgoCDError(message, temporary=False)

    @staticmethod
    def _json(server: str, app: str, what: str, response: httpx.Response) -> Mapping[str, Any]:
        try:
            data = response.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ArgoCDError(MSG_NOT_JSON.format(server=server, what=what, app=app), temporary=True)
        return data


def _app_path(app: str) -> str:
    return f"/api/v1/applications/{quote(app, safe='')}"


def _query(*, app_namespace: str | None, project: str | None) -> dict[str, str]:
    params = {}
    if app_namespace:
        params["appNamespace"] = app_namespace
    if project:
        params["project"] = project
    return params


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
