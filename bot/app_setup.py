"""``ferry app create``: GitHub's App manifest flow, from a page served on 127.0.0.1.

The flow is GitHub's ("Registering a GitHub App from a manifest", docs.github.com/en/apps/sharing-github-
apps/registering-a-github-app-from-a-manifest):

1. ``GET /`` on the local page shows a form that POSTs the manifest (field ``manifest``) to
   ``<github>/settings/apps/new`` or ``<github>/organizations/<org>/settings/apps/new``, with a random
   ``state`` in the action's query string. The button is the one click; no JavaScript.
2. GitHub creates the App once the person confirms and sends the browser to the manifest's
   ``redirect_url``, this page's ``/callback``, with a one-time ``code`` and the same ``state``.
3. ``/callback`` refuses a ``state`` that is not ours (403, nothing exchanged: forgery or a stale tab), then
   exchanges the code at ``POST /app-manifests/{code}/conversions`` for the App's id, private key (PEM)
   and webhook secret. The code works once, within an hour.

The credentials go to the caller (``ManifestFlow.wait``) and from there to a settings file or a
Kubernetes Secret (``bot.app_outputs``); they never reach the log or the page. The page binds to
127.0.0.1 only, on a port the system chooses, and answers one successful exchange.
"""

from __future__ import annotations

import asyncio
import hmac
import html
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import httpx
from aiohttp import web
from githubkit import GitHub
from githubkit.exception import GitHubException
from pydantic import SecretStr

from bot.errors import FerryError, GitHubError
from bot.github.client import REST_API_VERSION, USER_AGENT, translate
from bot.status_view import github_html_url

log = logging.getLogger("ferry.app")

CALLBACK_PATH: Final = "/callback"
EXCHANGE_TIMEOUT: Final = 30.0  # seconds for the code exchange
MSG_STATE: Final = (
    "the callback's state does not match this page's: it did not come from the form this page served "
    "(a forged request, or a tab left from an earlier run); nothing was exchanged"
)
MSG_NO_CODE: Final = "GitHub's redirect carries no code: the App was not created (cancelled on GitHub?)"
MSG_DONE: Final = "this page already received its App; run `ferry app create` again to create another"
MSG_EXCHANGE: Final = (
    "GitHub created the App but exchanging its one-time code failed: {error}. The App exists: generate a "
    "private key and set a webhook secret on its settings page ({settings}), or delete it and run "
    "`ferry app create` again"
)

Manifest = dict[str, Any]


@dataclass(frozen=True)
class CreatedApp:
    """What ``POST /app-manifests/{code}/conversions`` returns that Ferry needs."""

    id: int
    slug: str
    name: str
    owner: str
    html_url: str
    pem: SecretStr = field(repr=False)
    webhook_secret: SecretStr | None = field(repr=False)

    @property
    def install_url(self) -> str:
        return f"{self.html_url.rstrip('/')}/installations/new"


def new_app_url(web_url: str, org: str | None) -> str:
    """Where the form posts: the signed-in person's Apps, or an organization's."""
    root = web_url.rstrip("/")
    return f"{root}/organizations/{org}/settings/apps/new" if org else f"{root}/settings/apps/new"


