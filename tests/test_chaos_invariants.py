"""The chaos scenario's invariants over hand-made records: each rule is counted when broken, and a clean
history counts nothing."""

from __future__ import annotations

from bot.sandbox.chaos_invariants import (
    CLOSED_AFTER_MERGE,
    CONTRADICTING_HEALTH,
    DRIFT_DETECTED,
    DUPLICATE_PRS,
    INVARIANTS,
    LOST_VERDICTS,
    OFF_LINE_SYNCS,
    STALE_SYNCS,
    WRITES_WHILE_HELD,
    AppFinal,
    Health,
    History,
    Pull,
    Sync,
    count_closed_after_merge,
    count_contradicting_health,
    count_drift_reports,
    count_duplicate_prs,
    count_lost_verdicts,
    count_off_line_syncs,
    count_stale_syncs,
    count_writes_while_held,
    invariants,
    missed,
)

# main: a (seed) -> b (dev 1.5.0 merged at t=10) -> c (README at t=20) -> d (dev 1.6.0 merged at t=30)
A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40
PR_HEAD = "e" * 40
HISTORY = History(
    line=[A, B, C, D],
    changes={A: frozenset({"dev", "prod"}), B: frozenset({"dev"}), C: frozenset(), D: frozenset({"dev"})},
    heads=[(1.0, A), (10.0, B), (20.0, C), (30.0, D)],
)


def test_the_head_at_a_moment_and_the_stage_deploy_commit_follow_the_reflog_and_the_first_parent_line() -> (
    None
):
    assert HISTORY.head_at(0.5) is None
    assert HISTORY.head_at(25.0) == C
    assert HISTORY.deploy_commit("dev", C) == B  # the README commit does not deploy dev
    assert HISTORY.deploy_commit("prod", D) == A
    assert HISTORY.deploy_commit("dev", PR_HEAD) is None


def test_a_sync_to_a_commit_older_than_the_stage_newest_deploy_commit_is_stale() -> None:
    assert (
        count_stale_syncs(HISTORY, [Sync("shop-dev", "dev", B, 12.0), Sync("shop-dev", "dev", C, 25.0)]) == 0
    )
    assert count_stale_syncs(HISTORY, [Sync("shop-dev", "dev", D, 31.0)]) == 0
    late_merge_event = Sync("shop-dev", "dev", B, 35.0)  # 1.6.0 is on main, dev asked back to 1.5.0
    assert count_stale_syncs(HISTORY, [late_merge_event]) == 1
    assert count_stale_syncs(HISTORY, [Sync("shop-dev", "dev", PR_HEAD, 35.0)]) == 1


def test_a_sync_to_a_commit_off_the_first_parent_line_is_counted() -> None:
    assert count_off_line_syncs(HISTORY, [Sync("shop-dev", "dev", D, 31.0)]) == 0
    assert count_off_line_syncs(HISTORY, [Sync("shop-prod-eu", "prod", PR_HEAD, 31.0)]) == 1


def test_a_second_pull_request_for_one_stage_and_freight_is_a_duplicate() -> None:
    pulls = [Pull(1, "dev", "f1", B), Pull(2, "dev", "f2", None), Pull(3, "staging", "f1", None)]
    assert count_duplicate_prs(pulls) == 0
    assert count_duplicate_prs([*pulls, Pull(4, "dev", "f1", None), Pull(5, "dev", "f1", None)]) == 2


def test_closing_a_merged_pull_request_is_counted_and_closing_an_open_one_is_not() -> None:
    assert count_closed_after_merge([(2, False)]) == 0
    assert count_closed_after_merge([(2, False), (1, True)]) == 1


