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

# Every command, in the order of `ferry --help`: name -> (the module that registers and runs it, its
# one-line help). Only the module of the command being run is imported, so `ferry bump` loads the YAML
# editor and not the GitHub client, the web server or the sandbox; the other commands are listed by
# name and help alone. A module registers each command it names here, with the help given here.
COMMANDS: dict[str, tuple[str, str]] = {
    "sandbox": (
        "bot.cli.sandbox",
        "run Ferry end to end offline against GitHub, Argo CD and registry stand-ins",
    ),
    "serve": ("bot.cli.serve", "run the GitHub App (webhooks, reconcile loop, metrics)"),
    "validate": (
        "bot.cli.validate",
        "check a pipeline config (every problem at once, with file, line and column)",
    ),
    "schema": ("bot.cli.validate", "print the pipeline config's JSON Schema (for editors)"),
    "bump": (
        "bot.cli.bump",
        "set image tags in a kustomization, Helm values file or manifest, changing nothing else",
    ),
    "images": ("bot.cli.bump", "list the image references Ferry sees in a YAML file"),
    "select": (
        "bot.cli.select",
        "choose a tag as a warehouse would: from stdin (one per line) or from a registry (--image)",
    ),
    "freight": (
        "bot.cli.select",
        "show the newest freight of each warehouse of a pipeline config, from the registries",
    ),
    "plan": ("bot.cli.plan", "print what a reconcile pass would do for a repository, without doing it"),
    "app": ("bot.cli.app", "create Ferry's GitHub App from its manifest in one click, or print the manifest"),
    "doctor": (
        "bot.cli.doctor",
        "check one installation end to end: App permissions, config, stage files, Argo CD, registries",
    ),
    "stats": (
        "bot.cli.stats",
        "print each stage's delivery figures (DORA) from the ledger of GitHub Deployments",
    ),
}


def command_help(name: str) -> str:
    """The one-line help of a command, as `ferry --help` lists it."""
    return COMMANDS[name][1]


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line (top-level options take no values)."""
    return next((arg for arg in argv if not arg.startswith("-")), None)


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser for ``argv``: the chosen command's module registers it fully, the rest are listed."""
    parser = argparse.ArgumentParser(
        prog="ferry",
        description="Promote container images through environments with pull requests.",
    )
    parser.add_argument("--version", action="version", version=f"ferry {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="<command>")
    chosen = COMMANDS.get(_chosen(sys.argv[1:] if argv is None else argv) or "")
    for name, (module_name, help_text) in COMMANDS.items():
        if chosen is not None and module_name == chosen[0]:
            if name == _first_of(module_name):
                importlib.import_module(module_name).register(subparsers)
        else:
            subparsers.add_parser(name, help=help_text)
    return parser


def _first_of(module_name: str) -> str:
    return next(name for name, (module, _) in COMMANDS.items() if module == module_name)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser(argv)
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
