"""decide() is pure: snapshots built by hand from the example repository, actions asserted directly."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot.core.actions import ClosePromotion, OpenPromotion, PostComment, RequestSync, SetStatus
from bot.core.approvals import PullReviews, Review
from bot.core.config_load import CONFIG_PATH, load_config
from bot.core.decide import build_promotion, decide
from bot.core.freight import Freight, FreightImage
from bot.core.promotion import branch_name, parse_trailers
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion, PullRequest, Snapshot
from bot.core.stage_view import stage_view
from bot.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example"
TARGETS = [
    "overlays/dev/kustomization.yaml",
    "overlays/staging/kustomization.yaml",
    "charts/web/values-prod.yaml",
]
DIGEST = "sha256:" + "ab" * 32
NEW = Freight(
    "shop",
    (FreightImage("ghcr.io/acme/web", "1.5.0", DIGEST), FreightImage("ghcr.io/acme/worker", "1.5.0", DIGEST)),
)


def snapshot(config_text: str | None = None, **changes: object) -> Snapshot:
    text = config_text or (EXAMPLE / CONFIG_PATH).read_text()
    files = {path: (EXAMPLE / path).read_text() for path in TARGETS}
    paths = frozenset(str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*") if p.is_file())
    try:
        config, problems = load_config(text, files=files), ()
    except ConfigError as exc:
        config, problems = None, tuple(exc.problems)
    base = Snapshot(
        repo="acme/gitops",
        default_branch="main",
        head_sha="1" * 40,
        now=datetime(2026, 11, 26, tzinfo=UTC),
        config=config,
        config_problems=problems,
        config_commit="c" * 40,
        paths=paths,
        files=files,
        blob_shas={p: "b" * 40 for p in files},
        warehouse_freight={"shop": NEW},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_new_freight_opens_one_promotion_for_the_stage_fed_by_the_warehouse() -> None:
    opened = [a for a in decide(snapshot()) if isinstance(a, OpenPromotion)]
    assert [a.stage for a in opened] == ["dev"]
    promotion = opened[0]
    assert promotion.branch == branch_name("dev", NEW.id)
    assert promotion.title == "Promote web 1.5.0, worker 1.5.0 to dev"
    assert promotion.labels[:2] == ("ferry", "stage:dev")
    trailers = parse_trailers(promotion.message)
    assert (trailers.stage, trailers.freight_id) == ("dev", NEW.id)
    assert len(trailers.images) == 2
    [(path, text)] = promotion.files
    before = (EXAMPLE / path).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, text.splitlines(), strict=True) if a != b]
    assert changed == [
        ("    newTag: 1.4.2  # set by Ferry", "    newTag: 1.5.0  # set by Ferry"),
        ("    newTag: 1.4.2", "    newTag: 1.5.0"),
    ]


def test_an_open_promotion_of_the_same_freight_is_adopted_not_repeated() -> None:
    first = next(a for a in decide(snapshot()) if isinstance(a, OpenPromotion))
    pr = PullRequest(7, "u", first.branch, "dev", NEW.id, "h" * 40, first.title, first.body, first.labels)
    assert not [a for a in decide(snapshot(open_prs=(pr,))) if isinstance(a, OpenPromotion | ClosePromotion)]


def test_older_open_promotion_is_closed_as_superseded_by_the_newer() -> None:
    old = PullRequest(
        3, "u", branch_name("dev", "0" * 12), "dev", "0" * 12, "h" * 40, "Promote web 1.4.9 to dev"
    )
    closes = [a for a in decide(snapshot(open_prs=(old,))) if isinstance(a, ClosePromotion)]
    assert [(c.number, c.superseded_by_branch) for c in closes] == [(3, branch_name("dev", NEW.id))]


def test_invalid_config_gets_a_failing_status_and_nothing_is_promoted() -> None:
    broken = (EXAMPLE / CONFIG_PATH).read_text().replace("from: {stages: [dev]}", "from: {stages: [dve]}")
    actions = decide(snapshot(broken))
    assert all(isinstance(a, SetStatus) for a in actions)
    [status] = actions
    assert status.context == "ferry/config" and status.state == "failure"
    assert "dve" in status.description and len(status.description) <= 140


def test_config_status_is_not_posted_again_when_unchanged() -> None:
    first = next(a for a in decide(snapshot()) if isinstance(a, SetStatus) and a.context == "ferry/config")
    seen = {"ferry/config": CommitStatus("ferry/config", first.state, first.description)}
    again = [
        a
        for a in decide(snapshot(config_statuses=seen))
        if isinstance(a, SetStatus) and a.context == "ferry/config"
    ]
    assert again == []


def test_an_earlier_merge_overtaken_before_its_verdict_is_marked_superseded() -> None:
    earlier, later = "e" * 40, "f" * 40
    pending = {"ferry/health/dev": CommitStatus("ferry/health/dev", "pending", "Syncing")}
    deploy = Deploy(commit=later, changed_by=later, statuses=pending, overtaken=(earlier,))
    statuses = [a for a in decide(snapshot(deploys={"dev": deploy})) if isinstance(a, SetStatus)]
    superseded = [s for s in statuses if s.sha == earlier]
    assert [(s.context, s.state) for s in superseded] == [("ferry/health/dev", "error")]
    assert later[:7] in superseded[0].description and "Superseded" in superseded[0].description


def _merged_dev(labels: tuple[str, ...] = ()) -> Deploy:
    promotion = MergedPromotion(9, "u", "dev", NEW.id, "h" * 40, "m" * 40, labels=labels)
    return Deploy(
        commit="m" * 40,
        changed_by="h" * 40,
        promotion=promotion,
        previous_images=("ghcr.io/acme/web:1.6.0", "ghcr.io/acme/worker:1.4.2"),
    )


def test_a_merge_to_older_freight_is_synced_and_said_out_loud() -> None:
    actions = decide(snapshot(deploys={"dev": _merged_dev()}))
    comments = [a for a in actions if isinstance(a, PostComment)]
    assert any(isinstance(a, RequestSync) and a.stage == "dev" for a in actions)
    assert [c.number for c in comments] == [9]
    assert "web 1.6.0 → 1.4.2" in comments[0].body and "worker" not in comments[0].body


def test_a_rollback_merge_goes_backwards_without_a_warning() -> None:
    actions = decide(snapshot(deploys={"dev": _merged_dev(labels=("ferry", "rollback"))}))
    assert not [a for a in actions if isinstance(a, PostComment)]


def test_a_rollback_pr_gets_an_open_gate_and_a_title_that_says_rollback() -> None:
    snap = snapshot()
    views = {name: stage_view(snap, name) for name in ("dev", "staging", "prod")}
    rollback = build_promotion(snap, views, "prod", NEW, rollback=True, requested_by_login="rita")
    assert rollback.title == "Roll back prod to web 1.5.0, worker 1.5.0"
    assert "rollback" in rollback.labels
    pr = PullRequest(
        5, "u", rollback.branch, "prod", NEW.id, "h" * 40, rollback.title, rollback.body, rollback.labels
    )
    # prod has promoters: a rollback skips the upstream gate, never the approval that guards the merge.
    waiting = [
        a for a in decide(snapshot(open_prs=(pr,))) if isinstance(a, SetStatus) and a.context == "ferry/gate"
    ]
    assert [g.state for g in waiting] == ["pending"]
    assert waiting[0].description.startswith("Waiting for an approving review from @acme/release-managers")
    approved = {
        5: PullReviews(
            5, "h" * 40, "ferry[bot]", (Review("rita", "APPROVED", "h" * 40),), frozenset({"rita"})
        )
    }
    gates = [
        a
        for a in decide(snapshot(open_prs=(pr,), approvals=approved))
        if isinstance(a, SetStatus) and a.context == "ferry/gate"
    ]
    assert [g.state for g in gates] == ["success"]


def test_a_rollback_label_added_by_hand_does_not_open_the_gate() -> None:
    normal = next(a for a in decide(snapshot()) if isinstance(a, OpenPromotion))
    pr = PullRequest(
        6,
        "u",
        branch_name("staging", NEW.id),
        "staging",
        NEW.id,
        "h" * 40,
        "Promote web 1.5.0 to staging",
        "",
        ("ferry", "rollback"),
    )
    gates = [
        a for a in decide(snapshot(open_prs=(pr,))) if isinstance(a, SetStatus) and a.context == "ferry/gate"
    ]
    assert normal.stage == "dev" and [g.state for g in gates] == ["pending"]


def test_a_promotion_a_person_asked_for_is_not_closed_by_automatic_promotion() -> None:
    snap = snapshot()
    views = {name: stage_view(snap, name) for name in ("dev", "staging", "prod")}
    older = Freight(
        "shop", (FreightImage("ghcr.io/acme/web", "1.4.9"), FreightImage("ghcr.io/acme/worker", "1.4.9"))
    )
    asked = build_promotion(snap, views, "dev", older, requested_by_login="rita")
    pr = PullRequest(4, "u", asked.branch, "dev", older.id, "h" * 40, asked.title, asked.body, asked.labels)
    assert not [a for a in decide(snapshot(open_prs=(pr,))) if isinstance(a, ClosePromotion)]
