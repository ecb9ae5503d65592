"""Auto-rollback (``verify.on_failure: rollback``), pure: when a promotion fails verification, open a
rollback pull request to the last freight verified in that stage (the freight ledger, a baseline
included), merge it when the stage has ``auto_merge``, and say so under the failed promotion with both
links. It never loops: a rollback that fails verification itself stops, and says so.

Kargo offers automatic rollback only in its paid tier; here it is one config key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from bot.core.actions import Action, MergePromotion, OpenPromotion, PostComment
from bot.core.approvals import approvers, who_may_approve
from bot.core.drift import is_drift
from bot.core.freight import Freight
from bot.core.gates import health_context
from bot.core.history import rollback_targets
from bot.core.ledger import TASK_ROLLBACK
from bot.core.ledger_sync import SUPERSEDED, task_of
from bot.core.promotion import MARKER_ROLLBACK, branch_name, parse_marker
from bot.core.snapshot import Deploy, Snapshot
from bot.core.stage_view import StageView
from bot.errors import FerryError

# build(stage, freight, reason) -> the rollback pull request (``bot.core.decide.build_promotion``)
Build = Callable[[str, Freight, str], OpenPromotion]
MARKER = "ferry:auto-rollback"

ROLLING_BACK = (
    "**`{stage}` failed verification** ({commit}), so Ferry is rolling it back "
    "(`verify.on_failure: rollback`): {rollback} returns `{stage}` to {label} (`{id}`), the last freight "
    "verified there.\n\n- failed promotion: {failed}\n- rollback: {rollback}\n{merge}"
)
WILL_MERGE = "\nFerry merges the rollback once its gate is green (`auto_merge`)."
WILL_MERGE_APPROVED = (
    "\nFerry merges the rollback once {promoters} approves it (`auto_merge`; `{stage}` has `promoters`)."
)
BY_HAND = "\nMerge the rollback to carry it out (`{stage}` has no `auto_merge`)."
NOTHING_BACK = (
    "**`{stage}` failed verification** ({commit}) and `verify.on_failure` is `rollback`, but the freight "
    "ledger has no earlier freight verified in `{stage}` to return to. Ferry stops here: promote a fix."
)
ROLLBACK_FAILED = (
    "**This rollback failed verification too** ({commit}). Ferry stops here and does not roll back "
    "again: look at `{stage}` (its `ferry/health/{stage}` status says why), then comment "
    "`/rollback {stage} <freight>` or promote a fix."
)


def failed_promotion(view: StageView) -> Deploy | None:
    """The stage's deploy commit when it is a Ferry promotion whose verification failed (not drift,
    not superseded)."""
    deploy = view.deploy
    if deploy is None or not deploy.by_ferry:
        return None
    status = deploy.statuses.get(health_context(view.name))
    if status is None or status.state not in ("failure", "error"):
        return None
    if status.description.startswith(SUPERSEDED) or is_drift(status.description):
        return None
    return deploy


def auto_rollback_actions(
    snapshot: Snapshot, views: Mapping[str, StageView], build: Build
) -> tuple[list[Action], list[Action]]:
    """Per stage with ``verify.on_failure: rollback`` whose promotion failed: the rollback's actions
    (open it, comment), and separately its merge (merges run last in a pass)."""
    assert snapshot.config is not None
    actions: list[Action] = []
    merges: list[Action] = []
    for name, view in views.items():
        stage = snapshot.config.stages[name]
        deploy = failed_promotion(view)
        if stage.verify.on_failure != "rollback" or deploy is None or snapshot.ledger is None:
            continue
        failed_pr = deploy.promotion
        commit = deploy.commit[:7]
        marker = f"<!-- {MARKER}:{name}:{deploy.commit} -->"
        if task_of(deploy) == TASK_ROLLBACK:
            if failed_pr is not None:
                body = ROLLBACK_FAILED.format(stage=name, commit=commit)
                actions.append(PostComment(failed_pr.number, f"{body}\n\n{marker}\n", marker))
            continue
        targets = rollback_targets(snapshot.ledger, name, view.runs)
        if not targets:
            if failed_pr is not None:
                body = NOTHING_BACK.format(stage=name, commit=commit)
                actions.append(PostComment(failed_pr.number, f"{body}\n\n{marker}\n", marker))
            continue
        target = targets[0].freight
        branch = branch_name(name, target.id)
        pull = next((pr for pr in snapshot.open_prs if pr.branch == branch), None)
        if pull is None:
            reason = (
                f"Automatic rollback: {name} failed verification at {commit} (verify.on_failure: rollback)"
            )
            try:
                actions.append(build(name, target, reason))
            except FerryError:
                continue  # a target file Ferry cannot edit: `ferry/config` names it
            continue
        if parse_marker(pull.body).get(MARKER_ROLLBACK) != "1":
            continue  # a person's promotion of that freight: theirs to merge
        if failed_pr is not None:
            body = ROLLING_BACK.format(
                stage=name,
                commit=commit,
                rollback=f"[#{pull.number}]({pull.url})",
                label=target.label,
                id=target.id,
                failed=f"[#{failed_pr.number}]({failed_pr.url})",
                merge=(
                    BY_HAND.format(stage=name)
                    if not stage.auto_merge
                    else WILL_MERGE_APPROVED.format(promoters=who_may_approve(stage.promoters), stage=name)
                    if stage.promoters
                    else WILL_MERGE
                ),
            )
            actions.append(PostComment(failed_pr.number, f"{body}\n\n{marker}\n", marker))
        # In a stage with ``promoters`` the rollback's gate waits for their approval like any promotion's
        # (``bot.core.approvals``): merged without it, the merge would be held and never deployed.
        reviews = snapshot.approvals.get(pull.number)
        approved = not stage.promoters or (reviews is not None and bool(approvers(reviews)))
        if stage.auto_merge and approved:
            merges.append(MergePromotion(pull.number, name, pull.head_sha, pull.title))
    return actions, merges
