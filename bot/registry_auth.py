"""The registry adapter's small parts that hold no connection: hosts, challenges, headers, rate limits.

Belongs here: where an image's registry answers (``docker.io`` is ``registry-1.docker.io``; plain
HTTP only for loopback hosts or registries marked insecure), parsing ``WWW-Authenticate``,
``Link`` and ``Retry-After`` headers, the OCI error body, and the per-registry token bucket.
``bot.registry`` does the I/O with them.
"""

from __future__ import annotations

import email.utils
import ipaddress
import json
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
DOCKER_HUB_ALIASES = frozenset({DOCKER_HUB, "index.docker.io", DOCKER_HUB_API})

_PARAM_RE = re.compile(r'([A-Za-z_][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))')
_LINK_RE = re.compile(r'<([^>]*)>\s*;[^,<]*?\brel\s*=\s*"?next"?', re.IGNORECASE)


def canonical_registry(name: str) -> str:
    """One name per registry: every Docker Hub alias is ``docker.io``."""
    return DOCKER_HUB if name in DOCKER_HUB_ALIASES else name


def api_host(registry: str) -> str:
    """The host that serves the distribution API for a registry name."""
    return DOCKER_HUB_API if canonical_registry(registry) == DOCKER_HUB else registry


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1, with or without a port."""
    name = host
    if name.startswith("["):
        name = name[1 : name.find("]")]
    elif name.count(":") == 1:
        name = name.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(registry: str, *, insecure: bool) -> str:
    host = api_host(registry)
    scheme = "http" if insecure or is_loopback(host) else "https"
    return f"{scheme}://{host}"


@dataclass(frozen=True)
class Challenge:
    """A parsed ``WWW-Authenticate``: ``scheme`` is ``bearer`` or ``basic`` (lowercase)."""

    scheme: str
    realm: str = ""
    service: str = ""
    scope: str = ""


def parse_challenge(header: str | None) -> Challenge | None:
    if not header:
        return None
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in _PARAM_RE.finditer(rest)
    }
    return Challenge(
        scheme=scheme.lower(),
        realm=params.get("realm", ""),
        service=params.get("service", ""),
        scope=params.get("scope", ""),
    )


def next_link(header: str | None) -> str | None:
    """The target of ``rel="next"`` in a ``Link`` header (often relative: ``</v2/x/tags/list?...>``)."""
    if not header:
        return None
    m = _LINK_RE.search(header)
    return m.group(1) if m else None


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from ``Retry-After`` (delta seconds or an HTTP date); None when absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def error_code(body: bytes) -> str:
    """The first ``errors[].code`` of an OCI error body (``NAME_UNKNOWN``), or ""."""
    try:
        data = json.loads(body)
        errors = data.get("errors") if isinstance(data, dict) else None
        first = errors[0] if isinstance(errors, list) and errors else None
        code = first.get("code") if isinstance(first, dict) else None
    except (ValueError, UnicodeDecodeError):
        return ""
    return code if isinstance(code, str) else ""


class TokenBucket:
    """At most ``rate`` requests per second with bursts of ``max(1, rate)``; callers wait their turn.

    A caller that finds the bucket empty reserves its token (the level goes negative) and sleeps
    until it is due, so concurrent callers queue fairly without polling, and an injected clock and
    sleep make the waits observable in tests without real time passing.
    """

    def __init__(
        self, rate: float, *, clock: Callable[[], float], sleep: Callable[[float], Awaitable[None]]
    ) -> None:
        self.rate = rate
        self.capacity = max(1.0, rate)
        self._level = self.capacity
        self._clock = clock
        self._sleep = sleep
        self._last = clock()

    async def acquire(self) -> None:
        now = self._clock()
        self._level = min(self.capacity, self._level + (now - self._last) * self.rate)
        self._last = now
        self._level -= 1.0
        if self._level < 0:
            await self._sleep(-self._level / self.rate)
