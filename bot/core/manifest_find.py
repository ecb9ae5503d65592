"""Find image references in light YAML nodes: the shapes Ferry recognises, and where each one sits.

Three shapes are recognised, in every document of a file:

- ``kustomize``: entries of a Kustomization's top-level ``images:`` list, matched by ``newName``
  when the entry has one, else by ``name``;
- ``helm``: any mapping holding ``repository`` (+ optional ``registry``) and ``tag`` (+ optional
  ``digest``), matched by the joined reference; or the explicit dotted paths of ``HelmPaths``;
- ``reference``: a whole ``name[:tag][@digest]`` string under an ``image``-like key (``image:``,
  ``initImage:``, items of ``images:``), or a fully qualified reference anywhere; or the one at
  ``reference_path``.

Each match is a ``Found`` (``bot.core.manifest_types``): the ``ImageOccurrence`` people see, plus
the scalars an edit would change. Kustomize entries are read by ``bot.core.manifest_kustomize``;
deciding what to change is ``bot.core.manifest``'s job. Pure: takes and returns nodes.
"""

from __future__ import annotations

import re

from bot.core.images import normalise_name, parse_image
from bot.core.manifest_kustomize import kustomize_entries, kustomize_images
from bot.core.manifest_types import (
    Form,
    Found,
    HelmPaths,
    ImageOccurrence,
    Kind,
    line_of,
    split_tag,
    value_of,
)
from bot.core.yaml_nodes import (
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    Slot,
    fields,
    is_plain,
    lookup,
    scalar_slot,
)
from bot.core.yaml_scalars import reads_as_non_string
from bot.errors import InvalidReferenceError, ManifestError

PATH_NOT_FOUND = "{source}: {what} path {path!r} is not in this file"
PATH_NOT_SCALAR = "{source}:{line}: {what} path {path!r} holds a {kind}, not a single value"
BAD_REFERENCE_AT_PATH = "{source}:{line}: the value at {path!r} is not an image reference: {error}"
NO_TAG_PATH = "the Helm values paths need at least the tag path"

_IMAGE_KEY = re.compile(r"(?i)(?:^|[-_a-z0-9])image$")
_IMAGES_KEY = re.compile(r"(?i)(?:^|[-_a-z0-9])images$")

# The data types stay importable from here.
__all__ = [
    "BAD_REFERENCE_AT_PATH",
    "NO_TAG_PATH",
    "PATH_NOT_FOUND",
    "PATH_NOT_SCALAR",
    "Form",
    "Found",
    "HelmPaths",
    "ImageOccurrence",
    "Kind",
    "find_all",
]


def find_all(
    documents: list[Node], source: str, helm_paths: HelmPaths | None, reference_path: str | None
) -> list[Found]:
    """Every reference in ``documents`` in file order; with explicit paths, only those (which must exist)."""
    found: list[Found] = []
    for number, root in enumerate(documents):
        if helm_paths is not None:
            found.extend(_explicit_helm(root, number, source, helm_paths))
        elif reference_path is not None:
            found.extend(_explicit_reference(root, number, source, reference_path))
        else:
            found.extend(_scan(root, number, source))
    if (helm_paths is not None or reference_path is not None) and not found:
        what, path = ("Helm tag", helm_paths.tag) if helm_paths is not None else ("image", reference_path)
        raise ManifestError(PATH_NOT_FOUND.format(source=source, what=what, path=path))
    found.sort(key=lambda f: (f.occurrence.document, f.occurrence.line))
    return found


# Where a node sits, built as the scan walks down and spelled (``a.b[0].c``) only for a match:
# None at a document's root, else (where its parent sits, its key or its list position).
_Where = tuple["_Where | None", str | int] | None


def _spelled(where: _Where) -> str:
    parts: list[str | int] = []
    while where is not None:
        where, part = where
        parts.append(part)
    text = ""
    for part in reversed(parts):
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _scan(root: Node, document: int, source: str) -> list[Found]:
    found: list[Found] = []
    visited: set[int] = set()  # collections: an alias's are walked once, where its anchor is
    matched: set[int] = set()  # scalars: one reached again through an alias is the same reference
    # (node, where it sits, key it sits under, whether it is a list item, whether its parent is flow style)
    stack: list[tuple[Node, _Where, str, bool, bool]] = [(root, None, "", False, False)]
    while stack:
        node, where, key, item, flow = stack.pop()
        if isinstance(node, ScalarNode):
            if key:
                image_key = (_IMAGES_KEY if item else _IMAGE_KEY).search(key) is not None
                reference = _reference(node, Slot(None, node, flow), where, document, image_key=image_key)
                if reference is not None and id(node) not in matched:
                    matched.add(id(node))
                    found.append(reference)
            continue
        if id(node) in visited:  # an alias: already seen where its anchor is
            continue
        visited.add(id(node))
        if isinstance(node, MappingNode):
            pairs = fields(node)
            images = kustomize_images(pairs) if where is None else None
            if images is not None:
                found.extend(kustomize_entries(images, document, source))
            helm = _helm_mapping(node, pairs, where, document)
            if helm is not None:
                found.append(helm)
                continue
            child_flow = bool(node.flow_style)
            for child_key, child in reversed(node.value):
                if isinstance(child_key, ScalarNode) and child is not images:
                    name = str(child_key.value)
                    stack.append((child, (where, name), name, False, child_flow))
        else:
            child_flow = bool(node.flow_style)
            for position in range(len(node.value) - 1, -1, -1):
                stack.append((node.value[position], (where, position), key, True, child_flow))
    return found


