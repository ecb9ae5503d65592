"""Gates: whether a freight is verified in every stage upstream of a stage (pure).

Verified "at any time": an upstream stage that runs other freight now still counts when the freight
ledger says this freight's newest verdict there was a success (Kargo's per-freight "verified in"), so a
gate opened once does not close because upstream moved on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from bot.core.config import PipelineConfig, StagesSource
from bot.core.history import Ledger, verified_in
from bot.core.pipeline import upstream_stages
from bot.core.stage_view import StageView

STATUS_GATE = "ferry/gate"
STATUS_CONFIG = "ferry/config"
HEALTH_PREFIX = "ferry/health/"

GateState = Literal["pending", "success", "failure"]


def health_context(stage: str) -> str:
    return f"{HEALTH_PREFIX}{stage}"


@dataclass(frozen=True)
class Verification:
    """Whether the freight a stage runs now is verified there."""

    state: Literal["none", "pending", "success", "failure"]
    description: str


def verification(view: StageView, config: PipelineConfig) -> Verification:
    if view.deploy is None:
        return Verification("none", f"{view.name} has no deploy commit yet")
    status = view.deploy.statuses.get(health_context(view.name))
    if status is None:
        if config.stages[view.name].argocd is None:
            return Verification("success", "verified on merge (no Argo CD application configured)")
        return Verification("pending", "sync not requested yet")
    if status.state == "success":
        return Verification("success", status.description)
    if status.state in ("failure", "error"):
        return Verification("failure", status.description)
    return Verification("pending", status.description)


@dataclass(frozen=True)
class Gate:
    state: GateState
    description: str


def gate_for(
    freight_id: str,
    label: str,
    stage: str,
    config: PipelineConfig,
    views: Mapping[str, StageView],
    *,
    ledger: Ledger | None = None,
) -> Gate:
    """The gate of a promotion of ``freight_id`` into ``stage``: success when every upstream stage
    verified it (now, or earlier by the ``ledger``), failure when one runs it and failed it."""
    source = config.stages[stage].source
    if not isinstance(source, StagesSource):
        return Gate(
            "success",
            f"Freight comes straight from warehouse {source.warehouse}; nothing upstream to wait for",
        )
    waiting: list[str] = []
    for upstream in upstream_stages(config, stage):
        view = views[upstream]
        if view.freight_id != freight_id:
            if ledger is not None and verified_in(ledger, upstream, freight_id) is not None:
                continue  # verified there before upstream moved on
            waiting.append(f"{upstream} does not run {label} yet")
            continue
        verdict = verification(view, config)
        if verdict.state == "failure":
            return Gate("failure", f"{label} failed in {upstream}: {verdict.description}")
        if verdict.state != "success":
            waiting.append(f"{upstream} is verifying it ({verdict.description})")
    if waiting:
        return Gate("pending", "Waiting: " + "; ".join(waiting))
    ups = ", ".join(upstream_stages(config, stage))
    return Gate("success", f"{label} is verified in {ups}")


def verified_upstream_freight_id(
    stage: str, config: PipelineConfig, views: Mapping[str, StageView]
) -> str | None:
    """The freight every upstream stage runs and has verified, if they agree on one."""
    ids = set()
    for upstream in upstream_stages(config, stage):
        view = views[upstream]
        if view.freight_id is None or verification(view, config).state != "success":
            return None
        ids.add(view.freight_id)
    return ids.pop() if len(ids) == 1 else None
