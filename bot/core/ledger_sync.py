"""What the freight ledger should record, pure: the GitHub Deployment (and its status) each health
status of a stage's deploy commit stands for.

A health verdict and its ledger record are written together: :func:`attach_ledger` hangs the record on
the health ``SetStatus`` a pass decides, so the actor writes it right after the commit status and never
without it. What a pass could not write (the Deployments API failed, the status was written by the merge
fast path, or the repository was used before the ledger existed) is caught up by :func:`ledger_actions`
from the ledger read back: the commit status decides, the ledger follows it.

``ferry/health/<stage>`` to deployment state: pending → ``in_progress``; success → ``success``;
failure (or error) → ``failure``; a "Superseded" error → ``inactive``. A drift failure on a verified
stage is not a new verdict, and a merge held for want of an approval deployed nothing: neither is recorded
(the freight did not fail verification; DORA and "failed freight stays out" must not count it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime

from bot.core.actions import Action, RecordDeployment, SetStatus
from bot.core.approvals import unapproved
from bot.core.drift import is_drift
from bot.core.freight import Freight, FreightImage
from bot.core.gates import HEALTH_PREFIX, health_context
from bot.core.history import of_stage
from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE, TASK_ROLLBACK, LedgerEntry
from bot.core.promotion import LABEL_ROLLBACK
from bot.core.snapshot import CommitStatus, Deploy, Snapshot
from bot.core.stage_view import StageView
from bot.core.text import fit_description

SUPERSEDED = "Superseded"
OUTCOME_OF = {"in_progress": ("pending", "in_progress", "verified", "failed"), "success": ("verified",)}


def task_of(deploy: Deploy) -> str:
    """``ferry:rollback`` for a merged rollback, ``ferry:promote`` for Ferry's other promotions, and
    ``ferry:baseline`` for a deploy commit Ferry did not make (what a stage ran before Ferry)."""
    if deploy.promotion is not None and LABEL_ROLLBACK in deploy.promotion.labels:
        return TASK_ROLLBACK
    return TASK_PROMOTE if deploy.by_ferry else TASK_BASELINE


def running_freight(view: StageView) -> Freight | None:
    """The freight a stage runs: Ferry's promoted freight, else what its files hold (tags, digests)."""
    if view.freight is not None:
        return view.freight
    images = tuple(FreightImage(i, t, view.digests.get(i)) for i, t in view.tags.items() if t)
    return Freight(view.warehouse, images) if images else None


def deployment_state(status: CommitStatus) -> str | None:
    """The deployment state a health status stands for (None: nothing to record)."""
    if status.state == "pending":
        return "in_progress"
    if status.state == "success":
        return "success"
    if status.description.startswith(SUPERSEDED):
        return "inactive"
    if is_drift(status.description) or unapproved(status.description):
        return None  # not a verdict on the freight: drift on a verified stage, or a merge held unapproved
    return "failure"


def record_for(
    snapshot: Snapshot, view: StageView, state: str, description: str, url: str | None
) -> RecordDeployment | None:
    deploy = view.deploy
    freight = running_freight(view)
    if deploy is None or freight is None or snapshot.config is None:
        return None
    return RecordDeployment(
        stage=view.name,
        sha=deploy.commit,
        task=task_of(deploy),
        freight=freight,
        state=state,
        description=fit_description(description),
        url=url,
        production=snapshot.config.stages[view.name].production,
        pushed_at=first_seen(freight, deploy, snapshot.ledger or ()),
    )


def first_seen(freight: Freight, deploy: Deploy, ledger: Sequence[LedgerEntry]) -> datetime | None:
    """When the freight was first seen, the start of DORA lead time: the earliest ``pushed_at`` (else
    ``created_at``) of its entries in any stage's ledger, or the time of the commit that first brought it
    (Ferry commits a promotion when it discovers freight for an auto-promoting stage). The registry's own
    push time is not read: the Distribution API lists tags without one."""
    seen = [e.pushed_at or e.created_at for e in ledger if e.freight.id == freight.id]
    if deploy.committed_at is not None:
        seen.append(deploy.committed_at)
    return min(seen, default=None)


