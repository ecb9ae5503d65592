"""App and installation routes of the GitHub stand-in (JWT-authenticated ``/app/*``, installation tokens,
``/installation/repositories``), the App manifest flow's code exchange, plus rate limit, collaborator
permission and team membership."""

from __future__ import annotations

import re
import secrets
import time

from aiohttp import web

from bot.sandbox import github_payloads as payloads
from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_ops import CURRENT_IDENTITY, ApiError, GitHubOps, json_response, not_found, paginate
from bot.sandbox.github_shapes import LEGACY_PERMISSION

REPO = "/repos/{owner}/{repo}"
TOKEN_LIFETIME = 3600.0
RATE_LIMIT = 5000
# The manifest flow's code "expires after one hour" and is exchanged once ("Registering a GitHub App from
# a manifest", docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest, step 3).
MANIFEST_CODE_LIFETIME = 3600.0


class AppRoutes:
    def __init__(self, ops: GitHubOps, rate_usage: dict[str, tuple[int, int]]) -> None:
        self.ops = ops
        self.state = ops.state
        self.rate_usage = rate_usage

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get("/app", self.get_app)
        router.add_get("/app/installations", self.list_installations)
        router.add_get("/app/installations/{installation_id:\\d+}", self.get_installation)
        router.add_post("/app/installations/{installation_id:\\d+}/access_tokens", self.create_token)
        router.add_get(REPO + "/installation", self.get_installation)
        router.add_get("/installation/repositories", self.installation_repositories)
        router.add_get("/rate_limit", self.rate_limit)
        router.add_get(REPO + "/collaborators/{username}/permission", self.permission)
        router.add_get("/orgs/{org}/teams/{team_slug}/memberships/{username}", self.team_membership)
        router.add_post("/app-manifests/{code}/conversions", self.convert_manifest)

    def _installation_id(self, request: web.Request) -> None:
        wanted = request.match_info.get("installation_id")
        if wanted is not None and int(wanted) != self.ops.site.installation_id:
            raise not_found()

    async def get_app(self, request: web.Request) -> web.Response:
        return json_response(payloads.app(self.ops.site, self.ops.owner))

    async def list_installations(self, request: web.Request) -> web.Response:
        page, headers = paginate(request, [payloads.installation(self.ops.site, self.ops.owner)])
        return json_response(page, headers=headers)

    async def get_installation(self, request: web.Request) -> web.Response:
        self._installation_id(request)
        return json_response(payloads.installation(self.ops.site, self.ops.owner))

    async def create_token(self, request: web.Request) -> web.Response:
        self._installation_id(request)
        # Real time, not the stand-in's clock: githubkit compares expires_at with its own clock.
        expires_at = time.time() + TOKEN_LIFETIME
        token = self.state.issue_installation_token(expires_at)
        return json_response(payloads.access_token(self.ops.site, token, expires_at), 201)

    async def installation_repositories(self, request: web.Request) -> web.Response:
        repos = [shapes.webhook_repository(self.ops.site, self.ops.owner)]
        page, headers = paginate(request, repos)
        return json_response(
            {"total_count": len(repos), "repository_selection": "selected", "repositories": page},
            headers=headers,
        )

    async def rate_limit(self, request: web.Request) -> web.Response:
        used, reset = self.rate_usage.get(CURRENT_IDENTITY.get(), (0, int(self.state.clock()) + 3600))
        return json_response(payloads.rate_limit(RATE_LIMIT, RATE_LIMIT - used, reset))

    async def permission(self, request: web.Request) -> web.Response:
        login = request.match_info["username"]
        account = self.state.accounts.get(login)
        if account is None or account.type == "Organization":
            raise ApiError(404, f"{login} is not a user")
        role = account.permission
        if account.type == "Bot":
            role = "write"
        return json_response(
            payloads.collaborator_permission(self.ops.site, account, role, LEGACY_PERMISSION[role])
        )

    async def team_membership(self, request: web.Request) -> web.Response:
        org, slug, login = (request.match_info[k] for k in ("org", "team_slug", "username"))
        account = self.state.accounts.get(login)
        if account is None or f"{org}/{slug}" not in account.teams:
            raise not_found()
        return json_response(payloads.team_membership(self.ops.site, org, slug, login))

    async def convert_manifest(self, request: web.Request) -> web.Response:
        """``POST /app-manifests/{code}/conversions``: the App created from a confirmed manifest, with its
        credentials (``pem``, ``webhook_secret``, ``client_id``, ``client_secret``). In the stand-in that App
        is the one it serves: its id and key sign in here, its deliveries use that secret, and the
        manifest's permissions and events become the App's."""
        record = self.state.manifests.get(request.match_info["code"])
        now = self.state.clock()
        if record is None or record.used or now - record.created_at > MANIFEST_CODE_LIFETIME:
            raise not_found()
        record.used = True
        manifest, site = record.manifest, self.ops.site
        site.app_permissions.clear()
        site.app_permissions.update({"metadata": "read"} | dict(manifest.get("default_permissions") or {}))
        site.app_events[:] = list(manifest.get("default_events") or [])
        body = payloads.app(site, self.ops.owner)
        name = str(manifest.get("name") or body["name"])
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
        hook = manifest.get("hook_attributes") or {}
        body |= {
            "name": name,
            "slug": slug,
            "description": manifest.get("description") or "",
            "external_url": manifest.get("url", body["external_url"]),
            "html_url": f"{site.html}/apps/{slug}",
            "installations_count": 0,
            "client_secret": secrets.token_hex(20),
            "webhook_secret": self.state.webhook_secret if hook.get("url") else None,
            "pem": self.state.app_key_pem,
        }
        return json_response(body, 201)
