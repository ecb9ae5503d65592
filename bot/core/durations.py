"""Durations as people write them in the pipeline config: ``30s``, ``5m``, ``1h30m``, ``2h``, ``0s``.

Hours, minutes and seconds, each at most once and in that order, every number with its unit. The same
grammar renders back (``format_duration``) and appears in the JSON Schema as ``DURATION_PATTERN``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema
from pydantic_core import PydanticCustomError

DURATION_PATTERN = r"^(?=[0-9])(?:[0-9]+h)?(?:[0-9]+m)?(?:[0-9]+s)?$"
DURATION_EXAMPLES = ("30s", "5m", "1h30m", "2h", "0s")
_DURATION_RE = re.compile(DURATION_PATTERN)

MALFORMED_DURATION = (
    "expected a duration such as 30s, 5m, 1h30m or 2h (units h, m, s, in that order), got {got}"
)
NUMBER_WITHOUT_UNIT = "expected a duration such as 30s, 5m or 1h30m, got the bare number {got}: add a unit"


class DurationError(ValueError):
    """A duration string is malformed; the message says what is expected."""


def parse_duration(text: str) -> timedelta:
    """Parse ``1h30m``-style text; raise DurationError naming the expected form."""
    stripped = text.strip()
    if not _DURATION_RE.match(stripped):
        raise DurationError(MALFORMED_DURATION.format(got=f'"{text}"'))
    hours, minutes, seconds = (
        int(m.group(1)) if (m := re.search(rf"([0-9]+){unit}", stripped)) else 0 for unit in "hms"
    )
    return timedelta(hours=hours, minutes=minutes, seconds=seconds)


def format_duration(value: timedelta) -> str:
    """The shortest text that parses back to ``value`` (whole seconds): ``5400s`` -> ``1h30m``."""
    total = int(value.total_seconds())
    if total <= 0:
        return "0s"
    hours, rest = divmod(total, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{n}{unit}" for n, unit in ((hours, "h"), (minutes, "m"), (seconds, "s")) if n]
    return "".join(parts)


def _validate(value: Any) -> Any:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PydanticCustomError("duration", MALFORMED_DURATION.format(got=type(value).__name__))
    if not isinstance(value, str):
        raise PydanticCustomError("duration", NUMBER_WITHOUT_UNIT.format(got=value))
    try:
        return parse_duration(value)
    except DurationError as exc:
        raise PydanticCustomError("duration", str(exc)) from None


Duration = Annotated[
    timedelta,
    BeforeValidator(_validate),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema({"type": "string", "pattern": DURATION_PATTERN, "examples": list(DURATION_EXAMPLES)}),
]
"""A ``timedelta`` field read from and written as ``1h30m``-style text."""
