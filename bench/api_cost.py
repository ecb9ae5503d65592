"""How many repositories one GitHub App installation sustains under GitHub's published REST limits, from the
requests Ferry's passes measurably send (``bench/pass_cost.py``'s sandbox runs), at the default intervals.

Both code paths in one run: "full" (every pass reads GitHub in full, ``Reconciler(reuse=False)``, as Ferry did
before the change check) and "checked" (the default: a full read only when the change check says something
changed, and every sixth idle interval anyway). The limits
(docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api):

- primary: 5,000 requests per hour per installation (#primary-rate-limit-for-github-app-installations; more
  for larger organisations: +50/h per repository and per user beyond 20 each, up to 12,500/h, and 15,000/h on
  GitHub Enterprise Cloud). A conditional request answered 304 is not counted (best-practices-for-using-the-
  rest-api#use-conditional-requests-if-appropriate), so only "charged" requests count here;
- secondary (#about-secondary-rate-limits): 900 points per minute for REST endpoints (GET 1 point, POST,
  PATCH, PUT, DELETE 5 points; #calculating-points-for-the-secondary-rate-limit); counted for every request,
  304s included, since the docs exempt none; and 80 content-generating requests per minute, 500 per hour.

The workload: each repository idles, polled every ``FERRY_POLL_IDLE`` (5 min); while one of its stages
verifies it is polled every ``FERRY_POLL_FAST`` (5 s); and a promotion costs what dev's promotion cost in the
sandbox run (push to verdict, every pass and webhook-triggered pass). A repository has three stages.

    .venv/bin/python bench/api_cost.py [--passes 5] [--progress-seconds 2.0] [--verify-minutes 5]
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from pass_cost import Cost, Costs, measure

from bot.observe_reuse import FULL_READ_IDLE_PASSES, VERIFYING_CHECK_EVERY, full_read_every
from bot.settings import Settings

PRIMARY_PER_HOUR = 5_000
POINTS_PER_MINUTE = 900
READ_POINTS, WRITE_POINTS = 1, 5
CREATIONS_PER_MINUTE, CREATIONS_PER_HOUR = 80, 500
STAGES = 3
HOUR = 3600.0


def per_pass(cost: Cost) -> tuple[float, float, float]:
    """(requests, charged, writes) per pass of ``cost``: the pass's own requests (a pass that follows a
    write, reading in full, is in the promotion's figures), and the stand-in's charged count (with those
    follow-up passes: an upper bound)."""
    n = max(1, cost.passes)
    writes = sum(v for route, v in cost.routes.items() if not route.startswith(("GET ", "argocd ")))
    return cost.own / n, cost.charged / n, writes / n


def idle_hour(
    costs: Costs, full: Costs | None, poll_fast: timedelta, poll_idle: timedelta
) -> tuple[float, float]:
    """(requests, charged) one idle repository costs per hour. With the change check, one idle pass in
    ``FULL_READ_IDLE_PASSES`` reads in full (``full``: the full path's figures)."""
    passes = HOUR / poll_idle.total_seconds()
    requests, charged, _ = per_pass(costs.idle)
    if full is None:
        return passes * requests, passes * charged
    full_requests, full_charged, _ = per_pass(full.idle)
    fulls = HOUR / max(full_read_every(poll_fast, poll_idle, 1), poll_idle).total_seconds()
    return (passes - fulls) * requests + fulls * full_requests, (
        passes - fulls
    ) * charged + fulls * full_charged


def verifying_hour(costs: Costs, checked: bool, poll_fast: timedelta) -> tuple[float, float]:
    """(requests, charged) per hour of a repository while a stage verifies, polled every ``poll_fast``. The
    measured passes ran faster than the change check's spacing, so its checks are added at their rate."""
    passes = HOUR / poll_fast.total_seconds()
    requests, charged, _ = per_pass(costs.verifying)
    extra = 2 * HOUR / VERIFYING_CHECK_EVERY.total_seconds() if checked else 0.0
    return passes * requests + extra, passes * charged


def table(measured: dict[str, Costs], verify_minutes: float) -> str:
    settings = Settings()
    poll_fast, poll_idle = settings.poll_fast, settings.poll_idle
    points_per_hour = POINTS_PER_MINUTE * 60
    lines = [
        f"Defaults: FERRY_POLL_FAST {poll_fast.total_seconds():g}s, FERRY_POLL_IDLE "
        f"{poll_idle.total_seconds():g}s, full read every {FULL_READ_IDLE_PASSES} idle intervals, "
        f"GitHub checked every {VERIFYING_CHECK_EVERY.total_seconds():g}s while verifying; "
        f"{STAGES} stages per repository, {verify_minutes:g} min of verification per promotion.",
        "",
        "| reads | idle pass (req / charged) | verifying pass | per promotion (req / charged / writes) "
        "| idle repo: req/h, charged/h | verifying repo: req/h |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    sustained = []
    for name, costs in measured.items():
        checked = name == "checked"
        idle_req, idle_charged, _ = per_pass(costs.idle)
        ver_req, ver_charged, _ = per_pass(costs.verifying)
        promo = costs.promotion
        idle_h = idle_hour(costs, measured.get("full") if checked else None, poll_fast, poll_idle)
        ver_h = verifying_hour(costs, checked, poll_fast)
        lines.append(
            f"| {name} | {idle_req:.1f} / {idle_charged:.1f} | {ver_req:.1f} / {ver_charged:.1f} "
            f"| {promo.github} / {promo.charged} / {costs.promotion_writes} "
            f"| {idle_h[0]:.0f}, {idle_h[1]:.0f} | {ver_h[0]:.0f} |"
        )
        # Points: reads 1, writes 5; idle and verifying passes write (almost) nothing.
        idle_points = idle_h[0] * READ_POINTS
        idle_by_points = points_per_hour / idle_points if idle_points else float("inf")
        idle_by_primary = PRIMARY_PER_HOUR / idle_h[1] if idle_h[1] else float("inf")
        verifying_by_points = points_per_hour / ver_h[0] if ver_h[0] else float("inf")
        promo_points = (
            promo.github - costs.promotion_writes
        ) * READ_POINTS + costs.promotion_writes * WRITE_POINTS
        promo_requests = promo.github + (ver_h[0] * verify_minutes / 60)
        promotions_by_creation = CREATIONS_PER_HOUR / max(1, costs.promotion_writes)
        promotions_by_points = points_per_hour / max(1.0, promo_points + ver_h[0] * verify_minutes / 60)
        promotions_by_primary = PRIMARY_PER_HOUR / max(1, promo.charged)
        sustained.append(
            f"| {name} | {_n(idle_by_primary)} | {_n(idle_by_points)} | {_n(verifying_by_points)} "
            f"| {_n(min(promotions_by_primary, promotions_by_points, promotions_by_creation))} "
            f"(primary {_n(promotions_by_primary)}, points {_n(promotions_by_points)}, "
            f"creation {_n(promotions_by_creation)}) | {promo_requests:.0f} |"
        )
    lines += [
        "",
        f"One installation (primary {PRIMARY_PER_HOUR:,}/h charged; "
        f"secondary {POINTS_PER_MINUTE}/min points, "
        f"{CREATIONS_PER_MINUTE}/min and {CREATIONS_PER_HOUR}/h content-creating):",
        "",
        f"| reads | idle repositories (x{STAGES} stages) by primary | by secondary points "
        "| repositories verifying at once by points | promotions per hour (bound) | requests per promotion "
        "incl. verification |",
        "| --- | --- | --- | --- | --- | --- |",
        *sustained,
    ]
    return "\n".join(lines)


def _n(value: float) -> str:
    return "unbounded" if value == float("inf") else f"{value:,.0f}"


async def run(passes: int, progress_seconds: float, verify_minutes: float) -> str:
    measured = {
        "full": await measure(passes, progress_seconds, reuse=False),
        "checked": await measure(passes, progress_seconds, reuse=True),
    }
    return table(measured, verify_minutes)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--passes", type=int, default=5, help="passes to average (default 5)")
    parser.add_argument("--progress-seconds", type=float, default=2.0, help="how long stand-in syncs run")
    parser.add_argument(
        "--verify-minutes", type=float, default=5.0, help="how long a promotion's verification lasts (5)"
    )
    args = parser.parse_args()
    print(asyncio.run(run(args.passes, args.progress_seconds, args.verify_minutes)))


if __name__ == "__main__":
    main()
