"""Read GitHub in full only when something changed: one repository's snapshots across passes.

A pass first makes the change check (``bot.github.activity``: the default branch's head and the newest
updated issue or pull request, both conditional, both 304 while nothing changed). When both marks are
those of the last full read, the pass reuses that read's GitHub part (config, stages' files, deploy
commits and their statuses, open promotions) and reads only what is not on GitHub: the warehouses'
freight and, for stages that verify, Argo CD (``bot.observe.complete``). Otherwise it reads everything.

Everything stays derived from GitHub: this is a cache that only saves reads, and a restart loses nothing
but it (the first pass reads in full). A full read is made regardless

- when the caller asks (a webhook, a command, a retry, the pass after one that wrote to GitHub: Ferry's
  own statuses do not move the marks),
- when the last full read is older than ``full_every`` (the safety net for a missed webhook, since some
  changes, such as another app's commit status or a review, move neither mark),
- and never while ``enabled`` is off (``bench/api_cost.py`` measures both paths).

While a stage verifies, Argo CD is read at the fast interval but GitHub only every ``verifying_check_every``:
Ferry's verdict is its own write (the next pass reads in full), and a merge or push meanwhile arrives as a
webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from bot.core.snapshot import Snapshot
from bot.github.activity import Mark, latest_activity
from bot.github.repo import RepoGitHub
from bot.observe import FreightSource, complete, read_github
from bot.observe_apps import AppReader

FULL_READ_IDLE_PASSES = 6  # one idle-interval pass in this many reads in full (a replica alone)
FULL_READ_EVERY = timedelta(minutes=30)  # six idle intervals at the default FERRY_POLL_IDLE
VERIFYING_CHECK_EVERY = timedelta(seconds=30)  # six fast intervals at the default FERRY_POLL_FAST


def full_read_every(poll_fast: timedelta, poll_idle: timedelta, shards: int) -> timedelta:
    """How old a full read may grow. Alone, every ``FULL_READ_IDLE_PASSES``-th idle-interval pass reads in
    full; with several replicas (``shards`` > 1) every one does, because a delivery for a repository is
    dropped by the replica that got it when another owns it (deploy/README.md: shards), and changes the
    change check cannot see (a review, another app's status, a commit comment) must still reach the owner
    at its next idle-interval pass. A fast interval less, so that the timer's tick is due on time."""
    passes = FULL_READ_IDLE_PASSES if shards <= 1 else 1
    return max(poll_fast, poll_idle * passes - poll_fast)


@dataclass
class _Seen:
    mark: Mark
    github: Snapshot | None  # the GitHub part of the last full read (None: no .github/ferry.yml)
    read_at: datetime  # when GitHub was last read in full
    checked_at: datetime  # when the change check last ran


@dataclass(frozen=True)
class Observed:
    """A pass's snapshot (None: not a Ferry repository) and whether its GitHub part was reused."""

    snapshot: Snapshot | None
    reused: bool


class SnapshotReuse:
    """The last full read of each repository and the marks it was made at (see the module docstring)."""

    def __init__(
        self,
        *,
        full_every: timedelta = FULL_READ_EVERY,
        verifying_check_every: timedelta = VERIFYING_CHECK_EVERY,
        enabled: bool = True,
    ) -> None:
        self.full_every = full_every
        self.verifying_check_every = verifying_check_every
        self.enabled = enabled
        self._seen: dict[str, _Seen] = {}

    def forget(self, repo: str) -> None:
        """The next pass of ``repo`` reads GitHub in full."""
        self._seen.pop(repo, None)

    async def observe(
        self,
        gh: RepoGitHub,
        *,
        now: datetime,
        freight: FreightSource | None,
        apps: AppReader | None,
        argocd_urls: Mapping[str, str],
        watch: bool = False,
        full: bool = False,
        verifying: bool = False,
    ) -> Observed:
        """The pass's snapshot, reading GitHub in full only when ``full``, when the full read is due, or when
        the change check says something changed; ``verifying`` spaces the change checks out."""
        if not self.enabled:  # every pass reads everything, as Ferry did before the change check
            branch = await gh.default_branch()
            head = await gh.head(branch)
            github = await read_github(gh, branch=branch, head=head, now=now, argocd_urls=argocd_urls)
            snapshot = await complete(gh, github, freight=freight, apps=apps, watch=watch)
            return Observed(snapshot, reused=False)
        seen = self._seen.get(gh.full_name)
        if full or seen is None or now - seen.read_at >= self.full_every:
            return await self._full(
                gh, None, now=now, freight=freight, apps=apps, urls=argocd_urls, watch=watch
            )
        if not (verifying and now - seen.checked_at < self.verifying_check_every):
            mark = await check(gh)
            if mark != seen.mark:
                return await self._full(
                    gh, mark, now=now, freight=freight, apps=apps, urls=argocd_urls, watch=watch
                )
            seen.checked_at = now
        github = replace(seen.github, now=now) if seen.github is not None else None
        snapshot = await complete(gh, github, freight=freight, apps=apps, watch=watch)
        return Observed(snapshot, reused=True)

    async def _full(
        self,
        gh: RepoGitHub,
        mark: Mark | None,
        *,
        now: datetime,
        freight: FreightSource | None,
        apps: AppReader | None,
        urls: Mapping[str, str],
        watch: bool,
    ) -> Observed:
        # The marks are read before the rest: a change made during the read moves them past what is kept,
        # so the next check reads again rather than miss it.
        mark = mark or await check(gh)
        branch = await gh.default_branch()
        github = await read_github(gh, branch=branch, head=mark.head, now=now, argocd_urls=urls)
        self._seen[gh.full_name] = _Seen(mark, github, read_at=now, checked_at=now)
        snapshot = await complete(gh, github, freight=freight, apps=apps, watch=watch)
        return Observed(snapshot, reused=False)


async def check(gh: RepoGitHub) -> Mark:
    """The change check: the default branch's head and the newest activity, read concurrently."""
    branch = await gh.default_branch()
    head, activity = await asyncio.gather(gh.head(branch), latest_activity(gh))
    return Mark(head, activity)
