"""Argo CD adapter (httpx): request a sync to the deploy commit, read an application's state.

Shapes follow Argo CD's API (``/api/v1/applications/{name}`` and ``.../sync``, Swagger 2.0; the part
Ferry uses is in ``tests/fixtures/argocd/swagger.json``). A sync carries ``infos`` with the promotion id under
``PROMOTION_INFO_KEY``, so a later pass that meets "another operation is already in progress" (gRPC
code 9, HTTP 400) adopts its own running operation instead of failing, as Kargo's ``argocd-update``
step does. Failures are classified (``ArgoCDError.temporary``); temporary ones are retried here with
``bot.core.backoff``'s waits through the injected ``sleep``, honouring ``Retry-After``. Every request
has a deadline (``ArgoCDServer.timeout``) over the whole exchange. Tokens never appear in messages.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType, TracebackType
from typing import Any, Literal
from urllib.parse import quote

import httpx

from bot.core.backoff import retry_delay
from bot.core.verdict import HEALTHY, AppState
from bot.errors import ArgoCDError
from bot.settings import ArgoCDServer

PROMOTION_INFO_KEY = "ferry.promotion"
GRPC_FAILED_PRECONDITION = 9
OPERATION_IN_PROGRESS = "another operation is already in progress"
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
MSG_STARTED = 'sync of "{app}" to {revision} started'
MSG_ADOPTED = 'sync of "{app}" already running for promotion {promotion}; adopted it'
MSG_BUSY = 'another operation is running on "{app}" (by {who}, revision {revision}); retry later'
MSG_MISSING = 'app "{app}" not found on Argo CD server "{server}" (or the token may not sync it)'

_NO_INFOS: Mapping[str, str] = MappingProxyType({})

SyncOutcome = Literal["started", "adopted", "busy", "missing"]


@dataclass(frozen=True)
class SyncResult:
    """``started``: our sync was accepted; ``adopted``: ours was already running; ``busy``: someone
    else's operation runs (retry later); ``missing``: no such app, or the token may not see it."""

    outcome: SyncOutcome
    message: str


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
        app_namespace: str | None = None,
        project: str | None = None,
        refresh: bool = False,
    ) -> AppState:
        """The application's state; ``exists=False`` when Argo CD denies knowing it (403) or says 404.

        ``refresh`` asks for a normal refresh, which blocks until Argo CD has re-compared: use sparingly.
        """
        params = _query(app_namespace=app_namespace, project=project)
        if refresh:
            params["refresh"] = "normal"
        response = await self._request(server, "GET", _app_path(app), app=app, what="reading", params=params)
        if response.status_code in (403, 404):
            return AppState.missing(app)
        self._raise_for_status(server, app, "reading", response)
        return app_state_from_application(self._json(server, app, "reading", response), name=app)

    async def sync(
        self,
        server: str,
        app: str,
        *,
        revision: str,
        prune: bool = False,
        app_namespace: str | None = None,
        project: str | None = None,
        infos: Mapping[str, str] = _NO_INFOS,
        sync_options: Sequence[str] = (),
    ) -> SyncResult:
        """Ask Argo CD to sync ``app`` to ``revision`` now; adopt our own running operation if any."""
        body: dict[str, Any] = {
            "name": app,
            "revision": revision,
            "prune": prune,
            "infos": [{"name": key, "value": value} for key, value in infos.items()],
        }
        if app_namespace:
            body["appNamespace"] = app_namespace
        if project:
            body["project"] = project
        if sync_options:
            body["syncOptions"] = {"items": list(sync_options)}
        response = await self._request(
            server, "POST", _app_path(app) + "/sync", app=app, what="syncing", json=body
        )
        if response.status_code in (403, 404):
            return SyncResult("missing", MSG_MISSING.format(app=app, server=server))
        if response.status_code == 400 and _is_operation_in_progress(response):
            return await self._adopt_or_wait(server, app, app_namespace, project, infos)
        self._raise_for_status(server, app, "syncing", response)
        return SyncResult("started", MSG_STARTED.format(app=app, revision=revision))

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
    ) -> httpx.Response:
        """Send, retrying temporary failures; answers 4xx other than 401 to the caller to interpret."""
        client = self._client(server)
        timeout = self._servers[server].timeout
        attempt = 0
        while True:
            error: ArgoCDError
            try:
                self.requests_made += 1
                # The deadline covers the whole exchange, body included: httpx's timeouts bound
                # each read, so a server trickling bytes would otherwise hold the pass for good.
                async with asyncio.timeout(timeout):
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
                    detail = _error_detail(response) or "401 Unauthorized"
                    raise ArgoCDError(MSG_TOKEN_REFUSED.format(server=server, detail=detail), temporary=False)
                if response.status_code != 429 and response.status_code < 500:
                    return response
                error = ArgoCDError(
                    MSG_SERVER_ERROR.format(
                        server=server,
                        status=response.status_code,
                        what=what,
                        app=app,
                        detail=_error_detail(response) or response.reason_phrase,
                    ),
                    temporary=True,
                    retry_after=_retry_after(response),
                )
            if attempt >= self._max_retries:
                raise error
            attempt += 1
            await self._sleep(retry_delay(attempt, asked=error.retry_after, cap=BACKOFF_MAX_SECONDS))

    @staticmethod
    def _raise_for_status(server: str, app: str, what: str, response: httpx.Response) -> None:
        if response.is_success:
            return
        detail = _error_detail(response) or response.reason_phrase
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


