"""What Ferry knows of one Argo CD application, and the rules for what it may ask of it (pure).

``AppState`` is Argo CD's ``v1alpha1Application`` reduced to the source that deploys from the GitOps
repository (for a multi-source app, that source's position in ``status.sync.revisions[]`` and
``operationState.syncResult.revisions[]``); the adapter (``bot.argocd_state``) builds it.

The one rule for what Ferry asks (``ask_for``): never a commit that is not on the default branch's
first-parent line at or after the deploy commit. So Ferry never sends a ``revision`` override:

- an app with ``spec.syncPolicy.automated`` gets a refresh (``GET …?refresh=normal``, ``hard`` when its
  status is stale), and its own auto-sync applies the branch head. Argo CD refuses a sync that names a
  revision other than ``targetRevision`` on such an app ("Cannot sync to <rev>: auto-sync currently set to
  <target>", gRPC code 9; argo-cd server/application/application.go ``resolveSourceRevisions``), and its
  controller syncs the resolved head by itself once the app is OutOfSync (controller/appcontroller.go
  ``autoSync``);
- any other app gets a sync with no revision: Argo CD resolves its own ``targetRevision`` (a branch that
  contains the deploy commit, since the merge is on it) with no revision cache (``resolveRevision``). A
  multi-source app needs no ``revisions``/``sourcePositions`` for that: unlisted sources sync to their own
  ``targetRevision`` (``resolveSourceRevisions``; positions there are 1-based);
  once that sync Succeeded, a refresh (``hard`` when stale) now and then until Argo CD has compared
  again: it does so only when its queued post-operation refresh runs or at its poll;
- an app pinned to a commit or tag (a ``targetRevision`` that is not the default branch) cannot be moved by
  a merge: Ferry asks nothing and the verdict says so (``pinned_reason``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

# How revision R (what Argo CD compares to or synced) stands to the deploy commit D, as GitHub's compare
# D...R says: the same commit; a descendant whose stage files are unchanged (same freight); a descendant
# that changed them (the stage moved on); an ancestor (Argo CD has not seen D yet); on another line; or
# not known (no revision, or GitHub could not tell).
Relation = Literal["same", "equivalent", "moved_on", "behind", "diverged", "unknown"]
CONTAINS_DEPLOY: frozenset[Relation] = frozenset({"same", "equivalent"})

AskMode = Literal["refresh", "sync", "auto"]

# While a stage verifies and Argo CD has not caught up, ask again at most this often (per app).
REFRESH_EVERY = timedelta(seconds=10)

SHORT_SHA = 7
HEAD_REVISIONS = frozenset({"", "HEAD"})
# The key of the sync ``infos`` entry that names the promotion, so a later pass recognises its own sync.
INFO_KEY = "ferry.promotion"
JUDGING_CONDITIONS = ("ComparisonError", "InvalidSpecError")


@dataclass(frozen=True)
class AppState:
    """What Argo CD says about one application, reduced to what verification needs.

    Revisions are those of the source that deploys from the GitOps repository: ``sync_revision`` is
    ``status.sync.revision`` (the branch head Argo CD resolved at its last comparison, not what it last
    synced); ``operation_revision`` is what the latest operation synced (``syncResult``) or is syncing.
    ``operation_*`` describe ``status.operationState`` (possibly finished); ``operation_requested`` is true
    while the top-level ``operation`` is set (requested or running). ``unhealthy_resources`` read
    ``"Deployment/web: <health message>"``. ``error`` says why Argo CD could not be read: the verdict stays
    pending with that reason until the timeout. ``sync_blocked`` describes the sync window that blocks
    syncs now, when Ferry asked (``GET …/syncwindows``); ``pod_problems`` name the unhealthy pods of its
    resource tree, when Ferry asked (``GET …/resource-tree``): the cause a Deployment's health hides.
    """

    name: str
    sync_status: str | None = None
    sync_revision: str | None = None
    health_status: str | None = None
    health_message: str | None = None
    operation_phase: str | None = None
    operation_revision: str | None = None
    operation_infos: Mapping[str, str] = field(default_factory=dict)
    operation_started_at: datetime | None = None
    operation_finished_at: datetime | None = None
    operation_message: str | None = None
    reconciled_at: datetime | None = None
    unhealthy_resources: tuple[str, ...] = ()
    exists: bool = True
    operation_requested: bool = False
    requested_infos: Mapping[str, str] = field(default_factory=dict)
    operation_initiated_by: str | None = None
    health_since: datetime | None = None
    images: tuple[str, ...] = ()
    error: str | None = None
    automated: bool = False
    operation_automated: bool = False
    target_revision: str | None = None  # the GitOps source's spec targetRevision ("" means HEAD)
    source_position: int | None = None  # 1-based position among spec.sources; None for spec.source
    source_found: bool = True  # False: no source of the app deploys from the GitOps repository
    conditions: tuple[tuple[str, str], ...] = ()  # (type, message) of status.conditions
    deleting: bool = False  # metadata.deletionTimestamp is set
    sync_blocked: str | None = None
    pod_problems: tuple[str, ...] = ()  # "Pod/web-7d9f: Back-off pulling image … (ImagePullBackOff)"
    project: str | None = None  # spec.project: RBAC objects are "<project>/<application>"

    @classmethod
    def missing(cls, name: str) -> AppState:
        return cls(name=name, exists=False)

    @classmethod
    def unobserved(cls, name: str, error: str) -> AppState:
        """Argo CD could not be asked (unreachable, 5xx, token refused): pending until the timeout."""
        return cls(name=name, error=error)

    @property
    def operating(self) -> bool:
        """An operation is requested or running: Argo CD takes no other sync (``SetAppOperation``)."""
        return self.operation_requested or self.operation_phase in ("Running", "Terminating")

    @property
    def judging_conditions(self) -> tuple[tuple[str, str], ...]:
        """Conditions under which Argo CD cannot judge the app (Kargo's health checker reads the same)."""
        return tuple(c for c in self.conditions if c[0] in JUDGING_CONDITIONS)

    @property
    def stale(self) -> bool:
        """Health may predate the last operation: ``reconciledAt`` before ``finishedAt`` (akuity/kargo#2196;
        equal timestamps are trusted, as Kargo does)."""
        finished = self.operation_finished_at
        if finished is None:
            return False
        return self.reconciled_at is None or _utc(self.reconciled_at) < _utc(finished)


def same_revision(observed: str | None, wanted: str) -> bool:
    """Full SHAs compare equal; an abbreviated one (7+ characters) matches the full SHA it starts."""
    if not observed:
        return False
    a, b = observed.strip().lower(), wanted.strip().lower()
    if a == b:
        return True
    shorter, longer = sorted((a, b), key=len)
    return len(shorter) >= SHORT_SHA and longer.startswith(shorter)


def relation_of(relation: Mapping[str, Relation], revision: str | None, deploy_commit: str) -> Relation:
    """How ``revision`` stands to the deploy commit: equal SHAs are ``same`` without asking anyone."""
    if not revision:
        return "unknown"
    if same_revision(revision, deploy_commit):
        return "same"
    return relation.get(revision, "unknown")


def tracks_branch(target_revision: str | None, default_branch: str) -> bool:
    """Whether ``targetRevision`` follows the default branch, so a merge there moves the app."""
    target = (target_revision or "").strip()
    return target in HEAD_REVISIONS or target.removeprefix("refs/heads/") == default_branch


def pinned_reason(app: AppState, default_branch: str) -> str:
    return (
        f"pinned to targetRevision {app.target_revision}, which a merge to {default_branch} cannot move; "
        f"set it to {default_branch} (or HEAD) in the Application"
    )


def ours(app: AppState, promotion_id: str) -> bool:
    """Whether the requested, running or last operation carries this promotion in its ``infos``."""
    return promotion_id in (app.requested_infos.get(INFO_KEY), app.operation_infos.get(INFO_KEY))


@dataclass(frozen=True)
class AppAsk:
    """What to ask of one app: a refresh (``hard`` when its status is stale), a sync of its own
    ``targetRevision``, or ``auto``: the adapter reads the app and applies ``ask_for`` itself."""

    app: str
    mode: AskMode
    hard: bool = False


def ask_for(
    app: AppState,
    deploy_commit: str,
    relation: Mapping[str, Relation],
    *,
    default_branch: str,
    promotion_id: str,
    now: datetime,
    started: bool,
    deployed_by_ferry: bool = True,
) -> AppAsk | None:
    """What to ask of ``app`` so it deploys the deploy commit (or nothing): see the module docstring.

    ``relation`` maps revisions to their relation to the deploy commit. ``started`` is false on the pass
    that starts verification (ask at once), true later (ask again only when Argo CD has not caught up, at
    most every ``REFRESH_EVERY`` by ``reconciledAt``). A commit Ferry did not promote gets at most a
    refresh of an automated app (harmless: auto-sync would apply the same head at its next poll).
    """
    if app.error is not None:
        return AppAsk(app.name, "auto") if not started and deployed_by_ferry else None
    if not app.exists or app.deleting or not app.source_found:
        return None
    if not tracks_branch(app.target_revision, default_branch):
        return None
    if not app.automated and (app.operating or not deployed_by_ferry or app.sync_blocked):
        # Argo CD takes no sync while an operation runs or a window blocks it; Ferry syncs only its promotions
        return None
    seen = relation_of(relation, app.sync_revision, deploy_commit)
    synced = relation_of(relation, app.operation_revision, deploy_commit)
    if seen == "moved_on" or synced == "moved_on":
        return None  # a newer commit changed the stage's files: its own verification asks
    if app.automated:
        caught_up = seen in CONTAINS_DEPLOY and (synced in CONTAINS_DEPLOY or app.sync_status == "Synced")
        # A promotion's first ask is always a refresh (harmless even while auto-sync runs); later, or for a
        # commit Ferry did not promote, only an app that has not caught up is refreshed, now and then.
        settled = (caught_up and not app.stale) or app.operating or not _due(app, now)
        if (started or not deployed_by_ferry) and settled:
            return None
        return AppAsk(app.name, "refresh", hard=app.stale)
    if synced in CONTAINS_DEPLOY and app.operation_phase == "Succeeded":
        # The sync applied it, but Argo CD compares again only when its queued post-operation refresh runs
        # (or at its 3-minute poll): until then it compares to an older head and its health may predate
        # the sync (akuity/kargo#2196). Ask for the comparison, now and then.
        if (seen not in CONTAINS_DEPLOY or app.stale) and _due(app, now):
            return AppAsk(app.name, "refresh", hard=app.stale)
        return None
    if synced in CONTAINS_DEPLOY or (started and ours(app, promotion_id)):
        return None  # synced already, or our own sync ran (its verdict says how it went)
    if seen in CONTAINS_DEPLOY and app.sync_status == "Synced":
        return None  # nothing to apply: the live state already matches a commit with the same freight
    return AppAsk(app.name, "sync")


def _due(app: AppState, now: datetime) -> bool:
    return app.reconciled_at is None or _utc(now) - _utc(app.reconciled_at) >= REFRESH_EVERY


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def awaits_sync(app: AppState, deploy_commit: str, relation: Mapping[str, Relation]) -> bool:
    """Whether the app waits for a sync that has not started: then a sync window may be what blocks it.

    An automated app waits once Argo CD compares to a commit with the deploy commit's freight and is
    OutOfSync; any other app waits until a sync with that freight ran. (Argo CD refuses a manual sync in a
    window with 403 "blocked by sync window" and skips auto-sync silently, logging "Sync prevented by sync
    window": controller/appcontroller.go.)
    """
    if not app.exists or app.error is not None or app.operating:
        return False
    seen = relation_of(relation, app.sync_revision, deploy_commit)
    synced = relation_of(relation, app.operation_revision, deploy_commit)
    if synced in CONTAINS_DEPLOY or (seen in CONTAINS_DEPLOY and app.sync_status == "Synced"):
        return False
    return seen in CONTAINS_DEPLOY or not app.automated
