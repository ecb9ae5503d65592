"""Repository-wide comment lists of the GitHub stand-in, for finding comments nobody answered yet:

- ``GET /repos/{o}/{r}/issues/comments``: issue and pull request comments, "ordered by ascending ID" by
  default; ``sort`` created|updated with ``direction`` ("Ignored without the sort parameter"), ``since``
  ("Only show results that were last updated after the given time"), paginated
  (docs.github.com/en/rest/issues/comments#list-issue-comments-for-a-repository).
- ``GET /repos/{o}/{r}/comments``: commit comments, "ordered by ascending ID", paginated
  (docs.github.com/en/rest/commits/comments#list-commit-comments-for-a-repository).
"""

from __future__ import annotations

from aiohttp import web

from bot.sandbox import github_issue_shapes as ishapes
from bot.sandbox import github_listing as listing
from bot.sandbox.github_ops import GitHubOps, json_response, paginate
from bot.sandbox.github_shapes import Json
from bot.sandbox.github_state import CommentRecord

REPO = "/repos/{owner}/{repo}"


class CommentRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(REPO + "/issues/comments", self.issue_comments)
        router.add_get(REPO + "/comments", self.commit_comments)

    def _body(self, record: CommentRecord, kind: str) -> Json:
        author = self.state.account(record.user)
        reactions = self.state.reactions.get((kind, record.id), [])
        build = ishapes.issue_comment if kind == "issue" else ishapes.commit_comment
        return build(self.ops.site, record, author, self.ops.association(author), reactions)

    async def issue_comments(self, request: web.Request) -> web.Response:
        after = listing.since(request)
        matching = [c for c in self.state.comments.values() if after is None or c.updated_at >= after]
        if "sort" in request.query:
            found = listing.ordered(
                request,
                matching,
                {"created": lambda c: (c.created_at, c.id), "updated": lambda c: (c.updated_at, c.id)},
                default_sort="created",
                default_direction=lambda sort: "desc",  # no default documented: callers should say
            )
        else:
            found = sorted(matching, key=lambda c: c.id)
        page, headers = paginate(request, found)
        return json_response([self._body(c, "issue") for c in page], headers=headers)

    async def commit_comments(self, request: web.Request) -> web.Response:
        found = sorted(self.state.commit_comments.values(), key=lambda c: c.id)
        page, headers = paginate(request, found)
        return json_response([self._body(c, "commit") for c in page], headers=headers)
