"""Compare-and-swap: whether a write decided from a pass's snapshot still stands against the one fact it
depends on, re-read right before the write. Pure; the adapters re-read and the actor asks these.

A webhook is a hint to look again, never the truth: a decision made on a snapshot seconds old is only
carried out when what it was made on is still so, and otherwise the repository is decided again.
"""

from __future__ import annotations

from typing import Literal

from bot.core.argo_app import Relation
from bot.core.promotion import parse_trailers
from bot.core.snapshot import CommitStatus

StatusCheck = Literal["write", "done", "stale"]
BranchCheck = Literal["rebuild", "moved", "foreign"]


def deploy_still_newest(relation: Relation) -> bool:
    """Whether a deploy commit is still its stage's newest deploy commit, given how the default branch's
    head (re-read) stands to it (``RepoHistory.relation(deploy_commit, head, stage_paths)``): the head is
    the commit itself, or descends from it without a change to any of the stage's files. ``behind``,
    ``diverged`` (the branch was rewritten) and ``unknown`` are not: decide again rather than sync."""
    return relation in ("same", "equivalent")


def sync_stands(health: CommitStatus | None) -> bool:
    """Whether a deploy commit may still be synced, given its ``ferry/health/<stage>`` status re-read: only
    while its verification is under way (pending, or not begun). Once the commit is judged, a sync decided
    earlier would undo what was done to the app since the verdict (a person's sync back by hand, which the
    watch over verified stages must see as drift)."""
    return health is None or health.state == "pending"


def status_write(
    seen: CommitStatus | None, current: CommitStatus | None, state: str, description: str
) -> StatusCheck:
    """Whether to post ``state``/``description`` on a (commit, context) whose status the decision saw as
    ``seen`` and GitHub, re-read, reports as ``current``.

    ``done``: it already says so (another replica, or a repeated pass, wrote it). ``write``: nothing was
    written since the decision. ``stale``: someone wrote a status since (a verdict or a newer pending), so
    the decision is older than what GitHub holds and the repository is decided again instead.
    """
    if current is not None and (current.state, current.description) == (state, description):
        return "done"
    if seen is None or current is None:
        return "write" if seen is current else "stale"
    return "write" if (seen.state, seen.description) == (current.state, current.description) else "stale"


def may_close(state: str, merged: bool) -> bool:
    """A superseded promotion is closed only while it is still open and unmerged (merging is approval)."""
    return state == "open" and not merged


def branch_rebuild(stage: str, expected: str, current: str | None, current_message: str) -> BranchCheck:
    """Whether Ferry may force-push a rebuilt promotion onto its branch, which GitHub cannot make
    conditional (``PATCH /git/refs`` takes no expected old SHA): only when the branch's head, read right
    before, is still the head the decision saw (``expected``) and is Ferry's own commit for ``stage`` (it
    carries Ferry's trailers). ``moved``: the branch changed since (decide again); ``foreign``: a person's
    commit is on top, and rebuilding would lose it."""
    if current is None:
        return "moved"
    if parse_trailers(current_message).stage != stage:
        return "foreign"
    return "rebuild" if current == expected else "moved"