def attach_ledger(
    actions: Sequence[Action], snapshot: Snapshot, views: Mapping[str, StageView]
) -> list[Action]:
    """Hang the ledger record on each health status that begins or ends a verification of a stage's
    deploy commit, and ``inactive`` on each that marks an earlier one superseded. Restated pendings and
    drift add nothing."""
    out: list[Action] = []
    for action in actions:
        if isinstance(action, SetStatus) and action.context.startswith(HEALTH_PREFIX):
            out.append(replace(action, ledger=_record_of(action, snapshot, views)))
        else:
            out.append(action)
    return out


def _record_of(
    action: SetStatus, snapshot: Snapshot, views: Mapping[str, StageView]
) -> RecordDeployment | None:
    stage = action.context.removeprefix(HEALTH_PREFIX)
    view = views.get(stage)
    if view is None or view.deploy is None:
        return None
    state = deployment_state(CommitStatus(action.context, action.state, action.description))
    if state == "inactive":
        return RecordDeployment(stage, action.sha, "", Freight(view.warehouse), "inactive", "superseded")
    if action.sha != view.deploy.commit or state is None:
        return None
    current = view.deploy.statuses.get(action.context)
    if current is not None and (current.state != "pending" or state == "in_progress"):
        return None  # a restated pending, or drift watch on a decided stage: no new verification
    return record_for(snapshot, view, state, action.description, action.target_url)


def ledger_actions(
    snapshot: Snapshot, views: Mapping[str, StageView], decided: Sequence[Action] = ()
) -> list[Action]:
    """Catch the ledger up with the commit statuses (needs ``snapshot.ledger``): the current deploy
    commit's verification recorded as its status says, verifications a later deploy commit overtook
    marked ``inactive``, and in production stages every verified deployment but the newest marked
    ``inactive`` (GitHub does that itself only outside production environments). Stages whose health
    status this pass already writes (``decided``) are left to that write."""
    if snapshot.ledger is None or snapshot.config is None:
        return []
    writing = {
        a.context.removeprefix(HEALTH_PREFIX)
        for a in decided
        if isinstance(a, SetStatus) and a.ledger is not None
    }
    actions: list[Action] = []
    for name, view in views.items():
        entries = of_stage(snapshot.ledger, name)
        deploy = view.deploy
        if deploy is not None and name not in writing:
            actions += _current(snapshot, view, deploy, entries)
        newest_verified = next((e for e in entries if e.verified), None)
        production = snapshot.config.stages[name].production
        for entry in entries:
            stale = entry.outcome in ("pending", "in_progress") and (
                deploy is None or entry.sha != deploy.commit
            )
            replaced = production and entry.verified and entry is not newest_verified
            if entry.active and (stale or replaced):
                actions.append(
                    RecordDeployment(name, entry.sha, entry.task, entry.freight, "inactive", "superseded")
                )
    return actions


def _current(
    snapshot: Snapshot, view: StageView, deploy: Deploy, entries: Sequence[LedgerEntry]
) -> list[Action]:
    status = deploy.statuses.get(health_context(view.name))
    state = deployment_state(status) if status is not None else None
    if status is None or state in (None, "inactive"):
        return []
    task = task_of(deploy)
    mine = [e for e in entries if e.sha == deploy.commit and e.task == task]
    wanted = OUTCOME_OF.get(state, ("failed",))
    if mine and mine[0].outcome in wanted:
        return []
    record = record_for(snapshot, view, state, status.description, status.target_url)
    return [record] if record is not None else []


def ledger_fingerprint(snapshot: Snapshot) -> tuple[object, ...]:
    """What the ledger's reading depends on: the default branch's head, each stage's deploy commit and
    health verdict. While it stays the same, no verification began or ended, so the ledger read before still
    holds (Ferry writes the ledger only when a verdict moves)."""
    stages = tuple(
        sorted(
            (
                name,
                deploy.commit,
                status.state if (status := deploy.statuses.get(health_context(name))) else "",
            )
            for name, deploy in snapshot.deploys.items()
        )
    )
    return (snapshot.head_sha, stages)
