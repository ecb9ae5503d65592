"""``ferry validate [PATH]`` checks a pipeline config; ``ferry schema`` prints its JSON Schema or reference.

``validate`` reads a config file, or a repository directory holding ``.github/ferry.yml``; with the
repository at hand it also reads the update targets so the config is checked against them.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from bot.cli import command_help
from bot.core.config import CONFIG_PATH, PipelineConfig, StagesSource, json_schema
from bot.core.config_docs import render_markdown
from bot.core.config_load import load_config, update_target_paths
from bot.core.pipeline import stage_order
from bot.errors import ConfigError, FerryError

VALIDATE_HELP = command_help("validate")
VALIDATE_PATH_HELP = f"a config file, or a repository directory holding {CONFIG_PATH} (default: .)"
JSON_HELP = "print the problems as a JSON list of {file, line, column, field, message}"
SCHEMA_HELP = command_help("schema")
MARKDOWN_HELP = "print the config reference as Markdown instead (docs/config.md)"
NO_CONFIG = "{root} holds no {config}; pass the config file, or the repository directory that holds it"
NO_SUCH_PATH = "{path} does not exist; pass a config file or a repository directory"
NOT_TEXT = "{path} is not UTF-8 text: {error}"
VALID = "ok: {source}: {warehouses}, {stages} ({order})"
NOT_IN_REPOSITORY = (
    "note: the files the stages update were not checked: {source} is not at <repository>/{config}; "
    "to check them too, run `ferry validate` at the repository root or pass the repository directory"
)
INVALID = "ferry: {count} in {source}"


def register(subparsers: Any) -> None:
    validate = subparsers.add_parser("validate", help=VALIDATE_HELP, description=VALIDATE_HELP)
    validate.add_argument("path", nargs="?", default=".", help=VALIDATE_PATH_HELP)
    validate.add_argument("--json", action="store_true", help=JSON_HELP)
    validate.set_defaults(handler=run_validate)
    schema = subparsers.add_parser("schema", help=SCHEMA_HELP, description=SCHEMA_HELP)
    schema.add_argument("--markdown", action="store_true", help=MARKDOWN_HELP)
    schema.set_defaults(handler=run_schema)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def _locate_config(path: Path) -> tuple[Path, str, Path | None]:
    """(config file, name to show in problems, repository root or None)."""
    if path.is_dir():
        config_file = path / CONFIG_PATH
        if not config_file.is_file():
            raise FerryError(NO_CONFIG.format(root=path, config=CONFIG_PATH))
        return config_file, CONFIG_PATH, path
    if not path.is_file():
        raise FerryError(NO_SUCH_PATH.format(path=path))
    resolved = path.resolve()
    # A config file at <repo>/.github/ferry.yml still has its repository at hand.
    in_repo = (
        resolved.name == Path(CONFIG_PATH).name and resolved.parent.name == Path(CONFIG_PATH).parent.name
    )
    return path, str(path), resolved.parent.parent if in_repo else None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FerryError(NOT_TEXT.format(path=path, error=exc)) from None


def read_update_targets(root: Path, config: PipelineConfig) -> dict[str, str]:
    """{repo-relative path: text} of every update target that exists inside ``root``."""
    base = root.resolve()

    def inside(relative: str) -> Path | None:
        candidate = (base / relative).resolve()
        return candidate if candidate.is_relative_to(base) and candidate.is_file() else None

    files: dict[str, str] = {}
    for paths in update_target_paths(config, lambda p: inside(p) is not None).values():
        for relative in paths:
            found = inside(relative)
            if found is not None and relative not in files:
                files[relative] = found.read_text(encoding="utf-8", errors="replace")
    return files


def summary(config: PipelineConfig, source: str) -> str:
    """``ok: .github/ferry.yml: 1 warehouse, 3 stages (dev <- web, staging <- dev, prod <- staging)``."""
    order = []
    for name in stage_order(config):
        src = config.stages[name].source
        origin = "+".join(src.stages) if isinstance(src, StagesSource) else src.warehouse
        order.append(f"{name} <- {origin}")
    return VALID.format(
        source=source,
        warehouses=_plural(len(config.warehouses), "warehouse"),
        stages=_plural(len(config.stages), "stage"),
        order=", ".join(order),
    )


def run_validate(args: argparse.Namespace) -> int:
    config_file, source, root = _locate_config(Path(args.path))
    text = _read(config_file)
    try:
        config = load_config(text, source)
        if root is not None:
            config = load_config(text, source, files=read_update_targets(root, config))
    except ConfigError as exc:
        if args.json:
            print(json.dumps([dataclasses.asdict(p) for p in exc.problems], indent=2))
        else:
            for problem in exc.problems:
                print(problem)
            print(INVALID.format(count=_plural(len(exc.problems), "problem"), source=source), file=sys.stderr)
        return 1
    print("[]" if args.json else summary(config, source))
    if root is None:
        print(NOT_IN_REPOSITORY.format(source=source, config=CONFIG_PATH), file=sys.stderr)
    return 0


def run_schema(args: argparse.Namespace) -> int:
    if args.markdown:
        sys.stdout.write(render_markdown())
    else:
        print(json.dumps(json_schema(), indent=2))
    return 0