def _helm_mapping(
    node: MappingNode, pairs: dict[str, tuple[ScalarNode, Node]], where: _Where, document: int
) -> Found | None:
    flow = bool(node.flow_style)
    repository = value_of(scalar_slot(pairs, "repository", flow))
    tag = scalar_slot(pairs, "tag", flow)
    if repository is None or tag is None:
        return None
    registry = value_of(scalar_slot(pairs, "registry", flow))
    spelled = f"{registry}/{repository}" if registry else repository
    try:
        ref = parse_image(spelled)
    except InvalidReferenceError:
        return None
    if ref.tag or ref.digest:
        return None
    digest = scalar_slot(pairs, "digest", flow)
    tag_text, tag_digest = split_tag(value_of(tag))
    line = line_of(tag, default=node)
    digest_text = value_of(digest) or tag_digest
    occurrence = ImageOccurrence(ref.name, tag_text, digest_text, line, "helm", _spelled(where), document)
    form: Form = "tag@digest" if tag_digest is not None else "tag"
    return Found(occurrence, spelled, tag=tag, digest=digest, form=form)


def _reference(
    node: ScalarNode, slot: Slot, where: _Where | str, document: int, *, image_key: bool
) -> Found | None:
    """A whole reference: under an image-like key, or fully qualified (``host/name:tag``) anywhere."""
    value = str(node.value).strip()
    if not image_key and ("/" not in value or (":" not in value and "@" not in value)):
        return None  # cheap test first: most scalars of a values file are not references
    if is_plain(node) and reads_as_non_string(value):
        return None
    try:
        ref = parse_image(value)
    except InvalidReferenceError:
        return None
    first, slash, _ = value.partition("/")
    qualified = bool(slash) and ("." in first or ":" in first or first == "localhost")
    if not image_key and not (qualified and (ref.tag or ref.digest)):
        return None
    line = int(node.start_mark.line) + 1
    path = where if isinstance(where, str) else _spelled(where)
    occurrence = ImageOccurrence(ref.name, ref.tag, ref.digest, line, "reference", path, document)
    suffix = (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
    return Found(occurrence, value[: len(value) - len(suffix)], tag=slot, form="reference")


def _explicit_slot(root: Node, path: str, what: str, source: str) -> tuple[Slot | None, MappingNode | None]:
    node, slot, parent = lookup(root, path)
    if node is not None and slot is None:
        kind = "list" if isinstance(node, SequenceNode) else "mapping"
        line = node.start_mark.line + 1
        raise ManifestError(PATH_NOT_SCALAR.format(source=source, line=line, what=what, path=path, kind=kind))
    return slot, parent


def _explicit_helm(root: Node, document: int, source: str, paths: HelmPaths) -> list[Found]:
    if paths.tag is None:
        raise ManifestError(NO_TAG_PATH)
    tag, tag_parent = _explicit_slot(root, paths.tag, "Helm tag", source)
    if tag is None:
        return []
    spelled = image = ""
    if paths.repository is None and tag_parent is not None:
        # No repository path: the repository (+ registry) beside the tag names the image, if there.
        beside = fields(tag_parent)
        repository_text = value_of(scalar_slot(beside, "repository", False))
        registry = value_of(scalar_slot(beside, "registry", False))
        if repository_text is not None:
            spelled = f"{registry}/{repository_text}" if registry else repository_text
            try:
                image = normalise_name(spelled)
            except InvalidReferenceError:
                spelled = ""
    elif paths.repository is not None:
        repository, parent = _explicit_slot(root, paths.repository, "Helm repository", source)
        spelled = value_of(repository) or ""
        if repository is None or not spelled:
            what = "Helm repository"
            raise ManifestError(PATH_NOT_FOUND.format(source=source, what=what, path=paths.repository))
        registry = value_of(scalar_slot(fields(parent), "registry", False)) if parent is not None else None
        spelled = f"{registry}/{spelled}" if registry else spelled
        try:
            image = normalise_name(spelled)
        except InvalidReferenceError as exc:
            line = repository.value.start_mark.line + 1
            raise ManifestError(
                BAD_REFERENCE_AT_PATH.format(source=source, line=line, path=paths.repository, error=exc)
            ) from None
    digest = _explicit_slot(root, paths.digest, "Helm digest", source)[0] if paths.digest else None
    tag_text, tag_digest = split_tag(value_of(tag))
    parent_path = re.sub(r"(?:\.[^.\[\]]+|\[\d+\])$", "", paths.tag)
    line = line_of(tag, default=root)
    occurrence = ImageOccurrence(
        image, tag_text, value_of(digest) or tag_digest, line, "helm", parent_path, document
    )
    form: Form = "tag@digest" if tag_digest is not None else "tag"
    explicit = digest is not None
    return [Found(occurrence, spelled, tag=tag, digest=digest, explicit_digest=explicit, form=form)]


def _explicit_reference(root: Node, document: int, source: str, path: str) -> list[Found]:
    slot, _ = _explicit_slot(root, path, "image", source)
    if slot is None:
        return []
    found = _reference(slot.value, slot, path, document, image_key=True)
    if found is None:
        line = slot.value.start_mark.line + 1
        problem = f"{slot.value.value!r} does not parse as [registry/]name[:tag][@digest]"
        raise ManifestError(BAD_REFERENCE_AT_PATH.format(source=source, line=line, path=path, error=problem))
    return [found]
