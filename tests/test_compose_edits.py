"""Several update entries naming one file: their edits compose, and two claiming one value are refused.

Argo CD Image Updater lost one of two images written to one Helm values file
(argoproj-labs/argocd-image-updater#786, #202): each edit started from the original text. Here a
stage's entries are applied to a file in turn, on one parse, and confirmed once; `ferry validate`
names entries that would set the same value.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.cli import main
from bot.core.actions import OpenPromotion, SetStatus
from bot.core.config_load import load_config
from bot.core.decide import decide, promotion_files
from bot.core.freight import Freight, FreightImage
from bot.core.manifest import FileEdit, HelmPaths, ImageUpdate, bump_file, bump_text, find_images
from bot.core.snapshot import Snapshot
from bot.core.stage_view import stage_view
from bot.errors import ConfigError, ManifestError

DIGEST = "sha256:" + "cd" * 32
VALUES = """\
# two images in one chart's values
api:
  image:
    repository: ghcr.io/acme/api
    tag: 1.0.0
ui:
  image:
    repository: ghcr.io/acme/ui
    tag: 1.0.0
"""
KUSTOMIZATION = """\
kind: Kustomization
images:
  - name: ghcr.io/acme/api
    newTag: 1.0.0
  - name: ghcr.io/acme/ui
    newTag: 1.0.0
"""
FREIGHT = Freight(
    "shop", (FreightImage("ghcr.io/acme/api", "1.1.0"), FreightImage("ghcr.io/acme/ui", "2.0.0"))
)


def config(update: str) -> str:
    return f"""\
version: 1
warehouses:
  shop:
    images:
      - {{image: ghcr.io/acme/api, semver: "^1"}}
      - {{image: ghcr.io/acme/ui, semver: "*"}}
