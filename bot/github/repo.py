"""One repository seen through an installation client: the reads a pass needs and its writes.

Every write looks before it acts, so repeating it (a redelivered webhook, a second replica, a pass
retried after a 502) adopts the first attempt's result instead of duplicating it.
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Literal, cast

from githubkit import GitHub

from bot.command_replies import AppIdentity
from bot.core.actions import ClosePromotion, MergePromotion, OpenPromotion, PostComment, SetStatus
from bot.core.guards import branch_rebuild
from bot.core.promotion import parse_branch
from bot.core.snapshot import CommitStatus, MergedPromotion, PullRequest
from bot.errors import FerryError, GitHubError
from bot.github.client import REST_API_VERSION, call, status_of
from bot.github.comments import PER_PAGE
from bot.github.history import RepoHistory
from bot.github.pulls import RepoPulls

CLOSED_PRS_SCANNED = 50


def closed_marker(number: int) -> str:
    """The marker of the comment Ferry posts on a pull request it closes itself."""
    return f"<!-- ferry:closed:{number} -->"


class BranchMoved(FerryError):
    """A promotion branch's head is no longer the one a rebuild was decided on (``current``: None, gone)."""

    def __init__(self, branch: str, expected: str, current: str | None) -> None:
        super().__init__(f"{branch} is at {(current or 'nothing')[:7]}, not {expected[:7]}")
        self.branch = branch
        self.expected = expected
        self.current = current


