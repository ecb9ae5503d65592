"""``ferry doctor``'s check of one Argo CD application of a stage: that the configured token can read it,
and what Ferry will do with it after a merge, by the rules verification follows (``bot.core.argo_app``,
docs/argocd.md). Pure (``bot.doctor``).

- automated sync (``spec.syncPolicy.automated``): Ferry asks for a refresh and Argo CD's auto-sync deploys;
  the token needs ``get`` only;
- manual: Ferry syncs the app to its own ``targetRevision``; the token needs ``get`` and ``sync``;
- multi-source: the source from the GitOps repository is the one judged; every source syncs to its own
  ``targetRevision``;
- pinned (a ``targetRevision`` that is not the default branch), no source from the repository, or being
  deleted: a merge cannot deploy the stage, so every verdict fails (✘);
- a sync window that blocks syncs now, or a condition under which Argo CD cannot judge the app: the
  verdict waits (!).

Whether the token may ``sync`` is not asked: Argo CD's ``can-i`` takes the object ``<project>/<app>`` in one
path segment, which its REST gateway does not route; the check names the policy line instead, and a sync
that RBAC refuses fails the stage's status with the same line.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.argo_app import AppState, tracks_branch
from bot.doctor import Check, fail, ok, warn


@dataclass(frozen=True)
class ArgoAppFacts:
    """One application of a stage as the configured token reads it. ``state`` is None when it could not
    be read (``error``: unknown server, unreachable, token refused); ``state.exists`` is false when Argo CD
    does not show it to the token; ``state.sync_blocked`` names the window blocking syncs now.
    ``project`` is the stage's ``argocd.project`` (None: any)."""

    stage: str
    app: str
    server: str
    repo: str
    default_branch: str
    project: str | None = None
    state: AppState | None = None
    error: str | None = None


def policy(project: str | None, app: str, action: str) -> str:
    """The ``argocd-rbac-cm`` line that lets Ferry's role ``action`` the app (docs/argocd.md)."""
    return f"p, role:ferry, applications, {action}, {project or '*'}/{app}, allow"


def argocd_check(facts: ArgoAppFacts) -> Check:
    name = f"stage {facts.stage}: Argo CD app {facts.app}"
    app = facts.state
    if app is None:
        return fail(
            name,
            facts.error or "could not be read",
            f'check server "{facts.server}" in FERRY_ARGOCD_SERVERS (URL, token) and that Ferry can reach it',
        )
    if not app.exists:
        return fail(
            name,
            f'not found on server "{facts.server}", or the token may not get it',
            f"create the app, correct stages.{facts.stage}.argocd in the config, or let the token read it "
            f"(argocd-rbac-cm: {policy(facts.project, facts.app, 'get')})",
        )
    branch = facts.default_branch
    if app.deleting:
        return fail(
            name,
            "is being deleted in Argo CD: Ferry cannot verify an app that is going away",
            f"point stages.{facts.stage}.argocd at the app that replaces it",
        )
    if not app.source_found:
        return fail(
            name,
            f"deploys from no source in {facts.repo}: a merge there changes nothing it runs",
            f"set a source's repoURL to {facts.repo}, or correct stages.{facts.stage}.argocd",
        )
    if not tracks_branch(app.target_revision, branch):
        return fail(
            name,
            f"pinned to targetRevision {app.target_revision}, which a merge to {branch} cannot move: Ferry "
            "asks nothing and the stage's verdicts fail",
            f"set targetRevision to {branch} (or HEAD) in the Application",
        )
    mode = _what_ferry_does(facts, app)
    for kind, message in app.judging_conditions:
        return warn(
            name,
            f"{mode}; but Argo CD cannot judge it now ({kind}: {message})",
            "fix what the condition says in Argo CD; until then the stage's verdicts wait",
        )
    if app.sync_blocked:
        waits = "auto-sync" if app.automated else "Ferry's sync"
        return warn(
            name,
            f"{mode}; a sync window blocks syncs now ({app.sync_blocked})",
            f"{waits} waits until the window ends and the verdict with it; change the project's "
            "syncWindows if Ferry should deploy during it",
        )
    return ok(name, mode)


def _what_ferry_does(facts: ArgoAppFacts, app: AppState) -> str:
    target = app.target_revision or "HEAD"
    project = app.project or facts.project
    if app.automated:
        text = (
            f"readable; automated sync of {target}: after a merge Ferry asks for a refresh and auto-sync "
            "deploys it (RBAC: get)"
        )
    else:
        text = (
            f"readable; manual sync: after a merge Ferry syncs it to {target} "
            f"(argocd-rbac-cm: {policy(project, facts.app, 'sync')})"
        )
    if app.source_position is not None:
        text += (
            f"; multi-source: Ferry judges source {app.source_position} ({facts.repo}), every source syncs "
            "to its own targetRevision"
        )
    return text
