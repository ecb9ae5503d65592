"""The status page's view model and HTML, pure: snapshots built by hand from the example repository."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.core.config_load import CONFIG_PATH, load_config
from bot.core.freight import Freight, FreightImage
from bot.core.promotion import branch_name, commit_message
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion, PullRequest, Snapshot
from bot.errors import Problem
from bot.status_model import as_json
from bot.status_page import HISTORY_EMPTY, render_page
from bot.status_view import (
    NOTE_INVALID,
    NOTE_NOT_FERRY,
    NOTE_OTHER_SHARD,
    NOTE_WAITING,
    build_status,
    github_html_url,
    pipeline,
    refresh_seconds,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example"
TARGETS = [
    "overlays/dev/kustomization.yaml",
    "overlays/staging/kustomization.yaml",
    "charts/web/values-prod.yaml",
]
NOW = datetime(2026, 11, 26, 14, 30, tzinfo=UTC)
HTML = "https://github.com"
ARGOCD = "https://argocd.example.com"
DIGEST = "sha256:" + "ab" * 32


def freight(tag: str) -> Freight:
    return Freight(
        "shop",
        (FreightImage("ghcr.io/acme/web", tag, DIGEST), FreightImage("ghcr.io/acme/worker", tag, DIGEST)),
    )


DEV, STAGING, NEW = freight("1.4.2"), freight("1.4.1"), freight("1.5.0")  # dev and staging run theirs


def health(stage: str, state: str, description: str, minutes_ago: int) -> dict[str, CommitStatus]:
    at = NOW - timedelta(minutes=minutes_ago)
    context = f"ferry/health/{stage}"
    url = f"{ARGOCD}/applications/shop-{stage}"
    return {context: CommitStatus(context, state, description, url, created_at=at, updated_at=at)}


def promoted(stage: str, runs: Freight, number: int, sha: str, statuses: dict[str, CommitStatus]) -> Deploy:
    merged = MergedPromotion(number, f"{HTML}/acme/gitops/pull/{number}", stage, runs.id, "h" * 40, sha)
    return Deploy(
        commit=sha,
        changed_by="h" * 40,
        message=commit_message(stage, runs),
        committed_at=NOW - timedelta(minutes=40),
        promotion=merged,
        statuses=statuses,
    )


def snapshot(**changes: object) -> Snapshot:
    text = (EXAMPLE / CONFIG_PATH).read_text()
    files = {path: (EXAMPLE / path).read_text() for path in TARGETS}
    paths = frozenset(str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*") if p.is_file())
    prod_pr = PullRequest(
        7,
        f"{HTML}/acme/gitops/pull/7",
        branch_name("prod", STAGING.id),
        "prod",
        STAGING.id,
        "p" * 40,
        "Promote web 1.4.1, worker 1.4.1 to prod",
        statuses={"ferry/gate": CommitStatus("ferry/gate", "success", "web 1.4.1 is verified in staging")},
    )
    base = Snapshot(
        repo="acme/gitops",
        default_branch="main",
        head_sha="1" * 40,
        now=NOW,
        config=load_config(text, files=files),
        paths=paths,
        files=files,
        warehouse_freight={"shop": NEW},
        argocd_urls={"default": ARGOCD},
        deploys={
            "dev": promoted(
                "dev", DEV, 3, "d" * 40, health("dev", "failure", "Degraded: ImagePullBackOff", 5)
            ),
            "staging": promoted("staging", STAGING, 2, "5" * 40, health("staging", "success", "healthy", 20)),
            "prod": Deploy(commit="0" * 40, changed_by="0" * 40, committed_at=NOW - timedelta(days=3)),
        },
        open_prs=(prod_pr,),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def test_stages_come_in_pipeline_order_with_verdict_freight_tags_and_links() -> None:
    view = pipeline(snapshot(), html=HTML)

    assert [card.name for card in view.stages] == ["dev", "staging", "prod"]
    dev, staging, prod = view.stages
    assert (dev.verdict.state, dev.verdict.words) == ("failure", "failed")
    assert dev.verdict.description == "Degraded: ImagePullBackOff"
    assert (
        dev.verdict.commit is not None and dev.verdict.commit.url == f"{HTML}/acme/gitops/commit/{'d' * 40}"
    )
    assert dev.verdict.argocd == f"{ARGOCD}/applications/shop-dev"
    assert (dev.freight_id, dev.freight_label) == (DEV.id, "web 1.4.2, worker 1.4.2")
    assert [(i.name, i.tag) for i in dev.images] == [("acme/web", "1.4.2"), ("acme/worker", "1.4.2")]
    assert dev.since == NOW - timedelta(minutes=40)
    assert dev.promotion is not None and dev.promotion.text == "#3"
    assert [(a.text, a.url) for a in dev.apps] == [("shop-dev", f"{ARGOCD}/applications/shop-dev")]
    assert staging.verdict.state == "success" and staging.freight_id == STAGING.id
    # prod's files were set by hand: no freight, but its tags still show; its Argo CD apps are both linked.
    assert prod.freight_id is None and prod.freight_label == "web 1.4.0, worker 1.4.0"
    assert [a.text for a in prod.apps] == ["shop-prod-eu", "shop-prod-us"]
    [pr] = prod.open_prs
    assert (pr.number, pr.gate, pr.gate_words) == (7, "success", "gate open")
    # Newest first; prod's sync was never requested, so its pending verdict has no time and comes last.
    assert [(v.stage, v.state) for v in view.verdicts] == [
        ("dev", "failure"),
        ("staging", "success"),
        ("prod", "pending"),
    ]


def test_each_stage_is_drawn_one_layer_past_the_deepest_stage_it_draws_from() -> None:
    text = (EXAMPLE / CONFIG_PATH).read_text()
    text = text.replace("    from: {stages: [staging]}", "    from: {stages: [staging, qa]}")
    text = text.replace(
        "  prod:\n",
        "  qa:\n    from: {stages: [dev]}\n    update:\n      - kustomize: overlays/staging\n\n  prod:\n",
    )
    files = {path: (EXAMPLE / path).read_text() for path in TARGETS}
    view = pipeline(snapshot(config=load_config(text, files=files), deploys={}, open_prs=()), html=HTML)

    places = {(n.name, n.layer, n.row) for n in view.graph.nodes}
    assert places == {("shop", 0, 0), ("dev", 1, 0), ("staging", 2, 0), ("qa", 2, 1), ("prod", 3, 0)}
    assert ("stage:qa", "stage:prod") in view.graph.edges and (
        "stage:staging",
        "stage:prod",
    ) in view.graph.edges


def test_text_from_github_renders_inert_and_only_http_links_are_kept() -> None:
    evil = "<script>alert(1)</script>"
    gate = CommitStatus("ferry/gate", "pending", '"><img src=x onerror=alert(2)>', "javascript:alert(3)")
    pr = PullRequest(
        9, "javascript:alert(4)", "ferry/prod/x", "prod", "x", "p" * 40, evil, statuses={"ferry/gate": gate}
    )
    hostile_health = {
        "ferry/health/staging": CommitStatus(
            "ferry/health/staging", "success", evil, "javascript:alert(5)", NOW, NOW
        )
    }
    deploys = dict(snapshot().deploys)
    deploys["staging"] = replace(deploys["staging"], statuses=hostile_health)
    view = build_status(
        {"acme/gitops": snapshot(open_prs=(pr,), deploys=deploys)},
        repositories=["acme/gitops", "acme/<b>x</b>"],
        owns=lambda repo: True,
        shard="0/1",
        verifying=[],
        last_pass={},
        now=NOW,
        github_html=HTML,
        version="0.1.0",
    )

    page = render_page(view, version="0.1.0", refresh=30)

    assert "<script" not in page.lower() and "<img" not in page and "<b>x" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "javascript:" not in page.lower()
    assert all(url.startswith(("#", "https://", "/")) for url in re.findall(r'href="([^"]*)"', page))


def test_repositories_without_a_pipeline_say_why() -> None:
    broken = snapshot(config=None, config_problems=())
    problem = Problem(".github/ferry.yml", 12, 5, "stages.prod.from", "unknown stage dve")
    view = build_status(
        {"acme/empty": None, "acme/broken": replace(broken, repo="acme/broken", config_problems=(problem,))},
        repositories=["acme/empty", "acme/broken", "acme/new", "acme/elsewhere"],
        owns=lambda repo: repo != "acme/elsewhere",
        shard="1/3",
        verifying=[],
        last_pass={},
        now=NOW,
        github_html=HTML,
        version="0.1.0",
    )

    notes = {p.repo: p.note for p in view.pipelines}
    assert notes == {
        "acme/broken": NOTE_INVALID,
        "acme/empty": NOTE_NOT_FERRY,
        "acme/new": NOTE_WAITING,
        "acme/elsewhere": NOTE_OTHER_SHARD.format(shard="1/3"),
    }
    page = render_page(view, version="0.1.0", refresh=30)
    assert ".github/ferry.yml:12:5: stages.prod.from: unknown stage dve" in page


def test_the_history_slot_is_empty_and_the_page_says_so_rather_than_inventing_any() -> None:
    view = build_status(
        {"acme/gitops": snapshot()},
        repositories=["acme/gitops"],
        owns=lambda repo: True,
        shard="0/1",
        verifying=[],
        last_pass={},
        now=NOW,
        github_html=HTML,
        version="0.1.0",
    )

    assert view.pipelines[0].history == ()
    assert HISTORY_EMPTY in render_page(view, version="0.1.0", refresh=30)


def test_the_json_for_machines_keeps_the_old_keys_and_holds_every_stage() -> None:
    view = build_status(
        {"acme/gitops": snapshot()},
        repositories=["acme/gitops"],
        owns=lambda repo: True,
        shard="0/1",
        verifying=["acme/gitops"],
        last_pass={"acme/gitops": {"at": NOW.isoformat(), "actions": 2}},
        now=NOW,
        github_html=HTML,
        version="0.1.0",
    )

    data = json.loads(json.dumps(as_json(view)))

    assert data["repositories"] == ["acme/gitops"] and data["verifying"] == ["acme/gitops"]
    assert data["last_pass"]["acme/gitops"]["actions"] == 2
    [repo] = data["pipelines"]
    assert [s["name"] for s in repo["stages"]] == ["dev", "staging", "prod"]
    assert repo["stages"][0]["verdict"]["at"] == (NOW - timedelta(minutes=5)).isoformat()
    assert repo["history"] == []


def test_the_page_reloads_fast_while_a_stage_verifies_and_never_faster_than_the_floor() -> None:
    quiet = build_status(
        {},
        repositories=[],
        owns=lambda r: True,
        shard="0/1",
        verifying=[],
        last_pass={},
        now=NOW,
        github_html=HTML,
        version="v",
    )
    busy = replace(quiet, verifying=("acme/gitops",))

    assert (refresh_seconds(quiet), refresh_seconds(busy)) == (30, 5)
    assert [refresh_seconds(quiet, asked) for asked in ("1", "60", "999999", "soon")] == [5, 60, 3600, 30]
    assert '<meta http-equiv="refresh" content="60">' in render_page(quiet, version="v", refresh=60)


def test_github_web_addresses_follow_the_api_root() -> None:
    assert github_html_url("https://api.github.com") == "https://github.com"
    assert github_html_url("https://api.acme.ghe.com/") == "https://acme.ghe.com"
    assert github_html_url("https://github.acme.internal/api/v3") == "https://github.acme.internal"
    assert github_html_url("http://127.0.0.1:8123") == "http://127.0.0.1:8123"
