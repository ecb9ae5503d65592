"""How the GitHub stand-in's list endpoints filter and order: ``since``, ``sort`` and ``direction`` as
GitHub reads them. Pagination itself is ``github_ops.paginate``."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from aiohttp import web

from bot.sandbox.github_ops import ApiError, invalid

T = TypeVar("T")


# What GitHub answers (422) to a ``since`` that is not ``YYYY-MM-DDTHH:MM:SSZ``, e.g. a date and a time
# separated by a space as Python's str(datetime) writes them (quoted in github.com/lampepfl/bench/pull/581).
SINCE_FORMAT = "The since parameter needs to be in ISO 8601 format: YYYY-MM-DDTHH:MM:SSZ"
_SINCE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


def since(request: web.Request) -> float | None:
    """The ``since`` query parameter (ISO 8601, e.g. ``2024-05-01T12:00:00Z``) as Unix seconds."""
    value = request.query.get("since")
    if value is None:
        return None
    if not _SINCE_RE.match(value):
        raise ApiError(422, SINCE_FORMAT)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise invalid(f"since {value!r} is not an ISO 8601 timestamp", "Search", "since") from exc
    if parsed.tzinfo is None:
        raise invalid(f"since {value!r} needs a time zone (e.g. Z)", "Search", "since")
    return parsed.timestamp()


def ordered(
    request: web.Request,
    items: Sequence[T],
    keys: dict[str, Callable[[T], Any]],
    *,
    default_sort: str,
    default_direction: Callable[[str], str],
) -> list[T]:
    """``items`` ordered by the ``sort`` query parameter (one of ``keys``) and ``direction``
    (``asc``/``desc``; when absent, ``default_direction(sort)``). Unknown values answer 422."""
    sort = request.query.get("sort", default_sort)
    if sort not in keys:
        raise invalid(f"sort must be one of {', '.join(keys)}, not {sort!r}", "Search", "sort")
    direction = request.query.get("direction") or default_direction(sort)
    if direction not in ("asc", "desc"):
        raise ApiError(422, f"direction must be asc or desc, not {direction!r}")
    return sorted(items, key=keys[sort], reverse=direction == "desc")
