"""Who approved a promotion pull request, read from GitHub (reviews, Ferry's ``/approve`` records, the
merger), and whether the default branch requires ``ferry/gate``.

- ``GET /repos/{o}/{r}/pulls/{n}/reviews`` (docs.github.com/en/rest/pulls/reviews#list-reviews-for-a-pull-
  request): chronological, paginated, each with ``state`` (APPROVED, CHANGES_REQUESTED, COMMENTED,
  DISMISSED, PENDING) and ``commit_id``, the head the review was submitted on.
- ``/approve`` leaves no review: Ferry's own answer in the thread carries ``approve_marker`` (only the
  App's comments count, so nobody can forge one).
- ``GET /repos/{o}/{r}/pulls/{n}`` for ``merged_by`` (the list form of a pull request leaves it out).
- Team membership (``GET /orgs/{org}/teams/{team}/memberships/{user}``) only for people whose approval
  would count, or who merged.
- ``GET /repos/{o}/{r}/branches/{b}/protection``: 404 "Branch not protected", 403 without
  ``administration: read``, which Ferry does not need (docs.github.com/en/rest/branches/branch-protection).

Reading is skipped while a pull request's ``updated_at`` and head have not moved since a read made at
least ``SETTLED`` after that ``updated_at`` (a review, a comment and a push all move ``updated_at``, in
whole seconds: a read within the same second may have missed a review, so it is not trusted).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.command_replies import written_by_app
from bot.commands import is_bot, is_promoter, promoter_teams
from bot.core.approvals import APPROVE_MARKER_RE, PullReviews, Review
from bot.core.config_review import GateRule
from bot.core.gates import STATUS_GATE
from bot.github.client import call
from bot.github.repo import RepoGitHub
from bot.github.setup import Protection, read_protection

Key = tuple[int, str, datetime | None]
PROTECTION_EVERY = timedelta(minutes=10)  # branch protection is read again at most this often
SETTLED = timedelta(seconds=5)  # a read this long after a pull request's updated_at is not repeated


class ReviewReader:
    """Reads ``PullReviews`` for one repository, once per change of a pull request (a cache of GitHub's
    answers keyed by number, head and ``updated_at``; a restart reads each once again)."""

    def __init__(self, gh: RepoGitHub, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.gh = gh
        self.clock = clock
        self._cache: dict[int, tuple[Key, datetime, PullReviews]] = {}
        self._rule: tuple[str, datetime, GateRule] | None = None  # (branch, read at, rule)
        self.config_commit: str | None = None  # the config the rule was last read for

    async def gate_rule(self, branch: str, now: datetime, *, again: bool = False) -> GateRule:
        """Whether ``branch`` requires `ferry/gate`, read at most every ``PROTECTION_EVERY`` (or ``again``:
        the config changed)."""
        cached = self._rule
        if cached is not None and cached[0] == branch and not again and now - cached[1] < PROTECTION_EVERY:
            return cached[2]
        protection = await gate_protection(self.gh, branch)
        rule: GateRule
        if protection.state == "protected":
            rule = "required" if STATUS_GATE in protection.contexts else "missing"
        else:
            rule = protection.state
        self._rule = (branch, now, rule)
        return rule

    def forget(self, number: int) -> None:
        """Read pull request ``number``'s reviews again on the next pass (a review webhook arrived: GitHub
        does not document that a review moves the pull request's ``updated_at``, the cache's key)."""
        self._cache.pop(number, None)

    async def pull_reviews(
        self,
        number: int,
        *,
        head_sha: str,
        author: str,
        stage: str,
        promoters: Sequence[str],
        updated_at: datetime | None = None,
        merged: bool = False,
    ) -> PullReviews:
        key: Key = (number, head_sha, updated_at)
        cached = self._cache.get(number)
        # ``updated_at`` has whole seconds: a read soon after it may have missed a review of that same
        # second, so only a read made well after it is trusted.
        if (
            cached is not None
            and cached[0] == key
            and updated_at is not None
            and cached[1] >= updated_at + SETTLED
        ):
            return cached[2]
        read_at = self.clock()
        merged_by = ""
        if merged:
            merged_by, author, _ = await self.merge_facts(number)
        reviews = await self.reviews(number) + await self.approvals_by_comment(number, stage)
        # Only people whose word could count are looked up: approvers (now or of an earlier head), the merger.
        people = [r.login for r in reviews if r.state == "APPROVED" and not r.bot]
        if merged_by:
            people.append(merged_by)
        members = frozenset(
            [login.lower() for login in dict.fromkeys(people) if await self.promoter(login, promoters)]
        )
        found = PullReviews(number, head_sha, author, tuple(reviews), members, merged_by)
        self._cache[number] = (key, read_at, found)
        return found

    async def reviews(self, number: int) -> list[Review]:
        items = await self.gh._every_page(
            f"reading reviews of #{number}",
            self.gh.rest.pulls.async_list_reviews,
            owner=self.gh.owner,
            repo=self.gh.name,
            pull_number=number,
        )
        return [_review(item) for item in items if item.user is not None]

    async def approvals_by_comment(self, number: int, stage: str) -> list[Review]:
        """``/approve`` as Ferry recorded it in its own answers in the thread."""
        app = await self.gh.app()
        found = []
        for comment in await self.gh.thread_comments(number):
            if not written_by_app(comment, app):
                continue
            for match in APPROVE_MARKER_RE.finditer(comment.body):
                if match["stage"] == stage:
                    found.append(Review(match["login"], "APPROVED", match["sha"], via="/approve"))
        return found

    async def merge_facts(self, number: int) -> tuple[str, str, str]:
        """(who merged, who opened, head commit) of pull request ``number``."""
        pull = await call(
            f"reading who merged #{number}",
            self.gh.rest.pulls.async_get(self.gh.owner, self.gh.name, number),
        )
        merger: Any = pull.parsed_data.merged_by
        opener: Any = pull.parsed_data.user
        merged_by, author = (str(merger.login) if merger else ""), (str(opener.login) if opener else "")
        return merged_by, author, str(pull.parsed_data.head.sha)

    async def merged_pull(self, number: int, *, stage: str, promoters: Sequence[str]) -> PullReviews:
        """Who approved merged pull request ``number`` (its head read from GitHub: the merge fast path)."""
        _, _, head_sha = await self.merge_facts(number)
        return await self.pull_reviews(
            number, head_sha=head_sha, author="", stage=stage, promoters=promoters, merged=True
        )

    async def promoter(self, login: str, promoters: Sequence[str]) -> bool:
        if is_promoter(login, promoters, ()):
            return True
        for org, team in promoter_teams(promoters):
            if await self.gh.team_member(org, team, login):
                return True
        return False


def _review(item: Any) -> Review:
    user = item.user
    return Review(
        login=str(user.login),
        state=str(item.state),
        commit_id=str(item.commit_id or ""),
        bot=is_bot(str(user.login), str(getattr(user, "type", "") or "")),
    )


async def gate_protection(gh: RepoGitHub, branch: str) -> Protection:
    """Branch protection of ``branch`` as far as the gate goes: protected (its required contexts),
    unprotected, or forbidden (the App lacks ``administration: read``)."""
    return await read_protection(gh.rest, gh.full_name, branch)
