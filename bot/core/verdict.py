"""Health verdicts: is a stage verified on its deploy commit? Pure rules over observed Argo CD state.

``app_verdict`` judges one Argo CD application against the deploy commit D; ``stage_verdict`` combines a
stage's applications with the clock (timeout, soak). Everything comes from the arguments (the apps, and
``relation``: how each revision Argo CD reports stands to D, which the adapters read from GitHub's
compare), so a restarted Ferry reaches the same verdict from what GitHub and Argo CD say.

Apps track a branch, so Argo CD's ``status.sync.revision`` is the branch head it resolved at its last
comparison, not the commit Ferry merged: a later commit that leaves the stage's files alone (a README, another
stage's promotion) still runs the same freight (the class of akuity/kargo#2952 and #2968, which Kargo fixed
in PR #2980 by no longer demanding an exact revision). The rules, in the order checked for one application:

1. Argo CD could not be read (``error``), or the application does not exist (403 without ``project``, 404
   with it): pending; it is being deleted: failure; none of its sources is the GitOps repository, or it is
   pinned to a commit or tag a merge cannot move: failure saying what to change;
2. conditions ``ComparisonError`` or ``InvalidSpecError``: pending with the message (Argo CD cannot judge);
3. an operation requested or running: pending;
4. a descendant of D that changed the stage's files, compared to or synced: the stage moved on (superseded,
   never failure); the last operation synced D or a descendant with its freight and Failed or Errored:
   failure naming the operation's message or the unhealthy resources;
5. the revision Argo CD compares to (R): an ancestor of D, no revision, or a commit off the branch after D:
   pending; then the revision last synced: a Succeeded operation (by Ferry or by auto-sync) of D's freight
   counts; otherwise the app counts only if Argo CD reports it Synced at R (nothing was left to apply), and
   is pending (naming the sync window that blocks it, or the ``SyncError`` condition that says why
   auto-sync did not start: "auto-sync will wipe out all resources", a failed attempt at R);
6. ``status.reconciledAt`` older than ``operationState.finishedAt``: pending, because Argo CD assesses
   health in a separate loop and its health may predate the sync (akuity/kargo#2196);
7. health Degraded or Missing: failure naming the unhealthy resources; Progressing (a Deployment stays so
   until its progress deadline), Suspended, Unknown or absent: pending;
8. sync status not Synced: pending only when the stage sets ``verify.require_synced`` (many healthy apps
   stay OutOfSync for good: mutating webhooks, HPA-managed replicas; Kargo does not require Synced either);
   otherwise success.

For a stage, the worst application wins (failure, superseded, pending, success) and reasons name the
application. A stage still pending ``timeout`` after verification started fails with what it was waiting
for. Once every application succeeds the stage soaks: it is verified only when it has been healthy for
``soak`` (counted from the later of the operation's end and the last health transition); a degrade while
soaking is a failure by rule 7. The soak itself is not cut short by ``timeout``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from bot.core.argo_app import (
    CONTAINS_DEPLOY,
    SHORT_SHA,
    AppState,
    Relation,
    pinned_reason,
    relation_of,
    tracks_branch,
)
from bot.core.text import fit_description as fit

SYNCED = "Synced"
HEALTHY = "Healthy"
FAILED_HEALTH = frozenset({"Degraded", "Missing"})
WAITING_HEALTH = frozenset({"Progressing", "Suspended", "Unknown"})
RUNNING_PHASES = frozenset({"Running", "Terminating"})
FAILED_PHASES = frozenset({"Failed", "Error"})
SUCCEEDED = "Succeeded"
SYNC_ERROR = "SyncError"

VerdictState = Literal["pending", "success", "failure", "superseded"]

# What people read in commit statuses; each fits 140 characters once filled in.
MSG_APP_MISSING = 'application not found on Argo CD, or the token may not get it (RBAC "applications, get")'
MSG_DELETING = "is being deleted in Argo CD; recreate it, or remove it from the stage's argocd apps"
MSG_NO_SOURCE = "deploys from no source in this repository; fix its repoURL or the stage's argocd apps"
MSG_CONDITION = "{kind}: {message}"
MSG_REQUESTED = "sync requested, not started yet"
MSG_RUNNING = "syncing {revision}: operation {phase}"
MSG_NOT_COMPARED = "Argo CD has not compared it to {branch} yet"
MSG_BEHIND = "Argo CD compares to {other}, which does not contain {commit} yet"
MSG_OFF_BRANCH = "Argo CD compares to {other}, which is not on {branch} after {commit}"
MSG_MOVED_ON = "moved on to {other}, which changes the stage's files"
MSG_WAITING_SYNC = "OutOfSync at {other}; waiting for a sync (last: {last})"
MSG_BLOCKED = "blocked by sync window {window}"
MSG_OPERATION_FAILED = "sync to {revision} {phase}: {message}"
MSG_STALE = "sync finished at {finished}; waiting for Argo CD to re-assess health"
MSG_UNHEALTHY = "{health}: {resources}"
MSG_WAITING_HEALTH = "health {health}{detail}"
MSG_NO_HEALTH = "no health reported yet"
MSG_NOT_SYNCED = "sync status {sync} at {revision} (verify.require_synced)"
MSG_SUCCESS = "Healthy at {revision}"
MSG_STAGE_SUCCESS = "verified: healthy at {commit}{soak}"
MSG_OBSERVED = "{apps} {verb} {freight} at {revision} (not deployed by Ferry)"
MSG_NOT_FERRY = "not deployed by Ferry: {what}"
MSG_SOAKING = "healthy since {since} UTC; soaking until {until} UTC ({soak})"
MSG_TIMED_OUT = "timed out after {timeout} waiting for {what}"
MSG_NO_APPS = "nothing to verify: no Argo CD application"
MSG_NO_RESOURCE_DETAIL = "no resource reported unhealthy"


@dataclass(frozen=True)
class Verdict:
    """``reason`` fits a 140-character commit status; ``details`` keeps the full resource lines."""

    state: VerdictState
    reason: str
    details: tuple[str, ...] = ()


def short(revision: str | None) -> str:
    if not revision:
        return "?"
    return revision[:SHORT_SHA] if len(revision) == 40 else revision


def clock_time(moment: datetime) -> str:
    return _utc(moment).strftime("%H:%M:%S")


def _minute(moment: datetime) -> str:
    """``14:02`` (``14:02:30`` when the seconds matter): how the soak's window is written for people."""
    moment = _utc(moment)
    return moment.strftime("%H:%M" if moment.second == 0 else "%H:%M:%S")


