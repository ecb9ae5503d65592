"""Observe: read one repository's state from GitHub, the registries and Argo CD into a Snapshot.

Every read is pinned to the default branch's head commit taken at the start of the pass. Reads are cheap on
an idle repository: trees, blobs, pull-request associations and comparisons are cached by their (immutable)
SHAs, githubkit's HTTP cache sends conditional requests, which GitHub does not charge to the rate limit, and
Argo CD is read only for stages that are verifying (``bot.observe_deploy``, ``bot.observe_apps``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol

from bot.core.argo_app import AppState, Relation
from bot.core.config import PipelineConfig, Warehouse
from bot.core.config_load import CONFIG_PATH, load_config, update_target_paths
from bot.core.drift import is_drift
from bot.core.freight import Freight
from bot.core.gates import health_context
from bot.core.snapshot import Deploy, Snapshot
from bot.errors import ConfigError, FerryError, Problem
from bot.github.repo import RepoGitHub
from bot.observe_approvals import observe_approvals, observe_gate_rule
from bot.observe_apps import AppReader, observe_apps
from bot.observe_deploy import stage_deploy

# How far back (beyond a stage's verify timeout) earlier merges are checked for a pending health status.
OVERTAKEN_GRACE = timedelta(minutes=5)


class FreightSource(Protocol):
    """Newest freight of a warehouse (the registry adapter, or a cache in front of it)."""

    async def newest(self, repo: str, name: str, warehouse: Warehouse) -> Freight: ...


async def observe(
    gh: RepoGitHub,
    *,
    now: datetime,
    freight: FreightSource | None,
    apps: AppReader | None,
    argocd_urls: Mapping[str, str],
    watch: bool = False,
) -> Snapshot | None:
    """The repository's snapshot, or None when it has no `.github/ferry.yml` (not a Ferry repo).

    Argo CD is read for stages that verify, and with ``watch`` (at the idle interval) for verified ones
    too, so a stage whose apps no longer run its deploy commit is noticed (``bot.core.drift``)."""
    branch = await gh.default_branch()
    head = await gh.head(branch)
    tree = await gh.tree(head)
    if CONFIG_PATH not in tree:
        return None
    text = await gh.blob_text(tree[CONFIG_PATH], CONFIG_PATH)
    last = await gh.last_commit(CONFIG_PATH, head)  # pinned: a push landing mid-pass tears nothing
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
    config, problems, files = await load_at(gh, text, tree)
    if config is None or problems:
        return _replace(base, config=config, config_problems=tuple(problems), files=files)
    warehouse_freight, warehouse_errors = await _warehouses(gh.full_name, config, freight)
    paths_by_stage = update_target_paths(config, tree.__contains__)
    deploys: dict[str, Deploy] = {}
    merges: set[str] = set()
    for stage_name, stage in config.stages.items():
        found = await stage_deploy(
            gh,
            gh.history,
            stage=stage_name,
            paths=[p for p in paths_by_stage.get(stage_name, ()) if p in tree],
            head=head,
            branch=branch,
            overtaken_since=now - (stage.verify.timeout + OVERTAKEN_GRACE),
        )
        merges |= found.merges
        if found.deploy is not None:
            deploys[stage_name] = found.deploy
    app_states: dict[str, tuple[AppState, ...]] = {}
    relations: dict[str, dict[str, Relation]] = {}
    for stage_name, stage in config.stages.items():
        deploy = deploys.get(stage_name)
        if apps is None or stage.argocd is None or deploy is None:
            continue
        health = deploy.statuses.get(health_context(stage_name))
        watched = health is not None and (health.state == "success" or is_drift(health.description))
        if health is not None and health.state != "pending" and not (watch and watched):
            continue  # verified, failed or superseded: nothing to read until the idle interval's watch
        app_states[stage_name], relations[stage_name] = await observe_apps(
            apps,
            gh.history,
            repo=gh.full_name,
            target=stage.argocd,
            deploy_commit=deploy.commit,
            paths=paths_by_stage.get(stage_name, ()),
        )
    open_prs = tuple(await gh.open_promotions())
    return _replace(
        base,
        config=config,
        files=files,
        blob_shas={p: tree[p] for p in files},
        warehouse_freight=warehouse_freight,
        warehouse_errors=warehouse_errors,
        deploys=deploys,
        merged_commits=frozenset(merges),
        open_prs=open_prs,
        app_states=app_states,
        relations=relations,
        approvals=await observe_approvals(gh, config, open_prs, deploys),
        gate_rule=await observe_gate_rule(gh, branch, now, config_commit),
    )


async def load_at(
    gh: RepoGitHub, text: str, tree: Mapping[str, str]
) -> tuple[PipelineConfig | None, list[Problem], dict[str, str]]:
    """The config ``text`` checked against the files of ``tree`` (a commit's {path: blob sha}), as
    ``ferry validate`` checks it: (config or None, every problem, the update targets' texts)."""
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


def _replace(snapshot: Snapshot, **changes: Any) -> Snapshot:
    return replace(snapshot, **changes)
