"""Find and bump image references in YAML files, changing nothing but the intended scalars.

Three shapes are recognised, in every document of a file:

- ``kustomize``: entries of a Kustomization's top-level ``images:`` list, matched by ``newName``
  when the entry has one, else by ``name``; ``newTag`` is set, ``digest`` only where one is pinned;
- ``helm``: any mapping holding ``repository`` (+ optional ``registry``) and ``tag`` (+ optional
  ``digest``), matched by the joined reference; or the explicit dotted paths of ``HelmPaths``;
- ``reference``: a whole ``name[:tag][@digest]`` string under an ``image``-like key (``image:``,
  ``initImage:``, items of ``images:``), or a fully qualified reference anywhere; or the one at
  ``reference_path``.

Names compare after normalisation (``nginx`` = ``docker.io/library/nginx``). Digests follow the
rule "only where already pinned": a pinned digest with an update that has none is an error, since
the stale digest would win over the new tag. Pure: takes and returns text. Recognising the shapes
lives in ``bot.core.manifest_find``; the splicing and the confirm step in ``bot.core.yaml_scalars``.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Sequence
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
from bot.core.yaml_scalars import Editor, parse
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


def bump_text(
    text: str,
    updates: Sequence[ImageUpdate],
    *,
    source: str = "<text>",
    helm_paths: HelmPaths | None = None,
    reference_path: str | None = None,
) -> BumpResult:
    """Apply ``updates`` to every matching reference; only the changed scalars differ in the result."""
    wanted = _check_updates(updates)
    parsed = parse(text, source)
    found = find_all(parsed.documents, source, helm_paths, reference_path)
    if helm_paths is not None and helm_paths.repository is None:
        if len(wanted) != 1:
            raise ManifestError(AMBIGUOUS_HELM.format(source=source, path=helm_paths.tag, count=len(wanted)))
        (only,) = wanted
        found = [_with_image(f, only) for f in found]
    by_image: dict[str, list[Found]] = {}
    for f in found:
        by_image.setdefault(f.occurrence.image, []).append(f)
    missing = [u for name, u in wanted.items() if name not in by_image]
    if missing:
        raise ManifestError(NOT_IN_FILE.format(source=source, image=missing[0].image, holds=_holdings(found)))
    editor = Editor(text, parsed, source)
    changes = [c for name, u in wanted.items() for f in by_image[name] if (c := _plan(editor, f, u))]
    if not changes:
        return BumpResult(text, ())
    # Two matches may share one scalar through an alias: report that edit once.
    return BumpResult(editor.result(), tuple(sorted(set(changes), key=lambda c: (c.line, c.image))))


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


def _plan(editor: Editor, found: Found, update: ImageUpdate) -> Change | None:
    """Record the edits that bring one occurrence to ``update``; the Change, or None if already there."""
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
    new_tag: str | None = update.tag
    changed = False
    if occurrence.kind == "reference":
        assert found.tag is not None
        new_tag = update.tag if occurrence.tag is not None or not pinned else None
        value = found.spelled + (f":{new_tag}" if new_tag else "") + (f"@{new_digest}" if new_digest else "")
        changed = editor.set(found.tag, value)
    else:
        combined = found.tag is not None and "@" in str(found.tag.value.value)
        if found.tag is not None:
            changed |= editor.set(found.tag, f"{update.tag}@{new_digest}" if combined else update.tag)
        elif occurrence.kind == "kustomize" and pinned:
            new_tag = None  # a digest-only entry stays digest-only
        elif found.entry is not None:
            editor.append(found.entry, "newTag", update.tag)
            changed = True
        if found.digest is not None and new_digest and not combined:
            changed |= editor.set(found.digest, new_digest)
    if not changed:
        return None
    return Change(
        occurrence.line,
        found.spelled or occurrence.image,
        _show(occurrence.tag, occurrence.digest),
        _show(new_tag, new_digest),
    )


# Kind and the path messages live in bot.core.manifest_find; they stay importable from here.
__all__ = [
    "BAD_REFERENCE_AT_PATH",
    "NO_TAG_PATH",
    "PATH_NOT_FOUND",
    "PATH_NOT_SCALAR",
    "BumpResult",
    "Change",
    "HelmPaths",
    "ImageOccurrence",
    "ImageUpdate",
    "Kind",
    "bump_text",
    "find_images",
    "resolve_kustomization",
]
