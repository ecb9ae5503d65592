"""The loop: observe -> decide -> act, one pass at a time per repository.

Triggers (webhooks, the timer, retries) arriving during a pass coalesce into one more pass. Failures
are classified once, here: temporary ones schedule a retry with backoff honouring the delay GitHub
or Argo CD asked for; permanent ones are logged and the pass moves on. Nothing here is needed
after a restart: every pass re-reads the truth from GitHub and Argo CD.

A pass reads GitHub in full only when something changed (``bot.observe_reuse``): the timer's passes and
a soak's end ask for the cheap check first; webhooks, commands, retries and the pass after one that wrote
to GitHub read everything. Steps in ``change_steps`` (the command sweep, the config review) run only in
passes that read GitHub in full, so an idle pass costs the change check's two conditional requests. Each
pass's GitHub requests are counted (``bot.pass_budget``) and reported by kind to ``on_budget``.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, cast

from bot import events
from bot.actor import Actor
from bot.argocd_deploy import DeployPort
from bot.core.actions import Action, SetStatus
from bot.core.backoff import retry_delay
from bot.core.config import PipelineConfig
from bot.core.config_load import update_target_paths
from bot.core.decide import decide
from bot.core.gates import HEALTH_PREFIX
from bot.core.ledger import LedgerEntry
from bot.core.ledger_sync import ledger_fingerprint
from bot.core.pipeline import stage_order
from bot.core.snapshot import Snapshot
from bot.core.verification import start_verification
from bot.delivery import DeliveryFigures
from bot.errors import ExternalError, FerryError
from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.observe import FreightSource
from bot.observe_approvals import merge_may_deploy
from bot.observe_apps import AppReader
from bot.observe_reuse import FULL_READ_EVERY, VERIFYING_CHECK_EVERY, SnapshotReuse
from bot.pass_budget import Budget, PassCount, counting, note_action
from bot.soak_wakes import SoakWakes

log = logging.getLogger("ferry.reconciler")
VERDICT_STATES = ("success", "failure", "error")
IDLE_WITHIN = 120.0  # seconds ``idle`` waits for passes in flight before it gives up, naming them


class SyncPort(AppReader, DeployPort, Protocol):
    """The Argo CD adapter as the reconciler uses it: read apps, refresh them, sync them."""


def shard_of(repo: str, count: int) -> int:
    """A stable shard for a repository: the same on every replica and after every restart."""
    return int.from_bytes(hashlib.sha256(repo.encode()).digest()[:8], "big") % count


class Reconciler:
    def __init__(
        self,
        github: GitHubApp,
        *,
        freight: FreightSource | None = None,
        argocd: SyncPort | None = None,
        argocd_urls: Mapping[str, str] | None = None,
        shard: tuple[int, int] = (0, 1),
        emit: events.EventSink = events.discard,
        on_pass: Callable[[str, float, str], None] | None = None,
        on_action: Callable[[str], None] | None = None,
        on_budget: Callable[[str, int], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        full_read_every: timedelta = FULL_READ_EVERY,
        verifying_check_every: timedelta = VERIFYING_CHECK_EVERY,
        reuse: bool = True,
    ) -> None:
        """``on_budget(kind, requests)`` hears each pass's GitHub requests (kind: idle, verifying, acting);
        ``reuse`` off makes every pass read GitHub in full (to measure what the change check saves)."""
        self.github = github
        self.freight = freight
        self.argocd = argocd
        self.argocd_urls = dict(argocd_urls or {})
        self.shard = shard
        self.emit = emit
        self.on_pass = on_pass
        self.on_action: Callable[[str], None] | None = self._acted
        self._on_action = on_action
        self.clock = clock
        self.reads = SnapshotReuse(
            full_every=full_read_every, verifying_check_every=verifying_check_every, enabled=reuse
        )
        self.budget = Budget(on_budget)  # GitHub requests by kind of pass (``ferry sandbox --json``)
        self._full_due: set[str] = set()  # repos whose next pass reads GitHub in full
        self._reused: set[str] = set()  # repos whose current pass reused its last full read
        self.soaking = SoakWakes(lambda repo: self.trigger(repo, full=False))  # woken at the soak's end
        self.repos: dict[str, int] = {}  # full name -> installation id (rebuilt from GitHub at start-up)
        self.verifying: set[str] = set()  # repos with a stage whose health is pending: poll fast
        self.last_pass: dict[str, dict[str, Any]] = {}
        # The last snapshot of each repository (None: no .github/ferry.yml), for the status page only: a
        # cache of what GitHub and Argo CD said, rebuilt by the first pass after a restart.
        self.observed: dict[str, Snapshot | None] = {}
        self._repo_clients: dict[str, RepoGitHub] = {}
        self._dirty: set[str] = set()
        self._dirty_by: dict[str, str] = {}  # repo -> the webhook delivery that asked for its next pass
        self._running: dict[str, asyncio.Task[None]] = {}
        self._failures: dict[str, int] = {}
        self._retry_handles: dict[str, asyncio.TimerHandle] = {}
        self._seen_freight: dict[tuple[str, str], str] = {}  # only to narrate discoveries once
        self._stopped = False
        # What the last pass saw, for the merge fast path: the valid config and each stage's files.
        self._configs: dict[str, PipelineConfig] = {}
        self._stage_paths: dict[str, dict[str, tuple[str, ...]]] = {}
        self._watch_due: set[str] = set()  # repos whose next pass reads verified stages' apps again
        # (repo, branch) of promotions a person closed unmerged: a cache of what GitHub says, to skip a lookup
        self.declined: set[tuple[str, str]] = set()
        self.declined_lock = asyncio.Lock()
        # The freight ledger as last read, and what the repository looked like then (``ledger_fingerprint``):
        # read again only when that changed or a write touched it, so an idle pass costs no ledger request.
        # A cache of GitHub's Deployments; a restart reads it once more.
        self.ledgers: dict[str, tuple[tuple[object, ...], tuple[LedgerEntry, ...]]] = {}
        # More work of a pass after observe -> decide -> act, each failing on its own; ``change_steps`` only
        # in passes that read GitHub in full (what they read moves the change check's marks, or a webhook).
        self.steps: list[Callable[[str], Awaitable[object]]] = []
        self.change_steps: list[Callable[[str], Awaitable[object]]] = []
        # Delivery figures from each repository's ledger: read by a pass only after it wrote a verdict (or
        # on the first pass since start-up), never by an idle pass.
        self.delivery = DeliveryFigures(self._read_ledger, clock=clock)

    # ---- repositories ------------------------------------------------------------------------
    async def discover(self) -> None:
        for installation_id, _account in await self.github.installations():
            for repo in await self.github.repositories(installation_id):
                self.repos[repo] = installation_id

    async def add_installation(self, installation_id: int, *, reconcile: bool = True) -> list[str]:
        """Learn an installation's repositories from GitHub, the only source of the reconcile set (a
        webhook payload never adds one), and with ``reconcile`` reconcile each; returns them."""
        repos = await self.github.repositories(installation_id)
        for repo in repos:
            self.repos[repo] = installation_id
            if reconcile:
                self.trigger(repo)
        return repos

    def owns(self, repo: str) -> bool:
        index, count = self.shard
        return shard_of(repo, count) == index

    def repo_client(self, repo: str) -> RepoGitHub:
        if repo not in self._repo_clients:
            client = self.github.installation(self.repos[repo])
            self._repo_clients[repo] = RepoGitHub(client, repo, identity=self.github.identity)
        return self._repo_clients[repo]

    def has_pipeline(self, repo: str) -> bool | None:
        """Whether the last pass found `.github/ferry.yml` on ``repo``'s default branch (None: none yet)."""
        return self.observed.get(repo) is not None if repo in self.observed else None

    # ---- scheduling --------------------------------------------------------------------------
    def trigger(self, repo: str, *, full: bool = True) -> None:
        """Ask for a pass; coalesces with a pass already queued for the repository. Whatever asks (a
        webhook, a command, the timer, a retry), a repository another shard owns is left to its owner.
        ``full``: the pass reads GitHub in full; without it (the timer) it checks for changes first."""
        if repo not in self.repos or self._stopped or not self.owns(repo):
            return
        if full:
            self._full_due.add(repo)
        self._dirty.add(repo)
        if events.current_delivery():  # a timer tick does not erase the webhook a queued pass is for
            self._dirty_by[repo] = events.current_delivery()
        if repo not in self._running:
            self._running[repo] = asyncio.get_running_loop().create_task(self._drain(repo))

    async def _drain(self, repo: str) -> None:
        try:
            while repo in self._dirty:
                self._dirty.discard(repo)
                events.DELIVERY.set(self._dirty_by.pop(repo, ""))  # this task's context only
                await self._guarded_pass(repo)
        finally:
            self._running.pop(repo, None)

    async def idle(self, within: float = IDLE_WITHIN) -> None:
        """Wait until no pass is running or queued (tests and the sandbox use it), at most ``within``
        seconds; then ``TimeoutError`` naming the repositories whose passes still run."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self._running:
            left = deadline - loop.time()
            if left <= 0:
                busy = ", ".join(sorted(self._running))
                raise TimeoutError(f"reconciler: passes still running after {within:g}s for {busy}")
            await asyncio.wait(list(self._running.values()), timeout=left)  # never cancels a pass

    async def abandon(self) -> None:
        """Drop every pass in flight and accept no more, as a crash would (restart tests need a real kill)."""
        self._stopped = True
        self.soaking.cancel()
        for handle in self._retry_handles.values():
            handle.cancel()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded_pass(self, repo: str) -> PassCount:
        if repo in self._retry_handles:
            return PassCount()  # backing off: the scheduled retry runs the pass, and sees what this saw
        if not self.owns(repo):
            return PassCount()
        started = time.perf_counter()
        outcomes: list[str] = []
        asked: list[float] = []
        self._reused.discard(repo)
        with counting() as count:
            for step in (self.reconcile, *self.steps, *self.change_steps):  # each fails on its own
                if step in self.change_steps and repo in self._reused:
                    continue  # nothing changed on GitHub since the last full read: nothing new to find
                step_outcome, wait = await self._guarded_step(repo, step)
                outcomes.append(step_outcome)
                asked += [wait] if wait is not None else []
            if count.writes:
                self._full_due.add(repo)  # Ferry's own writes do not move the change check's marks
        self.budget.record(count, verifying=repo in self.verifying)
        outcome = next((o for o in ("crashed", "retry", "failed") if o in outcomes), "ok")
        if outcome in ("crashed", "retry") or "retry" in outcomes:
            self._schedule_retry(repo, max(asked, default=None))
        elif outcome == "ok":
            self._failures.pop(repo, None)
        if self.on_pass is not None:
            self.on_pass(repo, time.perf_counter() - started, outcome)
        return count

    async def _guarded_step(
        self, repo: str, step: Callable[[str], Awaitable[object]]
    ) -> tuple[str, float | None]:
        """Run one step of a pass: ("ok" | "retry" | "failed" | "crashed", the wait a service asked for)."""
        try:
            await step(repo)
        except ExternalError as exc:
            log.warning("pass failed", extra={"repo": repo, "error": str(exc), "temporary": exc.temporary})
            return ("retry", exc.retry_after) if exc.temporary else ("failed", None)
        except FerryError as exc:
            log.warning("pass failed", extra={"repo": repo, "error": str(exc)})
            return "failed", None
        except Exception:
            log.exception("pass crashed", extra={"repo": repo})
            return "crashed", None
        return "ok", None

    def _schedule_retry(self, repo: str, retry_after: float | None) -> None:
        """Retry the pass after the policy's wait (``bot.core.backoff``); until then triggers wait for it."""
        failures = self._failures.get(repo, 0) + 1
        self._failures[repo] = failures
        delay = retry_delay(failures, asked=retry_after)
        old = self._retry_handles.pop(repo, None)
        if old is not None:
            old.cancel()
        self._retry_handles[repo] = asyncio.get_running_loop().call_later(delay, self._retry, repo)

    def _retry(self, repo: str) -> None:
        self._retry_handles.pop(repo, None)
        self.trigger(repo)

    async def run_pass(self, repo: str, *, full: bool = False) -> PassCount:
        """One whole pass of ``repo`` (reconcile and every step) once no pass runs, in the queue's place of
        a pass (triggers meanwhile queue behind it); its GitHub requests. ``full``: read GitHub in full."""
        await self.idle()
        if full:
            self._full_due.add(repo)
        task = asyncio.current_task()
        assert task is not None
        self._running[repo] = cast("asyncio.Task[None]", task)
        try:
            return await self._guarded_pass(repo)
        finally:
            self._running.pop(repo, None)
            if repo in self._dirty:  # asked for during this pass: drained as after any pass
                self._running[repo] = asyncio.get_running_loop().create_task(self._drain(repo))

    async def run_timer(self, fast: float, idle: float) -> None:
        """Reconcile each verifying repository every ``fast`` seconds, and every owned one every ``idle``."""
        since_idle = 0.0
        while True:
            await asyncio.sleep(fast)
            since_idle += fast
            idle_due = since_idle >= idle
            if idle_due:
                since_idle = 0.0
            for repo in self.due_repositories(idle_due):
                if idle_due:
                    self._watch_due.add(repo)  # verified stages' apps are read again at this interval
                self.trigger(repo, full=False)

    def due_repositories(self, idle_due: bool) -> list[str]:
        """The owned repositories a timer tick should reconcile (a soaking one waits for its soak's end)."""
        fast = self.verifying - self.soaking.repos()
        return [r for r in self.repos if self.owns(r) and (idle_due or r in fast)]

    async def promotion_merged(
        self, repo: str, stage: str, merge_commit: str, *, pull_number: int | None = None
    ) -> None:
        """Fast path: a promotion PR just merged, so ask Argo CD now rather than after a full pass.

        A trigger of the same guarded decision a pass makes, not a second writer: the merge commit is
        deployed only while it is still the stage's newest deploy commit (the default branch's head read
        now, compared over the stage's files) and no ``ferry/health/<stage>`` status is on it yet, so a
        late, redelivered or second replica's event of an older merge writes nothing. Each app is asked
        ``auto`` (the adapter reads it and applies the pass's rule). A pass follows either way. Only the
        repository's owner acts.
        """
        if not self.owns(repo):
            return
        config = None if self._stopped else self._configs.get(repo)
        stage_config = config.stages.get(stage) if config is not None else None
        if stage_config is not None and stage_config.argocd is not None and self.argocd is not None:
            sync, pending = start_verification(stage, stage_config, merge_commit, self.argocd_urls)
            try:
                # A stage with promoters: only a merge a promoter approved (the pass says why not).
                approved = await merge_may_deploy(self.repo_client(repo), stage, stage_config, pull_number)
                current = (await self.repo_client(repo).statuses(merge_commit)).get(pending.context)
                if current is None and approved:  # verification of this merge has not begun
                    actor = Actor(
                        self,
                        repo,
                        None,
                        seen={(merge_commit, pending.context): None},
                        stage_paths=self._stage_paths.get(repo, {}),
                    )
                    await actor.run([pending] if sync is None else [pending, sync])  # status first
            except ExternalError as exc:
                log.warning("fast sync failed", extra={"repo": repo, "stage": stage, "error": str(exc)})
        self.trigger(repo)

    # ---- one pass ----------------------------------------------------------------------------
    async def snapshot(self, repo: str, *, watch: bool = False, full: bool = True) -> Snapshot | None:
        """The repository's snapshot; ``full`` reads GitHub in full, else only when something changed."""
        observed = await self.reads.observe(
            self.repo_client(repo),
            now=self.clock(),
            freight=self.freight,
            apps=self.argocd,
            argocd_urls=self.argocd_urls,
            watch=watch,
            full=full,
            verifying=repo in self.verifying and repo not in self.soaking,
        )
        if observed.reused:
            self._reused.add(repo)
        else:
            self._reused.discard(repo)
        self.observed[repo] = observed.snapshot
        return observed.snapshot

    async def snapshot_with_ledger(self, repo: str) -> Snapshot | None:
        """A fresh snapshot with the freight ledger (comment commands decide on history too)."""
        snapshot = await self.snapshot(repo)
        return await self.with_ledger(snapshot) if snapshot is not None else None

    async def plan(self, repo: str) -> list[Action]:
        snapshot = await self.snapshot(repo)
        if snapshot is None:
            return []
        return decide(await self.with_ledger(snapshot))

    async def with_ledger(self, snapshot: Snapshot) -> Snapshot:
        """The snapshot with the freight ledger: the one read before while the repository looks the same
        (no stage's deploy commit or verdict moved, no ledger write since), else read from GitHub now.
        When GitHub cannot answer, the last one read (or None: decisions needing history wait)."""
        if snapshot.config is None or snapshot.config_problems:
            return snapshot
        repo = snapshot.repo
        fingerprint = ledger_fingerprint(snapshot)
        known = self.ledgers.get(repo)
        if known is not None and known[0] == fingerprint:
            return replace(snapshot, ledger=known[1])
        try:
            entries = tuple(await self.repo_client(repo).read_ledger())
        except ExternalError as exc:
            log.warning("ledger not read", extra={"repo": repo, "error": str(exc)})
            if known is not None:
                return replace(snapshot, ledger=known[1])
            return replace(snapshot, ledger_unknown=True)
        self.ledgers[repo] = (fingerprint, entries)
        self.observed[repo] = snapshot = replace(snapshot, ledger=entries)
        return snapshot

    def ledger_changed(self, repo: str) -> None:
        """A pass wrote to the ledger (or failed to): the next one reads it again."""
        self.ledgers.pop(repo, None)

    async def reconcile(self, repo: str) -> list[Action]:
        watch = repo in self._watch_due
        self._watch_due.discard(repo)
        full = repo in self._full_due
        self._full_due.discard(repo)
        try:
            snapshot = await self.snapshot(repo, watch=watch, full=full)
        except BaseException:
            if full:
                self._full_due.add(repo)  # the retry reads in full what this pass could not
            raise
        if snapshot is None:
            return []
        self._note_snapshot(snapshot)
        if snapshot.config is not None and not snapshot.config_problems:
            self._configs[repo] = snapshot.config
            found = update_target_paths(snapshot.config, snapshot.paths.__contains__)
            self._stage_paths[repo] = {stage: tuple(paths) for stage, paths in found.items()}
        snapshot = await self.with_ledger(snapshot)
        actions = decide(snapshot)
        with counting() as count:
            await Actor(self, repo, snapshot).run(actions)
            if count.writes:
                self._full_due.add(repo)  # see _guarded_pass: the next pass reads what this one wrote
        await self._delivery_figures(snapshot, actions)
        if not self._stopped:
            self.soaking.schedule(snapshot)  # while its stages only soak, woken at the end, not polled
        self.last_pass[repo] = {
            "at": self.clock().isoformat(),
            "actions": len(actions),
            "head": snapshot.head_sha,
        }
        return actions

    async def _read_ledger(self, repo: str) -> list[LedgerEntry]:
        return await self.repo_client(repo).read_ledger()

    async def _delivery_figures(self, snapshot: Snapshot, actions: list[Action]) -> None:
        """Read the ledger again when this pass wrote a verdict (a health status's success or failure)."""
        config = snapshot.config
        if config is None or snapshot.config_problems:
            return
        if any(
            isinstance(a, SetStatus) and a.context.startswith(HEALTH_PREFIX) and a.state in VERDICT_STATES
            for a in actions
        ):
            self.delivery.invalidate(snapshot.repo)
        await self.delivery.refresh(snapshot.repo, stage_order(config), only_if_invalid=True)

    def _note_snapshot(self, snapshot: Snapshot) -> None:
        for name, freight in snapshot.warehouse_freight.items():
            key = (snapshot.repo, name)
            if self._seen_freight.get(key) != freight.id:
                self._seen_freight[key] = freight.id
                self.emit(
                    events.Event(
                        events.FREIGHT_DISCOVERED,
                        snapshot.repo,
                        "",
                        f"{name}: {freight.label} ({freight.id})",
                        freight=freight.id,
                    )
                )
        pending = any(
            s.state == "pending"
            for d in snapshot.deploys.values()
            for c, s in d.statuses.items()
            if c.startswith(HEALTH_PREFIX)
        )
        if pending:
            self.verifying.add(snapshot.repo)
        else:
            self.verifying.discard(snapshot.repo)

    def _acted(self, kind: str) -> None:
        note_action()
        if self._on_action is not None:
            self._on_action(kind)
