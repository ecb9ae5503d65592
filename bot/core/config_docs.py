"""The config reference (``docs/config.md``), generated from the pipeline config models.

The models' docstrings and field descriptions are the single source: ``render_markdown()`` turns
them into one table per model. ``ferry schema --markdown`` prints it; a test keeps the committed
file current.
"""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from bot.core.config import (
    CONFIG_PATH,
    ArgoCDTarget,
    DottedPath,
    HelmUpdate,
    ImageRule,
    KustomizeUpdate,
    Name,
    PipelineConfig,
    Promoter,
    Regex,
    RepoPath,
    Stage,
    StagesSource,
    Verify,
    Warehouse,
    WarehouseSource,
    YamlUpdate,
)
from bot.core.durations import DURATION_EXAMPLES, Duration, format_duration

TITLE = "# Pipeline config reference (`.github/ferry.yml`)"
GENERATED_NOTE = (
    "<!-- Generated from bot/core/config.py by `ferry schema --markdown`; do not edit by hand. -->"
)
INTRO = (
    f"Ferry reads its pipeline from `{CONFIG_PATH}` on the default branch of the GitOps repository. "
    "`ferry validate` checks it (every problem at once, with file, line and column); "
    "`ferry schema` prints its JSON Schema for editors (also committed as `config/ferry.schema.json`)."
)
EXAMPLE = """\
version: 1
warehouses:
  shop:
    images:
      - image: ghcr.io/acme/web
        semver: ">=1.0.0 <2.0.0"
        ignore: ['-rc\\.']
      - image: ghcr.io/acme/worker
        semver: ">=1.0.0 <2.0.0"
stages:
  dev:
    from: {warehouse: shop}
    auto_promote: true
    auto_merge: true
    update:
      - kustomize: overlays/dev
    argocd: {app: shop-dev}
  staging:
    from: {stages: [dev]}
    update:
      - kustomize: overlays/staging
    argocd: {app: shop-staging}
    verify: {timeout: 15m, soak: 10m}
  prod:
    from: {stages: [staging]}
    update:
      - helm: charts/web/values-prod.yaml
    argocd: {apps: [shop-prod-eu, shop-prod-us]}
    promoters: ["@acme/release-managers"]
"""
RULES = (
    "Unknown keys are errors (with a suggestion for a misspelt one). Top-level keys starting with `x-` "
    "are ignored: use them to hold YAML anchors (`&defaults`) that stages merge in (`<<: *defaults`).",
    "Each image names a repository without tag or digest, and exactly one selection rule.",
    "`semver` ranges, `allow` and `ignore` regexes and durations must parse.",
    "Each stage takes freight from one source: a warehouse, or upstream stages that exist, "
    "are fed by the same warehouse and form no cycle.",
    "Each stage updates at least one file; paths are relative and stay inside the repository.",
    "An `argocd` block names `app` or `apps`.",
    "With the repository at hand (`ferry validate <dir>`), every update target exists, holds an image "
    "of the stage's warehouse, and together a stage's targets hold every image of that warehouse.",
)
DURATION_NOTE = "Durations are written like " + ", ".join(f"`{d}`" for d in DURATION_EXAMPLES) + "."

# (model, where it sits in the file), in reading order.
SECTIONS: tuple[tuple[type[BaseModel], str], ...] = (
    (PipelineConfig, ""),
    (Warehouse, "warehouses.<name>"),
    (ImageRule, "warehouses.<name>.images[]"),
    (Stage, "stages.<name>"),
    (WarehouseSource, "stages.<name>.from"),
    (StagesSource, "stages.<name>.from"),
    (KustomizeUpdate, "stages.<name>.update[]"),
    (HelmUpdate, "stages.<name>.update[]"),
    (YamlUpdate, "stages.<name>.update[]"),
    (ArgoCDTarget, "stages.<name>.argocd"),
    (Verify, "stages.<name>.verify"),
)
_NAMED_TYPES: tuple[tuple[Any, str], ...] = (
    (Duration, "duration"),
    (Regex, "regex"),
    (RepoPath, "path"),
    (DottedPath, "dotted path"),
    (Promoter, "login or `@org/team`"),
    (Name, "name"),
)


def _link(model: type[BaseModel]) -> str:
    return f"[{model.__name__}](#{model.__name__.lower()})"


def type_name(annotation: Any) -> str:
    """A reader's name for a field type: ``list of regex``, ``map of name → [Stage](#stage)``."""
    for alias, name in _NAMED_TYPES:
        if annotation == alias:
            return name
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin in (typing.Union, types.UnionType):
        names = [type_name(a) for a in args if a is not type(None)]
        return " or ".join(names)
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return f"map of {type_name(args[0])} → {type_name(args[1])}"
    if origin is typing.Literal:
        return " or ".join(f"`{a}`" for a in args)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _link(annotation)
    simple = {str: "string", bool: "bool", int: "integer", timedelta: "duration"}
    return simple.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        made = field.default_factory()  # type: ignore[call-arg]
        return f"see {_link(type(made))}" if isinstance(made, BaseModel) else f"`{made}`"
    value = field.default
    if value is None or value is PydanticUndefined:
        return "—"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, timedelta):
        return f"`{format_duration(value)}`"
    return f"`{value}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section(model: type[BaseModel], where: str) -> list[str]:
    doc = " ".join((model.__doc__ or "").split())
    place = f"At `{where}`." if where else "The top level of the file."
    lines = [f"## {model.__name__}", "", f"{place} {doc}", ""]
    lines += ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        key = field.alias or name
        annotation = Annotated[field.annotation, *field.metadata] if field.metadata else field.annotation
        row = (f"`{key}`", type_name(annotation), _default(field), field.description or "")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return [*lines, ""]


def render_markdown() -> str:
    """The whole reference as Markdown, ending in one newline."""
    lines = [TITLE, "", GENERATED_NOTE, "", INTRO, "", "```yaml", *EXAMPLE.splitlines(), "```", ""]
    lines += ["## Rules", "", *(f"- {rule}" for rule in RULES), f"- {DURATION_NOTE}", ""]
    for model, where in SECTIONS:
        lines += _section(model, where)
    return "\n".join(lines).rstrip("\n") + "\n"
