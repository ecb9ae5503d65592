"""The freight ledger read by the core, pure: gates by history, failed freight kept out, auto-rollback,
the ledger caught up from commit statuses, and /status naming history a renamed stage left behind.
Snapshots are built by hand from the example repository (as in test_command_runner)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from test_command_runner import DEV, NEW, NOW, OLD, OLDER, snapshot

from bot.command_views import promote_freight, render_status
from bot.commands import Selector
from bot.core.actions import MergePromotion, OpenPromotion, PostComment, RecordDeployment
from bot.core.auto_rollback import auto_rollback_actions
from bot.core.decide import build_promotion, candidate_freight, decide
from bot.core.freight import Freight
from bot.core.gates import gate_for
from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE, LedgerEntry, Outcome
from bot.core.ledger_sync import deployment_state, ledger_actions
from bot.core.pipeline import stage_order
from bot.core.promotion import LABEL_ROLLBACK, MARKER_ROLLBACK, branch_name
from bot.core.snapshot import CommitStatus, MergedPromotion, PullRequest, Snapshot
from bot.core.stage_view import StageView, stage_view

_ids = iter(range(1, 10_000))


def entry(
    stage: str, freight: Freight, outcome: Outcome, minutes: int, task: str = TASK_PROMOTE
) -> LedgerEntry:
    return LedgerEntry(
        deployment_id=next(_ids),
        stage=stage,
        sha=f"{stage[0]}{minutes:039d}",
        task=task,
        freight=freight,
        created_at=NOW + timedelta(minutes=minutes),
        outcome=outcome,
    )


def views(snap: Snapshot) -> dict[str, StageView]:
    assert snap.config is not None
    return {name: stage_view(snap, name) for name in stage_order(snap.config)}


def test_a_gate_counts_freight_verified_upstream_before_upstream_moved_on() -> None:
    snap = snapshot()  # staging runs NEW now
    assert snap.config is not None
    assert gate_for(OLD.id, OLD.label, "prod", snap.config, views(snap)).state == "pending"
    ledger = (entry("staging", OLD, "verified", 1), entry("staging", NEW, "verified", 2))
    gate = gate_for(OLD.id, OLD.label, "prod", snap.config, views(snap), ledger=ledger)
    assert (gate.state, gate.description) == ("success", f"{OLD.label} is verified in staging")


def test_a_freight_whose_newest_verdict_upstream_failed_does_not_pass_the_gate() -> None:
    snap = snapshot()
    assert snap.config is not None
    ledger = (entry("staging", OLD, "verified", 1), entry("staging", OLD, "failed", 2))
    assert gate_for(OLD.id, OLD.label, "prod", snap.config, views(snap), ledger=ledger).state == "pending"


def test_promote_accepts_freight_known_only_from_the_ledger() -> None:
    snap = replace(snapshot(), ledger=(entry("staging", OLDER, "verified", 1),))
    found = promote_freight(snap, views(snap), "prod", Selector(freight_or_tag="1.4.8"))
    assert found == OLDER


def test_an_auto_promoting_stage_does_not_take_back_freight_that_failed_there() -> None:
    snap = replace(snapshot(), ledger=(entry("dev", NEW, "failed", 1), entry("dev", OLD, "verified", 2)))
    assert candidate_freight(snap, views(snap), "dev") is None
    again = replace(snap, ledger=(*snap.ledger, entry("dev", NEW, "verified", 3)))  # type: ignore[misc]
    assert candidate_freight(again, views(again), "dev") == NEW


def test_status_says_which_freight_auto_promotion_keeps_out_of_a_stage_and_how_to_ask_for_it() -> None:
    start = snapshot()
    rolled_back = {**start.files, DEV: start.files[DEV].replace("newTag: 1.5.0", "newTag: 1.4.2")}
    ledger = (entry("dev", NEW, "failed", 1), entry("dev", OLD, "verified", 2))
    snap = replace(start, files=rolled_back, ledger=ledger)  # dev went back from NEW, which failed there
    assert "Held out" not in render_status(replace(snap, files=start.files))  # NEW runs: its row says so
    text = render_status(snap)
    assert "**Held out of auto-promotion**" in text
    assert f"- **dev**: {NEW.label} (`{NEW.id}`) failed at " in text
    assert f"`/promote dev {NEW.id} --reason …`" in text
    again = replace(snap, ledger=(*snap.ledger, entry("dev", NEW, "verified", 3)))  # type: ignore[misc]
    assert "Held out" not in render_status(again)


def test_promote_of_failed_freight_needs_a_reason() -> None:
    snap = replace(snapshot(prod_runs=OLD), ledger=(entry("prod", NEW, "failed", 1),))
    refused = promote_freight(snap, views(snap), "prod", Selector(freight_or_tag="1.5.0"))
    assert isinstance(refused, str) and "failed verification in `prod`" in refused and "--reason" in refused
    assert promote_freight(snap, views(snap), "prod", Selector(freight_or_tag="1.5.0"), "fixed") == NEW


def test_history_unknown_holds_auto_promotion() -> None:
    snap = replace(snapshot(), ledger_unknown=True)
    assert candidate_freight(snap, views(snap), "dev") is None


def _failed_dev(snap: Snapshot, *, rollback: bool = False) -> Snapshot:
    """dev's deploy commit is a Ferry promotion of NEW (PR #7) whose verification failed."""
    assert snap.config is not None
    labels = (LABEL_ROLLBACK,) if rollback else ()
    promotion = MergedPromotion(7, "https://gh/pull/7", "dev", NEW.id, "h" * 40, "d" * 40, labels=labels)
    failed = {"ferry/health/dev": CommitStatus("ferry/health/dev", "failure", "shop-dev: Degraded")}
    deploy = replace(snap.deploys["dev"], promotion=promotion, statuses=failed)
    stages = dict(snap.config.stages)
    stages["dev"] = stages["dev"].model_copy(
        update={"verify": stages["dev"].verify.model_copy(update={"on_failure": "rollback"})}
    )
    config = snap.config.model_copy(update={"stages": stages})
    return replace(snap, config=config, deploys={**snap.deploys, "dev": deploy})


