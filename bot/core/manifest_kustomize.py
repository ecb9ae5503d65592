"""Kustomize ``images:`` entries read as kustomize renders them, and the entries Ferry refuses to edit.

kustomize (api/filters/imagetag/updater.go, ``SetImageValue``) splits a resource's image reference
into name, tag and digest (api/internal/image/image.go, ``Split``), replaces the name with
``newName`` verbatim, then: ``newTag`` and ``digest`` set both; ``newTag`` alone sets the tag and
drops the digest; ``digest`` alone sets the digest and drops the tag; neither keeps the resource's
own. The parts are joined as ``name[:tag][@digest]``, so a tag or digest may sit in ``newName``
(``…/cart:2.4.0``) or in ``newTag`` (``2.4.0@sha256:…``, a form Renovate writes) as well. Pure.
"""

from __future__ import annotations

from bot.core.images import ImageRef, parse_image
from bot.core.manifest_types import (
    Found,
    ImageOccurrence,
    line_of,
    split_tag,
    value_of,
    without_suffix,
)
from bot.core.yaml_nodes import MappingNode, Node, ScalarNode, SequenceNode, fields, scalar_slot
from bot.errors import InvalidReferenceError, ManifestError

# Kustomize entries whose fields kustomize joins into an invalid reference (api/filters/imagetag/
# updater.go: newName replaces the name, then ":" + newTag and "@" + digest are appended to it).
KUSTOMIZE_NAME_AND_TAG = (
    "{source}:{line}: images[{index}] carries a {what} in newName ({new_name!r}) and sets {field} too; "
    "kustomize renders {rendered!r}, which is not an image reference. Write the name alone in newName "
    "({name!r}) and the tag in newTag{digest_hint}"
)
KUSTOMIZE_TWO_DIGESTS = (
    "{source}:{line}: images[{index}] carries a digest in newTag ({tag!r}) and sets digest too; "
    "kustomize renders two digests. Keep one: newTag: {bare!r} with digest:, or newTag: tag@digest alone"
)
KUSTOMIZE_NAME_TAG_AND_NEW_NAME = (
    "{source}:{line}: images[{index}] matches {name!r} (with a tag or digest) and carries a tag or "
    "digest in newName ({new_name!r}) too; kustomize appends the first to the second and renders "
    "{rendered!r}. Write newName without tag or digest and the tag in newTag"
)


def kustomize_images(pairs: dict[str, tuple[ScalarNode, Node]]) -> SequenceNode | None:
    images = pairs.get("images", (None, None))[1]
    kind = pairs.get("kind", (None, None))[1]
    if not isinstance(images, SequenceNode):
        return None
    if kind is None or (isinstance(kind, ScalarNode) and kind.value in ("Kustomization", "Component")):
        return images
    return None


def kustomize_entries(images: SequenceNode, document: int, source: str) -> list[Found]:
    found = []
    for position, entry in enumerate(images.value):
        if isinstance(entry, MappingNode):
            one = _kustomize_entry(entry, position, document, source)
            if one is not None:
                found.append(one)
    return found


