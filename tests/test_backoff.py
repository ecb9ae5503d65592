"""The one retry policy: exponential waits, and GitHub's documented rate-limit rules
(https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api#exceeding-the-rate-limit)."""

from __future__ import annotations

import pytest

from bot.core.backoff import LIMIT_CAP_SECONDS, RateLimit, github_rate_limit, retry_delay

SECONDARY = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
NOW = 1_700_000_000.0


def test_temporary_failures_wait_half_a_second_doubling_up_to_the_cap() -> None:
    assert [retry_delay(n) for n in range(1, 6)] == [0.5, 1.0, 2.0, 4.0, 8.0]
    assert retry_delay(30) == 300.0
    assert retry_delay(12, cap=30.0) == 30.0


def test_a_retry_after_is_a_floor_never_shortened_by_the_exponential() -> None:
    assert retry_delay(1, asked=7.0) == 7.0
    assert retry_delay(5, asked=1.0) == 8.0


@pytest.mark.parametrize("status", [403, 429])
def test_a_secondary_limit_without_retry_after_waits_a_minute_despite_requests_left(status: int) -> None:
    limit = github_rate_limit(status, {"X-RateLimit-Remaining": "4321"}, SECONDARY, now=NOW)
    assert limit == RateLimit("secondary", 60.0)


def test_a_secondary_limit_that_keeps_answering_waits_exponentially_longer() -> None:
    limit = RateLimit("secondary", 60.0)
    assert [limit.wait_after(n) for n in range(1, 5)] == [60.0, 120.0, 240.0, 480.0]
    assert limit.wait_after(20) == LIMIT_CAP_SECONDS


def test_a_retry_after_header_says_how_long_a_secondary_limit_lasts() -> None:
    limit = github_rate_limit(403, {"retry-after": "30"}, SECONDARY, now=NOW)
    assert limit == RateLimit("secondary", 30.0)


def test_a_primary_limit_waits_until_the_reset_and_no_longer_when_it_repeats() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 754)}
    limit = github_rate_limit(403, headers, "API rate limit exceeded for installation ID 1.", now=NOW)
    assert limit == RateLimit("primary", 754.0)
    assert limit.wait_after(3) == 754.0


def test_a_secondary_limit_with_the_primary_exhausted_waits_for_the_reset() -> None:
    headers = {"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(int(NOW) + 90)}
    assert github_rate_limit(429, headers, SECONDARY, now=NOW) == RateLimit("secondary", 90.0)


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [
        (403, {"x-ratelimit-remaining": "4000"}, "Resource not accessible by integration"),
        (404, {"x-ratelimit-remaining": "0"}, "Not Found"),
        (502, {}, SECONDARY),
    ],
    ids=["403 permission", "404", "5xx"],
)
def test_other_answers_are_no_rate_limit(status: int, headers: dict[str, str], message: str) -> None:
    assert github_rate_limit(status, headers, message, now=NOW) is None
