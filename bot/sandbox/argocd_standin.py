"""An Argo CD stand-in (aiohttp) that "deploys" a stage's manifests from a real local git repository.

It serves ``GET /api/v1/applications``, ``GET /api/v1/applications/{name}`` and
``POST /api/v1/applications/{name}/sync`` with Argo CD's response shapes (``v1alpha1Application``,
``runtimeError``; the tests check them against ``swagger.json``). A sync reads the application's
files at the requested revision (``git ls-tree`` / ``git show``), runs for ``progress_seconds``
(Running, health Progressing), then Succeeds, Synced at that commit and Healthy; or Degraded, with a
Deployment in ImagePullBackOff, when an image tag contains ``-broken``. Time is read lazily from the
injected clock on each request, so no background task runs and tests advance a fake clock.

Like Argo CD it answers 401 (code 16) without a valid bearer token, 403 "permission denied" (code 7)
for an application it does not know (404 when a ``project`` is given), and 400 "another operation is
already in progress" (code 9) while an operation runs. The application records and the JSON
shapes rendered from them are in ``bot.sandbox.argocd_shapes``.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from bot.core.manifest import ImageOccurrence, find_images
from bot.errors import FerryError
from bot.sandbox.argocd_shapes import (
    ARGOCD_NAMESPACE,
    BROKEN_MARKER,
    IN_CLUSTER,
    MSG_BACKOFF,
    MSG_PROGRESSING,
    MSG_SYNCED,
    App,
    Operation,
    application,
    history_entry,
)

FERRY_USERNAME = "ferry"
FOREIGN_USERNAME = "admin"
MANIFEST_SUFFIXES = (".yaml", ".yml")
KUSTOMIZE = "kustomize"

ERR_NO_SESSION = "no session information"
ERR_BAD_TOKEN = "invalid session: token signature is invalid"
ERR_DENIED = "permission denied"
ERR_NOT_FOUND = 'applications.argoproj.io "{app}" not found'
ERR_IN_PROGRESS = "another operation is already in progress"
ERR_BAD_REVISION = "rpc error: code = Unknown desc = unable to resolve '{revision}' to a commit SHA"
ERR_NO_PATH = 'app path "{path}" does not exist at {revision}'
ERR_INJECTED = "injected failure"

# Code for each HTTP status, as grpc-gateway maps them (runtimeError.code is the gRPC code).
_GRPC_CODES = {400: 9, 401: 16, 403: 7, 404: 5, 429: 8, 500: 13, 502: 14, 503: 14, 504: 4}


@dataclass
class _Fault:
    status: int
    body: dict[str, Any]
    times: int


class ArgoCDStandIn:
    """Serve a few Argo CD applications over loopback HTTP, deploying from ``repo_path``."""

    def __init__(
        self,
        repo_path: Path,
        *,
        token: str,
        apps: Mapping[str, str],
        progress_seconds: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.repo_path = Path(repo_path)
        self.progress_seconds = progress_seconds
        self.requests: collections.Counter[str] = collections.Counter()
        self.syncs: list[tuple[str, str, dict[str, str], float]] = []
        self._token = token
        self._clock = clock
        self._apps = {name: App(name, path.strip("/"), clock()) for name, path in apps.items()}
        self._faults: dict[tuple[str, str], _Fault] = {}
        self._resource_version = 0
        self._runner: web.AppRunner | None = None

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Deploy each application at the repository's HEAD (as if synced long ago), then serve."""
        head = await self._resolve("HEAD")
        for app in self._apps.values():
            if head is not None:
                await self._deploy_initial(app, head)
        server = web.Application(middlewares=[self._middleware])
        server.router.add_get("/api/v1/applications", self._list)
        server.router.add_get("/api/v1/applications/{name}", self._get)
        server.router.add_post("/api/v1/applications/{name}/sync", self._sync)
        self._runner = web.AppRunner(server, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        return f"http://{host}:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def fail_next(
        self, method: str, path: str, status: int, body: dict[str, Any] | None = None, times: int = 1
    ) -> None:
        """Answer the next ``times`` ``method path`` requests with ``status`` (and a runtimeError body)."""
        code = _GRPC_CODES.get(status, 2)
        default = {"error": ERR_INJECTED, "code": code, "message": f"{ERR_INJECTED} ({status})"}
        self._faults[(method.upper(), path)] = _Fault(status, body if body is not None else default, times)

    def start_foreign_operation(self, app: str, revision: str) -> None:
        """Someone else (no Ferry info) starts a sync of ``app`` to ``revision``; it runs like any other."""
        now = self._clock()
        self._apps[app].operation = Operation(
            revision=revision,
            infos={},
            username=FOREIGN_USERNAME,
            started_at=now,
            finish_at=now + self.progress_seconds,
        )

    # --- HTTP ---------------------------------------------------------------------------------

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.requests[f"{request.method} {request.path}"] += 1
        fault = self._faults.get((request.method, request.path))
        if fault is not None and fault.times > 0:
            fault.times -= 1
            return web.json_response(fault.body, status=fault.status)
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return _error(401, ERR_NO_SESSION)
        if auth.removeprefix("Bearer ") != self._token:
            return _error(401, ERR_BAD_TOKEN)
        return await handler(request)

    async def _list(self, request: web.Request) -> web.Response:
        wanted = request.query.get("name")
        items = []
        for app in self._apps.values():
            if wanted and app.name != wanted:
                continue
            async with app.lock:
                items.append(await self._render(app))
        return web.json_response(
            {"items": items, "metadata": {"resourceVersion": str(self._resource_version)}}
        )

    async def _get(self, request: web.Request) -> web.Response:
        app = self._apps.get(request.match_info["name"])
        if app is None:
            return _unknown_app(request)
        async with app.lock:
            return web.json_response(await self._render(app))

    async def _sync(self, request: web.Request) -> web.Response:
        app = self._apps.get(request.match_info["name"])
        if app is None:
            return _unknown_app(request)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return _error(400, "request body must be a JSON applicationApplicationSyncRequest", code=3)
        async with app.lock:
            await self._advance(app)
            if app.operation is not None and not app.operation.finished:
                return _error(400, ERR_IN_PROGRESS)
            revision = str(body.get("revision") or "HEAD")
            listed = body.get("infos")
            listed = listed if isinstance(listed, list) else []
            infos = {str(i.get("name")): str(i.get("value", "")) for i in listed if isinstance(i, dict)}
            now = self._clock()
            operation = Operation(revision, infos, FERRY_USERNAME, now, now + self.progress_seconds)
            operation.prune = bool(body.get("prune"))
            app.operation = operation
            self.syncs.append((app.name, revision, infos, now))
            await self._read_operation(app, operation)
            return web.json_response(await self._render(app))

    # --- the deployment model -------------------------------------------------------------------

    async def _deploy_initial(self, app: App, sha: str) -> None:
        images, error = await self._images_at(app.path, sha)
        if error is not None:
            return
        now = self._clock()
        operation = Operation(sha, {}, FOREIGN_USERNAME, now, now, sha=sha, images=images)
        app.operation = operation
        self._complete(app, operation)

    async def _read_operation(self, app: App, operation: Operation) -> None:
        sha = await self._resolve(operation.revision)
        if sha is None:
            operation.error = ERR_BAD_REVISION.format(revision=operation.revision)
            return
        operation.sha = sha
        operation.images, operation.error = await self._images_at(app.path, sha)

    async def _render(self, app: App) -> dict[str, Any]:
        await self._advance(app)
        if app.operation is None or app.operation.finished:
            app.reconciled_at = self._clock()
        return application(app, self.repo_path.as_uri(), self._resource_version)

    async def _advance(self, app: App) -> None:
        """Finish the running operation if its time has come (reading its manifests first if needed)."""
        operation = app.operation
        if operation is None or operation.finished:
            return
        if operation.images is None and operation.error is None:
            await self._read_operation(app, operation)
        if self._clock() >= operation.finish_at:
            self._complete(app, operation)

    def _complete(self, app: App, operation: Operation) -> None:
        operation.finished = True
        self._resource_version += 1
        if operation.error is not None:
            return
        app.generation += 1
        app.revision = operation.sha
        app.images = operation.images or ()
        # Health went through Progressing while the operation ran, so it transitions now either way.
        app.health = "Degraded" if operation.broken_image else "Healthy"
        app.health_since = operation.finish_at
        app.history.append(history_entry(app, operation, self.repo_path.as_uri()))

    # --- git ------------------------------------------------------------------------------------

    async def _git(self, *args: str) -> str | None:
        process = await asyncio.create_subprocess_exec(
            "git", "-C", str(self.repo_path), *args,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await process.communicate()
        return out.decode() if process.returncode == 0 else None

    async def _resolve(self, revision: str) -> str | None:
        out = await self._git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}")
        return out.strip() if out else None

    async def _images_at(self, path: str, sha: str) -> tuple[tuple[str, ...], str | None]:
        listing = await self._git("ls-tree", "-r", "--name-only", sha, "--", path or ".")
        files = [f for f in (listing or "").splitlines() if f.endswith(MANIFEST_SUFFIXES)]
        if not files:
            return (), ERR_NO_PATH.format(path=path, revision=sha[:7])
        texts = [await self._git("show", f"{sha}:{name}") or "" for name in files]
        return tuple(deployed_images(*texts)), None


