"""The sandbox world: GitHub, Argo CD and registry stand-ins on 127.0.0.1, and the real Ferry between them.

Ferry runs its real `serve` code path (settings, githubkit adapter, aiohttp webhook server,
reconciler, Argo CD and registry clients); only its settings point it at the stand-ins.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import shutil
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot import events
from bot.errors import ExternalError
from bot.runtime import Runtime, build_runtime
from bot.sandbox.argocd_health import broken_tag_pull_error
from bot.sandbox.argocd_render import split_image
from bot.sandbox.argocd_standin import ArgoCDStandIn
from bot.sandbox.example import EXAMPLE_APPS, ConfigEdit, example_chart_repository, sandbox_files
from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.registry_standin import RegistryStandIn
from bot.server import WEBHOOKS_KEY, run_server
from bot.settings import ArgoCDServer, Settings
from bot.startup import delay_after

OWNER, REPO = "acme", "gitops"
FULL_NAME = f"{OWNER}/{REPO}"
ARGOCD_SERVER = "default"
# Seconds a starting Ferry keeps asking GitHub before the sandbox gives up: two of GitHub's one-minute
# secondary-limit blocks and some (a Ferry restarted while its installation is blocked waits it out, as
# `ferry serve` would; GitHub's REST docs: "wait for at least one minute").
DISCOVERY_WITHIN = 150.0
DISCOVERY_DELAY_CAP = 5.0  # seconds at most between two discoveries (GitHub is local)
CONTROLLER_INTERVAL = 0.1  # seconds between passes of the Argo CD stand-in's application controller


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


EventListener = Callable[[dict[str, Any]], None]
T = TypeVar("T")


async def until_answered(ask: Callable[[], Awaitable[T]], within: float) -> T:
    """``ask()``, asked again after each temporary ``ExternalError`` (GitHub not answering, or holding the
    installation after a secondary limit), at most ``DISCOVERY_DELAY_CAP`` seconds apart, for at most
    ``within`` seconds in all, so a sandbox never hangs on it; the last error, or a refusal, is raised."""
    clock = asyncio.get_running_loop().time
    deadline = clock() + within
    attempt = 0
    while True:
        attempt += 1
        try:
            return await ask()
        except ExternalError as exc:
            left = deadline - clock()
            if not exc.temporary or left <= 0:
                raise
            await asyncio.sleep(min(delay_after(attempt, exc), DISCOVERY_DELAY_CAP, left))


@dataclass
class Timeline:
    started: float = field(default_factory=time.time)
    entries: list[events.Event] = field(default_factory=list)
    # Told each event as it is recorded (the shape of one ``--json`` event): ``ferry sandbox`` narrates live.
    listener: EventListener | None = None

    def record(self, event: events.Event) -> None:
        self.entries.append(event)
        if self.listener is not None:
            self.listener(self.entry(event))

    def add(self, kind: str, stage: str, detail: str) -> None:
        self.record(events.Event(kind, FULL_NAME, stage, detail))

    def entry(self, e: events.Event) -> dict[str, Any]:
        return {
            "t_ms": round((e.at - self.started) * 1000),
            "kind": e.kind,
            "stage": e.stage,
            "detail": e.detail,
        }

    def as_json(self) -> list[dict[str, Any]]:
        return [self.entry(e) for e in self.entries]


class World:
    def __init__(
        self,
        *,
        workdir: Path | None = None,
        progress_seconds: float = 0.3,
        argocd_poll_seconds: float = 3.0,
        progress_deadline_seconds: float = 5.0,
        on_event: EventListener | None = None,
        seed: int = 1,
        replicas: int = 1,
    ) -> None:
        # A directory of its own is removed by stop(); one the caller gave is left to the caller.
        self._owns_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="ferry-sandbox-"))
        self.progress_seconds = progress_seconds
        self.argocd_poll_seconds = argocd_poll_seconds
        self.progress_deadline_seconds = progress_deadline_seconds
        self._digest_tags: dict[tuple[str, str], str | None] = {}
        self.timeline = Timeline(listener=on_event)
        self.webhook_secret = secrets.token_hex(16)
        self.argocd_token = secrets.token_hex(16)
        self.registry = RegistryStandIn()
        self.ferry_port = free_port()
        self.github = GitHubStandIn(
            self.workdir,
            owner=OWNER,
            repo=REPO,
            webhook_url=f"http://127.0.0.1:{self.ferry_port}/webhooks/github",
            webhook_secret=self.webhook_secret,
        )
        self.argocd: ArgoCDStandIn | None = None
        self.runtime: Runtime | None = None
        self.github_url = ""
        self.argocd_url = ""
        self._server: asyncio.Task[None] | None = None
        self.seed = seed  # what a scenario draws its random choices from (``ferry sandbox --seed``)
        self.replica_count = replicas  # Ferry processes a scenario that runs several starts (``--replicas``)
        # Further Ferry processes with the same settings, each its own memory and port (replicas behind
        # one hostname): runtime, port, server task.
        self.replicas: list[tuple[Runtime, int, asyncio.Task[None]]] = []
        # What a scenario checked, by name: {"count": N, "target": M} (the ``--json`` ``invariants``).
        self.invariants: dict[str, dict[str, int]] = {}

    # ---- life cycle --------------------------------------------------------------------------
    async def start(
        self,
        edit: ConfigEdit,
        releases: dict[str, list[str]],
        *,
        before_ferry: Callable[[World], Awaitable[None]] | None = None,
    ) -> None:
        """Start the stand-ins and Ferry; ``before_ferry`` runs once Argo CD serves the seeded repository
        and before Ferry first looks (to shape the history Ferry meets on first contact)."""
        await self.registry.start()
        for image, tags in releases.items():
            for tag in tags:
                self.registry.push(f"acme/{image}", tag)
        self.github_url = await self.github.start()
        files = sandbox_files(self.registry.host, edit)
        await self.github.seed(files)
        self.argocd = ArgoCDStandIn(
            self.github.repo_path,
            token=self.argocd_token,
            apps=EXAMPLE_APPS,
            progress_seconds=self.progress_seconds,
            poll_seconds=self.argocd_poll_seconds,
            progress_deadline_seconds=self.progress_deadline_seconds,
            controller_interval=CONTROLLER_INTERVAL,
            repo_url=f"https://github.com/{FULL_NAME}.git",
            chart_repositories=[example_chart_repository(files)],
            pull_error=self.pull_error,
        )
        self.argocd_url = await self.argocd.start()
        if before_ferry is not None:
            await before_ferry(self)
        await self.start_ferry()

    def settings(self) -> Settings:
        return Settings(
            app_id=1,
            private_key=self.github.app_private_key_pem,
            webhook_secret=self.webhook_secret,
            github_url=self.github_url,
            argocd_servers={ARGOCD_SERVER: ArgoCDServer(url=self.argocd_url, token=self.argocd_token)},
            poll_fast=timedelta(seconds=0.2),
            poll_idle=timedelta(seconds=1),
            log_format="text",
        )

    async def start_ferry(self) -> None:
        self.runtime, self._server = await self._launch(self.ferry_port)

    async def _launch(self, port: int) -> tuple[Runtime, asyncio.Task[None]]:
        runtime = build_runtime(self.settings(), emit=self.timeline.record)
        server = asyncio.get_running_loop().create_task(run_server(runtime.app, "127.0.0.1", port))
        await self._wait_for_port(port)
        # As `ferry serve` does (bot.startup): a GitHub that did not answer (or holds the installation
        # after a secondary limit) is asked again, a refusal is raised.
        await until_answered(runtime.start, DISCOVERY_WITHIN)
        return runtime, server

    async def start_replica(self) -> str:
        """Start one more Ferry process (same settings, its own memory and port); return its webhook URL."""
        port = free_port()
        runtime, server = await self._launch(port)
        self.replicas.append((runtime, port, server))
        return self.ferry_url(port)

    def ferry_url(self, port: int | None = None) -> str:
        """The webhook URL of the Ferry listening on ``port`` (default: the first Ferry)."""
        return f"http://127.0.0.1:{port or self.ferry_port}/webhooks/github"

    def pull_error(self, image: str) -> str | None:
        """Whether the cluster can pull ``image``: not when it names a ``-broken`` release, by tag or
        by the digest the registry stand-in gave that tag."""
        name, tag, digest = split_image(image)
        if digest is not None:
            repository = name.removeprefix(f"{self.registry.host}/")
            if (repository, digest) not in self._digest_tags:  # releases pushed since: look again
                for pushed in self.registry.manifests.get(repository, {}):
                    self._digest_tags[(repository, self.registry.digest(repository, pushed))] = pushed
                self._digest_tags.setdefault((repository, digest), None)  # not from this registry
            tag = self._digest_tags[(repository, digest)] or tag
        return broken_tag_pull_error(f"{name}:{tag}") if tag else None

    async def stop_ferry(self, *, crash: bool = False) -> None:
        """Stop Ferry; with ``crash``, whatever it was doing is dropped mid-way (as ``kill -9`` would: passes,
        and deliveries still being handled, which a graceful stop lets finish)."""
        if crash and self.runtime is not None:
            webhooks = self.runtime.app.get(WEBHOOKS_KEY)
            for task in [*self.runtime.tasks, *(webhooks.tasks if webhooks is not None else ())]:
                task.cancel()
            await self.runtime.reconciler.abandon()
        if self._server is not None:
            self._server.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server
            self._server = None
        if self.runtime is not None:
            await self.runtime.close(abrupt=crash)
            self.runtime = None

    async def stop(self) -> None:
        """Stop Ferry and every stand-in, then remove the temporary directory, whatever fails on the way."""
        try:
            while self.replicas:
                runtime, _port, server = self.replicas.pop()
                server.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await server
                await runtime.close(grace=5.0)
            await self.stop_ferry()
        finally:
            try:
                if self.argocd is not None:
                    await self.argocd.stop()
                await self.github.stop()
                await self.registry.stop()
            finally:
                if self._owns_workdir:
                    shutil.rmtree(self.workdir, ignore_errors=True)

    @staticmethod
    async def _wait_for_port(port: int) -> None:
        for _ in range(200):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                await asyncio.sleep(0.02)
                continue
            writer.close()
            return
        raise RuntimeError(f"Ferry did not listen on 127.0.0.1:{port}")

    # ---- acting as people do -----------------------------------------------------------------
    def person(
        self, login: str, permission: str = "write", teams: list[str] | None = None
    ) -> httpx.AsyncClient:
        token = self.github.add_user(login, permission, teams or [])
        return httpx.AsyncClient(
            base_url=self.github_url,
            headers={"Authorization": f"token {token}", "Accept": "application/vnd.github+json"},
            timeout=10,
        )

    async def open_pulls(self, client: httpx.AsyncClient) -> list[dict[str, Any]]:
        response = await client.get(f"/repos/{FULL_NAME}/pulls", params={"state": "open", "per_page": 100})
        response.raise_for_status()
        return list(response.json())

    async def merge(self, client: httpx.AsyncClient, pull: dict[str, Any], who: str) -> None:
        response = await client.put(
            f"/repos/{FULL_NAME}/pulls/{pull['number']}/merge", json={"sha": pull["head"]["sha"]}
        )
        response.raise_for_status()
        stage = pull["head"]["ref"].split("/")[1]
        self.timeline.add(events.PR_MERGED, stage, f"#{pull['number']} merged by {who}")

    async def approve(self, client: httpx.AsyncClient, pull: dict[str, Any], who: str) -> None:
        """Submit an approving review of the pull request's head as the person ``client`` signs in as."""
        response = await client.post(
            f"/repos/{FULL_NAME}/pulls/{pull['number']}/reviews", json={"event": "APPROVE"}
        )
        response.raise_for_status()
        stage = pull["head"]["ref"].split("/")[1]
        self.timeline.add("review_approved", stage, f"#{pull['number']} approved by {who}")

    async def wait_for(self, what: str, check: Any, within: float = 60.0) -> Any:
        """Poll ``check()`` (sync or async) until it returns something truthy.

        A check that returns a function (``lambda: some_async_check``) is a mistake, not a yes: a function
        is always truthy, so the wait would end at once whatever the world says. It raises ``TypeError``.
        """
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            value = check()
            if asyncio.iscoroutine(value):
                value = await value
            if callable(value):
                raise TypeError(f"sandbox: the check for {what} returned a function, not an answer")
            if value:
                return value
            await asyncio.sleep(0.05)
        raise TimeoutError(f"sandbox: gave up after {within:.0f}s waiting for {what}")

    async def settle(self, within: float = 60.0) -> None:
        """Let queued webhooks arrive and every pass they start finish, in at most about ``within`` seconds
        for each; ``TimeoutError`` names what did not finish."""
        assert self.runtime is not None
        try:
            await asyncio.wait_for(self.github.wait_for_deliveries(), within)
        except TimeoutError:
            raise TimeoutError(f"sandbox: webhooks still queued after {within:.0f}s") from None
        await asyncio.sleep(0.3)  # the webhook handler starts its work off the request path
        await self.runtime.reconciler.idle(within)

    def kinds(self, kind: str, stage: str | None = None) -> list[events.Event]:
        return [e for e in self.timeline.entries if e.kind == kind and (stage is None or e.stage == stage)]
