"""Reads about how the App is set up, for ``ferry doctor``: the App itself, its installation on a repository,
and the protection of a branch. Read only; each answer is reduced to plain data (``bot.doctor`` judges it).

- ``GET /app`` (App JWT): the permissions and events the App asks for.
- ``GET /repos/{owner}/{repo}/installation`` (App JWT): 404 when the App is not installed there; else the
  permissions the installation accepted (they lag behind the App's until an owner accepts new ones).
- ``GET /app/hook/config`` and ``GET /app/hook/deliveries`` (App JWT): where GitHub sends the App's
  webhooks, and how its recent deliveries went (docs.github.com/en/rest/apps/webhooks).
- ``GET /repos/{owner}/{repo}/branches/{branch}/protection`` (installation token): 404 "Branch not
  protected", 403 without ``administration: read`` (docs.github.com/en/rest/branches/branch-protection).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
from githubkit.exception import GitHubException, RequestFailed

from bot.github.client import REST_API_VERSION, GitHubApp, call, status_of, translate

# What a githubkit request may raise (a Lane's own GitHubError passes through as it is).
FAILURES = (GitHubException, httpx.HTTPError, TimeoutError)


@dataclass(frozen=True)
class AppInfo:
    id: int
    slug: str
    name: str
    owner: str
    owner_type: str  # "Organization" or "User"
    html_url: str
    permissions: dict[str, str]
    events: tuple[str, ...]

    @property
    def settings_url(self) -> str:
        """The App's settings page (where permissions and events are changed)."""
        root = self.html_url.split("/apps/", 1)[0]
        if self.owner_type == "Organization":
            return f"{root}/organizations/{self.owner}/settings/apps/{self.slug}"
        return f"{root}/settings/apps/{self.slug}"


@dataclass(frozen=True)
class InstallationInfo:
    id: int
    account: str
    html_url: str
    permissions: dict[str, str]
    repository_selection: str


@dataclass(frozen=True)
class Protection:
    """``state``: ``protected`` (``contexts`` are its required status checks), ``unprotected`` (404),
    ``forbidden`` (403: the App may not read it)."""

    state: Literal["protected", "unprotected", "forbidden"]
    contexts: tuple[str, ...] = ()
    app_ids: tuple[int | None, ...] = ()  # per context, the App a check is pinned to (None: any source)


@dataclass(frozen=True)
class HookDelivery:
    event: str
    status_code: int  # 0: GitHub could not reach the receiver
    status: str
    delivered_at: str
    guid: str


@dataclass(frozen=True)
class Webhook:
    url: str
    deliveries: tuple[HookDelivery, ...]  # newest first


def _login(account: Any) -> tuple[str, str]:
    if not isinstance(account, dict):
        return "", ""
    return str(account.get("login") or account.get("slug") or ""), str(account.get("type") or "")


async def app_info(github: GitHubApp) -> AppInfo:
    """The App as ``GET /app`` describes it."""
    rest = github.app_client.rest(REST_API_VERSION)
    body = (await call("reading the App (GET /app)", rest.apps.async_get_authenticated())).json()
    owner, owner_type = _login(body.get("owner"))
    return AppInfo(
        id=int(body["id"]),
        slug=str(body.get("slug") or ""),
        name=str(body.get("name") or ""),
        owner=owner,
        owner_type=owner_type or "User",
        html_url=str(body.get("html_url") or ""),
        permissions={str(k): str(v) for k, v in (body.get("permissions") or {}).items()},
        events=tuple(str(e) for e in body.get("events") or ()),
    )


async def repo_installation(github: GitHubApp, full_name: str) -> InstallationInfo | None:
    """The App's installation that covers ``full_name``, or None when the App is not installed there."""
    owner, _, name = full_name.partition("/")
    rest = github.app_client.rest(REST_API_VERSION)
    try:
        response = await rest.apps.async_get_repo_installation(owner, name)
    except FAILURES as exc:
        if status_of(exc) == 404:
            return None
        raise translate(exc, f"reading the App's installation on {full_name}") from exc
    body = response.json()
    account, _ = _login(body.get("account"))
    return InstallationInfo(
        id=int(body["id"]),
        account=account,
        html_url=str(body.get("html_url") or ""),
        permissions={str(k): str(v) for k, v in (body.get("permissions") or {}).items()},
        repository_selection=str(body.get("repository_selection") or ""),
    )


async def branch_protection(
    github: GitHubApp, installation_id: int, full_name: str, branch: str
) -> Protection:
    rest = github.installation(installation_id).rest(REST_API_VERSION)
    return await read_protection(rest, full_name, branch)


async def read_protection(rest: Any, full_name: str, branch: str) -> Protection:
    """``branch``'s protection through an installation's REST client. 404 "Branch not protected" is
    unprotected; another 404 ("Not Found": GitHub hides what the App may not read) or a 403 (not a rate
    limit) means the App lacks ``administration: read``."""
    owner, _, name = full_name.partition("/")
    try:
        response = await rest.repos.async_get_branch_protection(owner, name, branch)
    except FAILURES as exc:
        status = status_of(exc)
        if status == 404 and _error_message(exc) == "Branch not protected":
            return Protection("unprotected")
        if status == 404 or (status == 403 and "rate limit" not in str(translate(exc, ""))):
            return Protection("forbidden")
        raise translate(exc, f"reading the protection of {full_name} branch {branch}") from exc
    body: Any = response.json()
    required: dict[str, Any] = body.get("required_status_checks") or {}
    checks = required.get("checks") or [
        {"context": c, "app_id": None} for c in required.get("contexts") or []
    ]
    return Protection(
        "protected",
        contexts=tuple(str(c.get("context")) for c in checks),
        app_ids=tuple(c.get("app_id") for c in checks),
    )


def _error_message(exc: Exception) -> str:
    """GitHub's ``message`` of a failed request, or ""."""
    try:
        body = exc.response.json() if isinstance(exc, RequestFailed) else {}
    except ValueError:
        return ""
    return str(body.get("message", "")) if isinstance(body, dict) else ""


async def webhook(github: GitHubApp, *, recent: int = 30) -> Webhook:
    """The App's webhook URL and its ``recent`` newest deliveries."""
    rest = github.app_client.rest(REST_API_VERSION)
    config = (await call("reading the App's webhook", rest.apps.async_get_webhook_config_for_app())).json()
    listed = await call(
        "listing the App's webhook deliveries", rest.apps.async_list_webhook_deliveries(per_page=recent)
    )
    deliveries = tuple(
        HookDelivery(
            event=str(item.get("event") or ""),
            status_code=int(item.get("status_code") or 0),
            status=str(item.get("status") or ""),
            delivered_at=str(item.get("delivered_at") or ""),
            guid=str(item.get("guid") or ""),
        )
        for item in listed.json()
    )
    return Webhook(url=str(config.get("url") or ""), deliveries=deliveries)
