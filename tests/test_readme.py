"""The README's references are generated: they cannot drift from the code that parses and validates."""

from __future__ import annotations

import re
from pathlib import Path

from bot.commands import render_reference

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_command_reference_is_the_table_that_answers_help() -> None:
    text = README.read_text()
    found = re.search(r"<!-- commands:start[^>]*-->\n(.*?)<!-- commands:end -->", text, re.S)
    assert found, "README.md lacks the generated comment-command reference"
    assert found.group(1) == render_reference(), "regenerate the README's command reference"


def test_readme_first_command_installs_and_runs_the_sandbox() -> None:
    commands = re.search(r"```sh\n(.*?)```", README.read_text(), re.S)
    assert commands is not None
    first, second = commands.group(1).strip().splitlines()
    assert first.endswith("ferry sandbox") and "pip install" in first
    assert "pytest" in second
