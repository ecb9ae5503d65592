"""What the GitHub stand-in remembers besides git itself: accounts, tokens, issues and pull requests,
comments, reactions, statuses, labels, reviews, deployments, branch protection, App manifests, webhook
deliveries, and the App's and repository's settings.

Plain records and one container, ``GitHubState``, shared by the route modules. Git refs and objects
are not mirrored here: they live in the bare repository (``GitStore``) and are read from it. Lists that
GitHub serves from lagging replicas read through ``GitHubState.lag`` (``github_lag``).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.app_manifest import default_events, default_permissions
from bot.sandbox.github_lag import ReadLag
from bot.sandbox.github_records import (
    DeploymentRecord,
    EnvironmentRecord,
    ManifestRecord,
    Protection,
    ReviewRecord,
)
from bot.sandbox.gitstore import GitStore

Permission = Literal["admin", "maintain", "write", "triage", "read", "none"]
PERMISSIONS: tuple[str, ...] = ("admin", "maintain", "write", "triage", "read", "none")
BOT_LOGIN = "ferry-sandbox[bot]"
APP_SLUG = "ferry-sandbox"
# GitHub's merge and web-flow commits are committed by this identity.
GITHUB_COMMITTER = ("GitHub", "noreply@github.com")
# What the sandbox App is granted and subscribes to: what Ferry's App manifest asks for
# (``bot.app_manifest``, as ``ferry app create`` registers it), without the optional ``administration``,
# so branch protection answers 403 until a test grants it (``set_app_permissions``).
APP_PERMISSIONS = default_permissions(optional=False)
APP_EVENTS = default_events()


@dataclass
class Account:
    login: str
    id: int
    type: Literal["User", "Bot", "Organization"] = "User"
    permission: str = "none"
    teams: list[str] = field(default_factory=list)

    @property
    def email(self) -> str:
        return f"{self.id}+{self.login}@users.noreply.github.com"


@dataclass
class PullInfo:
    head_ref: str
    base_ref: str
    head_sha: str
    base_sha: str
    merged: bool = False
    merged_at: float | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None


@dataclass
class IssueRecord:
    number: int
    id: int
    title: str
    body: str | None
    user: str
    created_at: float
    updated_at: float
    state: str = "open"
    closed_at: float | None = None
    labels: list[str] = field(default_factory=list)
    comments: int = 0
    pull: PullInfo | None = None


@dataclass
class CommentRecord:
    id: int
    user: str
    body: str
    created_at: float
    updated_at: float
    issue_number: int | None = None  # issue comments
    commit_id: str | None = None  # commit comments
    path: str | None = None
    line: int | None = None
    position: int | None = None


@dataclass
class StatusRecord:
    id: int
    sha: str
    state: str
    context: str
    description: str | None
    target_url: str | None
    creator: str
    created_at: float


@dataclass(frozen=True)
class CloseRequest:
    """A ``PATCH /pulls/{n}`` with ``state: closed``, whatever the pull request's state then. Closing one
    that is already closed (merged) leaves its state as it was, so only this record shows that a client
    asked to close a merged pull request."""

    number: int
    at: float
    merged: bool


@dataclass
class ReactionRecord:
    id: int
    user: str
    content: str
    created_at: float


@dataclass
class Delivery:
    """One webhook sent (or attempted): ``status`` is None when Ferry could not be reached. ``url`` is
    the receiver it went to (one of several replicas, when so set); ``redelivery`` marks a second send
    of the same delivery (same ``delivery_id``), as GitHub's "Redeliver" makes."""

    event: str
    action: str | None
    delivery_id: str
    status: int | None
    time: float
    error: str | None = None
    url: str | None = None
    redelivery: bool = False


@dataclass
class RepoSettings:
    """The repository's merge settings, as ``PATCH /repos/{owner}/{repo}`` sets them on GitHub."""

    allow_merge_commit: bool = True
    allow_squash_merge: bool = True
    allow_rebase_merge: bool = False
    delete_branch_on_merge: bool = False


@dataclass
class Site:
    """Where the stand-in answers: API and web addresses, names and ids of the one repository."""

    owner: str
    repo: str
    repo_id: int
    owner_id: int
    installation_id: int
    app_id: int
    created_at: float
    api: str = "http://127.0.0.1"
    settings: RepoSettings = field(default_factory=RepoSettings)
    app_permissions: dict[str, str] = field(default_factory=lambda: dict(APP_PERMISSIONS))
    app_events: list[str] = field(default_factory=lambda: list(APP_EVENTS))

    @property
    def html(self) -> str:
        return self.api

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.repo}"

    @property
    def repo_api(self) -> str:
        return f"{self.api}/repos/{self.owner}/{self.repo}"

    @property
    def repo_html(self) -> str:
        return f"{self.html}/{self.owner}/{self.repo}"