def _build(snap: Snapshot):  # type: ignore[no-untyped-def]
    return lambda name, freight, reason: build_promotion(snap, views(snap), name, freight, rollback=True)


def test_a_failed_promotion_with_on_failure_rollback_opens_a_rollback_to_the_last_verified_freight() -> None:
    ledger = (entry("dev", OLDER, "verified", 1, TASK_BASELINE), entry("dev", NEW, "failed", 3))
    snap = _failed_dev(replace(snapshot(), ledger=ledger))
    actions, merges = auto_rollback_actions(snap, views(snap), _build(snap))
    assert merges == []
    assert [type(a) for a in actions] == [OpenPromotion]
    opened = actions[0]
    assert isinstance(opened, OpenPromotion) and opened.freight == OLDER and "Roll back dev" in opened.title


def test_an_open_rollback_is_merged_with_auto_merge_and_announced_under_the_failed_promotion() -> None:
    ledger = (entry("dev", OLDER, "verified", 1, TASK_BASELINE), entry("dev", NEW, "failed", 3))
    snap = _failed_dev(replace(snapshot(), ledger=ledger))
    pull = PullRequest(
        9,
        "https://gh/pull/9",
        branch_name("dev", OLDER.id),
        "dev",
        OLDER.id,
        "r" * 40,
        "Roll back dev",
        f'<!-- ferry: {{"{MARKER_ROLLBACK}": "1"}} -->',
    )
    built = _build(snap)("dev", OLDER, "")
    pull = replace(pull, body=built.body)
    snap = replace(snap, open_prs=(pull,))
    actions, merges = auto_rollback_actions(snap, views(snap), _build(snap))
    comment = next(a for a in actions if isinstance(a, PostComment))
    assert comment.number == 7 and "https://gh/pull/9" in comment.body and "https://gh/pull/7" in comment.body
    assert merges == [MergePromotion(9, "dev", "r" * 40, "Roll back dev")]


def test_a_failed_rollback_stops_and_says_so() -> None:
    ledger = (entry("dev", OLDER, "verified", 1), entry("dev", NEW, "failed", 3))
    snap = _failed_dev(replace(snapshot(), ledger=ledger), rollback=True)
    actions, merges = auto_rollback_actions(snap, views(snap), _build(snap))
    assert merges == [] and len(actions) == 1
    assert isinstance(actions[0], PostComment) and "does not roll back again" in actions[0].body
    assert not any(isinstance(a, OpenPromotion) for a in decide(snap))


def test_the_ledger_is_caught_up_from_the_commit_status_and_stale_entries_made_inactive() -> None:
    snap = snapshot()  # dev's deploy commit carries no promotion: a baseline
    dev_sha = snap.deploys["dev"].commit
    stale = replace(entry("dev", OLD, "in_progress", 1), sha="e" * 40)
    snap = replace(snap, ledger=(stale,))
    actions = ledger_actions(snap, views(snap))
    records = [a for a in actions if isinstance(a, RecordDeployment)]
    assert [(r.stage, r.sha, r.state) for r in records if r.stage == "dev"] == [
        ("dev", dev_sha, "success"),
        ("dev", "e" * 40, "inactive"),
    ]
    done = replace(
        snap,
        ledger=(
            replace(stale, active=False),
            replace(entry("dev", NEW, "verified", 2, TASK_BASELINE), sha=dev_sha),
        ),
    )
    assert not [
        a for a in ledger_actions(done, views(done)) if isinstance(a, RecordDeployment) and a.stage == "dev"
    ]


def test_status_names_history_a_renamed_stage_left_under_its_old_environment() -> None:
    snap = replace(snapshot(), ledger=(entry("qa", NEW, "verified", 1),))
    text = render_status(snap)
    assert "GitHub environment **qa** belongs to no stage now" in text


def test_a_merge_held_for_want_of_approval_is_no_verdict_on_its_freight_and_is_not_in_the_ledger() -> None:
    held = "Not deployed: merged by @bob without an approving review from @acme/release-managers"
    assert deployment_state(CommitStatus("ferry/health/prod", "failure", held)) is None
    assert deployment_state(CommitStatus("ferry/health/prod", "failure", "timed out after 5m")) == "failure"
