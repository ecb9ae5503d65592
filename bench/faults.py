"""Faults against the sandbox world (issue 14): what Ferry does when GitHub stalls or fails, Argo CD is
down, Ferry is killed mid-verification, or several replicas get every webhook, counted from the stand-ins'
own records (GitHub's pulls, comments and requests; Argo CD's accepted syncs).

Each fault runs in a fresh world (real Ferry, GitHub/Argo CD/registry stand-ins on 127.0.0.1): a release
manager opens an issue, then, while the fault holds, a new release reaches dev (Ferry opens, merges and
verifies its promotion: dev's app is a manual one, so Ferry syncs it) and the manager comments ``/status``
and ``/help``; replica faults also ask ``/promote staging`` once dev is verified. Per fault it prints:
commands posted / answered (exactly one App reply each), duplicate promotion PRs (same branch opened
twice), duplicate App comments (same body twice), duplicate Argo CD syncs (same app and promotion id
twice), force-pushes (pushes that rewrote a branch's history, from GitHub's push events; none is needed
here), writes to GitHub by replicas that do not own the repository, the seconds from the end of the
fault (its injection, for a fault that lasts) until every command is answered and dev has a verdict, and
per service (GitHub, Argo CD, registry) the longest single call any Ferry made and its deadline, as
``bot.call_deadlines`` timed them at the call. Targets: every command answered, 0 duplicates, 0
force-pushes where several replicas act (one replica re-pushing its own branch after a refused write shows
as "own"), 0 non-owner writes, no call longer than its deadline (plus ``LATE``, what a busy event loop
may add to the cut); the exit status is 1 when one is missed.

    .venv/bin/python bench/faults.py [--only SUBSTRING] [--within 120]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import datetime
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.argocd import PROMOTION_INFO_KEY
from bot.call_deadlines import ARGOCD, CALLS, GITHUB, REGISTRY
from bot.core.gates import health_context
from bot.reconciler import shard_of
from bot.runtime import Runtime
from bot.sandbox.argocd_apps import git_app
from bot.sandbox.example import quick_pipeline
from bot.sandbox.github_state import BOT_LOGIN
from bot.sandbox.proxy import BehindAProxy, Tuned
from bot.sandbox.replicas import Mirror, replica, writes
from bot.sandbox.world import ARGOCD_SERVER, FULL_NAME, World, free_port
from bot.server import WEBHOOK_PATH
from bot.settings import ArgoCDServer

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
MANAGER, TEAM = "rita", "acme/release-managers"
PULLS = "/repos/{owner}/{repo}/pulls"
ISSUE_COMMENTS = "/repos/{owner}/{repo}/issues/{issue_number}/comments"
REACTIONS = "/repos/{owner}/{repo}/issues/comments/{comment_id}/reactions"
DEV_HEALTH = health_context("dev")
LATE = 0.5  # seconds past its deadline a cut call may end on a busy event loop
SERVICES = {GITHUB: "GitHub", ARGOCD: "Argo CD", REGISTRY: "registry"}


def pipeline(timeout: str) -> Callable[[dict[str, Any]], None]:
    def edit(config: dict[str, Any]) -> None:
        quick_pipeline(config, verify_timeout=timeout)
        config["stages"]["staging"]["auto_promote"] = False
        config["stages"]["prod"]["auto_promote"] = False

    return edit


async def manual_dev(world: World) -> None:
    """shop-dev without automated sync, so Ferry's deploy request is a sync (counted by Argo CD)."""
    assert world.argocd is not None
    world.argocd.set_spec("shop-dev", git_app("overlays/dev", "main"))


