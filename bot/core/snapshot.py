"""What one reconcile pass observed of one repository, as plain values (the input of ``decide``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from bot.errors import Problem

if TYPE_CHECKING:
    from bot.core.approvals import PullReviews
    from bot.core.argo_app import AppState, Relation
    from bot.core.config import PipelineConfig
    from bot.core.config_review import GateRule
    from bot.core.freight import Freight
    from bot.core.ledger import LedgerEntry


@dataclass(frozen=True)
class CommitStatus:
    context: str
    state: str  # pending | success | failure | error
    description: str = ""
    target_url: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class PullRequest:
    """An open promotion PR (head branch ``ferry/<stage>/<freight-id>``)."""

    number: int
    url: str
    branch: str
    stage: str
    freight_id: str
    head_sha: str
    title: str = ""
    body: str = ""
    labels: tuple[str, ...] = ()
    statuses: Mapping[str, CommitStatus] = field(default_factory=dict)  # on the head commit, by context
    author: str = ""  # who opened it (Ferry's bot for the PRs it opens)
    updated_at: datetime | None = None  # moves with every push, review and comment: reviews are read again


@dataclass(frozen=True)
class MergedPromotion:
    """A merged promotion PR: how a stage's deploy commit is tied back to its freight."""

    number: int
    url: str
    stage: str
    freight_id: str
    head_sha: str
    merge_commit_sha: str
    merged_at: datetime | None = None
    merged_by: str = ""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Deploy:
    """The commit on the default branch's first-parent line that last changed any of a stage's files.

    ``commit`` is the merge commit when a pull request brought the change (never the PR's head commit);
    ``changed_by`` is the commit that changed the files (the PR's own commit, as GitHub's path history
    lists it); ``promotion`` is set when that PR is a Ferry promotion of the stage, ``ferry_commit`` when the
    changing commit carries Ferry's trailers for the stage (a promotion, even if no PR could be found).
    """

    commit: str
    changed_by: str
    message: str = ""
    committed_at: datetime | None = None
    promotion: MergedPromotion | None = None
    statuses: Mapping[str, CommitStatus] = field(default_factory=dict)  # on ``commit``, by context
    # Earlier promotion merges of the stage whose health is still pending: a later merge overtook them.
    overtaken: tuple[str, ...] = ()
    # ``Ferry-Image`` references of the stage's previous promotion, to notice a merge that goes backwards.
    previous_images: tuple[str, ...] = ()
    ferry_commit: bool = False
    # When verification began, if the pending status was restated since (its created_at is then later).
    verifying_since: datetime | None = None

    @property
    def by_ferry(self) -> bool:
        """Whether a Ferry promotion brought this deploy commit (else Ferry only observes the stage)."""
        return self.promotion is not None or self.ferry_commit


@dataclass(frozen=True)
class Snapshot:
    repo: str  # owner/name
    default_branch: str
    head_sha: str
    now: datetime
    config: PipelineConfig | None
    config_problems: tuple[Problem, ...] = ()
    config_commit: str | None = None  # the commit that last changed .github/ferry.yml
    config_statuses: Mapping[str, CommitStatus] = field(default_factory=dict)
    paths: frozenset[str] = frozenset()  # every file path on the default branch
    files: Mapping[str, str] = field(default_factory=dict)  # texts of the stages' update targets
    blob_shas: Mapping[str, str] = field(default_factory=dict)  # path -> blob sha, for those files
    warehouse_freight: Mapping[str, Freight] = field(default_factory=dict)  # newest per warehouse
    warehouse_errors: Mapping[str, str] = field(default_factory=dict)
    deploys: Mapping[str, Deploy] = field(default_factory=dict)  # by stage
    open_prs: tuple[PullRequest, ...] = ()
    argocd_urls: Mapping[str, str] = field(default_factory=dict)  # server name -> UI base URL
    merged_commits: frozenset[str] = frozenset()  # merge commits of the stages' recent promotions
    # By stage, while verifying or starting to: each app's state, and how the revisions Argo CD reports
    # stand to the stage's deploy commit (GitHub's compare).
    app_states: Mapping[str, tuple[AppState, ...]] = field(default_factory=dict)
    relations: Mapping[str, Mapping[str, Relation]] = field(default_factory=dict)
    # Who approved what, by pull request number: the open promotions of stages with ``promoters``, and a
    # stage's newest merged promotion while its verification has not begun (``bot.core.approvals``).
    approvals: Mapping[int, PullReviews] = field(default_factory=dict)
    # Whether the default branch requires `ferry/gate` (``bot.core.config_review.GateRule``); None: not read.
    gate_rule: GateRule | None = None
    # The freight ledger (GitHub Deployments Ferry wrote), newest first; None when not read.
    ledger: tuple[LedgerEntry, ...] | None = None
    # GitHub failed to answer for the ledger: auto-promotion waits rather than re-promote freight that
    # failed (the history that says so is unknown); commit statuses are still decided.
    ledger_unknown: bool = False