def app_state_from_application(data: Mapping[str, Any], *, name: str | None = None) -> AppState:
    """Reduce a ``v1alpha1Application`` (JSON or YAML, any field may be missing) to an AppState."""
    metadata = _obj(data.get("metadata"))
    status = _obj(data.get("status"))
    sync = _obj(status.get("sync"))
    health = _obj(status.get("health"))
    state = _obj(status.get("operationState"))
    operation = _obj(state.get("operation"))
    sync_result = _obj(state.get("syncResult"))
    requested = data.get("operation")
    initiated = _obj(operation.get("initiatedBy")) or _obj(_obj(requested).get("initiatedBy"))
    who = _str(initiated.get("username")) or ("automated sync" if initiated.get("automated") else None)
    return AppState(
        name=_str(metadata.get("name")) or name or "?",
        sync_status=_str(sync.get("status")),
        sync_revision=_str(sync.get("revision")) or _first(sync.get("revisions")),
        health_status=_str(health.get("status")),
        health_message=_str(health.get("message")),
        operation_phase=_str(state.get("phase")),
        operation_revision=(
            _str(sync_result.get("revision"))
            or _first(sync_result.get("revisions"))
            or _str(_obj(operation.get("sync")).get("revision"))
        ),
        operation_infos=_infos(operation.get("info")),
        operation_started_at=_time(state.get("startedAt")),
        operation_finished_at=_time(state.get("finishedAt")),
        operation_message=_str(state.get("message")),
        reconciled_at=_time(status.get("reconciledAt")),
        unhealthy_resources=_unhealthy(status.get("resources")),
        operation_requested=isinstance(requested, dict),
        requested_infos=_infos(_obj(requested).get("info")),
        operation_initiated_by=who,
        health_since=_time(health.get("lastTransitionTime")),
        images=tuple(i for i in _obj(status.get("summary")).get("images") or () if isinstance(i, str)),
    )


def _unhealthy(resources: Any) -> tuple[str, ...]:
    lines = []
    for item in resources if isinstance(resources, list) else ():
        resource = _obj(item)
        health = _obj(resource.get("health"))
        state = _str(health.get("status"))
        if state is None or state == HEALTHY:
            continue
        label = f"{resource.get('kind') or '?'}/{resource.get('name') or '?'}"
        lines.append(f"{label}: {_str(health.get('message')) or state}")
    return tuple(lines)


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(value: Any) -> str | None:
    return _str(value[0]) if isinstance(value, list) and value else None


def _infos(value: Any) -> dict[str, str]:
    items = value if isinstance(value, list) else []
    return {str(i["name"]): str(i.get("value", "")) for i in items if isinstance(i, dict) and "name" in i}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _app_path(app: str) -> str:
    return f"/api/v1/applications/{quote(app, safe='')}"


def _query(*, app_namespace: str | None, project: str | None) -> dict[str, str]:
    params = {}
    if app_namespace:
        params["appNamespace"] = app_namespace
    if project:
        params["project"] = project
    return params


def _error_body(response: httpx.Response) -> Mapping[str, Any]:
    try:
        return _obj(response.json())
    except ValueError:
        return {}


def _error_detail(response: httpx.Response) -> str | None:
    body = _error_body(response)
    return _str(body.get("message")) or _str(body.get("error"))


def _is_operation_in_progress(response: httpx.Response) -> bool:
    body = _error_body(response)
    text = f"{body.get('error') or ''} {body.get('message') or ''}".lower()
    return body.get("code") == GRPC_FAILED_PRECONDITION or OPERATION_IN_PROGRESS in text


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