class ManifestFlow:
    """The local page of the manifest flow.

    ``manifest_for(redirect_url)`` builds the manifest once the page's address is known; ``api_url`` is
    the REST API root (the web root is derived from it); ``org`` makes the App an organization's.
    """

    def __init__(
        self,
        manifest_for: Callable[[str], Manifest],
        *,
        api_url: str,
        org: str | None = None,
        transport_timeout: float = EXCHANGE_TIMEOUT,
    ) -> None:
        self._manifest_for = manifest_for
        self.api_url = api_url.rstrip("/")
        self.org = org
        self.state = secrets.token_urlsafe(24)
        self._timeout = transport_timeout
        self._result: asyncio.Future[CreatedApp] | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.manifest: Manifest = {}

    @property
    def form_action(self) -> str:
        return f"{new_app_url(github_html_url(self.api_url), self.org)}?state={self.state}"

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve the page; returns its URL (``http://127.0.0.1:<port>/``)."""
        self._result = asyncio.get_running_loop().create_future()
        app = web.Application()
        app.router.add_get("/", self._form)
        app.router.add_get(CALLBACK_PATH, self._callback)
        # No access log: the callback's query holds the one-time code.
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.url = f"http://{bound_host}:{bound_port}/"
        self.manifest = self._manifest_for(f"http://{bound_host}:{bound_port}{CALLBACK_PATH}")
        return self.url

    async def wait(self, within: float) -> CreatedApp:
        """The created App, once the callback has exchanged its code; FerryError after ``within`` seconds
        or when the exchange failed."""
        assert self._result is not None, "start() first"
        try:
            async with asyncio.timeout(within):
                return await asyncio.shield(self._result)
        except TimeoutError:
            raise FerryError(
                f"no App was created within {within:g}s: open {self.url}, click the button and confirm on "
                "GitHub (or pass a longer --timeout)"
            ) from None

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> ManifestFlow:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    # the page ------------------------------------------------------------------------------------
    async def _form(self, request: web.Request) -> web.Response:
        owner = f"the organization <b>{html.escape(self.org)}</b>" if self.org else "your GitHub account"
        rows = "".join(
            f"<li><code>{html.escape(name)}</code>: {html.escape(level)}</li>"
            for name, level in self.manifest["default_permissions"].items()
        )
        body = FORM_PAGE.format(
            action=html.escape(self.form_action, quote=True),
            manifest=html.escape(json.dumps(self.manifest), quote=True),
            owner=owner,
            hook=html.escape(self.manifest["hook_attributes"]["url"]),
            permissions=rows,
            events=html.escape(", ".join(self.manifest["default_events"])),
        )
        return web.Response(text=body, content_type="text/html")

    async def _callback(self, request: web.Request) -> web.Response:
        assert self._result is not None
        if self._result.done():
            return _page(410, "Already done", MSG_DONE)
        state = request.query.get("state", "")
        if not hmac.compare_digest(state.encode(), self.state.encode()):
            log.warning("refused a callback whose state is not this page's")
            return _page(403, "Refused", MSG_STATE)
        code = request.query.get("code", "")
        if not code:
            return _page(400, "No App", MSG_NO_CODE)
        try:
            created = await self._exchange(code)
        except GitHubError as exc:
            settings = f"{github_html_url(self.api_url)}/settings/apps"
            error = FerryError(MSG_EXCHANGE.format(error=exc, settings=settings))
            self._result.set_exception(error)
            return _page(502, "Exchange failed", str(error))
        self._result.set_result(created)
        return _page(
            200,
            "App created",
            f'GitHub App "{created.name}" (id {created.id}) is created. Next, install it on your GitOps '
            f"repository: {created.install_url} — the terminal says where its credentials went.",
            link=created.install_url,
        )

    async def _exchange(self, code: str) -> CreatedApp:
        """``POST /app-manifests/{code}/conversions`` (no credentials: the code is one)."""
        try:
            async with (
                GitHub(
                    base_url=self.api_url, timeout=self._timeout, user_agent=USER_AGENT, auto_retry=False
                ) as github,
                asyncio.timeout(self._timeout),
            ):
                response = await github.rest(REST_API_VERSION).apps.async_create_from_manifest(code)
        except (GitHubException, httpx.HTTPError, TimeoutError) as exc:
            raise translate(exc, "exchanging the manifest's one-time code") from None
        data = response.parsed_data
        owner = getattr(data.owner, "login", None) or getattr(data.owner, "slug", None) or ""
        return CreatedApp(
            id=data.id,
            slug=data.slug or "",
            name=data.name,
            owner=str(owner),
            html_url=data.html_url,
            pem=SecretStr(data.pem),
            webhook_secret=SecretStr(data.webhook_secret) if data.webhook_secret else None,
        )


def _page(status: int, title: str, text: str, link: str | None = None) -> web.Response:
    anchor = f'<p><a href="{html.escape(link, quote=True)}">{html.escape(link)}</a></p>' if link else ""
    body = RESULT_PAGE.format(title=html.escape(title), text=html.escape(text), link=anchor)
    return web.Response(status=status, text=body, content_type="text/html")


STYLE: Final = (
    "body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem}"
    "button{font-size:1.1rem;padding:.6rem 1.2rem;cursor:pointer}code{font-size:.9em}"
)
_BRACED_STYLE: Final = STYLE.replace("{", "{{").replace("}", "}}")  # the pages below are str.format templates
FORM_PAGE: Final = (
    "<!doctype html><html lang=en><meta charset=utf-8>"
    "<meta name=viewport content='width=device-width,initial-scale=1'>"
    "<title>Create Ferry's GitHub App</title><style>" + _BRACED_STYLE + "</style>"
    "<h1>Create Ferry's GitHub App</h1>"
    "<p>The button sends Ferry's App manifest to GitHub, which creates the App for {owner} once you confirm "
    "there, then sends you back here. Webhooks will go to <code>{hook}</code>.</p>"
    "<form method=post action='{action}'>"
    "<input type=hidden name=manifest value='{manifest}'>"
    "<button type=submit>Create the App on GitHub</button></form>"
    "<details><summary>What the App may do</summary><ul>{permissions}</ul>"
    "<p>Events: {events}</p></details>"
)
RESULT_PAGE: Final = (
    "<!doctype html><html lang=en><meta charset=utf-8><title>{title}</title><style>"
    + _BRACED_STYLE
    + "</style>"
    "<h1>{title}</h1><p>{text}</p>{link}"
)
