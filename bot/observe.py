"""Observe: read one repository's state from GitHub, the registries and Argo CD into a Snapshot.

Every read is pinned to the default branch's head commit taken at the start of the pass. Reads are cheap on
an idle repository: trees, blobs, pull-request associations and comparisons are cached by their (immutable)
SHAs, githubkit's HTTP cache sends conditional requests, which GitHub does not charge to the rate limit, and
Argo CD is read only for stages that are verifying (``bot.observe_deploy``, ``bot.observe_apps``).
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar, cast

from bot.core.config import ArgoCDTarget, PipelineConfig, Warehouse
from bot.core.config_load import CONFIG_PATH, load_config, update_target_paths
from bot.core.drift import is_drift
from bot.core.freight import Freight
from bot.core.gates import health_context
from bot.core.snapshot import CommitStatus, Snapshot
from bot.errors import ConfigError, FerryError, Problem
from bot.github.repo import RepoGitHub
from bot.observe_approvals import observe_approvals, observe_gate_rule
from bot.observe_apps import AppReader, observe_apps
from bot.observe_deploy import stage_deploy

K = TypeVar("K")
V = TypeVar("V")
# How far back (beyond a stage's verify timeout) earlier merges are checked for a pending health status.
OVERTAKEN_GRACE = timedelta(minutes=5)
# Parsed configs by their text's digest, and checked ones by (digest, the update targets' blob SHAs).
# Content-addressed, so shared by every repository of the process; bounded (oldest entry dropped first).
PARSED_KEPT = 64
_PARSED: dict[str, PipelineConfig | ConfigError] = {}
_CHECKED: dict[tuple[str, tuple[tuple[str, str], ...]], PipelineConfig | ConfigError] = {}


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
    """The repository's snapshot, or None when it has no `.github/ferry.yml` (not a Ferry repo): every
    GitHub read of ``read_github``, then the registries and Argo CD (``complete``)."""
    branch = await gh.default_branch()
    head = await gh.head(branch)
    github = await read_github(gh, branch=branch, head=head, now=now, argocd_urls=argocd_urls)
    return await complete(gh, github, freight=freight, apps=apps, watch=watch)


async def read_github(
    gh: RepoGitHub, *, branch: str, head: str, now: datetime, argocd_urls: Mapping[str, str]
) -> Snapshot | None:
    """What GitHub says of the repository at ``head`` (the default branch's head commit): the config,
    the stages' files and deploy commits with their statuses, the open promotions. No freight and no
    Argo CD state yet: a pass may reuse this part while GitHub says nothing changed (``bot.observe_reuse``).

    Independent reads run concurrently; each commit's statuses are read once per pass.
    """
    tree = await gh.tree(head)
    if CONFIG_PATH not in tree:
        return None
    text, last = await asyncio.gather(
        gh.blob_text(tree[CONFIG_PATH], CONFIG_PATH),
        gh.last_commit(CONFIG_PATH, head),  # pinned: a push mid-pass tears nothing
    )
    config_commit = last[0] if last else head
    statuses = StatusesOnce(gh)
    (config, problems, files), config_statuses = await asyncio.gather(
        load_at(gh, text, tree), statuses.statuses(config_commit)
    )
    base = Snapshot(
        repo=gh.full_name,
        default_branch=branch,
        head_sha=head,
        now=now,
        config=None,
        config_commit=config_commit,
        config_statuses=config_statuses,
        paths=frozenset(tree),
        argocd_urls=argocd_urls,
    )
    if config is None or problems:
        return _replace(base, config=config, config_problems=tuple(problems), files=files)
    paths_by_stage = update_target_paths(config, tree.__contains__)
    stage_names = list(config.stages)
    found, open_prs = await asyncio.gather(
        asyncio.gather(
            *(
                stage_deploy(
                    statuses,
                    gh.history,
                    stage=name,
                    paths=[p for p in paths_by_stage.get(name, ()) if p in tree],
                    head=head,
                    branch=branch,
                    overtaken_since=now - (config.stages[name].verify.timeout + OVERTAKEN_GRACE),
                )
                for name in stage_names
            )
        ),
        gh.open_promotions(),
    )
    deploys = {name: f.deploy for name, f in zip(stage_names, found, strict=True) if f.deploy is not None}
    merges = frozenset(commit for f in found for commit in f.merges)
    approvals, gate_rule = await asyncio.gather(
        observe_approvals(gh, config, tuple(open_prs), deploys),
        observe_gate_rule(gh, branch, now, config_commit),
    )
    return _replace(
        base,
        config=config,
        files=files,
        blob_shas={p: tree[p] for p in files},
        deploys=deploys,
        merged_commits=merges,
        open_prs=tuple(open_prs),
        approvals=approvals,
        gate_rule=gate_rule,
    )


async def complete(
    gh: RepoGitHub,
    github: Snapshot | None,
    *,
    freight: FreightSource | None,
    apps: AppReader | None,
    watch: bool = False,
) -> Snapshot | None:
    """``github`` (``read_github``'s part) with the warehouses' newest freight and, for stages that
    verify, their Argo CD apps; with ``watch`` (at the idle interval) verified stages' apps too, so a stage
    whose apps no longer run its deploy commit is noticed (``bot.core.drift``)."""
    config = github.config if github is not None else None
    if github is None or config is None or github.config_problems:
        return github
    paths_by_stage = update_target_paths(config, github.paths.__contains__)
    read: list[str] = []
    for stage_name, stage in config.stages.items():
        deploy = github.deploys.get(stage_name)
        if apps is None or stage.argocd is None or deploy is None:
            continue
        health = deploy.statuses.get(health_context(stage_name))
        watched = health is not None and (health.state == "success" or is_drift(health.description))
        if health is not None and health.state != "pending" and not (watch and watched):
            continue  # verified, failed or superseded: nothing to read until the idle interval's watch
        read.append(stage_name)
    (warehouse_freight, warehouse_errors), *observed = await asyncio.gather(
        _warehouses(gh.full_name, config, freight),
        *(
            observe_apps(
                cast(AppReader, apps),
                gh.history,
                repo=gh.full_name,
                target=cast(ArgoCDTarget, config.stages[name].argocd),
                deploy_commit=github.deploys[name].commit,
                paths=paths_by_stage.get(name, ()),
            )
            for name in read
        ),
    )
    return _replace(
        github,
        warehouse_freight=warehouse_freight,
        warehouse_errors=warehouse_errors,
        app_states={name: found[0] for name, found in zip(read, observed, strict=True)},
        relations={name: found[1] for name, found in zip(read, observed, strict=True)},
    )


class StatusesOnce:
    """A commit's combined status read once per pass however many stages (and the config) share it."""

    def __init__(self, gh: RepoGitHub) -> None:
        self.gh = gh
        self._reads: dict[str, asyncio.Task[dict[str, CommitStatus]]] = {}

    async def statuses(self, sha: str) -> dict[str, CommitStatus]:
        if sha not in self._reads:
            self._reads[sha] = asyncio.ensure_future(self.gh.statuses(sha))
        return dict(await asyncio.shield(self._reads[sha]))


async def load_at(
    gh: RepoGitHub, text: str, tree: Mapping[str, str]
) -> tuple[PipelineConfig | None, list[Problem], dict[str, str]]:
    """The config ``text`` checked against the files of ``tree`` (a commit's {path: blob sha}), as
    ``ferry validate`` checks it: (config or None, every problem, the update targets' texts).

    Parsed once per content: the config by its text's digest, the check against the files by their
    blob SHAs (a 6,000-line values file costs ~150 ms to parse; it is parsed again only when it changes).
    """
    digest = hashlib.sha256(text.encode()).hexdigest()
    parsed = _PARSED.get(digest)
    if parsed is None:
        try:
            parsed = _keep(_PARSED, digest, load_config(text))
        except ConfigError as exc:
            parsed = _keep(_PARSED, digest, exc)
    if isinstance(parsed, ConfigError):
        return None, list(parsed.problems), {}
    by_stage = update_target_paths(parsed, tree.__contains__)
    paths = [p for p in dict.fromkeys(path for ps in by_stage.values() for path in ps) if p in tree]
    texts = await asyncio.gather(*(gh.blob_text(tree[p], p) for p in paths))
    files = dict(zip(paths, texts, strict=True))
    key = (digest, tuple((p, tree[p]) for p in paths))
    checked = _CHECKED.get(key)
    if checked is None:
        try:
            checked = _keep(_CHECKED, key, load_config(text, files=files))
        except ConfigError as exc:
            checked = _keep(_CHECKED, key, exc)
    if isinstance(checked, ConfigError):
        return parsed, list(checked.problems), files
    return checked, [], files


async def _warehouses(
    repo: str, config: PipelineConfig, source: FreightSource | None
) -> tuple[dict[str, Freight], dict[str, str]]:
    found: dict[str, Freight] = {}
    errors: dict[str, str] = {}
    if source is None:
        return found, errors
    names = list(config.warehouses)
    results = await asyncio.gather(
        *(source.newest(repo, name, config.warehouses[name]) for name in names), return_exceptions=True
    )
    for name, result in zip(names, results, strict=True):
        if isinstance(result, FerryError):
            errors[name] = str(result)
        elif isinstance(result, BaseException):
            raise result
        else:
            found[name] = result
    return found, errors


def _keep(cache: dict[K, V], key: K, value: V) -> V:
    cache[key] = value
    while len(cache) > PARSED_KEPT:
        del cache[next(iter(cache))]
    return value


def _replace(snapshot: Snapshot, **changes: Any) -> Snapshot:
    return replace(snapshot, **changes)
