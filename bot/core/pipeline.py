"""The stage graph: which stage draws from which, in what order, fed by which warehouse.

Stages draw freight from a warehouse or from upstream stages; together they form a directed graph
that must be acyclic and rooted in warehouses. ``graph_problems`` checks that shape on whatever
could be read from a config (even one that failed other checks), so every problem is reported at
once; the other functions answer questions about a valid ``PipelineConfig``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.core.config import PipelineConfig

UNKNOWN_WAREHOUSE = 'unknown warehouse "{name}"{hint}; warehouses: {known}'
UNKNOWN_STAGE = 'unknown stage "{name}"{hint}; stages: {known}'
SELF_SOURCE = 'stage "{name}" cannot draw from itself; name an upstream stage or use {{warehouse: <name>}}'
DUPLICATE_UPSTREAM = 'stage "{name}" is listed twice'
CYCLE = (
    "the stages form a cycle: {cycle} (each stage draws from the one after its arrow); "
    "one stage in it must draw from a warehouse instead"
)
MIXED_WAREHOUSES = (
    "upstream stages are fed by different warehouses ({pairs}); a stage takes the freight of one warehouse"
)

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class GraphProblem:
    """A problem with the graph, at a path into the config (``("stages", "prod", "from", "stages", 0)``)."""

    path: Path
    message: str


@dataclass(frozen=True)
class StageLinks:
    """What one stage draws from, as far as it could be read; ``None`` marks an unreadable entry."""

    warehouse: str | None = None
    stages: tuple[str | None, ...] = ()


def did_you_mean(name: str, candidates: Sequence[str]) -> str:
    """`` (did you mean "web"?)`` when a candidate is close to ``name``, else an empty string."""
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _known(names: Sequence[str]) -> str:
    return ", ".join(names) if names else "none defined"


def graph_problems(warehouses: Sequence[str], links: Mapping[str, StageLinks]) -> list[GraphProblem]:
    """Unknown names, self references, duplicates, cycles and mixed warehouses, all of them."""
    problems: list[GraphProblem] = []
    stage_names = list(links)
    for stage, link in links.items():
        base: Path = ("stages", stage, "from")
        if link.warehouse is not None and link.warehouse not in warehouses:
            hint = did_you_mean(link.warehouse, warehouses)
            problems.append(
                GraphProblem(
                    (*base, "warehouse"),
                    UNKNOWN_WAREHOUSE.format(name=link.warehouse, hint=hint, known=_known(warehouses)),
                )
            )
        seen: set[str] = set()
        for index, upstream in enumerate(link.stages):
            if upstream is None:
                continue
            path = (*base, "stages", index)
            if upstream == stage:
                problems.append(GraphProblem(path, SELF_SOURCE.format(name=stage)))
            elif upstream not in links:
                hint = did_you_mean(upstream, [s for s in stage_names if s != stage])
                problems.append(
                    GraphProblem(
                        path, UNKNOWN_STAGE.format(name=upstream, hint=hint, known=_known(stage_names))
                    )
                )
            elif upstream in seen:
                problems.append(GraphProblem(path, DUPLICATE_UPSTREAM.format(name=upstream)))
            seen.add(upstream)
    problems.extend(_cycle_problems(links))
    problems.extend(_mixed_warehouse_problems(warehouses, links))
    return problems


def _edges(links: Mapping[str, StageLinks]) -> dict[str, list[str]]:
    return {
        stage: [u for u in link.stages if u is not None and u in links and u != stage]
        for stage, link in links.items()
    }


def find_cycles(edges: Mapping[str, Sequence[str]]) -> list[list[str]]:
    """Each distinct cycle found by a depth-first walk in key order, as ``[a, b, ..., a]``."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []
    cycles: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt]
                if frozenset(cycle) not in seen_sets:
                    seen_sets.add(frozenset(cycle))
                    cycles.append(cycle)
            elif nxt not in state:
                visit(nxt)
        path.pop()
        state[node] = 2

    for node in edges:
        if node not in state:
            visit(node)
    return cycles


