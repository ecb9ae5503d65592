"""Update targets resolved: the file a stage's ``update`` entry edits, and how Ferry finds images in it.

Validation (``config_load``), the stage view and the promotion edit all read targets through here,
so they agree on which file a kustomize directory means and which Helm paths apply.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from bot.core.config import HelmUpdate, KustomizeUpdate, UpdateTarget
from bot.core.manifest import (
    KUSTOMIZATION_FILES,
    HelmPaths,
    ImageOccurrence,
    find_images,
    resolve_kustomization,
)
from bot.errors import ManifestError


@dataclass(frozen=True)
class Target:
    """One file a stage's promotion edits, with how to find images in it."""

    path: str
    helm_paths: HelmPaths | None = None
    reference_path: str | None = None

    def images(self, text: str) -> list[ImageOccurrence]:
        return find_images(
            text, source=self.path, helm_paths=self.helm_paths, reference_path=self.reference_path
        )


def target_of(update: UpdateTarget, exists: Callable[[str], bool]) -> Target:
    """Resolve an update entry against the repository's files (``exists``).

    A kustomize directory without a kustomization resolves to ``<dir>/kustomization.yaml``, so the
    caller reports that file missing rather than failing here.
    """
    if isinstance(update, KustomizeUpdate):
        directory = posixpath.normpath(update.kustomize)
        try:
            return Target(resolve_kustomization(directory, exists))
        except ManifestError:
            return Target(posixpath.join(directory, KUSTOMIZATION_FILES[0]))
    if isinstance(update, HelmUpdate):
        explicit = update.repository or update.tag or update.digest
        helm = (
            HelmPaths(repository=update.repository, tag=update.tag, digest=update.digest)
            if explicit
            else None
        )
        return Target(posixpath.normpath(update.helm), helm_paths=helm)
    return Target(posixpath.normpath(update.yaml), reference_path=update.path)
