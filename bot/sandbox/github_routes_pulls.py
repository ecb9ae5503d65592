"""Pull-request routes of the GitHub stand-in: list, open, read, edit, merge (a real merge, squash or
rebase made with ``git merge-tree``, within the repository's merge settings and the base branch's
protection), and the files a pull request changes."""

from __future__ import annotations

from aiohttp import web

from bot.sandbox import github_listing as listing
from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_ops import (
    ApiError,
    GitHubOps,
    actor,
    invalid,
    json_response,
    not_found,
    paginate,
    read_json,
)
from bot.sandbox.github_state import GITHUB_COMMITTER, Account, CloseRequest, IssueRecord, PullInfo
from bot.sandbox.gitstore import Signature

REPO = "/repos/{owner}/{repo}"
NOT_MERGEABLE = "Pull Request is not mergeable"
# PUT /pulls/{n}/merge with a ``sha`` that is no longer the head: 409 with these words (the endpoint's
# OpenAPI description, response "409 Conflict if sha was provided and pull request head did not match").
HEAD_MODIFIED = "Head branch was modified. Review and try the merge again."
# A merge method the repository's settings turn off ("Configuring pull request merges", docs.github.com/en/
# repositories/configuring-branches-and-merges-in-your-repository/configuring-pull-request-merges) answers
# 405 in these words (as GitHub answers them and clients such as Mergify match them).
METHOD_NOT_ALLOWED = {
    "merge": "Merge commits are not allowed on this repository.",
    "squash": "Squash merges are not allowed on this repository.",
    "rebase": "Rebase merges are not allowed on this repository.",
}
LONG_RUNNING = 30 * 86400.0  # "open for more than a month and have had activity within the past month"
MERGED = "Pull Request successfully merged"
DUPLICATE = "A pull request already exists for {owner}:{branch}."


class PullRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state
        self.store = ops.state.store

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(REPO + "/pulls", self.list_pulls)
        router.add_post(REPO + "/pulls", self.create_pull)
        router.add_get(REPO + "/pulls/{pull_number:\\d+}", self.get_pull)
        router.add_patch(REPO + "/pulls/{pull_number:\\d+}", self.update_pull)
        router.add_put(REPO + "/pulls/{pull_number:\\d+}/merge", self.merge_pull)
        router.add_get(REPO + "/pulls/{pull_number:\\d+}/files", self.list_files)

    def _pull(self, request: web.Request) -> IssueRecord:
        record = self.state.issues.get(int(request.match_info["pull_number"]))
        if record is None or record.pull is None:
            raise not_found()
        return record

    def _branch(self, value: str) -> str:
        owner, sep, branch = value.partition(":")
        return branch if sep and owner == self.ops.site.owner else value if not sep else ""

    async def list_pulls(self, request: web.Request) -> web.Response:
        # A list: served with the read-after-write lag, if set (github_lag).
        wanted = request.query.get("state", "open")
        head = request.query.get("head")
        base = request.query.get("base")
        matching = []
        now = self.state.clock()
        for record in self.state.listed_pulls():
            assert record.pull is not None
            if wanted not in ("all", record.state):
                continue
            if head is not None and record.pull.head_ref != self._branch(head):
                continue
            if base is not None and record.pull.base_ref != base:
                continue
            if request.query.get("sort") == "long-running" and not (
                record.state == "open"
                and now - record.created_at > LONG_RUNNING
                and now - record.updated_at < LONG_RUNNING
            ):
                continue
            matching.append(record)
        # docs.github.com/en/rest/pulls/pulls#list-pull-requests: sort created (default), updated,
        # popularity (comments) or long-running; "direction: Default: desc when sort is created or sort
        # is not specified, otherwise asc."
        found = listing.ordered(
            request,
            matching,
            {
                "created": lambda r: (r.created_at, r.number),
                "updated": lambda r: (r.updated_at, r.number),
                "popularity": lambda r: (r.comments, r.number),
                "long-running": lambda r: (r.created_at, r.number),
            },
            default_sort="created",
            default_direction=lambda sort: "desc" if sort == "created" else "asc",
        )
        page, headers = paginate(request, found)
        return json_response([await self.ops.pull_body(r, full=False) for r in page], headers=headers)

    async def create_pull(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        title, head, base = body.get("title"), body.get("head"), body.get("base")
        if not isinstance(title, str) or not title:
            raise invalid("Validation Failed", "PullRequest", "title", "missing_field")
        if not isinstance(head, str) or not isinstance(base, str):
            raise invalid(
                "Validation Failed",
                "PullRequest",
                "head" if not isinstance(head, str) else "base",
                "missing_field",
            )
        branch = self._branch(head)
        async with self.state.write_lock:
            base_sha = await self.store.get_ref(f"refs/heads/{base}")
            head_sha = await self.store.get_ref(f"refs/heads/{branch}") if branch else None
            if base_sha is None:
                raise invalid("Validation Failed", "PullRequest", "base")
            if head_sha is None:
                raise invalid("Validation Failed", "PullRequest", "head")
            for other in self.state.pulls():
                assert other.pull is not None
                if other.state == "open" and other.pull.head_ref == branch and other.pull.base_ref == base:
                    raise ApiError(
                        422,
                        "Validation Failed",
                        [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": DUPLICATE.format(owner=self.ops.site.owner, branch=branch),
                            }
                        ],
                    )
            if await self.store.is_ancestor(head_sha, base_sha):
                raise ApiError(
                    422,
                    "Validation Failed",
                    [
                        {
                            "resource": "PullRequest",
                            "code": "custom",
                            "message": f"No commits between {base} and {branch}",
                        }
                    ],
                )
            now = self.state.clock()
            self.state.before_issue_write(self.state.next_issue_number())
            record = IssueRecord(
                number=self.state.next_issue_number(),
                id=self.state.next_id(),
                title=title,
                body=body.get("body"),
                user=actor(request).login,
                created_at=now,
                updated_at=now,
                pull=PullInfo(branch, base, head_sha, base_sha),
            )
            self.state.issues[record.number] = record
            pr = await self.ops.pull_body(record)
            self.ops.emit_pull("opened", record, actor(request), pr)
        return json_response(pr, 201, headers={"Location": pr["url"]})

    async def get_pull(self, request: web.Request) -> web.Response:
        return json_response(await self.ops.pull_body(self._pull(request)))

    async def update_pull(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        who = actor(request)
        async with self.state.write_lock:
            record = self._pull(request)
            assert record.pull is not None
            self.state.before_issue_write(record.number)
            now = self.state.clock()
            changes: shapes.Json = {}
            for field in ("title", "body"):
                if field in body and body[field] != getattr(record, field):
                    changes[field] = {"from": getattr(record, field)}
                    setattr(record, field, body[field])
            if "base" in body and body["base"] != record.pull.base_ref:
                if await self.store.get_ref(f"refs/heads/{body['base']}") is None:
                    raise invalid("Validation Failed", "PullRequest", "base")
                changes["base"] = {
                    "ref": {"from": record.pull.base_ref},
                    "sha": {"from": record.pull.base_sha},
                }
                record.pull.base_ref = body["base"]
            action = None
            state = body.get("state")
            if state not in (None, "open", "closed"):
                raise invalid("Validation Failed", "PullRequest", "state")
            if state == "closed":
                self.state.close_requests.append(CloseRequest(record.number, now, record.pull.merged))
            if state == "closed" and record.state == "open":
                record.pull.base_sha = await self.store.get_ref(f"refs/heads/{record.pull.base_ref}") or ""
                record.state, record.closed_at, action = "closed", now, "closed"
            elif state == "open" and record.state == "closed":
                if record.pull.merged:
                    raise ApiError(
                        422,
                        "Validation Failed",
                        [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": "Cannot reopen a merged pull request",
                            }
                        ],
                    )
                head_sha = await self.store.get_ref(f"refs/heads/{record.pull.head_ref}")
                if head_sha is None:
                    raise ApiError(
                        422,
                        "Validation Failed",
                        [
                            {
                                "resource": "PullRequest",
                                "code": "custom",
                                "message": "The head branch no longer exists",
                            }
                        ],
                    )
                record.pull.head_sha = head_sha
                record.state, record.closed_at, action = "open", None, "reopened"
            if changes or action:
                record.updated_at = now
            pr = await self.ops.pull_body(record)
            if changes:
                self.ops.emit_pull("edited", record, who, pr, changes=changes)
            if action:
                self.ops.emit_pull(action, record, who, pr)
        return json_response(pr)

    async def merge_pull(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        who = actor(request)
        method = body.get("merge_method", "merge")
        if method not in ("merge", "squash", "rebase"):
            raise invalid("Validation Failed", "PullRequest", "merge_method")
        settings = self.ops.site.settings
        allowed = {
            "merge": settings.allow_merge_commit,
            "squash": settings.allow_squash_merge,
            "rebase": settings.allow_rebase_merge,
        }
        if not allowed[method]:
            raise ApiError(405, METHOD_NOT_ALLOWED[method])
        async with self.state.write_lock:
            record = self._pull(request)
            info = record.pull
            assert info is not None
            if record.state != "open":
                raise ApiError(405, NOT_MERGEABLE)
            if body.get("sha") not in (None, info.head_sha):
                raise ApiError(409, HEAD_MODIFIED)
            base_sha = await self.store.get_ref(f"refs/heads/{info.base_ref}")
            if base_sha is None:
                raise ApiError(405, NOT_MERGEABLE)
            tree = await self.store.merge_tree(base_sha, info.head_sha)
            if tree is None:
                raise ApiError(405, NOT_MERGEABLE)
            refusal = self.ops.merge_refusal(record, who)
            if refusal is not None:
                raise ApiError(405, refusal)
            if method == "rebase":
                sha = await self._rebase(record, base_sha, who)
            else:
                sha = await self._merge_commit(record, body, method, tree=tree, base_sha=base_sha, who=who)
            self.state.verified.add(sha)
            now = int(self.state.clock())
            await self.ops.move_ref(f"refs/heads/{info.base_ref}", sha, who, expect=base_sha)
            self.state.before_issue_write(record.number)
            info.merged, info.merged_at, info.merged_by, info.merge_commit_sha = True, now, who.login, sha
            info.base_sha = base_sha
            record.state, record.closed_at, record.updated_at = "closed", now, now
            self.ops.emit_pull("closed", record, who, await self.ops.pull_body(record))
            if settings.delete_branch_on_merge:
                await self.ops.move_ref(f"refs/heads/{info.head_ref}", None, who)
        return json_response({"sha": sha, "merged": True, "message": MERGED})

    async def _merge_commit(
        self, record: IssueRecord, body: shapes.Json, method: str, *, tree: str, base_sha: str, who: Account
    ) -> str:
        info = record.pull
        assert info is not None
        now = int(self.state.clock())
        if method == "merge":
            title = (
                body.get("commit_title")
                or f"Merge pull request #{record.number} from {self.ops.site.owner}/{info.head_ref}"
            )
            detail = body.get("commit_message", record.title)
            parents = [base_sha, info.head_sha]
        else:
            title = body.get("commit_title") or f"{record.title} (#{record.number})"
            shas = await self.store.rev_list(info.head_sha, exclude=base_sha)
            messages = [(await self.store.read_commit(s)).message.strip() for s in reversed(shas)]
            detail = body.get("commit_message", "\n\n".join(f"* {m}" for m in messages))
            parents = [base_sha]
        message = f"{title}\n\n{detail}" if detail else title
        return await self.store.commit_tree(
            tree, parents, message, Signature(who.login, who.email, now), Signature(*GITHUB_COMMITTER, now)
        )

    async def _rebase(self, record: IssueRecord, base_sha: str, who: Account) -> str:
        """Replay the pull request's commits onto the base, keeping each author; GitHub commits them.
        The tree after the k-th commit is the merge of the base with that commit (same fork point)."""
        info = record.pull
        assert info is not None
        now = int(self.state.clock())
        tip = base_sha
        for sha in reversed(await self.store.rev_list(info.head_sha, exclude=base_sha)):
            original = await self.store.read_commit(sha)
            tree = await self.store.merge_tree(base_sha, sha)
            if tree is None:
                raise ApiError(405, NOT_MERGEABLE)
            tip = await self.store.commit_tree(
                tree, [tip], original.message, original.author, Signature(*GITHUB_COMMITTER, now)
            )
        return tip

    async def list_files(self, request: web.Request) -> web.Response:
        record = self._pull(request)
        assert record.pull is not None
        facts = await self.ops.pull_facts(record, full=False)
        fork_point = await self.store.merge_base(facts.base_sha, facts.head_sha)
        changes = await self.store.diff(fork_point, facts.head_sha)
        page, headers = paginate(request, changes)
        return json_response(
            [shapes.diff_entry(self.ops.site, facts.head_sha, c) for c in page], headers=headers
        )
