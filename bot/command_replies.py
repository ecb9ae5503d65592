"""Which comments are commands still to answer, and which are Ferry's answers, pure.

Belongs here: a comment as GitHub lists it (``Comment``), who the App is on GitHub (``AppIdentity``), the
reply marker and which comments count as a reply (only the App's own), which comments are commands
(written by a person, never edited), and when a command is too old to run. The grammar is
``bot.commands``; finding comments on GitHub and answering them, ``bot.command_sweep`` and
``bot.command_runner``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.commands import is_bot, parse_comment

REPLY_MARKER = "<!-- ferry:reply-to:{comment_id} -->"
_REPLY_RE = re.compile(r"<!-- ferry:reply-to:(\d+) -->")
EXPIRED = (
    "it was posted {posted}, more than {max_age} before Ferry could answer it (Ferry was stopped or could "
    "not reach GitHub), and Ferry does not run a command that late; comment `{command}` again to run it now"
)


@dataclass(frozen=True)
class AppIdentity:
    """Who Ferry is on GitHub: the App's id and its bot account's login, ``<slug>[bot]`` (from ``GET /app``;
    docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/about-authentication-with-a-github-app)."""

    app_id: int
    login: str


@dataclass(frozen=True)
class Comment:
    """A comment on an issue, a pull request or a commit: from a webhook payload or a list GitHub returned.

    ``created_at``/``updated_at`` are None only when a payload leaves them out; ``via_app`` is the id in
    ``performed_via_github_app`` (issue comments only); ``is_pull`` is None when a list did not say
    whether the issue is a pull request (``bot.command_runner`` asks GitHub when it matters).
    """

    kind: Literal["issue", "commit"]
    repo: str
    comment_id: int
    body: str
    login: str
    account_type: str
    association: str
    url: str
    issue_number: int | None = None  # issue or pull request the comment is on
    is_pull: bool | None = False
    commit_sha: str | None = None  # commit comments
    created_at: datetime | None = None
    updated_at: datetime | None = None
    via_app: int | None = None

    @property
    def where(self) -> str:
        return f"#{self.issue_number}" if self.issue_number is not None else f"commit {self.commit_sha}"

    @property
    def key(self) -> tuple[str, int]:
        return self.kind, self.comment_id


@dataclass(frozen=True)
class Claim:
    """A reaction Ferry asked for: ``new`` when this request made it (201), else it was there (200)."""

    new: bool
    reaction_id: int
    created_at: datetime | None


def reply_marker(comment_id: int) -> str:
    return REPLY_MARKER.format(comment_id=comment_id)


def written_by_app(comment: Comment, app: AppIdentity | None) -> bool:
    """Whether the App itself wrote ``comment``: its bot account (type ``Bot`` and the App's login), or an
    issue comment GitHub says was performed via the App's id. A person can never be a ``Bot`` account, nor
    take a ``[bot]`` login. With ``app`` unknown, any bot account counts (never a person)."""
    if comment.account_type != "Bot":
        return False
    if app is None:
        return True
    return comment.login.lower() == app.login.lower() or comment.via_app == app.app_id


def answered_ids(comments: Iterable[Comment], app: AppIdentity | None) -> set[int]:
    """Ids of the comments the App's own comments among ``comments`` answer (their reply markers). A
    marker in anyone else's comment counts for nothing: otherwise whoever can comment could cancel
    another person's command by writing its marker first."""
    found: set[int] = set()
    for comment in comments:
        if written_by_app(comment, app):
            found.update(int(match) for match in _REPLY_RE.findall(comment.body))
    return found


def has_reply(comments: Iterable[Comment], comment_id: int, app: AppIdentity | None) -> bool:
    return comment_id in answered_ids(comments, app)


def edited(comment: Comment) -> bool:
    """Whether the comment changed after it was posted (GitHub moves ``updated_at`` on an edit)."""
    return (
        comment.created_at is not None
        and comment.updated_at is not None
        and comment.updated_at.replace(microsecond=0) > comment.created_at.replace(microsecond=0)
    )


def is_command(comment: Comment) -> bool:
    """Whether a comment gives Ferry a command: a person wrote it, it was never edited (whoever may edit
    another's comment must not give a command in that person's name), and it parses as one."""
    if is_bot(comment.login, comment.account_type) or edited(comment):
        return False
    return parse_comment(comment.body) is not None


def expired(comment: Comment, now: datetime, max_age: timedelta) -> bool:
    """Whether a command is older than ``max_age`` at ``now`` (too late to act on: people moved on)."""
    return comment.created_at is not None and now - comment.created_at > max_age
