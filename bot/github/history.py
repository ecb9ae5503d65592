"""Commit history of one repository, as verification needs it: which commits changed a path, which pull
request brought a commit to the default branch, and how two commits stand to each other.

Everything here is keyed by commit SHAs, which never change, so answers are cached for the life of the
process (bounded): an idle repository costs only the path-history reads, which are conditional requests.

- ``path_history``: ``GET /repos/{o}/{r}/commits?sha=<head>&path=<p>`` lists the commits that changed ``p``
  with git's default history simplification, so a merged pull request shows as its own commit (the PR's
  head), not as the merge commit (docs.github.com/rest/commits/commits#list-commits);
- ``merged_pull``: ``GET /repos/{o}/{r}/commits/{sha}/pulls`` "lists the merged pull request that introduced
  the commit to the repository" (docs.github.com/rest/commits/commits#list-pull-requests-associated-with-a-
  commit); its ``merge_commit_sha`` is the commit on the default branch's first-parent line;
- ``relation``: ``GET /repos/{o}/{r}/compare/{base}...{head}``: ``status`` is ``identical``, ``ahead`` (head
  descends from base), ``behind`` or ``diverged``, and ``files`` lists the files changed between them, up to
  300 (docs.github.com/rest/commits/commits#compare-two-commits).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from bot.core.argo_app import Relation
from bot.github.client import call

COMPARE_FILES_LIMIT = 300  # GitHub lists at most this many files in a comparison
CACHE_SIZE = 2048
STATUSES_PER_PAGE = 100  # GitHub's most per page
K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True)
class PathCommit:
    """One commit of a path's history: what GitHub lists for it."""

    sha: str
    message: str
    committed_at: datetime | None


@dataclass(frozen=True)
class MergedPull:
    """The pull request that brought a commit to the default branch."""

    number: int
    url: str
    head_ref: str
    head_sha: str
    merge_commit_sha: str
    merged_at: datetime | None
    labels: tuple[str, ...]


class _Cache(Generic[K, V]):
    """A small LRU map: enough for every commit a process meets in a day, never unbounded."""

    def __init__(self, size: int = CACHE_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        if key in self._items:
            self._items.move_to_end(key)
            return self._items[key]
        return None

    def put(self, key: K, value: V) -> V:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return value


class RepoHistory:
    """History reads of one repository (``rest`` is an installation's githubkit REST namespace)."""

    def __init__(self, rest: Any, owner: str, name: str) -> None:
        self.rest = rest
        self.owner = owner
        self.name = name
        self._pulls: _Cache[tuple[str, str], MergedPull] = _Cache()
        self._direct: _Cache[tuple[str, str], bool] = _Cache()  # (sha, head) known to have no merged PR
        self._relations: _Cache[tuple[str, str, frozenset[str]], Relation] = _Cache()

    async def path_history(self, path: str, head: str, limit: int) -> list[PathCommit]:
        """The newest ``limit`` commits reachable from ``head`` (a SHA) that changed ``path``."""
        commits = await call(
            f"reading the history of {path}",
            self.rest.repos.async_list_commits(self.owner, self.name, sha=head, path=path, per_page=limit),
        )
        found = []
        for commit in commits.parsed_data:
            committer = commit.commit.committer
            when = getattr(committer, "date", None) if committer else None
            found.append(PathCommit(commit.sha, commit.commit.message, _time(when)))
        return found

    async def merged_pull(self, sha: str, default_branch: str, head: str) -> MergedPull | None:
        """The pull request merged into ``default_branch`` that brought ``sha``, or None (a direct push).

        A found pull request is cached for good; "none" only until the branch's ``head`` moves, because
        GitHub may associate a fresh merge with its pull request a moment after the merge.
        """
        cached = self._pulls.get((sha, default_branch))
        if cached is not None:
            return cached
        if self._direct.get((sha, head)):
            return None
        pulls = await call(
            f"finding the pull request that brought {sha[:7]}",
            self.rest.repos.async_list_pull_requests_associated_with_commit(
                self.owner, self.name, sha, per_page=100
            ),
        )
        merged = [
            p
            for p in pulls.parsed_data
            if p.merged_at and p.merge_commit_sha and p.base.ref == default_branch
        ]
        if not merged:
            self._direct.put((sha, head), True)
            return None
        pr = min(merged, key=lambda p: str(p.merged_at))  # the first merge brought it
        found = MergedPull(
            number=pr.number,
            url=pr.html_url,
            head_ref=pr.head.ref,
            head_sha=pr.head.sha,
            merge_commit_sha=pr.merge_commit_sha,
            merged_at=_time(pr.merged_at),
            labels=tuple(label.name for label in pr.labels),
        )
        return self._pulls.put((sha, default_branch), found)

    async def relation(self, base: str, head: str, paths: Collection[str]) -> Relation:
        """How commit ``head`` stands to commit ``base``, and whether any of ``paths`` changed between them.

        ``same`` (identical), ``equivalent`` (head descends from base and no path changed), ``moved_on``
        (head descends from base and a path changed), ``behind`` (head is an ancestor of base), ``diverged``.
        """
        key = (base, head, frozenset(paths))
        cached = self._relations.get(key)
        if cached is not None:
            return cached
        comparison = await call(
            f"comparing {base[:7]}...{head[:7]}",
            self.rest.repos.async_compare_commits(self.owner, self.name, f"{base}...{head}", per_page=1),
        )
        data = comparison.parsed_data
        status = str(data.status)
        relation: Relation
        if status == "identical":
            relation = "same"
        elif status == "behind":
            relation = "behind"
        elif status == "ahead":
            changed = {f.filename for f in data.files or ()}
            if changed & set(paths):
                relation = "moved_on"
            elif len(changed) >= COMPARE_FILES_LIMIT:
                relation = (
                    "moved_on" if await self._changed_beyond_listing(base, head, paths) else "equivalent"
                )
            else:
                relation = "equivalent"
        else:
            relation = "diverged"
        return self._relations.put(key, relation)

    async def pending_since(self, sha: str, context: str) -> datetime | None:
        """When the current run of ``pending`` statuses of ``context`` on ``sha`` began: the oldest of the
        pending statuses posted since the last other state (``GET /commits/{ref}/statuses`` lists them
        newest first, at most 100 a page; docs.github.com/rest/commits/statuses#list-commit-statuses-for-a-
        reference). Read page after page until that other state, or the list, ends: other contexts' statuses
        may push the run's start past the first page."""
        since = None
        page = 1
        while True:
            listed = await call(
                f"reading the statuses of {sha[:7]}",
                self.rest.repos.async_list_commit_statuses_for_ref(
                    self.owner, self.name, sha, per_page=STATUSES_PER_PAGE, page=page
                ),
            )
            for status in listed.parsed_data:
                if status.context != context:
                    continue
                if status.state != "pending":
                    return since
                since = _time(status.created_at)
            if len(listed.parsed_data) < STATUSES_PER_PAGE:
                return since
            page += 1

    async def _changed_beyond_listing(self, base: str, head: str, paths: Collection[str]) -> bool:
        """GitHub listed only the first 300 changed files: compare the paths' blobs in both trees."""
        before = await self._blobs(base, paths)
        after = await self._blobs(head, paths)
        return before != after

    async def _blobs(self, commit: str, paths: Collection[str]) -> dict[str, str]:
        tree = await call(
            f"listing files of {commit[:7]}",
            self.rest.git.async_get_tree(self.owner, self.name, commit, recursive="1"),
        )
        wanted = set(paths)
        return {str(e.path): str(e.sha) for e in tree.parsed_data.tree if e.path in wanted}


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
