"""Comment commands found on GitHub, not remembered: every pass of a repository answers the commands in
its recent comments that the App has not answered yet.

A webhook only wakes the pass (and names its comment, in case a list lags behind it); what to answer is
read from GitHub each time: the repository's issue and pull request comments (``since`` the window's
start, newest first) and its commit comments (from the page the window starts on), every page. A
command is answered when the App's own comment carries ``<!-- ferry:reply-to:<id> -->``
(``bot.command_replies``); anything else is answered now, by the repository's owner only (the sweep is a
step of its reconcile pass: one writer per repository). So a restart, an outage or a rate limit delays a
command but never loses it: the pass fails, is retried with backoff, and the next sweep finds the command
still unanswered. Replicas that all sweep the same repository (no sharding) answer each command once:
the runner's 👀 reaction is an atomic claim, and a command another replica claimed is looked at again
when that claim may be taken over (``CommandRunner.claim_timeout``). A ``/promote`` or ``/rollback``
older than ``FERRY_COMMAND_MAX_AGE`` is answered as expired, never run late (``bot.command_runner``).

The window: after a start-up it reaches ``lookback`` back (``FERRY_COMMAND_LOOKBACK``: commands posted
while Ferry was down longer than that are never seen). Once every command in it is answered it starts
``SETTLE`` before the last sweep (lists show new comments a moment late, and clocks differ), moving by at
least ``STEP`` at a time so that idle passes repeat the same request and GitHub answers 304 (free of rate
limit): one conditional request per list per idle pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Literal, Protocol

from bot import events
from bot.command_replies import AppIdentity, Comment, answered_ids, is_command
from bot.errors import ExternalError

if TYPE_CHECKING:
    from bot.command_runner import CommandRunner
    from bot.server import WebhookDelivery

log = logging.getLogger("ferry.commands")

DEFAULT_LOOKBACK = timedelta(hours=24)
SETTLE = timedelta(minutes=5)
STEP = timedelta(minutes=10)
LOOK_AGAIN_MARGIN = 0.5  # seconds after another replica's claim may be taken over
CommentKey = tuple[str, int]  # ("issue" | "commit", comment id)


class SweepGitHub(Protocol):
    """What the sweep reads of one repository (``bot.github.comments.RepoComments``)."""

    async def app(self) -> AppIdentity | None: ...
    async def recent_issue_comments(self, since: datetime) -> list[Comment]: ...
    async def recent_commit_comments(self, since: datetime, first_page: int) -> tuple[list[Comment], int]: ...
    async def comment(self, kind: Literal["issue", "commit"], comment_id: int) -> Comment | None: ...


@dataclass
class _Window:
    """One repository's sweep window: a cache of what this process read, rebuilt after a restart."""

    since: datetime
    commit_page: int = 1
    handled: dict[CommentKey, datetime] = field(default_factory=dict)  # answered here, by creation time
    hints: dict[CommentKey, str] = field(default_factory=dict)  # comments webhooks named -> delivery id


