"""The GitHub stand-in: an aiohttp server on 127.0.0.1 over a real bare git repository, speaking the REST
API version 2022-11-28 as far as Ferry uses it, and sending signed webhooks to Ferry as GitHub does.

This module holds the public class, the request pipeline (authentication, fault injection, rate-limit
headers, ETags and 304s, GitHub-shaped errors) and the webhook sender. Routes live in
``github_routes_*``; shapes in ``github_shapes`` and ``github_payloads``.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.sandbox import github_issue_shapes as ishapes
from bot.sandbox import github_payloads as payloads
from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_ops import CURRENT_ACTOR, CURRENT_IDENTITY, ApiError, GitHubOps, json_response
from bot.sandbox.github_routes_app import RATE_LIMIT, AppRoutes
from bot.sandbox.github_routes_git import GitRoutes
from bot.sandbox.github_routes_issues import IssueRoutes
from bot.sandbox.github_routes_pulls import PullRoutes
from bot.sandbox.github_state import BOT_LOGIN, PERMISSIONS, Account, Delivery, GitHubState, Site
from bot.sandbox.github_webhooks import WebhookSender
from bot.sandbox.gitstore import GitStore, Signature, TreeChange

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
APP_ROUTE = re.compile(r"^/app(/.*)?$|^/repos/[^/]+/[^/]+/installation$")
BAD_CREDENTIALS = "Bad credentials"
BAD_JWT = "A JSON web token could not be decoded"
NEEDS_AUTH = "Requires authentication"
NEEDS_INSTALLATION_TOKEN = "Resource not accessible by integration"
# What GitHub says about caching its GET answers; clients revalidate with If-None-Match.
CACHE_CONTROL = "private, max-age=60, s-maxage=60"
VARY = "Accept, Authorization, Cookie, X-GitHub-OTP"
RATE_LIMITED = "API rate limit exceeded for {identity}."


@dataclass
class _Fault:
    method: str
    route: str
    status: int
    headers: dict[str, str]
    body: dict[str, Any]
    remaining: int


class GitHubStandIn:
    """A fake GitHub over a real git repository; see the module docstring."""

    def __init__(
        self,
        workdir: Path,
        *,
        owner: str = "acme",
        repo: str = "gitops",
        webhook_url: str | None = None,
        webhook_secret: str,
        app_id: int = 1,
        installation_id: int = 1,
        clock: Callable[[], float] = time.time,
        app_key_pem: str | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.repo_path = self.workdir / f"{repo}.git"
        self._clock = clock
        key = (
            serialization.load_pem_private_key(app_key_pem.encode(), password=None)
            if app_key_pem
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(
                "app_key_pem: the App key must be an RSA private key (GitHub signs App JWTs with RS256)"
            )
        self._public_key = key.public_key()
        self.app_private_key_pem: str = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        ).decode()
        site = Site(
            owner,
            repo,
            repo_id=101,
            owner_id=100,
            installation_id=installation_id,
            app_id=app_id,
            created_at=clock(),
        )
        self.state = GitHubState(GitStore(self.repo_path), site, clock)
        self.owner = Account(owner, site.owner_id, "Organization")
        self.bot = Account(BOT_LOGIN, 900 + app_id, "Bot")
        self.state.accounts |= {owner: self.owner, BOT_LOGIN: self.bot}
        self._webhooks = WebhookSender(webhook_url, webhook_secret, app_id, clock)
        self.state.emit = self._webhooks.emit
        self.on_event: list[Callable[[str, dict[str, Any]], None]] = self._webhooks.on_event
        self.ops = GitHubOps(self.state, self.owner)
        self.requests: collections.Counter[str] = collections.Counter()
        self._faults: list[_Fault] = []
        self._rate_usage: dict[str, tuple[int, int]] = {}
        self._runner: web.AppRunner | None = None
        self.app = self._build_app()

    # lifecycle ---------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return self.state.site.api

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        await self._ensure_repo()
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        bound_host, bound_port = self._runner.addresses[0][:2]
        self.state.site.api = f"http://{bound_host}:{bound_port}"
        self._webhooks.start()
        return self.base_url

    async def stop(self) -> None:
        await self._webhooks.stop()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> GitHubStandIn:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def _ensure_repo(self) -> None:
        if not (self.repo_path / "HEAD").exists():
            await self.state.store.init("main")

    # people and faults -------------------------------------------------------------------------
    def add_user(
        self, login: str, permission: str = "write", teams: list[str] | None = None, token: str | None = None
    ) -> str:
        """Add a person with a repository role and team memberships ("org/slug"); returns their token."""
        if permission not in PERMISSIONS:
            raise ValueError(
                f"user {login!r}: permission must be one of {', '.join(PERMISSIONS)}, not {permission!r}"
            )
        account = self.state.account(login)
        account.permission, account.teams = permission, list(teams or [])
        token = token or "ghp_" + secrets.token_hex(18)
        self.state.tokens[token] = login
        return token

    def fail_next(
        self,
        method: str,
        route: str,
        status: int,
        *,
        headers: Mapping[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status``; ``route`` is a route key such as
        ``/repos/{owner}/{repo}/pulls`` (as in ``requests``) or a concrete path."""
        default = {
            "message": "Server Error" if status >= 500 else "Forced failure",
            "documentation_url": shapes.DOCS,
        }
        self._faults.append(
            _Fault(method.upper(), route, status, dict(headers or {}), body or default, times)
        )

    # repository helpers for the sandbox driver -------------------------------------------------
    async def seed(self, files: Mapping[str, bytes], message: str = "Initial commit") -> str:
        """Make the first commit on main (no webhook: it is the state before Ferry arrives)."""
        await self._ensure_repo()
        if await self.state.store.get_ref("refs/heads/main") is not None:
            raise ValueError(f"{self.repo_path}: main already has commits; use push_files to add more")
        return await self._commit(dict(files), message, "main", self.owner, notify=False)

    async def seed_directory(self, directory: Path, message: str = "Initial commit") -> str:
        def read() -> dict[str, bytes]:
            return {
                p.relative_to(directory).as_posix(): p.read_bytes()
                for p in sorted(directory.rglob("*"))
                if p.is_file()
            }

        return await self.seed(await asyncio.to_thread(read), message)

    async def push_files(
        self,
        files: Mapping[str, bytes | None],
        message: str,
        *,
        branch: str = "main",
        login: str | None = None,
    ) -> str:
        """Commit ``files`` (None deletes) on ``branch`` as a person would push them; sends ``push``."""
        await self._ensure_repo()
        author = self.state.accounts[login] if login else self.owner
        return await self._commit(dict(files), message, branch, author, notify=True)

    async def _commit(
        self, files: dict[str, bytes | None], message: str, branch: str, author: Account, *, notify: bool
    ) -> str:
        store = self.state.store
        async with self.state.write_lock:
            parent = await store.get_ref(f"refs/heads/{branch}") or await store.get_ref("refs/heads/main")
            base_tree = (await store.read_commit(parent)).tree if parent else None
            changes = []
            for path, data in files.items():
                sha = await store.write_blob(data) if data is not None else None
                changes.append(TreeChange(path, "100644", "blob", sha))
            tree = await store.write_tree(base_tree, changes)
            person = Signature(author.login, author.email, int(self._clock()))
            sha = await store.commit_tree(tree, [parent] if parent else [], message, person, person)
            await self.ops.move_ref(f"refs/heads/{branch}", sha, author, notify=notify)
        return sha

    def announce_installation(self, action: str = "created") -> None:
        """Send an ``installation`` event, as GitHub does when the App is installed."""
        self._webhooks.emit(
            "installation", payloads.installation_event(self.state.site, self.owner, self.owner, action)
        )

    # read-only views ---------------------------------------------------------------------------
    @property
    def pulls(self) -> dict[int, dict[str, Any]]:
        """Pull requests by number, as ``GET /pulls/{n}`` shows them minus what needs git (mergeable)."""
        views = {}
        for record in self.state.pulls():
            assert record.pull is not None
            facts = ishapes.PullFacts(record.pull.head_sha, record.pull.base_sha)
            views[record.number] = self.ops.pull_view(record, facts)
        return views

    @property
    def statuses(self) -> dict[str, list[dict[str, Any]]]:
        return {
            sha: [ishapes.status(self.state.site, r, self.state.account(r.creator)) for r in records]
            for sha, records in self.state.statuses.items()
        }

    @property
    def comments(self) -> list[dict[str, Any]]:
        site, views = self.state.site, []
        for record in sorted(
            [*self.state.comments.values(), *self.state.commit_comments.values()], key=lambda c: c.id
        ):
            author = self.state.account(record.user)
            build = ishapes.issue_comment if record.issue_number is not None else ishapes.commit_comment
            kind = "issue" if record.issue_number is not None else "commit"
            views.append(
                build(
                    site,
                    record,
                    author,
                    self.ops.association(author),
                    self.state.reactions.get((kind, record.id), []),
                )
            )
        return views

    @property
    def reactions(self) -> list[dict[str, Any]]:
        return [
            ishapes.reaction(self.state.site, r, self.state.account(r.user))
            | {"subject": {"type": f"{kind}_comment", "id": ident}}
            for (kind, ident), records in self.state.reactions.items()
            for r in records
        ]

    # webhooks ----------------------------------------------------------------------------------
    @property
    def webhook_url(self) -> str | None:
        return self._webhooks.url

    @property
    def deliveries(self) -> list[Delivery]:
        return self._webhooks.deliveries

    async def wait_for_deliveries(self) -> None:
        """Return once every queued webhook has been sent (or failed to be)."""
        await self._webhooks.drained()

    # request pipeline --------------------------------------------------------------------------
    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._pipeline], client_max_size=100 * 1024 * 1024)
        git = GitRoutes(self.ops)
        git.register(app.router)
        PullRoutes(self.ops).register(app.router)
        IssueRoutes(self.ops).register(app.router)
        AppRoutes(self.ops, self._rate_usage).register(app.router)
        git.register_late(app.router)
        return app

    def _route_key(self, request: web.Request) -> str:
        resource = request.match_info.route.resource
        return f"{request.method} {resource.canonical if resource is not None else request.path}"

    def _take_fault(self, request: web.Request, key: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == request.method and fault.route in (key.split(" ", 1)[1], request.path):
                fault.remaining -= 1
                if fault.remaining <= 0:
                    self._faults.remove(fault)
                return fault
        return None

    def _authenticate(self, request: web.Request) -> None:
        """Set ``actor`` and ``identity`` on the request, or raise 401/403 as GitHub would."""
        scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
        app_route = bool(APP_ROUTE.match(request.path))
        if scheme.lower() == "bearer" and credential.count(".") == 2:
            try:
                claims = jwt.decode(
                    credential,
                    self._public_key,
                    algorithms=["RS256"],
                    leeway=60,
                    options={"require": ["iat", "exp", "iss"]},
                )
            except jwt.PyJWTError as exc:
                raise ApiError(401, BAD_JWT) from exc
            if str(claims["iss"]) != str(self.state.site.app_id):
                raise ApiError(401, BAD_JWT)
            if not app_route:
                raise ApiError(403, NEEDS_INSTALLATION_TOKEN)
            self._identify(self.bot, f"app:{self.state.site.app_id}")
            return
        if scheme.lower() in ("token", "bearer") and credential:
            if app_route:
                raise ApiError(401, BAD_JWT)
            if self.state.installation_tokens.get(credential, 0.0) > time.time():
                self._identify(self.bot, f"installation ID {self.state.site.installation_id}")
                return
            if credential in self.state.tokens:
                login = self.state.tokens[credential]
                self._identify(self.state.accounts[login], f"user {login}")
                return
            raise ApiError(401, BAD_CREDENTIALS)
        if request.path == "/rate_limit":
            self._identify(self.owner, f"IP {request.remote}")
            return
        raise ApiError(401, NEEDS_AUTH)

    @staticmethod
    def _identify(account: Account, identity: str) -> None:
        CURRENT_ACTOR.set(account)
        CURRENT_IDENTITY.set(identity)

    def _rate_headers(self, identity: str, *, count: bool) -> dict[str, str]:
        now = int(self._clock())
        used, reset = self._rate_usage.get(identity, (0, now + 3600))
        if now >= reset:
            used, reset = 0, now + 3600
        if count:
            used += 1
        self._rate_usage[identity] = (used, reset)
        return {
            "X-RateLimit-Limit": str(RATE_LIMIT),
            "X-RateLimit-Remaining": str(max(0, RATE_LIMIT - used)),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Used": str(used),
            "X-RateLimit-Resource": "core",
            "X-GitHub-Api-Version-Selected": "2022-11-28",
            "X-GitHub-Request-Id": uuid.uuid4().hex[:20],
        }

    def _admit(self, request: web.Request) -> str:
        """Authenticate, check the repository and the rate limit; returns the caller's rate-limit identity."""
        self._authenticate(request)
        identity = CURRENT_IDENTITY.get()
        info = request.match_info
        if "owner" in info and (info["owner"], info["repo"]) != (self.state.site.owner, self.state.site.repo):
            raise ApiError(404, "Not Found")
        used, _ = self._rate_usage.get(identity, (0, 0))
        if used >= RATE_LIMIT and request.path != "/rate_limit":
            raise ApiError(403, RATE_LIMITED.format(identity=identity))
        return identity

    @web.middleware
    async def _pipeline(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = self._route_key(request)
        self.requests[key] += 1
        identity = "anonymous"
        fault = self._take_fault(request, key)
        if fault is not None:
            injected = json_response(fault.body, fault.status)
            injected.headers.update(self._rate_headers(identity, count=False) | fault.headers)
            return injected
        response: web.StreamResponse
        try:
            identity = self._admit(request)
            response = await handler(request)
        except ApiError as exc:
            response = exc.response()
        except web.HTTPException as exc:
            # GitHub answers unknown routes and methods with a JSON 404.
            response = ApiError(404 if exc.status in (404, 405) else exc.status, exc.reason).response()
        except Exception:
            log.exception("GitHub stand-in failed on %s", key)
            response = ApiError(500, "Server Error").response()
        conditional = False
        if request.method == "GET" and response.status == 200 and isinstance(response, web.Response):
            etag = 'W/"' + hashlib.sha256(response.body or b"").hexdigest()[:40] + '"'  # type: ignore[arg-type]
            response.headers["ETag"] = etag
            response.headers["Cache-Control"] = CACHE_CONTROL
            response.headers["Vary"] = VARY
            wanted = {t.strip() for t in request.headers.get("If-None-Match", "").split(",")}
            if etag in wanted or etag.removeprefix("W/") in wanted:
                conditional = True
                response = web.Response(
                    status=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL, "Vary": VARY}
                )
        counted = not conditional and request.path != "/rate_limit"
        response.headers.update(self._rate_headers(identity, count=counted))
        return response