def format_duration(span: timedelta) -> str:
    """``15m``, ``1h30m``, ``45s``: the way people write durations in the pipeline config."""
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts) or "0s"


def app_verdict(
    app: AppState,
    deploy_commit: str,
    relation: Mapping[str, Relation] | None = None,
    *,
    default_branch: str = "main",
    require_synced: bool = False,
) -> Verdict:
    """Judge one application against the deploy commit, ignoring time (see the module docstring)."""
    commit = short(deploy_commit)
    relation = relation or {}
    if app.error is not None:
        return Verdict("pending", app.error)
    if not app.exists:
        return Verdict("pending", MSG_APP_MISSING)
    if app.deleting:
        return Verdict("failure", MSG_DELETING)
    if not app.source_found:
        return Verdict("failure", MSG_NO_SOURCE)
    seen = relation_of(relation, app.sync_revision, deploy_commit)
    if not tracks_branch(app.target_revision, default_branch) and seen not in CONTAINS_DEPLOY:
        return Verdict("failure", pinned_reason(app, default_branch))
    for kind, message in app.judging_conditions:
        return Verdict("pending", MSG_CONDITION.format(kind=kind, message=message))
    if app.operating:
        if app.operation_phase in RUNNING_PHASES:
            revision = short(app.operation_revision) if app.operation_revision else "the branch head"
            return Verdict("pending", MSG_RUNNING.format(revision=revision, phase=app.operation_phase))
        return Verdict("pending", MSG_REQUESTED)
    synced = relation_of(relation, app.operation_revision, deploy_commit)
    if "moved_on" in (seen, synced):
        other = app.sync_revision if seen == "moved_on" else app.operation_revision
        return Verdict("superseded", MSG_MOVED_ON.format(other=short(other)))
    if synced in CONTAINS_DEPLOY and app.operation_phase in FAILED_PHASES:
        message = app.operation_message or _resources_text(app)
        reason = MSG_OPERATION_FAILED.format(
            revision=short(app.operation_revision), phase=app.operation_phase, message=message
        )
        return Verdict("failure", reason, app.unhealthy_resources)
    if seen not in CONTAINS_DEPLOY:
        other = short(app.sync_revision)
        if app.sync_revision is None:
            return Verdict("pending", MSG_NOT_COMPARED.format(branch=default_branch))
        if seen == "diverged":
            reason = MSG_OFF_BRANCH.format(other=other, branch=default_branch, commit=commit)
            return Verdict("pending", reason)
        return Verdict("pending", MSG_BEHIND.format(other=other, commit=commit))
    applied = synced in CONTAINS_DEPLOY and app.operation_phase == SUCCEEDED
    if not applied and app.sync_status != SYNCED:
        if app.sync_blocked:
            return Verdict("pending", MSG_BLOCKED.format(window=app.sync_blocked))
        for kind, message in app.conditions:
            if kind == SYNC_ERROR:  # why auto-sync did not start (controller/appcontroller.go autoSync)
                return Verdict("pending", MSG_CONDITION.format(kind=kind, message=message))
        last = f"{app.operation_phase} at {short(app.operation_revision)}" if app.operation_phase else "none"
        return Verdict("pending", MSG_WAITING_SYNC.format(other=short(app.sync_revision), last=last))
    if app.stale:
        assert app.operation_finished_at is not None
        return Verdict("pending", MSG_STALE.format(finished=clock_time(app.operation_finished_at)))
    health = app.health_status
    if health in FAILED_HEALTH:
        reason = MSG_UNHEALTHY.format(health=health, resources=_resources_text(app))
        return Verdict("failure", reason, (*app.pod_problems, *app.unhealthy_resources))
    if health is None:
        return Verdict("pending", MSG_NO_HEALTH)
    if health != HEALTHY:
        lines = app.pod_problems or app.unhealthy_resources
        detail = f": {lines[0]}" if lines else ""
        return Verdict("pending", MSG_WAITING_HEALTH.format(health=health, detail=detail))
    if require_synced and app.sync_status != SYNCED:
        sync = app.sync_status or "unknown"
        return Verdict("pending", MSG_NOT_SYNCED.format(sync=sync, revision=short(app.sync_revision)))
    return Verdict("success", MSG_SUCCESS.format(revision=short(app.sync_revision)))


