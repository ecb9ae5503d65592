"""``ferry doctor``'s checks of the pipeline: ``.github/ferry.yml``, each stage's files, and the warehouses'
registries (the stages' Argo CD applications: ``bot.doctor_argocd``). Pure (``bot.doctor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.config import PipelineConfig, StagesSource
from bot.core.pipeline import stage_order
from bot.core.selection import TagRule, select_tag
from bot.doctor import Check, fail, ok, warn
from bot.errors import FerryError, Problem


# ---- the pipeline config and the stages' files -----------------------------------------------------
@dataclass(frozen=True)
class ConfigFacts:
    """``found``: ``.github/ferry.yml`` exists on ``branch``; ``problems``: what the loader reports (the
    config alone); ``summary``: its warehouses and stages, when valid."""

    path: str
    branch: str
    found: bool
    problems: Sequence[Problem] = ()
    summary: str = ""


def config_summary(config: PipelineConfig) -> str:
    """``1 warehouse, 3 stages (dev <- shop, staging <- dev, prod <- staging)``."""
    order = []
    for name in stage_order(config):
        source = config.stages[name].source
        order.append(
            f"{name} <- {'+'.join(source.stages) if isinstance(source, StagesSource) else source.warehouse}"
        )
    warehouses, stages = len(config.warehouses), len(config.stages)
    return (
        f"{warehouses} warehouse{'s' if warehouses != 1 else ''}, {stages} stage{'s' if stages != 1 else ''} "
        f"({', '.join(order)})"
    )


def config_check(config: ConfigFacts) -> Check:
    name = config.path
    if not config.found:
        return fail(
            name,
            f"not found on {config.branch}",
            f"add {config.path} on {config.branch} (docs/config.md); `ferry validate` checks it locally",
        )
    if config.problems:
        count = len(config.problems)
        shown = "; ".join(str(p) for p in config.problems[:3]) + ("; …" if count > 3 else "")
        return fail(
            name,
            f"{count} problem{'s' if count != 1 else ''}: {shown}",
            "fix each one (`ferry validate` in a checkout lists them with line and column); until then Ferry "
            "promotes nothing",
        )
    return ok(name, f"valid on {config.branch}: {config.summary}")


@dataclass(frozen=True)
class StageFiles:
    """One stage's update targets: ``problems`` from the loader's file checks for this stage, ``held``
    the tags its files hold per image (``StageView.tags``), ``images`` its warehouse's images."""

    stage: str
    paths: Sequence[str]
    images: Sequence[str]
    held: Mapping[str, str | None]
    problems: Sequence[str] = ()


def stage_files_check(files: StageFiles) -> Check:
    name = f"stage {files.stage}: files"
    if files.problems:
        return fail(
            name,
            "; ".join(files.problems),
            "make the files hold the warehouse's images (`ferry bump FILE IMAGE=TAG` sets a tag) or point "
            f"stages.{files.stage}.update at the files that do; `ferry validate` in a checkout checks it",
        )
    held = ", ".join(f"{image} {files.held.get(image) or '(no tag)'}" for image in files.images)
    return ok(name, f"{', '.join(files.paths)}: {held}")


# ---- registries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistryFacts:
    """One warehouse image: its tags (None when listing failed: ``error``, ``temporary``)."""

    warehouse: str
    image: str
    rule: TagRule
    tags: Sequence[str] | None
    error: str | None = None
    temporary: bool = False


def registry_check(facts: RegistryFacts) -> Check:
    name = f"registry: {facts.image}"
    host = facts.image.split("/", 1)[0]
    if facts.tags is None:
        fix = (
            f"check that {host} is reachable from where Ferry runs (network policy, proxy, address)"
            if facts.temporary
            else f"set credentials for {host} in FERRY_REGISTRIES, or correct the image in the config"
        )
        return fail(name, facts.error or "the tags could not be listed", fix)
    try:
        chosen = select_tag(facts.tags, facts.rule)
    except FerryError as exc:
        return warn(
            name,
            f"{len(facts.tags)} tags; none is chosen by warehouse {facts.warehouse}'s rule: {exc}",
            "push a tag the rule accepts, or change the rule in the config",
        )
    return ok(name, f"{len(facts.tags)} tags; warehouse {facts.warehouse} picks {chosen}")
