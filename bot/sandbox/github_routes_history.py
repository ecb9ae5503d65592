"""History routes of the GitHub stand-in: the pull requests associated with a commit, and the comparison of
two commits, computed from the bare repository as GitHub computes them.

- ``GET /repos/{o}/{r}/commits/{commit_sha}/pulls`` "lists the merged pull request that introduced the
  commit to the repository. If the commit is not present in the default branch, will only return open pull
  requests associated with the commit" (docs.github.com/rest/commits/commits#list-pull-requests-associated-
  with-a-commit). A pull request introduced a commit when the commit is its merge (or squash) commit, or one
  of its own commits: reachable from its head, not from the base it was merged into.
- ``GET /repos/{o}/{r}/compare/{basehead}`` with ``basehead`` = ``BASE...HEAD`` (docs.github.com/rest/commits/
  commits#compare-two-commits): ``status`` ``identical`` / ``ahead`` / ``behind`` / ``diverged`` with
  ``ahead_by`` and ``behind_by``; ``commits`` are those reachable from HEAD and not from BASE, oldest
  first (at most 250 without paging parameters); ``files`` is the diff from the merge base to HEAD
  ("three-dot"), at most 300 files, and only on the first page when paging. An unknown BASE or HEAD
  answers 404.
"""

from __future__ import annotations

from aiohttp import web

from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_ops import ApiError, GitHubOps, json_response, not_found, paginate
from bot.sandbox.github_state import IssueRecord

REPO = "/repos/{owner}/{repo}"
COMPARE_COMMITS_LIMIT = 250
COMPARE_FILES_LIMIT = 300
DEFAULT_BRANCH_REF = "refs/heads/main"


class HistoryRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state
        self.store = ops.state.store

    def register(self, router: web.UrlDispatcher) -> None:
        """Before the catch-all ``/commits/{ref:.+}``, which would otherwise take ``<sha>/pulls``."""
        router.add_get(REPO + "/commits/{commit_sha:[0-9a-fA-F]{4,40}}/pulls", self.commit_pulls)
        router.add_get(REPO + "/compare/{basehead:.+}", self.compare)

    async def commit_pulls(self, request: web.Request) -> web.Response:
        rev = request.match_info["commit_sha"]
        sha = await self.store.resolve_commit(rev)
        if sha is None:
            raise ApiError(422, f"No commit found for SHA: {rev}")
        head = await self.store.get_ref(DEFAULT_BRANCH_REF)
        on_default = head is not None and await self.store.is_ancestor(sha, head)
        found: list[IssueRecord] = []
        for record in sorted(self.state.pulls(), key=lambda r: r.number):
            info = record.pull
            assert info is not None
            if on_default:
                if not info.merged or f"refs/heads/{info.base_ref}" != DEFAULT_BRANCH_REF:
                    continue
            elif record.state != "open":
                continue
            if await self._introduced(record, sha):
                found.append(record)
        found.sort(key=lambda r: (r.pull.merged_at or 0.0) if r.pull else 0.0)
        page, headers = paginate(request, found)
        return json_response([await self.ops.pull_body(r, full=False) for r in page], headers=headers)

    async def _introduced(self, record: IssueRecord, sha: str) -> bool:
        info = record.pull
        assert info is not None
        if info.merge_commit_sha == sha:
            return True
        if not await self.store.is_ancestor(sha, info.head_sha):
            return False
        return not await self.store.is_ancestor(sha, info.base_sha)

    async def compare(self, request: web.Request) -> web.Response:
        base_rev, sep, head_rev = request.match_info["basehead"].partition("...")
        if not sep or not base_rev or not head_rev:
            raise not_found()
        base = await self.store.resolve_commit(base_rev)
        head = await self.store.resolve_commit(head_rev)
        if base is None or head is None:
            raise not_found()
        merge_base = await self.store.merge_base(base, head)
        ahead = await self.store.rev_list(head, exclude=base)
        behind = await self.store.rev_list(base, exclude=head)
        if ahead and behind:
            status = "diverged"
        elif ahead:
            status = "ahead"
        elif behind:
            status = "behind"
        else:
            status = "identical"
        paged = "page" in request.query or "per_page" in request.query
        oldest_first = list(reversed(ahead))
        if paged:
            listed, headers = paginate(request, oldest_first)
        else:
            listed, headers = oldest_first[-COMPARE_COMMITS_LIMIT:], {}
        changes = await self.store.diff(merge_base, head) if merge_base else []
        first_page = request.query.get("page", "1") == "1"
        site = self.ops.site
        body = {
            "url": f"{site.repo_api}/compare/{base_rev}...{head_rev}",
            "html_url": f"{site.repo_html}/compare/{base_rev}...{head_rev}",
            "permalink_url": f"{site.repo_html}/compare/{site.owner}:{base[:7]}...{site.owner}:{head[:7]}",
            "diff_url": f"{site.repo_html}/compare/{base_rev}...{head_rev}.diff",
            "patch_url": f"{site.repo_html}/compare/{base_rev}...{head_rev}.patch",
            "base_commit": await self.ops.commit_body(base, files=False),
            "merge_base_commit": await self.ops.commit_body(merge_base or base, files=False),
            "status": status,
            "ahead_by": len(ahead),
            "behind_by": len(behind),
            "total_commits": len(ahead),
            "commits": [await self.ops.commit_body(sha, files=False) for sha in listed],
            "files": [shapes.diff_entry(site, head, c) for c in changes[:COMPARE_FILES_LIMIT]]
            if first_page
            else [],
        }
        return json_response(body, headers=headers)
