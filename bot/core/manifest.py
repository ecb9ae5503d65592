"""Find and bump image references in YAML files, changing nothing but the intended scalars.

Three shapes are recognised, in every document of a file:

- ``kustomize``: entries of a Kustomization's top-level ``images:`` list, matched by ``newName``
  when the entry has one, else by ``name``, read as kustomize renders them; the tag is set where the
  entry holds it (``newTag``, ``newTag: tag@digest``, or a ``newName`` carrying a tag, in place),
  ``digest`` only where one is pinned;
- ``helm``: any mapping holding ``repository`` (+ optional ``registry``) and ``tag`` (+ optional
  ``digest``), matched by the joined reference; or the explicit dotted paths of ``HelmPaths``;
- ``reference``: a whole ``name[:tag][@digest]`` string under an ``image``-like key (``image:``,
  ``initImage:``, items of ``images:``), or a fully qualified reference anywhere; or the one at
  ``reference_path``.

Names compare after normalisation (``nginx`` = ``docker.io/library/nginx``). Digests follow the
rule "only where already pinned": a pinned digest with an update that has none is an error, since
the stale digest would win over the new tag. Several update entries' edits to one file compose
(``bump_file``). Pure: takes and returns text. Recognising the shapes lives in
``bot.core.manifest_find`` and ``bot.core.manifest_kustomize``; the splicing and the confirm step in
``bot.core.yaml_scalars``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, replace

from bot.core.images import check_digest, check_tag, normalise_name
from bot.core.manifest_find import (
    BAD_REFERENCE_AT_PATH,
    NO_TAG_PATH,
    PATH_NOT_FOUND,
    PATH_NOT_SCALAR,
    Found,
    HelmPaths,
    ImageOccurrence,
    Kind,
    find_all,
)
from bot.core.manifest_types import value_of
from bot.core.yaml_scalars import Editor, Node, Slot, parse, paused_gc
from bot.errors import ManifestError

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
NOT_IN_FILE = '{source}: image "{image}" is not in this file; {holds}'
HOLDS = "it holds {listing}"
HOLDS_NOTHING = (
    "it holds no image reference Ferry recognises (kustomize images[] entries, Helm "
    "repository/tag mappings, or image: name:tag strings)"
)
DIGEST_MISSING = (
    "{source}:{line}: {image} at {path} pins a digest, but the update for it has none; "
    "give IMAGE=TAG@sha256:DIGEST, or remove the digest from the file"
)
DUPLICATE_UPDATE = 'image "{image}" is given twice ({first} and {second}); give each image once'
NO_KUSTOMIZATION = '"{target}" has no kustomization: tried {tried}'
AMBIGUOUS_HELM = (
    "{source}: the Helm values paths name no repository, so the tag at {path!r} cannot be matched "
    "to one of {count} images; give the repository path too"
)


@dataclass(frozen=True)
class ImageUpdate:
    """Set ``image`` (any spelling, compared normalised) to ``tag`` and, where pinned, ``digest``."""

    image: str
    tag: str
    digest: str | None = None


@dataclass(frozen=True)
class Change:
    """One edit, as people read it: ``1.0.0`` -> ``1.1.0``."""

    line: int
    image: str
    old: str
    new: str


@dataclass(frozen=True)
class BumpResult:
    text: str
    changes: tuple[Change, ...]


def find_images(
    text: str,
    *,
    source: str = "<text>",
    helm_paths: HelmPaths | None = None,
    reference_path: str | None = None,
) -> list[ImageOccurrence]:
    """Every image reference in ``text``, in file order."""
    documents = parse(text, source).documents
    return [f.occurrence for f in find_all(documents, source, helm_paths, reference_path)]


@dataclass(frozen=True)
class FileEdit:
    """What one update entry asks of a file: the images to set, and how to find them there.

    ``label`` names the entry in messages (``stages.prod.update[1]``).
    """

    updates: tuple[ImageUpdate, ...]
    helm_paths: HelmPaths | None = None
    reference_path: str | None = None
    label: str = ""


def bump_text(
    text: str,
    updates: Sequence[ImageUpdate],
    *,
    source: str = "<text>",
    helm_paths: HelmPaths | None = None,
    reference_path: str | None = None,
) -> BumpResult:
    """Apply ``updates`` to every matching reference; only the changed scalars differ in the result."""
    return bump_file(text, [FileEdit(tuple(updates), helm_paths, reference_path)], source=source)


def bump_file(text: str, edits: Sequence[FileEdit], *, source: str = "<text>") -> BumpResult:
    """Apply several update entries' edits to one file, in turn, confirming the result once.

    Every entry is matched against the same parse and its edits join one set of patches, so two
    entries naming one file both land. Two entries (or two images sharing a YAML anchor) asking
    one scalar for different values raise ManifestError naming both; the same value is made once.
    """
    with paused_gc():  # the parses' events and nodes are freed on return, before the collector runs
        return _bump_file(text, edits, source)


def _bump_file(text: str, edits: Sequence[FileEdit], source: str) -> BumpResult:
    parsed = parse(text, source)
    editor = Editor(text, parsed, source)
    changes: list[Change] = []
    for edit in edits:
        changes += _plan_edit(editor, parsed.documents, edit)
    if not changes:
        return BumpResult(text, ())
    # Two matches may share one scalar through an alias: report that edit once.
    return BumpResult(editor.result(), tuple(sorted(set(changes), key=lambda c: (c.line, c.image))))


def _plan_edit(editor: Editor, documents: list[Node], edit: FileEdit) -> list[Change]:
    source, helm_paths = editor.source, edit.helm_paths
    wanted = _check_updates(edit.updates)
    found = find_all(documents, source, helm_paths, edit.reference_path)
    if helm_paths is not None and any(not f.occurrence.image for f in found):
        # A tag path with neither a repository path nor a repository beside it: the one image.
        if len(wanted) != 1:
            raise ManifestError(AMBIGUOUS_HELM.format(source=source, path=helm_paths.tag, count=len(wanted)))
        (only,) = wanted
        found = [f if f.occurrence.image else _with_image(f, only) for f in found]
    by_image: dict[str, list[Found]] = {}
    for f in found:
        by_image.setdefault(f.occurrence.image, []).append(f)
    missing = [u for name, u in wanted.items() if name not in by_image]
    if missing:
        raise ManifestError(NOT_IN_FILE.format(source=source, image=missing[0].image, holds=_holdings(found)))
    prefix = f"{edit.label}: " if edit.label else ""
    return [
        change
        for name, update in wanted.items()
        for f in by_image[name]
        if (change := _plan(editor, f, update, prefix + (f.spelled or name)))
    ]


def claimed_values(
    text: str,
    images: Collection[str],
    *,
    source: str = "<text>",
    helm_paths: HelmPaths | None = None,
    reference_path: str | None = None,
) -> dict[tuple[int, str], tuple[int, str]]:
    """The values a bump of ``images`` (normalised names) would write, for telling two entries apart.

    Keys are (parser event number, key added to a kustomize entry or ""), equal for the same scalar
    of the same text however it is found; values are (line, what is set there, for messages).
    """
    documents = parse(text, source).documents
    claims: dict[tuple[int, str], tuple[int, str]] = {}
    for found in find_all(documents, source, helm_paths, reference_path):
        image = found.occurrence.image
        if image not in images and image:
            continue
        name = image or (helm_paths.tag if helm_paths is not None else None) or "the image"
        line = found.occurrence.line
        for slot, key, what in ((found.tag, "newTag", "tag"), (found.digest, "digest", "digest")):
            if slot is not None:
                claims[(slot.value.event, "")] = (slot.value.start_mark.line + 1, f"the {what} of {name}")
            elif found.entry is not None and what == "tag":
                claims[(found.entry.end_event, key)] = (line, f"the {what} of {name}")
    return claims


def resolve_kustomization(target: str, exists: Callable[[str], bool]) -> str:
    """The kustomization file for ``target``: a file path as is, else the first of KUSTOMIZATION_FILES."""
    base = posixpath.basename(target.rstrip("/"))
    if base.endswith((".yaml", ".yml")) or base in KUSTOMIZATION_FILES:
        return target
    tried = [posixpath.normpath(posixpath.join(target, name)) for name in KUSTOMIZATION_FILES]
    for candidate in tried:
        if exists(candidate):
            return candidate
    raise ManifestError(NO_KUSTOMIZATION.format(target=target, tried=", ".join(tried)))


def _check_updates(updates: Sequence[ImageUpdate]) -> dict[str, ImageUpdate]:
    wanted: dict[str, ImageUpdate] = {}
    for update in updates:
        check_tag(update.tag)
        if update.digest is not None:
            check_digest(update.digest)
        name = normalise_name(update.image)
        if name in wanted:
            raise ManifestError(
                DUPLICATE_UPDATE.format(image=name, first=wanted[name].image, second=update.image)
            )
        wanted[name] = update
    return wanted


def _holdings(found: list[Found]) -> str:
    if not found:
        return HOLDS_NOTHING
    lines: dict[str, list[int]] = {}
    for f in found:
        lines.setdefault(f.occurrence.image or "?", []).append(f.occurrence.line)
    listing = ", ".join(
        f"{image} (line{'s' if len(ls) > 1 else ''} {', '.join(map(str, ls))})" for image, ls in lines.items()
    )
    return HOLDS.format(listing=listing)


def _with_image(found: Found, image: str) -> Found:
    return replace(found, occurrence=replace(found.occurrence, image=image), spelled=image)


# --- planning the edits ---------------------------------------------------------------------------


def _show(tag: str | None, digest: str | None) -> str:
    text = (tag or "") + (f"@{digest}" if digest else "")
    return text or "(none)"


def _plan(editor: Editor, found: Found, update: ImageUpdate, owner: str) -> Change | None:
    """Record the edits that bring one occurrence to ``update``; the Change, or None if already there.

    The form of the file is kept: a tag alone, ``tag@digest`` in one scalar, or a whole reference.
    A digest is written only where one is pinned (or an explicit Helm digest path asks for it), and
    a digest-only reference or kustomize entry stays digest-only.
    """
    occurrence = found.occurrence
    pinned = occurrence.digest is not None
    if pinned and update.digest is None:
        raise ManifestError(
            DIGEST_MISSING.format(
                source=editor.source,
                line=occurrence.line,
                image=occurrence.image,
                path=occurrence.path or "the top level",
            )
        )
    new_digest = update.digest if pinned or (found.explicit_digest and update.digest) else None
    digest_only = pinned and occurrence.tag is None and occurrence.kind != "helm"
    new_tag = None if digest_only else update.tag
    changed = False
    if found.form == "reference":
        assert found.tag is not None
        inline = new_digest if found.digest is None and found.entry is None else None
        value = found.spelled + (f":{new_tag}" if new_tag else "") + (f"@{inline}" if inline else "")
        changed |= editor.set(found.tag, value, owner)
    elif found.form == "tag@digest":
        assert new_digest is not None  # the digest in the tag pins it
        changed |= _write(editor, found, found.tag, "newTag", value=f"{update.tag}@{new_digest}", owner=owner)
    elif new_tag is not None:
        changed |= _write(editor, found, found.tag, "newTag", value=new_tag, owner=owner)
    if new_digest and _writes_digest(found):
        changed |= _write(editor, found, found.digest, "digest", value=new_digest, owner=owner)
    if not changed:
        return None
    return Change(
        occurrence.line,
        found.spelled or occurrence.image,
        _show(occurrence.tag, occurrence.digest),
        _show(new_tag, new_digest),
    )


def _writes_digest(found: Found) -> bool:
    """Whether a pinned update's digest goes into the separate digest scalar (or a new ``digest:``)."""
    if found.form == "reference":  # a newName with a tag, pinned by digest: (or by the name's digest)
        return found.digest is not None or found.entry is not None
    if found.form == "tag@digest":  # pinned in the tag; a digest field is kept in step if it holds one
        return found.digest is not None and (found.explicit_digest or value_of(found.digest) is not None)
    return True


def _write(editor: Editor, found: Found, slot: Slot | None, key: str, *, value: str, owner: str) -> bool:
    """Set ``slot``; without one, add ``key`` to the kustomize entry (other shapes have nowhere to add)."""
    if slot is not None:
        return editor.set(slot, value, owner)
    if found.entry is not None:
        return editor.append(found.entry, key, value, owner)
    return False


# Kind and the path messages live in bot.core.manifest_find; they stay importable from here.
__all__ = [
    "BAD_REFERENCE_AT_PATH",
    "NO_TAG_PATH",
    "PATH_NOT_FOUND",
    "PATH_NOT_SCALAR",
    "BumpResult",
    "Change",
    "FileEdit",
    "HelmPaths",
    "ImageOccurrence",
    "ImageUpdate",
    "Kind",
    "bump_file",
    "bump_text",
    "claimed_values",
    "find_images",
    "resolve_kustomization",
]
