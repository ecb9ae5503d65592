"""The typed actions ``decide`` returns and the adapters perform. Each is idempotent.

Add an effect by adding a class here (with ``kind`` and ``describe``) and its handler in the
reconciler's action table, not by branching on strings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from bot.core.argo_app import AppAsk
from bot.core.freight import Freight


@dataclass(frozen=True)
class RecordDeployment:
    """Record one verification in the freight ledger: the GitHub Deployment of ``sha`` to environment
    ``stage`` with ``task`` (found first, created only when missing), then a deployment status ``state``
    (in_progress | success | failure | inactive) unless its newest status already says so. ``inactive``
    never creates a deployment."""

    kind: ClassVar[str] = "record_deployment"
    stage: str
    sha: str
    task: str
    freight: Freight
    state: str
    description: str
    url: str | None = None  # the Argo CD app: environment_url and log_url
    production: bool = False
    pushed_at: datetime | None = None

    def describe(self) -> str:
        return f"record {self.task} of {self.sha[:7]} in {self.stage}: {self.state}"


@dataclass(frozen=True)
class SetStatus:
    """A commit status; a health status may carry the ledger record it decides (written right after it,
    by the same guarded write, and never when the status is not written)."""

    kind: ClassVar[str] = "set_status"
    sha: str
    context: str
    state: str
    description: str
    target_url: str | None = None
    ledger: RecordDeployment | None = None

    def describe(self) -> str:
        return f"set {self.context} = {self.state} on {self.sha[:7]}: {self.description}"


@dataclass(frozen=True)
class OpenPromotion:
    """Open (or, with ``rebuild_pr``, rebuild on the current base) the PR moving ``stage`` to ``freight``."""

    kind: ClassVar[str] = "open_promotion"
    stage: str
    freight: Freight
    branch: str
    base_sha: str
    files: tuple[tuple[str, str], ...]  # (path, new text)
    title: str
    body: str
    message: str
    labels: tuple[str, ...]
    rebuild_pr: int | None = None
    # A rebuild's compare-and-swap: the branch head (Ferry's own commit) the decision saw; None forces.
    expected_head: str | None = None

    def describe(self) -> str:
        verb = f"rebuild #{self.rebuild_pr} as" if self.rebuild_pr else "open"
        return f"{verb} {self.branch}: {self.title} ({len(self.files)} file(s))"


@dataclass(frozen=True)
class ClosePromotion:
    kind: ClassVar[str] = "close_promotion"
    number: int
    stage: str
    comment: str
    superseded_by_branch: str | None = None

    def describe(self) -> str:
        why = f" (superseded by {self.superseded_by_branch})" if self.superseded_by_branch else ""
        return f"close #{self.number} for {self.stage}{why}"


@dataclass(frozen=True)
class MergePromotion:
    kind: ClassVar[str] = "merge_promotion"
    number: int
    stage: str
    head_sha: str
    title: str

    def describe(self) -> str:
        return f"merge #{self.number} ({self.title}) at {self.head_sha[:7]}"


@dataclass(frozen=True)
class LabelPromotion:
    """Add the labels a promotion PR lacks (an earlier attempt may have failed after opening it)."""

    kind: ClassVar[str] = "label_promotion"
    number: int
    stage: str
    labels: tuple[str, ...]

    def describe(self) -> str:
        return f"label #{self.number} with {', '.join(self.labels)}"


@dataclass(frozen=True)
class PostComment:
    """A comment on an issue or PR; ``marker`` is a hidden tag that stops a second pass repeating it."""

    kind: ClassVar[str] = "post_comment"
    number: int
    body: str
    marker: str

    def describe(self) -> str:
        return f"comment on #{self.number}: {self.body.splitlines()[0][:80]}"


@dataclass(frozen=True)
class RequestSync:
    """Ask Argo CD to deploy a stage's deploy commit: per app a refresh or a sync of its own
    ``targetRevision`` (``bot.core.argo_app.ask_for``), never a revision override.

    ``revision`` is the deploy commit the request is for: named in events and statuses, never sent.
    """

    kind: ClassVar[str] = "request_sync"
    stage: str
    server: str
    asks: tuple[AppAsk, ...]
    revision: str
    promotion_id: str
    default_branch: str = "main"
    prune: bool = False
    app_namespace: str | None = None
    project: str | None = None

    @property
    def apps(self) -> tuple[str, ...]:
        return tuple(ask.app for ask in self.asks)

    def describe(self) -> str:
        asked = ", ".join(f"{ask.mode} {ask.app}" for ask in self.asks)
        return f"{asked} ({self.stage}) for {self.revision[:7]}"


Action = (
    SetStatus
    | RecordDeployment
    | OpenPromotion
    | ClosePromotion
    | MergePromotion
    | LabelPromotion
    | PostComment
    | RequestSync
)