class CommandSweep:
    """A step of each reconcile pass (``Reconciler.steps``); ``on_comment`` is the webhook router's hook.

    ``lookback`` bounds how old a comment the first sweep after a start-up reads; ``clock`` is now (UTC).
    """

    def __init__(
        self,
        runner: CommandRunner,
        client: Callable[[str], SweepGitHub],
        *,
        lookback: timedelta = DEFAULT_LOOKBACK,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.runner = runner
        self.client = client
        self.lookback = lookback
        self.clock = clock
        self._windows: dict[str, _Window] = {}
        self._looking: set[str] = set()  # repositories with a pass due when a claim may lapse

    async def on_comment(self, delivery: WebhookDelivery) -> None:
        """Note the comment a webhook announces (the router then triggers the owner's pass)."""
        payload = delivery.payload
        comment, repository = payload.get("comment"), payload.get("repository")
        if delivery.event not in ("issue_comment", "commit_comment") or payload.get("action") != "created":
            return
        if isinstance(comment, dict) and isinstance(repository, dict) and isinstance(comment.get("id"), int):
            kind = "issue" if delivery.event == "issue_comment" else "commit"
            hints = self._window(str(repository.get("full_name", ""))).hints
            hints[(kind, int(comment["id"]))] = delivery.delivery_id

    def _window(self, repo: str) -> _Window:
        if repo not in self._windows:
            self._windows[repo] = _Window(since=_second(self.clock() - self.lookback))
        return self._windows[repo]

    async def __call__(self, repo: str) -> int:
        """Answer every command of ``repo`` nobody answered yet; returns how many were handled.

        Raises a temporary ``ExternalError`` when GitHub cannot be read or answered now (the pass is
        retried and the window kept); a permanent failure to answer one command is logged and that
        command left alone until the next start-up.
        """
        started = self.clock()
        window = self._window(repo)
        gh = self.client(repo)
        app = await gh.app()
        issue = await gh.recent_issue_comments(window.since)
        commit, window.commit_page = await gh.recent_commit_comments(window.since, window.commit_page)
        found = {c.key: c for c in [*issue, *commit]}
        for kind, comment_id in window.hints.keys() - found.keys():
            hinted = await gh.comment("issue" if kind == "issue" else "commit", comment_id)
            if hinted is not None:
                found[hinted.key] = hinted
        answered = {("issue", i) for i in answered_ids(issue, app)}
        answered |= {("commit", i) for i in answered_ids(commit, app)}
        todo = sorted(
            (
                c
                for key, c in found.items()
                if key not in answered
                and key not in window.handled
                and self._new(c, window)
                and is_command(c)
            ),
            key=lambda c: (c.created_at or started, c.comment_id),
        )
        for comment in todo:
            # What the command causes names the delivery that announced it, not the pass's trigger.
            token = events.DELIVERY.set(window.hints.get(comment.key, ""))
            try:
                retry_in = await self._answer(comment)
            finally:
                events.DELIVERY.reset(token)
            if retry_in is not None:  # another replica claimed it: look again when its claim may lapse
                self._look_again(repo, retry_in)
                continue
            window.handled[comment.key] = comment.created_at or started
        window.hints.clear()
        self._advance(window, started)
        return len(todo)

    @staticmethod
    def _new(comment: Comment, window: _Window) -> bool:
        return comment.created_at is None or comment.created_at >= window.since

    async def _answer(self, comment: Comment) -> float | None:
        """Answer one command; the seconds until another replica's claim on it may be taken over, when it
        is that replica's to answer (None: answered, or given up on)."""
        log.info(
            "answering a command",
            extra={"repo": comment.repo, "comment": comment.comment_id, "on": comment.where},
        )
        try:
            outcome = await self.runner.handle(comment)
        except ExternalError as exc:
            if exc.temporary:
                raise
            log.warning(
                "command could not be answered",
                extra={"repo": comment.repo, "comment": comment.comment_id, "error": str(exc)},
            )
            return None
        return outcome.retry_in if outcome.verdict == "claimed" else None

    def _look_again(self, repo: str, delay: float) -> None:
        """One more pass of ``repo`` after ``delay`` seconds (a little more: the claim must have lapsed)."""
        if repo in self._looking:
            return
        self._looking.add(repo)

        def wake() -> None:
            self._looking.discard(repo)
            self.runner.trigger(repo)

        asyncio.get_running_loop().call_later(max(0.0, delay) + LOOK_AGAIN_MARGIN, wake)

    def _advance(self, window: _Window, started: datetime) -> None:
        """Every command in the window is answered: start the next window ``SETTLE`` before this sweep,
        when that moves it by ``STEP`` at least (idle passes then repeat one request, answered 304)."""
        since = _second(started - SETTLE)
        if since - window.since >= STEP:
            window.since = since
            window.handled = {key: at for key, at in window.handled.items() if at >= since}


def _second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)
