"""The Argo CD stand-in's repo-server: resolve each source's revision and generate its manifests.

``generate`` does what controller/state.go ``GetRepoObjs`` asks of reposerver/repository/repository.go
``GenerateManifest`` for every source: resolve the revision (a Git branch, tag or commit through
``GitReader``; a chart version or semver range in a ``ChartRepository``), render the source at it with
``argocd_render`` (``$ref/...`` value files read from the referenced source's commit), and put namespaced
objects without a namespace in the destination's. Failures come back as the condition message Argo CD
shows: "Failed to load target state: failed to generate manifest for source i of n: rpc error: ...".
Manifests are cached per app, sources and resolved revisions, as repo-server's manifest cache is;
``drop_cache`` is a hard refresh.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from bot.sandbox.argocd_apps import ChartRepository, Source
from bot.sandbox.argocd_git import FULL_SHA_RE, GitReader
from bot.sandbox.argocd_render import (
    Files,
    Manifest,
    RenderError,
    render_chart,
    render_source,
)
from bot.sandbox.argocd_render import source_type as type_at
from bot.sandbox.argocd_state import key_of, with_namespace

MSG_GENERATE = "Failed to load target state: failed to generate manifest for source {i} of {n}: {detail}"
MSG_UNRESOLVED = "rpc error: code = Unknown desc = unable to resolve '{revision}' to a commit SHA"
MSG_NOT_FETCHED = (
    "rpc error: code = Internal desc = Failed to fetch revision {revision}: `git fetch origin {revision} "
    "--tags --force --prune` failed exit status 128: fatal: remote error: upload-pack: not our ref {revision}"
)
MSG_NO_CHART = (
    'rpc error: code = Unknown desc = Error: chart "{chart}" version "{version}" not found in {url} '
    "repository"
)
MSG_RENDER = "rpc error: code = Unknown desc = {detail}"


class RepoServer:
    def __init__(self, git: GitReader, *, repo_url: str, charts: Mapping[str, ChartRepository]) -> None:
        self.git = git
        self.repo_url = repo_url
        self.charts = charts
        self.checkout_root = "/tmp/_argocd-repo/" + str(uuid.uuid5(uuid.NAMESPACE_URL, repo_url))
        self._manifests: dict[tuple[Any, ...], list[Manifest]] = {}

    def drop_cache(self) -> None:
        self.git.drop_cache()
        self._manifests.clear()

    async def generate(
        self, app: str, namespace: str, sources: tuple[Source, ...], wanted: list[str]
    ) -> tuple[list[str], list[Manifest] | None, str | None]:
        """Resolve and render ``sources`` at ``wanted`` revisions ("": their targetRevision)."""
        count = len(sources)
        asked = [w or s.target_revision for w, s in zip(wanted, sources, strict=True)]
        resolved = list(asked)
        trees: list[Files | None] = []
        for index, source in enumerate(sources):
            found, tree, problem = await self._resolve(source, asked[index])
            if problem is not None:
                shown = asked if count == 1 else resolved
                return shown, None, MSG_GENERATE.format(i=index + 1, n=count, detail=problem)
            resolved[index] = found
            trees.append(tree)
        refs = {s.ref: t for s, t in zip(sources, trees, strict=True) if s.ref and t is not None}
        cache_key = (app, namespace, sources, tuple(resolved))
        cached = self._manifests.get(cache_key)
        if cached is not None:
            return resolved, cached, None
        manifests: list[Manifest] = []
        for index, (source, tree) in enumerate(zip(sources, trees, strict=True)):
            try:
                manifests += self._render((app, namespace), source, resolved[index], tree, refs)
            except RenderError as exc:
                shown = asked if count == 1 else resolved
                detail = MSG_RENDER.format(detail=exc)
                return shown, None, MSG_GENERATE.format(i=index + 1, n=count, detail=detail)
        desired = {key_of(m): m for m in (with_namespace(m, namespace) for m in manifests)}
        result = list(desired.values())
        self._manifests[cache_key] = result
        return resolved, result, None

    async def source_type(self, source: Source, revision: str) -> str:
        """``status.sourceType`` of ``source`` at its resolved ``revision``."""
        if source.is_helm_repo:
            return "Helm"
        if not FULL_SHA_RE.match(revision) or (source.ref and source.path is None):
            return "Directory"
        return type_at(await self.git.files(revision), source.path or ".")

    async def _resolve(self, source: Source, revision: str) -> tuple[str, Files | None, str | None]:
        if source.is_helm_repo:
            repository = self.charts.get(source.repo_url)
            version = repository.resolve(source.chart or "", revision) if repository else None
            if version is None:
                url = source.repo_url
                return revision, None, MSG_NO_CHART.format(chart=source.chart, version=revision, url=url)
            return version, None, None
        sha = await self.git.resolve(revision)
        if sha is None:
            template = MSG_NOT_FETCHED if FULL_SHA_RE.match(revision) else MSG_UNRESOLVED
            return revision, None, template.format(revision=revision)
        return sha, await self.git.files(sha), None

    def _render(
        self, where: tuple[str, str], source: Source, revision: str, tree: Files | None,
        refs: Mapping[str, Files],
    ) -> list[Manifest]:  # fmt: skip
        app, namespace = where
        release = source.release_name or app
        if source.is_helm_repo:
            repository = self.charts[source.repo_url]
            chart = repository.files(source.chart or "", revision) or {}
            values = []
            for name in source.value_files:
                ref, _, rest = name.removeprefix("$").partition("/")
                data = refs.get(ref, {}).get(rest) if name.startswith("$") else chart.get(name)
                values.append((name, data))
            return render_chart(chart, release_name=release, namespace=namespace, values=values)
        if source.ref and source.path is None:
            return []  # a ref-only source only lends its files to the others
        return render_source(
            tree or {}, source.path or ".", root=self.checkout_root, release_name=release,
            namespace=namespace, value_files=source.value_files, refs=refs,
        )  # fmt: skip
