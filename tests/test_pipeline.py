"""The stage graph: order, neighbours and the warehouse that feeds each stage."""

from __future__ import annotations

import pytest

from bot.core.config import PipelineConfig
from bot.core.config_load import load_config
from bot.core.pipeline import (
    StageLinks,
    downstream_stages,
    find_cycles,
    graph_problems,
    stage_order,
    upstream_stages,
    warehouse_of,
)

# prod is listed first on purpose: order follows the graph, then the file.
DIAMOND = """\
version: 1
warehouses:
  web:
    images: [{image: ghcr.io/acme/web, semver: "^1"}]
  api:
    images: [{image: ghcr.io/acme/api, lexical: true}]
stages:
  prod:
    from: {stages: [staging, perf]}
    update: [{helm: prod.yaml}]
  staging:
    from: {stages: [dev]}
    update: [{kustomize: overlays/staging}]
  perf:
    from: {stages: [dev]}
    update: [{kustomize: overlays/perf}]
  dev:
    from: {warehouse: web}
    update: [{kustomize: overlays/dev}]
  api-dev:
    from: {warehouse: api}
    update: [{kustomize: overlays/api-dev}]
"""


@pytest.fixture
def diamond() -> PipelineConfig:
    return load_config(DIAMOND)


def test_stage_order_puts_each_stage_after_its_sources_and_keeps_file_order_among_equals(
    diamond: PipelineConfig,
) -> None:
    assert stage_order(diamond) == ["dev", "staging", "perf", "prod", "api-dev"]


def test_upstream_stages_are_the_direct_sources_as_listed(diamond: PipelineConfig) -> None:
    assert upstream_stages(diamond, "prod") == ["staging", "perf"]
    assert upstream_stages(diamond, "dev") == []


def test_downstream_stages_are_the_direct_consumers_in_file_order(diamond: PipelineConfig) -> None:
    assert downstream_stages(diamond, "dev") == ["staging", "perf"]
    assert downstream_stages(diamond, "prod") == []


def test_warehouse_of_follows_the_chain_to_its_warehouse(diamond: PipelineConfig) -> None:
    assert warehouse_of(diamond, "prod") == "web"
    assert warehouse_of(diamond, "api-dev") == "api"


def test_asking_about_an_unknown_stage_names_the_close_one(diamond: PipelineConfig) -> None:
    with pytest.raises(KeyError, match='unknown stage "prd" \\(did you mean "prod"\\?\\)'):
        upstream_stages(diamond, "prd")


def test_find_cycles_reports_each_cycle_once() -> None:
    edges = {"a": ["b"], "b": ["c"], "c": ["a"], "d": ["d"], "e": []}
    assert find_cycles(edges) == [["a", "b", "c", "a"], ["d", "d"]]


def test_graph_problems_are_all_reported_together() -> None:
    links = {
        "dev": StageLinks(warehouse="wbe"),
        "staging": StageLinks(stages=("prod",)),
        "prod": StageLinks(stages=("staging", "qa")),
    }
    messages = [p.message for p in graph_problems(["web"], links)]
    assert messages[0].startswith('unknown warehouse "wbe"')
    assert messages[1].startswith('unknown stage "qa"')
    assert "cycle: staging <- prod <- staging" in messages[2]
    assert len(messages) == 3
