"""The chaos scenario's invariants, counted over the stand-ins' own records (plain data in, counts out).

Nothing here reads Ferry's snapshots: the history is the GitHub stand-in's repository and reflog, the
syncs are the Argo CD stand-in's operation log, the statuses and pull requests GitHub's records. Each
``count_*`` function returns how many times its rule was broken; ``INVARIANTS`` names each with its
target (the ``--json`` ``invariants`` object of ``ferry sandbox --scenario chaos``).
"""

from __future__ import annotations

import bisect
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

STALE_SYNCS = "syncs_not_to_newest_deploy_commit"
OFF_LINE_SYNCS = "syncs_off_first_parent_line"
DUPLICATE_PRS = "duplicate_prs_per_stage_and_freight"
CLOSED_AFTER_MERGE = "prs_closed_after_merge"
CONTRADICTING_HEALTH = "health_contradicting_argocd"
LOST_VERDICTS = "lost_verdicts"
DRIFT_DETECTED = "drift_detected"
WRITES_WHILE_HELD = "writes_while_held_by_secondary_limit"

# name -> the count the run must end with.
INVARIANTS: dict[str, int] = {
    STALE_SYNCS: 0,
    OFF_LINE_SYNCS: 0,
    DUPLICATE_PRS: 0,
    CLOSED_AFTER_MERGE: 0,
    CONTRADICTING_HEALTH: 0,
    LOST_VERDICTS: 0,
    DRIFT_DETECTED: 1,
    WRITES_WHILE_HELD: 0,
}
FINAL_STATES = frozenset({"success", "failure", "error"})


@dataclass(frozen=True)
class History:
    """The default branch as GitHub kept it: ``line`` its first-parent line (oldest first), ``changes``
    which stages' files each commit of the line changed (against its first parent), ``heads`` every move
    of its head as (seconds since the epoch, sha), oldest first."""

    line: Sequence[str]
    changes: Mapping[str, frozenset[str]]
    heads: Sequence[tuple[float, str]]

    def head_at(self, at: float) -> str | None:
        """The branch's head at moment ``at`` (None before it existed)."""
        index = bisect.bisect_right([moved for moved, _sha in self.heads], at)
        return self.heads[index - 1][1] if index else None

    def deploy_commit(self, stage: str, sha: str | None) -> str | None:
        """The newest commit at or before ``sha`` on the line that changed ``stage``'s files; None when
        ``sha`` is not on the line (or no commit changed them)."""
        if sha is None or sha not in self.changes:
            return None
        for commit in reversed(self.line[: self.line.index(sha) + 1]):
            if stage in self.changes[commit]:
                return commit
        return None


@dataclass(frozen=True)
class Sync:
    """A sync operation Ferry asked Argo CD for: the app's stage, the commit it resolved to, when."""

    app: str
    stage: str
    revision: str
    at: float


@dataclass(frozen=True)
class Pull:
    """A Ferry promotion pull request: its stage and freight (from its branch) and its merge commit."""

    number: int
    stage: str
    freight: str
    merge_sha: str | None


@dataclass(frozen=True)
class Health:
    """A ``ferry/health/<stage>`` commit status, in the order GitHub recorded them."""

    sha: str
    stage: str
    state: str
    description: str


@dataclass(frozen=True)
class AppFinal:
    """An Argo CD app at the end: the commit its last sync deployed and its health status."""

    app: str
    stage: str
    revision: str | None
    health: str


def count_stale_syncs(history: History, syncs: Sequence[Sync]) -> int:
    """Syncs whose commit did not hold the stage's newest deploy commit at the moment they were asked."""
    return sum(
        1
        for sync in syncs
        if history.deploy_commit(sync.stage, sync.revision) is None
        or history.deploy_commit(sync.stage, sync.revision)
        != history.deploy_commit(sync.stage, history.head_at(sync.at))
    )


def count_off_line_syncs(history: History, syncs: Sequence[Sync]) -> int:
    """Syncs to a commit that is not on the default branch's first-parent line (a PR head, a branch)."""
    return sum(1 for sync in syncs if sync.revision not in history.changes)


