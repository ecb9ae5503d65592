"""Update targets resolved: the file a stage's ``update`` entry edits, and how Ferry finds images in it.

Validation (``config_load``), the stage view and the promotion edit all read targets through here,
so they agree on which file a kustomize directory means and which Helm paths apply.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.core.config import HelmUpdate, KustomizeUpdate, UpdateTarget
from bot.core.freight import FreightImage
from bot.core.manifest import (
    KUSTOMIZATION_FILES,
    FileEdit,
    HelmPaths,
    ImageOccurrence,
    ImageUpdate,
    bump_file,
    claimed_values,
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

    def claims(self, text: str, images: Collection[str]) -> dict[tuple[int, str], tuple[int, str]]:
        """The values a promotion of ``images`` writes in ``text``: see ``manifest.claimed_values``."""
        return claimed_values(
            text, images, source=self.path, helm_paths=self.helm_paths, reference_path=self.reference_path
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


def promotion_edits(
    targets: Sequence[Target],
    files: Mapping[str, str],
    images: Iterable[FreightImage],
    *,
    labels: Sequence[str] = (),
) -> tuple[tuple[str, str], ...]:
    """(path, new text) of every file that moving ``targets`` to ``images`` changes, in target order.

    Each target gets the images it holds. Targets naming one file compose: their edits apply to
    that file in turn and are confirmed once (``manifest.bump_file``), so none is lost; two asking
    one value for different things raise ManifestError naming both (``labels[i]`` names target i).
    """
    wanted = list(images)
    by_path: dict[str, list[FileEdit]] = {}
    for index, target in enumerate(targets):
        text = files[target.path]
        held = {o.image for o in target.images(text)}
        updates = tuple(ImageUpdate(i.image, i.tag, i.digest) for i in wanted if i.image in held)
        if updates:
            label = labels[index] if index < len(labels) else ""
            edit = FileEdit(updates, target.helm_paths, target.reference_path, label)
            by_path.setdefault(target.path, []).append(edit)
    changed = []
    for path, edits in by_path.items():
        text = files[path]
        result = bump_file(text, edits, source=path)
        if result.text != text:
            changed.append((path, result.text))
    return tuple(changed)