def test_health_success_while_argocd_runs_an_older_commit_contradicts_it() -> None:
    verified = [Health(D, "dev", "pending", "verifying"), Health(D, "dev", "success", "verified")]
    running = [AppFinal("shop-dev", "dev", D, "Healthy")]
    assert count_contradicting_health(HISTORY, verified, running) == 0
    synced_back = [AppFinal("shop-dev", "dev", B, "Healthy")]
    assert count_contradicting_health(HISTORY, verified, synced_back) == 1
    degraded = [AppFinal("shop-dev", "dev", D, "Degraded")]
    assert count_contradicting_health(HISTORY, verified, degraded) == 1
    failed = [*verified, Health(D, "dev", "failure", "timed out")]
    assert count_contradicting_health(HISTORY, failed, running) == 1  # Argo CD says all is well


def test_a_merge_left_without_a_final_health_status_is_a_lost_verdict() -> None:
    pulls = [Pull(1, "dev", "f1", B), Pull(2, "dev", "f2", D), Pull(3, "dev", "f3", None)]
    final = [Health(B, "dev", "error", "superseded"), Health(D, "dev", "success", "verified")]
    assert count_lost_verdicts(pulls, final) == 0
    assert count_lost_verdicts(pulls, [*final, Health(D, "dev", "pending", "verifying again")]) == 1
    assert count_lost_verdicts(pulls, final[1:]) == 1  # the first merge never got one
    assert count_lost_verdicts(pulls, [Health(B, "staging", "success", "verified"), final[1]]) == 1


def test_each_drifted_failure_counts_once_however_often_it_is_posted() -> None:
    drift = Health(D, "prod", "failure", "drifted: shop-prod-eu runs aaaaaaa, not ddddddd")
    assert count_drift_reports([Health(D, "prod", "failure", "timed out")]) == 0
    assert count_drift_reports([drift, drift]) == 1
    assert count_drift_reports([drift, Health(D, "dev", "failure", "drifted: shop-dev runs b")]) == 2


def test_a_write_sent_within_a_secondary_limits_minute_counts_beyond_each_other_replicas_first() -> None:
    tripped, met = ("installation 1", 100.0, True), ("installation 1", 101.0, False)
    later = ("installation 1", 161.0, False)
    assert count_writes_while_held([tripped, met, met, later], replicas=3, block_seconds=60) == 0
    assert count_writes_while_held([tripped, met, met, met], replicas=3, block_seconds=60) == 1
    assert count_writes_while_held([tripped, met], replicas=1, block_seconds=60) == 1
    assert count_writes_while_held([tripped, ("user dora", 101.0, False)], replicas=1, block_seconds=60) == 0


def test_a_clean_run_meets_every_target_and_one_broken_rule_is_named() -> None:
    statuses = [
        Health(A, "prod", "success", "verified"),
        Health(A, "prod", "failure", "drifted: shop-prod-eu runs x, not y"),
        Health(A, "prod", "success", "verified again"),
        Health(D, "dev", "success", "verified"),
    ]
    clean = {
        "syncs": [Sync("shop-dev", "dev", D, 31.0)],
        "pulls": [Pull(2, "dev", "f2", D)],
        "closes": [(1, False)],
        "statuses": statuses,
        "apps": [AppFinal("shop-dev", "dev", D, "Healthy"), AppFinal("shop-prod-eu", "prod", D, "Healthy")],
    }
    result = invariants(HISTORY, **clean)  # type: ignore[arg-type]
    assert {name: entry["target"] for name, entry in result.items()} == INVARIANTS
    assert missed(result) == []
    broken = invariants(HISTORY, **{**clean, "closes": [(2, True)]})  # type: ignore[arg-type]
    assert missed(broken) == [CLOSED_AFTER_MERGE]
    held = [("installation 1", 5.0, True), ("installation 1", 6.0, False)]
    impatient = invariants(HISTORY, **{**clean, "refusals": held})  # type: ignore[arg-type]
    assert missed(impatient) == [WRITES_WHILE_HELD]
    undrifted = [statuses[0], *statuses[2:]]
    no_drift = invariants(HISTORY, **{**clean, "statuses": undrifted})  # type: ignore[arg-type]
    assert missed(no_drift) == [DRIFT_DETECTED]
    assert {STALE_SYNCS, OFF_LINE_SYNCS, DUPLICATE_PRS, CONTRADICTING_HEALTH, LOST_VERDICTS} <= set(result)
