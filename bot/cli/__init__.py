"""Ferry's command line: ``ferry <command>``.

Each command family lives in its own module exposing ``register(subparsers)``; the handler it
sets returns the process exit code. Errors that Ferry reports to a person (``FerryError``) are
printed on stderr with exit code 1, never as a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from bot import __version__
from bot.errors import FerryError

# Order is the order of `ferry --help`.
COMMAND_MODULES = (
    "bot.cli.sandbox",
    "bot.cli.serve",
    "bot.cli.validate",
    "bot.cli.bump",
    "bot.cli.select",
    "bot.cli.plan",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Promote container images through environments with pull requests.",
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                continue  # a command family not built yet
            raise
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(handler(args))
    except FerryError as exc:
        print(f"ferry: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
