"""decide(snapshot) -> actions: the whole of Ferry's judgement, as a pure function.

Same snapshot, same actions. Every action is idempotent, and decide only asks for what differs
from what it observed, so a pass over an up-to-date repository returns nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from bot.core.actions import (
    Action,
    ClosePromotion,
    LabelPromotion,
    MergePromotion,
    OpenPromotion,
    SetStatus,
)
from bot.core.approvals import approval_gate
from bot.core.auto_rollback import auto_rollback_actions
from bot.core.config import StagesSource, WarehouseSource
from bot.core.config_review import config_verdict
from bot.core.freight import Freight
from bot.core.gates import STATUS_CONFIG, STATUS_GATE, Gate, gate_for, verified_upstream_freight_id
from bot.core.history import failed_last
from bot.core.ledger import LedgerEntry
from bot.core.ledger_sync import attach_ledger, ledger_actions
from bot.core.pipeline import stage_order
from bot.core.promotion import (
    LABEL_FERRY,
    LABEL_ROLLBACK,
    MARKER_REQUESTED_BY,
    MARKER_ROLLBACK,
    BodyParts,
    branch_name,
    commit_message,
    parse_marker,
    promotion_body,
    promotion_title,
    rollback_title,
    stage_label,
)
from bot.core.snapshot import PullRequest, Snapshot
from bot.core.stage_view import StageView, stage_view
from bot.core.targets import promotion_edits
from bot.core.text import fit_description
from bot.core.verification import verification_actions
from bot.errors import FerryError

# A rollback returns a stage to freight it already ran: upstream verification does not apply to it.
ROLLBACK_GATE = Gate(
    "success", "Rollback: returns to freight this stage ran before; the upstream gate does not apply"
)


def decide(snapshot: Snapshot) -> list[Action]:
    actions: list[Action] = list(config_status_actions(snapshot))
    config = snapshot.config
    if config is None or snapshot.config_problems:
        return actions  # nothing is promoted from an invalid config
    views = {name: stage_view(snapshot, name) for name in stage_order(config)}
    verifying = attach_ledger(verification_actions(snapshot, views), snapshot, views)
    actions += verifying
    actions += ledger_actions(snapshot, views, verifying)
    merges: list[Action] = []
    for name in views:
        promotions, stage_merges = promotion_actions(snapshot, views, name)
        actions += promotions
        merges += stage_merges
    rollbacks, rollback_merges = auto_rollback_actions(
        snapshot,
        views,
        lambda name, freight, reason: build_promotion(
            snapshot, views, name, freight, rollback=True, reason=reason
        ),
    )
    actions += rollbacks
    merges += rollback_merges
    actions += gate_actions(snapshot, views)
    actions += label_actions(snapshot)
    return actions + merges


def config_status_actions(snapshot: Snapshot) -> list[Action]:
    if snapshot.config_commit is None:
        return []
    verdict = config_verdict(
        snapshot.config,
        snapshot.config_problems,
        gate_rule=snapshot.gate_rule,
        branch=snapshot.default_branch,
    )
    if verdict is None:
        return []
    current = snapshot.config_statuses.get(STATUS_CONFIG)
    if current is not None and (current.state, current.description) == verdict:
        return []
    return [SetStatus(snapshot.config_commit, STATUS_CONFIG, *verdict)]


def base_fingerprint(snapshot: Snapshot, view: StageView) -> str:
    """Identifies the stage files a promotion branch was built on, to notice when the base moved."""
    joined = ",".join(f"{t.path}:{snapshot.blob_shas.get(t.path, '')}" for t in view.targets)
    return hashlib.sha256(joined.encode()).hexdigest()[:12]


def candidate_freight(snapshot: Snapshot, views: Mapping[str, StageView], name: str) -> Freight | None:
    """The freight a stage with auto_promote should run next, if any: never freight whose newest
    verification in this stage failed (a rollback sticks; ``/promote … --reason`` is the way back)."""
    found = _offered(snapshot, views, name)
    if found is not None and failed_last(snapshot.ledger or (), name, found.id) is not None:
        return None
    return found


def held_out(
    snapshot: Snapshot, views: Mapping[str, StageView], name: str
) -> tuple[Freight, LedgerEntry] | None:
    """(freight, its failed verification here) when auto-promotion would offer ``name`` that freight but
    its newest verdict in ``name`` failed, so it is kept out (``/status`` says so); else None."""
    found = _offered(snapshot, views, name)
    if found is None or views[name].runs(found):
        return None
    failed = failed_last(snapshot.ledger or (), name, found.id)
    return (found, failed) if failed is not None else None


def _offered(snapshot: Snapshot, views: Mapping[str, StageView], name: str) -> Freight | None:
    """The freight auto-promotion offers ``name`` (its warehouse's newest, or what its upstream stages all
    verified), before the stage's own history is asked; None for a stage without auto_promote."""
    assert snapshot.config is not None
    stage = snapshot.config.stages[name]
    if not stage.auto_promote or snapshot.ledger_unknown:
        return None
    if isinstance(stage.source, WarehouseSource):
        return snapshot.warehouse_freight.get(stage.source.warehouse)
    if verified_upstream_freight_id(name, snapshot.config, views) is None:
        return None
    return next(views[u] for u in stage.source.stages).freight