@dataclass(frozen=True)
class Observed:
    """A deploy commit Ferry did not promote: the verdict says what runs there instead of judging a sync.

    ``freight`` reads like ``web 1.4.0, worker 1.4.0`` (what the stage's files hold at the deploy commit).
    """

    freight: str


def stage_verdict(
    apps: Sequence[AppState],
    deploy_commit: str,
    *,
    requested_at: datetime,
    now: datetime,
    timeout: timedelta,
    soak: timedelta,
    relation: Mapping[str, Relation] | None = None,
    default_branch: str = "main",
    require_synced: bool = False,
    observed: Observed | None = None,
) -> Verdict:
    """Judge a stage: every application must pass; the worst wins; timeout and soak from the clock."""
    if not apps:
        return Verdict("success", MSG_NO_APPS)
    judged = [
        (
            app,
            app_verdict(
                app, deploy_commit, relation, default_branch=default_branch, require_synced=require_synced
            ),
        )
        for app in apps
    ]
    failures = [(app, v) for app, v in judged if v.state == "failure"]
    if failures:
        reason = "; ".join(f"{app.name}: {v.reason}" for app, v in failures)
        details = tuple(f"{app.name}: {line}" for app, v in failures for line in v.details)
        return Verdict("failure", fit(_not_ferry(reason, observed)), details)
    superseded = [(app, v) for app, v in judged if v.state == "superseded"]
    if superseded:
        app, first = superseded[0]
        return Verdict("superseded", fit(f"{app.name}: {first.reason}"))
    pending = [(app, v) for app, v in judged if v.state == "pending"]
    if pending:
        app, first = pending[0]
        what = f"{app.name}: {first.reason}"
        if _utc(now) - _utc(requested_at) >= timeout:
            reason = MSG_TIMED_OUT.format(timeout=format_duration(timeout), what=what)
            return Verdict("failure", fit(_not_ferry(reason, observed)), first.details)
        more = f" (+{len(pending) - 1} more)" if len(pending) > 1 else ""
        return Verdict("pending", fit(_not_ferry(what + more, observed)), first.details)
    if observed is not None:
        return Verdict("success", fit(_observed_success(apps, observed)))
    commit = short(deploy_commit)
    until = soak_until(apps, soak)
    if until is not None and _utc(now) < until:
        since = until - soak
        soaking = MSG_SOAKING.format(since=_minute(since), until=_minute(until), soak=format_duration(soak))
        return Verdict("pending", soaking)
    soaked = f" for {format_duration(soak)}" if soak > timedelta(0) else ""
    return Verdict("success", fit(MSG_STAGE_SUCCESS.format(commit=commit, soak=soaked)))


def soak_until(apps: Sequence[AppState], soak: timedelta) -> datetime | None:
    """When a stage whose apps all passed has stayed healthy for ``soak``: the later of each app's operation
    end and last health transition, plus ``soak`` (None: no soak, or no such moment known)."""
    since = _healthy_since(apps)
    return since + soak if soak > timedelta(0) and since is not None else None


def is_soaking(verdict: Verdict) -> bool:
    """Whether a pending verdict waits only for the soak to end (every app passed)."""
    return verdict.state == "pending" and verdict.reason.startswith(MSG_SOAKING.partition("{")[0])


def _not_ferry(reason: str, observed: Observed | None) -> str:
    return reason if observed is None else MSG_NOT_FERRY.format(what=reason)


def _observed_success(apps: Sequence[AppState], observed: Observed) -> str:
    revisions = list(dict.fromkeys(short(app.sync_revision) for app in apps))
    names = ", ".join(app.name for app in apps)
    return MSG_OBSERVED.format(
        apps=names,
        verb="runs" if len(apps) == 1 else "run",
        freight=observed.freight,
        revision=", ".join(revisions),
    )


def _healthy_since(apps: Sequence[AppState]) -> datetime | None:
    moments = [
        _utc(moment)
        for app in apps
        for moment in (app.operation_finished_at, app.health_since)
        if moment is not None
    ]
    return max(moments) if moments else None


def _resources_text(app: AppState) -> str:
    """The unhealthy pods first (they say why), then the resources Argo CD reported unhealthy."""
    lines = (*app.pod_problems, *app.unhealthy_resources)
    if lines:
        return ", ".join(lines)
    return app.health_message or MSG_NO_RESOURCE_DETAIL


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
