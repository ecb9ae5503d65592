"""Drift: a verified stage whose apps no longer run its deploy commit (someone synced an app back, or rolled
it back outside Ferry). Verified stages are read again at the idle interval; what they say here becomes the
``ferry/health/<stage>`` status, so no gate opens on a stage that drifted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from bot.core.actions import Action, SetStatus
from bot.core.argo_app import AppState, Relation, relation_of
from bot.core.text import fit_description

DRIFTED = "drifted: "
# Revisions an app may have synced and still run the deploy commit: it, or one that changed none of the
# stage's files since (``RepoHistory.relation``); anything older or off the branch is drift.
DRIFT_RELATIONS: frozenset[Relation] = frozenset({"behind", "diverged"})


def drifted(
    states: Sequence[AppState], deploy_commit: str, relation: Mapping[str, Relation]
) -> tuple[str, str] | None:
    """(app, revision) of the first app whose last sync deployed a revision older than, or off the line of,
    ``deploy_commit`` and that Argo CD reports OutOfSync; None when every app runs it (or cannot be judged:
    unreadable, missing, or syncing right now)."""
    for state in states:
        if state.error or not state.exists or state.operating or state.sync_status != "OutOfSync":
            continue
        revision = state.operation_revision
        if revision and relation_of(relation, revision, deploy_commit) in DRIFT_RELATIONS:
            return state.name, revision
    return None


def is_drift(description: str) -> bool:
    return description.startswith(DRIFTED)


def drift_actions(
    context: str,
    deploy_commit: str,
    current: tuple[str, str],
    *,
    states: Sequence[AppState] | None,
    relation: Mapping[str, Relation],
    target_url: str | None,
) -> list[Action]:
    """The health status a verified (or drifted) stage's apps call for now. ``current`` is the status's
    (state, description); ``states`` None: the apps were not read this pass, so nothing changes."""
    if states is None:
        return []
    state, description = current
    found = drifted(states, deploy_commit, relation)
    if found is not None:
        said = fit_description(f"{DRIFTED}{found[0]} runs {found[1][:7]}, not {deploy_commit[:7]}")
        if (state, description) == ("failure", said):
            return []
        return [SetStatus(deploy_commit, context, "failure", said, target_url)]
    settled = all(s.sync_status == "Synced" and s.health_status == "Healthy" for s in states)
    if state == "failure" and is_drift(description) and settled:
        names = ", ".join(s.name for s in states)
        back = fit_description(f"verified: {names} run {deploy_commit[:7]} again (drift resolved)")
        return [SetStatus(deploy_commit, context, "success", back, target_url)]
    return []
