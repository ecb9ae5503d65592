"""Verification after a merge: ask Argo CD to deploy the deploy commit (a refresh for automated apps, a
sync of the app's own ``targetRevision`` for the rest, never a revision override), then turn what it reports
into the ``ferry/health/<stage>`` commit status. Pure: the pending status on GitHub is the only memory, so a
restart resumes where the last process stopped.

A deploy commit Ferry did not promote (first contact with a repository, or a person's own change to a
stage's files) is observed, never synced: its status says what runs there now.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

from bot.core.actions import Action, PostComment, RequestSync, SetStatus
from bot.core.approvals import merge_approved, unapproved_merge_actions
from bot.core.argo_app import AppAsk, AppState, Relation, ask_for
from bot.core.config import Stage
from bot.core.drift import drift_actions, is_drift
from bot.core.gates import health_context
from bot.core.images import parse_image
from bot.core.promotion import LABEL_ROLLBACK
from bot.core.selection import rank_tags
from bot.core.snapshot import CommitStatus, Deploy, Snapshot
from bot.core.stage_view import StageView
from bot.core.text import fit_description
from bot.core.verdict import MSG_NOT_FERRY, Observed, format_duration, stage_verdict
from bot.core.warehouse import image_rules
from bot.errors import InvalidReferenceError, SelectionError

VERDICT_MARKER = "ferry:verdict"
# A pending status is restated (a new status, so a new created_at) when what it waits for changes, at most
# this often; restated descriptions start with RESTATED, so observing knows to look up when it began.
RESTATED = "Pending: "
RESTATE_EVERY = timedelta(seconds=10)


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


def freight_words(view: StageView) -> str:
    """``web 1.4.0, worker 1.4.0``: what the stage's files hold, the way people name releases."""
    held = [f"{image.rsplit('/', 1)[-1]} {tag}" for image, tag in view.tags.items() if tag]
    return ", ".join(held) or "its files' images"


def deploy_request(
    name: str, stage: Stage, deploy_commit: str, asks: list[AppAsk], default_branch: str
) -> RequestSync:
    argocd = stage.argocd
    assert argocd is not None
    return RequestSync(
        stage=name,
        server=argocd.server,
        asks=tuple(asks),
        revision=deploy_commit,
        promotion_id=promotion_id(name, deploy_commit),
        default_branch=default_branch,
        prune=argocd.prune,
        app_namespace=argocd.namespace,
        project=argocd.project,
    )


def start_verification(
    name: str,
    stage: Stage,
    deploy_commit: str,
    argocd_urls: Mapping[str, str],
    *,
    states: tuple[AppState, ...] | None = None,
    relation: Mapping[str, Relation] | None = None,
    default_branch: str = "main",
    now: datetime | None = None,
) -> tuple[RequestSync | None, SetStatus]:
    """What to ask of each app for a promotion's deploy commit, and the pending status that records when.

    The pending status is written before the request (``[pending, request]``), so it says what is about
    to happen: whatever Argo CD answers then (an error, nothing at all), the stage's timeout runs from it
    and ends in a verdict that names Argo CD's answer, never in no status at all.

    Without observed ``states`` (the merge fast path) each app is asked ``auto``: the adapter reads it and
    applies the same rule (``bot.core.argo_app.ask_for``).
    """
    argocd = stage.argocd
    assert argocd is not None
    apps = tuple(argocd.app_names)
    if states is None:
        asks = [AppAsk(app, "auto") for app in apps]
    else:
        moment = now or datetime.now(UTC)
        found = [
            ask_for(
                s,
                deploy_commit,
                relation or {},
                default_branch=default_branch,
                promotion_id=promotion_id(name, deploy_commit),
                now=moment,
                started=False,
            )
            for s in states
        ]
        asks = [ask for ask in found if ask is not None]
    modes = sorted({"refresh" if a.mode == "refresh" else "sync" for a in asks if a.mode != "auto"})
    how = f" ({', '.join(modes)})" if modes else ""
    description = (
        f"Asking Argo CD to deploy {deploy_commit[:7]}{how}; checking health of {', '.join(apps)} "
        f"(timeout {format_duration(stage.verify.timeout)})"
    )
    pending = SetStatus(
        deploy_commit,
        health_context(name),
        "pending",
        fit_description(description),
        app_url(argocd_urls, argocd.server, apps[0]),
    )
    request = deploy_request(name, stage, deploy_commit, asks, default_branch) if asks else None
    return request, pending


def verification_actions(snapshot: Snapshot, views: Mapping[str, StageView]) -> list[Action]:
    assert snapshot.config is not None
    actions: list[Action] = []
    for view in views.values():
        deploy = view.deploy
        if deploy is not None:
            actions += _stage_actions(snapshot, view, deploy)
    return actions


