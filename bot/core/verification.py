"""Verification after a merge: ask Argo CD to sync the deploy commit, then turn what it reports into
the ``ferry/health/<stage>`` commit status. Pure: the pending status on GitHub is the only memory,
so a restart resumes where the last process stopped.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.actions import Action, PostComment, RequestSync, SetStatus
from bot.core.config import Stage
from bot.core.gates import health_context
from bot.core.images import parse_image
from bot.core.promotion import LABEL_ROLLBACK
from bot.core.selection import rank_tags
from bot.core.snapshot import Snapshot
from bot.core.stage_view import StageView
from bot.core.text import fit_description
from bot.core.verdict import format_duration, same_revision, stage_verdict
from bot.core.warehouse import image_rules
from bot.errors import InvalidReferenceError, SelectionError

VERDICT_MARKER = "ferry:verdict"


def promotion_id(stage: str, deploy_commit: str) -> str:
    """Carried in the Argo CD operation's info so a later pass recognises its own sync."""
    return f"{stage}/{deploy_commit[:12]}"


def app_url(argocd_urls: Mapping[str, str], server: str, app: str) -> str | None:
    base = argocd_urls.get(server)
    return f"{base.rstrip('/')}/applications/{app}" if base else None


def backwards_changes(snapshot: Snapshot, view: StageView) -> list[str]:
    """``web 1.5.0 → 1.4.9`` for each image a promotion merge moved to an older tag than it replaced.

    Older is judged by the warehouse's own tag rule. Rollbacks go backwards on purpose and are not listed.
    """
    deploy = view.deploy
    if deploy is None or deploy.promotion is None or LABEL_ROLLBACK in deploy.promotion.labels:
        return []
    assert snapshot.config is not None
    previous: dict[str, str] = {}
    for reference in deploy.previous_images:
        try:
            ref = parse_image(reference)
        except InvalidReferenceError:
            continue
        if ref.tag:
            previous[ref.name] = ref.tag
    changes = []
    for image, rule in image_rules(snapshot.config.warehouses[view.warehouse]):
        old, new = previous.get(image), view.tags.get(image)
        if not old or not new or old == new:
            continue
        try:
            ranked = rank_tags([old, new], rule)
        except SelectionError:
            continue
        if ranked and ranked[0] == old:
            changes.append(f"{image.rsplit('/', 1)[-1]} {old} → {new}")
    return changes


def backwards_warning(snapshot: Snapshot, view: StageView) -> list[Action]:
    changes = backwards_changes(snapshot, view)
    deploy = view.deploy
    if not changes or deploy is None or deploy.promotion is None:
        return []
    marker = f"<!-- ferry:backwards:{view.name}:{deploy.commit} -->"
    body = (
        f"**This merge moved `{view.name}` to older freight** than it ran: {', '.join(changes)}.\n\n"
        f"Ferry syncs it anyway, because the default branch now says so. If that was not intended, "
        f"comment `/promote {view.name}` to bring the newer freight back.\n\n{marker}\n"
    )
    return [PostComment(deploy.promotion.number, body, marker)]


def superseded_description(stage: str, later_commit: str) -> str:
    return fit_description(
        f"Superseded: {stage} moved on to {later_commit[:7]} before this merge was verified; "
        "that commit's status has the verdict"
    )


def start_verification(
    name: str, stage: Stage, deploy_commit: str, argocd_urls: Mapping[str, str]
) -> tuple[RequestSync, SetStatus]:
    """The sync request for a deploy commit and the pending status that records when it was asked."""
    argocd = stage.argocd
    assert argocd is not None
    apps = tuple(argocd.app_names)
    sync = RequestSync(
        stage=name,
        server=argocd.server,
        apps=apps,
        revision=deploy_commit,
        promotion_id=promotion_id(name, deploy_commit),
        prune=argocd.prune,
        app_namespace=argocd.namespace,
        project=argocd.project,
    )
    description = (
        f"Syncing {', '.join(apps)} to {deploy_commit[:7]}; "
        f"checking health (timeout {format_duration(stage.verify.timeout)})"
    )
    pending = SetStatus(
        deploy_commit,
        health_context(name),
        "pending",
        fit_description(description),
        app_url(argocd_urls, argocd.server, apps[0]),
    )
    return sync, pending


def verification_actions(snapshot: Snapshot, views: Mapping[str, StageView]) -> list[Action]:
    assert snapshot.config is not None
    actions: list[Action] = []
    for name, view in views.items():
        stage = snapshot.config.stages[name]
        deploy = view.deploy
        if deploy is None:
            continue
        context = health_context(name)
        status = deploy.statuses.get(context)
        for earlier in deploy.overtaken:
            actions.append(SetStatus(earlier, context, "error", superseded_description(name, deploy.commit)))
        argocd = stage.argocd
        if argocd is None:
            if status is None:
                actions.append(
                    SetStatus(
                        deploy.commit,
                        context,
                        "success",
                        f"{name}: merged; no Argo CD app configured, so merged means verified",
                    )
                )
            continue
        sync, pending = start_verification(name, stage, deploy.commit, snapshot.argocd_urls)
        if status is None:
            actions += [sync, pending]
            actions += backwards_warning(snapshot, view)
            continue
        if status.state != "pending":
            continue
        states = snapshot.app_states.get(name)
        if states is None:
            continue
        if any(
            s.exists
            and s.error is None
            and not same_revision(s.operation_revision, deploy.commit)
            and s.operation_phase != "Running"
            and not s.operation_requested
            for s in states
        ):
            actions.append(sync)  # our sync was lost or refused as busy: ask again; Argo CD adopts repeats
        verdict = stage_verdict(
            states,
            deploy.commit,
            requested_at=status.created_at or snapshot.now,
            now=snapshot.now,
            timeout=stage.verify.timeout,
            soak=stage.verify.soak,
        )
        if verdict.state == "pending":
            continue
        actions.append(
            SetStatus(
                deploy.commit, context, verdict.state, fit_description(verdict.reason), pending.target_url
            )
        )
        if verdict.state == "failure" and deploy.promotion is not None:
            marker = f"<!-- {VERDICT_MARKER}:{name}:{deploy.commit} -->"
            body = (
                f"**{name} failed verification** after this merge ({deploy.commit[:7]}):\n\n"
                f"> {verdict.reason}\n\n"
                f"Downstream stages keep their freight: their gates stay closed for it. "
                f"To go back, comment `/rollback {name}`; to retry after a fix, promote new freight."
                f"\n\n{marker}\n"
            )
            actions.append(PostComment(deploy.promotion.number, body, marker))
    return actions