def _cycle_problems(links: Mapping[str, StageLinks]) -> list[GraphProblem]:
    problems = []
    for cycle in find_cycles(_edges(links)):
        first, second = cycle[0], cycle[1]
        index = links[first].stages.index(second)
        problems.append(
            GraphProblem(("stages", first, "from", "stages", index), CYCLE.format(cycle=" <- ".join(cycle)))
        )
    return problems


def _feeding_warehouse(
    stage: str, links: Mapping[str, StageLinks], memo: dict[str, str | None], visiting: set[str]
) -> str | None:
    if stage in memo:
        return memo[stage]
    link = links.get(stage)
    result: str | None = None
    if link is not None and stage not in visiting:
        if link.warehouse is not None:
            result = link.warehouse
        else:
            visiting.add(stage)
            for upstream in link.stages:
                if upstream is not None and upstream in links:
                    result = _feeding_warehouse(upstream, links, memo, visiting)
                    if result is not None:
                        break
            visiting.discard(stage)
    memo[stage] = result
    return result


def _mixed_warehouse_problems(
    warehouses: Sequence[str], links: Mapping[str, StageLinks]
) -> list[GraphProblem]:
    problems = []
    memo: dict[str, str | None] = {}
    for stage, link in links.items():
        fed = {
            upstream: _feeding_warehouse(upstream, links, memo, {stage})
            for upstream in link.stages
            if upstream is not None and upstream in links and upstream != stage
        }
        known = {u: w for u, w in fed.items() if w is not None and w in warehouses}
        if len(set(known.values())) > 1:
            pairs = ", ".join(f"{u}: {w}" for u, w in known.items())
            problems.append(
                GraphProblem(("stages", stage, "from", "stages"), MIXED_WAREHOUSES.format(pairs=pairs))
            )
    return problems


def links_of(config: PipelineConfig) -> dict[str, StageLinks]:
    """The links of a validated config, in config order."""
    from bot.core.config import WarehouseSource  # noqa: PLC0415 - config imports this module

    return {
        name: StageLinks(warehouse=stage.source.warehouse)
        if isinstance(stage.source, WarehouseSource)
        else StageLinks(stages=tuple(stage.source.stages))
        for name, stage in config.stages.items()
    }


def _require(config: PipelineConfig, stage: str) -> None:
    if stage not in config.stages:
        known = ", ".join(config.stages)
        raise KeyError(f'unknown stage "{stage}"{did_you_mean(stage, list(config.stages))}; stages: {known}')


def stage_order(config: PipelineConfig) -> list[str]:
    """Every stage after the stages it draws from; among equals, config order (Kahn's algorithm)."""
    edges = _edges(links_of(config))
    order: list[str] = []
    placed: set[str] = set()
    remaining = list(config.stages)
    while remaining:
        ready = next((s for s in remaining if all(u in placed for u in edges[s])), None)
        if ready is None:  # unreachable for a validated config; keep going rather than loop forever
            ready = remaining[0]
        order.append(ready)
        placed.add(ready)
        remaining.remove(ready)
    return order


def upstream_stages(config: PipelineConfig, stage: str) -> list[str]:
    """The stages ``stage`` draws from directly, as listed; empty for a stage fed by a warehouse."""
    _require(config, stage)
    return list(links_of(config)[stage].stages)  # type: ignore[arg-type]


def downstream_stages(config: PipelineConfig, stage: str) -> list[str]:
    """The stages that draw from ``stage`` directly, in config order."""
    _require(config, stage)
    return [name for name, link in links_of(config).items() if stage in link.stages]


def warehouse_of(config: PipelineConfig, stage: str) -> str:
    """The warehouse that ultimately feeds ``stage`` (through its upstream stages)."""
    _require(config, stage)
    found = _feeding_warehouse(stage, links_of(config), {}, set())
    if found is None:  # a validated config always has one
        raise KeyError(f'stage "{stage}" is not fed by any warehouse')
    return found