stages:
  dev:
    from: {{warehouse: shop}}
    auto_promote: true
    update:
{update}"""


TWO_HELM_ENTRIES = config(
    "      - {helm: values.yaml, repository: api.image.repository, tag: api.image.tag}\n"
    "      - {helm: values.yaml, repository: ui.image.repository, tag: ui.image.tag}\n"
)


def snapshot(config_text: str, files: dict[str, str]) -> Snapshot:
    try:
        parsed, problems = load_config(config_text, files=files), ()
    except ConfigError as exc:
        parsed, problems = None, tuple(exc.problems)
    return Snapshot(
        repo="acme/gitops",
        default_branch="main",
        head_sha="1" * 40,
        now=datetime(2026, 11, 26, tzinfo=UTC),
        config=parsed,
        config_problems=problems,
        config_commit="c" * 40,
        paths=frozenset(files),
        files=files,
        blob_shas=dict.fromkeys(files, "b" * 40),
        warehouse_freight={"shop": FREIGHT},
    )


def promoted(config_text: str, files: dict[str, str]) -> dict[str, str]:
    state = snapshot(config_text, files)
    assert state.config_problems == ()
    return dict(promotion_files(state, stage_view(state, "dev"), FREIGHT))


@pytest.mark.parametrize(
    ("update", "files"),
    [
        pytest.param(
            "      - {helm: values.yaml, repository: api.image.repository, tag: api.image.tag}\n"
            "      - {helm: values.yaml, repository: ui.image.repository, tag: ui.image.tag}\n",
            {"values.yaml": VALUES},
            id="two Helm entries with explicit paths",
        ),
        pytest.param(
            "      - {helm: values.yaml, repository: api.image.repository, tag: api.image.tag}\n"
            "      - {yaml: values.yaml, path: ui.ref}\n",
            {"values.yaml": VALUES.split("ui:", maxsplit=1)[0] + "ui:\n  ref: ghcr.io/acme/ui:1.0.0\n"},
            id="a Helm entry and a yaml path entry",
        ),
        pytest.param(
            "      - {yaml: values.yaml, path: api.ref}\n      - {yaml: values.yaml, path: ui.ref}\n",
            {"values.yaml": "api:\n  ref: ghcr.io/acme/api:1.0.0\nui: {ref: 'ghcr.io/acme/ui:1.0.0'}\n"},
            id="two yaml path entries",
        ),
    ],
)
def test_update_entries_naming_one_file_all_land_in_the_promotion(update: str, files: dict[str, str]) -> None:
    [(path, text)] = promoted(config(update), files).items()
    edited = text.replace("1.1.0", "*").replace("2.0.0", "*")
    assert text.count("1.1.0") == 1 and text.count("2.0.0") == 1, text
    assert edited == files[path].replace("1.0.0", "*")


def test_entries_over_two_files_each_edit_their_own() -> None:
    update = (
        "      - {kustomize: overlays/dev}\n"
        "      - {helm: values.yaml, repository: ui.image.repository, tag: ui.image.tag}\n"
    )
    only_api = KUSTOMIZATION.replace("  - name: ghcr.io/acme/ui\n    newTag: 1.0.0\n", "")
    files = {"overlays/dev/kustomization.yaml": only_api, "values.yaml": VALUES}
    result = promoted(config(update), files)
    assert "newTag: 1.1.0" in result["overlays/dev/kustomization.yaml"]
    assert "    tag: 2.0.0" in result["values.yaml"] and "    tag: 1.0.0" in result["values.yaml"]


def test_the_promotion_pull_request_carries_both_edits_of_one_file() -> None:
    actions = decide(snapshot(TWO_HELM_ENTRIES, {"values.yaml": VALUES}))
    [promotion] = [a for a in actions if isinstance(a, OpenPromotion)]
    [(path, text)] = promotion.files
    assert path == "values.yaml"
    assert text == VALUES.replace("tag: 1.0.0", "tag: 1.1.0", 1).replace("    tag: 1.0.0", "    tag: 2.0.0")


def edit(image: str, tag: str, prefix: str) -> FileEdit:
    paths = HelmPaths(f"{prefix}.image.repository", f"{prefix}.image.tag")
    return FileEdit((ImageUpdate(f"ghcr.io/acme/{image}", tag),), paths)


def test_bump_file_applies_edits_in_turn_and_reports_each_change() -> None:
    result = bump_file(VALUES, [edit("api", "1.1.0", "api"), edit("ui", "2.0.0", "ui")])
    assert [(c.line, c.new) for c in result.changes] == [(5, "1.1.0"), (9, "2.0.0")]


def test_two_entries_asking_one_value_for_the_same_thing_make_one_edit() -> None:
    update = (ImageUpdate("ghcr.io/acme/api", "1.1.0"),)
    paths = HelmPaths("api.image.repository", "api.image.tag")
    result = bump_file(VALUES, [FileEdit(update, paths, label="a"), FileEdit(update, None, label="b")])
    assert result.text == VALUES.replace("tag: 1.0.0", "tag: 1.1.0", 1)
    assert len(result.changes) == 1


def test_two_entries_asking_one_value_for_different_things_are_refused_naming_both() -> None:
    text = "# one tag for two images\nshared:\n  tag: 1.0.0\n"
    shared = HelmPaths(repository=None, tag="shared.tag")  # no repository beside it: the entry's one image
    edits = [
        FileEdit((ImageUpdate("ghcr.io/acme/api", "1.1.0"),), shared, label="update[0]"),
        FileEdit((ImageUpdate("ghcr.io/acme/ui", "2.0.0"),), shared, label="update[1]"),
    ]
    message = r"values.yaml:3: update\[0\]: .* '1.1.0' and update\[1\]: .* '2.0.0'"
    with pytest.raises(ManifestError, match=message):
        bump_file(text, edits, source="values.yaml")


def test_a_helm_tag_path_alone_names_the_image_by_the_repository_beside_it() -> None:
    paths = HelmPaths(tag="ui.image.tag")
    [occurrence] = find_images(VALUES, helm_paths=paths)
    assert (occurrence.image, occurrence.tag, occurrence.line) == ("ghcr.io/acme/ui", "1.0.0", 9)
    both = [ImageUpdate("ghcr.io/acme/api", "1.1.0"), ImageUpdate("ghcr.io/acme/ui", "2.0.0")]
    with pytest.raises(ManifestError, match=r'"ghcr\.io/acme/api" is not in this file'):
        bump_text(VALUES, both, helm_paths=paths)
    result = bump_text(VALUES, both[1:], helm_paths=paths)
    assert result.text == VALUES.replace("    tag: 1.0.0\n", "    tag: 2.0.0\n").replace(
        "tag: 2.0.0", "tag: 1.0.0", 1
    )


def test_two_kustomize_entries_adding_different_tags_to_one_image_are_refused() -> None:
    text = "images:\n  - name: ghcr.io/acme/api\n"
    edits = [
        FileEdit((ImageUpdate("ghcr.io/acme/api", "1.1.0"),), label="first"),
        FileEdit((ImageUpdate("ghcr.io/acme/api", "1.2.0"),), label="second"),
    ]
    with pytest.raises(ManifestError, match=r"first: ghcr.io/acme/api sets this value to '1.1.0'"):
        bump_file(text, edits)


def test_two_images_sharing_one_tag_through_an_anchor_cannot_take_different_tags() -> None:
    text = "api: {repository: ghcr.io/acme/api, tag: &t 1.0.0}\nui: {repository: ghcr.io/acme/ui, tag: *t}\n"
    same = [ImageUpdate("ghcr.io/acme/api", "1.1.0"), ImageUpdate("ghcr.io/acme/ui", "1.1.0")]
    assert bump_text(text, same).text == text.replace("&t 1.0.0", "&t 1.1.0")
    with pytest.raises(ManifestError, match="one value cannot hold both"):
        bump_text(text, [ImageUpdate("ghcr.io/acme/api", "1.1.0"), ImageUpdate("ghcr.io/acme/ui", "2.0.0")])


@pytest.mark.parametrize(
    ("update", "files", "line"),
    [
        pytest.param(
            "      - {kustomize: overlays/dev}\n      - {kustomize: overlays/dev/kustomization.yaml}\n",
            {"overlays/dev/kustomization.yaml": KUSTOMIZATION},
            4,
            id="one kustomization named as directory and as file",
        ),
        pytest.param(
            "      - {helm: values.yaml}\n      - {helm: ./values.yaml}\n",
            {"values.yaml": VALUES},
            5,
            id="one values file twice",
        ),
    ],
)
def test_an_entry_repeated_is_named_by_validation_yet_its_edits_still_compose(
    update: str, files: dict[str, str], line: int
) -> None:
    state = snapshot(config(update), files)
    [problem] = state.config_problems
    assert problem.field.startswith("stages.dev.update[1].")
    assert f":{line}: this entry and update[0] both set the tag of ghcr.io/acme/api" in problem.message
    # Past validation (the files unread), the editor itself still loses no edit.
    state = replace(state, config=load_config(config(update)), config_problems=())
    [(_, text)] = promotion_files(state, stage_view(state, "dev"), FREIGHT)
    assert text.count("1.1.0") == 1 and text.count("2.0.0") == 1


def test_validation_names_two_entries_that_set_one_value() -> None:
    text = config(
        "      - {helm: values.yaml}\n"
        "      - {helm: values.yaml, repository: ui.image.repository, tag: ui.image.tag}\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_config(text, files={"values.yaml": VALUES})
    [problem] = caught.value.problems
    assert (problem.line, problem.column, problem.field) == (13, 16, "stages.dev.update[1].helm")
    assert problem.message.startswith(
        "values.yaml:9: this entry and update[0] both set the tag of ghcr.io/acme/ui"
    )


def test_validation_accepts_entries_that_share_a_file_but_not_a_value() -> None:
    load_config(TWO_HELM_ENTRIES, files={"values.yaml": VALUES})


def test_a_stage_whose_entries_collide_opens_nothing_and_its_config_status_says_why() -> None:
    text = config("      - {kustomize: overlays/dev}\n      - {helm: overlays/dev/kustomization.yaml}\n")
    actions = decide(snapshot(text, {"overlays/dev/kustomization.yaml": KUSTOMIZATION}))
    assert not [a for a in actions if isinstance(a, OpenPromotion)]
    [status] = [a for a in actions if isinstance(a, SetStatus) and a.context == "ferry/config"]
    assert status.state == "failure"
    assert "stages.dev.update[1].helm: overlays/dev/kustomization.yaml:4: this entry and update[0]" in (
        status.description
    )


def test_ferry_validate_reports_two_entries_setting_one_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / ".github").mkdir()
    update = "      - {helm: values.yaml}\n      - {helm: values.yaml, tag: api.image.tag}\n"
    (tmp_path / ".github" / "ferry.yml").write_text(config(update))
    (tmp_path / "values.yaml").write_text(VALUES)
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert out.startswith(
        ".github/ferry.yml:13:16: stages.dev.update[1].helm: values.yaml:5: this entry and update[0]"
    )
