"""Observe: read one repository's state from GitHub, the registries and Argo CD into a Snapshot.

Reads are cheap on an idle repository: trees and blobs are cached by their (immutable) sha, and
githubkit's HTTP cache sends conditional requests, which GitHub does not charge to the rate limit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.config import PipelineConfig, Warehouse
from bot.core.config_load import CONFIG_PATH, load_config, update_target_paths
from bot.core.freight import Freight
from bot.core.gates import health_context
from bot.core.promotion import parse_trailers
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion, Snapshot
from bot.core.stage_view import stage_targets
from bot.core.verdict import AppState
from bot.errors import ConfigError, ExternalError, FerryError, Problem
from bot.github.repo import RepoGitHub

# How far back (beyond a stage's verify timeout) earlier merges are checked for a pending health status.
OVERTAKEN_GRACE = timedelta(minutes=5)


class FreightSource(Protocol):
    """Newest freight of a warehouse (the registry adapter, or a cache in front of it)."""

    async def newest(self, repo: str, name: str, warehouse: Warehouse) -> Freight: ...


class AppReader(Protocol):
    async def get_app(
        self, server: str, app: str, *, app_namespace: str | None = None, project: str | None = None
    ) -> AppState: ...


async def observe(
    gh: RepoGitHub,
    *,
    now: datetime,
    freight: FreightSource | None,
    apps: AppReader | None,
    argocd_urls: Mapping[str, str],
) -> Snapshot | None:
    """The repository's snapshot, or None when it has no `.github/ferry.yml` (not a Ferry repo)."""
    branch = await gh.default_branch()
    head = await gh.head(branch)
    tree = await gh.tree(head)
    if CONFIG_PATH not in tree:
        return None
    text = await gh.blob_text(tree[CONFIG_PATH], CONFIG_PATH)
    last = await gh.last_commit(CONFIG_PATH, branch)
    config_commit = last[0] if last else head
    base = Snapshot(
        repo=gh.full_name,
        default_branch=branch,
        head_sha=head,
        now=now,
        config=None,
        config_commit=config_commit,
        config_statuses=await gh.statuses(config_commit),
        paths=frozenset(tree),
        argocd_urls=argocd_urls,
    )
    config, problems, files = await _load(gh, text, tree)
    if config is None or problems:
        return _replace(base, config=config, config_problems=tuple(problems), files=files)
    warehouse_freight, warehouse_errors = await _warehouses(gh.full_name, config, freight)
    merged = await gh.merged_promotions()
    deploys = {}
    for stage_name, stage in config.stages.items():
        targets = stage_targets(stage, base.paths)
        deploy = await _deploy(gh, branch, targets[0].path, merged) if targets else None
        if deploy is not None:
            window = stage.verify.timeout + OVERTAKEN_GRACE
            deploys[stage_name] = replace(
                deploy, overtaken=await _overtaken(gh, stage_name, deploy, merged, now - window)
            )
    app_states: dict[str, tuple[AppState, ...]] = {}
    for stage_name, stage in config.stages.items():
        deploy = deploys.get(stage_name)
        health = deploy.statuses.get(health_context(stage_name)) if deploy else None
        if apps is not None and stage.argocd is not None and health is not None and health.state == "pending":
            app_states[stage_name] = tuple(
                [
                    await _app_state(
                        apps, stage.argocd.server, app, stage.argocd.namespace, stage.argocd.project
                    )
                    for app in stage.argocd.app_names
                ]
            )
    return _replace(
        base,
        config=config,
        files=files,
        blob_shas={p: tree[p] for p in files},
        warehouse_freight=warehouse_freight,
        warehouse_errors=warehouse_errors,
        deploys=deploys,
        merged_commits=frozenset(m.merge_commit_sha for m in merged),
        open_prs=tuple(await gh.open_promotions()),
        app_states=app_states,
    )


async def _load(
    gh: RepoGitHub, text: str, tree: Mapping[str, str]
) -> tuple[PipelineConfig | None, list[Problem], dict[str, str]]:
    try:
        config = load_config(text)
    except ConfigError as exc:
        return None, exc.problems, {}
    by_stage = update_target_paths(config, tree.__contains__)
    paths = dict.fromkeys(path for stage_paths in by_stage.values() for path in stage_paths)
    files = {p: await gh.blob_text(tree[p], p) for p in paths if p in tree}
    try:
        return load_config(text, files=files), [], files
    except ConfigError as exc:
        return config, exc.problems, files


async def _warehouses(
    repo: str, config: PipelineConfig, source: FreightSource | None
) -> tuple[dict[str, Freight], dict[str, str]]:
    found: dict[str, Freight] = {}
    errors: dict[str, str] = {}
    if source is None:
        return found, errors
    for name, warehouse in config.warehouses.items():
        try:
            found[name] = await source.newest(repo, name, warehouse)
        except FerryError as exc:
            errors[name] = str(exc)
    return found, errors


async def _deploy(gh: RepoGitHub, branch: str, path: str, merged: list[MergedPromotion]) -> Deploy | None:
    last = await gh.last_commit(path, branch)
    if last is None:
        return None
    changed_by, message, when = last
    promotion = next(
        (m for m in merged if changed_by in (m.head_sha, m.merge_commit_sha)),
        None,
    )
    commit = promotion.merge_commit_sha if promotion else changed_by
    statuses: dict[str, CommitStatus] = await gh.statuses(commit)
    previous_images: tuple[str, ...] = ()
    if promotion is not None and health_context(promotion.stage) not in statuses:
        # Only while verification has not started: that is when a backwards merge is reported.
        merged_at = promotion.merged_at
        earlier = [
            (m.merged_at, m)
            for m in merged
            if m.stage == promotion.stage
            and m.merged_at is not None
            and merged_at is not None
            and m.merged_at < merged_at
        ]
        if earlier:
            previous = max(earlier, key=lambda pair: pair[0])[1]
            previous_images = parse_trailers(await gh.commit_message(previous.head_sha)).images
    return Deploy(
        commit=commit,
        changed_by=changed_by,
        message=message,
        committed_at=when,
        promotion=promotion,
        statuses=statuses,
        previous_images=previous_images,
    )


async def _overtaken(
    gh: RepoGitHub, stage: str, deploy: Deploy, merged: list[MergedPromotion], since: datetime
) -> tuple[str, ...]:
    """Merge commits of the stage's earlier promotions (recent enough to still be verifying) left pending."""
    found = []
    for promotion in merged:
        if promotion.stage != stage or promotion.merge_commit_sha == deploy.commit:
            continue
        if promotion.merged_at is None or promotion.merged_at < since:
            continue
        status = (await gh.statuses(promotion.merge_commit_sha)).get(health_context(stage))
        if status is not None and status.state == "pending":
            found.append(promotion.merge_commit_sha)
    return tuple(found)


async def _app_state(
    apps: AppReader, server: str, app: str, namespace: str | None, project: str | None
) -> AppState:
    try:
        return await apps.get_app(server, app, app_namespace=namespace, project=project)
    except ExternalError as exc:
        # Unreachable or refusing Argo CD: the verdict stays pending until the stage's timeout.
        return AppState.unobserved(app, str(exc))


def _replace(snapshot: Snapshot, **changes: Any) -> Snapshot:
    return replace(snapshot, **changes)
