"""The status page's view model, pure: each repository's pipeline as plain values, from the last Snapshot.

Belongs here: which stages, in which order and layer of the graph, what each runs (freight, images, tags,
since when), its verdict and where that verdict links (the deploy commit on GitHub, the Argo CD app), the
open promotion PRs with their ``ferry/gate`` state, and how often the page reloads. Nothing is looked up:
the snapshots are what the reconciler last observed of GitHub and Argo CD (a cache rebuilt by the first
pass after a restart). The HTML is ``bot.status_page``; the ``/status`` comment is ``bot.command_views``.

The shapes are ``bot.status_model``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from bot.command_views import VERDICT_WORDS
from bot.core.config import PipelineConfig, WarehouseSource
from bot.core.dora import RepoFigures, seconds, table_rows
from bot.core.freight import Freight
from bot.core.gates import STATUS_GATE, health_context, verification
from bot.core.images import parse_image
from bot.core.pipeline import stage_order
from bot.core.snapshot import CommitStatus, Snapshot
from bot.core.stage_view import StageView, stage_view
from bot.core.verification import app_url
from bot.errors import InvalidReferenceError
from bot.status_model import (
    DeliveryFigure,
    Graph,
    GraphNode,
    ImageTag,
    Link,
    OpenPromotionView,
    Pipeline,
    StageCard,
    State,
    StatusView,
    Verdict,
    WarehouseCard,
)

# Refresh bounds of the page (seconds): fast while a stage verifies, slow when all is quiet; a person may
# ask for another interval with ?refresh=N, kept within [MIN, MAX] so no page hammers the server.
REFRESH_VERIFYING = 5
REFRESH_IDLE = 30
REFRESH_MIN = 5
REFRESH_MAX = 3600

# The words of /status without its emoji (on the page a pill's colour says it, and not every browser has
# an emoji font): verified, verifying, failed, none.
WORDS = {state: words.split(" ", 1)[-1] for state, words in VERDICT_WORDS.items()}
NOTE_WAITING = "waiting for the first reconcile pass"
NOTE_NOT_FERRY = "no .github/ferry.yml on the default branch: Ferry leaves this repository alone"
NOTE_OTHER_SHARD = "reconciled by another Ferry replica (shard {shard})"
NOTE_INVALID = ".github/ferry.yml is invalid: nothing is promoted until it is fixed"
NO_FREIGHT = "not promoted by Ferry"
NO_GATE = "no gate status yet"
GATE_WORDS = {
    "success": "gate open",
    "pending": "gate waiting",
    "failure": "gate closed",
    "none": NO_GATE,
}


# ---- GitHub web addresses ---------------------------------------------------------------------------
def github_html_url(api_url: str) -> str:
    """The web root matching a REST API root.

    ``https://api.github.com`` → ``https://github.com`` (and ``api.<sub>.ghe.com`` → ``<sub>.ghe.com``);
    GitHub Enterprise Server serves its API at ``https://HOST/api/v3`` (GitHub docs, "Getting started with
    the REST API"), so that suffix is dropped; any other root (the sandbox's stand-in) serves both.
    """
    root = api_url.rstrip("/")
    parts = urlsplit(root)
    host = parts.hostname or ""
    if host.startswith("api.") and parts.path in ("", "/"):
        return f"{parts.scheme}://{parts.netloc.removeprefix('api.')}"
    return root.removesuffix("/api/v3")


def _commit(html: str, repo: str, sha: str) -> Link:
    return Link(sha[:7], f"{html}/{repo}/commit/{sha}")


# ---- one stage --------------------------------------------------------------------------------------
def _images(tags: Mapping[str, str | None], digests: Mapping[str, str | None]) -> tuple[ImageTag, ...]:
    return tuple(
        ImageTag(image, _short(image), tag, digests.get(image)) for image, tag in sorted(tags.items())
    )


def _freight_images(freight: Freight) -> tuple[ImageTag, ...]:
    return tuple(ImageTag(i.image, _short(i.image), i.tag, i.digest) for i in freight.images)


def _tags_label(tags: Mapping[str, str | None]) -> str:
    """``web 1.4.0, worker 1.4.0`` from the files, as ``Freight.label`` reads, for files Ferry did not set."""
    return ", ".join(f"{_short(i).rsplit('/', 1)[-1]} {t or '?'}" for i, t in sorted(tags.items())) or "—"


def _short(image: str) -> str:
    try:
        return parse_image(image).repository
    except InvalidReferenceError:
        return image


def _state(value: str) -> State:
    if value == "success":
        return "success"
    if value in ("failure", "error"):
        return "failure"
    return "pending" if value == "pending" else "none"


def _verdict(snapshot: Snapshot, view: StageView, html: str) -> Verdict:
    assert snapshot.config is not None
    decided = verification(view, snapshot.config)
    status: CommitStatus | None = None
    commit = None
    if view.deploy is not None:
        status = view.deploy.statuses.get(health_context(view.name))
        commit = _commit(html, snapshot.repo, view.deploy.commit)
    return Verdict(
        stage=view.name,
        state=decided.state,
        words=WORDS[decided.state],
        description=decided.description,
        at=(status.updated_at or status.created_at) if status else None,
        commit=commit,
        argocd=status.target_url if status else None,
    )


def _open_prs(snapshot: Snapshot, stage: str) -> tuple[OpenPromotionView, ...]:
    found = []
    for pr in sorted((p for p in snapshot.open_prs if p.stage == stage), key=lambda p: p.number):
        gate = pr.statuses.get(STATUS_GATE)
        state = _state(gate.state) if gate else "none"
        found.append(
            OpenPromotionView(
                number=pr.number,
                title=pr.title,
                url=pr.url,
                freight_id=pr.freight_id,
                gate=state,
                gate_words=GATE_WORDS[state],
                gate_description=gate.description if gate else "",
            )
        )
    return tuple(found)


def _feeds(config: PipelineConfig, stage: str) -> tuple[str, ...]:
    source = config.stages[stage].source
    if isinstance(source, WarehouseSource):
        return (f"warehouse:{source.warehouse}",)
    return tuple(f"stage:{s}" for s in source.stages)


def _card(snapshot: Snapshot, view: StageView, html: str) -> StageCard:
    assert snapshot.config is not None
    stage = snapshot.config.stages[view.name]
    deploy = view.deploy
    promotion = deploy.promotion if deploy else None
    apps: tuple[Link, ...] = ()
    if stage.argocd is not None:
        server = stage.argocd.server
        apps = tuple(Link(a, app_url(snapshot.argocd_urls, server, a)) for a in stage.argocd.app_names)
    return StageCard(
        name=view.name,
        warehouse=view.warehouse,
        feeds=_feeds(snapshot.config, view.name),
        verdict=_verdict(snapshot, view, html),
        freight_id=view.freight_id,
        freight_label=view.freight.label if view.freight else _tags_label(view.tags),
        images=_freight_images(view.freight) if view.freight else _images(view.tags, view.digests),
        since=deploy.committed_at if deploy else None,
        deploy=_commit(html, snapshot.repo, deploy.commit) if deploy else None,
        promotion=Link(f"#{promotion.number}", promotion.url) if promotion else None,
        apps=apps,
        open_prs=_open_prs(snapshot, view.name),
        auto_promote=stage.auto_promote,
        auto_merge=stage.auto_merge,
    )


# ---- the graph --------------------------------------------------------------------------------------
def _graph(config: PipelineConfig, cards: Iterable[StageCard], warehouses: Iterable[WarehouseCard]) -> Graph:
    layer: dict[str, int] = {}
    nodes: list[GraphNode] = []
    edges: list[tuple[str, str]] = []
    for house in warehouses:
        node = GraphNode(
            f"warehouse:{house.name}", "warehouse", house.name, 0, 0, "none", house.freight_label
        )
        nodes.append(node)
    for card in cards:  # pipeline order: every stage comes after the stages it draws from
        depth = 1 + max((layer.get(feed, 0) for feed in card.feeds), default=0)
        node_id = f"stage:{card.name}"
        layer[node_id] = depth
        note = " ".join(f"#{pr.number} {pr.gate_words}" for pr in card.open_prs[-1:])
        nodes.append(
            GraphNode(node_id, "stage", card.name, depth, 0, card.verdict.state, card.freight_label, note)
        )
        edges += [(feed, node_id) for feed in card.feeds]
    rows: dict[int, int] = {}
    placed = []
    for node in nodes:  # rows within a layer, in the order nodes were met
        placed.append(dataclasses.replace(node, row=rows.get(node.layer, 0)))
        rows[node.layer] = placed[-1].row + 1
    return Graph(tuple(placed), tuple(edges))


# ---- one repository ---------------------------------------------------------------------------------
def _warehouse(snapshot: Snapshot, name: str) -> WarehouseCard:
    freight = snapshot.warehouse_freight.get(name)
    error = snapshot.warehouse_errors.get(name, "")
    if freight is None:
        return WarehouseCard(name, None, "no freight found yet", (), error)
    return WarehouseCard(name, freight.id, freight.label, _freight_images(freight), error)


def delivery_figures(delivery: RepoFigures) -> tuple[DeliveryFigure, ...]:
    """The page's rows of a repository's delivery figures (numbers for JSON, words for people)."""
    rows = []
    for figure, words in zip(delivery.figures, table_rows(delivery.figures), strict=True):
        rows.append(
            DeliveryFigure(
                stage=figure.stage,
                window_days=figure.window_days,
                deployments=figure.deployments,
                deployment_frequency_per_day=figure.deployment_frequency,
                lead_time_median_seconds=seconds(figure.lead_time_median),
                lead_time_p90_seconds=seconds(figure.lead_time_p90),
                change_failure_rate=figure.change_failure_rate,
                time_to_restore_median_seconds=seconds(figure.time_to_restore_median),
                words=words[2:],
            )
        )
    return tuple(rows)


def pipeline(
    snapshot: Snapshot, *, html: str, verifying: bool = False, delivery: RepoFigures | None = None
) -> Pipeline:
    """What the page shows of one repository; ``html`` is GitHub's web root (``github_html_url``)."""
    base = Pipeline(
        repo=snapshot.repo,
        url=f"{html}/{snapshot.repo}",
        default_branch=snapshot.default_branch,
        head=_commit(html, snapshot.repo, snapshot.head_sha),
        observed_at=snapshot.now,
        verifying=verifying,
        problems=tuple(str(p) for p in snapshot.config_problems),
    )
    config = snapshot.config
    if config is None or snapshot.config_problems:
        return dataclasses.replace(base, note=NOTE_INVALID)
    cards = tuple(_card(snapshot, stage_view(snapshot, name), html) for name in stage_order(config))
    warehouses = tuple(_warehouse(snapshot, name) for name in config.warehouses)
    verdicts = sorted(
        (c.verdict for c in cards if c.verdict.state != "none"),
        key=lambda v: v.at.timestamp() if v.at else float("-inf"),
        reverse=True,
    )
    return dataclasses.replace(
        base,
        graph=_graph(config, cards, warehouses),
        stages=cards,
        warehouses=warehouses,
        verdicts=tuple(verdicts),
        delivery=delivery_figures(delivery) if delivery is not None else (),
        delivery_at=delivery.computed_at if delivery is not None else None,
    )


