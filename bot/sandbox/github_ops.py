"""Shared machinery of the GitHub stand-in's routes: errors, JSON bodies, pagination, who is calling, and
the operations several routes share (rendering issues and pull requests, moving a ref and announcing it).

Every ref update goes through ``GitHubOps.move_ref`` so that a ``push`` webhook and the pull-request
bookkeeping (``synchronize``, closing a PR whose branch was deleted) follow it, as on GitHub.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from typing import Any, TypeVar

from aiohttp import web
from yarl import URL

from bot.sandbox import github_issue_shapes as ishapes
from bot.sandbox import github_payloads as payloads
from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_issue_shapes import PullFacts
from bot.sandbox.github_protection import merge_refusal
from bot.sandbox.github_shapes import Json
from bot.sandbox.github_state import (
    BOT_LOGIN,
    GITHUB_COMMITTER,
    Account,
    GitHubState,
    IssueRecord,
    Site,
    StatusRecord,
)
from bot.sandbox.gitstore import ZERO_SHA, CommitInfo

T = TypeVar("T")
PUSH_COMMITS_CAP = 20  # GitHub lists at most 20 commits in a push delivery
NOT_FOUND = "Not Found"
WEB_FLOW = Account("web-flow", 19864447)  # the account GitHub shows as committer of the commits it makes


class ApiError(Exception):
    """An error answer in GitHub's shape: ``{"message", "documentation_url"[, "errors"]}``."""

    def __init__(self, status: int, message: str, errors: list[Json] | list[str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors

    def response(self) -> web.Response:
        return json_response(shapes.error(self.message, errors=self.errors, status=self.status), self.status)


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def invalid(message: str, resource: str, field: str, code: str = "invalid") -> ApiError:
    return ApiError(422, message, [{"resource": resource, "field": field, "code": code}])


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
        charset="utf-8",
    )


async def read_json(request: web.Request) -> Any:
    if not request.can_read_body:
        return {}
    try:
        return await request.json()
    except ValueError as exc:
        raise ApiError(400, "Problems parsing JSON") from exc


# Who is calling: set by the stand-in's middleware for the handler running in the same task.
CURRENT_ACTOR: ContextVar[Account] = ContextVar("github_standin_actor")
CURRENT_IDENTITY: ContextVar[str] = ContextVar("github_standin_identity", default="anonymous")


def actor(request: web.Request) -> Account:
    return CURRENT_ACTOR.get()


def paginate(request: web.Request, items: Sequence[T]) -> tuple[list[T], dict[str, str]]:
    """Slice ``items`` by ``per_page`` (default 30, at most 100) and ``page``, and build GitHub's RFC 5988
    ``Link`` header (rel next/last, and prev/first after page 1); a page past the end is empty ("Using
    pagination in the REST API", docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api).
    """
    try:
        per_page = max(1, min(100, int(request.query.get("per_page", "30"))))
        page = max(1, int(request.query.get("page", "1")))
    except ValueError as exc:
        raise ApiError(422, "Invalid pagination parameters") from exc
    last = max(1, -(-len(items) // per_page))
    links = []

    def url(number: int) -> str:
        return str(URL(str(request.url)).update_query(page=number, per_page=per_page))

    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
    start = (page - 1) * per_page
    return list(items[start : start + per_page]), ({"Link": ", ".join(links)} if links else {})


class GitHubOps:
    """Operations shared by several route modules, over one ``GitHubState``."""

    def __init__(self, state: GitHubState, owner: Account) -> None:
        self.state = state
        self.owner = owner
        # Run after a push moves an open pull request's head (reviews dismiss stale approvals here).
        self.after_synchronize: list[Callable[[IssueRecord, Account], Awaitable[None]]] = []

    @property
    def site(self) -> Site:
        return self.state.site

    def association(self, account: Account) -> str:
        if account.login == self.owner.login:
            return "OWNER"
        if account.type == "Bot":
            return "NONE"
        if any(team.split("/", 1)[0] == self.owner.login for team in account.teams):
            return "MEMBER"
        return "COLLABORATOR" if account.permission in ("admin", "maintain", "write", "triage") else "NONE"

    def labels(self, names: list[str]) -> list[Json]:
        return [shapes.label(self.site, name, self.state.label_id(name)) for name in names]

    def issue_body(self, record: IssueRecord) -> Json:
        author = self.state.account(record.user)
        return ishapes.issue(self.site, record, author, self.labels(record.labels), self.association(author))

    def latest_statuses(self, sha: str) -> list[StatusRecord]:
        """The newest status of each context on ``sha``, as the combined status counts them."""
        latest: dict[str, StatusRecord] = {}
        for record in self.state.statuses.get(sha, []):
            latest[record.context] = record
        return sorted(latest.values(), key=lambda r: r.context)

    def merge_refusal(self, record: IssueRecord, merger: Account) -> str | None:
        """Why branch protection on the base refuses merging ``record`` now (GitHub's 405 words)."""
        assert record.pull is not None
        return merge_refusal(
            self.state.protection.get(record.pull.base_ref),
            latest=self.latest_statuses(record.pull.head_sha),
            reviews=self.state.reviews.get(record.number, []),
            accounts=self.state.accounts,
            merger=merger,
            app_bot=BOT_LOGIN,
            app_id=self.site.app_id,
        )

    async def commit_or_404(self, rev: str) -> str:
        sha = await self.state.store.resolve_commit(rev)
        if sha is None:
            raise ApiError(404, f"No commit found for SHA: {rev}")
        return sha

    async def pull_facts(self, record: IssueRecord, *, full: bool) -> PullFacts:
        info = record.pull
        assert info is not None
        store = self.state.store
        base_sha = info.base_sha
        if record.state == "open":
            base_sha = await store.get_ref(f"refs/heads/{info.base_ref}") or info.base_sha
        if not full:
            return PullFacts(info.head_sha, base_sha)
        mergeable: bool | None = None
        mergeable_state = "unknown"
        if record.state == "open":
            mergeable = await store.merge_tree(base_sha, info.head_sha) is not None
            checks = ishapes.combined_state(self.latest_statuses(info.head_sha))
            # GitHub says "blocked" when protection refuses the merge, "unstable" when it could merge
            # but a (non-required) status is not green.
            unstable = self.state.statuses.get(info.head_sha) and checks != "success"
            blocked = self.merge_refusal(record, self.state.account(BOT_LOGIN)) is not None
            mergeable_state = (
                "dirty" if not mergeable else "blocked" if blocked else "unstable" if unstable else "clean"
            )
        fork_point = await store.merge_base(base_sha, info.head_sha) if not info.merged else info.base_sha
        commits = await store.rev_list(info.head_sha, exclude=fork_point) if fork_point else []
        changes = await store.diff(fork_point, info.head_sha) if fork_point else []
        return PullFacts(
            info.head_sha,
            base_sha,
            mergeable,
            mergeable_state,
            len(commits),
            sum(c.additions for c in changes),
            sum(c.deletions for c in changes),
            len(changes),
        )

    def pull_view(self, record: IssueRecord, facts: PullFacts, *, full: bool = True) -> Json:
        assert record.pull is not None
        author = self.state.account(record.user)
        merged_by = self.state.account(record.pull.merged_by) if record.pull.merged_by else None
        return ishapes.pull(
            self.site,
            record,
            author=author,
            owner=self.owner,
            labels=self.labels(record.labels),
            association=self.association(author),
            facts=facts,
            merged_by=merged_by,
            full=full,
        )

    async def pull_body(self, record: IssueRecord, *, full: bool = True) -> Json:
        return self.pull_view(record, await self.pull_facts(record, full=full), full=full)

    def usernames(self) -> dict[str, str]:
        """Commit e-mail -> login, as push deliveries name people (GitHub's own commits are web-flow's)."""
        return {GITHUB_COMMITTER[1]: WEB_FLOW.login} | {
            a.email: a.login for a in self.state.accounts.values()
        }

    def github_user(self, email: str) -> Json | None:
        account = WEB_FLOW if email == GITHUB_COMMITTER[1] else self.state.account_by_email(email)
        return shapes.user(self.site, account) if account else None

    async def commit_body(self, sha: str, *, files: bool) -> Json:
        store = self.state.store
        info = await store.read_commit(sha)
        changes = await store.diff(info.parents[0] if info.parents else None, sha) if files else None
        count = sum(1 for c in self.state.commit_comments.values() if c.commit_id == sha)
        return shapes.commit(
            self.site,
            info,
            verified=sha in self.state.verified,
            author=self.github_user(info.author.email),
            committer=self.github_user(info.committer.email),
            files=changes,
            comment_count=count,
        )

    async def pushed_commits(self, ref: str, before: str, after: str) -> list[payloads.PushedCommit]:
        store = self.state.store
        if after == ZERO_SHA:
            return []
        exclude = before if before != ZERO_SHA else None
        if exclude is None and ref != "refs/heads/main":
            exclude = await store.get_ref("refs/heads/main")
        shas = await store.rev_list(after, exclude=exclude, limit=PUSH_COMMITS_CAP)
        commits = []
        for sha in reversed(shas):
            info: CommitInfo = await store.read_commit(sha)
            changes = await store.diff(info.parents[0] if info.parents else None, sha)
            commits.append(payloads.PushedCommit(info, changes))
        return commits

    async def move_ref(
        self,
        ref: str,
        new: str | None,
        sender: Account,
        *,
        expect: str | None = None,
        forced: bool = False,
        notify: bool = True,
    ) -> str:
        """Create, move (``new`` sha) or delete (``new`` None) ``ref``; announce it as GitHub would.

        Returns the previous sha (``ZERO_SHA`` when the ref is new). ``expect`` makes the update
        conditional on the current value, like a lease.
        """
        store = self.state.store
        before = await store.get_ref(ref) or ZERO_SHA
        if expect is not None and before != expect:
            raise ApiError(409, f"Reference {ref} moved; expected {expect}")
        if new is None:
            await store.delete_ref(ref)
        else:
            await store.update_ref(ref, new, before)
        after = new or ZERO_SHA
        if notify:
            usernames = self.usernames()
            commits = await self.pushed_commits(ref, before, after)
            self.state.emit(
                "push",
                payloads.push(
                    self.site,
                    self.owner,
                    sender,
                    ref=ref,
                    before=before,
                    after=after,
                    forced=forced,
                    commits=commits,
                    usernames=usernames,
                    pushed_at=self.state.clock(),
                ),
            )
        if ref.startswith("refs/heads/"):
            await self._follow_branch(ref.removeprefix("refs/heads/"), before, new, sender)
        return before

    async def _follow_branch(self, branch: str, before: str, new: str | None, sender: Account) -> None:
        now = self.state.clock()
        for record in self.state.pulls():
            info = record.pull
            assert info is not None
            if record.state != "open" or info.head_ref != branch:
                continue
            self.state.before_issue_write(record.number)
            if new is None:
                # GitHub closes a pull request whose head branch is deleted.
                info.base_sha = await self.state.store.get_ref(f"refs/heads/{info.base_ref}") or info.base_sha
                record.state, record.closed_at, record.updated_at = "closed", now, now
                self.emit_pull("closed", record, sender, await self.pull_body(record))
            else:
                info.head_sha = new
                record.updated_at = now
                self.emit_pull(
                    "synchronize", record, sender, await self.pull_body(record), before=before, after=new
                )
                for hook in self.after_synchronize:
                    await hook(record, sender)

    def emit_pull(self, action: str, record: IssueRecord, sender: Account, body: Json, **extra: Any) -> None:
        self.state.emit(
            "pull_request", payloads.pull_request(self.site, self.owner, sender, action, body, **extra)
        )
