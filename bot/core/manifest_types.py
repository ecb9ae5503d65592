"""What finding an image in YAML yields: the occurrence people see, and the scalars an edit changes.

Shared by the shape readers (``bot.core.manifest_find`` for Helm values and whole references,
``bot.core.manifest_kustomize`` for kustomizations) and the editor (``bot.core.manifest``). Pure.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bot.core.yaml_nodes import MappingNode, Node, Slot, is_plain

Kind = Literal["kustomize", "helm", "reference"]
# How the tag scalar of a match is written: a tag alone, ``tag@digest``, or a whole
# ``name[:tag][@digest]`` reference (an ``image:`` string, or a kustomize ``newName`` carrying a tag).
Form = Literal["tag", "tag@digest", "reference"]

_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


@dataclass(frozen=True)
class HelmPaths:
    """Dotted paths inside a values file, e.g. ``image.repository``; given by the pipeline config."""

    repository: str | None = None
    tag: str | None = None
    digest: str | None = None


@dataclass(frozen=True)
class ImageOccurrence:
    """One image reference Ferry sees in a file. ``line`` is 1-based: the tag's line, or the reference's.

    ``image`` is the normalised name; it is empty for Helm paths that name no repository.
    """

    image: str
    tag: str | None
    digest: str | None
    line: int
    kind: Kind
    path: str
    document: int


@dataclass(frozen=True)
class Found:
    """One image reference found: what people see, and the scalars (or entry) an edit changes."""

    occurrence: ImageOccurrence
    spelled: str
    tag: Slot | None = None
    digest: Slot | None = None
    entry: MappingNode | None = None  # the kustomize entry, to append newTag or digest to
    explicit_digest: bool = False
    form: Form = "tag"


def value_of(slot: Slot | None) -> str | None:
    """A scalar's text as people read it; an empty or null plain value is None."""
    if slot is None or not slot.value.value or (is_plain(slot.value) and slot.value.value in _NULLS):
        return None
    return str(slot.value.value)


def line_of(*slots: Slot | None, default: Node) -> int:
    node = next((slot.value for slot in slots if slot is not None), default)
    return int(node.start_mark.line) + 1


def split_tag(value: str | None) -> tuple[str | None, str | None]:
    """Some charts write ``tag: 1.2.3@sha256:...``."""
    if value is None or "@" not in value:
        return value, None
    tag, _, digest = value.partition("@")
    return tag or None, digest


def without_suffix(text: str, tag: str | None, digest: str | None) -> str:
    """``text`` without its trailing ``:tag`` and ``@digest``."""
    suffix = (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")
    return text[: len(text) - len(suffix)] if suffix else text