def promotion_files(snapshot: Snapshot, view: StageView, freight: Freight) -> tuple[tuple[str, str], ...]:
    """The files a promotion changes; update entries naming one file compose into one edit of it."""
    labels = [f"stages.{view.name}.update[{index}]" for index in range(len(view.targets))]
    return promotion_edits(view.targets, snapshot.files, freight.images, labels=labels)


def _source_words(snapshot: Snapshot, name: str) -> str:
    assert snapshot.config is not None
    source = snapshot.config.stages[name].source
    if isinstance(source, StagesSource):
        return "stage " + ", ".join(f"`{s}`" for s in source.stages)
    return f"warehouse `{source.warehouse}`"


def build_promotion(
    snapshot: Snapshot,
    views: Mapping[str, StageView],
    name: str,
    freight: Freight,
    *,
    rebuild_pr: int | None = None,
    expected_head: str | None = None,
    requested_by: str = "",
    requested_by_login: str = "",
    rollback: bool = False,
    reason: str = "",
    extra_labels: tuple[str, ...] = (),
) -> OpenPromotion:
    """The PR moving ``name`` to ``freight``; a person's request and a rollback are recorded in its marker."""
    assert snapshot.config is not None
    view = views[name]
    rollback_labels = (LABEL_ROLLBACK,) if rollback else ()
    gate = (
        ROLLBACK_GATE
        if rollback
        else gate_for(freight.id, freight.label, name, snapshot.config, views, ledger=snapshot.ledger)
    )
    source = snapshot.config.stages[name].source
    verified_in = list(source.stages) if isinstance(source, StagesSource) and gate.state == "success" else []
    marker = {"stage": name, "freight": freight.id, "base": base_fingerprint(snapshot, view)}
    if requested_by_login:
        marker[MARKER_REQUESTED_BY] = requested_by_login
    if rollback:
        marker[MARKER_ROLLBACK] = "1"
    body = promotion_body(
        BodyParts(
            stage=name,
            freight=freight,
            previous_tags=view.tags,
            verified_in=verified_in,
            source=_source_words(snapshot, name),
            gate=f"{gate.state}: {gate.description}",
            requested_by=requested_by,
            marker=marker,
        )
    )
    return OpenPromotion(
        stage=name,
        freight=freight,
        branch=branch_name(name, freight.id),
        base_sha=snapshot.head_sha,
        files=promotion_files(snapshot, view, freight),
        title=rollback_title(name, freight) if rollback else promotion_title(name, freight),
        body=body,
        message=commit_message(name, freight, reason=reason),
        labels=tuple(dict.fromkeys((LABEL_FERRY, stage_label(name), *rollback_labels, *extra_labels))),
        rebuild_pr=rebuild_pr,
        expected_head=expected_head,
    )


