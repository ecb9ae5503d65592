"""Issue, comment, label, reaction, commit-comment and commit-status routes of the GitHub stand-in.
Pull requests are issues here too, as on GitHub: they share numbers, comments and labels."""

from __future__ import annotations

from aiohttp import web

from bot.sandbox import github_issue_shapes as ishapes
from bot.sandbox import github_listing as listing
from bot.sandbox import github_payloads as payloads
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
from bot.sandbox.github_state import CommentRecord, IssueRecord, ReactionRecord, StatusRecord

REPO = "/repos/{owner}/{repo}"
STATUS_STATES = ("error", "failure", "pending", "success")
DESCRIPTION_LIMIT = 140


class IssueRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state
        self.store = ops.state.store

    def register(self, router: web.UrlDispatcher) -> None:
        add = router.add_route
        add("GET", REPO + "/issues", self.list_issues)
        add("POST", REPO + "/issues", self.create_issue)
        add("GET", REPO + "/issues/comments/{comment_id:\\d+}", self.get_comment)
        add("PATCH", REPO + "/issues/comments/{comment_id:\\d+}", self.update_comment)
        add("DELETE", REPO + "/issues/comments/{comment_id:\\d+}", self.delete_comment)
        add("GET", REPO + "/issues/comments/{comment_id:\\d+}/reactions", self.list_reactions)
        add("POST", REPO + "/issues/comments/{comment_id:\\d+}/reactions", self.add_reaction)
        add(
            "DELETE",
            REPO + "/issues/comments/{comment_id:\\d+}/reactions/{reaction_id:\\d+}",
            self.drop_reaction,
        )
        add("GET", REPO + "/issues/{issue_number:\\d+}", self.get_issue)
        add("GET", REPO + "/issues/{issue_number:\\d+}/comments", self.list_comments)
        add("POST", REPO + "/issues/{issue_number:\\d+}/comments", self.create_comment)
        add("GET", REPO + "/issues/{issue_number:\\d+}/labels", self.list_labels)
        add("POST", REPO + "/issues/{issue_number:\\d+}/labels", self.add_labels)
        add("DELETE", REPO + "/issues/{issue_number:\\d+}/labels/{name}", self.remove_label)
        add("GET", REPO + "/comments/{comment_id:\\d+}", self.get_commit_comment)
        add("DELETE", REPO + "/comments/{comment_id:\\d+}", self.delete_commit_comment)
        add("GET", REPO + "/comments/{comment_id:\\d+}/reactions", self.list_reactions)
        add("POST", REPO + "/comments/{comment_id:\\d+}/reactions", self.add_reaction)
        add("DELETE", REPO + "/comments/{comment_id:\\d+}/reactions/{reaction_id:\\d+}", self.drop_reaction)
        add("GET", REPO + "/commits/{commit_sha}/comments", self.list_commit_comments)
        add("POST", REPO + "/commits/{commit_sha}/comments", self.create_commit_comment)
        add("POST", REPO + "/statuses/{sha}", self.create_status)
        add("GET", REPO + "/commits/{ref:.+}/status", self.combined_status)
        add("GET", REPO + "/commits/{ref:.+}/statuses", self.list_statuses)

    # issues ------------------------------------------------------------------------------------
    def _issue(self, request: web.Request) -> IssueRecord:
        record = self.state.issues.get(int(request.match_info["issue_number"]))
        if record is None:
            raise not_found()
        return record

    async def list_issues(self, request: web.Request) -> web.Response:
        # A list: served with the read-after-write lag, if set (github_lag).
        wanted = request.query.get("state", "open")
        labels = {name for name in request.query.get("labels", "").split(",") if name}
        after = listing.since(request)
        matching = [
            r
            for r in self.state.listed_issues()
            if wanted in ("all", r.state)
            and labels <= set(r.labels)
            and (after is None or r.updated_at >= after)
        ]
        # docs.github.com/en/rest/issues/issues#list-repository-issues: sort created|updated|comments,
        # direction default desc.
        found = listing.ordered(
            request,
            matching,
            {
                "created": lambda r: (r.created_at, r.number),
                "updated": lambda r: (r.updated_at, r.number),
                "comments": lambda r: (r.comments, r.number),
            },
            default_sort="created",
            default_direction=lambda sort: "desc",
        )
        page, headers = paginate(request, found)
        return json_response([self.ops.issue_body(r) for r in page], headers=headers)

    async def create_issue(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        if not isinstance(body.get("title"), str) or not body["title"]:
            raise invalid("Validation Failed", "Issue", "title", "missing_field")
        now = self.state.clock()
        async with self.state.write_lock:
            self.state.before_issue_write(self.state.next_issue_number())
            record = IssueRecord(
                self.state.next_issue_number(),
                self.state.next_id(),
                body["title"],
                body.get("body"),
                actor(request).login,
                now,
                now,
                labels=[str(n) for n in body.get("labels", [])],
            )
            self.state.issues[record.number] = record
        return json_response(self.ops.issue_body(record), 201)

    async def get_issue(self, request: web.Request) -> web.Response:
        return json_response(self.ops.issue_body(self._issue(request)))

    # comments ----------------------------------------------------------------------------------
    def _comment_body(self, record: CommentRecord) -> shapes.Json:
        author = self.state.account(record.user)
        kind = "issue" if record.issue_number is not None else "commit"
        reactions = self.state.reactions.get((kind, record.id), [])
        build = ishapes.issue_comment if kind == "issue" else ishapes.commit_comment
        return build(self.ops.site, record, author, self.ops.association(author), reactions)

    def _comment(self, request: web.Request, table: dict[int, CommentRecord]) -> CommentRecord:
        record = table.get(int(request.match_info["comment_id"]))
        if record is None:
            raise not_found()
        return record

    async def list_comments(self, request: web.Request) -> web.Response:
        number = self._issue(request).number
        after = listing.since(request)  # "Only show results that were last updated after the given time"
        found = [
            c
            for c in self.state.comments.values()
            if c.issue_number == number and (after is None or c.updated_at >= after)
        ]
        page, headers = paginate(request, found)
        return json_response([self._comment_body(c) for c in page], headers=headers)

    def _text(self, body: dict[str, object], resource: str) -> str:
        text = body.get("body")
        if not isinstance(text, str) or not text:
            raise invalid("Validation Failed", resource, "body", "missing_field")
        return text

    async def create_comment(self, request: web.Request) -> web.Response:
        text = self._text(await read_json(request), "IssueComment")
        who = actor(request)
        async with self.state.write_lock:
            issue = self._issue(request)
            now = self.state.clock()
            record = CommentRecord(self.state.next_id(), who.login, text, now, now, issue_number=issue.number)
            self.state.comments[record.id] = record
            self.state.before_issue_write(issue.number)
            issue.comments += 1
            issue.updated_at = now  # a comment is activity: GitHub moves the issue's updated_at
            comment = self._comment_body(record)
            self.state.emit(
                "issue_comment",
                payloads.issue_comment(
                    self.ops.site,
                    self.ops.owner,
                    who,
                    action="created",
                    issue=self.ops.issue_body(issue),
                    comment=comment,
                ),
            )
        return json_response(comment, 201)

    async def get_comment(self, request: web.Request) -> web.Response:
        return json_response(self._comment_body(self._comment(request, self.state.comments)))

    async def update_comment(self, request: web.Request) -> web.Response:
        text = self._text(await read_json(request), "IssueComment")
        who = actor(request)
        async with self.state.write_lock:
            record = self._comment(request, self.state.comments)
            old, record.body, record.updated_at = record.body, text, self.state.clock()
            comment = self._comment_body(record)
            assert record.issue_number is not None
            issue = self.ops.issue_body(self.state.issues[record.issue_number])
            self.state.emit(
                "issue_comment",
                payloads.issue_comment(
                    self.ops.site,
                    self.ops.owner,
                    who,
                    action="edited",
                    issue=issue,
                    comment=comment,
                    changes={"body": {"from": old}},
                ),
            )
        return json_response(comment)

    async def delete_comment(self, request: web.Request) -> web.Response:
        """GitHub's "Delete an issue comment": 204, and an ``issue_comment`` delivery, action ``deleted``
        (docs.github.com/en/rest/issues/comments#delete-an-issue-comment;
        docs.github.com/en/webhooks/webhook-events-and-payloads#issue_comment)."""
        who = actor(request)
        async with self.state.write_lock:
            record = self._comment(request, self.state.comments)
            comment = self._comment_body(record)
            del self.state.comments[record.id]
            self.state.reactions.pop(("issue", record.id), None)
            assert record.issue_number is not None
            issue = self.ops.issue_body(self.state.issues[record.issue_number])
            self.state.emit(
                "issue_comment",
                payloads.issue_comment(
                    self.ops.site, self.ops.owner, who, action="deleted", issue=issue, comment=comment
                ),
            )
        return web.Response(status=204)

    async def delete_commit_comment(self, request: web.Request) -> web.Response:
        """GitHub's "Delete a commit comment": 204, 404 when there is none
        (docs.github.com/en/rest/commits/comments#delete-a-commit-comment)."""
        async with self.state.write_lock:
            record = self._comment(request, self.state.commit_comments)
            del self.state.commit_comments[record.id]
            self.state.reactions.pop(("commit", record.id), None)
        return web.Response(status=204)

    async def list_commit_comments(self, request: web.Request) -> web.Response:
        sha = await self.ops.commit_or_404(request.match_info["commit_sha"])
        found = [c for c in self.state.commit_comments.values() if c.commit_id == sha]
        page, headers = paginate(request, found)
        return json_response([self._comment_body(c) for c in page], headers=headers)

    async def create_commit_comment(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        text = self._text(body, "CommitComment")
        who = actor(request)
        sha = await self.ops.commit_or_404(request.match_info["commit_sha"])
        async with self.state.write_lock:
            now = self.state.clock()
            record = CommentRecord(
                self.state.next_id(),
                who.login,
                text,
                now,
                now,
                commit_id=sha,
                path=body.get("path"),
                line=body.get("line"),
                position=body.get("position"),
            )
            self.state.commit_comments[record.id] = record
            comment = self._comment_body(record)
            self.state.emit(
                "commit_comment", payloads.commit_comment(self.ops.site, self.ops.owner, who, comment)
            )
        return json_response(comment, 201)

    async def get_commit_comment(self, request: web.Request) -> web.Response:
        return json_response(self._comment_body(self._comment(request, self.state.commit_comments)))

    # reactions ---------------------------------------------------------------------------------
    def _subject(self, request: web.Request) -> tuple[str, int]:
        if "/issues/comments/" in request.path:
            return "issue", self._comment(request, self.state.comments).id
        return "commit", self._comment(request, self.state.commit_comments).id

    async def list_reactions(self, request: web.Request) -> web.Response:
        records = self.state.reactions.get(self._subject(request), [])
        content = request.query.get("content")
        found = [r for r in records if content is None or r.content == content]
        page, headers = paginate(request, found)
        return json_response(
            [ishapes.reaction(self.ops.site, r, self.state.account(r.user)) for r in page], headers=headers
        )

    async def add_reaction(self, request: web.Request) -> web.Response:
        content = (await read_json(request)).get("content")
        if content not in ishapes.REACTIONS:
            raise invalid("Validation Failed", "Reaction", "content")
        who = actor(request)
        async with self.state.write_lock:
            records = self.state.reactions.setdefault(self._subject(request), [])
            for existing in records:
                if existing.user == who.login and existing.content == content:
                    return json_response(ishapes.reaction(self.ops.site, existing, who), 200)
            record = ReactionRecord(self.state.next_id(), who.login, content, self.state.clock())
            records.append(record)
        return json_response(ishapes.reaction(self.ops.site, record, who), 201)

    async def drop_reaction(self, request: web.Request) -> web.Response:
        """GitHub's "Delete an issue comment reaction" (and a commit comment's): 204
        (docs.github.com/en/rest/reactions/reactions#delete-an-issue-comment-reaction). A reaction that is
        not there, or another person's, is answered 404 as GitHub answers for what one may not see."""
        who = actor(request)
        wanted = int(request.match_info["reaction_id"])
        async with self.state.write_lock:
            records = self.state.reactions.get(self._subject(request), [])
            found = next((r for r in records if r.id == wanted and r.user == who.login), None)
            if found is None:
                raise not_found()
            records.remove(found)
        return web.Response(status=204)

    # labels ------------------------------------------------------------------------------------
    async def list_labels(self, request: web.Request) -> web.Response:
        page, headers = paginate(request, self._issue(request).labels)
        return json_response(self.ops.labels(page), headers=headers)

    async def add_labels(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        names = body.get("labels") if isinstance(body, dict) else body
        if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
            raise invalid("Validation Failed", "Label", "labels")
        who = actor(request)
        async with self.state.write_lock:
            record = self._issue(request)
            self.state.before_issue_write(record.number)
            added = [n for n in dict.fromkeys(names) if n not in record.labels]
            record.labels += added
            if added:
                record.updated_at = self.state.clock()
            for name in added if record.pull else []:
                pr = await self.ops.pull_body(record)
                self.ops.emit_pull("labeled", record, who, pr, label=self.ops.labels([name])[0])
        return json_response(self.ops.labels(record.labels))

    async def remove_label(self, request: web.Request) -> web.Response:
        name = request.match_info["name"]
        async with self.state.write_lock:
            record = self._issue(request)
            if name not in record.labels:
                raise ApiError(404, "Label does not exist")
            self.state.before_issue_write(record.number)
            record.labels.remove(name)
            record.updated_at = self.state.clock()
            if record.pull:
                pr = await self.ops.pull_body(record)
                self.ops.emit_pull("unlabeled", record, actor(request), pr, label=self.ops.labels([name])[0])
        return json_response(self.ops.labels(record.labels))

    # statuses ----------------------------------------------------------------------------------
    async def create_status(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        state, description = body.get("state"), body.get("description")
        if state not in STATUS_STATES:
            raise invalid("Validation Failed", "Status", "state")
        if description is not None and (
            not isinstance(description, str) or len(description) > DESCRIPTION_LIMIT
        ):
            raise ApiError(
                422,
                "Validation Failed",
                [
                    {
                        "resource": "Status",
                        "field": "description",
                        "code": "custom",
                        "message": f"description is too long (maximum is {DESCRIPTION_LIMIT} characters)",
                    }
                ],
            )
        sha = request.match_info["sha"]
        found = await self.store.resolve_commit(sha)
        if found is None or found != sha:
            raise ApiError(422, f"No commit found for SHA: {sha}")
        who = actor(request)
        async with self.state.write_lock:
            record = StatusRecord(
                self.state.next_id(),
                sha,
                state,
                str(body.get("context") or "default"),
                description,
                body.get("target_url"),
                who.login,
                self.state.clock(),
            )
            self.state.statuses.setdefault(sha, []).append(record)
            status = ishapes.status(self.ops.site, record, who)
            branches = sorted(
                (ref.removeprefix("refs/heads/"), tip)
                for ref, tip in (await self.store.refs()).items()
                if ref.startswith("refs/heads/") and tip == sha
            )
            commit = await self.ops.commit_body(sha, files=False)
            self.state.emit(
                "status",
                payloads.status(
                    self.ops.site,
                    self.ops.owner,
                    who,
                    status_body=status,
                    commit_body=commit,
                    branches=branches,
                    protected=self.state.protection,
                ),
            )
        return json_response(status, 201)

    async def combined_status(self, request: web.Request) -> web.Response:
        # "The most recent status for each context is returned, up to 100. This field paginates if there
        # are over 100 contexts." (the endpoint's docs until 2023); today's OpenAPI description gives it
        # per_page (default 30, max 100) and page. ``state`` and ``total_count`` cover every context.
        sha = await self.ops.commit_or_404(request.match_info["ref"])
        latest = self.ops.latest_statuses(sha)
        page, headers = paginate(request, latest)
        body = ishapes.combined_status(self.ops.site, sha, page, self.ops.owner)
        body["state"], body["total_count"] = ishapes.combined_state(latest), len(latest)
        return json_response(body, headers=headers)

    async def list_statuses(self, request: web.Request) -> web.Response:
        sha = await self.ops.commit_or_404(request.match_info["ref"])
        records = list(reversed(self.state.statuses.get(sha, [])))
        page, headers = paginate(request, records)
        return json_response(
            [ishapes.status(self.ops.site, r, self.state.account(r.creator)) for r in page], headers=headers
        )
