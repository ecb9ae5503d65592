"""Reading ``.github/ferry.yml``: YAML text in, a ``PipelineConfig`` out, or every problem at once.

The text is parsed with ruamel.yaml's round-trip loader, which remembers where each key and value
sits; pydantic's error locations are walked back through that tree so each ``Problem`` names the
file, line and column (1-based), the dotted field and what was expected. Graph checks run on the
raw tree so they are reported even when other parts of the file are wrong. When the repository's
files are at hand, the update targets are checked too. Pure: the caller reads the files.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from bot.core.config import CONFIG_PATH, SKIP_GRAPH_CHECK, UNION_TAGS, PipelineConfig
from bot.core.config_targets import target_path, target_problems, update_target_paths
from bot.core.pipeline import Path, StageLinks, graph_problems
from bot.errors import ConfigError, Problem

__all__ = ["CONFIG_PATH", "load_config", "locate", "target_path", "update_target_paths"]

EXTENSION_PREFIX = "x-"
EMPTY_CONFIG = "the config is empty; start with version: 1, warehouses: and stages:"
YAML_SYNTAX = "YAML syntax error: {problem}{hint}"
TAB_PROBLEM = "a tab character"
TAB_HINT = "; indent with spaces, not tabs"
INDENT_PROBLEM = "this line's indentation does not fit the block it is in"
INDENT_HINT = "; align it with the keys it belongs with, using spaces"
UNKNOWN_KEY = 'unknown key "{key}"{hint}'
ALLOWED_KEYS = "; allowed here: {keys}"
MISSING_KEY = 'required key "{key}" is missing{hint}'
MISSING_HINTS = {
    "version": ": add version: 1",
    "from": ": add from: {warehouse: <name>} or from: {stages: [<name>, ...]}",
    "image": ": name the repository, e.g. image: ghcr.io/acme/web",
}
NOTHING_TO_UPDATE = (
    'stage "{stage}" updates nothing: list at least one file under update '
    "({{kustomize: <dir>}}, {{helm: <values file>}} or {{yaml: <file>, path: <dotted path>}})"
)
EXPECTED = {
    "string_type": "expected a string, got {got}",
    "bool_type": "expected true or false, got {got}",
    "bool_parsing": "expected true or false, got {got}",
    "int_type": "expected a whole number, got {got}",
    "int_parsing": "expected a whole number, got {got}",
    "list_type": "expected a list, got {got}",
    "dict_type": "expected a mapping, got {got}",
    "model_type": "expected a mapping, got {got}",
    "model_attributes_type": "expected a mapping, got {got}",
}


def _describe(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f'"{value}"'
    return repr(value)


def _parse(text: str, source: str) -> Any:
    yaml = YAML(typ="rt", pure=True)
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = (exc.problem or exc.context or "malformed YAML").removeprefix("found ")
        hint = ""
        if "\t" in problem or "\\t" in problem:  # ruamel spells the tab as an escape
            problem, hint = TAB_PROBLEM, TAB_HINT
        elif problem.startswith("expected <block end>"):
            problem, hint = INDENT_PROBLEM, INDENT_HINT
        line, column = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise ConfigError(
            [Problem(source, line, column, "", YAML_SYNTAX.format(problem=problem, hint=hint))]
        ) from None
    except YAMLError as exc:
        raise ConfigError([Problem(source, 0, 0, "", YAML_SYNTAX.format(problem=exc, hint=""))]) from None


def _plain(node: Any) -> Any:
    """The round-trip tree as plain dicts, lists and scalars, so pydantic sees ordinary types."""
    if isinstance(node, dict):
        return {_plain(k): _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    if type(node).__name__ == "ScalarBoolean":
        return bool(node)
    for base in (bool, int, float, str):
        if isinstance(node, base):
            return base(node)
    return node


def _owner(node: CommentedMap, key: Any) -> CommentedMap:
    """The mapping that spells ``key`` out: ``node`` itself, or one merged in with ``<<: *anchor``."""
    if key in node.lc.data:
        return node
    for merged in getattr(node, "merge", None) or ():
        mapping = merged[1] if isinstance(merged, tuple) else merged
        if isinstance(mapping, CommentedMap) and key in mapping:
            return _owner(mapping, key)
    return node


def locate(tree: Any, path: Path, *, at_key: bool = False) -> tuple[int, int]:
    """1-based (line, column) of ``path`` in a round-trip tree: the value, or its key with ``at_key``.

    A path that leaves the tree (a missing key) points at the key of the deepest mapping found.
    """
    position = (tree.lc.line, tree.lc.col) if isinstance(tree, CommentedMap | CommentedSeq) else (0, 0)
    key_position = position
    node = tree
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            owner = _owner(node, part)
            key_position = owner.lc.key(part)
            child = owner[part]
            position = key_position if child is None else owner.lc.value(part)
            node = child
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            position = key_position = node.lc.item(part)
            node = node[part]
        else:
            return key_position[0] + 1, key_position[1] + 1
    chosen = key_position if at_key else position
    return chosen[0] + 1, chosen[1] + 1


def field_name(path: Path) -> str:
    """``("stages", "prod", "update", 0, "helm")`` -> ``stages.prod.update[0].helm``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _strip(annotation: Any) -> Any:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation


