"""Each command imports only what it runs: the offline commands never load the GitHub client, the web
server, the sandbox or (unless they ask a registry) the HTTP client. Measured the way a person would,
with ``python -X importtime -m bot ...`` in a fresh process."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli import COMMANDS
from bot.cli.select import REGISTRIES_VARIABLE
from bot.settings import ENV_PREFIX

ROOT = Path(__file__).resolve().parent.parent
VALUES = ROOT / "tests" / "fixtures" / "manifests" / "large-values.yaml"
NEVER_OFFLINE = ("githubkit", "aiohttp", "bot.sandbox", "bot.github", "bot.server", "httpx")


def imported_modules(*args: str, stdin: str = "") -> set[str]:
    result = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "bot", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    return {m.group(1) for m in re.finditer(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", result.stderr, re.M)}


@pytest.mark.parametrize(
    ("args", "stdin"),
    [
        (("--help",), ""),
        (("bump", str(VALUES), "ghcr.io/acme/svc056=9.9.9", "--stdout"), ""),
        (("images", str(VALUES)), ""),
        (("select", "--semver", ">=1.0.0 <2.0.0"), "1.0.0\n1.4.2\n2.0.0\n"),
        (("validate", "config/example"), ""),
        (("schema",), ""),
    ],
    ids=["--help", "bump", "images", "select from stdin", "validate", "schema"],
)
def test_offline_commands_load_no_github_client_web_server_sandbox_or_http_client(
    args: tuple[str, ...], stdin: str
) -> None:
    modules = imported_modules(*args, stdin=stdin)
    loaded = sorted(m for m in modules if m.startswith(NEVER_OFFLINE))
    assert loaded == []
    assert "bot" in modules  # the measurement did see the imports


def test_help_lists_every_command_with_its_one_line_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    text = " ".join(result.stdout.split())
    for name, (_module, help_text) in COMMANDS.items():
        assert f"{name} {help_text}" in text


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_still_has_its_full_options_when_it_is_the_one_run(name: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot", name, "--help"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: ferry {name}")
    assert "options:" in result.stdout


def test_the_registries_variable_is_the_apps_own_setting_name() -> None:
    assert f"{ENV_PREFIX}REGISTRIES" == REGISTRIES_VARIABLE
