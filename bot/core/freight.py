"""Freight: one concrete set of artifacts from a warehouse, with a content-derived id."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from bot.core.images import ImageRef, normalise_name

FREIGHT_ID_LENGTH = 12


@dataclass(frozen=True, order=True)
class FreightImage:
    """One image of a freight. ``image`` is the normalised name (``ghcr.io/acme/web``)."""

    image: str
    tag: str
    digest: str | None = None

    @property
    def ref(self) -> ImageRef:
        registry, _, repository = self.image.partition("/")
        return ImageRef(registry=registry, repository=repository, tag=self.tag, digest=self.digest)

    def as_dict(self) -> dict[str, str | None]:
        return {"image": self.image, "tag": self.tag, "digest": self.digest}


@dataclass(frozen=True)
class Freight:
    """The images a promotion moves. Equal content gives an equal ``id``, whatever the order given."""

    warehouse: str
    images: tuple[FreightImage, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        normalised = tuple(
            sorted(FreightImage(normalise_name(i.image), i.tag, i.digest) for i in self.images)
        )
        object.__setattr__(self, "images", normalised)

    @property
    def canonical_json(self) -> str:
        return json.dumps(
            [i.as_dict() for i in self.images], sort_keys=True, separators=(",", ":"), ensure_ascii=True
        )

    @property
    def id(self) -> str:
        return hashlib.sha256(self.canonical_json.encode()).hexdigest()[:FREIGHT_ID_LENGTH]

    @property
    def label(self) -> str:
        """What people read: ``web 1.4.2``, or ``web 1.4.2, api 2.0.1`` for several images."""
        parts = [f"{i.ref.familiar.rsplit('/', 1)[-1]} {i.tag}" for i in self.images]
        return ", ".join(parts)

    def tag_of(self, image: str) -> str | None:
        name = normalise_name(image)
        return next((i.tag for i in self.images if i.image == name), None)
