"""How kustomize renders an ``images:`` entry into a resource's image reference: a port of its Go code.

The property tests compare Ferry's edits with what `kustomize build` would then deploy, so this
follows kubernetes-sigs/kustomize line by line:

- ``split``: api/internal/image/image.go, ``Split`` (name, tag, digest of a reference; the first
  ``:`` after the first ``/`` starts the tag, the first ``@`` the digest);
- ``matches``: the same file, ``IsImageMatched`` (``name`` is a regex prefix, then an optional tag
  and digest);
- ``render``: api/filters/imagetag/updater.go, ``SetImageValue`` (``newName`` replaces the name
  verbatim; newTag and digest set both, newTag alone drops the digest, digest alone drops the tag,
  neither keeps the resource's own; the parts are joined with ``:`` and ``@``).

``valid`` is the distribution reference grammar (distribution/reference/regexp.go,
``ReferenceRegexp``), independent of Ferry's own parser.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_TAG_CHARS = r"[a-zA-Z0-9_.{}-]*"
_DIGEST = r"@[a-zA-Z0-9]+(?:[.+_-][a-zA-Z0-9]+)*:" + _TAG_CHARS

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*"
_DOMAIN = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*(?::[0-9]+)?"  # noqa: E501
_REFERENCE = re.compile(
    rf"^(?:{_DOMAIN}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[\w][\w.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$"
)


def split(image: str) -> tuple[str, str, str]:
    """(name, tag, digest) as kustomize's ``image.Split`` returns them."""
    search = image
    slash = image.find("/")
    if slash > 0:
        search = image[slash:]
    else:
        slash = 0
    at, colon = search.find("@"), search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (at < colon or colon < 0):
        at += slash
        return image[:at], "", image[at:].removeprefix("@")
    if at >= 0 and colon >= 0:
        at += slash
        colon += slash
        return image[:colon], image[colon:at].removeprefix(":"), image[at:].removeprefix("@")
    colon += slash
    return image[:colon], image[colon:].removeprefix(":"), ""


def matches(resource: str, name: str) -> bool:
    """kustomize's ``IsImageMatched``: ``name`` is used as a regex, anchored, then tag and digest."""
    return re.fullmatch(f"{name}(:{_TAG_CHARS})?({_DIGEST})?", resource) is not None


def render(entry: Mapping[str, str], resource: str) -> str:
    """The reference kustomize writes into a resource whose image is ``resource``, for one entry."""
    assert matches(resource, entry.get("name", "")), (resource, entry)
    name, tag, digest = split(resource)
    if entry.get("newName"):
        name = entry["newName"]
    new_tag, new_digest = entry.get("newTag", ""), entry.get("digest", "")
    if new_tag and new_digest:
        tag, digest = new_tag, new_digest
    elif new_tag:
        tag, digest = new_tag, ""
    elif new_digest:
        tag, digest = "", new_digest
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def valid(reference: str) -> bool:
    return _REFERENCE.fullmatch(reference) is not None
