"""The Argo CD stand-in's application controller: comparisons, sync operations and automated sync.

One ``reconcile`` pass does what controller/appcontroller.go does for an app, at the injected clock's
time, lazily (on each API request and each ``tick``):

- run the requested operation: resolve its revisions, render them, apply (controller/sync.go
  ``SyncAppState``), finish after ``progress_seconds``; a sync window that blocks keeps it Running with
  "Sync operation blocked by sync window"; a revision that does not render ends it in phase Error;
- after an operation completes, compare again at once (``processRequestedAppOperation`` requests a
  refresh), so ``reconciledAt`` is at or after ``finishedAt``;
- compare fully (``CompareWithLatest``) when a refresh was requested or ``reconciledAt`` is older than the
  poll period (``needRefreshAppStatus``, ``timeout.reconciliation``): ``status.sync.revision(s)`` is what
  ``targetRevision`` resolves to *now* (controller/state.go ``CompareAppState``), not the last synced
  commit; failures become a ``ComparisonError`` condition and sync status Unknown;
- auto-sync (``autoSync``): an OutOfSync app with ``syncPolicy.automated`` syncs the compared revisions,
  initiated by ``{automated: true}`` with no infos, unless an operation is set, the app is being deleted,
  a sync window blocks (``CanSync(false)``), only pruning is needed without ``prune``, or the same
  revisions were already attempted: a failed attempt is not retried (SyncError condition "Failed last
  sync attempt to [...]: ..."), a successful one is re-synced only with ``selfHeal`` and only after the
  self-heal timeout, and then only the resources that drifted.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.sandbox.argocd_apps import ChartRepository, Project
from bot.sandbox.argocd_git import GitReader
from bot.sandbox.argocd_health import Rollouts, app_health
from bot.sandbox.argocd_render import (
    Manifest,
    images_of,
)
from bot.sandbox.argocd_reposerver import RepoServer
from bot.sandbox.argocd_state import (
    ERROR,
    FAILED,
    MSG_RUNNING,
    MSG_SYNCED,
    OUT_OF_SYNC,
    SUCCEEDED,
    SYNCED,
    AppRecord,
    Comparison,
    Condition,
    HistoryEntry,
    Key,
    LiveObject,
    Operation,
    key_of,
    resource_states,
    sync_status,
)
from bot.sandbox.argocd_windows import SyncWindow, can_sync

IN_CLUSTER = "https://kubernetes.default.svc"
HISTORY_LIMIT = 10  # spec.revisionHistoryLimit's default
MSG_BLOCKED = "Sync operation blocked by sync window"
MSG_FAILED_ATTEMPT = "Failed last sync attempt to [{revisions}]: {message}"
MSG_REPO_DENIED = "application repo {url} is not permitted in project '{project}'"


@dataclass(frozen=True)
class OperationRecord:
    """One operation as it was requested, for tests: by whom (None: automated sync), to what."""

    app: str
    revisions: tuple[str, ...]
    username: str | None
    infos: Mapping[str, str]
    at: float


@dataclass(frozen=True)
class Settings:
    poll_seconds: float
    progress_seconds: float
    self_heal_timeout_seconds: float
    rollouts: Rollouts
    post_operation_refresh_seconds: float = 0.0


class Controller:
    def __init__(
        self,
        git: GitReader,
        *,
        repo_url: str,
        charts: Mapping[str, ChartRepository],
        projects: Mapping[str, Project],
        clock: Callable[[], float],
        settings: Settings,
    ) -> None:
        self.repo = RepoServer(git, repo_url=repo_url, charts=charts)
        self.repo_url = repo_url
        self.projects = projects
        self.clock = clock
        self.settings = settings
        self.version = 0
        self.log: list[OperationRecord] = []

    # --- the reconcile pass -------------------------------------------------------------------------

    async def reconcile(self, app: AppRecord, *, refresh: str | None = None) -> None:
        now = self.clock()
        for _ in range(3):  # an operation the pass starts (auto-sync) is picked up in the same pass
            operation = app.operation
            if operation is not None and not operation.finished:
                finished_at = await self._progress(app, operation, now)
                if finished_at is not None:  # processRequestedAppOperation requests a refresh
                    app.refresh_at = finished_at + self.settings.post_operation_refresh_seconds
            if app.refresh_at is not None and now >= app.refresh_at and not refresh:
                await self.compare(app, app.refresh_at, hard=False)
            if refresh or self._expired(app, now):
                await self.compare(app, now, hard=refresh == "hard")
                refresh = None
            if not self._auto_sync(app, now):
                break
        self.observe_health(app, now)

    def _expired(self, app: AppRecord, now: float) -> bool:
        return app.reconciled_at is None or now >= app.reconciled_at + self.settings.poll_seconds

    def windows(self, app: AppRecord) -> list[SyncWindow]:
        project = self.projects.get(app.spec.project)
        windows = project.windows if project else []
        return [w for w in windows if w.matches(app.name, app.namespace, IN_CLUSTER)]

    def observe_health(self, app: AppRecord, now: float) -> None:
        health, _ = app_health(app, now, self.settings.rollouts)
        if health.status != app.health[0]:
            app.health = (health.status, health.since or now)

    # --- comparison ---------------------------------------------------------------------------------

    async def compare(self, app: AppRecord, at: float, *, hard: bool) -> None:
        """``CompareWithLatest``: resolve every source's targetRevision now and render it."""
        if hard:
            self.repo.drop_cache()
        self.version += 1
        app.refresh_at = None
        project = self.projects.get(app.spec.project) or Project(app.spec.project)
        denied = next((s for s in app.spec.sources if not project.permits(s.repo_url or self.repo_url)), None)
        if denied is not None:
            url = denied.repo_url or self.repo_url
            message = MSG_REPO_DENIED.format(url=url, project=project.name)
            app.spec_error = Condition("InvalidSpecError", message, at)
            return  # refreshAppConditions: status Unknown, reconciledAt not moved
        app.spec_error = None
        wanted = ["" for _ in app.spec.sources]
        revisions, desired, error = await self.repo.generate(
            app.name, app.namespace, app.spec.sources, wanted
        )
        sources = app.spec.sources
        types = [await self.repo.source_type(s, r) for s, r in zip(sources, revisions, strict=True)]
        app.comparison = Comparison(at, revisions, app.spec.sources, desired, error, tuple(types))
        app.reconciled_at = at

    # --- operations ---------------------------------------------------------------------------------

    async def deploy_initial(self, app: AppRecord, username: str) -> None:
        """The state of an app synced long ago: its target revision applied, rolled out, compared now."""
        now = self.clock()
        await self.compare(app, now, hard=False)
        comparison = app.comparison
        if comparison is None or comparison.desired is None:
            return
        long_ago = now - self.settings.rollouts.deadline_seconds - self.settings.progress_seconds
        operation = Operation(
            list(comparison.revisions), app.spec.sources, {},
            None if app.spec.automated else username, long_ago, picked_up=True, started_at=long_ago,
        )  # fmt: skip
        operation.resolved = list(comparison.revisions)
        operation.desired = comparison.desired
        operation.results = self._apply(app, operation, comparison.desired, long_ago)
        app.operation = operation
        self._finish(app, operation, long_ago + self.settings.progress_seconds)
        self.observe_health(app, now)

    def request(self, app: AppRecord, operation: Operation) -> None:
        """``argo.SetAppOperation``: the caller has checked that no operation is set."""
        app.operation = operation
        self.version += 1
        record = OperationRecord(
            app.name, tuple(operation.revisions), operation.username, dict(operation.infos),
            operation.requested_at,
        )  # fmt: skip
        self.log.append(record)

    async def _progress(self, app: AppRecord, operation: Operation, now: float) -> float | None:
        """Advance a requested or running operation; returns its finish time when it finishes now."""
        if not operation.picked_up:  # the operation queue takes it at once: as of its request
            operation.picked_up = True
            operation.started_at = operation.requested_at
            self.version += 1
        blocked = not can_sync(self.windows(app), now, manual=not operation.automated)
        if operation.desired is None:
            if blocked:
                operation.message = MSG_BLOCKED
                return None
            was_blocked = operation.message == MSG_BLOCKED
            await self._start(app, operation, now if was_blocked else operation.started_at)
            if operation.finished:
                return operation.finished_at
        if now < operation.finish_at:
            return None
        if blocked:
            operation.message = MSG_BLOCKED
            return None
        return self._finish(app, operation, now if operation.message == MSG_BLOCKED else operation.finish_at)

    async def _start(self, app: AppRecord, operation: Operation, now: float) -> None:
        resolved, desired, error = await self.repo.generate(
            app.name, app.namespace, operation.sources, operation.revisions
        )
        operation.resolved = resolved
        failure = operation.fail_with or app.fail_next_operation
        if error is not None or failure is not None:
            app.fail_next_operation = None
            operation.phase = ERROR if error is not None else FAILED
            operation.message = f"ComparisonError: {error}" if error is not None else str(failure)
            operation.finished_at = now
            operation.desired = []
            self.version += 1
            return
        operation.desired = desired or []
        operation.message = MSG_RUNNING
        operation.finish_at = now + self.settings.progress_seconds
        if not operation.dry_run:
            operation.results = self._apply(app, operation, operation.desired, now)
        self.version += 1

    def _apply(self, app: AppRecord, operation: Operation, desired: list[Manifest], now: float) -> list[Any]:
        wanted = set(operation.resources) if operation.resources is not None else None
        results = []
        desired_keys = set()
        for manifest in desired:
            key = key_of(manifest)
            desired_keys.add(key)
            if wanted is not None and key not in wanted:
                continue
            old = app.live.get(key)
            verb = "created" if old is None else "unchanged"
            live = LiveObject(copy.deepcopy(manifest), now)
            if old is not None:
                changed = _template(old.manifest) != _template(manifest)
                verb = "configured" if old.manifest != manifest else "unchanged"
                if not changed:
                    live.rollout_started, live.previous_images = old.rollout_started, old.previous_images
                else:
                    live.previous_images = tuple(images_of(old.manifest))
            app.live[key] = live
            results.append(_result(key, manifest, "Synced", f"{_resource_name(key)} {verb}"))
        for key in [k for k in app.live if k not in desired_keys]:
            if wanted is not None and key not in wanted:
                continue
            manifest = app.live[key].manifest
            if operation.prune:
                del app.live[key]
                results.append(_result(key, manifest, "Pruned", "pruned"))
            else:
                results.append(_result(key, manifest, "PruneSkipped", "ignored (requires pruning)"))
        return results

    def _finish(self, app: AppRecord, operation: Operation, at: float) -> float:
        operation.phase = SUCCEEDED
        operation.message = MSG_SYNCED
        operation.finished_at = at
        if not operation.dry_run:
            number = app.history[-1].id + 1 if app.history else 0
            entry = HistoryEntry(
                number, list(operation.resolved or []), operation.sources, operation.started_at, at,
                operation.username,
            )  # fmt: skip
            app.history = [*app.history, entry][-HISTORY_LIMIT:]
        self.version += 1
        return at

    def _auto_sync(self, app: AppRecord, now: float) -> bool:
        """``autoSync``: start an automated sync when due; True when it started one."""
        spec = app.spec
        comparison = app.comparison
        if not spec.automated or app.running or app.deleting_at is not None or comparison is None:
            return False
        if app.spec_error is not None:
            return False
        states = resource_states(app)
        if sync_status(app, states) != OUT_OF_SYNC:
            app.sync_error = None
            return False
        if not can_sync(self.windows(app), now, manual=False):
            return False
        if not spec.prune and all(s.requires_pruning for s in states if s.status != SYNCED):
            return False
        desired = list(comparison.revisions)
        last = app.operation
        partial: tuple[Key, ...] | None = None
        attempts = 0
        if last is not None and last.finished and _already_attempted(app, last, desired):
            if last.phase != SUCCEEDED:
                tried = " ".join(last.resolved or []) if last.resolved is not None else ""
                message = MSG_FAILED_ATTEMPT.format(revisions=tried, message=last.message)
                if app.sync_error is None or app.sync_error.message != message:
                    app.sync_error = Condition("SyncError", message, now)
                return False
            healed_at = (last.finished_at or now) + self.settings.self_heal_timeout_seconds
            if not spec.self_heal or now < healed_at:
                return False
            partial = tuple(s.key for s in states if s.status != SYNCED)
            attempts = last.self_heal_attempts + 1
        app.sync_error = None
        operation = Operation(
            revisions=desired, sources=spec.sources, infos={}, username=None, requested_at=now,
            prune=spec.prune, resources=partial, self_heal_attempts=attempts,
        )  # fmt: skip
        self.request(app, operation)
        return True


def _already_attempted(app: AppRecord, last: Operation, desired: list[str]) -> bool:
    """``alreadyAttemptedSync``: the last operation synced these revisions of these sources."""
    if last.resolved is None:
        return last.finished  # completed without a sync result
    return last.resolved == desired and last.sources == app.spec.sources


def _template(manifest: Manifest) -> Any:
    return (manifest.get("spec") or {}).get("template")


def _resource_name(key: Key) -> str:
    group, kind, _, name = key
    return f"{kind.lower()}{'.' + group if group else ''}/{name}"


def _result(key: Key, manifest: Manifest, status: str, message: str) -> dict[str, Any]:
    group, kind, namespace, name = key
    result: dict[str, Any] = {
        "group": group, "version": str(manifest.get("apiVersion", "")).rpartition("/")[2], "kind": kind,
        "namespace": namespace, "name": name, "status": status, "message": message,
        "syncPhase": "Sync", "hookPhase": "Running",
    }  # fmt: skip
    if images_of(manifest):
        result["images"] = images_of(manifest)
    return result
