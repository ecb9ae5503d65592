"""`ferry/config` on pull requests: a broken `.github/ferry.yml` is stopped before it merges.

A step of each reconcile pass (``Reconciler.steps``): a ``pull_request`` webhook only wakes the pass, and
an idle pass catches a pull request whose webhook was lost. For every open pull request whose head this
process has not checked yet, GitHub says whether it changes the config (``GET /pulls/{n}/files``); if so
the config at the head commit is read and checked as on the default branch (``bot.observe.load_at``,
update targets included), else the pull request gets success "Unchanged" (in a repository that has a
pipeline), so that branch protection can require `ferry/config` on every pull request. A pull request
that deletes the config is left alone.

Compare-and-swap: right before writing, the pull request's head is read again; if it moved, nothing is
written on the old commit and a later pass decides for the new one. Idempotent: a status already saying
the same is not posted again, and the review comment (``bot.core.config_review``) is found by its marker
and edited, never repeated. ``_checked`` is a cache of heads already settled (lost on restart: the first
pass after it reads each open pull request once, then writes nothing that is already there).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot import events
from bot.core.actions import SetStatus
from bot.core.config import CONFIG_PATH
from bot.core.config_review import (
    REVIEW_MARKER,
    UNCHANGED,
    config_verdict,
    fixed_comment,
    review_comment,
)
from bot.core.gates import STATUS_CONFIG
from bot.errors import Problem
from bot.github.pulls import OpenPull
from bot.github.repo import RepoGitHub
from bot.observe import load_at
from bot.observe_approvals import observe_gate_rule

log = logging.getLogger("ferry.config_prs")


class ConfigReview:
    """``client`` gives a repository's adapter; ``uses_ferry`` whether its default branch has a config
    (None: not known yet, as before the repository's first pass)."""

    def __init__(
        self,
        client: Callable[[str], RepoGitHub],
        uses_ferry: Callable[[str], bool | None],
        *,
        emit: events.EventSink = events.discard,
    ) -> None:
        self.client = client
        self.uses_ferry = uses_ferry
        self.emit = emit
        self._checked: dict[str, dict[int, str]] = {}  # repo -> {pull request: head settled}

    async def __call__(self, repo: str) -> int:
        """Check every open pull request of ``repo`` with a head not settled yet; returns how many."""
        gh = self.client(repo)
        pulls = await gh.open_pulls()
        checked = self._checked.setdefault(repo, {})
        for number in checked.keys() - {p.number for p in pulls}:
            del checked[number]
        todo = [p for p in pulls if checked.get(p.number) != p.head_sha]
        for pull in todo:
            if await self.review(gh, pull):
                checked[pull.number] = pull.head_sha
        return len(todo)

    async def review(self, gh: RepoGitHub, pull: OpenPull) -> bool:
        """Post `ferry/config` (and the review comment) for ``pull``'s head; False: not settled (the head
        moved, or whether the repository has a pipeline is not known yet)."""
        problems: list[Problem] = []
        if await gh.pull_changes(pull.number, CONFIG_PATH):
            tree = await gh.tree(pull.head_sha)
            if CONFIG_PATH not in tree:
                return True  # the pull request removes the pipeline: nothing to check
            text = await gh.blob_text(tree[CONFIG_PATH], CONFIG_PATH)
            config, problems, _ = await load_at(gh, text, tree)
            branch = await gh.default_branch()
            rule = await observe_gate_rule(gh, branch, datetime.now(UTC)) if not problems else None
            verdict = config_verdict(config, problems, gate_rule=rule, branch=branch)
        else:
            uses_ferry = self.uses_ferry(gh.full_name)
            if uses_ferry is None:
                return False  # the default branch is not read yet: a later pass decides
            if not uses_ferry:
                return True  # not a Ferry repository, and this pull request does not make it one
            verdict = ("success", UNCHANGED)
        if verdict is None:
            return True
        current = (await gh.statuses(pull.head_sha)).get(STATUS_CONFIG)
        if await gh.open_pull_head(pull.number) != pull.head_sha:
            log.info("pull request head moved; deciding again", extra={"repo": gh.full_name})
            return False
        link = await self._comment(gh, pull, problems, verdict[1])
        if current is not None and (current.state, current.description) == verdict:
            return True
        await gh.set_status(SetStatus(pull.head_sha, STATUS_CONFIG, *verdict, link or pull.url))
        detail = f"#{pull.number} at {pull.head_sha[:7]}: {verdict[0]}: {verdict[1]}"
        self.emit(events.Event(events.CONFIG_STATUS, gh.full_name, "", detail))
        return True

    @staticmethod
    async def _comment(gh: RepoGitHub, pull: OpenPull, problems: list[Problem], said: str) -> str | None:
        """One comment lists the problems when there is more than one; an earlier one is edited."""
        if problems:
            body = review_comment(pull.head_sha, problems)
            return await gh.marked_comment(pull.number, body, marker=REVIEW_MARKER, create=len(problems) > 1)
        body = fixed_comment(pull.head_sha, said)
        return await gh.marked_comment(pull.number, body, marker=REVIEW_MARKER, create=False)
