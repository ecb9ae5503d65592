"""Verification after a merge: ask Argo CD to sync the deploy commit, then turn what it reports into
the ``ferry/health/<stage>`` commit status. Pure: the pending status on GitHub is the only memory,
so a restart resumes where the last process stopped.
"""

from __future__ import annotations

from collections.abc import Mapping

from bot.core.actions import Action, PostComment, RequestSync, SetStatus
from bot.core.config import Stage
from bot.core.gates import health_context
from bot.core.snapshot import Snapshot
from bot.core.stage_view import StageView
from bot.core.text import fit_description
from bot.core.verdict import format_duration, same_revision, stage_verdict

VERDICT_MARKER = "ferry:verdict"


def promotion_id(stage: str, deploy_commit: str) -> str:
    """Carried in the Argo CD operation's info so a later pass recognises its own sync."""
    return f"{stage}/{deploy_commit[:12]}"


def app_url(argocd_urls: Mapping[str, str], server: str, app: str) -> str | None:
    base = argocd_urls.get(server)
    return f"{base.rstrip('/')}/applications/{app}" if base else None


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
