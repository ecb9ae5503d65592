"""The GitHub stand-in: an aiohttp server on 127.0.0.1 over a real bare git repository, speaking the REST
API version 2022-11-28 as far as Ferry uses it, and sending signed webhooks to Ferry as GitHub does.

This module holds the public class and its Python API for the sandbox driver and tests (the knobs that
make it as unkind as GitHub are ``github_controls``). The request pipeline (auth, faults, App permissions,
rate limits, ETags) is ``github_pipeline``; routes are ``github_routes_*``; bodies are ``github_shapes``,
``github_issue_shapes``, ``github_deploy_shapes`` and ``github_payloads``; webhooks leave by
``github_webhooks``.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.sandbox import github_issue_shapes as ishapes
from bot.sandbox import github_payloads as payloads
from bot.sandbox.github_controls import StandInControls
from bot.sandbox.github_ops import GitHubOps
from bot.sandbox.github_pipeline import Pipeline
from bot.sandbox.github_routes_app import AppRoutes
from bot.sandbox.github_routes_comments import CommentRoutes
from bot.sandbox.github_routes_deployments import DeploymentRoutes
from bot.sandbox.github_routes_git import GitRoutes
from bot.sandbox.github_routes_history import HistoryRoutes
from bot.sandbox.github_routes_hook import HookRoutes
from bot.sandbox.github_routes_issues import IssueRoutes
from bot.sandbox.github_routes_pulls import PullRoutes
from bot.sandbox.github_routes_reviews import ReviewRoutes
from bot.sandbox.github_state import BOT_LOGIN, PERMISSIONS, Account, Delivery, GitHubState, Site
from bot.sandbox.github_web_apps import ManifestWebRoutes
from bot.sandbox.github_webhooks import DeliveryOptions, WebhookSender
from bot.sandbox.gitstore import GitStore, Signature, TreeChange

log = logging.getLogger(__name__)


@functools.cache
def _process_app_key() -> str:
    """One App key per process unless one is given: githubkit caches App JWTs and installation tokens
    process-wide by App id, so successive stand-ins in one process (tests, sandbox restarts) must accept
    what an earlier one issued."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    ).decode()


class GitHubStandIn(StandInControls):
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
        delivery: DeliveryOptions | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.repo_path = self.workdir / f"{repo}.git"
        self._clock = clock
        self.app_private_key_pem: str = app_key_pem or _process_app_key()
        key = serialization.load_pem_private_key(self.app_private_key_pem.encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise TypeError(
                "app_key_pem: the App key must be an RSA private key (GitHub signs App JWTs with RS256)"
            )
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
        self.state.token_key = hashlib.sha256(self.app_private_key_pem.encode()).digest()
        self.state.app_key_pem = self.app_private_key_pem
        self.state.webhook_secret = webhook_secret
        self.owner = Account(owner, site.owner_id, "Organization")
        self.bot = Account(BOT_LOGIN, 900 + app_id, "Bot")
        self.state.accounts |= {owner: self.owner, BOT_LOGIN: self.bot}
        self._webhooks = WebhookSender(webhook_url, webhook_secret, app_id, clock, site.app_events)
        if delivery is not None:
            self._webhooks.configure(delivery)
        self.state.emit = self._webhooks.emit
        self.on_event: list[Callable[[str, dict[str, Any]], None]] = self._webhooks.on_event
        self.ops = GitHubOps(self.state, self.owner)
        self._reviews = ReviewRoutes(self.ops)
        self._deployments = DeploymentRoutes(self.ops)
        self._pipeline = Pipeline(self.state, key.public_key(), self.bot, self.owner)
        # "GET /repos/{owner}/{repo}/pulls"-style route keys, counted per request (faults included).
        self.requests: collections.Counter[str] = self._pipeline.requests
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
    def rate_limit_used(self) -> int:
        """Requests counted against the rate limit so far, over every caller (conditional 304s are free)."""
        return sum(used for used, _reset in self._pipeline.rate_usage.values())

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

    def _build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._pipeline.middleware], client_max_size=100 * 1024 * 1024)
        git = GitRoutes(self.ops)
        git.register(app.router)
        PullRoutes(self.ops).register(app.router)
        self._reviews.register(app.router)
        CommentRoutes(self.ops).register(app.router)
        IssueRoutes(self.ops).register(app.router)
        self._deployments.register(app.router)
        AppRoutes(self.ops, self._pipeline.rate_usage).register(app.router)
        ManifestWebRoutes(self.ops).register(app.router)
        HookRoutes(self.ops, self._webhooks).register(app.router)
        HistoryRoutes(self.ops).register(app.router)
        git.register_late(app.router)
        return app
