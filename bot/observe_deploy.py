"""Observe a stage's deploy commit: the newest commit on the default branch's first-parent line that changed
any of the stage's files, and the promotion that brought it.

No window of recently updated pull requests decides it (fifty unrelated PR updates would otherwise turn every
deploy commit into a promotion's head commit). Instead, for each file of the stage, the path's history as of
the pass's head commit (GitHub lists a merged PR's own commit there, under git's history simplification) and
then the pull request that brought that commit (its merge commit is on the first-parent line). A commit that
carries Ferry's trailers but no merged PR yet is a PR head whose merge GitHub has not associated yet: the
stage keeps no deploy commit this pass rather than take a PR head for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from bot.core.gates import health_context
from bot.core.promotion import parse_branch, parse_trailers
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion
from bot.core.verification import RESTATED
from bot.github.history import MergedPull, PathCommit, RepoHistory

# Commits of each file's history read per pass (one request either way): the deploy commit, and the stage's
# earlier promotions, to mark those overtaken before their verdict and to notice a merge that goes backwards.
HISTORY_DEPTH = 5


@dataclass(frozen=True)
class _Change:
    """A commit that changed a stage file, resolved to the commit on the first-parent line that brought it."""

    entry: PathCommit
    commit: str
    pull: MergedPull | None


@dataclass(frozen=True)
class StageDeploy:
    """The deploy commit (None: no file of the stage exists on the branch yet) and the merge commits of the
    stage's recent changes (for the merge fast path's "already seen" check)."""

    deploy: Deploy | None
    merges: frozenset[str]


class StatusReader(Protocol):
    """A commit's statuses by context (``RepoGitHub.statuses``, or a pass's read-once cache of it)."""

    async def statuses(self, sha: str) -> dict[str, CommitStatus]: ...


async def stage_deploy(
    gh: StatusReader,
    history: RepoHistory,
    *,
    stage: str,
    paths: Sequence[str],
    head: str,
    branch: str,
    overtaken_since: datetime,
) -> StageDeploy:
    """Find the stage's deploy commit as of ``head`` (see the module docstring)."""
    histories = await asyncio.gather(*(history.path_history(path, head, HISTORY_DEPTH) for path in paths))
    newest: _Change | None = None
    for entries in histories:
        if not entries:
            continue
        change = await _resolve(history, entries[0], branch, head)
        if change is None:
            return StageDeploy(None, frozenset())  # a promotion GitHub has not associated with its PR yet
        if newest is None or await _newer(history, newest.commit, change.commit):
            newest = change
    if newest is None:
        return StageDeploy(None, frozenset())
    statuses: dict[str, CommitStatus] = await gh.statuses(newest.commit)
    earlier = await _earlier_promotions(
        history, stage=stage, histories=histories, newest=newest, branch=branch, head=head
    )
    context = health_context(stage)
    overtaken = []
    for change in earlier:
        merged_at = change.pull.merged_at if change.pull else None
        if merged_at is None or merged_at < overtaken_since:
            continue
        status = (await gh.statuses(change.commit)).get(context)
        if status is not None and status.state == "pending":
            overtaken.append(change.commit)
    health = statuses.get(context)
    since = None
    if health is not None and health.state == "pending" and health.description.startswith(RESTATED):
        since = await history.pending_since(newest.commit, context)
    promotion = _promotion(newest.pull, stage)
    previous: tuple[str, ...] = ()
    if promotion is not None and context not in statuses and earlier:
        previous = parse_trailers(earlier[0].entry.message).images
    deploy = Deploy(
        commit=newest.commit,
        changed_by=newest.entry.sha,
        message=newest.entry.message,
        committed_at=(newest.pull.merged_at if newest.pull else None) or newest.entry.committed_at,
        promotion=promotion,
        statuses=statuses,
        overtaken=tuple(overtaken),
        previous_images=previous,
        ferry_commit=parse_trailers(newest.entry.message).stage == stage,
        verifying_since=since,
    )
    merges = frozenset({newest.commit, *(change.commit for change in earlier)})
    return StageDeploy(deploy, merges)


async def _resolve(history: RepoHistory, entry: PathCommit, branch: str, head: str) -> _Change | None:
    pull = await history.merged_pull(entry.sha, branch, head)
    if pull is not None:
        return _Change(entry, pull.merge_commit_sha, pull)
    if parse_trailers(entry.message).stage is not None:
        return None  # Ferry commits reach the branch only through pull requests
    return _Change(entry, entry.sha, None)  # pushed to the branch directly


async def _newer(history: RepoHistory, current: str, other: str) -> bool:
    """Whether ``other`` comes after ``current`` on the branch (both are on its first-parent line)."""
    if other == current:
        return False
    return await history.relation(current, other, ()) in ("equivalent", "moved_on")


async def _earlier_promotions(
    history: RepoHistory,
    *,
    stage: str,
    histories: Sequence[Sequence[PathCommit]],
    newest: _Change,
    branch: str,
    head: str,
) -> list[_Change]:
    """The stage's earlier promotions in its files' recent history, newest first (by merge time)."""
    found: dict[str, _Change] = {}
    for entries in histories:
        for entry in entries:
            if entry.sha == newest.entry.sha or parse_trailers(entry.message).stage != stage:
                continue
            change = await _resolve(history, entry, branch, head)
            if change is None or change.commit == newest.commit or change.commit in found:
                continue
            found[change.commit] = change
    return sorted(found.values(), key=_merged_at, reverse=True)


def _merged_at(change: _Change) -> float:
    moment = (change.pull.merged_at if change.pull else None) or change.entry.committed_at
    return moment.timestamp() if moment else 0.0


def _promotion(pull: MergedPull | None, stage: str) -> MergedPromotion | None:
    parsed = parse_branch(pull.head_ref) if pull is not None else None
    if pull is None or parsed is None or parsed[0] != stage:
        return None
    return MergedPromotion(
        number=pull.number,
        url=pull.url,
        stage=stage,
        freight_id=parsed[1],
        head_sha=pull.head_sha,
        merge_commit_sha=pull.merge_commit_sha,
        merged_at=pull.merged_at,
        labels=pull.labels,
    )