@dataclass
class Run:
    """One fault's world and what was asked in it."""

    world: World
    person: httpx.AsyncClient
    issue: int
    asked: list[int] = field(default_factory=list)
    non_owners: list[Runtime] = field(default_factory=list)
    lifted: float = 0.0  # when the fault ended (or was injected, for one that lasts)
    forced: list[str] = field(default_factory=list)  # refs whose history a push rewrote
    replicas: int = 1

    def __post_init__(self) -> None:
        def on_event(event: str, payload: dict[str, Any]) -> None:
            if event == "push" and payload.get("forced"):
                self.forced.append(str(payload["ref"]))

        self.world.github.on_event.append(on_event)

    async def command(self, body: str) -> None:
        response = await self.person.post(
            f"/repos/{FULL_NAME}/issues/{self.issue}/comments", json={"body": body}
        )
        response.raise_for_status()
        self.asked.append(int(response.json()["id"]))

    def replies(self, comment_id: int) -> int:
        marker = f"<!-- ferry:reply-to:{comment_id} -->"
        return sum(1 for c in self.bot_comments() if marker in c)

    def bot_comments(self) -> list[str]:
        return [c["body"] for c in self.world.github.comments if c["user"]["login"] == BOT_LOGIN]

    def dev_verdict(self) -> str | None:
        merged = [
            p
            for _, p in sorted(self.world.github.pulls.items())
            if p["head"]["ref"].startswith("ferry/dev/") and p["merged"]
        ]
        if not merged:
            return None
        records = self.world.github.state.statuses.get(merged[-1]["merge_commit_sha"], [])
        states = [r.state for r in records if r.context == DEV_HEALTH]
        return states[-1] if states and states[-1] != "pending" else None

    def done(self) -> bool:
        return all(self.replies(c) for c in self.asked) and self.dev_verdict() is not None


@dataclass
class Row:
    fault: str
    posted: int = 0
    answered: int = 0
    dup_prs: int = 0
    dup_comments: int = 0
    dup_syncs: int = 0
    force_pushes: int = 0
    non_owner_writes: int | None = None
    replicas: int = 1
    recover: float | None = None
    longest: dict[str, tuple[float, float]] = field(default_factory=dict)  # service -> (longest, deadline)
    error: str = ""

    @property
    def overran(self) -> list[str]:
        return [s for s, (took, deadline) in self.longest.items() if took > deadline + LATE]

    @property
    def met(self) -> bool:
        # One replica rewriting its own branch (a retry after a refused write) is not another's work lost.
        foreign_pushes = self.force_pushes if self.replicas > 1 else 0
        duplicates = self.dup_prs + self.dup_comments + self.dup_syncs + foreign_pushes
        return (
            not self.error
            and self.answered == self.posted
            and duplicates == 0
            and not self.non_owner_writes
            and not self.overran
        )

    def cells(self) -> list[str]:
        recover = "-" if self.recover is None else f"{self.recover:.1f}"
        owners = "-" if self.non_owner_writes is None else str(self.non_owner_writes)
        met = "yes" if self.met else "NO" + (f" ({self.error})" if self.error else "")
        calls = ", ".join(
            f"{SERVICES[s]} {took:.1f}/{deadline:g}"
            for s, (took, deadline) in sorted(self.longest.items(), key=lambda i: list(SERVICES).index(i[0]))
        )
        return [
            self.fault,
            f"{self.posted}/{self.answered}",
            *(str(n) for n in (self.dup_prs, self.dup_comments, self.dup_syncs)),
            f"{self.force_pushes}{' (own)' if self.force_pushes and self.replicas == 1 else ''}",
            owners,
            recover,
            calls or "-",
            met,
        ]


def count(run: Run, row: Row) -> None:
    world = run.world
    assert world.argocd is not None
    row.posted = len(run.asked)
    row.answered = sum(1 for c in run.asked if run.replies(c) == 1)
    refs = collections.Counter(
        p["head"]["ref"] for p in world.github.pulls.values() if p["head"]["ref"].startswith("ferry/")
    )
    row.dup_prs = sum(n - 1 for n in refs.values())
    row.dup_comments = sum(n - 1 for n in collections.Counter(run.bot_comments()).values())
    syncs = collections.Counter((s[0], s[2].get(PROMOTION_INFO_KEY, s[1])) for s in world.argocd.syncs)
    row.dup_syncs = sum(n - 1 for n in syncs.values())
    row.force_pushes = len(run.forced)
    row.replicas = run.replicas
    if run.non_owners:
        row.non_owner_writes = sum(sum(writes(r).values()) for r in run.non_owners)