def build_status(
    observed: Mapping[str, Snapshot | None],
    *,
    repositories: Iterable[str],
    owns: Callable[[str], bool],
    shard: str,
    verifying: Iterable[str],
    last_pass: Mapping[str, Mapping[str, Any]],
    now: datetime,
    github_html: str,
    version: str,
    delivery: Mapping[str, RepoFigures] | None = None,
) -> StatusView:
    """The whole page: one ``Pipeline`` per repository the App is installed on, sorted by name.

    ``observed`` maps a repository to its last snapshot, or None when it has no ``.github/ferry.yml``;
    a repository missing from it was not observed yet (or belongs to another replica's shard).
    ``delivery`` maps a repository to its delivery figures as last read from its ledger.
    """
    busy = set(verifying)
    pipelines = []
    for repo in sorted(set(repositories)):  # an uninstalled repository's last snapshot is not shown
        url = f"{github_html}/{repo}"
        if repo in observed:
            snapshot = observed[repo]
            if snapshot is None:
                pipelines.append(Pipeline(repo, url, note=NOTE_NOT_FERRY))
            else:
                figures = (delivery or {}).get(repo)
                pipelines.append(
                    pipeline(snapshot, html=github_html, verifying=repo in busy, delivery=figures)
                )
        elif owns(repo):
            pipelines.append(Pipeline(repo, url, note=NOTE_WAITING))
        else:
            pipelines.append(Pipeline(repo, url, note=NOTE_OTHER_SHARD.format(shard=shard)))
    # Repositories with a pipeline first: they are what a person opens the page for.
    pipelines.sort(key=lambda p: (not p.stages, p.repo))
    return StatusView(
        generated_at=now,
        version=version,
        pipelines=tuple(pipelines),
        repositories=tuple(sorted(repositories)),
        verifying=tuple(sorted(busy)),
        last_pass={repo: dict(value) for repo, value in last_pass.items()},
    )


def refresh_seconds(view: StatusView | None, requested: str | None = None) -> int:
    """How often the page reloads itself: ``?refresh=N`` within bounds, else by whether a stage verifies."""
    if requested is not None and requested.strip().isdigit():
        return max(REFRESH_MIN, min(REFRESH_MAX, int(requested)))
    return REFRESH_VERIFYING if view is not None and view.any_verifying else REFRESH_IDLE
