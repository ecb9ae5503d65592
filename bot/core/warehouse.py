"""Warehouses turn chosen tags into freight. Pure: the registry adapter does the listing and the HEADs.

Belongs here: reading a warehouse config into (image, TagRule) pairs, building a ``Freight`` from the
tag and digest chosen for each image, and saying what changed between two freights (a followed
``latest`` whose digest moved is new freight with a new id, though its tag is the same).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.core.freight import Freight, FreightImage
from bot.core.images import normalise_name
from bot.core.selection import ImageRuleLike, TagRule


class WarehouseLike(Protocol):
    """What a config's warehouse offers (bot.core.config.Warehouse)."""

    @property
    def images(self) -> Sequence[ImageRuleLike]: ...


def image_rules(warehouse: WarehouseLike) -> list[tuple[str, TagRule]]:
    """Each image of the warehouse (normalised name) with its validated rule, in config order."""
    return [(normalise_name(rule.image), TagRule.from_image_rule(rule)) for rule in warehouse.images]


def freight_from_selection(warehouse_name: str, chosen: Mapping[str, tuple[str, str | None]]) -> Freight:
    """The freight of a warehouse from ``image -> (tag, digest)``; image names are normalised."""
    images = tuple(FreightImage(image, tag, digest) for image, (tag, digest) in chosen.items())
    return Freight(warehouse=warehouse_name, images=images)


@dataclass(frozen=True)
class ImageChange:
    """One image whose tag or digest differs between two freights (``before`` None: a new image)."""

    image: str
    before: FreightImage | None
    after: FreightImage

    @property
    def digest_only(self) -> bool:
        """The tag stayed, the content moved: what following a mutable tag reports."""
        return self.before is not None and self.before.tag == self.after.tag

    def __str__(self) -> str:
        def show(i: FreightImage) -> str:
            return f"{i.tag}@{i.digest[:19]}" if i.digest else i.tag

        if self.before is None:
            return f"{self.image}: new at {show(self.after)}"
        return f"{self.image}: {show(self.before)} -> {show(self.after)}"


def changes(before: Freight | None, after: Freight) -> list[ImageChange]:
    """What moved from ``before`` to ``after``, by image; empty when both have the same id."""
    old = {i.image: i for i in before.images} if before is not None else {}
    return [ImageChange(i.image, old.get(i.image), i) for i in after.images if old.get(i.image) != i]