@contextlib.asynccontextmanager
async def started(world: World, verify_timeout: str = "20s") -> AsyncIterator[Run]:
    try:
        await world.start(pipeline(verify_timeout), RELEASES, before_ferry=manual_dev)
        async with world.person(MANAGER, "write", [TEAM]) as person:
            response = await person.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})
            response.raise_for_status()
            await world.settle()
            yield Run(world, person, int(response.json()["number"]))
    finally:
        await world.stop()


async def release_and_ask(run: Run, tag: str = "1.5.0") -> None:
    run.world.registry.push("acme/web", tag)
    run.world.registry.push("acme/worker", tag)
    await run.command("/status")
    await run.command("/help")


# ---- the faults ----------------------------------------------------------------------------------------
Scenario = Callable[[], Awaitable[Run]]


async def github_stall(run_fault: Callable[[Run], Awaitable[None]], within: float) -> Run:
    world = BehindAProxy()
    async with started(world) as run:
        world.proxy.silence()  # Ferry's requests stall until their 1 s deadline
        await release_and_ask(run)
        await asyncio.sleep(3.0)
        world.proxy.forward_to(int(world.github_url.rsplit(":", 1)[1]))
        run.lifted = time.monotonic()
        await run_fault(run)
        return run


async def github_fault(
    inject: Callable[[World], None], run_fault: Callable[[Run], Awaitable[None]], within: float
) -> Run:
    async with started(World(progress_seconds=0.2)) as run:
        inject(run.world)
        run.lifted = time.monotonic()
        await release_and_ask(run)
        await run_fault(run)
        return run


async def argocd_port_closed(run_fault: Callable[[Run], Awaitable[None]], within: float) -> Run:
    closed = ArgoCDServer(url=f"http://127.0.0.1:{free_port()}", token="argocd-token")
    world = Tuned(argocd_servers={ARGOCD_SERVER: closed})
    async with started(world, verify_timeout="3s") as run:
        run.lifted = time.monotonic()
        await release_and_ask(run)
        await run_fault(run)
        return run


async def kill_mid_verification(run_fault: Callable[[Run], Awaitable[None]], within: float) -> Run:
    async with started(World(progress_seconds=1.0)) as run:
        world = run.world
        await release_and_ask(run)

        def verifying() -> bool:
            merged = [p for p in world.github.pulls.values() if p["merged"]]
            return bool(merged) and any(
                r.context == DEV_HEALTH and r.state == "pending"
                for r in world.github.state.statuses.get(merged[-1]["merge_commit_sha"], [])
            )

        await world.wait_for("dev verifying its merge", verifying, within)
        await world.stop_ferry(crash=True)  # kill -9: passes and deliveries in flight are dropped
        await run.command("/status")  # posted while no Ferry runs
        await world.start_ferry()
        run.lifted = time.monotonic()
        await run_fault(run)
        return run


async def replicas(
    count_: int, sharded: bool, run_fault: Callable[[Run], Awaitable[None]], within: float
) -> Run:
    owner = shard_of(FULL_NAME, count_) if sharded else 0
    shards = [f"{i}/{count_}" if sharded else "0/1" for i in range(count_)]
    # The world's own Ferry is a non-owner when sharded. Idle passes every 3 s, not the sandbox's 1 s: with
    # every replica and stand-in in this one process, a pass takes about a second, and at 1 s the world's
    # Ferry would never be idle for the settle that follows recovery.
    world = Tuned(
        shard=shards[(owner + 1) % count_] if sharded else "0/1", poll_idle=datetime.timedelta(seconds=3)
    )
    ports = [free_port() for _ in range(count_ - 1)]
    mirror = Mirror([f"http://127.0.0.1:{p}{WEBHOOK_PATH}" for p in [world.ferry_port, *ports]])
    world.github.set_delivery(replicas=[mirror.url])
    await mirror.start()
    try:
        async with started(world) as run, contextlib.AsyncExitStack() as stack:
            others = [s for s in shards if s != world.settings().shard] if sharded else shards[1:]
            sink: list[Any] = []
            extra = [
                await stack.enter_async_context(
                    replica(world.settings().model_copy(update={"shard": shard}), port, sink)
                )
                for shard, port in zip(others, ports, strict=True)
            ]
            assert world.runtime is not None
            if sharded:
                run.non_owners = [r for r in [world.runtime, *extra] if not r.reconciler.owns(FULL_NAME)]
            run.replicas = count_
            run.lifted = time.monotonic()
            await release_and_ask(run)
            await world.wait_for("dev verified", run.done, within)
            await run.command("/promote staging")
            await run_fault(run)
            return run
    finally:
        await mirror.stop()