class GitHubState:
    """Everything the routes read and change; one instance per stand-in."""

    def __init__(self, store: GitStore, site: Site, clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.site = site
        self.clock = clock
        self.ids = itertools.count(1000)
        self.accounts: dict[str, Account] = {}
        self.tokens: dict[str, str] = {}  # personal token -> login
        self.token_key = b""  # signs installation tokens; set from the App key by the stand-in
        self.issues: dict[int, IssueRecord] = {}
        self.comments: dict[int, CommentRecord] = {}
        self.commit_comments: dict[int, CommentRecord] = {}
        self.reactions: dict[tuple[str, int], list[ReactionRecord]] = {}
        self.statuses: dict[str, list[StatusRecord]] = {}
        self.close_requests: list[CloseRequest] = []
        self.label_ids: dict[str, int] = {}
        self.verified: set[str] = set()  # commits GitHub would sign (API commits without custom author)
        self.reviews: dict[int, list[ReviewRecord]] = {}  # by pull request number, oldest first
        self.deployments: dict[int, DeploymentRecord] = {}
        self.environments: dict[str, EnvironmentRecord] = {}
        self.protection: dict[str, Protection] = {}  # by branch name
        self.manifests: dict[str, ManifestRecord] = {}  # by the one-time code of the manifest flow
        self.webhook_secret: str | None = None  # what the App's deliveries are signed with
        self.app_key_pem = ""  # the App's private key (PEM), handed out by the manifest flow
        # Lists GitHub serves from replicas show writes late; off (0 s) unless set.
        self.lag = ReadLag(clock)
        # Writes are serialised so ref updates, their webhooks and PR bookkeeping happen in one order.
        self.write_lock = asyncio.Lock()
        self.emit: Callable[[str, dict[str, Any]], None] = lambda event, payload: None

    def issue_installation_token(self, expires_at: float) -> str:
        """A token that proves itself (expiry + HMAC), so every stand-in sharing the App key accepts it:
        githubkit caches installation tokens process-wide, across stand-ins of successive tests."""
        claim = f"{self.site.installation_id}.{int(expires_at)}"
        return f"ghs_{claim}.{self._token_mac(claim)}"

    def installation_token_valid(self, token: str) -> bool:
        claim, _, mac = token.removeprefix("ghs_").rpartition(".")
        installation, _, expiry = claim.partition(".")
        return (
            token.startswith("ghs_")
            and hmac.compare_digest(mac, self._token_mac(claim))
            and installation == str(self.site.installation_id)
            and expiry.isdigit()
            and int(expiry) > time.time()
        )

    def _token_mac(self, claim: str) -> str:
        return hmac.new(self.token_key, claim.encode(), hashlib.sha256).hexdigest()[:32]

    def next_id(self) -> int:
        return next(self.ids)

    def account(self, login: str) -> Account:
        if login not in self.accounts:
            self.accounts[login] = Account(login, self.next_id())
        return self.accounts[login]

    def account_by_email(self, email: str) -> Account | None:
        for account in self.accounts.values():
            if account.email == email:
                return account
        return None

    def label_id(self, name: str) -> int:
        if name not in self.label_ids:
            self.label_ids[name] = self.next_id()
        return self.label_ids[name]

    def next_issue_number(self) -> int:
        return max(self.issues, default=0) + 1

    def pulls(self) -> list[IssueRecord]:
        return [issue for issue in self.issues.values() if issue.pull is not None]

    def before_issue_write(self, number: int) -> None:
        """Call right before creating or changing issue/PR ``number``, so lagging lists show the old one."""
        self.lag.before_write("issue", number, self.issues.get(number))

    def listed_issues(self) -> list[IssueRecord]:
        """Issues and pull requests as GitHub's list endpoints show them: with ``lag`` set, each one as it
        was that many seconds ago (absent when created since). Use it for every list of issues or pull
        requests (``/issues``, ``/pulls``, ``/commits/{sha}/pulls``); single reads stay current."""
        return self.lag.view("issue", self.issues)

    def listed_pulls(self) -> list[IssueRecord]:
        return [issue for issue in self.listed_issues() if issue.pull is not None]