def _kustomize_entry(entry: MappingNode, position: int, document: int, source: str) -> Found | None:
    """One ``images[]`` entry, read as kustomize renders it for a resource spelled as its ``name``.

    kustomize (api/filters/imagetag/updater.go, SetImageValue) splits the resource's reference into
    name, tag and digest (api/internal/image/image.go, Split), replaces the name with ``newName``
    verbatim, then: newTag and digest set both; newTag alone sets the tag and drops the digest;
    digest alone sets the digest and drops the tag; neither keeps the resource's own. The result
    is ``name[:tag][@digest]``, so a tag or digest may sit in ``newName`` or ``newTag`` too; an
    entry whose parts would join into an invalid reference is refused, saying how to write it.
    """
    pairs, flow = fields(entry), bool(entry.flow_style)
    new_name_slot = scalar_slot(pairs, "newName", flow)
    tag, digest = scalar_slot(pairs, "newTag", flow), scalar_slot(pairs, "digest", flow)
    name, new_name = value_of(scalar_slot(pairs, "name", flow)), value_of(new_name_slot)
    try:
        matched = parse_image(name or "")
        renamed = parse_image(new_name) if new_name is not None else None
    except InvalidReferenceError:
        return None
    new_tag, digest_text = value_of(tag), value_of(digest)
    tag_text, tag_digest = split_tag(new_tag)
    inline = renamed is not None and bool(renamed.tag or renamed.digest)
    line = line_of(tag, digest, new_name_slot if inline else None, default=entry)
    path = f"images[{position}]"
    if tag_digest is not None and digest_text is not None:
        raise ManifestError(
            KUSTOMIZE_TWO_DIGESTS.format(
                source=source, line=line, index=position, tag=new_tag, bare=tag_text or ""
            )
        )
    if renamed is not None and inline:
        assert new_name is not None
        spelled = without_suffix(new_name, renamed.tag, renamed.digest)
        _refuse_joined(
            source,
            line,
            position,
            name=(name or "", matched),
            new_name=(new_name, spelled, renamed),
            new_tag=new_tag,
            digest=digest_text,
        )
        # A digest kustomize keeps from the name (or takes from digest:) stays out of newName.
        kept_digest = digest_text or matched.digest
        occurrence = ImageOccurrence(
            renamed.name, renamed.tag, renamed.digest or kept_digest, line, "kustomize", path, document
        )
        beside = entry if digest is None and kept_digest is not None else None
        return Found(occurrence, spelled, tag=new_name_slot, digest=digest, entry=beside, form="reference")
    # What kustomize keeps from the resource (spelled as `name`): its tag and digest, unless
    # newTag or digest is set.
    if new_tag is not None:
        current = (tag_text, tag_digest or digest_text)
    elif digest_text is not None:
        current = (None, digest_text)
    else:
        current = (matched.tag, matched.digest)
    image = renamed.name if renamed is not None else matched.name
    spelled = new_name if new_name is not None else without_suffix(name or "", matched.tag, matched.digest)
    occurrence = ImageOccurrence(image, *current, line, "kustomize", path, document)
    # A tag and digest kept from the name are written back as one `newTag: tag@digest`.
    combined = tag_digest is not None or (new_tag is None and None not in current)
    return Found(
        occurrence, spelled, tag=tag, digest=digest, entry=entry, form="tag@digest" if combined else "tag"
    )


def _refuse_joined(
    source: str,
    line: int,
    position: int,
    *,
    name: tuple[str, ImageRef],
    new_name: tuple[str, str, ImageRef],
    new_tag: str | None,
    digest: str | None,
) -> None:
    """Refuse a ``newName`` carrying a tag or digest when kustomize would append another one to it."""
    name_text, matched = name
    text, spelled, renamed = new_name
    joined = field = None
    if new_tag is not None:
        joined, field = f"{text}:{new_tag}" + (f"@{digest}" if digest else ""), "newTag"
    elif digest is not None and renamed.digest is not None:
        joined, field = f"{text}@{digest}", "digest"
    if joined is not None:
        what = " and ".join(part for part, on in (("tag", renamed.tag), ("digest", renamed.digest)) if on)
        raise ManifestError(
            KUSTOMIZE_NAME_AND_TAG.format(
                source=source,
                line=line,
                index=position,
                what=what,
                new_name=text,
                field=field,
                rendered=joined,
                name=spelled,
                digest_hint=" (and the digest in digest)" if renamed.digest or digest else "",
            )
        )
    kept_tag = matched.tag is not None and (renamed.tag or renamed.digest)
    if digest is None and (kept_tag or (matched.digest is not None and renamed.digest is not None)):
        kept = (f":{matched.tag}" if matched.tag else "") + (f"@{matched.digest}" if matched.digest else "")
        raise ManifestError(
            KUSTOMIZE_NAME_TAG_AND_NEW_NAME.format(
                source=source, line=line, index=position, name=name_text, new_name=text, rendered=text + kept
            )
        )
