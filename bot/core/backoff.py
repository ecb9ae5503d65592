"""When to try an outside call again: the one retry policy of GitHub, Argo CD and registry calls.

Every wait Ferry takes after a failure comes from here: the reconciler's retry of a failed pass,
the Argo CD and registry adapters' short in-call retries, and the GitHub adapter's hold on an
installation that hit a rate limit. Two rules:

- **Temporary failures** (5xx, 429, timeouts, refused connections) wait ``BASE_SECONDS`` doubled on
  every consecutive failure, capped at ``CAP_SECONDS``, and never less than the service asked for
  (``Retry-After``).
- **GitHub's rate limits**, as GitHub documents them
  (https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit
  and https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api
  #handle-rate-limit-errors-appropriately):
  a 403 or 429 is a rate limit when ``x-ratelimit-remaining`` is ``0`` (primary) or its message says
  "secondary rate limit" (secondary, whatever ``x-ratelimit-remaining`` says). Then: wait
  ``retry-after`` seconds when it is present; else, when ``x-ratelimit-remaining`` is ``0``, until
  ``x-ratelimit-reset`` (UTC epoch seconds); otherwise at least one minute. A secondary limit that
  keeps answering waits exponentially longer (doubling per consecutive limit, capped at
  ``LIMIT_CAP_SECONDS``). "Continuing to make requests while you are rate limited may result in the
  banning of your integration": the GitHub adapter holds every request of the installation meanwhile.

Pure: plain numbers and header mappings in, seconds out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

BASE_SECONDS = 0.5
CAP_SECONDS = 300.0
LIMIT_FLOOR_SECONDS = 60.0  # GitHub: "wait for at least one minute before retrying"
LIMIT_CAP_SECONDS = 900.0
SECONDARY_LIMIT_TEXT = "secondary rate limit"


def retry_delay(
    failures: int, *, asked: float | None = None, base: float = BASE_SECONDS, cap: float = CAP_SECONDS
) -> float:
    """Seconds to wait after the ``failures``-th consecutive failure (1 = the first): ``base`` doubled
    per failure, capped at ``cap``, and never less than ``asked`` (the service's ``Retry-After``)."""
    exponential: float = min(cap, base * 2.0 ** max(0, failures - 1))
    return max(exponential, asked or 0.0)


@dataclass(frozen=True)
class RateLimit:
    """GitHub refused a request for a rate limit; ``wait`` is the first wait its rules ask for."""

    kind: Literal["primary", "secondary"]
    wait: float

    def wait_after(self, strikes: int) -> float:
        """The wait after ``strikes`` consecutive limits: exponential for secondary limits."""
        if self.kind == "primary":
            return self.wait  # the reset time is exact; waiting longer gains nothing
        return min(LIMIT_CAP_SECONDS, self.wait * 2.0 ** max(0, strikes - 1))


def github_rate_limit(
    status: int, headers: Mapping[str, str], message: str, *, now: float
) -> RateLimit | None:
    """The rate limit a GitHub answer reports, or None when it is not one.

    ``headers`` are matched case-insensitively; ``now`` is UTC epoch seconds (for ``x-ratelimit-reset``).
    """
    if status not in (403, 429):
        return None
    lowered = {key.lower(): value for key, value in headers.items()}
    exhausted = lowered.get("x-ratelimit-remaining", "").strip() == "0"
    secondary = SECONDARY_LIMIT_TEXT in message.lower()
    if not (exhausted or secondary):
        return None
    kind: Literal["primary", "secondary"] = "secondary" if secondary else "primary"
    return RateLimit(kind, _limit_wait(lowered, exhausted=exhausted, now=now))


def _limit_wait(headers: Mapping[str, str], *, exhausted: bool, now: float) -> float:
    retry_after = _seconds(headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    reset = _seconds(headers.get("x-ratelimit-reset"))
    if exhausted and reset is not None:
        return max(0.0, reset - now)
    return LIMIT_FLOOR_SECONDS


def _seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None
