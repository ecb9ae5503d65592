"""What the GitHub stand-in refuses before a route runs: an App permission the installation lacks, and
secondary rate limits.

Permissions: an installation token reaches only what the App was granted; anything else answers 403
"Resource not accessible by integration" ("Permissions required for GitHub Apps",
docs.github.com/en/rest/authentication/permissions-required-for-github-apps). The table below covers the
routes the stand-in serves that need more than ``metadata``.

Secondary rate limits ("Rate limits for the REST API", docs.github.com/en/rest/using-the-rest-api/
rate-limits-for-the-rest-api#about-secondary-rate-limits): "no more than 80 content-generating requests
per minute and no more than 500 content-generating requests per hour", concurrent requests capped, and
limits "subject to change without notice". Exceeding one answers **403 or 429** with a message saying so;
``retry-after`` may be absent and then ``x-ratelimit-remaining`` is not 0 — "Otherwise, wait for at least
one minute before retrying" (#exceeding-the-rate-limit). Content-generating means POST, PATCH, PUT and
DELETE ("Best practices for using the REST API": "Pause between mutative requests"). Besides the numbers
GitHub gives, it keeps undisclosed limits (e.g. on CPU time, "GitHub may also impose other secondary rate
limits ... subject to change without notice"): ``chance`` trips one at random, as a client meets one when
no documented number is reached.
"""

from __future__ import annotations

import collections
import random
import re
import uuid
from dataclasses import dataclass, field

from bot.sandbox.github_shapes import Json

LEVELS = {"read": 1, "write": 2, "admin": 3}
NOT_ACCESSIBLE = "Resource not accessible by integration"
SECONDARY_DOCS = (
    "https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api#about-secondary-rate-limits"
)
SECONDARY_MESSAGE = (
    "You have exceeded a secondary rate limit. Please wait a few minutes before you try again. "
    "If you reach out to GitHub Support for help, please include the request ID {request_id}."
)
CONTENT_MESSAGE = (
    "You have exceeded a secondary rate limit and have been temporarily blocked from content creation. "
    "Please retry your request again later. If you reach out to GitHub Support for help, please include "
    "the request ID {request_id}."
)
MUTATIVE = frozenset({"POST", "PATCH", "PUT", "DELETE"})
REPO = r"^/repos/\{owner\}/\{repo\}"
# (route pattern over the canonical route, permission); GET needs read, anything else write.
ROUTE_PERMISSIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(REPO + r"/branches/[^/]+/protection"), "administration"),
    (re.compile(REPO + r"/deployments"), "deployments"),
    (re.compile(REPO + r"/pulls"), "pull_requests"),
    (re.compile(REPO + r"/(statuses/|commits/\{ref[^}]*\}/status)"), "statuses"),
    (re.compile(REPO + r"/(git/|contents|commits)"), "contents"),
]


def missing_permission(method: str, route: str, granted: dict[str, str]) -> str | None:
    """The permission (e.g. ``deployments: write``) an installation needs for ``route`` and lacks."""
    for pattern, permission in ROUTE_PERMISSIONS:
        if pattern.match(route):
            needed = "read" if method in ("GET", "HEAD") else "write"
            if LEVELS.get(granted.get(permission, ""), 0) < LEVELS[needed]:
                return f"{permission}: {needed}"
            return None
    return None


def secondary_body(*, content: bool) -> Json:
    text = CONTENT_MESSAGE if content else SECONDARY_MESSAGE
    request_id = uuid.uuid4().hex[:8].upper() + ":" + uuid.uuid4().hex[:8].upper()
    return {"message": text.format(request_id=request_id), "documentation_url": SECONDARY_DOCS}


@dataclass
class SecondaryLimits:
    """When content-generating requests trip a secondary limit, per caller (App installation, person).

    ``per_minute``/``per_hour``: the most in a sliding window (GitHub says 80 and 500; tests use small
    numbers); ``concurrent``: the most in flight at once; ``block_seconds``: how long a tripped caller
    stays refused; ``status``: 403 or 429, None for either at random (GitHub uses both); ``chance``: the
    probability that a content-generating request trips an undisclosed limit. None (or 0) disables a rule;
    the default disables all. ``refused`` records every refusal as (caller, when, whether it tripped the
    limit rather than met a block already on).
    """

    per_minute: int | None = None
    per_hour: int | None = None
    concurrent: int | None = None
    block_seconds: float = 60.0
    status: int | None = 403
    seed: int | None = None
    chance: float = 0.0
    refused: list[tuple[str, float, bool]] = field(default_factory=list)
    _sent: dict[str, collections.deque[float]] = field(default_factory=dict, repr=False)
    _in_flight: collections.Counter[str] = field(default_factory=collections.Counter, repr=False)
    _blocked_until: dict[str, float] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.status not in (None, 403, 429):
            raise ValueError(f"GitHub answers a secondary limit with 403 or 429, not {self.status}")
        self._rng = random.Random(self.seed)

    @property
    def active(self) -> bool:
        rules = (self.per_minute, self.per_hour, self.concurrent)
        return any(v is not None for v in rules) or self.chance > 0

    def admit(self, identity: str, method: str, now: float) -> int | None:
        """Count one request; the status to refuse it with, or None. Call ``done`` after an admitted
        mutative request finishes."""
        if not self.active or method not in MUTATIVE:
            return None
        if self._blocked_until.get(identity, 0.0) > now:
            self.refused.append((identity, now, False))
            return self._answer()
        sent = self._sent.setdefault(identity, collections.deque())
        while sent and sent[0] <= now - 3600:
            sent.popleft()
        last_minute = sum(1 for t in sent if t > now - 60)
        tripped = (
            (self.per_minute is not None and last_minute >= self.per_minute)
            or (self.per_hour is not None and len(sent) >= self.per_hour)
            or (self.concurrent is not None and self._in_flight[identity] >= self.concurrent)
            or (self.chance > 0 and self._rng.random() < self.chance)
        )
        if tripped:
            self._blocked_until[identity] = now + self.block_seconds
            self.refused.append((identity, now, True))
            return self._answer()
        sent.append(now)
        self._in_flight[identity] += 1
        return None

    def done(self, identity: str, method: str) -> None:
        if self.active and method in MUTATIVE and self._in_flight[identity] > 0:
            self._in_flight[identity] -= 1

    def _answer(self) -> int:
        return self.status if self.status is not None else self._rng.choice((403, 429))