def _stage_actions(snapshot: Snapshot, view: StageView, deploy: Deploy) -> list[Action]:
    assert snapshot.config is not None
    name = view.name
    stage = snapshot.config.stages[name]
    context = health_context(name)
    status = deploy.statuses.get(context)
    actions: list[Action] = [
        SetStatus(earlier, context, "error", superseded_description(name, deploy.commit))
        for earlier in deploy.overtaken
    ]
    if status is None and deploy.by_ferry and stage.promoters:
        held = _unapproved(snapshot, name, deploy)
        if held is not None:
            return actions + held  # not deployed: no sync is asked for
    argocd = stage.argocd
    if argocd is None:
        if status is None:
            verified = f"{name}: merged; no Argo CD app configured, so merged means verified"
            actions.append(SetStatus(deploy.commit, context, "success", verified))
        return actions
    states = snapshot.app_states.get(name)
    relation = snapshot.relations.get(name, {})
    target_url = app_url(snapshot.argocd_urls, argocd.server, argocd.app_names[0])
    observed = None if deploy.by_ferry else Observed(freight_words(view))
    if status is None and deploy.by_ferry:
        request, pending = start_verification(
            name,
            stage,
            deploy.commit,
            snapshot.argocd_urls,
            states=states,
            relation=relation,
            default_branch=snapshot.default_branch,
            now=snapshot.now,
        )
        actions += [pending, request] if request is not None else [pending]  # status before action
        return actions + backwards_warning(snapshot, view)
    if status is not None and status.state != "pending":
        if status.state == "success" or is_drift(status.description):  # verified stages stay watched
            current = (status.state, status.description)
            actions += drift_actions(
                context, deploy.commit, current, states=states, relation=relation, target_url=target_url
            )
        return actions
    if states is None:
        if status is None:  # first contact, Argo CD not read: record that observation began
            actions.append(_observing(name, deploy.commit, argocd.app_names, "", target_url))
        return actions
    asks = [
        ask
        for ask in (
            ask_for(
                s,
                deploy.commit,
                relation,
                default_branch=snapshot.default_branch,
                promotion_id=promotion_id(name, deploy.commit),
                now=snapshot.now,
                started=status is not None,
                deployed_by_ferry=deploy.by_ferry,
            )
            for s in states
        )
        if ask is not None
    ]
    started = deploy.verifying_since or (status.created_at if status is not None else None) or snapshot.now
    verdict = stage_verdict(
        states,
        deploy.commit,
        requested_at=started,
        now=snapshot.now,
        timeout=stage.verify.timeout,
        soak=stage.verify.soak,
        relation=relation,
        default_branch=snapshot.default_branch,
        require_synced=stage.verify.require_synced,
        observed=observed,
    )
    if verdict.state == "pending":
        if status is None:
            actions.append(_observing(name, deploy.commit, argocd.app_names, verdict.reason, target_url))
        elif _restate(status, verdict.reason, snapshot.now):
            restated = fit_description(RESTATED + verdict.reason)
            actions.append(SetStatus(deploy.commit, context, "pending", restated, target_url))
        # Status before action, and asked again only while verification goes on: an Argo CD that keeps
        # failing the request cannot hold back the verdict the stage's timeout gives.
        if asks:
            actions.append(deploy_request(name, stage, deploy.commit, asks, snapshot.default_branch))
        return actions
    if verdict.state == "superseded":
        later = verdict.reason
        actions.append(SetStatus(deploy.commit, context, "error", _moved_on_description(name, later)))
        return actions
    actions.append(
        SetStatus(deploy.commit, context, verdict.state, fit_description(verdict.reason), target_url)
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


def _unapproved(snapshot: Snapshot, name: str, deploy: Deploy) -> list[Action] | None:
    """For a stage with ``promoters``, what to do instead of deploying a merge no promoter approved: the
    failure and its comment, [] while who approved is not read yet, None when the merge was approved."""
    assert snapshot.config is not None
    stage = snapshot.config.stages[name]
    if deploy.promotion is None:
        return None
    pull = snapshot.approvals.get(deploy.promotion.number)
    if pull is None:
        return []
    if merge_approved(pull):
        return None
    apps = stage.argocd.app_names if stage.argocd is not None else []
    automated = {s.name for s in snapshot.app_states.get(name, ()) if s.automated}
    return unapproved_merge_actions(
        name,
        deploy.commit,
        pull,
        stage.promoters,
        auto_sync_apps=[a for a in apps if a in automated],
        manual_apps=[a for a in apps if a not in automated],
        pull_url=deploy.promotion.url,
    )


def _restate(status: CommitStatus, reason: str, now: datetime) -> bool:
    """Whether to tell people what verification waits for now (it changed, and not too often)."""
    if status.description == fit_description(RESTATED + reason):
        return False
    posted = status.created_at
    return posted is None or _utc(now) - _utc(posted) >= RESTATE_EVERY


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _observing(name: str, commit: str, apps: list[str], reason: str, target_url: str | None) -> SetStatus:
    """First contact with a deploy commit Ferry did not promote: watch it, deploy nothing."""
    reason = reason.removeprefix(MSG_NOT_FERRY.format(what=""))
    now_text = f": {reason}" if reason else ""
    description = f"Observing {', '.join(apps)} (not deployed by Ferry; Ferry syncs nothing here){now_text}"
    return SetStatus(commit, health_context(name), "pending", fit_description(description), target_url)


def _moved_on_description(stage: str, reason: str) -> str:
    return fit_description(
        f"Superseded: {stage} {reason.split(': ', 1)[-1]} before this commit was verified; "
        "that commit's status has the verdict"
    )


def refused_status(action: RequestSync, app: str, message: str) -> SetStatus:
    """The failure an Argo CD refusal that needs a person (a missing RBAC rule, an app being deleted) gets."""
    return SetStatus(
        action.revision, health_context(action.stage), "failure", fit_description(f"{app}: {message}")
    )
