"""What the Argo CD stand-in is configured with: applications, their sources and sync policy, projects,
chart repositories and API tokens (the Kubernetes objects and argocd-cm / argocd-rbac-cm settings a
real installation would hold).

Field meanings follow ``v1alpha1.ApplicationSpec`` (pkg/apis/application/v1alpha1/types.go): an app has
one ``source`` or several ``sources`` (multi-source: a Helm chart from a chart repository plus a Git
source with ``ref: values`` whose files the chart's ``valueFiles`` name as ``$values/...``);
``targetRevision`` is a branch, ``HEAD``, a tag, a commit, or for a chart a version or semver range;
``syncPolicy.automated`` with ``prune``/``selfHeal``; ``ignoreDifferences`` by JSON pointer.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from bot.core.semver_range import parse_constraint, version_key
from bot.errors import FerryError, SelectionError
from bot.sandbox.argocd_windows import SyncWindow

ACTIONS = ("get", "sync", "override")


@dataclass(frozen=True)
class Source:
    """One ``v1alpha1.ApplicationSource``; ``repo_url`` empty means the stand-in's own Git repository."""

    path: str | None = None
    target_revision: str = "HEAD"
    repo_url: str = ""
    chart: str | None = None
    ref: str | None = None
    value_files: tuple[str, ...] = ()
    release_name: str | None = None

    @property
    def is_helm_repo(self) -> bool:
        """A chart from a chart repository (its revisions are chart versions, not commits)."""
        return self.chart is not None


@dataclass(frozen=True)
class IgnoreDifference:
    """``ignoreDifferences`` entry: fields (JSON pointers) of ``group``/``kind`` (``name``) not compared."""

    kind: str
    json_pointers: tuple[str, ...]
    group: str = ""
    name: str = ""


@dataclass(frozen=True)
class AppSpec:
    sources: tuple[Source, ...]
    multi_source: bool = False
    automated: bool = False
    self_heal: bool = False
    prune: bool = False
    project: str = "default"
    namespace: str = ""  # destination namespace; empty means the application's name
    ignore_differences: tuple[IgnoreDifference, ...] = ()
    sync_options: tuple[str, ...] = ("CreateNamespace=true",)

    def __post_init__(self) -> None:
        if not self.sources:
            raise FerryError("an Argo CD application needs at least one source")
        if len(self.sources) > 1 and not self.multi_source:
            object.__setattr__(self, "multi_source", True)


def git_app(
    path: str,
    target_revision: str = "HEAD",
    *,
    automated: bool = False,
    self_heal: bool = False,
    prune: bool = False,
    value_files: Sequence[str] = (),
    namespace: str = "",
    project: str = "default",
    ignore_differences: Sequence[IgnoreDifference] = (),
) -> AppSpec:
    """A single-source app deploying ``path`` of the stand-in's Git repository."""
    source = Source(path=path, target_revision=target_revision, value_files=tuple(value_files))
    return AppSpec(
        (source,),
        automated=automated,
        self_heal=self_heal,
        prune=prune,
        namespace=namespace,
        project=project,
        ignore_differences=tuple(ignore_differences),
    )


def chart_with_git_values(
    chart_repo: str,
    chart: str,
    version: str,
    value_files: Sequence[str],
    *,
    git_revision: str = "HEAD",
    automated: bool = False,
    self_heal: bool = False,
    prune: bool = False,
    git_first: bool = False,
    namespace: str = "",
) -> AppSpec:
    """A multi-source app: ``chart`` at ``version`` from ``chart_repo`` with ``$values/...`` from Git."""
    helm = Source(
        repo_url=chart_repo,
        chart=chart,
        target_revision=version,
        value_files=tuple(f"$values/{name.lstrip('/')}" for name in value_files),
    )
    values = Source(target_revision=git_revision, ref="values")
    sources = (values, helm) if git_first else (helm, values)
    return AppSpec(sources, True, automated=automated, self_heal=self_heal, prune=prune, namespace=namespace)


@dataclass
class Project:
    """An ``AppProject``: where its apps may deploy from, and its sync windows."""

    name: str
    source_repos: tuple[str, ...] = ("*",)
    windows: list[SyncWindow] = field(default_factory=list)

    def permits(self, repo_url: str) -> bool:
        return any(fnmatch.fnmatchcase(repo_url, glob) for glob in self.source_repos)


@dataclass(frozen=True)
class Account:
    """Who a bearer token is and what argocd-rbac-cm lets it do: ``actions`` on ``objects`` globs
    (``<project>/<app>``), e.g. ``p, role:ferry, applications, sync, default/*, allow``."""

    subject: str
    actions: frozenset[str] = frozenset(ACTIONS)
    objects: str = "*"
    issued_at: datetime | None = None

    def may(self, action: str, rbac_name: str) -> bool:
        return action in self.actions and fnmatch.fnmatchcase(rbac_name, self.objects)


class ChartRepository:
    """A Helm chart repository (``index.yaml`` + packaged charts), held in memory.

    Versions are mutable, as in a real repository: publishing the same version again replaces its
    files, which a normal refresh does not notice (the manifests are cached by version) and a hard
    refresh does (reposerver's manifest cache is keyed by revision; ``refresh=hard`` bypasses it).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._charts: dict[str, dict[str, dict[str, bytes]]] = {}

    def publish(self, name: str, version: str, files: Mapping[str, bytes]) -> None:
        self._charts.setdefault(name, {})[version] = dict(files)

    def files(self, name: str, version: str) -> Mapping[str, bytes] | None:
        return self._charts.get(name, {}).get(version)

    def resolve(self, name: str, wanted: str) -> str | None:
        """The newest version of ``name`` that is ``wanted`` or satisfies it as a semver range."""
        versions = self._charts.get(name, {})
        if wanted in versions:
            return wanted
        try:
            constraint = parse_constraint(wanted)
        except SelectionError:
            return None
        keyed = [(version_key(v), v) for v in versions]
        fitting = [(key, v) for key, v in keyed if key is not None and constraint.allows_key(key)]
        return max(fitting)[1] if fitting else None
