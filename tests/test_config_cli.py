"""`ferry validate` and `ferry schema` as a person runs them: output and exit codes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "config" / "example"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "configs"


def test_validate_accepts_the_example_repository_and_summarises_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert capsys.readouterr().out == (
        "ok: .github/ferry.yml: 1 warehouse, 3 stages (dev <- shop, staging <- dev, prod <- staging)\n"
    )


def test_validate_defaults_to_the_current_directory(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(EXAMPLE)
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("ok: .github/ferry.yml: ")


def test_validate_accepts_a_config_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "valid-minimal.yml"
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out == f"ok: {path}: 1 warehouse, 1 stage (dev <- web)\n"


def test_validate_prints_every_problem_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    path = FIXTURES / "many-problems.yml"
    assert main(["validate", str(path)]) == 1
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert len(lines) == 6
    assert lines[0].startswith(f"{path}:5:15: warehouses.web.interval: expected a duration")
    assert lines[2] == (
        f"{path}:11:23: stages.dev.from.warehouse: "
        'unknown warehouse "wbe" (did you mean "web"?); warehouses: web'
    )
    assert captured.err == f"ferry: 6 problems in {path}\n"


def test_validate_json_lists_problems_as_objects(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(FIXTURES / "many-problems.yml")]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert problems[3] == {
        "file": str(FIXTURES / "many-problems.yml"),
        "line": 12,
        "column": 5,
        "field": "stages.dev.auto_promte",
        "message": 'unknown key "auto_promte" (did you mean "auto_promote"?)',
    }


def test_validate_json_of_a_valid_config_is_an_empty_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", "--json", str(EXAMPLE)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_validate_of_a_repository_checks_the_update_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    (repo / "charts" / "web" / "values-prod.yaml").unlink()
    assert main(["validate", str(repo)]) == 1
    assert capsys.readouterr().out == (
        ".github/ferry.yml:37:15: stages.prod.update[0].helm: "
        "charts/web/values-prod.yaml does not exist in the repository\n"
    )


def test_validate_of_a_config_file_inside_a_repository_also_checks_targets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLE, repo)
    shutil.rmtree(repo / "overlays" / "dev")
    config = repo / ".github" / "ferry.yml"
    assert main(["validate", str(config)]) == 1
    assert (
        "stages.dev.update[0].kustomize: overlays/dev holds no kustomization file" in capsys.readouterr().out
    )


def test_validate_of_a_directory_without_config_says_what_to_pass(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["validate", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        f"ferry: {tmp_path} holds no .github/ferry.yml; "
        "pass the config file, or the repository directory that holds it\n"
    )


def test_validate_of_a_missing_path_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(tmp_path / "nope.yml")]) == 1
    assert "does not exist" in capsys.readouterr().err


def test_schema_prints_the_committed_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema"]) == 0
    assert capsys.readouterr().out == (REPO_ROOT / "config" / "ferry.schema.json").read_text()


def test_schema_markdown_prints_the_committed_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schema", "--markdown"]) == 0
    assert capsys.readouterr().out == (REPO_ROOT / "docs" / "config.md").read_text()