def count_duplicate_prs(pulls: Sequence[Pull]) -> int:
    """Pull requests beyond the first for one (stage, freight), open or closed."""
    per = Counter((pull.stage, pull.freight) for pull in pulls)
    return sum(n - 1 for n in per.values())


def count_closed_after_merge(closes: Sequence[tuple[int, bool]]) -> int:
    """Requests to close a pull request that was already merged: (number, merged then)."""
    return sum(1 for _number, merged in closes if merged)


def last_health(statuses: Sequence[Health], sha: str, stage: str) -> Health | None:
    found = [s for s in statuses if s.sha == sha and s.stage == stage]
    return found[-1] if found else None


def count_contradicting_health(history: History, statuses: Sequence[Health], apps: Sequence[AppFinal]) -> int:
    """Stages whose final health status on their deploy commit says otherwise than Argo CD: success
    while an app does not run that commit healthy, or anything else while every app does."""
    head = history.line[-1] if history.line else None
    count = 0
    for stage in sorted({app.stage for app in apps}):
        deploy = history.deploy_commit(stage, head)
        if deploy is None:
            continue
        fine = all(
            history.deploy_commit(stage, app.revision) == deploy and app.health == "Healthy"
            for app in apps
            if app.stage == stage
        )
        status = last_health(statuses, deploy, stage)
        count += (status is not None and status.state == "success") != fine
    return count


def count_lost_verdicts(pulls: Sequence[Pull], statuses: Sequence[Health]) -> int:
    """Merged promotions whose merge commit ends without a final health status for their stage (none, or
    still pending)."""
    count = 0
    for pull in pulls:
        if pull.merge_sha is None:
            continue
        status = last_health(statuses, pull.merge_sha, pull.stage)
        count += status is None or status.state not in FINAL_STATES
    return count


def count_drift_reports(statuses: Sequence[Health]) -> int:
    """Distinct "drifted" failures Ferry posted (one per commit, stage and description)."""
    return len(
        {
            (s.sha, s.stage, s.description)
            for s in statuses
            if s.state == "failure" and s.description.startswith("drifted")
        }
    )


def invariants(
    history: History,
    *,
    syncs: Sequence[Sync],
    pulls: Sequence[Pull],
    closes: Sequence[tuple[int, bool]],
    statuses: Sequence[Health],
    apps: Sequence[AppFinal],
    refusals: Sequence[tuple[str, float, bool]] = (),
    replicas: int = 1,
    block_seconds: float = 60.0,
) -> dict[str, dict[str, int]]:
    """Every invariant as ``{name: {"count": N, "target": M}}``; ``refusals`` are GitHub's secondary-limit
    refusals (caller, when, tripped) of a run with ``replicas`` Ferry processes."""
    counts = {
        STALE_SYNCS: count_stale_syncs(history, syncs),
        OFF_LINE_SYNCS: count_off_line_syncs(history, syncs),
        DUPLICATE_PRS: count_duplicate_prs(pulls),
        CLOSED_AFTER_MERGE: count_closed_after_merge(closes),
        CONTRADICTING_HEALTH: count_contradicting_health(history, statuses, apps),
        LOST_VERDICTS: count_lost_verdicts(pulls, statuses),
        DRIFT_DETECTED: count_drift_reports(statuses),
        WRITES_WHILE_HELD: count_writes_while_held(refusals, replicas=replicas, block_seconds=block_seconds),
    }
    return {name: {"count": counts[name], "target": target} for name, target in INVARIANTS.items()}


def count_writes_while_held(
    refusals: Sequence[tuple[str, float, bool]], *, replicas: int, block_seconds: float
) -> int:
    """Content-creating requests sent while GitHub held the caller after a secondary limit, beyond what no
    process could avoid: GitHub asks for at least a minute's wait, so the process that tripped the limit
    sends nothing more within it, and each other replica of the same installation meets the block at most
    once (its first refused write is how it learns of it). ``refusals``: (caller, when, tripped), in order."""
    excess = 0
    for caller, start, tripped in refusals:
        if not tripped:
            continue
        met = sum(1 for c, at, t in refusals if c == caller and not t and start <= at < start + block_seconds)
        excess += max(0, met - (replicas - 1))
    return excess


def missed(result: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The invariants whose count is not at its target."""
    return [name for name, entry in result.items() if entry["count"] != entry["target"]]
