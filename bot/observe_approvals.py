"""Observe who approved the promotions of stages with ``promoters`` (``bot.core.approvals`` judges).

Read only where it matters, so an idle repository costs nothing more: the open promotion pull requests of
such stages (again only when one's ``updated_at`` or head moved), and a stage's newest merged promotion
while its ``ferry/health/<stage>`` status is not written yet (once per merge: afterwards the status is the
record).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from weakref import WeakKeyDictionary

from bot.core.approvals import PullReviews, merge_approved
from bot.core.config import PipelineConfig, Stage
from bot.core.config_review import GateRule
from bot.core.gates import health_context
from bot.core.snapshot import Deploy, PullRequest
from bot.errors import ExternalError
from bot.github.repo import RepoGitHub
from bot.github.reviews import ReviewReader

log = logging.getLogger("ferry.observe")
_READERS: WeakKeyDictionary[RepoGitHub, ReviewReader] = WeakKeyDictionary()


def reader_for(gh: RepoGitHub) -> ReviewReader:
    """One reader (and its cache) per repository client, living as long as the client."""
    if gh not in _READERS:
        _READERS[gh] = ReviewReader(gh)
    return _READERS[gh]


async def observe_approvals(
    gh: RepoGitHub,
    config: PipelineConfig,
    open_prs: Sequence[PullRequest],
    deploys: Mapping[str, Deploy],
) -> dict[int, PullReviews]:
    reader = reader_for(gh)
    found: dict[int, PullReviews] = {}
    for pr in open_prs:
        stage = config.stages.get(pr.stage)
        if stage is None or not stage.promoters:
            continue
        found[pr.number] = await reader.pull_reviews(
            pr.number,
            head_sha=pr.head_sha,
            author=pr.author,
            stage=pr.stage,
            promoters=stage.promoters,
            updated_at=pr.updated_at,
        )
    for name, deploy in deploys.items():
        stage = config.stages.get(name)
        promotion = deploy.promotion
        if stage is None or not stage.promoters or promotion is None:
            continue
        if health_context(name) in deploy.statuses:
            continue  # verification began (or the merge was held): the status is the record
        found[promotion.number] = await reader.pull_reviews(
            promotion.number,
            head_sha=promotion.head_sha,
            author="",
            stage=name,
            promoters=stage.promoters,
            merged=True,
        )
    return found


async def observe_gate_rule(
    gh: RepoGitHub, branch: str, now: datetime, config_commit: str | None = None
) -> GateRule | None:
    """Whether ``branch`` requires `ferry/gate` (read again when the config changed, else at most every few
    minutes); None when GitHub could not say, which leaves `ferry/config` without the warning."""
    reader = reader_for(gh)
    again = config_commit is not None and reader.config_commit != config_commit
    if config_commit is not None:
        reader.config_commit = config_commit
    try:
        return await reader.gate_rule(branch, now, again=again)
    except ExternalError as exc:
        log.warning("branch protection not read", extra={"repo": gh.full_name, "error": str(exc)})
        return None


async def merge_may_deploy(gh: RepoGitHub, stage: str, config: Stage, pull_number: int | None) -> bool:
    """For the merge fast path: whether a stage's merge may be deployed at once. A stage without
    ``promoters`` may; one with them only when GitHub says a promoter approved (or made) the merge."""
    if not config.promoters:
        return True
    if pull_number is None:
        return False
    pull = await reader_for(gh).merged_pull(pull_number, stage=stage, promoters=config.promoters)
    return merge_approved(pull)
