"""The GitHub stand-in's web page for registering an App from a manifest (github.com, not the REST API).

GitHub's manifest flow ("Registering a GitHub App from a manifest", docs.github.com/en/apps/sharing-github-
apps/registering-a-github-app-from-a-manifest): a browser POSTs a form field ``manifest`` (the JSON) to
``https://github.com/settings/apps/new`` (the App belongs to the signed-in person) or
``https://github.com/organizations/ORGANIZATION/settings/apps/new`` (to that organization), with an
optional ``state`` in the action's query string "to protect against forgery attacks". The person names the
App and clicks "Create GitHub App"; GitHub then redirects the browser to the manifest's ``redirect_url``
with ``code`` (one-time, one hour) and the same ``state``; ``POST /app-manifests/{code}/conversions``
exchanges the code (``github_routes_app``).

The stand-in models a person who is signed in and confirms at once: the POST answers with that redirect
(302). A manifest that is not a JSON object, or lacks ``url`` (GitHub requires the App's homepage) or
``hook_attributes.url`` when ``hook_attributes`` is given, answers 422 with the reason, as GitHub shows it
on the page instead of creating anything. An organization other than the stand-in's owner is a 404.
"""

from __future__ import annotations

import html
import json
import secrets
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web

from bot.sandbox.github_ops import GitHubOps
from bot.sandbox.github_records import ManifestRecord

PERSONAL = "/settings/apps/new"
ORGANIZATION = "/organizations/{org}/settings/apps/new"
# The path patterns, for the request pipeline: a browser brings a session cookie, not an API token.
WEB_ROUTE_PATTERN = r"^(/organizations/[^/]+)?/settings/apps/new$"


class ManifestWebRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_post(PERSONAL, self.new_app)
        router.add_post(ORGANIZATION, self.new_app)

    async def new_app(self, request: web.Request) -> web.Response:
        org = request.match_info.get("org")
        if org is not None and org != self.state.site.owner:
            return _page(404, f"There is no organization {org}, or you are not one of its owners.")
        form = await request.post()
        try:
            manifest = _manifest(form.get("manifest"))
        except (ValueError, TypeError) as exc:
            return _page(422, f"Invalid GitHub App configuration: {exc}")
        code = secrets.token_hex(10)
        self.state.manifests[code] = ManifestRecord(code, manifest, self.state.clock())
        redirect = manifest.get("redirect_url")
        if not isinstance(redirect, str) or not redirect:
            return _page(201, f"Created GitHub App {manifest.get('name', '')}.")
        query = {"code": code}
        if "state" in request.query:
            query["state"] = request.query["state"]
        return web.Response(status=302, headers={"Location": _with_query(redirect, query)})


def _manifest(raw: Any) -> dict[str, Any]:
    if not isinstance(raw, str) or not raw:
        raise ValueError("the form has no manifest field")
    try:
        manifest = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"the manifest is not JSON ({exc})") from None
    if not isinstance(manifest, dict):
        raise TypeError("the manifest must be a JSON object")
    if not isinstance(manifest.get("url"), str) or not manifest["url"]:
        raise ValueError("url (the App's homepage) is required")
    hook = manifest.get("hook_attributes")
    if hook is not None and (not isinstance(hook, dict) or not hook.get("url")):
        raise ValueError("hook_attributes.url is required when hook_attributes is given")
    return manifest


def _with_query(url: str, extra: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), *extra.items()]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _page(status: int, text: str) -> web.Response:
    body = f"<!doctype html><title>GitHub</title><p>{html.escape(text)}</p>"
    return web.Response(status=status, text=body, content_type="text/html")