def promotion_actions(
    snapshot: Snapshot, views: Mapping[str, StageView], name: str
) -> tuple[list[Action], list[Action]]:
    """Actions for one stage's promotion PRs, and (separately, to run last) its merges."""
    assert snapshot.config is not None
    stage = snapshot.config.stages[name]
    view = views[name]
    open_prs = [pr for pr in snapshot.open_prs if pr.stage == name]
    candidate = candidate_freight(snapshot, views, name)
    if candidate is None:
        return [], []
    if view.runs(candidate):
        return list(_close_stale(open_prs, keep=None, why=f"`{name}` already runs {candidate.label}")), []
    wanted = branch_name(name, candidate.id)
    existing = next((pr for pr in open_prs if pr.branch == wanted), None)
    actions: list[Action] = []
    merges: list[Action] = []
    try:
        if existing is None:
            actions.append(build_promotion(snapshot, views, name, candidate))
        elif parse_marker(existing.body).get("base") != base_fingerprint(snapshot, view):
            actions.append(
                build_promotion(
                    snapshot,
                    views,
                    name,
                    candidate,
                    rebuild_pr=existing.number,
                    expected_head=existing.head_sha,
                )
            )
        elif stage.auto_merge:
            gate = gate_for(
                candidate.id, candidate.label, name, snapshot.config, views, ledger=snapshot.ledger
            )
            gate = approval_gate(gate, stage.promoters, snapshot.approvals.get(existing.number))
            if gate.state == "success":
                merges.append(MergePromotion(existing.number, name, existing.head_sha, existing.title))
    except FerryError:
        return [], []  # a target file Ferry cannot edit: `ferry/config` names it; nothing half-done
    actions += _close_stale(open_prs, keep=wanted, why=f"it is superseded by newer freight {candidate.label}")
    return actions, merges


def _close_stale(open_prs: list[PullRequest], *, keep: str | None, why: str) -> list[Action]:
    """Close the stage's other automatic promotions; those a person asked for (and rollbacks) stay."""
    return [
        ClosePromotion(
            pr.number, pr.stage, f"Ferry closed this pull request: {why}.", superseded_by_branch=keep
        )
        for pr in open_prs
        if pr.branch != keep and not person_asked(pr)
    ]


def person_asked(pr: PullRequest) -> bool:
    marker = parse_marker(pr.body)
    return MARKER_REQUESTED_BY in marker or MARKER_ROLLBACK in marker


def label_actions(snapshot: Snapshot) -> list[Action]:
    """Labels an open promotion PR should carry and lacks (labelling is a separate request that can fail)."""
    actions: list[Action] = []
    for pr in snapshot.open_prs:
        wanted = [LABEL_FERRY, stage_label(pr.stage)]
        if parse_marker(pr.body).get(MARKER_ROLLBACK) == "1":
            wanted.append(LABEL_ROLLBACK)
        missing = tuple(label for label in wanted if label not in pr.labels)
        if missing:
            actions.append(LabelPromotion(pr.number, pr.stage, missing))
    return actions


def gate_actions(snapshot: Snapshot, views: Mapping[str, StageView]) -> list[Action]:
    assert snapshot.config is not None
    actions: list[Action] = []
    for pr in snapshot.open_prs:
        if pr.stage not in snapshot.config.stages:
            continue
        label = pr.title.removeprefix("Promote ").rsplit(" to ", 1)[0] or pr.freight_id
        if parse_marker(pr.body).get(MARKER_ROLLBACK) == "1":
            gate = ROLLBACK_GATE
        else:
            gate = gate_for(pr.freight_id, label, pr.stage, snapshot.config, views, ledger=snapshot.ledger)
        current = pr.statuses.get(STATUS_GATE)
        if (
            snapshot.ledger is None
            and gate.state == "pending"
            and current is not None
            and current.state == "success"
        ):
            continue  # history unread (GitHub failed): a gate opened by it is not closed on a guess
        promoters = snapshot.config.stages[pr.stage].promoters
        gate = approval_gate(gate, promoters, snapshot.approvals.get(pr.number))
        description = fit_description(gate.description)
        if current is not None and (current.state, current.description) == (gate.state, description):
            continue
        actions.append(SetStatus(pr.head_sha, STATUS_GATE, gate.state, description, pr.url))
    return actions
