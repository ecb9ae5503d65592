"""Checking a pipeline config against the repository's files: do its update targets exist and hold the images?

``config_load.load_config`` calls ``target_problems`` when the repository's files are at hand (``ferry
validate`` in a checkout, and every reconcile pass). Each problem is (path into the config, whether it
points at the key, message); ``config_load`` turns the path into a line and column. Pure.

The manifest editor is imported inside the functions that need it, so reading a config never
depends on it; only checking files does.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Mapping

from bot.core.config import HelmUpdate, KustomizeUpdate, PipelineConfig, UpdateTarget, YamlUpdate
from bot.core.images import normalise_name
from bot.core.pipeline import Path, warehouse_of
from bot.errors import FerryError

MISSING_FILE = "{path} does not exist in the repository"
MISSING_KUSTOMIZATION = "{path} holds no kustomization file ({tried})"
UNREADABLE_TARGET = "{path}: {error}"
TARGET_WITHOUT_IMAGES = '{path} holds no image of warehouse "{warehouse}" ({wanted}); it holds: {held}'
IMAGE_NOWHERE = (
    'image {image} of warehouse "{warehouse}" is in none of the files this stage updates ({paths}); '
    "add it to one of them, or add a file that holds it"
)
CLAIMED_TWICE = (
    "{path}:{line}: this entry and update[{first}] both set {what}; give each value to one entry "
    "(remove one, or point their paths at different values)"
)
_KIND_KEYS: dict[type, str] = {KustomizeUpdate: "kustomize", HelmUpdate: "helm", YamlUpdate: "yaml"}


def target_path(target: UpdateTarget, exists: Callable[[str], bool]) -> str:
    """The repo-relative file an update target edits; a kustomize directory resolves to its file
    (``<dir>/kustomization.yaml`` when it holds none, so the caller reports that one missing)."""
    # Imported here so reading a config never depends on the manifest editor, only checking files does.
    from bot.core.targets import target_of  # noqa: PLC0415

    return target_of(target, exists).path


def update_target_paths(config: PipelineConfig, exists: Callable[[str], bool]) -> dict[str, list[str]]:
    """Stage -> the repo-relative files it edits, in ``update`` order, each once."""
    return {
        name: list(dict.fromkeys(target_path(target, exists) for target in stage.update))
        for name, stage in config.stages.items()
    }


def images_in(target: UpdateTarget, path: str, text: str) -> set[str]:
    """Normalised names of the images Ferry sees in one update target's text."""
    from bot.core.targets import target_of  # noqa: PLC0415

    resolved = target_of(target, lambda candidate: candidate == path)
    return {normalise_name(f.image) for f in resolved.images(text)}


def target_problems(config: PipelineConfig, files: Mapping[str, str]) -> list[tuple[Path, bool, str]]:
    from bot.core.manifest import KUSTOMIZATION_FILES  # noqa: PLC0415 (see target_path)

    problems: list[tuple[Path, bool, str]] = []
    for name, stage in config.stages.items():
        warehouse = warehouse_of(config, name)
        wanted = {rule.name: rule.image for rule in config.warehouses[warehouse].images}
        held_by_stage: set[str] = set()
        paths: list[str] = []
        complete = True  # every target could be read, so a missing image is really missing
        for index, target in enumerate(stage.update):
            where: Path = ("stages", name, "update", index, _KIND_KEYS[type(target)])
            path = target_path(target, files.__contains__)
            paths.append(path)
            if path not in files:
                message = MISSING_FILE.format(path=path)
                if isinstance(target, KustomizeUpdate) and path != posixpath.normpath(target.kustomize):
                    tried = ", ".join(KUSTOMIZATION_FILES)
                    message = MISSING_KUSTOMIZATION.format(path=target.kustomize, tried=tried)
                problems.append((where, False, message))
                complete = False
                continue
            try:
                held = images_in(target, path, files[path])
            except FerryError as exc:
                problems.append((where, False, UNREADABLE_TARGET.format(path=path, error=exc)))
                complete = False
                continue
            held_by_stage |= held
            if not held & wanted.keys():
                wanted_text, held_text = ", ".join(wanted.values()), ", ".join(sorted(held)) or "no images"
                message = TARGET_WITHOUT_IMAGES.format(
                    path=path, warehouse=warehouse, wanted=wanted_text, held=held_text
                )
                problems.append((where, False, message))
        problems += _shared_values(name, stage.update, paths, files, wanted.keys())
        for image_name, image in wanted.items():
            if complete and image_name not in held_by_stage:
                message = IMAGE_NOWHERE.format(image=image, warehouse=warehouse, paths=", ".join(paths))
                problems.append((("stages", name, "update"), True, message))
    return problems


def _shared_values(
    stage: str,
    targets: list[UpdateTarget],
    paths: list[str],
    files: Mapping[str, str],
    images: Collection[str],
) -> list[tuple[Path, bool, str]]:
    """Entries of one stage that name the same file and set the same value there (a tag, a digest)."""
    from bot.core.targets import target_of  # noqa: PLC0415 (see target_path)

    problems: list[tuple[Path, bool, str]] = []
    claimed: dict[tuple[str, tuple[int, str]], int] = {}  # (path, value) -> the first entry setting it
    for index, (target, path) in enumerate(zip(targets, paths, strict=True)):
        if path not in files or paths.count(path) < 2:
            continue
        try:
            claims = target_of(target, files.__contains__).claims(files[path], images)
        except FerryError:
            continue  # reported as unreadable already
        for key, (line, what) in claims.items():
            first = claimed.setdefault((path, key), index)
            if first != index:
                where: Path = ("stages", stage, "update", index, _KIND_KEYS[type(target)])
                message = CLAIMED_TWICE.format(path=path, line=line, first=first, what=what)
                problems.append((where, False, message))
                break
    return problems
