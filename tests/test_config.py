"""The config models themselves: defaults, Python construction, durations, the schema and the reference."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from bot.core.config import (
    SCHEMA_ID,
    ArgoCDTarget,
    ImageRule,
    KustomizeUpdate,
    PipelineConfig,
    Stage,
    StagesSource,
    Verify,
    Warehouse,
    WarehouseSource,
    json_schema,
)
from bot.core.config_docs import EXAMPLE, render_markdown
from bot.core.config_load import load_config
from bot.core.durations import DURATION_PATTERN, DurationError, format_duration, parse_duration

REPO_ROOT = Path(__file__).resolve().parent.parent


def web_warehouse() -> Warehouse:
    return Warehouse(images=[ImageRule(image="ghcr.io/acme/web", semver="^1.0.0")])


def stage(source: WarehouseSource | StagesSource) -> Stage:
    return Stage(source=source, update=[KustomizeUpdate(kustomize="overlays/x")])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2h", timedelta(hours=2)),
        ("0s", timedelta(0)),
        ("1h2m3s", timedelta(hours=1, minutes=2, seconds=3)),
    ],
)
def test_durations_parse_and_render_back(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected
    assert format_duration(expected) == text


@pytest.mark.parametrize("text", ["", "5", "5 m", "1m1h", "-5m", "1.5h", "5min", "h"])
def test_malformed_durations_are_refused_with_the_expected_form(text: str) -> None:
    with pytest.raises(DurationError, match="30s, 5m, 1h30m"):
        parse_duration(text)


def test_config_built_in_python_is_validated_like_yaml() -> None:
    with pytest.raises(ValidationError, match='unknown warehouse "wbe"'):
        PipelineConfig(
            version=1,
            warehouses={"web": web_warehouse()},
            stages={"dev": stage(WarehouseSource(warehouse="wbe"))},
        )


def test_config_dumps_with_yaml_key_names_and_readable_durations() -> None:
    config = PipelineConfig(
        version=1,
        warehouses={"web": web_warehouse()},
        stages={"dev": stage(WarehouseSource(warehouse="web"))},
    )
    dumped = config.model_dump(mode="json")
    assert dumped["stages"]["dev"]["from"] == {"warehouse": "web"}
    assert dumped["warehouses"]["web"]["interval"] == "5m"
    assert dumped["stages"]["dev"]["verify"] == {
        "timeout": "15m",
        "soak": "0s",
        "require_synced": False,
        "on_failure": "stop",
    }
    assert PipelineConfig.model_validate(dumped) == config


def test_image_rule_reports_its_rule_and_normalised_name() -> None:
    rule = ImageRule(image="nginx", digest="stable")
    assert rule.selection == "digest"
    assert rule.name == "docker.io/library/nginx"


def test_argocd_target_lists_its_app_names() -> None:
    assert ArgoCDTarget(app="web-dev").app_names == ["web-dev"]
    assert ArgoCDTarget(apps=["eu", "us"]).app_names == ["eu", "us"]
    assert ArgoCDTarget(app="x").server == "default"
    with pytest.raises(ValidationError, match="give app or apps, not both"):
        ArgoCDTarget(app="x", apps=["y"])


def test_models_are_frozen() -> None:
    verify = Verify()
    with pytest.raises(ValidationError):
        verify.soak = timedelta(minutes=1)  # type: ignore[misc]


def test_same_image_twice_in_a_warehouse_is_refused() -> None:
    with pytest.raises(ValidationError, match=re.escape('image "docker.io/nginx" is listed twice')):
        Warehouse(
            images=[ImageRule(image="nginx", lexical=True), ImageRule(image="docker.io/nginx", numeric=True)]
        )


def _properties(schema: Any) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for name, definition in [("<root>", schema), *schema["$defs"].items()]:
        found += [(f"{name}.{key}", prop) for key, prop in definition.get("properties", {}).items()]
    return found


def test_schema_describes_every_field_and_names_itself() -> None:
    schema = json_schema()
    assert schema["$id"] == SCHEMA_ID and schema["title"].startswith("Ferry pipeline config")
    undescribed = [name for name, prop in _properties(schema) if not prop.get("description")]
    assert undescribed == []
    assert "from" in schema["$defs"]["Stage"]["properties"]
    assert schema["$defs"]["Stage"]["additionalProperties"] is False


def test_schema_shows_durations_as_strings_with_a_pattern() -> None:
    timeout = json_schema()["$defs"]["Verify"]["properties"]["timeout"]
    assert timeout["type"] == "string"
    assert timeout["pattern"] == DURATION_PATTERN
    assert timeout["default"] == "15m"


def test_committed_schema_is_current() -> None:
    committed = (REPO_ROOT / "config" / "ferry.schema.json").read_text()
    assert committed == json.dumps(json_schema(), indent=2) + "\n", (
        "run: ferry schema > config/ferry.schema.json"
    )


def test_committed_config_reference_is_current() -> None:
    committed = (REPO_ROOT / "docs" / "config.md").read_text()
    assert committed == render_markdown(), "run: ferry schema --markdown > docs/config.md"


def test_reference_documents_every_key() -> None:
    reference = render_markdown()
    for key in (
        "`from`",
        "`auto_promote`",
        "`kustomize`",
        "`repository`",
        "`soak`",
        "`prerelease`",
        "`apps`",
    ):
        assert f"| {key} |" in reference


def test_reference_example_is_a_valid_config() -> None:
    assert list(load_config(EXAMPLE).stages) == ["dev", "staging", "prod"]
