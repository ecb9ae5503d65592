"""Comments of one repository: the lists the command sweep reads, threads searched for Ferry's replies
(every page), replies posted once, and reactions. A mixin of ``RepoGitHub``.

Every list that decides something is read to its end with githubkit's paginator, which follows GitHub's
``Link`` headers ("Using pagination in the REST API",
docs.github.com/en/rest/using-the-rest-api/using-pagination-in-the-rest-api). A reply marker counts only
in a comment the App wrote (``bot.command_replies.written_by_app``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import httpx
from githubkit import GitHub
from githubkit.exception import GitHubException

from bot.command_replies import AppIdentity, Claim, Comment, has_reply, written_by_app
from bot.errors import GitHubError
from bot.github.client import call, status_of, translate

PER_PAGE = 100
Reaction = Literal["+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes"]
_LAST_PAGE_RE = re.compile(r'<[^<>]*[?&]page=(\d+)[^<>]*>;\s*rel="last"')


class RepoComments:
    """Comment reads and writes of ``RepoGitHub`` (which sets these attributes)."""

    client: GitHub[Any]
    rest: Any
    owner: str
    name: str
    full_name: str
    identity: Callable[[], Awaitable[AppIdentity]] | None

    async def app(self) -> AppIdentity | None:
        return await self.identity() if self.identity is not None else None

    async def _every_page(self, doing: str, request: Any, **params: Any) -> list[Any]:
        """Every item of a list, page after page as GitHub's ``Link`` headers lead. A full last page is
        followed by the next page number all the same: unchanged, it answers 304 and comes from the
        cache with the ``Link`` header it had, which may name no page added since."""
        found: list[Any] = []
        try:
            paginator = self.client.rest.paginate(request, **params, per_page=PER_PAGE)
            async for item in paginator:
                found.append(item)
            last = paginator.latest_response
            full = last is not None and len(last.parsed_data) >= PER_PAGE
            while full:
                page = len(found) // PER_PAGE + 1
                more = (await request(**params, per_page=PER_PAGE, page=page)).parsed_data
                found += more
                full = len(more) >= PER_PAGE
        except (GitHubException, httpx.HTTPError, TimeoutError) as exc:
            raise translate(exc, doing) from exc
        return found

    # ---- the repository's recent comments (bot.command_sweep) --------------------------------
    async def recent_issue_comments(self, since: datetime) -> list[Comment]:
        """Issue and pull request comments updated at or after ``since``, newest first, every page.

        Newest first, so any new comment changes the first page: an unchanged first page answers 304
        to the conditional request (free of rate limit), and its cached ``Link`` header cannot hide a
        page added after it (docs.github.com/en/rest/issues/comments#list-issue-comments-for-a-repository).
        """
        items = await self._every_page(
            f"listing recent comments of {self.full_name}",
            self.rest.issues.async_list_comments_for_repo,
            owner=self.owner,
            repo=self.name,
            since=github_time(since),
            sort="created",
            direction="desc",
        )
        return [self._issue_comment(c) for c in items]

    async def recent_commit_comments(self, since: datetime, first_page: int) -> tuple[list[Comment], int]:
        """Commit comments created at or after ``since``, and the page to start from next time.

        GitHub lists them oldest first, with neither ``since`` nor ``sort``
        (docs.github.com/en/rest/commits/comments#list-commit-comments-for-a-repository). From
        ``first_page`` (1: nothing known yet) this reads on while pages are full, since a full page's
        cached ``Link`` header may not know of a page added after it; on page 1 of a long list it jumps to
        the ``last`` page GitHub names and reads back until a page starts before ``since``.
        """
        page = max(1, first_page)
        pages: dict[int, list[Comment]] = {}
        pages[page], last = await self._commit_page(page)
        if page == 1 and last > 1:
            page = last
            pages[page], _ = await self._commit_page(page)
        while page > 1 and (not pages[page] or _starts_after(pages[page], since)):
            page -= 1  # the window may begin on an earlier page (or comments were deleted before it)
            if page not in pages:
                pages[page], _ = await self._commit_page(page)
        start = page
        while len(pages[page]) >= PER_PAGE:
            page += 1
            if page not in pages:
                pages[page], _ = await self._commit_page(page)
        found = [c for p in sorted(pages) if p >= start for c in pages[p]]
        return [c for c in found if c.created_at is None or c.created_at >= since], start

    async def _commit_page(self, page: int) -> tuple[list[Comment], int]:
        response = await call(
            f"listing commit comments of {self.full_name}",
            self.rest.repos.async_list_commit_comments_for_repo(
                self.owner, self.name, per_page=PER_PAGE, page=page
            ),
        )
        match = _LAST_PAGE_RE.search(response.headers.get("link", ""))
        return [self._commit_comment(c) for c in response.parsed_data], int(match[1]) if match else page

    async def comment(self, kind: Literal["issue", "commit"], comment_id: int) -> Comment | None:
        """One comment read by id (None: deleted), for a comment a webhook named that a list lags behind."""
        try:
            if kind == "issue":
                got = await call(
                    f"reading comment {comment_id}",
                    self.rest.issues.async_get_comment(self.owner, self.name, comment_id),
                )
                return self._issue_comment(got.parsed_data)
            got = await call(
                f"reading commit comment {comment_id}",
                self.rest.repos.async_get_commit_comment(self.owner, self.name, comment_id),
            )
            return self._commit_comment(got.parsed_data)
        except GitHubError as exc:
            if _not_found(exc):
                return None
            raise

    # ---- threads ------------------------------------------------------------------------------
    async def thread_comments(self, number: int, since: datetime | None = None) -> list[Comment]:
        """Every comment of an issue or pull request (updated at or after ``since``), every page."""
        params: dict[str, Any] = {"since": github_time(since)} if since is not None else {}
        items = await self._every_page(
            f"reading comments of #{number}",
            self.rest.issues.async_list_comments,
            owner=self.owner,
            repo=self.name,
            issue_number=number,
            **params,
        )
        return [self._issue_comment(c) for c in items]

    async def commit_thread_comments(self, sha: str) -> list[Comment]:
        items = await self._every_page(
            f"reading comments of commit {sha[:7]}",
            self.rest.repos.async_list_comments_for_commit,
            owner=self.owner,
            repo=self.name,
            commit_sha=sha,
        )
        return [self._commit_comment(c) for c in items]

    async def has_reply(self, comment: Comment) -> bool:
        """Whether the App already answered ``comment`` in its thread (a reply is never older than it)."""
        if comment.kind == "issue" and comment.issue_number is not None:
            thread = await self.thread_comments(comment.issue_number, since=comment.created_at)
        else:
            thread = await self.commit_thread_comments(comment.commit_sha or "")
        return has_reply(thread, comment.comment_id, await self.app())

    async def comment_once(self, number: int, body: str, *, marker: str) -> bool:
        """Post ``body`` (which gets ``marker``) unless a comment of the App's with that marker is there.

        Two writers (replicas of the App, all the same bot account) that look at once both find nothing
        and both post: right after posting, the thread is read again and the App's oldest comment with
        the marker stands; a later one is deleted by whoever wrote it (``_stands``). Returns whether this
        call's comment stands."""
        if await self._marked(await self.thread_comments(number), marker):
            return False
        text = body if marker in body else f"{body}\n\n{marker}\n"
        created = await call(
            f"commenting on #{number}",
            self.rest.issues.async_create_comment(self.owner, self.name, number, data={"body": text}),
        )
        own = self._issue_comment(created.parsed_data)
        thread = await self.thread_comments(number, since=_before(own.created_at))
        if await self._stands(own, thread, marker):
            return True
        await call(
            f"deleting comment {own.comment_id}, a second copy",
            self.rest.issues.async_delete_comment(self.owner, self.name, own.comment_id),
        )
        return False

    async def commit_comment_once(self, sha: str, body: str, *, marker: str) -> bool:
        """``comment_once`` for a commit: reply under it unless the App's comment with ``marker`` is there."""
        if await self._marked(await self.commit_thread_comments(sha), marker):
            return False
        text = body if marker in body else f"{body}\n\n{marker}\n"
        created = await call(
            f"commenting on commit {sha[:7]}",
            self.rest.repos.async_create_commit_comment(self.owner, self.name, sha, data={"body": text}),
        )
        own = self._commit_comment(created.parsed_data)
        if await self._stands(own, await self.commit_thread_comments(sha), marker):
            return True
        await call(
            f"deleting commit comment {own.comment_id}, a second copy",
            self.rest.repos.async_delete_commit_comment(self.owner, self.name, own.comment_id),
        )
        return False

    async def _stands(self, own: Comment, thread: list[Comment], marker: str) -> bool:
        """Whether ``own`` is the App's oldest comment carrying ``marker`` in ``thread`` (GitHub's comment
        ids grow with time, so the smallest id was posted first)."""
        app = await self.app()
        return not any(
            marker in c.body and written_by_app(c, app) and c.comment_id < own.comment_id for c in thread
        )

    async def _marked(self, thread: list[Comment], marker: str) -> bool:
        app = await self.app()
        return any(marker in c.body and written_by_app(c, app) for c in thread)

    async def react_to_comment(self, kind: Literal["issue", "commit"], comment_id: int, content: str) -> None:
        """Add a reaction (eyes, rocket, confused, ...); GitHub keeps one per person and content."""
        await self.claim_comment(kind, comment_id, content)

    async def claim_comment(self, kind: Literal["issue", "commit"], comment_id: int, content: str) -> Claim:
        """React ``content`` to a comment, and say whether this request made the reaction.

        "Create reaction for an issue comment" answers 201 when the reaction is new and 200 when the same
        user already reacted with that content (docs.github.com/en/rest/reactions/reactions#create-reaction-
        for-an-issue-comment; the same for commit comments). Every replica of the App reacts as the same
        bot account, so among replicas racing to react, exactly one gets 201: an atomic claim.
        """
        reaction = cast(Reaction, content)
        what = f"reacting {content} to comment {comment_id}"
        if kind == "issue":
            request = self.rest.reactions.async_create_for_issue_comment(
                self.owner, self.name, comment_id, data={"content": reaction}
            )
        else:
            request = self.rest.reactions.async_create_for_commit_comment(
                self.owner, self.name, comment_id, data={"content": reaction}
            )
        response = await call(what, request)
        data = response.parsed_data
        return Claim(response.status_code == 201, int(data.id), data.created_at)

    async def drop_reaction(
        self, kind: Literal["issue", "commit"], comment_id: int, reaction_id: int
    ) -> None:
        """Delete one reaction by its id (docs.github.com/en/rest/reactions/reactions#delete-an-issue-comment-
        reaction answers 204). Deleting by id never removes a newer reaction made since: gone already (404)
        is as good as deleted now."""
        what = f"deleting reaction {reaction_id} of comment {comment_id}"
        try:
            if kind == "issue":
                await call(
                    what,
                    self.rest.reactions.async_delete_for_issue_comment(
                        self.owner, self.name, comment_id, reaction_id
                    ),
                )
            else:
                await call(
                    what,
                    self.rest.reactions.async_delete_for_commit_comment(
                        self.owner, self.name, comment_id, reaction_id
                    ),
                )
        except GitHubError as exc:
            if not _not_found(exc):
                raise

    # ---- githubkit models -> Comment ----------------------------------------------------------
    def _issue_comment(self, data: Any) -> Comment:
        user, app = data.user, getattr(data, "performed_via_github_app", None)
        return Comment(
            kind="issue",
            repo=self.full_name,
            comment_id=int(data.id),
            body=data.body if isinstance(data.body, str) else "",
            login=user.login if user else "",
            account_type=user.type if user else "",
            association=str(getattr(data, "author_association", "NONE") or "NONE"),
            url=data.html_url,
            issue_number=int(str(data.issue_url).rsplit("/", 1)[1]),
            is_pull=None,
            created_at=data.created_at,
            updated_at=data.updated_at,
            via_app=int(app.id) if app is not None and hasattr(app, "id") else None,
        )

    def _commit_comment(self, data: Any) -> Comment:
        user = data.user
        return Comment(
            kind="commit",
            repo=self.full_name,
            comment_id=int(data.id),
            body=data.body or "",
            login=user.login if user else "",
            account_type=user.type if user else "",
            association=str(data.author_association),
            url=data.html_url,
            commit_sha=data.commit_id,
            created_at=data.created_at,
            updated_at=data.updated_at,
        )


def _before(moment: datetime | None) -> datetime | None:
    """A minute before ``moment``: a rival copy was posted at about the same time, never much earlier
    than a look that found none."""
    return None if moment is None else moment - timedelta(minutes=1)


def github_time(moment: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, the only ``since`` GitHub takes (422 otherwise); githubkit would send
    ``str(datetime)``, with a space for the ``T``."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _starts_after(page: list[Comment], since: datetime) -> bool:
    first = page[0].created_at
    return first is not None and first >= since


def _not_found(exc: GitHubError) -> bool:
    cause = exc.__cause__
    return isinstance(cause, Exception) and status_of(cause) == 404
