"""The loop: observe -> decide -> act, one pass at a time per repository.

Triggers (webhooks, the timer, retries) arriving during a pass coalesce into one more pass. Failures
are classified once, here: temporary ones schedule a retry with backoff honouring the delay GitHub
or Argo CD asked for; permanent ones are logged and the pass moves on. Nothing here is needed
after a restart: every pass re-reads the truth from GitHub and Argo CD.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from bot import events
from bot.argocd_deploy import DeployPort, perform
from bot.core.actions import (
    Action,
    ClosePromotion,
    LabelPromotion,
    MergePromotion,
    OpenPromotion,
    PostComment,
    RequestSync,
    SetStatus,
)
from bot.core.backoff import retry_delay
from bot.core.config import PipelineConfig
from bot.core.decide import decide
from bot.core.gates import HEALTH_PREFIX, STATUS_CONFIG, STATUS_GATE
from bot.core.promotion import declined_comment, declined_marker
from bot.core.snapshot import Snapshot
from bot.core.verification import refused_status, start_verification
from bot.errors import ExternalError, FerryError
from bot.event_log import freight_at
from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.observe import FreightSource, observe
from bot.observe_apps import AppReader

log = logging.getLogger("ferry.reconciler")


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
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.github = github
        self.freight = freight
        self.argocd = argocd
        self.argocd_urls = dict(argocd_urls or {})
        self.shard = shard
        self.emit = emit
        self.on_pass = on_pass
        self.on_action = on_action
        self.clock = clock
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
        # What the last pass saw, for the merge fast path: the valid config, and the merge commits of
        # recent promotions (a merge among them is old news).
        self._configs: dict[str, PipelineConfig] = {}
        self._merged_seen: dict[str, frozenset[str]] = {}
        # (repo, branch) of promotions a person closed unmerged: a cache of what GitHub says, to skip a lookup
        self.declined: set[tuple[str, str]] = set()
        self.declined_lock = asyncio.Lock()
        # More work of a pass after observe -> decide -> act, each failing on its own (the command sweep).
        self.steps: list[Callable[[str], Awaitable[object]]] = []

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
    def trigger(self, repo: str) -> None:
        """Ask for a pass; coalesces with a pass already queued for the repository. Whatever asks (a
        webhook, a command, the timer, a retry), a repository another shard owns is left to its owner."""
        if repo not in self.repos or self._stopped or not self.owns(repo):
            return
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

    async def idle(self) -> None:
        """Wait until no pass is running or queued (tests and the sandbox use it)."""
        while self._running:
            await asyncio.gather(*list(self._running.values()), return_exceptions=True)

    async def abandon(self) -> None:
        """Drop every pass in flight and accept no more, as a crash would (restart tests need a real kill)."""
        self._stopped = True
        for handle in self._retry_handles.values():
            handle.cancel()
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _guarded_pass(self, repo: str) -> None:
        if repo in self._retry_handles:
            return  # backing off: the scheduled retry runs the pass, and sees whatever this trigger saw
        if not self.owns(repo):
            return
        started = time.perf_counter()
        outcomes: list[str] = []
        asked: list[float] = []
        for step in (self.reconcile, *self.steps):  # one failing step does not hold the others back
            step_outcome, wait = await self._guarded_step(repo, step)
            outcomes.append(step_outcome)
            asked += [wait] if wait is not None else []
        outcome = next((o for o in ("crashed", "retry", "failed") if o in outcomes), "ok")
        if outcome in ("crashed", "retry") or "retry" in outcomes:
            self._schedule_retry(repo, max(asked, default=None))
        elif outcome == "ok":
            self._failures.pop(repo, None)
        if self.on_pass is not None:
            self.on_pass(repo, time.perf_counter() - started, outcome)

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
                self.trigger(repo)

    def due_repositories(self, idle_due: bool) -> list[str]:
        """The owned repositories a timer tick should reconcile."""
        return [r for r in self.repos if self.owns(r) and (idle_due or r in self.verifying)]

    async def promotion_merged(self, repo: str, stage: str, merge_commit: str) -> None:
        """Fast path: a promotion PR just merged, so ask Argo CD now rather than after a full pass.

        The same request a pass would make (``auto``: the adapter reads each app and applies the same rule,
        a refresh or a sync of the app's own targetRevision, never a revision, so even a late event cannot
        move an app backwards; same promotion id, so Argo CD adopts a repeat), then a pass to confirm;
        without a known config this is only the pass. Only the repository's owner acts.
        """
        if not self.owns(repo):
            return
        config = None if self._stopped else self._configs.get(repo)
        stage_config = config.stages.get(stage) if config is not None else None
        if stage_config is not None and stage_config.argocd is not None and self.argocd is not None:
            sync, pending = start_verification(stage, stage_config, merge_commit, self.argocd_urls)
            try:
                if await self._merge_already_handled(repo, merge_commit, pending.context):
                    self.trigger(repo)  # a redelivered event: the pass decides from what is true now
                    return
                await Actor(self, repo, None).run([pending] if sync is None else [sync, pending])
            except ExternalError as exc:
                log.warning("fast sync failed", extra={"repo": repo, "stage": stage, "error": str(exc)})
        self.trigger(repo)

    async def _merge_already_handled(self, repo: str, merge_commit: str, health: str) -> bool:
        """Whether a merge event is old news (redelivered, or seen by another replica first).

        Syncing an old merge could move a stage back to an older commit. The last pass listed the
        recent merged promotions, so a merge commit among them is old; only a process that has not
        passed over the repository yet (just restarted) asks GitHub whether verification began.
        """
        seen = self._merged_seen.get(repo)
        if seen is not None:
            return merge_commit in seen
        return health in await self.repo_client(repo).statuses(merge_commit)

    # ---- one pass ----------------------------------------------------------------------------
    async def snapshot(self, repo: str) -> Snapshot | None:
        snapshot = await observe(
            self.repo_client(repo),
            now=self.clock(),
            freight=self.freight,
            apps=self.argocd,
            argocd_urls=self.argocd_urls,
        )
        self.observed[repo] = snapshot
        return snapshot

    async def plan(self, repo: str) -> list[Action]:
        snapshot = await self.snapshot(repo)
        return decide(snapshot) if snapshot is not None else []

    async def reconcile(self, repo: str) -> list[Action]:
        snapshot = await self.snapshot(repo)
        if snapshot is None:
            return []
        self._note_snapshot(snapshot)
        if snapshot.config is not None and not snapshot.config_problems:
            self._configs[repo] = snapshot.config
            self._merged_seen[repo] = snapshot.merged_commits
        actions = decide(snapshot)
        await Actor(self, repo, snapshot).run(actions)
        self.last_pass[repo] = {
            "at": self.clock().isoformat(),
            "actions": len(actions),
            "head": snapshot.head_sha,
        }
        return actions

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


class Actor:
    """Performs one pass's actions in order through a table of handlers, one per action type."""

    def __init__(self, reconciler: Reconciler, repo: str, snapshot: Snapshot | None) -> None:
        self.r = reconciler
        self.repo = repo
        self.snapshot = snapshot
        self.gh = reconciler.repo_client(repo)
        self.opened: dict[str, str] = {}  # branch -> PR url, for "superseded by" links
        self.handlers: dict[type, Callable[[Any], Awaitable[None]]] = {
            SetStatus: self.set_status,
            OpenPromotion: self.open_promotion,
            ClosePromotion: self.close_promotion,
            MergePromotion: self.merge,
            LabelPromotion: self.label,
            PostComment: self.comment,
            RequestSync: self.request_sync,
        }

    async def run(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                await self.handlers[type(action)](action)
            except ExternalError as exc:
                if exc.temporary:
                    raise  # the pass is retried as a whole; every action is idempotent
                log.warning(
                    "action refused",
                    extra={"repo": self.repo, "action": action.describe(), "error": str(exc)},
                )
                continue
            if self.r.on_action is not None:
                self.r.on_action(action.kind)

    def _emit(self, kind: str, stage: str, detail: str, freight: str = "") -> None:
        self.r.emit(events.Event(kind, self.repo, stage, detail, freight=freight))

    async def set_status(self, action: SetStatus) -> None:
        await self.gh.set_status(action)
        freight = freight_at(self.snapshot, sha=action.sha)
        if action.context.startswith(HEALTH_PREFIX):
            stage = action.context.removeprefix(HEALTH_PREFIX)
            if action.state != "pending":
                self._emit(events.HEALTH_VERDICT, stage, f"{action.state}: {action.description}", freight)
        elif action.context == STATUS_GATE:
            self._emit(
                events.GATE_SET,
                _stage_of_sha(self.snapshot, action.sha),
                f"{action.state}: {action.description}",
                freight,
            )
        elif action.context == STATUS_CONFIG:
            self._emit(events.CONFIG_STATUS, "", f"{action.state}: {action.description}")

    async def open_promotion(self, action: OpenPromotion) -> None:
        # Look before creating: another replica (or a person) may have moved the default branch
        # since this pass observed it; then this pass's decision is stale and a new pass decides.
        assert self.snapshot is not None
        if await self.gh.head(self.snapshot.default_branch) != action.base_sha:
            log.info("base moved; deciding again", extra={"repo": self.repo, "branch": action.branch})
            self.r.trigger(self.repo)
            return
        if action.rebuild_pr is None and await self._declined(action):
            return
        number, url = await self.gh.open_promotion(action)
        self.opened[action.branch] = url
        kind = events.PR_REBUILT if action.rebuild_pr else events.PR_OPENED
        self._emit(kind, action.stage, f"#{number} {action.title}", action.freight.id)

    async def _declined(self, action: OpenPromotion) -> bool:
        """Whether a person closed this very promotion unmerged; then it is not opened again.

        Said once under the closed pull request (a marked comment, so a restart or a second replica says
        nothing new); remembered for this process only to spare GitHub the lookup on every pass.
        """
        key = (self.repo, action.branch)
        async with self.r.declined_lock:  # two passes of this process say it once, not twice
            if key in self.r.declined:
                return True
            found = await self.gh.refused_promotion(action.branch)
            if found is None:
                return False
            number, _ = found
            comment = declined_comment(action.stage, action.freight)
            posted = await self.gh.comment_once(number, comment, marker=declined_marker(action.branch))
            self.r.declined.add(key)
        if posted:
            detail = f"#{number} was closed unmerged; {action.freight.label} is not proposed again"
            self._emit(events.PROMOTION_DECLINED, action.stage, detail, action.freight.id)
        return True

    async def close_promotion(self, action: ClosePromotion) -> None:
        link = None
        if action.superseded_by_branch:
            link = self.opened.get(action.superseded_by_branch)
            if link is None:
                found = await self.gh.pull_for_branch(action.superseded_by_branch)
                link = found[1] if found else None
        await self.gh.close_promotion(action, link)
        freight = freight_at(self.snapshot, number=action.number)
        self._emit(events.PR_SUPERSEDED, action.stage, f"#{action.number} closed: {action.comment}", freight)

    async def merge(self, action: MergePromotion) -> None:
        sha = await self.gh.merge(action)
        freight = freight_at(self.snapshot, number=action.number)
        self._emit(events.PR_MERGED, action.stage, f"#{action.number} merged by Ferry as {sha[:7]}", freight)

    async def label(self, action: LabelPromotion) -> None:
        await self.gh.add_labels(action.number, action.labels)

    async def comment(self, action: PostComment) -> None:
        await self.gh.post_comment(action)
        self._emit(events.COMMENT_POSTED, "", action.describe())

    async def request_sync(self, action: RequestSync) -> None:
        if self.r.argocd is None:
            return
        for ask in action.asks:
            result = await perform(self.r.argocd, action, ask, repo=self.repo, now=self.r.clock())
            if result.mode != "none":
                detail = f"{ask.app}: {result.mode} for {action.revision[:7]} ({result.outcome})"
                freight = freight_at(self.snapshot, sha=action.revision)
                self._emit(events.SYNC_REQUESTED, action.stage, detail, freight)
            if result.refused:
                await self.set_status(refused_status(action, ask.app, result.message))


def _stage_of_sha(snapshot: Snapshot | None, sha: str) -> str:
    if snapshot is None:
        return ""
    return next((pr.stage for pr in snapshot.open_prs if pr.head_sha == sha), "")
