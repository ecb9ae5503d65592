"""Image references: parsing and normalisation, after the distribution/reference grammar.

``nginx``, ``docker.io/nginx`` and ``docker.io/library/nginx`` are one image; Ferry compares
references by their normalised name (``docker.io/library/nginx``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.errors import InvalidReferenceError

DEFAULT_REGISTRY = "docker.io"
_DOCKER_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_COMPONENT_RE = re.compile(rf"^{_COMPONENT}$")
_DOMAIN_RE = re.compile(
    r"^(?:(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
    r"(?:\.(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]))*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?$"
)
TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")
DIGEST_RE = re.compile(r"^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$")
SHA256_DIGEST_RE = re.compile(r"^sha256:[a-f0-9]{64}$")


@dataclass(frozen=True, order=True)
class ImageRef:
    """A parsed reference. ``name`` is normalised: ``<registry>/<repository>``."""

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    @property
    def familiar(self) -> str:
        """The short form people write: ``nginx`` for ``docker.io/library/nginx``."""
        if self.registry == DEFAULT_REGISTRY:
            return self.repository.removeprefix("library/")
        return self.name

    def __str__(self) -> str:
        text = self.name
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def _split_domain(name: str) -> tuple[str, str]:
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost" or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_REGISTRY, name
    if domain in _DOCKER_HUB_ALIASES:
        domain = DEFAULT_REGISTRY
        if "/" not in path:
            path = f"library/{path}"
    return domain, path


def parse_image(reference: str, *, allow_tag: bool = True) -> ImageRef:
    """Parse ``[registry/]repository[:tag][@digest]``; raise InvalidReferenceError naming what is wrong."""
    text = reference.strip()
    if not text:
        raise InvalidReferenceError("image reference is empty")
    name, digest = text, None
    if "@" in text:
        name, _, digest = text.partition("@")
        if not DIGEST_RE.match(digest):
            raise InvalidReferenceError(
                f'image "{reference}": digest "{digest}" is malformed (expected sha256:<64 hex digits>)'
            )
    tag = None
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name, tag = name[:colon], name[colon + 1 :]
        if not TAG_RE.match(tag):
            raise InvalidReferenceError(
                f'image "{reference}": tag "{tag}" is malformed '
                "(expected letters, digits, '_', '.', '-', at most 128, not starting with '.' or '-')"
            )
    if (tag or digest) and not allow_tag:
        raise InvalidReferenceError(
            f'image "{reference}" carries a tag or digest; name the repository only '
            f'(e.g. "{name}") and let the selection rule choose the tag'
        )
    domain, path = _split_domain(name)
    if not _DOMAIN_RE.match(domain):
        raise InvalidReferenceError(f'image "{reference}": registry "{domain}" is not a valid host name')
    for component in path.split("/"):
        if not _COMPONENT_RE.match(component):
            raise InvalidReferenceError(
                f'image "{reference}": path component "{component}" is malformed '
                "(expected lowercase letters and digits, separated by '.', '_', '__' or '-')"
            )
    return ImageRef(registry=domain, repository=path, tag=tag, digest=digest)


def normalise_name(reference: str) -> str:
    """The normalised name of a reference, without tag or digest."""
    return parse_image(reference).name


def same_image(a: str, b: str) -> bool:
    """Whether two references name the same repository (tags and digests are ignored)."""
    try:
        return normalise_name(a) == normalise_name(b)
    except InvalidReferenceError:
        return False


def check_tag(tag: str) -> str:
    if not TAG_RE.match(tag):
        raise InvalidReferenceError(
            f'tag "{tag}" is malformed (expected letters, digits, "_", ".", "-", at most 128 characters)'
        )
    return tag


def check_digest(digest: str) -> str:
    if not SHA256_DIGEST_RE.match(digest):
        raise InvalidReferenceError(
            f'digest "{digest}" is malformed (expected sha256:<64 lowercase hex digits>)'
        )
    return digest
