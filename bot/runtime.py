"""Wiring: build Ferry's parts from one Settings object, for `ferry serve`, `ferry plan` and the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from bot import __version__, events
from bot.argocd import ArgoCDClient
from bot.command_runner import CommandRunner
from bot.command_sweep import CommandSweep
from bot.config_prs import ConfigReview
from bot.core.config import Warehouse
from bot.core.freight import Freight
from bot.core.pipeline import stage_order
from bot.errors import SettingsError
from bot.event_log import logged
from bot.freight_cache import FreightCache
from bot.freight_check import undeployable
from bot.github.client import GitHubApp, RequestCounter
from bot.metrics import Metrics
from bot.observe_reuse import full_read_every
from bot.reconciler import Reconciler
from bot.registry import RegistryClient, discover_freight
from bot.server import create_app
from bot.settings import Settings
from bot.settings_checks import private_key_pem
from bot.startup import Discovered, Startup, discover
from bot.status_model import StatusView
from bot.status_view import build_status, github_html_url
from bot.webhooks import WebhookRouter

log = logging.getLogger("ferry.runtime")
DELIVERY_READ_SECONDS = 5.0  # how long the status page waits for ledgers whose figures are stale


@dataclass
class Runtime:
    settings: Settings
    metrics: Metrics
    github: GitHubApp
    registry: RegistryClient
    argocd: ArgoCDClient | None
    freight: FreightCache
    reconciler: Reconciler
    router: WebhookRouter
    app: web.Application
    startup: Startup = field(init=False)
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    closed: bool = False

    def __post_init__(self) -> None:
        async def find() -> Discovered:
            return await discover(self.reconciler)

        self.startup = Startup(find, self._begin)

    async def start(self) -> None:
        """Learn the installations now (a failure is raised), reconcile every owned repository once,
        start the timer: for the sandbox and tests, where GitHub is local."""
        await self.startup.discover_once()

    def start_in_background(self) -> None:
        """As ``start``, but discovery runs in the background and is tried again until GitHub answers
        (``bot.startup``): ``ferry serve`` listens and acknowledges webhooks meanwhile."""
        loop = asyncio.get_running_loop()
        self.tasks.append(loop.create_task(self.startup.run(), name="discovery"))
        self.tasks.append(loop.create_task(asyncio.to_thread(self.github.preload_discovery), name="preload"))

    def _begin(self, found: Discovered) -> None:
        for repo in self.reconciler.repos:
            if self.reconciler.owns(repo):
                self.reconciler.trigger(repo)
        timer = self.reconciler.run_timer(
            self.settings.poll_fast.total_seconds(), self.settings.poll_idle.total_seconds()
        )
        self.tasks.append(asyncio.get_running_loop().create_task(timer, name="timer"))

    async def close(self, *, abrupt: bool = False, grace: float | None = None) -> None:
        """Stop; ``abrupt`` drops passes in flight instead of letting them finish (a crash); ``grace``
        bounds the wait for them (seconds), after which they are dropped. Closing twice is harmless."""
        if self.closed:
            return
        self.closed = True
        if abrupt:
            await self.reconciler.abandon()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            async with asyncio.timeout(grace):
                await self.reconciler.idle()
        except TimeoutError:
            log.warning("passes still running at the end of the drain; stopping them", extra={"grace": grace})
            await self.reconciler.abandon()
        # Every connection pool of the process: GitHub's, the registries' and Argo CD's.
        await self.github.aclose()
        await self.registry.aclose()
        if self.argocd is not None:
            await self.argocd.aclose()

    async def status(self) -> StatusView:
        """What the status page shows: the last snapshot of each repository, as a view model, with each
        repository's delivery figures (its ledger read again when they are older than a few minutes,
        within ``DELIVERY_READ_SECONDS``; past that the page shows the figures read before)."""
        reconciler = self.reconciler
        await self._fresh_delivery()
        return build_status(
            reconciler.observed,
            repositories=reconciler.repos,
            owns=reconciler.owns,
            shard=self.settings.shard,
            verifying=reconciler.verifying,
            last_pass=reconciler.last_pass,
            now=datetime.now(UTC),
            github_html=github_html_url(str(self.settings.github_url)),
            version=__version__,
            delivery=reconciler.delivery.all_cached(),
        )

    async def _fresh_delivery(self) -> None:
        reconciler = self.reconciler
        reads = [
            reconciler.delivery.refresh(repo, stage_order(snapshot.config))
            for repo, snapshot in reconciler.observed.items()
            if snapshot is not None
            and snapshot.config is not None
            and repo in reconciler.repos
            and reconciler.delivery.stale(repo)
        ]
        if not reads:
            return
        try:
            async with asyncio.timeout(DELIVERY_READ_SECONDS):
                await asyncio.gather(*reads)
        except TimeoutError:
            log.warning(
                "the ledger was not read in time for the status page", extra={"within": DELIVERY_READ_SECONDS}
            )


def build_runtime(
    settings: Settings, *, emit: events.EventSink = events.discard, serve: bool = True
) -> Runtime:
    """Ferry's parts from ``settings``; with ``serve`` also its web application (which needs
    FERRY_WEBHOOK_SECRET), without it only what reads GitHub, Argo CD and registries (``ferry plan``)."""
    metrics = Metrics()

    def observe_github(method: str, status: int, remaining: str | None) -> None:
        metrics.github_requests.labels(method=method, status=str(status)).inc()
        if remaining is not None and remaining.isdigit():
            metrics.github_rate_limit_remaining.set(int(remaining))

    github = GitHubApp(
        app_id=_require(settings.app_id, "FERRY_APP_ID"),
        private_key=private_key_pem(settings),
        base_url=str(settings.github_url),
        timeout=settings.github_timeout,
        counter=RequestCounter(observe_github),
    )
    registry = RegistryClient(settings.registries)

    async def discover(name: str, warehouse: Warehouse) -> Freight:
        return await discover_freight(registry, name, warehouse)

    freight = FreightCache(discover)
    argocd = ArgoCDClient(settings.argocd_servers) if settings.argocd_servers else None
    argocd_urls = {name: str(server.url) for name, server in settings.argocd_servers.items()}

    def on_pass(repo: str, seconds: float, outcome: str) -> None:
        metrics.reconcile_passes.labels(outcome=outcome).inc()
        metrics.reconcile_duration.observe(seconds)

    def on_action(kind: str) -> None:
        metrics.actions.labels(kind=kind).inc()

    def on_budget(kind: str, requests: int) -> None:
        metrics.pass_github_requests.labels(kind=kind).observe(requests)

    reconciler = Reconciler(
        github,
        freight=freight,
        argocd=argocd,
        argocd_urls=argocd_urls,
        shard=settings.shard_index_count,
        emit=logged(emit),  # every decision to the log at INFO, and on to the caller's sink
        on_pass=on_pass,
        on_action=on_action,
        on_budget=on_budget,
        full_read_every=full_read_every(
            settings.poll_fast, settings.poll_idle, settings.shard_index_count[1]
        ),
    )
    reconciler.delivery.on_update = metrics.set_delivery  # the ferry_dora_* gauges

    async def freight_gone(found: Freight) -> str | None:
        return await undeployable(registry, found)

    commands = CommandRunner.for_reconciler(
        reconciler,
        max_age=settings.command_max_age,
        undeployable=freight_gone,
        claim_timeout=settings.command_claim_timeout,
    )
    sweep = CommandSweep(
        commands, reconciler.repo_client, lookback=settings.command_lookback, clock=reconciler.clock
    )
    # Each pass that reads GitHub in full also answers the repository's unanswered commands ...
    reconciler.change_steps.append(sweep)
    # ... and checks `.github/ferry.yml` on each open pull request's new head commit
    reconciler.change_steps.append(
        ConfigReview(
            reconciler.repo_client,
            reconciler.has_pipeline,
            emit=reconciler.emit,
        )
    )
    router = WebhookRouter(
        reconciler,
        on_comment=sweep.on_comment,
        on_package=freight.refresh_image,
        on_merge_handled=metrics.sync_latency.observe,
    )
    runtime = Runtime(
        settings=settings,
        metrics=metrics,
        github=github,
        registry=registry,
        argocd=argocd,
        freight=freight,
        reconciler=reconciler,
        router=router,
        app=web.Application(),
    )
    if not serve:
        return runtime
    runtime.app = create_app(
        settings,
        runtime.startup.hold(router.accept),
        metrics=metrics,
        status=runtime.status,
        ready=runtime.startup.readiness,
        admit=runtime.startup.admit,
        shutdown_grace=settings.drain_timeout.total_seconds(),
    )
    return runtime


@contextlib.asynccontextmanager
async def running(
    settings: Settings, *, emit: events.EventSink = events.discard, serve: bool = True
) -> AsyncIterator[Runtime]:
    runtime = build_runtime(settings, emit=emit, serve=serve)
    try:
        yield runtime
    finally:
        await runtime.close()


def _require(value: int | None, variable: str) -> int:
    if value is None:
        raise SettingsError(f"{variable} is required but not set")
    return value
