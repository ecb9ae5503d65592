"""Observe a stage's Argo CD applications while it verifies: each app's state, how the revisions Argo CD
reports stand to the deploy commit (GitHub's compare, cached by commit pair), and the sync window that
blocks an app waiting for a sync."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Literal, Protocol

from bot.core.argo_app import AppState, Relation, awaits_sync, same_revision
from bot.core.config import ArgoCDTarget
from bot.errors import ExternalError
from bot.github.history import RepoHistory

SHA_LENGTH = 40
# Health that a Deployment's own message explains poorly: its pods say why (read only while it lasts).
UNSETTLED_HEALTH = frozenset({"Progressing", "Degraded"})
HEX = frozenset("0123456789abcdef")


class AppReader(Protocol):
    """What observing needs of the Argo CD adapter (``bot.argocd.ArgoCDClient``)."""

    async def get_app(
        self,
        server: str,
        app: str,
        *,
        repo: str | None = None,
        app_namespace: str | None = None,
        project: str | None = None,
        refresh: bool | Literal["normal", "hard"] = False,
    ) -> AppState: ...

    async def pod_problems(
        self, server: str, app: str, *, app_namespace: str | None = None, project: str | None = None
    ) -> tuple[str, ...]: ...

    async def sync_window(
        self,
        server: str,
        app: str,
        *,
        automated: bool,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> str | None: ...


async def observe_apps(
    apps: AppReader,
    history: RepoHistory,
    *,
    repo: str,
    target: ArgoCDTarget,
    deploy_commit: str,
    paths: Sequence[str],
) -> tuple[tuple[AppState, ...], dict[str, Relation]]:
    """The stage's app states and the relation of each revision they report to ``deploy_commit``."""
    states = [await _app_state(apps, target, name, repo) for name in target.app_names]
    relation: dict[str, Relation] = {}
    for state in states:
        for revision in (state.sync_revision, state.operation_revision):
            if revision is None or revision in relation or same_revision(revision, deploy_commit):
                continue
            relation[revision] = await _relation(history, deploy_commit, revision, paths)
    explained = [await _explained(apps, target, state, deploy_commit, relation) for state in states]
    return tuple(explained), relation


async def _explained(
    apps: AppReader, target: ArgoCDTarget, state: AppState, deploy_commit: str, relation: dict[str, Relation]
) -> AppState:
    """The state with what its pods say while it is unsettled, and the sync window that may block it."""
    where = {"app_namespace": target.namespace, "project": target.project}
    if state.health_status in UNSETTLED_HEALTH:
        try:
            problems = await apps.pod_problems(target.server, state.name, **where)
        except ExternalError:
            problems = ()  # the verdict still names the unhealthy resources Argo CD reported
        state = replace(state, pod_problems=problems)
    if awaits_sync(state, deploy_commit, relation):
        try:
            blocked = await apps.sync_window(target.server, state.name, automated=state.automated, **where)
        except ExternalError:
            return state  # the verdict waits either way; windows only explain why
        state = replace(state, sync_blocked=blocked)
    return state


async def _relation(
    history: RepoHistory, deploy_commit: str, revision: str, paths: Sequence[str]
) -> Relation:
    if len(revision) != SHA_LENGTH or not set(revision.lower()) <= HEX:
        return "unknown"  # a tag or branch name Argo CD reports for a source it could not resolve
    try:
        return await history.relation(deploy_commit, revision, paths)
    except ExternalError:
        return "unknown"  # GitHub does not know the commit (a fork's, a deleted branch's) or is unreachable


async def _app_state(apps: AppReader, target: ArgoCDTarget, app: str, repo: str) -> AppState:
    try:
        return await apps.get_app(
            target.server, app, repo=repo, app_namespace=target.namespace, project=target.project
        )
    except ExternalError as exc:
        # Unreachable or refusing Argo CD: the verdict stays pending until the stage's timeout.
        return AppState.unobserved(app, str(exc))