class RepoGitHub(RepoPulls):
    """``identity`` tells who the App is (``GitHubApp.identity``): only its comments' markers count."""

    def __init__(
        self,
        client: GitHub[Any],
        full_name: str,
        *,
        identity: Callable[[], Awaitable[AppIdentity]] | None = None,
    ) -> None:
        self.client = client
        self.identity = identity
        self.full_name = full_name
        self.owner, _, self.name = full_name.partition("/")
        self.rest = client.rest(REST_API_VERSION)
        self.history = RepoHistory(self.rest, self.owner, self.name)  # caches live as long as this client
        self._default_branch: str | None = None
        self._trees: dict[str, dict[str, str]] = {}  # commit sha -> {path: blob sha}; commits never change
        self._blobs: dict[str, str] = {}  # blob sha -> text
        self._messages: dict[str, str] = {}  # commit sha -> message
        self._contents: dict[str, tuple[str, tuple[str, ...]]] = {}  # commit sha -> (tree, parents)

    # ---- reads -------------------------------------------------------------------------------
    async def default_branch(self) -> str:
        if self._default_branch is None:
            repo = await call(f"reading {self.full_name}", self.rest.repos.async_get(self.owner, self.name))
            self._default_branch = repo.parsed_data.default_branch
        return self._default_branch

    async def head(self, branch: str) -> str:
        ref = await call(
            f"reading {self.full_name} branch {branch}",
            self.rest.git.async_get_ref(self.owner, self.name, f"heads/{branch}"),
        )
        return str(ref.parsed_data.object_.sha)

    async def branch_head(self, branch: str) -> str | None:
        """The head of ``branch``, or None when there is no such branch (404)."""
        try:
            return await self.head(branch)
        except GitHubError as exc:
            if "404" in str(exc):
                return None
            raise

    async def tree(self, commit_sha: str) -> dict[str, str]:
        if commit_sha not in self._trees:
            tree = await call(
                f"listing files of {self.full_name}@{commit_sha[:7]}",
                self.rest.git.async_get_tree(self.owner, self.name, commit_sha, recursive="1"),
            )
            self._trees = {
                commit_sha: {
                    str(e.path): str(e.sha)
                    for e in tree.parsed_data.tree
                    if e.type == "blob" and e.path and e.sha
                }
            }
        return self._trees[commit_sha]

    async def blob_text(self, sha: str, path: str) -> str:
        if sha not in self._blobs:
            blob = await call(f"reading {path}", self.rest.git.async_get_blob(self.owner, self.name, sha))
            data = blob.parsed_data
            raw = base64.b64decode(data.content) if data.encoding == "base64" else data.content.encode()
            self._blobs[sha] = raw.decode("utf-8", errors="replace")
        return self._blobs[sha]

    async def commit_message(self, sha: str) -> str:
        if sha not in self._messages:
            await self._read_commit(sha)
        return self._messages[sha]

    async def commit_content(self, sha: str) -> tuple[str, tuple[str, ...]]:
        """A commit's tree and parents: two commits with both equal hold the same change on the same base."""
        if sha not in self._contents:
            await self._read_commit(sha)
        return self._contents[sha]

    async def _read_commit(self, sha: str) -> None:
        commit = await call(
            f"reading commit {sha[:7]}", self.rest.git.async_get_commit(self.owner, self.name, sha)
        )
        data = commit.parsed_data
        self._messages[sha] = data.message
        self._contents[sha] = (str(data.tree.sha), tuple(str(p.sha) for p in data.parents))

    async def last_commit(self, path: str, head: str) -> tuple[str, str, datetime | None] | None:
        """The newest commit reachable from ``head`` (a commit SHA: the head a pass pinned, never a branch
        name, which may move between two reads of one pass) that changed ``path``: (sha, message, date)."""
        commits = await call(
            f"reading the history of {path}",
            self.rest.repos.async_list_commits(self.owner, self.name, sha=head, path=path, per_page=1),
        )
        if not commits.parsed_data:
            return None
        commit = commits.parsed_data[0]
        author = commit.commit.committer
        when = getattr(author, "date", None) if author else None
        return commit.sha, commit.commit.message, when

    async def statuses(self, sha: str) -> dict[str, CommitStatus]:
        """The newest status of every context on ``sha``, every page of the combined status.

        ``GET /commits/{ref}/status`` lists at most ``per_page`` (100) contexts a page; ``total_count``
        counts them all (docs.github.com/en/rest/commits/statuses#get-the-combined-status-for-a-specific-
        reference): a commit with more contexts is read page after page, so no gate or verdict hides
        behind a hundred other checks.
        """
        found: dict[str, CommitStatus] = {}
        listed, page = 0, 1
        while True:
            combined = await call(
                f"reading statuses of {sha[:7]}",
                self.rest.repos.async_get_combined_status_for_ref(
                    self.owner, self.name, sha, per_page=PER_PAGE, page=page
                ),
            )
            data = combined.parsed_data
            for status in data.statuses:
                found[status.context] = CommitStatus(
                    context=status.context,
                    state=status.state,
                    description=status.description or "",
                    target_url=status.target_url,
                    created_at=_parse_time(status.created_at),
                    updated_at=_parse_time(status.updated_at),
                )
            listed += len(data.statuses)
            if listed >= data.total_count or len(data.statuses) < PER_PAGE:
                return found
            page += 1

    async def open_promotions(self) -> list[PullRequest]:
        """Ferry's open promotions, from every page of the open pull requests: in a repository with
        hundreds of Renovate or Dependabot pull requests an older promotion is on a later page, and missing
        it would open it again (and force its branch) on every pass."""
        pulls = await self._every_page(
            f"listing open pull requests of {self.full_name}",
            self.rest.pulls.async_list,
            owner=self.owner,
            repo=self.name,
            state="open",
        )
        found = []
        for pr in pulls:
            parsed = parse_branch(pr.head.ref)
            head_repo = pr.head.repo.full_name if pr.head.repo else None
            if parsed is None or head_repo != self.full_name:
                continue  # not Ferry's, or from a fork
            stage, freight_id = parsed
            found.append(
                PullRequest(
                    number=pr.number,
                    url=pr.html_url,
                    branch=pr.head.ref,
                    stage=stage,
                    freight_id=freight_id,
                    head_sha=pr.head.sha,
                    title=pr.title,
                    body=pr.body or "",
                    labels=tuple(label.name for label in pr.labels),
                    statuses=await self.statuses(pr.head.sha),
                    author=pr.user.login if pr.user else "",
                    updated_at=_parse_time(pr.updated_at),
                )
            )
        return found

    async def merged_promotions(self) -> list[MergedPromotion]:
        pulls = await call(
            f"listing closed pull requests of {self.full_name}",
            self.rest.pulls.async_list(
                self.owner,
                self.name,
                state="closed",
                sort="updated",
                direction="desc",
                per_page=CLOSED_PRS_SCANNED,
            ),
        )
        found = []
        for pr in pulls.parsed_data:
            parsed = parse_branch(pr.head.ref)
            if parsed is None or not pr.merged_at or not pr.merge_commit_sha:
                continue
            found.append(
                MergedPromotion(
                    number=pr.number,
                    url=pr.html_url,
                    stage=parsed[0],
                    freight_id=parsed[1],
                    head_sha=pr.head.sha,
                    merge_commit_sha=pr.merge_commit_sha,
                    merged_at=_parse_time(pr.merged_at),
                    labels=tuple(label.name for label in pr.labels),
                )
            )
        return found

    async def pull_for_branch(self, branch: str) -> tuple[int, str] | None:
        pulls = await call(
            f"finding the pull request for {branch}",
            self.rest.pulls.async_list(self.owner, self.name, state="open", head=f"{self.owner}:{branch}"),
        )
        for pr in pulls.parsed_data:
            if pr.head.ref == branch:
                return pr.number, pr.html_url
        return None

    async def refused_promotion(self, branch: str) -> tuple[int, str] | None:
        """``(number, url)`` of the newest pull request of ``branch`` when a person closed it unmerged.

        ``GET /pulls?state=closed&head=owner:branch`` lists newest first (GitHub's default ``sort=created``,
        ``direction=desc``: docs.github.com/en/rest/pulls/pulls#list-pull-requests). The newest decides:
        merged is no refusal, nor is a close Ferry made itself (its comment carries ``ferry:closed``).
        """
        pulls = await call(
            f"looking for a closed pull request of {branch}",
            self.rest.pulls.async_list(
                self.owner, self.name, state="closed", head=f"{self.owner}:{branch}", per_page=10
            ),
        )
        newest = next((pr for pr in pulls.parsed_data if pr.head.ref == branch), None)
        if newest is None or newest.merged_at:
            return None
        if await self._marked(await self.thread_comments(newest.number), closed_marker(newest.number)):
            return None
        return newest.number, newest.html_url

    async def permission(self, login: str) -> str:
        """admin | maintain | write | triage | read | none."""
        try:
            response = await call(
                f"reading {login}'s permission",
                self.rest.repos.async_get_collaborator_permission_level(self.owner, self.name, login),
            )
        except GitHubError as exc:
            if "404" in str(exc):
                return "none"
            raise
        data = response.parsed_data
        role = getattr(data, "role_name", None)
        return str(role if role in ("maintain", "triage") else data.permission)

    async def team_member(self, org: str, team: str, login: str) -> bool:
        try:
            response = await call(
                f"reading {login}'s membership of {org}/{team}",
                self.rest.teams.async_get_membership_for_user_in_org(org, team, login),
            )
        except GitHubError as exc:
            if "404" in str(exc):
                return False
            raise
        return bool(response.parsed_data.state == "active")

    # ---- writes ------------------------------------------------------------------------------
    async def open_promotion(self, action: OpenPromotion) -> tuple[int, str]:
        """Branch + one commit through the Git Data API (no clone), then the PR: five requests."""
        tree = await call(
            f"writing the tree for {action.branch}",
            self.rest.git.async_create_tree(
                self.owner,
                self.name,
                data={
                    "base_tree": action.base_sha,
                    "tree": [
                        {"path": path, "mode": "100644", "type": "blob", "content": text}
                        for path, text in action.files
                    ],
                },
            ),
        )
        commit = await call(
            f"writing the commit for {action.branch}",
            self.rest.git.async_create_commit(
                self.owner,
                self.name,
                data={"message": action.message, "tree": tree.parsed_data.sha, "parents": [action.base_sha]},
            ),
        )
        sha = commit.parsed_data.sha
        content = (str(tree.parsed_data.sha), (action.base_sha,))
        if action.expected_head is not None:
            # PATCH git/refs takes no expected old SHA: read the ref right before forcing it, so a commit
            # a person pushed to the branch since the pass looked is never thrown away, nor one another
            # replica just wrote for this very rebuild (the same tree on the same base: adopted as it is).
            current = await self.branch_head(action.branch)
            if current != action.expected_head and not await self._holds(current, content):
                raise BranchMoved(action.branch, action.expected_head, current)
        await self._point_branch(action.branch, sha, action.stage, content)
        if action.rebuild_pr is not None:
            await call(
                f"updating #{action.rebuild_pr}",
                self.rest.pulls.async_update(
                    self.owner,
                    self.name,
                    action.rebuild_pr,
                    data={"title": action.title, "body": action.body},
                ),
            )
            return action.rebuild_pr, ""
        number, url = await self._create_or_adopt_pull(action)
        await call(
            f"labelling #{number}",
            self.rest.issues.async_add_labels(
                self.owner, self.name, number, data={"labels": list(action.labels)}
            ),
        )
        return number, url

    async def _holds(self, head: str | None, content: tuple[str, tuple[str, ...]]) -> bool:
        """Whether the commit ``head`` is the one about to be written, in all but its SHA (its tree and
        parents are ``content``): the same promotion, written by another replica (or an earlier try)."""
        return head is not None and await self.commit_content(head) == content

    async def _point_branch(
        self, branch: str, sha: str, stage: str, content: tuple[str, tuple[str, ...]]
    ) -> None:
        try:
            await call(
                f"creating branch {branch}",
                self.rest.git.async_create_ref(
                    self.owner, self.name, data={"ref": f"refs/heads/{branch}", "sha": sha}
                ),
            )
        except GitHubError as exc:
            if "422" not in str(exc):
                raise
            # A half-made earlier attempt, or another replica opening the same promotion, left the branch:
            # point it at the fresh commit, unless a person's commit is on top by now (a replica that
            # decided before the branch existed must not force it away; the caller keeps it and says so).
            # The same promotion written by another replica a moment ago (or by an earlier attempt): its
            # commit is adopted, never forced over: to force would throw away what another replica just
            # pushed, for a commit that differs only in its timestamp.
            current = await self.branch_head(branch)
            if current is not None:
                message = await self.commit_message(current)
                if branch_rebuild(stage, current, current, message) == "foreign":
                    raise BranchMoved(branch, sha, current) from exc
                if await self._holds(current, content):
                    return
            await call(
                f"updating branch {branch}",
                self.rest.git.async_update_ref(
                    self.owner, self.name, f"heads/{branch}", data={"sha": sha, "force": True}
                ),
            )

    async def _create_or_adopt_pull(self, action: OpenPromotion) -> tuple[int, str]:
        base = await self.default_branch()
        try:
            pr = await call(
                f"opening the pull request for {action.branch}",
                self.rest.pulls.async_create(
                    self.owner,
                    self.name,
                    data={"title": action.title, "head": action.branch, "base": base, "body": action.body},
                ),
            )
        except GitHubError as exc:
            if "422" not in str(exc):
                raise
            existing = await self.pull_for_branch(action.branch)
            if existing is None:
                raise
            return existing
        return pr.parsed_data.number, pr.parsed_data.html_url

    async def add_labels(self, number: int, labels: tuple[str, ...]) -> None:
        await call(
            f"labelling #{number}",
            self.rest.issues.async_add_labels(self.owner, self.name, number, data={"labels": list(labels)}),
        )

    async def close_promotion(self, action: ClosePromotion, link: str | None) -> None:
        comment = action.comment if link is None else f"{action.comment.rstrip('.')}: {link}"
        await self.comment_once(action.number, comment, marker=closed_marker(action.number))
        await call(
            f"closing #{action.number}",
            self.rest.pulls.async_update(self.owner, self.name, action.number, data={"state": "closed"}),
        )

    async def merge(self, action: MergePromotion) -> str:
        result = await call(
            f"merging #{action.number}",
            self.rest.pulls.async_merge(
                self.owner, self.name, action.number, data={"sha": action.head_sha, "merge_method": "merge"}
            ),
        )
        return str(result.parsed_data.sha)

    async def set_status(self, action: SetStatus) -> None:
        state = cast(Literal["error", "failure", "pending", "success"], action.state)
        await call(
            f"setting {action.context} on {action.sha[:7]}",
            self.rest.repos.async_create_commit_status(
                self.owner,
                self.name,
                action.sha,
                state=state,
                description=action.description,
                context=action.context,
                target_url=action.target_url,
            ),
        )

    async def post_comment(self, action: PostComment) -> bool:
        """Post the comment unless the App's comment with its marker is there; whether it was posted."""
        return await self.comment_once(action.number, action.body, marker=action.marker)

    # ---- comment commands (bot.command_runner) -----------------------------------------------
    async def pull_state(self, number: int) -> tuple[str, bool]:
        """A pull request's ``state`` (open, closed) and whether it was merged, as GitHub says now."""
        pull = await call(f"reading #{number}", self.rest.pulls.async_get(self.owner, self.name, number))
        return str(pull.parsed_data.state), bool(pull.parsed_data.merged)

    async def pull_head_repo(self, number: int) -> str | None:
        """The full name of the repository a pull request's head branch lives in (None: deleted fork);
        this repository's for an issue that is no pull request (``GET /pulls/{n}`` answers 404)."""
        try:
            pull = await call(f"reading #{number}", self.rest.pulls.async_get(self.owner, self.name, number))
        except GitHubError as exc:
            if isinstance(exc.__cause__, Exception) and status_of(exc.__cause__) == 404:
                return self.full_name
            raise
        repo = pull.parsed_data.head.repo
        return repo.full_name if repo else None


def _parse_time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
