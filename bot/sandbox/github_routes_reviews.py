"""Pull request reviews and branch protection routes of the GitHub stand-in.

Reviews (docs.github.com/en/rest/pulls/reviews): ``POST /pulls/{n}/reviews`` with ``event`` APPROVE,
REQUEST_CHANGES or COMMENT submits a review (200, a ``pull_request_review`` webhook ``submitted``);
without ``event`` it stays PENDING (no ``submitted_at``, seen only by its author, one per person).
``commit_id`` defaults to the pull request's head. Authors cannot approve or request changes on their
own pull request (422 "Can not approve your own pull request"). ``body`` is required for REQUEST_CHANGES
and COMMENT. Lists are chronological. When the base branch's protection dismisses stale reviews, a push
to the head dismisses its approvals (state DISMISSED, webhook ``dismissed``), as "Dismiss stale pull
request approvals when new commits are pushed" does. A person with write access dismisses a review with
``PUT .../reviews/{id}/dismissals`` and a required ``message``.

Branch protection (docs.github.com/en/rest/branches/branch-protection#get-branch-protection): 404
"Branch not protected" / "Branch not found"; an installation without ``administration: read`` gets 403
"Resource not accessible by integration" (``github_limits``); a person needs the admin role.
"""

from __future__ import annotations

from aiohttp import web

from bot.sandbox import github_issue_shapes as ishapes
from bot.sandbox import github_payloads as payloads
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
from bot.sandbox.github_protection import WRITERS, protection_body
from bot.sandbox.github_records import ReviewRecord
from bot.sandbox.github_shapes import Json
from bot.sandbox.github_state import Account, IssueRecord

REPO = "/repos/{owner}/{repo}"
EVENTS = {"APPROVE": "APPROVED", "REQUEST_CHANGES": "CHANGES_REQUESTED", "COMMENT": "COMMENTED"}
OWN_PULL = {
    "APPROVED": "Can not approve your own pull request",
    "CHANGES_REQUESTED": "Can not request changes on your own pull request",
}


def _unprocessable(reason: str) -> ApiError:
    """GitHub's "validation_failed_simple": errors as plain sentences."""
    return ApiError(422, "Unprocessable Entity", [reason])


class ReviewRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state
        ops.after_synchronize.append(self._dismiss_stale)

    def register(self, router: web.UrlDispatcher) -> None:
        reviews = REPO + "/pulls/{pull_number:\\d+}/reviews"
        router.add_get(reviews, self.list_reviews)
        router.add_post(reviews, self.create_review)
        router.add_put(reviews + "/{review_id:\\d+}/dismissals", self.dismiss_review)
        router.add_get(REPO + "/branches/{branch:.+}/protection", self.get_protection)

    def _pull(self, request: web.Request) -> IssueRecord:
        record = self.state.issues.get(int(request.match_info["pull_number"]))
        if record is None or record.pull is None:
            raise not_found()
        return record

    def review_body(self, record: ReviewRecord, *, webhook: bool = False) -> Json:
        author = self.state.account(record.user)
        return ishapes.review(self.ops.site, record, author, self.ops.association(author), webhook=webhook)

    async def list_reviews(self, request: web.Request) -> web.Response:
        who = actor(request)
        found = [
            r
            for r in self.state.reviews.get(self._pull(request).number, [])
            if r.state != "PENDING" or r.user == who.login
        ]
        page, headers = paginate(request, found)
        return json_response([self.review_body(r) for r in page], headers=headers)

    async def create_review(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        event, text, commit_id = body.get("event"), body.get("body"), body.get("commit_id")
        if event is not None and event not in EVENTS:
            raise invalid("Validation Failed", "PullRequestReview", "event")
        if text is not None and not isinstance(text, str):
            raise invalid("Validation Failed", "PullRequestReview", "body")
        async with self.state.write_lock:
            record = self._pull(request)
            review = await self.submit(record, actor(request), event, text or "", commit_id)
        return json_response(self.review_body(review))

    async def submit(
        self, record: IssueRecord, who: Account, event: str | None, text: str, commit_id: str | None = None
    ) -> ReviewRecord:
        """Create a review of pull request ``record`` as ``who`` (caller holds the write lock)."""
        assert record.pull is not None
        state = EVENTS[event] if event is not None else "PENDING"
        if state in OWN_PULL and who.login == record.user:
            raise _unprocessable(OWN_PULL[state])
        if state in ("CHANGES_REQUESTED", "COMMENTED") and not text:
            raise _unprocessable(f"Body is required for a review of event {event}")
        if state == "PENDING" and any(
            r.state == "PENDING" and r.user == who.login for r in self.state.reviews.get(record.number, [])
        ):
            raise _unprocessable("User can only have one pending review per pull request")
        sha = commit_id or record.pull.head_sha
        if await self.state.store.resolve_commit(sha) != sha:
            raise _unprocessable(f"Commit {sha} is not part of the pull request")
        now = self.state.clock()
        review = ReviewRecord(
            self.state.next_id(),
            record.number,
            who.login,
            text,
            state,
            sha,
            None if state == "PENDING" else now,
        )
        self.state.reviews.setdefault(record.number, []).append(review)
        if state != "PENDING":
            self.state.before_issue_write(record.number)
            record.updated_at = now
            await self._announce("submitted", record, review, who)
        return review

    async def dismiss_review(self, request: web.Request) -> web.Response:
        """``PUT .../reviews/{id}/dismissals`` (docs.github.com/en/rest/pulls/reviews#dismiss-a-review-for-a-
        pull-request): ``message`` is required ("When you dismiss a review, you must add a comment explaining
        why"); people with write access (or admins) may dismiss; the review's state becomes DISMISSED, it
        keeps its ``commit_id``, and a ``pull_request_review`` webhook ``dismissed`` goes out. A pending or
        commented review cannot be dismissed (422)."""
        who = actor(request)
        body = await read_json(request)
        message = body.get("message")
        if not isinstance(message, str) or not message.strip():
            raise invalid("Validation Failed", "PullRequestReview", "message", "missing_field")
        if who.type != "Bot" and who.permission not in WRITERS and who.login != self.ops.owner.login:
            raise ApiError(403, "Must have push access to dismiss a review.")
        async with self.state.write_lock:
            record = self._pull(request)
            wanted = int(request.match_info["review_id"])
            review = next((r for r in self.state.reviews.get(record.number, []) if r.id == wanted), None)
            if review is None:
                raise not_found()
            if review.state not in ("APPROVED", "CHANGES_REQUESTED"):
                raise _unprocessable(f"Can not dismiss a {review.state.lower()} pull request review")
            review.state = "DISMISSED"
            self.state.before_issue_write(record.number)
            record.updated_at = self.state.clock()
            await self._announce("dismissed", record, review, who)
        return json_response(self.review_body(review))

    async def _announce(
        self, action: str, record: IssueRecord, review: ReviewRecord, sender: Account
    ) -> None:
        pr = await self.ops.pull_body(record, full=False)
        self.state.emit(
            "pull_request_review",
            payloads.pull_request_review(
                self.ops.site,
                self.ops.owner,
                sender,
                action=action,
                review=self.review_body(review, webhook=True),
                pr=pr,
            ),
        )

    async def _dismiss_stale(self, record: IssueRecord, sender: Account) -> None:
        assert record.pull is not None
        protection = self.state.protection.get(record.pull.base_ref)
        if protection is None or not protection.dismiss_stale_reviews:
            return
        for review in self.state.reviews.get(record.number, []):
            if review.state == "APPROVED" and review.commit_id != record.pull.head_sha:
                review.state = "DISMISSED"
                await self._announce("dismissed", record, review, sender)

    async def get_protection(self, request: web.Request) -> web.Response:
        who = actor(request)
        if who.type != "Bot" and who.permission != "admin" and who.login != self.ops.owner.login:
            raise ApiError(403, "Must have admin rights to Repository.")
        branch = request.match_info["branch"]
        if await self.state.store.get_ref(f"refs/heads/{branch}") is None:
            raise ApiError(404, "Branch not found")
        protection = self.state.protection.get(branch)
        if protection is None:
            raise ApiError(404, "Branch not protected")
        return json_response(protection_body(self.ops.site, protection))
