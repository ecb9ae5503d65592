"""Perform one ``RequestSync`` on Argo CD: for each app a refresh or a sync of its own targetRevision.

An ``auto`` ask (the merge fast path, which has not read the app) reads the app first and applies the same
rule a pass applies (``bot.core.argo_app.ask_for``), so both paths ask Argo CD the same thing.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Literal, Protocol

from bot.argocd_answers import MSG_MISSING, MSG_NOTHING, SyncResult
from bot.core.actions import RequestSync
from bot.core.argo_app import INFO_KEY, AppAsk, AppState, ask_for


class DeployPort(Protocol):
    """What performing an ask needs of the Argo CD adapter (``bot.argocd.ArgoCDClient``)."""

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

    async def refresh(
        self,
        server: str,
        app: str,
        *,
        hard: bool = False,
        app_namespace: str | None = None,
        project: str | None = None,
    ) -> SyncResult: ...

    async def sync(
        self,
        server: str,
        app: str,
        *,
        prune: bool = False,
        app_namespace: str | None = None,
        project: str | None = None,
        infos: Mapping[str, str] = ...,
        still_wanted: Callable[[], Awaitable[bool]] | None = None,
    ) -> SyncResult: ...


async def perform(
    argocd: DeployPort,
    action: RequestSync,
    ask: AppAsk,
    *,
    repo: str | None,
    now: datetime,
    still_wanted: Callable[[], Awaitable[bool]] | None = None,
) -> SyncResult:
    """Ask Argo CD for ``ask`` on behalf of ``action``; never a revision override. A sync Argo CD answers
    with a temporary failure is sent again only while ``still_wanted()`` (asked after each backoff) holds."""
    namespace, project = action.app_namespace, action.project
    if ask.mode == "auto":
        state = await argocd.get_app(
            action.server, ask.app, repo=repo, app_namespace=namespace, project=project
        )
        if not state.exists:
            return SyncResult("missing", MSG_MISSING.format(app=ask.app, server=action.server), "none")
        chosen = ask_for(
            state,
            action.revision,
            {},
            default_branch=action.default_branch,
            promotion_id=action.promotion_id,
            now=now,
            started=False,
        )
        if chosen is None or chosen.mode == "auto":
            why = "it is syncing" if state.operating else "it does not follow the default branch, or is gone"
            return SyncResult("nothing", MSG_NOTHING.format(app=ask.app, why=why), "none")
        ask = chosen
    if ask.mode == "refresh":
        return await argocd.refresh(
            action.server, ask.app, hard=ask.hard, app_namespace=namespace, project=project
        )
    return await argocd.sync(
        action.server,
        ask.app,
        prune=action.prune,
        app_namespace=namespace,
        project=project,
        infos={INFO_KEY: action.promotion_id},
        still_wanted=still_wanted,
    )