def _allowed_keys(path: Path) -> list[str]:
    """The keys the model at ``path`` accepts (aliases), or [] when it is not a model."""
    annotation: Any = PipelineConfig
    for part in path:
        if isinstance(part, str) and part in UNION_TAGS:
            annotation = UNION_TAGS[part]
            continue
        annotation = _strip(annotation)
        origin = typing.get_origin(annotation)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            fields = {f.alias or name: f for name, f in annotation.model_fields.items()}
            if part not in fields:
                return []
            annotation = fields[part].annotation
        elif origin is dict:
            annotation = typing.get_args(annotation)[1]
        elif origin is list:
            annotation = typing.get_args(annotation)[0]
        else:
            return []
    annotation = _strip(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [f.alias or name for name, f in annotation.model_fields.items()]
    return []


def _suggestion(loc: Path) -> tuple[list[str], str | None]:
    """For an unknown key at ``loc`` (pydantic's, union tags included): the allowed keys, the closest."""
    allowed = _allowed_keys(loc[:-1])
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
    return allowed, close[0] if close else None


def _message(error: ErrorDetails, path: Path) -> str:
    kind, got = error["type"], error.get("input")
    ctx = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(path[-1])
        allowed, close = _suggestion(tuple(error["loc"]))
        hint = f' (did you mean "{close}"?)' if close else ALLOWED_KEYS.format(keys=", ".join(allowed))
        return UNKNOWN_KEY.format(key=key, hint=hint if allowed else "")
    if kind == "missing":
        if path[-1] == "update" and len(path) == 3:
            return NOTHING_TO_UPDATE.format(stage=path[1])
        return MISSING_KEY.format(key=path[-1], hint=MISSING_HINTS.get(str(path[-1]), ""))
    if kind == "too_short":
        if path[-1] == "update" and len(path) == 3:
            return NOTHING_TO_UPDATE.format(stage=path[1])
        unit = "entry" if isinstance(got, dict) else "item"
        return f"expected at least {ctx.get('min_length', 1)} {unit}, got none"
    if kind in EXPECTED:
        return EXPECTED[kind].format(got=_describe(got))
    return str(error["msg"]).removeprefix("Value error, ")


def _validation_problems(exc: ValidationError, tree: Any, text: str, source: str) -> list[Problem]:
    problems: list[Problem] = []
    suggested: set[Path] = set()  # (parent..., key) pairs that an unknown key's suggestion explains
    entries = []
    for error in exc.errors():
        at_key = error["type"] == "extra_forbidden"
        path: Path = tuple(p for p in error["loc"] if not (isinstance(p, str) and p in UNION_TAGS))
        if path and path[-1] == "[key]":
            path, at_key = path[:-1], True
        ctx = error.get("ctx") or {}
        path = (*path, *ctx.get("at", ()))
        at_key = at_key or bool(ctx.get("at_key"))
        if error["type"] == "extra_forbidden":
            _, close = _suggestion(tuple(error["loc"]))
            if close:
                suggested.add((*path[:-1], close))
        entries.append((error, path, at_key, int(ctx.get("offset", 0))))
    lines = text.splitlines()
    for error, path, at_key, offset in entries:
        if error["type"] == "missing" and path in suggested:
            continue  # "unknown key autoPromote (did you mean auto_promote?)" already says it
        line, column = locate(tree, path, at_key=at_key)
        if offset:
            column += _scalar_offset(lines, line, column, error.get("input"), offset)
        problems.append(Problem(source, line, column, field_name(path), _message(error, path)))
    return problems


def _scalar_offset(lines: list[str], line: int, column: int, value: Any, offset: int) -> int:
    """Columns from a scalar's start to character ``offset`` of its value, when the text shows it plainly."""
    if not isinstance(value, str) or not 0 < line <= len(lines):
        return 0
    rest = lines[line - 1][column - 1 :]
    quote = 1 if rest[:1] in ("'", '"') else 0
    return offset + quote if rest[quote:].startswith(value) else 0


def _raw_links(tree: Any) -> tuple[list[str], dict[str, StageLinks]]:
    warehouses_node = tree.get("warehouses") if isinstance(tree, dict) else None
    stages_node = tree.get("stages") if isinstance(tree, dict) else None
    warehouses = [str(k) for k in warehouses_node] if isinstance(warehouses_node, dict) else None
    links: dict[str, StageLinks] = {}
    for name, stage in stages_node.items() if isinstance(stages_node, dict) else ():
        source = stage.get("from") if isinstance(stage, dict) else None
        source = source if isinstance(source, dict) else {}
        warehouse = source.get("warehouse")
        upstream = source.get("stages")
        links[str(name)] = StageLinks(
            warehouse=warehouse if isinstance(warehouse, str) and warehouses is not None else None,
            stages=tuple(s if isinstance(s, str) else None for s in upstream)
            if isinstance(upstream, list)
            else (),
        )
    return warehouses or [], links


def load_config(
    text: str, source: str = CONFIG_PATH, *, files: Mapping[str, str] | None = None
) -> PipelineConfig:
    """Validate the config text; raise ConfigError listing every problem, each located precisely.

    ``files`` (repo-relative path -> text), when given, are the repository's update targets: then each
    must exist, and together a stage's targets must hold every image of the warehouse feeding it.
    """
    tree = _parse(text, source)
    if tree is None:
        raise ConfigError([Problem(source, 1, 1, "", EMPTY_CONFIG)])
    data = _plain(tree)
    if isinstance(data, dict):  # top-level x-* keys hold YAML anchors for reuse, as in docker compose
        data = {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}
    problems: list[Problem] = []
    config: PipelineConfig | None = None
    try:
        config = PipelineConfig.model_validate(data, context={SKIP_GRAPH_CHECK: True})
    except ValidationError as exc:
        problems.extend(_validation_problems(exc, tree, text, source))
    warehouses, links = _raw_links(tree)
    for found in graph_problems(warehouses, links):
        line, column = locate(tree, found.path)
        problems.append(Problem(source, line, column, field_name(found.path), found.message))
    if problems or config is None:
        raise ConfigError(problems)
    if files is not None:
        for path, at_key, message in target_problems(config, files):
            line, column = locate(tree, path, at_key=at_key)
            problems.append(Problem(source, line, column, field_name(path), message))
        if problems:
            raise ConfigError(problems)
    return config
