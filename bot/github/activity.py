"""The cheap change check of a repository: two conditional reads that say whether anything else must be read.

- the default branch's head (``GET /repos/{o}/{r}/git/ref/heads/{branch}``) moves with every push and merge;
- the most recently updated issue or pull request (``GET /repos/{o}/{r}/issues?state=all&sort=updated&
  direction=desc&per_page=1``): "GitHub's REST API considers every pull request an issue", and the list
  sorted by ``updated`` puts first whatever was opened, closed, merged, edited, labelled or commented on
  last (docs.github.com/en/rest/issues/issues#list-repository-issues). Its whole first item is the mark,
  not only ``updated_at`` (which has one-second resolution): a second comment in the same second still
  changes ``comments``.

Both are sent with ``If-None-Match`` by githubkit's HTTP cache, and "making a conditional request and
receiving a 304 response does not count against your primary rate limit"
(docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api#use-conditional-requests-if-appropriate).

What the two do not see, by GitHub's documentation: commit statuses and check runs set by others, commit
comments, pull request reviews (a review has its own ``submitted_at``; the issues list does not promise to
move for it), and a push to a pull request's branch. Each has a webhook (``status``, ``commit_comment``,
``pull_request_review``, ``pull_request`` ``synchronize``) and every webhook makes the next pass read
everything; a missed webhook is caught by the full read Ferry makes at a slower interval anyway. Lists
also lag behind writes for a moment (read-after-write): a change the mark does not show yet is seen at
the next check, and the write's own webhook asks for a full read regardless.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from bot.github.client import call
from bot.github.repo import RepoGitHub


@dataclass(frozen=True)
class Mark:
    """What the change check read: the head commit, and a digest of the newest-updated issue ('' none)."""

    head: str
    activity: str


async def latest_activity(gh: RepoGitHub) -> str:
    """A digest of the repository's most recently updated issue or pull request ('' when it has none)."""
    response = await call(
        f"checking {gh.full_name} for activity",
        gh.rest.issues.async_list_for_repo(
            gh.owner, gh.name, state="all", sort="updated", direction="desc", per_page=1
        ),
    )
    body = response.content
    return hashlib.sha256(body).hexdigest() if body.strip() not in (b"", b"[]") else ""
