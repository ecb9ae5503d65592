"""An Argo CD stand-in (aiohttp) that deploys applications from a real local git repository.

It serves what a client of Argo CD's API server uses: ``GET /api/v1/applications`` (list),
``GET /api/v1/applications/{name}`` (with ``?refresh=normal|hard``), ``POST .../sync``,
``GET .../resource-tree`` and ``GET .../syncwindows``, with Argo CD's shapes (checked against
swagger.json by the tests) and its refusals, in the order server/application/application.go checks
them. The application controller behind it is ``bot.sandbox.argocd_controller``: apps track a branch,
compare on a poll and on refresh, sync themselves when automated, render the whole tree at a commit.

Refusals are decided in ``bot.sandbox.argocd_api``, in the order and words of ``Server.Sync``.

Time is the injected clock's; the controller runs on each request, on ``tick()``, and every
``controller_interval`` seconds when that is set (the sandbox sets it; unit tests drive ``tick``).

For tests: ``tick()`` (a controller pass: due operations, polls, auto-sync), ``poll()`` (compare every
app now, as the periodic poll would), ``refresh(app, hard=)``, ``operations`` (every operation requested,
automated ones with ``username`` None), ``syncs`` (accepted sync requests), ``refreshes``, ``requests``,
``journal`` (every request in arrival order, with its time: faulted ones too, to order them against GitHub's);
``add_sync_window``/``clear_sync_windows``, ``delete_app``, ``add_token`` (per-token RBAC; re-adding a
token replaces its rights), ``restrict_source_repos`` (InvalidSpecError), ``set_drift`` (another
controller changes a live field), ``set_spec``, ``fail_next_operation``, ``fail_next`` (HTTP faults),
``start_foreign_operation``, ``app(name)`` (the record), ``add_app``/``deploy``/``remove_app``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.errors import FerryError
from bot.sandbox.argocd_api import (
    ERR_BAD_TOKEN,
    ERR_BODY,
    ERR_DELETING,
    ERR_IN_PROGRESS,
    ERR_INJECTED,
    ERR_NO_SESSION,
    ERR_WINDOW,
    FAILED_PRECONDITION,
    INVALID_ARGUMENT,
    PERMISSION_DENIED,
    UNAUTHENTICATED,
    ApiError,
    code_for_status,
    enforce,
    error_response,
    find_app,
    sync_revisions,
)
from bot.sandbox.argocd_apps import ACTIONS, Account, AppSpec, ChartRepository, Project, git_app
from bot.sandbox.argocd_controller import Controller, OperationRecord, Settings
from bot.sandbox.argocd_git import GitReader
from bot.sandbox.argocd_health import PullError, Rollouts, broken_tag_pull_error, tree_nodes
from bot.sandbox.argocd_shapes import application
from bot.sandbox.argocd_state import AppRecord, Operation
from bot.sandbox.argocd_windows import SyncWindow, can_sync

FERRY_USERNAME = "ferry"
FOREIGN_USERNAME = "admin"


@dataclass
class _Fault:
    status: int
    body: dict[str, Any]
    times: int


class ArgoCDStandIn:
    """Serve Argo CD applications over loopback HTTP, deploying from the git repository at ``repo_path``.

    ``apps`` maps each application to an ``AppSpec`` (or, shorter, to a path of the repository: a
    manual app tracking ``HEAD``). Seconds: ``progress_seconds`` a sync runs and new pods take to
    start; ``poll_seconds`` between full comparisons (Argo CD's ``timeout.reconciliation``, 180 s);
    ``progress_deadline_seconds`` for Deployments without their own; ``self_heal_timeout_seconds``;
    ``post_operation_refresh_seconds`` from an operation's end to the comparison it queues (0: at once;
    more leaves ``reconciledAt`` before ``finishedAt`` meanwhile, as a busy controller does).
    """

    def __init__(
        self,
        repo_path: Path,
        *,
        token: str,
        apps: Mapping[str, str | AppSpec],
        progress_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
        poll_seconds: float = 180.0,
        progress_deadline_seconds: float = 600.0,
        self_heal_timeout_seconds: float = 5.0,
        post_operation_refresh_seconds: float = 0.0,
        controller_interval: float | None = None,
        repo_url: str | None = None,
        chart_repositories: Sequence[ChartRepository] = (),
        pull_error: PullError = broken_tag_pull_error,
        require_override_for_revision_sync: bool = False,
        subject: str = FERRY_USERNAME,
    ) -> None:
        self.repo_path = Path(repo_path)
        self.repo_url = repo_url or self.repo_path.as_uri()
        self.progress_seconds = progress_seconds
        self.requests: collections.Counter[str] = collections.Counter()
        self.journal: list[tuple[float, str]] = []  # (clock time, "METHOD path") of every request
        self.syncs: list[tuple[str, str, dict[str, str], float]] = []
        self.refreshes: list[tuple[str, str, float]] = []
        self.require_override = require_override_for_revision_sync
        self.projects: dict[str, Project] = {"default": Project("default")}
        self._clock = clock
        self._tokens = {token: Account(subject, issued_at=datetime.fromtimestamp(int(clock()), UTC))}
        rollouts = Rollouts(progress_seconds, progress_deadline_seconds, pull_error)
        settings = Settings(
            poll_seconds, progress_seconds, self_heal_timeout_seconds, rollouts,
            post_operation_refresh_seconds,
        )  # fmt: skip
        self.controller = Controller(
            GitReader(self.repo_path), repo_url=self.repo_url, projects=self.projects, clock=clock,
            charts={repo.url: repo for repo in chart_repositories}, settings=settings,
        )  # fmt: skip
        self._apps: dict[str, AppRecord] = {}
        for name, spec in apps.items():
            self.add_app(name, spec)
        self._interval = controller_interval
        self._loop: asyncio.Task[None] | None = None
        self._loop_error: BaseException | None = None
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._runner: web.AppRunner | None = None

    # --- life cycle -----------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Deploy each application at its target revision (as if synced long ago), then serve."""
        for app in self._apps.values():
            await self.controller.deploy_initial(app, FOREIGN_USERNAME)
        server = web.Application(middlewares=[self._middleware])
        server.router.add_get("/api/v1/applications", self._list)
        server.router.add_get("/api/v1/applications/{name}", self._get)
        server.router.add_post("/api/v1/applications/{name}/sync", self._sync)
        server.router.add_get("/api/v1/applications/{name}/resource-tree", self._tree)
        server.router.add_get("/api/v1/applications/{name}/syncwindows", self._windows)
        self._runner = web.AppRunner(server, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        if self._interval is not None:
            self._loop = asyncio.get_running_loop().create_task(self._run_controller(self._interval))
        return f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop
            self._loop = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self._loop_error is not None:
            raise FerryError(f"the Argo CD stand-in's controller failed: {self._loop_error!r}")

    async def _run_controller(self, interval: float) -> None:
        try:
            while True:
                await self.tick()
                await asyncio.sleep(interval)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # surfaced by stop(): a controller that died must not pass unseen
            self._loop_error = exc

    # --- the Python API for tests ---------------------------------------------------------------

    @property
    def operations(self) -> list[OperationRecord]:
        """Every operation requested, by the API or by auto-sync (``username`` None), oldest first."""
        return self.controller.log

    def app(self, name: str) -> AppRecord:
        """The stand-in's record of ``name``: spec, live objects, operation, comparison, history."""
        return self._apps[name]

    def add_app(self, name: str, spec: str | AppSpec) -> None:
        """Create an application (before ``start``, or later followed by ``deploy``)."""
        spec = git_app(spec) if isinstance(spec, str) else spec
        self._apps[name] = AppRecord(name, spec, self._clock())

    async def deploy(self, name: str) -> None:
        """Put ``name`` in the state of an app synced long ago at its target revision."""
        app = self._apps[name]
        async with app.lock:
            await self.controller.deploy_initial(app, FOREIGN_USERNAME)

    async def tick(self) -> None:
        """One pass of the application controller over every app (operations, polls, auto-sync)."""
        for app in list(self._apps.values()):
            async with app.lock:
                await self.controller.reconcile(app)

    async def poll(self) -> None:
        """The periodic comparison of every app, now (as if ``poll_seconds`` had passed): a push to the
        branch is seen and automated apps sync it, without waiting."""
        for app in list(self._apps.values()):
            async with app.lock:
                await self.controller.reconcile(app, refresh="normal")

    async def refresh(self, name: str, *, hard: bool = False) -> None:
        """What ``GET ...?refresh=normal|hard`` does, without the HTTP request."""
        app = self._apps[name]
        async with app.lock:
            await self.controller.reconcile(app, refresh="hard" if hard else "normal")

    def add_token(
        self, token: str, *, subject: str, actions: Sequence[str] = ACTIONS, objects: str = "*"
    ) -> None:
        """A bearer token for ``subject`` allowed ``actions`` (get, sync, override) on ``objects``
        (``<project>/<app>`` glob), as argocd-rbac-cm policy lines grant them."""
        issued = datetime.fromtimestamp(int(self._clock()), UTC)
        self._tokens[token] = Account(subject, frozenset(actions), objects, issued)

    def add_sync_window(
        self,
        kind: str,
        schedule: str = "* * * * *",
        duration: str = "1h",
        *,
        applications: Sequence[str] = ("*",),
        namespaces: Sequence[str] = (),
        manual_sync: bool = False,
        project: str = "default",
    ) -> SyncWindow:
        """Add a sync window to ``project`` (default: always active, matching every app)."""
        window = SyncWindow(kind, schedule, duration, tuple(applications), tuple(namespaces),
                            manual_sync=manual_sync)  # fmt: skip
        self.projects.setdefault(project, Project(project)).windows.append(window)
        return window

    def clear_sync_windows(self, project: str = "default") -> None:
        self.projects.setdefault(project, Project(project)).windows.clear()

    def restrict_source_repos(self, repos: Sequence[str], project: str = "default") -> None:
        """Set the project's ``sourceRepos``; apps from other repositories get an InvalidSpecError."""
        self.projects.setdefault(project, Project(project)).source_repos = tuple(repos)

    def delete_app(self, name: str) -> None:
        """Start a cascading delete that does not finish (``deletionTimestamp`` set, finalizer kept)."""
        self._apps[name].deleting_at = self._clock()

    def remove_app(self, name: str) -> None:
        self._apps.pop(name, None)

    def set_drift(self, app: str, kind: str, name: str, pointer: str, value: Any) -> None:
        """Another controller keeps a live field at ``value`` (e.g. an HPA: ``/spec/replicas``)."""
        self._apps[app].drift.setdefault((kind, name), {})[pointer] = value

    def set_spec(self, name: str, spec: AppSpec) -> None:
        """Edit the application's spec (as ``kubectl edit application`` would)."""
        app = self._apps[name]
        app.spec = spec
        app.generation += 1
        app.reconciled_at = None  # needRefreshAppStatus: "spec.source differs"

    def fail_next_operation(self, app: str, message: str) -> None:
        """The next operation on ``app`` fails (phase Failed) with ``message``, as a failed apply does."""
        self._apps[app].fail_next_operation = message

    def fail_next(
        self, method: str, path: str, status: int, body: dict[str, Any] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` ``method path`` requests with ``status`` (and a runtimeError body)."""
        code = code_for_status(status)
        default = {"error": ERR_INJECTED, "code": code, "message": f"{ERR_INJECTED} ({status})"}
        self._faults[(method.upper(), path)] = _Fault(status, body if body is not None else default, times)

    def start_foreign_operation(self, app: str, revision: str) -> None:
        """Someone else (no Ferry info) starts a sync of ``app`` to ``revision``; it runs like any other."""
        record = self._apps[app]
        revisions = [revision] + [""] * (len(record.spec.sources) - 1)
        operation = Operation(revisions, record.spec.sources, {}, FOREIGN_USERNAME, self._clock())
        self.controller.request(record, operation)

    # --- HTTP -----------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        self.journal.append((self._clock(), f"{request.method} {request.path}"))
        fault = self._faults.get((request.method, request.path))
        if fault is not None and fault.times > 0:
            fault.times -= 1
            return web.json_response(fault.body, status=fault.status)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return error_response(UNAUTHENTICATED, ERR_NO_SESSION)
        if auth.removeprefix("Bearer ") not in self._tokens:
            return error_response(UNAUTHENTICATED, ERR_BAD_TOKEN)
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.code, exc.message)

    def _account(self, request: web.Request) -> Account:
        """Who the (already authenticated) bearer token is."""
        return self._tokens[request.headers["Authorization"].removeprefix("Bearer ")]

    def _find(self, request: web.Request, project: str | None) -> AppRecord:
        return find_app(self._apps, self._account(request), request.match_info["name"], project)

    def _json(self, app: AppRecord) -> dict[str, Any]:
        return application(
            app, now=self._clock(), repo_url=self.repo_url, resource_version=self.controller.version,
            rollouts=self.controller.settings.rollouts,
        )  # fmt: skip

    async def _list(self, request: web.Request) -> web.Response:
        wanted = request.query.get("name")
        projects = set(request.query.getall("projects", []))
        account = self._account(request)
        items = []
        for app in list(self._apps.values()):
            if (wanted and app.name != wanted) or (projects and app.spec.project not in projects):
                continue
            if not account.may("get", f"{app.spec.project}/{app.name}"):
                continue
            async with app.lock:
                await self.controller.reconcile(app)
                items.append(self._json(app))
        metadata = {"resourceVersion": str(self.controller.version)}
        return web.json_response({"items": items, "metadata": metadata})

    async def _get(self, request: web.Request) -> web.Response:
        app = self._find(request, request.query.get("project") or request.query.get("projects"))
        refresh = request.query.get("refresh")
        async with app.lock:
            if refresh is not None:  # application.go Get: any value is a normal refresh but "hard"
                kind = "hard" if refresh == "hard" else "normal"
                self.refreshes.append((app.name, kind, self._clock()))
                await self.controller.reconcile(app, refresh=kind)
            else:
                await self.controller.reconcile(app)
            return web.json_response(self._json(app))

    async def _tree(self, request: web.Request) -> web.Response:
        app = self._find(request, request.query.get("project"))
        async with app.lock:
            await self.controller.reconcile(app)
            nodes = tree_nodes(app, self._clock(), self.controller.settings.rollouts)
        return web.json_response({"nodes": nodes})

    async def _windows(self, request: web.Request) -> web.Response:
        app = self._find(request, request.query.get("project"))
        now = self._clock()
        windows = self.controller.windows(app)
        body: dict[str, Any] = {"canSync": can_sync(windows, now, manual=True)}
        active = [w.as_json() for w in windows if w.active(now)]
        if active:
            body["activeWindows"] = active
        if windows:
            body["assignedWindows"] = [w.as_json() for w in windows]
        return web.json_response(body)

    async def _sync(self, request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(INVALID_ARGUMENT, ERR_BODY)
        app = self._find(request, str(body.get("project") or "") or None)
        account = self._account(request)
        rbac_name = f"{app.spec.project}/{app.name}"
        async with app.lock:
            await self.controller.reconcile(app)
            now = self._clock()
            if not can_sync(self.controller.windows(app), now, manual=True):
                raise ApiError(PERMISSION_DENIED, ERR_WINDOW)
            enforce(account, "sync", rbac_name)
            if app.deleting_at is not None:
                raise ApiError(FAILED_PRECONDITION, ERR_DELETING)
            dry_run = bool(body.get("dryRun"))
            override = self.require_override
            revisions = await sync_revisions(
                self.controller.repo, app, body, account, require_override=override, dry_run=dry_run
            )
            if app.running:
                raise ApiError(FAILED_PRECONDITION, ERR_IN_PROGRESS)
            listed = body.get("infos")
            listed = listed if isinstance(listed, list) else []
            infos = {str(i.get("name")): str(i.get("value", "")) for i in listed if isinstance(i, dict)}
            operation = Operation(
                revisions, app.spec.sources, infos, account.subject, now, prune=bool(body.get("prune")),
                dry_run=dry_run,
            )  # fmt: skip
            self.controller.request(app, operation)
            asked = body.get("revision") or ",".join(str(r) for r in body.get("revisions") or ())
            self.syncs.append((app.name, str(asked or ""), infos, now))
            return web.json_response(self._json(app))


__all__ = ["FERRY_USERNAME", "FOREIGN_USERNAME", "ArgoCDStandIn"]
