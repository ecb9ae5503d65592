"""Delivery figures from the ledger: worked examples a release manager can check by hand, then properties
over any ledger (rates within [0, 1], only the window counted, no data never reads as zero)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.core.dora import (
    NOT_AVAILABLE,
    as_json,
    figures,
    parse_windows,
    short_duration,
    stage_figures,
    table_rows,
)
from bot.core.freight import Freight, FreightImage
from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE, TASK_ROLLBACK, LedgerEntry, Outcome

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
H = timedelta(hours=1)


def entry(
    n: int,
    *,
    at: datetime,
    outcome: Outcome = "verified",
    task: str = TASK_PROMOTE,
    stage: str = "dev",
    took: timedelta = timedelta(minutes=10),
    pushed: timedelta | None = timedelta(hours=2),
) -> LedgerEntry:
    """Entry ``n`` created at ``at``, decided ``took`` later, its freight pushed ``pushed`` before ``at``."""
    return LedgerEntry(
        deployment_id=n,
        stage=stage,
        sha=f"{n:040x}",
        task=task,
        freight=Freight("web", (FreightImage("ghcr.io/acme/web", f"1.{n}.0"),)),
        created_at=at,
        outcome=outcome,
        decided_at=at + took if outcome in ("verified", "failed") else None,
        pushed_at=at - pushed if pushed is not None else None,
    )


def test_a_stage_with_no_ledger_entries_reads_not_available_rather_than_zero() -> None:
    found = stage_figures([], "prod", now=NOW, days=7)
    assert found.deployment_frequency is None
    assert found.change_failure_rate is None
    assert found.lead_time_median is None and found.time_to_restore_median is None
    assert table_rows([found]) == [("prod", "7d", *[NOT_AVAILABLE] * 4)]
    assert as_json(found)["deployment_frequency_per_day"] is None


def test_a_stage_recorded_but_quiet_deploys_zero_times_a_day_while_other_figures_stay_unknown() -> None:
    baseline = entry(1, at=NOW - timedelta(days=20), task=TASK_BASELINE)
    found = stage_figures([baseline], "dev", now=NOW, days=7)
    assert found.deployment_frequency == 0.0  # recorded for 20 days: nothing was deployed, a real zero
    assert found.change_failure_rate is None  # a baseline is no change


def test_a_failure_then_a_rollback_then_a_fix_gives_each_figure_as_counted_by_hand() -> None:
    ledger = [
        entry(1, at=NOW - timedelta(days=10), task=TASK_BASELINE),
        entry(2, at=NOW - 50 * H, pushed=3 * H),  # verified after 3h10m
        entry(3, at=NOW - 40 * H, outcome="failed"),  # fails at -40h+10m: an incident opens
        entry(4, at=NOW - 39 * H, task=TASK_ROLLBACK, pushed=20 * H),  # back to 1.2.0, verified -38h50m
        entry(5, at=NOW - 20 * H, pushed=1 * H),  # verified after 1h10m
        entry(6, at=NOW - 10 * H, pushed=None),  # verified; its push time unknown: no lead sample
        entry(7, at=NOW - H, outcome="in_progress"),  # still verifying: decided nowhere
    ]
    week = stage_figures(ledger, "dev", now=NOW, days=7)
    assert week.deployments == 4  # 2, the rollback 4, 5, 6; not the baseline, the failure or 7
    assert week.deployment_frequency == pytest.approx(4 / 7)
    assert week.lead_time_samples == 2  # rollbacks are no change; 6 has no push time
    assert week.lead_time_median == timedelta(hours=2, minutes=10)  # of 3h10m and 1h10m
    assert week.lead_time_p90 == timedelta(hours=3, minutes=10)
    assert (week.failed_changes, week.changes) == (1, 5)  # 3 failed (and was rolled back): once
    assert week.change_failure_rate == pytest.approx(0.2)
    assert week.restores == 1
    assert week.time_to_restore_median == timedelta(hours=1)  # -39h50m failed, -38h50m verified
    assert table_rows([week]) == [("dev", "7d", "0.57/day (4)", "2h 10m / 3h 10m", "20% (1 of 5)", "1h (1)")]


def test_a_verified_change_that_was_rolled_back_counts_as_failed_and_opens_an_incident() -> None:
    ledger = [
        entry(1, at=NOW - 30 * H),  # verified, then found broken by a person
        entry(2, at=NOW - 20 * H, task=TASK_ROLLBACK, took=timedelta(minutes=5)),
    ]
    found = stage_figures(ledger, "dev", now=NOW, days=7)
    assert (found.failed_changes, found.changes) == (1, 2)
    assert found.time_to_restore_median == timedelta(minutes=5)  # rollback asked -> rollback verified


def test_the_frequency_of_a_stage_recorded_for_two_days_is_not_diluted_over_thirty() -> None:
    ledger = [entry(n, at=NOW - (48 - n) * H) for n in range(1, 5)]
    month = stage_figures(ledger, "dev", now=NOW, days=30)
    assert month.deployment_frequency == pytest.approx(4 / (47 / 24))


def test_stages_come_in_the_configs_order_then_those_only_the_ledger_remembers() -> None:
    ledger = [entry(1, at=NOW - H, stage="qa"), entry(2, at=NOW - H, stage="dev")]
    found = figures(ledger, now=NOW, windows=(7, 30), stages=("dev", "prod"))
    assert [(f.stage, f.window_days) for f in found] == [
        ("dev", 7),
        ("dev", 30),
        ("prod", 7),
        ("prod", 30),
        ("qa", 7),
        ("qa", 30),
    ]


def test_windows_are_read_from_text_and_bad_ones_name_the_expected_form() -> None:
    assert parse_windows("7,30") == (7, 30)
    assert parse_windows(" 1 , 90 ,1") == (1, 90)
    for bad in ("", "0", "week", "7,-1", "7.5"):
        with pytest.raises(ValueError, match="whole days from 1 to 3650"):
            parse_windows(bad)


def test_durations_read_in_two_units_at_most() -> None:
    assert short_duration(None) == NOT_AVAILABLE
    assert short_duration(timedelta(seconds=45)) == "45s"
    assert short_duration(timedelta(minutes=12, seconds=30)) == "12m"
    assert short_duration(timedelta(days=2, hours=4, minutes=3)) == "2d 4h"


# ---- properties -----------------------------------------------------------------------------------
ENTRIES = st.lists(
    st.builds(
        lambda n, back, outcome, task, took, pushed, stage: entry(
            n,
            at=NOW - timedelta(minutes=back),
            outcome=outcome,
            task=task,
            took=timedelta(minutes=took),
            pushed=timedelta(minutes=pushed) if pushed is not None else None,
            stage=stage,
        ),
        st.integers(1, 10_000),
        st.integers(-600, 60 * 24 * 45),  # some in the future, some before any window
        st.sampled_from(["pending", "in_progress", "verified", "failed"]),
        st.sampled_from([TASK_PROMOTE, TASK_ROLLBACK, TASK_BASELINE]),
        st.integers(0, 600),
        st.none() | st.integers(-60, 60 * 24 * 10),
        st.sampled_from(["dev", "prod"]),
    ),
    max_size=40,
    unique_by=lambda e: e.deployment_id,
)


@settings(max_examples=300, deadline=None)
@given(ENTRIES, st.sampled_from([1, 7, 30]))
def test_rates_stay_within_zero_and_one_and_counts_never_exceed_their_totals(
    ledger: list[LedgerEntry], days: int
) -> None:
    for found in figures(ledger, now=NOW, windows=(days,)):
        assert found.change_failure_rate is None or 0.0 <= found.change_failure_rate <= 1.0
        assert 0 <= found.failed_changes <= found.changes
        assert found.deployments <= found.changes
        assert found.deployment_frequency is None or found.deployment_frequency >= 0
        if found.lead_time_median is not None:
            assert found.lead_time_p90 is not None
            assert timedelta(0) <= found.lead_time_median <= found.lead_time_p90
        assert (found.time_to_restore_median is None) == (found.restores == 0)
        assert found.time_to_restore_median is None or found.time_to_restore_median >= timedelta(0)


@settings(max_examples=300, deadline=None)
@given(ENTRIES, st.sampled_from([1, 7, 30]))
def test_only_entries_decided_within_the_window_are_counted(ledger: list[LedgerEntry], days: int) -> None:
    start = NOW - timedelta(days=days)
    for found in figures(ledger, now=NOW, windows=(days,)):
        mine = [e for e in ledger if e.stage == found.stage and e.task != TASK_BASELINE]
        decided = [e for e in mine if e.decided_at is not None and start < e.decided_at <= NOW]
        assert found.changes == len(decided)
        assert found.deployments == sum(e.verified for e in decided)
        # Moving everything outside the window by a month changes no count within it.
        shifted = [e if e.stage != found.stage else _shift(e, timedelta(days=days + 31)) for e in ledger]
        moved = stage_figures(shifted, found.stage, now=NOW, days=days)
        assert moved.changes == 0 and moved.deployments == 0 and moved.restores == 0


@settings(max_examples=200, deadline=None)
@given(ENTRIES)
def test_a_stage_with_history_never_reads_not_available_for_frequency_and_one_without_always_does(
    ledger: list[LedgerEntry],
) -> None:
    for name in ("dev", "prod", "never"):
        found = stage_figures(ledger, name, now=NOW, days=7)
        recorded = any(e.stage == name and e.created_at <= NOW for e in ledger)
        assert (found.deployment_frequency is not None) == recorded
        assert (found.change_failure_rate is None) == (found.changes == 0)


def _shift(e: LedgerEntry, back: timedelta) -> LedgerEntry:
    return LedgerEntry(
        deployment_id=e.deployment_id,
        stage=e.stage,
        sha=e.sha,
        task=e.task,
        freight=e.freight,
        created_at=e.created_at - back,
        outcome=e.outcome,
        decided_at=e.decided_at - back if e.decided_at else None,
        pushed_at=e.pushed_at - back if e.pushed_at else None,
    )
