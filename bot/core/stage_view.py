"""What a stage runs, read from its files and its deploy commit: the shared view decide() works on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from bot.core.config import Stage
from bot.core.freight import Freight, FreightImage
from bot.core.images import parse_image
from bot.core.manifest import ImageOccurrence
from bot.core.pipeline import warehouse_of
from bot.core.promotion import parse_trailers
from bot.core.snapshot import Deploy, Snapshot
from bot.core.targets import Target, target_of
from bot.errors import FerryError, InvalidReferenceError


def stage_targets(stage: Stage, paths: frozenset[str]) -> list[Target]:
    return [target_of(update, paths.__contains__) for update in stage.update]


@dataclass(frozen=True)
class StageView:
    name: str
    warehouse: str
    targets: tuple[Target, ...]
    tags: Mapping[str, str | None]  # normalised image -> tag in the files (first occurrence)
    digests: Mapping[str, str | None]
    deploy: Deploy | None
    freight_id: str | None  # the freight Ferry promoted here last, when the files still match it
    freight: Freight | None  # that freight with digests, from the promotion commit's trailers

    def runs(self, freight: Freight) -> bool:
        return all(self.tags.get(i.image) == i.tag for i in freight.images)


def _occurrences(snapshot: Snapshot, target: Target) -> list[ImageOccurrence]:
    text = snapshot.files.get(target.path)
    if text is None:
        return []
    try:
        return target.images(text)
    except FerryError:
        return []


def freight_from_trailers(warehouse: str, message: str) -> Freight | None:
    trailers = parse_trailers(message)
    if not trailers.images:
        return None
    images = []
    for reference in trailers.images:
        try:
            ref = parse_image(reference)
        except InvalidReferenceError:
            return None
        if ref.tag is None:
            return None
        images.append(FreightImage(ref.name, ref.tag, ref.digest))
    return Freight(trailers.warehouse or warehouse, tuple(images))


def stage_view(snapshot: Snapshot, name: str) -> StageView:
    assert snapshot.config is not None
    stage = snapshot.config.stages[name]
    warehouse = warehouse_of(snapshot.config, name)
    targets = tuple(stage_targets(stage, snapshot.paths))
    tags: dict[str, str | None] = {}
    digests: dict[str, str | None] = {}
    for target in targets:
        for occurrence in _occurrences(snapshot, target):
            tags.setdefault(occurrence.image, occurrence.tag)
            digests.setdefault(occurrence.image, occurrence.digest)
    deploy = snapshot.deploys.get(name)
    freight = None
    if deploy is not None:
        trailers = parse_trailers(deploy.message)
        if trailers.stage == name:
            candidate = freight_from_trailers(warehouse, deploy.message)
            if candidate is not None and all(tags.get(i.image) == i.tag for i in candidate.images):
                freight = candidate
    return StageView(
        name=name,
        warehouse=warehouse,
        targets=targets,
        tags=tags,
        digests=digests,
        deploy=deploy,
        freight_id=freight.id if freight else None,
        freight=freight,
    )
