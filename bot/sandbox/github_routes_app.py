"""App and installation routes of the GitHub stand-in (JWT-authenticated ``/app/*``, installation tokens,
``/installation/repositories``), plus rate limit, collaborator permission and team membership."""

from __future__ import annotations

import time

from aiohttp import web

from bot.sandbox import github_payloads as payloads
from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_ops import CURRENT_IDENTITY, ApiError, GitHubOps, json_response, not_found
from bot.sandbox.github_shapes import LEGACY_PERMISSION

REPO = "/repos/{owner}/{repo}"
TOKEN_LIFETIME = 3600.0
RATE_LIMIT = 5000


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

    def _installation_id(self, request: web.Request) -> None:
        wanted = request.match_info.get("installation_id")
        if wanted is not None and int(wanted) != self.ops.site.installation_id:
            raise not_found()

    async def get_app(self, request: web.Request) -> web.Response:
        return json_response(payloads.app(self.ops.site, self.ops.owner))

    async def list_installations(self, request: web.Request) -> web.Response:
        return json_response([payloads.installation(self.ops.site, self.ops.owner)])

    async def get_installation(self, request: web.Request) -> web.Response:
        self._installation_id(request)
        return json_response(payloads.installation(self.ops.site, self.ops.owner))

    async def create_token(self, request: web.Request) -> web.Response:
        self._installation_id(request)
        # Real time, not the stand-in's clock: githubkit compares expires_at with its own clock.
        expires_at = time.time() + TOKEN_LIFETIME
        token = self.state.issue_installation_token(expires_at)
        return json_response(payloads.access_token(token, expires_at), 201)

    async def installation_repositories(self, request: web.Request) -> web.Response:
        repo = shapes.webhook_repository(self.ops.site, self.ops.owner)
        return json_response({"total_count": 1, "repository_selection": "selected", "repositories": [repo]})

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