def faults(within: float) -> dict[str, Callable[[Callable[[Run], Awaitable[None]]], Awaitable[Run]]]:
    def on_github(inject: Callable[[World], None]) -> Any:
        return lambda finish: github_fault(inject, finish, within)

    return {
        "GitHub stalls 3 s (1 s deadline)": lambda finish: github_stall(finish, within),
        "502 before a write (open PR)": on_github(lambda w: w.github.fail_next("POST", PULLS, 502)),
        "503 after a write (open PR)": on_github(
            lambda w: w.github.fail_next("POST", PULLS, 503, after_write=True)
        ),
        "503 after a write (comment)": on_github(
            lambda w: w.github.fail_next("POST", ISSUE_COMMENTS, 503, after_write=True, login=BOT_LOGIN)
        ),
        "403 secondary limit, no Retry-After": on_github(
            lambda w: w.github.fail_next_secondary_limit("POST", REACTIONS, status=403)
        ),
        "429 secondary limit, no Retry-After": on_github(
            lambda w: w.github.fail_next_secondary_limit("POST", REACTIONS, status=429)
        ),
        "Argo CD port closed (3 s timeout)": lambda finish: argocd_port_closed(finish, within),
        "kill -9 mid-verification": lambda finish: kill_mid_verification(finish, within),
        "2 replicas, no sharding": lambda finish: replicas(2, False, finish, within),
        "3 replicas, no sharding": lambda finish: replicas(3, False, finish, within),
        "2 replicas, FERRY_SHARD i/2": lambda finish: replicas(2, True, finish, within),
        "3 replicas, FERRY_SHARD i/3": lambda finish: replicas(3, True, finish, within),
    }


async def measure(name: str, scenario: Any, within: float) -> Row:
    row = Row(name)
    CALLS.reset()  # every Ferry of this fault runs in this process

    async def finish(run: Run) -> None:
        try:
            await run.world.wait_for("every command answered and dev's verdict", run.done, within)
            row.recover = time.monotonic() - run.lifted
            await run.world.settle()
            await asyncio.sleep(1.0)  # a late duplicate would show by now
        except TimeoutError as exc:
            row.error = str(exc)
        count(run, row)
        row.longest = {s: (took, CALLS.deadline[s]) for s, took in CALLS.longest.items()}

    try:
        await scenario(finish)
    except Exception as exc:  # a fault that could not be set up is reported, not hidden
        row.error = row.error or f"{type(exc).__name__}: {exc}"
    return row


def table(rows: list[Row]) -> str:
    head = [
        "fault",
        "commands posted/answered",
        "dup PRs",
        "dup comments",
        "dup syncs",
        "force-pushes",
        "non-owner writes",
        "recover s",
        "longest call / deadline s",
        "target met",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


async def main(only: str, within: float) -> int:
    rows = []
    for name, scenario in faults(within).items():
        if only.lower() in name.lower():
            rows.append(await measure(name, scenario, within))
            print(f"done: {name}", file=sys.stderr, flush=True)
    print(table(rows))
    return 0 if rows and all(row.met for row in rows) else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--only", default="", help="run the faults whose name contains this")
    parser.add_argument("--within", type=float, default=120.0, help="seconds each fault may take to recover")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)
    sys.exit(asyncio.run(main(args.only, args.within)))