def deployed_images(*texts: str) -> list[str]:
    """Images some manifests deploy together: kustomize ``images:`` overrides replace the container
    image they name, in whichever file it is; Helm values and plain references count as written."""
    found: list[ImageOccurrence] = []
    for text in texts:
        try:
            found += find_images(text)
        except FerryError:
            continue  # a file Argo CD would reject; the others still deploy in this stand-in
    overrides = {o.image: _reference(o) for o in found if o.kind == KUSTOMIZE}
    images: list[str] = []
    for image in [overrides.get(o.image, _reference(o)) for o in found]:
        if image not in images:
            images.append(image)
    return images


def _reference(occurrence: ImageOccurrence) -> str:
    text = occurrence.image
    if occurrence.tag:
        text += f":{occurrence.tag}"
    if occurrence.digest:
        text += f"@{occurrence.digest}"
    return text


def _error(status: int, message: str, *, code: int | None = None) -> web.Response:
    grpc = code if code is not None else _GRPC_CODES.get(status, 2)
    return web.json_response({"error": message, "code": grpc, "message": message}, status=status)


def _unknown_app(request: web.Request) -> web.Response:
    if request.query.get("project"):
        return _error(404, ERR_NOT_FOUND.format(app=request.match_info["name"]))
    return _error(403, ERR_DENIED)


__all__ = [
    "ARGOCD_NAMESPACE",
    "BROKEN_MARKER",
    "ERR_BAD_REVISION",
    "ERR_BAD_TOKEN",
    "ERR_DENIED",
    "ERR_INJECTED",
    "ERR_IN_PROGRESS",
    "ERR_NOT_FOUND",
    "ERR_NO_PATH",
    "ERR_NO_SESSION",
    "FERRY_USERNAME",
    "FOREIGN_USERNAME",
    "IN_CLUSTER",
    "KUSTOMIZE",
    "MANIFEST_SUFFIXES",
    "MSG_BACKOFF",
    "MSG_PROGRESSING",
    "MSG_SYNCED",
    "ArgoCDStandIn",
    "deployed_images",
]
