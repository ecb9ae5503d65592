"""``ferry bump`` and ``ferry images`` through ``bot.cli.main``: exit codes, output, atomic writes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bot.cli import main
from bot.cli.bump import parse_update
from bot.core.manifest import ImageUpdate
from bot.errors import InvalidReferenceError

DIGEST = "sha256:" + "c3" * 32
KUSTOMIZATION = (
    "apiVersion: kustomize.config.k8s.io/v1beta1\r\n"
    "kind: Kustomization\r\n"
    "images:\r\n"
    "  - name: ghcr.io/acme/web  # front end\r\n"
    "    newTag: 1.0.0\r\n"
    "  - name: localhost:5000/api\r\n"
    "    newTag: '2.0'"
)


@pytest.fixture
def kustomization(tmp_path: Path) -> Path:
    path = tmp_path / "kustomization.yaml"
    path.write_bytes(KUSTOMIZATION.encode())
    path.chmod(0o640)
    return path


def test_bump_writes_the_file_and_reports_each_change_on_stderr(
    kustomization: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bump", str(kustomization), "ghcr.io/acme/web=1.1.0", "localhost:5000/api=2.1"]) == 0
    assert kustomization.read_bytes() == (
        KUSTOMIZATION.replace("newTag: 1.0.0", "newTag: 1.1.0").replace("'2.0'", "'2.1'").encode()
    )
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"{kustomization}:5: ghcr.io/acme/web 1.0.0 -> 1.1.0",
        f"{kustomization}:7: localhost:5000/api 2.0 -> 2.1",
    ]


def test_bump_keeps_the_file_mode_and_leaves_no_temporary_file(kustomization: Path) -> None:
    assert main(["bump", str(kustomization), "ghcr.io/acme/web=1.1.0"]) == 0
    assert stat.S_IMODE(kustomization.stat().st_mode) == 0o640
    assert os.listdir(kustomization.parent) == ["kustomization.yaml"]


def test_bump_replaces_the_file_in_one_step(kustomization: Path) -> None:
    before = kustomization.stat().st_ino
    assert main(["bump", str(kustomization), "ghcr.io/acme/web=1.1.0"]) == 0
    assert kustomization.stat().st_ino != before  # a new file was renamed over the old one


def test_bump_through_a_symlink_updates_the_target(kustomization: Path) -> None:
    link = kustomization.parent / "link.yaml"
    link.symlink_to(kustomization.name)
    assert main(["bump", str(link), "ghcr.io/acme/web=1.1.0"]) == 0
    assert link.is_symlink()
    assert b"newTag: 1.1.0" in kustomization.read_bytes()


def test_bump_to_stdout_leaves_the_file_untouched(
    kustomization: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bump", str(kustomization), "ghcr.io/acme/web=1.1.0", "--stdout"]) == 0
    assert kustomization.read_bytes() == KUSTOMIZATION.encode()
    captured = capsys.readouterr()
    assert captured.out == KUSTOMIZATION.replace("newTag: 1.0.0", "newTag: 1.1.0")
    assert captured.err == f"{kustomization}:5: ghcr.io/acme/web 1.0.0 -> 1.1.0\n"


def test_bump_to_the_current_tag_says_so_and_does_not_write(
    kustomization: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = kustomization.stat().st_ino
    assert main(["bump", str(kustomization), "ghcr.io/acme/web=1.0.0"]) == 0
    assert kustomization.stat().st_ino == before
    assert "ghcr.io/acme/web is already at 1.0.0; nothing to change" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["ghcr.io/acme/worker=1.0"],
            'image "ghcr.io/acme/worker" is not in this file; it holds ghcr.io/acme/web',
        ),
        (["ghcr.io/acme/web=-1"], 'tag "-1" is malformed'),
        (["ghcr.io/acme/web=1.0@sha256:abc"], 'digest "sha256:abc" is malformed'),
        (["ghcr.io/acme/web"], '"ghcr.io/acme/web" is not IMAGE=TAG[@sha256:DIGEST]'),
        (["ghcr.io/acme/web=1.1.0", "ghcr.io/acme/nope=1"], 'image "ghcr.io/acme/nope" is not in this file'),
        (
            ["ghcr.io/acme/web=1.1.0", "--helm-tag", "a.b", "--path", "c"],
            "either the --helm-* paths or --path",
        ),
    ],
)
def test_bump_error_exits_1_with_a_message_and_leaves_the_file_untouched(
    kustomization: Path, capsys: pytest.CaptureFixture[str], arguments: list[str], message: str
) -> None:
    assert main(["bump", str(kustomization), *arguments]) == 1
    assert kustomization.read_bytes() == KUSTOMIZATION.encode()
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ferry: ")
    assert message in captured.err
    assert os.listdir(kustomization.parent) == ["kustomization.yaml"]


def test_bump_of_malformed_yaml_names_file_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text("image:\n  repository: web\n\ttag: 1\n")
    assert main(["bump", str(path), "web=2"]) == 1
    assert f"ferry: {path}:3:1: malformed YAML" in capsys.readouterr().err
    assert path.read_text() == "image:\n  repository: web\n\ttag: 1\n"


def test_bump_of_a_missing_file_says_it_cannot_be_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bump", str(tmp_path / "nope.yaml"), "web=2"]) == 1
    assert "nope.yaml: cannot read it: No such file or directory" in capsys.readouterr().err


def test_bump_with_helm_paths_changes_only_those(tmp_path: Path) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(
        "web:\n  repo: ghcr.io/acme/web\n  version: 1.0.0\n  digest: ''\nimage: ghcr.io/acme/web:1.0.0\n"
    )
    flags = ["--helm-repository", "web.repo", "--helm-tag", "web.version", "--helm-digest", "web.digest"]
    assert main(["bump", str(path), f"ghcr.io/acme/web=1.1.0@{DIGEST}", *flags]) == 0
    assert path.read_text() == (
        f"web:\n  repo: ghcr.io/acme/web\n  version: 1.1.0\n  digest: '{DIGEST}'\n"
        "image: ghcr.io/acme/web:1.0.0\n"
    )


def test_bump_with_a_reference_path_changes_only_that(tmp_path: Path) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("spec:\n  source: {image: ghcr.io/acme/web}\nimage: ghcr.io/acme/web:1.0.0\n")
    assert main(["bump", str(path), "ghcr.io/acme/web=2.0", "--path", "spec.source.image"]) == 0
    assert (
        path.read_text()
        == 'spec:\n  source: {image: "ghcr.io/acme/web:2.0"}\nimage: ghcr.io/acme/web:1.0.0\n'
    )


def test_images_lists_line_image_tag_kind_and_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "all.yaml"
    path.write_text(
        f"image:\n  repository: ghcr.io/acme/web\n  tag: 1.0.0\n---\nimage: nginx:1.25@{DIGEST}\n"
    )
    assert main(["images", str(path)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "3  ghcr.io/acme/web         1.0.0  (helm image)",
        f"5  docker.io/library/nginx  1.25@{DIGEST}  (reference image, document 2)",
    ]


def test_images_as_json(kustomization: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", str(kustomization), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "image": "ghcr.io/acme/web",
            "tag": "1.0.0",
            "digest": None,
            "line": 5,
            "kind": "kustomize",
            "path": "images[0]",
            "document": 0,
        },
        {
            "image": "localhost:5000/api",
            "tag": "2.0",
            "digest": None,
            "line": 7,
            "kind": "kustomize",
            "path": "images[1]",
            "document": 0,
        },
    ]


def test_images_of_a_file_without_images_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("a: 1\n")
    assert main(["images", str(path)]) == 0
    captured = capsys.readouterr()
    assert (captured.out, captured.err) == ("", f"{path}: no image references found\n")


@pytest.mark.parametrize(
    ("text", "update"),
    [
        ("localhost:5000/web=1.2", ImageUpdate("localhost:5000/web", "1.2")),
        (f"web=1.2@{DIGEST}", ImageUpdate("web", "1.2", DIGEST)),
        ("ghcr.io/acme/web=v1", ImageUpdate("ghcr.io/acme/web", "v1")),
    ],
)
def test_update_argument_splits_on_the_last_equals_sign(text: str, update: ImageUpdate) -> None:
    assert parse_update(text) == update


@pytest.mark.parametrize("text", ["web", "=1.0", "web=", "web=1.0@"])
def test_malformed_update_argument_is_refused(text: str) -> None:
    with pytest.raises(InvalidReferenceError, match="is not IMAGE=TAG"):
        parse_update(text)
