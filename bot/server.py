"""Ferry's HTTP front door (``ferry serve``): GitHub webhooks, health, Prometheus metrics, a status page.

This module only authenticates, validates and acknowledges. The work a delivery triggers is done by the
``deliver`` callable it is given (the reconciler), run as a background task so GitHub gets its answer in
milliseconds. Nothing in a webhook request is parsed or trusted before its signature is checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import orjson
from aiohttp import web

from bot import __version__
from bot.errors import SettingsError
from bot.logs import get_logger
from bot.metrics import (
    EVENT_UNVERIFIED,
    OUTCOME_ACCEPTED,
    OUTCOME_BAD_SIGNATURE,
    OUTCOME_BUSY,
    OUTCOME_DUPLICATE,
    OUTCOME_FAILED,
    OUTCOME_MALFORMED,
    OUTCOME_PING,
    OUTCOME_TOO_LARGE,
    OUTCOME_UNSIGNED,
    Metrics,
)
from bot.settings import Settings
from bot.status_model import StatusView, as_json
from bot.status_page import NO_RECONCILER, render_page
from bot.status_view import refresh_seconds

WEBHOOK_PATH: Final = "/webhooks/github"
HEALTH_PATH: Final = "/healthz"  # liveness: the process and its event loop answer
READY_PATH: Final = "/readyz"  # readiness: settings valid and GitHub reached (503 with the reason until then)
METRICS_PATH: Final = "/metrics"
STATUS_PATH: Final = "/"
STATUS_JSON_PATH: Final = "/status.json"
STATUS_LINKS: Final = (("status.json", STATUS_JSON_PATH), ("healthz", HEALTH_PATH), ("metrics", METRICS_PATH))

MAX_BODY_BYTES: Final = 25 * 1024 * 1024  # GitHub caps webhook payloads at 25 MB
RECENT_DELIVERY_IDS: Final = 10_000
SHUTDOWN_GRACE_SECONDS: Final = 5.0
# After a 413, how long aiohttp may read (and discard) the rest of the body so the client sees the answer.
LINGER_SECONDS: Final = 1.0
# Slow or half-sent requests are dropped within these bounds, so they cannot pile up and hold the server.
# GitHub sends a delivery in one go and gives up on it after 10 s itself.
HEADER_READ_SECONDS: Final = 10.0  # a connection's request line and headers (also the keep-alive idle)
BODY_READ_SECONDS: Final = 10.0  # a webhook's body, once its headers are in

SIGNATURE_HEADER: Final = "X-Hub-Signature-256"
EVENT_HEADER: Final = "X-GitHub-Event"
DELIVERY_HEADER: Final = "X-GitHub-Delivery"
SIGNATURE_PREFIX: Final = "sha256="
SIGNATURE_PREFIX_BYTES: Final = SIGNATURE_PREFIX.encode()
PING_EVENT: Final = "ping"

MSG_BODY_TIMEOUT: Final = "the body did not arrive within {seconds:g}s: GitHub sends a delivery in one go"
MSG_TOO_LARGE: Final = (
    f"the body is larger than GitHub's {MAX_BODY_BYTES // (1024 * 1024)} MB webhook cap: "
    "this is not a GitHub delivery"
)
MSG_UNSIGNED: Final = (
    f"{SIGNATURE_HEADER} header is missing: set a webhook secret in the GitHub App settings "
    "and the same value in FERRY_WEBHOOK_SECRET"
)
MSG_BAD_SIGNATURE: Final = f"{SIGNATURE_HEADER} does not match the body: check FERRY_WEBHOOK_SECRET"
MSG_MISSING_HEADER: Final = "{header} header is missing: only GitHub webhook deliveries are accepted here"
MSG_NOT_JSON: Final = "the body is not valid JSON: {reason}"
MSG_FORM_ENCODED: Final = (
    "the body is form-encoded: set the webhook's content type to application/json in the GitHub settings"
)
MSG_NOT_OBJECT: Final = "the body is JSON but not an object: GitHub webhook payloads are JSON objects"
MSG_NO_SECRET: Final = (
    "FERRY_WEBHOOK_SECRET is required to receive webhooks: set it to the webhook secret of the GitHub App"
)
MSG_CANNOT_LISTEN: Final = "cannot listen on {host}:{port} ({reason}): choose another --host or --port"

log = get_logger(__name__)
_JSON_HEADERS: Final = {"Content-Type": "application/json"}


@dataclass(frozen=True)
class WebhookDelivery:
    """One signed, parsed webhook delivery from GitHub."""

    event: str  # the X-GitHub-Event header: "push", "pull_request", ...
    delivery_id: str  # the X-GitHub-Delivery header, unique per delivery (kept on redelivery)
    payload: Mapping[str, Any]
    received_at: float  # time.time() when the request arrived


# Hands a delivery on. Returns None when it was dealt with at once (the usual case: a pass queued), or what
# is left to await (an async function's coroutine, say), which runs off the request path as a task.
Deliver = Callable[[WebhookDelivery], Awaitable[None] | None]
Status = Callable[[], Awaitable[StatusView]]
Ready = Callable[[], tuple[bool, Mapping[str, Any]]]  # (ready, the JSON body of GET /readyz)
Admit = Callable[[], str | None]  # None: accept one more delivery; else why to answer 503


class _RecentIds:
    """A bounded set of recently accepted delivery ids, least recently seen evicted first."""

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._ids: OrderedDict[str, None] = OrderedDict()

    def seen(self, delivery_id: str) -> bool:
        if delivery_id in self._ids:
            self._ids.move_to_end(delivery_id)
            return True
        return False

    def add(self, delivery_id: str) -> None:
        self._ids[delivery_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)

    def forget(self, delivery_id: str) -> None:
        self._ids.pop(delivery_id, None)


def signature_for(secret: bytes, body: bytes) -> str:
    """The X-Hub-Signature-256 value GitHub sends for ``body``."""
    return SIGNATURE_PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


class _Webhooks:
    """The webhook endpoint and the background deliveries it starts."""

    def __init__(
        self,
        secret: bytes,
        deliver: Deliver,
        metrics: Metrics,
        max_body_bytes: int,
        body_timeout: float,
        *,
        admit: Admit | None = None,
    ) -> None:
        self._secret = secret
        self._deliver = deliver
        self._admit = admit
        self._metrics = metrics
        self._max_body_bytes = max_body_bytes
        self._body_timeout = body_timeout
        # Only an optimisation against GitHub's redeliveries: the reconciler is idempotent, so a duplicate
        # that slips past this bounded, per-process set (another replica, a restart) changes nothing.
        self._recent = _RecentIds(RECENT_DELIVERY_IDS)
        self.tasks: set[asyncio.Task[None]] = set()
        # labels() takes a lock and builds a key on every call; the ack path looks its counters up once.
        self._counters: dict[tuple[str, str], Any] = {}

    def _count(self, event: str, outcome: str) -> None:
        child = self._counters.get((event, outcome))
        if child is None:
            child = self._counters[event, outcome] = self._metrics.deliveries.labels(event, outcome)
        child.inc()

    async def _read_body(self, request: web.Request) -> bytes | None:
        """The raw body, or None once it exceeds the cap (the rest is never buffered)."""
        if request.content_length is not None:
            # A declared length was checked against the cap already, and aiohttp never reads past it.
            return await request.read()
        body = bytearray()
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > self._max_body_bytes:
                return None
        return bytes(body)

    async def handle(self, request: web.Request) -> web.Response:
        received_at = time.time()
        headers = request.headers
        signature = headers.get(SIGNATURE_HEADER)
        length = request.content_length  # parsed from the header on every access
        if length is not None and length > self._max_body_bytes:
            return self._reject(request, EVENT_UNVERIFIED, OUTCOME_TOO_LARGE, 413, MSG_TOO_LARGE)
        if not signature:
            return self._reject(request, EVENT_UNVERIFIED, OUTCOME_UNSIGNED, 401, MSG_UNSIGNED)
        body: bytes | None
        if length is not None and request.content.is_eof():
            body = request.content.read_nowait()  # the whole declared body has arrived: take it as is
        else:
            try:
                async with asyncio.timeout(self._body_timeout):
                    body = await self._read_body(request)
            except TimeoutError:
                message = MSG_BODY_TIMEOUT.format(seconds=self._body_timeout)
                return self._reject(request, EVENT_UNVERIFIED, OUTCOME_MALFORMED, 408, message)
        if body is None:
            return self._reject(request, EVENT_UNVERIFIED, OUTCOME_TOO_LARGE, 413, MSG_TOO_LARGE)
        expected = SIGNATURE_PREFIX_BYTES + hmac.digest(self._secret, body, "sha256").hex().encode()
        if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogateescape")):
            return self._reject(request, EVENT_UNVERIFIED, OUTCOME_BAD_SIGNATURE, 401, MSG_BAD_SIGNATURE)

        # From here on the request comes from whoever holds the webhook secret: GitHub.
        event = headers.get(EVENT_HEADER, "")
        delivery_id = headers.get(DELIVERY_HEADER, "")
        if not event or not delivery_id:
            message = MSG_MISSING_HEADER.format(header=EVENT_HEADER if not event else DELIVERY_HEADER)
            return self._reject(request, EVENT_UNVERIFIED, OUTCOME_MALFORMED, 400, message)
        try:
            payload = orjson.loads(body)  # half the json module's time: the largest cost of the ack
        except (ValueError, RecursionError) as exc:
            form = request.content_type == "application/x-www-form-urlencoded"
            message = MSG_FORM_ENCODED if form else MSG_NOT_JSON.format(reason=_json_reason(exc))
            return self._reject(request, event, OUTCOME_MALFORMED, 400, message)
        if not isinstance(payload, dict):
            return self._reject(request, event, OUTCOME_MALFORMED, 400, MSG_NOT_OBJECT)

        if event == PING_EVENT:
            self._count(event, OUTCOME_PING)
            log.info("ping received", extra={"delivery": delivery_id, "hook_id": payload.get("hook_id")})
            return web.json_response({"ok": True, "zen": payload.get("zen")})
        if self._recent.seen(delivery_id):
            self._count(event, OUTCOME_DUPLICATE)
            log.info("duplicate delivery ignored", extra={"event": event, "delivery": delivery_id})
            return web.json_response({"ok": True, "duplicate": True, "delivery": delivery_id})

        refusal = self._admit() if self._admit is not None else None
        if refusal is not None:
            return self._reject(request, event, OUTCOME_BUSY, 503, refusal)
        self._recent.add(delivery_id)
        self._count(event, OUTCOME_ACCEPTED)
        # DEBUG, not INFO: a line per delivery costs more than the rest of the ack path together; the
        # metrics count every delivery, and the reconciler logs the pass each one triggers.
        if log.isEnabledFor(logging.DEBUG):
            log.debug("webhook delivery accepted", extra=_summary(event, delivery_id, payload))
        delivery = WebhookDelivery(event, delivery_id, payload, received_at)
        try:
            rest = self._deliver(delivery)  # most deliveries only queue a pass: no task is needed for them
        except Exception:
            self._failed(delivery)
        else:
            if rest is not None:
                task = asyncio.get_running_loop().create_task(
                    self._run(delivery, rest), name=f"delivery {delivery_id}"
                )
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        # {"ok": true, "delivery": ID}, written directly: json_response's encoder costs more than the rest,
        # and headers given whole skip aiohttp's parsing of a content_type argument.
        answer = b'{"ok": true, "delivery": ' + orjson.dumps(delivery_id) + b"}"
        return web.Response(body=answer, status=202, headers=_JSON_HEADERS)

    def _reject(
        self, request: web.Request, event: str, outcome: str, status: int, message: str
    ) -> web.Response:
        self._count(event, outcome)
        log.warning(
            "webhook delivery rejected",
            extra={"outcome": outcome, "status": status, "reason": message, "remote": request.remote},
        )
        response = web.json_response({"ok": False, "message": message}, status=status)
        if status in (408, 413):
            response.force_close()  # do not keep a connection whose sender is still pushing (or stalling)
        return response

    async def _run(self, delivery: WebhookDelivery, rest: Awaitable[None]) -> None:
        gauge = self._metrics.deliveries_in_flight
        gauge.inc()
        try:
            await rest
        except Exception:
            self._failed(delivery)
        else:
            log.debug(
                "webhook delivery done", extra={"event": delivery.event, "delivery": delivery.delivery_id}
            )
        finally:
            gauge.dec()

    def _failed(self, delivery: WebhookDelivery) -> None:
        # One delivery's failure must not take the server down; forgetting its id lets a manual
        # "Redeliver" in GitHub's settings retry the work.
        self._recent.forget(delivery.delivery_id)
        self._count(delivery.event, OUTCOME_FAILED)
        log.exception(
            "webhook delivery failed", extra={"event": delivery.event, "delivery": delivery.delivery_id}
        )

    async def drain(self, grace: float) -> None:
        """Let in-flight deliveries finish for up to ``grace`` seconds, then cancel the rest."""
        if not self.tasks:
            return
        pending = set(self.tasks)
        log.info("waiting for in-flight deliveries", extra={"count": len(pending), "grace_seconds": grace})
        _, still_running = await asyncio.wait(pending, timeout=grace)
        for task in still_running:
            task.cancel()
        if still_running:
            log.warning("cancelled unfinished deliveries", extra={"count": len(still_running)})
            await asyncio.wait(still_running)


def _summary(event: str, delivery_id: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    repository = payload.get("repository")
    installation = payload.get("installation")
    return {
        "event": event,
        "action": payload.get("action"),
        "delivery": delivery_id,
        "repository": repository.get("full_name") if isinstance(repository, dict) else None,
        "installation": installation.get("id") if isinstance(installation, dict) else None,
    }


def _json_reason(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    if isinstance(exc, UnicodeDecodeError):
        return "it is not UTF-8"
    if isinstance(exc, RecursionError):
        return "it is nested too deeply"
    return str(exc)


WEBHOOKS_KEY: Final = web.AppKey("ferry_webhooks", _Webhooks)
METRICS_KEY: Final = web.AppKey("ferry_metrics", Metrics)


def create_app(
    settings: Settings,
    deliver: Deliver,
    *,
    metrics: Metrics,
    status: Status | None = None,
    ready: Ready | None = None,
    admit: Admit | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    body_timeout: float = BODY_READ_SECONDS,
) -> web.Application:
    """The aiohttp application behind ``ferry serve``.

    ``status`` feeds the page at ``/`` (HTML; JSON at ``/status.json`` or ``/?format=json``); ``ready``
    answers ``/readyz`` (without it the server is ready once it listens); ``admit`` may refuse a signed
    delivery with 503 (Ferry cannot hold more yet); ``shutdown_grace`` is how long shutdown waits for
    in-flight deliveries before cancelling them; a webhook body not in after ``body_timeout`` seconds
    gets 408.
    """
    if settings.webhook_secret is None:
        raise SettingsError(MSG_NO_SECRET)
    secret = settings.webhook_secret.get_secret_value().encode()
    webhooks = _Webhooks(secret, deliver, metrics, max_body_bytes, body_timeout, admit=admit)
    # client_max_size backs up the webhook's own cap for any other route that might read a body.
    app = web.Application(client_max_size=max_body_bytes)
    app[WEBHOOKS_KEY] = webhooks
    app[METRICS_KEY] = metrics

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"ok": True, "version": __version__})

    async def readyz(request: web.Request) -> web.Response:
        is_ready, body = ready() if ready is not None else (True, {"ready": True})
        return web.json_response({**body, "version": __version__}, status=200 if is_ready else 503)

    async def metrics_text(request: web.Request) -> web.Response:
        body, content_type = metrics.render()
        response = web.Response(body=body)
        response.headers["Content-Type"] = content_type
        return response

    async def status_page(request: web.Request) -> web.Response:
        view = await status() if status is not None else None
        if request.path == STATUS_JSON_PATH or request.query.get("format") == "json":
            return web.json_response(as_json(view) if view else {"ok": False, "message": NO_RECONCILER})
        refresh = refresh_seconds(view, request.query.get("refresh"))
        page = render_page(view, version=__version__, refresh=refresh, links=STATUS_LINKS)
        return web.Response(text=page, content_type="text/html")

    async def drain(app: web.Application) -> None:
        await webhooks.drain(shutdown_grace)

    app.router.add_post(WEBHOOK_PATH, webhooks.handle)
    app.router.add_get(HEALTH_PATH, healthz)
    app.router.add_get(READY_PATH, readyz)
    app.router.add_get(METRICS_PATH, metrics_text)
    app.router.add_get(STATUS_PATH, status_page)
    app.router.add_get(STATUS_JSON_PATH, status_page)
    app.on_shutdown.append(drain)
    return app


async def wait_for_deliveries(app: web.Application) -> None:
    """Wait until every delivery accepted so far has finished its background work (tests, sandbox)."""
    tasks = app[WEBHOOKS_KEY].tasks
    while tasks:
        await asyncio.wait(set(tasks))


async def run_server(
    app: web.Application, host: str, port: int, *, header_timeout: float = HEADER_READ_SECONDS
) -> None:
    """Serve ``app`` until cancelled, then stop taking requests and let in-flight deliveries finish.

    A connection that has not sent a whole request line and headers within ``header_timeout`` seconds
    (of connecting, or of its previous answer) is closed.
    """
    # No access log: every delivery is already logged once, with its event and id, by the handler.
    # aiohttp's keep-alive timer runs from the connection's start and closes it while no whole request
    # has arrived: it is the header read timeout (aiohttp has no other; its default is an hour).
    runner = web.AppRunner(
        app,
        access_log=None,
        lingering_time=LINGER_SECONDS,
        keepalive_timeout=header_timeout,
        handle_signals=False,
    )
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise SettingsError(MSG_CANNOT_LISTEN.format(host=host, port=port, reason=exc.strerror)) from exc
        log.info("ferry serve listening", extra={"host": host, "port": port, "version": __version__})
        await asyncio.Event().wait()
    finally:
        with contextlib.suppress(asyncio.CancelledError):
            await runner.cleanup()
        log.info("ferry serve stopped")
