"""Wiring: build Ferry's parts from one Settings object, for `ferry serve`, `ferry plan` and the sandbox."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot import events
from bot.argocd import ArgoCDClient
from bot.command_runner import CommandRunner
from bot.core.config import Warehouse
from bot.core.freight import Freight
from bot.errors import SettingsError
from bot.freight_cache import FreightCache
from bot.github.client import GitHubApp, RequestCounter
from bot.metrics import Metrics
from bot.reconciler import Reconciler
from bot.registry import RegistryClient, discover_freight
from bot.server import create_app
from bot.settings import Settings
from bot.webhooks import WebhookRouter


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
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self) -> None:
        """Learn the installations, reconcile every owned repository once, start the timer."""
        await self.reconciler.discover()
        for repo in self.reconciler.repos:
            if self.reconciler.owns(repo):
                self.reconciler.trigger(repo)
        timer = self.reconciler.run_timer(
            self.settings.poll_fast.total_seconds(), self.settings.poll_idle.total_seconds()
        )
        self.tasks.append(asyncio.get_running_loop().create_task(timer))

    async def close(self, *, abrupt: bool = False) -> None:
        """Stop; ``abrupt`` drops passes in flight instead of letting them finish (a crash)."""
        if abrupt:
            await self.reconciler.abandon()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.reconciler.idle()
        await self.registry.aclose()
        if self.argocd is not None:
            await self.argocd.aclose()

    async def status(self) -> dict[str, Any]:
        return {
            "repositories": sorted(self.reconciler.repos),
            "verifying": sorted(self.reconciler.verifying),
            "last_pass": self.reconciler.last_pass,
        }


def build_runtime(settings: Settings, *, emit: events.EventSink = events.discard) -> Runtime:
    metrics = Metrics()

    def observe_github(method: str, status: int, remaining: str | None) -> None:
        metrics.github_requests.labels(method=method, status=str(status)).inc()
        if remaining is not None and remaining.isdigit():
            metrics.github_rate_limit_remaining.set(int(remaining))

    github = GitHubApp(
        app_id=_require(settings.app_id, "FERRY_APP_ID"),
        private_key=settings.app_private_key(),
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

    reconciler = Reconciler(
        github,
        freight=freight,
        argocd=argocd,
        argocd_urls=argocd_urls,
        shard=settings.shard_index_count,
        emit=emit,
        on_pass=on_pass,
        on_action=on_action,
    )
    commands = CommandRunner.for_reconciler(reconciler)
    router = WebhookRouter(
        reconciler,
        on_comment=commands,
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
    runtime.app = create_app(settings, router.deliver, metrics=metrics, status=runtime.status)
    return runtime


@contextlib.asynccontextmanager
async def running(settings: Settings, *, emit: events.EventSink = events.discard) -> AsyncIterator[Runtime]:
    runtime = build_runtime(settings, emit=emit)
    try:
        yield runtime
    finally:
        await runtime.close()


def _require(value: int | None, variable: str) -> int:
    if value is None:
        raise SettingsError(f"{variable} is required but not set")
    return value
