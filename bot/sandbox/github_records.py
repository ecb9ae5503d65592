"""Records of the GitHub stand-in for reviews, deployments, environments, branch protection and App
manifests (the conversation and repository records are in ``github_state``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# REST words for a review's state; webhooks carry them in lower case (docs.github.com/en/webhooks/
# webhook-events-and-payloads#pull_request_review: "state": "approved").
REVIEW_STATES = ("APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING")


@dataclass
class ReviewRecord:
    id: int
    pull_number: int
    user: str
    body: str
    state: str  # one of REVIEW_STATES
    commit_id: str
    submitted_at: float | None  # None while PENDING


@dataclass
class DeploymentStatusRecord:
    id: int
    state: str
    creator: str
    description: str
    environment: str
    target_url: str
    log_url: str
    environment_url: str
    created_at: float


@dataclass
class DeploymentRecord:
    id: int
    sha: str
    ref: str
    task: str
    payload: dict[str, Any] | str
    original_environment: str
    environment: str
    description: str | None
    creator: str
    created_at: float
    updated_at: float
    transient_environment: bool
    production_environment: bool
    statuses: list[DeploymentStatusRecord] = field(default_factory=list)  # oldest first

    @property
    def state(self) -> str | None:
        """The state of the newest status, None before the first."""
        return self.statuses[-1].state if self.statuses else None


@dataclass
class EnvironmentRecord:
    id: int
    name: str
    created_at: float
    updated_at: float


@dataclass
class Protection:
    """Branch protection as ``PUT /repos/{o}/{r}/branches/{branch}/protection`` sets it, the parts the
    stand-in enforces: required status contexts (``checks`` pin a context to an App id), admins bound or
    not, required approving reviews and whether a push dismisses them."""

    branch: str
    contexts: list[str] = field(default_factory=list)
    checks: list[tuple[str, int | None]] = field(default_factory=list)
    strict: bool = False
    enforce_admins: bool = False
    required_approving_review_count: int | None = None  # None: no review rule
    dismiss_stale_reviews: bool = False

    def required_contexts(self) -> list[tuple[str, int | None]]:
        """Every required context with the App id that must set it (None: any source)."""
        pinned = dict(self.checks)
        for context in self.contexts:
            pinned.setdefault(context, None)
        return sorted(pinned.items())


@dataclass
class ManifestRecord:
    """A GitHub App manifest a person confirmed on GitHub, waiting for its one-time ``code`` to be
    exchanged at ``POST /app-manifests/{code}/conversions``."""

    code: str
    manifest: dict[str, Any]
    created_at: float
    used: bool = False
