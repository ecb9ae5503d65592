"""Delivery figures inside Ferry: read from the ledger only when a verdict was written (or a person asks and
the figures are stale), shown by ``/status``, on the status page and as ``ferry_dora_*`` gauges; an idle
pass never reads the ledger."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from test_sandbox import RELEASES, _is

from bot import events
from bot.cli.sandbox import summary_table
from bot.core.dora import RepoFigures, StageFigures, figures
from bot.core.freight import Freight, FreightImage
from bot.core.ledger import TASK_PROMOTE, TASK_ROLLBACK, LedgerEntry, deployment_payload
from bot.delivery import DeliveryFigures
from bot.errors import GitHubError
from bot.metrics import Metrics
from bot.sandbox.example import quick_pipeline
from bot.sandbox.run import summarise
from bot.sandbox.world import FULL_NAME, World

DEPLOYMENTS = "GET /repos/{owner}/{repo}/deployments"


NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def ledger_deployment(person: httpx.AsyncClient, stage: str, tag: str, verdict: str, task: str) -> None:
    head = (await person.get(f"/repos/{FULL_NAME}/commits/main")).json()["sha"]
    freight = Freight("shop", (FreightImage("ghcr.io/acme/web", tag),))
    made = await person.post(
        f"/repos/{FULL_NAME}/deployments",
        json={
            "ref": head,
            "environment": stage,
            "task": task,
            "payload": deployment_payload(freight, pushed_at=datetime.now(UTC) - timedelta(hours=1)),
            "auto_merge": False,
            "required_contexts": [],
        },
    )
    assert made.status_code == 201, made.text
    status = await person.post(
        f"/repos/{FULL_NAME}/deployments/{made.json()['id']}/statuses", json={"state": verdict}
    )
    assert status.status_code == 201, status.text


def dev_week(found: RepoFigures | None) -> StageFigures:
    assert found is not None
    return next(f for f in found.figures if f.stage == "dev" and f.window_days == 7)


async def test_the_ledger_is_read_after_a_verdict_or_when_asked_and_shown_everywhere_not_by_idle_passes() -> (
    None
):
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        await world.wait_for("every stage verified", _is(world, "success"), 60)
        assert world.runtime is not None
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below (and those webhooks start) run now
        reconciler = world.runtime.reconciler
        await reconciler.idle()
        await reconciler.reconcile(FULL_NAME)
        first = reconciler.delivery.cached(FULL_NAME)
        assert first is not None  # read by the passes that wrote verdicts
        assert [f.stage for f in first.figures][::2] == ["dev", "staging", "prod"]  # the config's order

        async with world.person("rita") as rita:
            # Another tool (or another Ferry) records a failed change in dev and its rollback.
            await ledger_deployment(rita, "dev", "1.4.3", "failure", TASK_PROMOTE)
            await ledger_deployment(rita, "dev", "1.4.2", "success", TASK_ROLLBACK)
            reads = world.github.requests[DEPLOYMENTS]
            for _ in range(3):
                assert await reconciler.reconcile(FULL_NAME) == []
            assert world.github.requests[DEPLOYMENTS] == reads  # idle passes do not read the ledger
            assert reconciler.delivery.cached(FULL_NAME) == first

            # A person opens the status page after the figures aged: the ledger is read once, for both.
            reconciler.delivery.max_age = timedelta(0)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.ferry_port}", timeout=10) as web:
                page = (await web.get("/status.json")).json()
                reconciler.delivery.max_age = timedelta(minutes=5)
                html = (await web.get("/")).text
                metrics = (await web.get("/metrics")).text
            (shown,) = [p for p in page["pipelines"] if p["repo"] == FULL_NAME]
            dev = next(f for f in shown["delivery"] if f["stage"] == "dev" and f["window_days"] == 7)
            assert dev["change_failure_rate"] is not None and dev["change_failure_rate"] > 0
            assert dev["lead_time_median_seconds"] is None or dev["lead_time_median_seconds"] >= 0
            assert '<section class="more delivery"><h3>Delivery</h3>' in html
            assert '<tr data-stage="dev" data-window="30">' in html
            week = dev_week(reconciler.delivery.cached(FULL_NAME))
            assert week.failed_changes >= 1
            gauge = f'ferry_dora_change_failure_rate{{repo="{FULL_NAME}",stage="dev",window="7d"}}'
            assert f"{gauge} {week.change_failure_rate}" in metrics
            assert (
                f'ferry_dora_deployment_frequency{{repo="{FULL_NAME}",stage="dev",window="30d"}}' in metrics
            )
            assert f'ferry_dora_time_to_restore_median_seconds{{repo="{FULL_NAME}",stage="dev",' in metrics

            # /status answers with the same figures (fresh: no second read).
            issue = await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "How are we doing?"})
            before = len(world.kinds(events.COMMAND_ACCEPTED))
            said = await rita.post(
                f"/repos/{FULL_NAME}/issues/{issue.json()['number']}/comments", json={"body": "/status"}
            )
            assert said.status_code == 201, said.text
            await world.wait_for(
                "the /status reply", lambda: len(world.kinds(events.COMMAND_ACCEPTED)) > before, 30
            )
            reply = next(c["body"] for c in world.github.comments if "ferry:reply-to" in c["body"])
            assert "**Delivery** (from the ledger of GitHub Deployments" in reply
            assert "| stage | window | deployment frequency | lead time (median / p90) |" in reply
            assert f"| dev | 7d | {week.deployment_frequency:.2f}/day ({week.deployments}) |" in reply

            # One more failure lands in the ledger; a new release verified in dev (a verdict) reads it.
            await ledger_deployment(rita, "dev", "1.4.4", "failure", TASK_PROMOTE)
            world.registry.push("acme/web", "1.5.0")
            world.registry.push("acme/worker", "1.5.0")

            def reread() -> bool:
                reconciler.trigger(FULL_NAME)
                return dev_week(reconciler.delivery.cached(FULL_NAME)).failed_changes > week.failed_changes

            await world.wait_for("figures read again after dev's verdict on 1.5.0", reread, 60)

        # The sandbox's summary carries them too, and prints them under its table.
        summary = await summarise(world, "delivery", True, "")
        dev_month = next(f for f in summary["delivery"] if f["stage"] == "dev" and f["window_days"] == 30)
        assert dev_month["failed_changes"] >= 2
        printed = summary_table(summary)
        assert "Delivery figures from the ledger:" in printed
        assert "| dev | 30d | " in printed and "| prod | 7d | " in printed
    finally:
        await world.stop()


# ---- the cache on its own -------------------------------------------------------------------------
class Ledger:
    def __init__(self) -> None:
        self.reads = 0
        self.fail = False
        self.gate: asyncio.Event | None = None

    async def __call__(self, repo: str) -> list[LedgerEntry]:
        self.reads += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail:
            raise GitHubError("GitHub answered 502 listing deployments", temporary=True)
        return []


def clock_at(moments: list[datetime]) -> Callable[[], datetime]:
    return lambda: moments[0]


async def test_the_cache_reads_when_invalid_or_stale_shares_one_read_and_waits_after_a_failure() -> None:
    ledger, now = Ledger(), [NOW]
    seen: list[str] = []
    cache = DeliveryFigures(ledger, clock=clock_at(now), on_update=lambda repo, _: seen.append(repo))
    assert cache.cached("a/b") is None and cache.invalid("a/b")
    await cache.refresh("a/b", ["dev"], only_if_invalid=True)
    await cache.refresh("a/b", ["dev"], only_if_invalid=True)  # nothing new: no read
    assert ledger.reads == 1 and seen == ["a/b"]
    now[0] += timedelta(minutes=10)
    await cache.refresh("a/b", ["dev"], only_if_invalid=True)  # old, but only a verdict makes a pass read
    assert ledger.reads == 1
    await cache.refresh("a/b", ["dev"])  # a person asks: stale, read
    assert ledger.reads == 2
    cache.invalidate("a/b")
    ledger.gate = asyncio.Event()
    both = asyncio.gather(cache.refresh("a/b"), cache.refresh("a/b"))
    await asyncio.sleep(0)
    ledger.gate.set()
    await both
    assert ledger.reads == 3  # two askers at once: one read
    ledger.gate, ledger.fail = None, True
    cache.invalidate("a/b")
    kept = cache.cached("a/b")
    assert await cache.refresh("a/b", only_if_invalid=True) == kept  # the figures read before
    assert await cache.refresh("a/b", only_if_invalid=True) == kept
    assert ledger.reads == 4  # not tried again at once: no request on every pass while GitHub fails
    now[0] += timedelta(minutes=6)
    ledger.fail = False
    await cache.refresh("a/b", only_if_invalid=True)
    assert ledger.reads == 5 and not cache.invalid("a/b")


@pytest.mark.parametrize("days", [7, 30])
def test_a_stage_without_data_has_no_gauge_series_rather_than_a_zero(days: int) -> None:
    metrics = Metrics()
    metrics.set_delivery("acme/gitops", RepoFigures(NOW, tuple(figures([], now=NOW, stages=["dev"])), 0))
    text = metrics.render()[0].decode()
    assert f'stage="dev",window="{days}d"' not in text
    assert "# TYPE ferry_dora_change_failure_rate gauge" in text
