"""Scheduling: shards, timer ticks and coalescing of triggers (no GitHub needed: passes are stubbed)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import timedelta

from test_wake import STAGING_SOAK, staging_app, verifying_staging

from bot.core.actions import Action
from bot.errors import GitHubError
from bot.github.client import GitHubApp
from bot.reconciler import Reconciler, shard_of

REPOS = [f"acme/repo-{i}" for i in range(200)]


def reconciler(shard: tuple[int, int] = (0, 1)) -> Reconciler:
    app = GitHubApp(app_id=1, private_key="unused: no request is made", base_url="http://127.0.0.1:9")
    r = Reconciler(app, shard=shard)
    r.repos = dict.fromkeys(REPOS, 1)
    return r


def test_every_repository_belongs_to_exactly_one_shard_and_always_the_same() -> None:
    owners = [[i for i in range(3) if reconciler((i, 3)).owns(repo)] for repo in REPOS]
    assert all(len(o) == 1 for o in owners)
    assert [shard_of(r, 3) for r in REPOS] == [shard_of(r, 3) for r in REPOS]
    assert {shard_of(r, 3) for r in REPOS} == {0, 1, 2}


def test_fast_ticks_poll_only_repositories_that_are_verifying() -> None:
    r = reconciler()
    r.verifying = {"acme/repo-7"}
    assert r.due_repositories(idle_due=False) == ["acme/repo-7"]
    assert len(r.due_repositories(idle_due=True)) == len(REPOS)


async def test_triggers_during_a_pass_coalesce_into_one_more_pass() -> None:
    r = reconciler()
    passes: list[str] = []
    started = asyncio.Event()
    release = asyncio.Event()

    async def slow_pass(repo: str) -> list[Action]:
        passes.append(repo)
        started.set()
        await release.wait()
        return []

    r.reconcile = slow_pass  # type: ignore[method-assign]
    r.trigger("acme/repo-1")
    await started.wait()
    for _ in range(5):
        r.trigger("acme/repo-1")  # five webhooks while the first pass runs
    release.set()
    await r.idle()
    assert passes == ["acme/repo-1", "acme/repo-1"]


async def test_unknown_repositories_are_not_reconciled() -> None:
    r = reconciler()
    passes: list[str] = []

    async def record(repo: str) -> list[Action]:
        passes.append(repo)
        return []

    r.reconcile = record  # type: ignore[method-assign]
    r.trigger("someone/else")
    r.trigger("acme/repo-3")
    await r.idle()
    assert passes == ["acme/repo-3"]


async def test_a_rate_limited_pass_runs_again_only_after_the_wait_whatever_triggers_it_meanwhile() -> None:
    r = reconciler()
    passes: list[float] = []

    async def limited_once(repo: str) -> list[Action]:
        passes.append(time.monotonic())
        if len(passes) == 1:
            raise GitHubError("GitHub secondary rate limit", temporary=True, retry_after=0.4)
        return []

    r.reconcile = limited_once  # type: ignore[method-assign]
    r.trigger("acme/repo-1")
    await r.idle()
    for _ in range(5):  # timer ticks and webhooks during the wait
        r.trigger("acme/repo-1")
        await r.idle()
    assert len(passes) == 1
    for _ in range(200):
        if len(passes) == 2:
            break
        await asyncio.sleep(0.01)
    await r.idle()
    assert len(passes) == 2, "the retry ran after the wait"
    assert passes[1] - passes[0] >= 0.4


async def test_a_repository_another_shard_owns_gets_no_pass_whatever_asks_for_one() -> None:
    r = reconciler((0, 2))
    theirs = next(repo for repo in REPOS if not r.owns(repo))
    mine = next(repo for repo in REPOS if r.owns(repo))
    passes: list[str] = []

    async def record(repo: str) -> list[Action]:
        passes.append(repo)
        return []

    r.reconcile = record  # type: ignore[method-assign]
    r.trigger(theirs)  # a webhook, a command, the timer or a retry all come through here
    await r.promotion_merged(theirs, "dev", "a" * 40)
    r._retry(theirs)
    r.trigger(mine)
    await r.idle()
    assert passes == [mine]


async def test_a_failing_step_of_a_pass_does_not_hold_the_others_back_and_is_retried() -> None:
    r = reconciler()
    ran: list[str] = []

    async def failing(repo: str) -> list[Action]:
        ran.append("reconcile")
        raise GitHubError("GitHub answered 502", temporary=True)

    async def sweep(repo: str) -> int:
        ran.append("sweep")
        return 0

    r.reconcile = failing  # type: ignore[method-assign]
    r.steps.append(sweep)
    r.trigger("acme/repo-1")
    await r.idle()
    assert ran == ["reconcile", "sweep"]
    assert "acme/repo-1" in r._retry_handles  # the pass as a whole comes back after the backoff
    r._retry_handles.pop("acme/repo-1").cancel()


async def test_waiting_for_idle_gives_up_after_its_bound_naming_the_repository_whose_pass_hangs() -> None:
    r = reconciler()
    never = asyncio.Event()

    async def stuck_pass(repo: str) -> list[Action]:
        await never.wait()
        return []

    r.reconcile = stuck_pass  # type: ignore[method-assign]
    r.trigger("acme/repo-3")
    started = time.monotonic()
    try:
        await r.idle(within=0.2)
    except TimeoutError as exc:
        assert "acme/repo-3" in str(exc) and "still running after 0.2s" in str(exc)
    else:
        raise AssertionError("idle() returned while a pass was still running")
    assert time.monotonic() - started < 5
    await r.abandon()


async def test_a_repository_whose_verifying_stages_only_soak_is_woken_at_the_soak_end_not_polled() -> None:
    r = reconciler()
    soaking = verifying_staging(staging_app(healthy_for=STAGING_SOAK - timedelta(seconds=0.2)))
    repo = "acme/repo-3"
    passes: list[str] = []
    woken = asyncio.Event()

    async def a_pass(name: str) -> list[Action]:
        passes.append(name)
        woken.set()
        return []

    r.reconcile = a_pass  # type: ignore[method-assign]
    r.verifying = {repo}
    r.soaking.schedule(replace(soaking, repo=repo))
    assert r.due_repositories(idle_due=False) == []  # no fast polling while it only soaks
    assert repo in r.due_repositories(idle_due=True)  # the idle interval's pass still looks
    async with asyncio.timeout(5):  # the soak ends 0.2 s after the snapshot was taken
        await woken.wait()
    assert passes == [repo]
    assert r.due_repositories(idle_due=False) == [repo]
