"""The status page's view model: plain, frozen values a renderer turns into HTML, and their JSON.

Built from snapshots by ``bot.status_view``; rendered by ``bot.status_page``; served as JSON at
``/status.json``. Adding a field is safe for JSON readers; renaming one is not.

``Pipeline.history`` is the slot for freight verified per stage over time, read from the ledger of GitHub
Deployments once Ferry writes one; until then it is empty and the page says so.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

State = Literal["none", "pending", "success", "failure"]


@dataclasses.dataclass(frozen=True)
class Link:
    text: str
    url: str | None = None


@dataclasses.dataclass(frozen=True)
class ImageTag:
    image: str  # the normalised name: ``ghcr.io/acme/web``
    name: str  # what people read: ``acme/web``
    tag: str | None
    digest: str | None = None


@dataclasses.dataclass(frozen=True)
class Verdict:
    """A stage's ``ferry/health/<stage>`` verdict on its deploy commit (``none`` before any)."""

    stage: str
    state: State
    words: str  # ``verified``, ``verifying``, ``failed``, ``none``
    description: str
    at: datetime | None  # when GitHub last updated the status
    commit: Link | None  # the deploy commit it is posted on (GitHub web URL)
    argocd: str | None  # the status's target_url: the Argo CD application


@dataclasses.dataclass(frozen=True)
class OpenPromotionView:
    number: int
    title: str
    url: str
    freight_id: str
    gate: State  # the ``ferry/gate`` status on the PR's head commit; ``none`` before Ferry posts it
    gate_words: str
    gate_description: str


@dataclasses.dataclass(frozen=True)
class StageCard:
    name: str
    warehouse: str
    feeds: tuple[str, ...]  # graph node ids it draws from
    verdict: Verdict
    freight_id: str | None
    freight_label: str  # ``web 1.5.0, worker 1.5.0`` (from the files' tags when Ferry did not promote them)
    images: tuple[ImageTag, ...]
    since: datetime | None  # the deploy commit's time: since when the stage runs this
    deploy: Link | None  # the deploy commit
    promotion: Link | None  # the merged PR that brought it
    apps: tuple[Link, ...]  # Argo CD applications
    open_prs: tuple[OpenPromotionView, ...]
    auto_promote: bool = False
    auto_merge: bool = False


@dataclasses.dataclass(frozen=True)
class WarehouseCard:
    name: str
    freight_id: str | None  # the newest freight Ferry found
    freight_label: str
    images: tuple[ImageTag, ...]
    error: str = ""


@dataclasses.dataclass(frozen=True)
class GraphNode:
    id: str  # ``warehouse:shop``, ``stage:dev``
    kind: Literal["warehouse", "stage"]
    name: str
    layer: int  # 0 for warehouses; a stage is one past the deepest stage it draws from
    row: int  # position within its layer, in pipeline order
    state: State
    caption: str  # the freight (stages) or the newest freight (warehouses)
    note: str = ""  # an open promotion PR into the stage: ``#3 gate open``


@dataclasses.dataclass(frozen=True)
class Graph:
    nodes: tuple[GraphNode, ...] = ()
    edges: tuple[tuple[str, str], ...] = ()  # (from node id, to node id)

    @property
    def layers(self) -> int:
        return max((n.layer for n in self.nodes), default=-1) + 1

    @property
    def rows(self) -> int:
        return max((n.row for n in self.nodes), default=-1) + 1


@dataclasses.dataclass(frozen=True)
class HistoryEntry:
    """One verification of freight in a stage (a GitHub Deployment and its last status)."""

    stage: str
    freight_id: str
    freight_label: str
    state: State
    at: datetime | None
    commit: Link | None
    argocd: str | None
    task: str = ""  # ``ferry:promote``, ``ferry:rollback``, ``ferry:baseline``


@dataclasses.dataclass(frozen=True)
class DeliveryFigure:
    """One stage's delivery figures over one window (``bot.core.dora``); None: no data (``n/a``)."""

    stage: str
    window_days: int
    deployments: int
    deployment_frequency_per_day: float | None
    lead_time_median_seconds: float | None
    lead_time_p90_seconds: float | None
    change_failure_rate: float | None
    time_to_restore_median_seconds: float | None
    words: tuple[str, ...]  # the cells of ``bot.core.dora.TABLE_HEADER``'s columns after stage and window


@dataclasses.dataclass(frozen=True)
class Pipeline:
    repo: str
    url: str  # the repository on GitHub's web
    note: str = ""  # why there is no pipeline to show (waiting, not a Ferry repository, other shard)
    default_branch: str = ""
    head: Link | None = None
    observed_at: datetime | None = None
    verifying: bool = False
    problems: tuple[str, ...] = ()  # config problems, ``file:line:column: field: message``
    graph: Graph = Graph()
    stages: tuple[StageCard, ...] = ()  # in pipeline order
    warehouses: tuple[WarehouseCard, ...] = ()
    verdicts: tuple[Verdict, ...] = ()  # newest first
    history: tuple[HistoryEntry, ...] = ()  # empty until Ferry keeps a ledger of verifications
    delivery: tuple[DeliveryFigure, ...] = ()  # per stage and window; empty until the ledger was read
    delivery_at: datetime | None = None  # when the ledger was read for ``delivery``


@dataclasses.dataclass(frozen=True)
class StatusView:
    generated_at: datetime
    version: str
    pipelines: tuple[Pipeline, ...]
    repositories: tuple[str, ...] = ()
    verifying: tuple[str, ...] = ()
    last_pass: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)

    @property
    def any_verifying(self) -> bool:
        return bool(self.verifying)


def as_json(view: StatusView) -> dict[str, Any]:
    """The page's data for machines (``/status.json``): every field, times as ISO 8601 strings."""
    return dict(_jsonable(dataclasses.asdict(view)))


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value
