"""`.github/ferry.yml` problems are reported all at once, each at its file, line, column and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from bot.core.config import CONFIG_PATH, HelmUpdate, KustomizeUpdate, StagesSource, WarehouseSource
from bot.core.config_load import load_config, locate, update_target_paths
from bot.errors import ConfigError, Problem

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = REPO_ROOT / "config" / "example"
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "configs"

BASE = """\
version: 1
warehouses:
  web:
    images:
      - image: ghcr.io/acme/web
        semver: ">=1.0.0 <2.0.0"
stages:
  dev:
    from: {warehouse: web}
    update:
      - kustomize: overlays/dev
"""


def problems_of(text: str, files: dict[str, str] | None = None) -> list[Problem]:
    with pytest.raises(ConfigError) as caught:
        load_config(textwrap.dedent(text), files=files)
    return caught.value.problems


def only_problem(text: str, files: dict[str, str] | None = None) -> Problem:
    found = problems_of(text, files)
    assert len(found) == 1, "\n".join(map(str, found))
    return found[0]


def example_files() -> dict[str, str]:
    return {
        str(p.relative_to(EXAMPLE)): p.read_text()
        for p in EXAMPLE.rglob("*")
        if p.is_file() and ".github" not in p.parts
    }


def test_example_config_is_valid() -> None:
    config = load_config((EXAMPLE / CONFIG_PATH).read_text())
    assert list(config.stages) == ["dev", "staging", "prod"]
    assert [i.image for i in config.warehouses["shop"].images] == ["ghcr.io/acme/web", "ghcr.io/acme/worker"]
    assert isinstance(config.stages["staging"].source, StagesSource)
    assert config.stages["prod"].argocd is not None
    assert config.stages["prod"].argocd.app_names == ["shop-prod-eu", "shop-prod-us"]


def test_example_config_is_valid_against_its_repository_files() -> None:
    config = load_config((EXAMPLE / CONFIG_PATH).read_text(), files=example_files())
    paths = update_target_paths(config, example_files().__contains__)
    assert paths == {
        "dev": ["overlays/dev/kustomization.yaml"],
        "staging": ["overlays/staging/kustomization.yaml"],
        "prod": ["charts/web/values-prod.yaml"],
    }


def test_minimal_config_gets_documented_defaults() -> None:
    config = load_config(BASE)
    stage = config.stages["dev"]
    assert isinstance(stage.source, WarehouseSource)
    assert stage.auto_promote is False and stage.auto_merge is False
    assert str(config.warehouses["web"].interval) == "0:05:00"
    assert str(stage.verify.timeout) == "0:15:00" and stage.verify.soak.total_seconds() == 0
    assert stage.update == [KustomizeUpdate(kustomize="overlays/dev")]


def test_every_problem_is_reported_at_once_in_file_order() -> None:
    text = (FIXTURES / "many-problems.yml").read_text()
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    located = [(p.line, p.column, p.field) for p in caught.value.problems]
    assert located == [
        (5, 15, "warehouses.web.interval"),
        (7, 16, "warehouses.web.images[0].image"),
        (11, 23, "stages.dev.from.warehouse"),
        (12, 5, "stages.dev.auto_promte"),
        (18, 15, "stages.prod.update[0].helm"),
        (19, 36, "stages.prod.verify.soak"),
    ]
    assert str(caught.value).splitlines()[0].startswith(".github/ferry.yml:5:15: warehouses.web.interval: ")


def test_misspelt_key_points_at_the_key_and_suggests_the_right_one() -> None:
    problem = only_problem(BASE + "    auto_promte: true\n")
    assert (problem.line, problem.column, problem.field) == (12, 5, "stages.dev.auto_promte")
    assert 'did you mean "auto_promote"?' in problem.message


def test_unknown_key_without_a_close_match_lists_the_allowed_keys() -> None:
    problem = only_problem(BASE.replace("    semver:", "    flavour: x\n        semver:"))
    assert (problem.line, problem.column, problem.field) == (6, 9, "warehouses.web.images[0].flavour")
    assert (
        "allowed here: image, semver, lexical, numeric, digest, allow, ignore, prerelease" in problem.message
    )


def test_misspelt_source_kind_gives_one_problem_with_a_suggestion() -> None:
    problem = only_problem(BASE.replace("{warehouse: web}", "{warehous: web}"))
    assert (problem.line, problem.column, problem.field) == (9, 12, "stages.dev.from.warehous")
    assert 'did you mean "warehouse"?' in problem.message


def test_misspelt_update_kind_gives_one_problem_with_a_suggestion() -> None:
    problem = only_problem(BASE.replace("- kustomize:", "- kustomise:"))
    assert (problem.line, problem.column, problem.field) == (11, 9, "stages.dev.update[0].kustomise")
    assert 'did you mean "kustomize"?' in problem.message


def test_update_item_of_no_known_kind_says_what_is_expected() -> None:
    problem = only_problem(BASE.replace("- kustomize: overlays/dev", "- chart: x"))
    assert (problem.line, problem.field) == (11, "stages.dev.update[0]")
    assert "{kustomize: <dir>}" in problem.message


def test_unknown_warehouse_suggests_the_close_name() -> None:
    problem = only_problem(BASE.replace("{warehouse: web}", "{warehouse: wbe}"))
    assert (problem.line, problem.column, problem.field) == (9, 23, "stages.dev.from.warehouse")
    assert problem.message == 'unknown warehouse "wbe" (did you mean "web"?); warehouses: web'


def test_unknown_upstream_stage_suggests_the_close_name() -> None:
    text = BASE + "  prod:\n    from: {stages: [deve]}\n    update: [{helm: values.yaml}]\n"
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.field) == (13, 21, "stages.prod.from.stages[0]")
    assert 'unknown stage "deve" (did you mean "dev"?)' in problem.message


def test_cycle_in_the_stage_graph_is_named() -> None:
    text = BASE + (
        "  staging:\n    from: {stages: [prod]}\n    update: [{kustomize: a}]\n"
        "  prod:\n    from: {stages: [staging]}\n    update: [{kustomize: b}]\n"
    )
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.field) == (13, 21, "stages.staging.from.stages[0]")
    assert "cycle: staging <- prod <- staging" in problem.message


def test_stage_drawing_from_itself_is_refused() -> None:
    problem = only_problem(BASE + "  qa:\n    from: {stages: [qa]}\n    update: [{kustomize: a}]\n")
    assert (problem.line, problem.column) == (13, 21)
    assert 'stage "qa" cannot draw from itself' in problem.message


def test_stage_with_both_sources_is_refused_at_the_second() -> None:
    problem = only_problem(
        BASE + "  qa:\n    from: {warehouse: web, stages: [dev]}\n    update: [{kustomize: a}]\n"
    )
    assert (problem.line, problem.column, problem.field) == (13, 28, "stages.qa.from.stages")
    assert "not both" in problem.message


def test_stage_with_neither_source_says_what_is_expected() -> None:
    problem = only_problem(BASE.replace("{warehouse: web}", "{}"))
    assert (problem.line, problem.column, problem.field) == (9, 11, "stages.dev.from")
    assert problem.message == "expected {warehouse: <name>} or {stages: [<name>, ...]}"


def test_upstream_stages_fed_by_different_warehouses_are_refused() -> None:
    text = BASE.replace(
        "stages:\n", "  api:\n    images: [{image: ghcr.io/acme/api, lexical: true}]\nstages:\n"
    ) + (
        "  qa:\n    from: {warehouse: api}\n    update: [{kustomize: a}]\n"
        "  prod:\n    from: {stages: [dev, qa]}\n    update: [{kustomize: b}]\n"
    )
    problem = only_problem(text)
    assert problem.field == "stages.prod.from.stages"
    assert "different warehouses (dev: web, qa: api)" in problem.message


def test_malformed_semver_range_is_located() -> None:
    problem = only_problem(BASE.replace('">=1.0.0 <2.0.0"', '">=1.0 <<2"'))
    assert (problem.line, problem.column, problem.field) == (6, 17, "warehouses.web.images[0].semver")
    assert "<<2" in problem.message


def test_malformed_allow_regex_column_is_the_character_re_complains_about() -> None:
    text = BASE.replace('        semver: ">=1.0.0 <2.0.0"', "        lexical: true\n        allow: '^v(\\d+'")
    problem = only_problem(text)
    # `        allow: '^v(\d+'`: the value's quote is column 16, the unclosed "(" column 19.
    assert (problem.line, problem.column, problem.field) == (7, 19, "warehouses.web.images[0].allow")
    assert problem.message == "invalid regular expression: missing ), unterminated subpattern at position 2"


def test_malformed_ignore_regex_names_the_list_item() -> None:
    text = BASE.replace(
        '        semver: ">=1.0.0 <2.0.0"', "        lexical: true\n        ignore: ['-rc', '[a-']"
    )
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.field) == (7, 25, "warehouses.web.images[0].ignore[1]")
    assert "unterminated character set" in problem.message


@pytest.mark.parametrize(
    ("value", "expected"),
    [("5 minutes", 'got "5 minutes"'), ("10", "the bare number 10: add a unit"), ("1m1h", 'got "1m1h"')],
)
def test_malformed_duration_says_what_a_duration_looks_like(value: str, expected: str) -> None:
    problem = only_problem(BASE.replace("    images:", f"    interval: {value}\n    images:"))
    assert (problem.line, problem.column, problem.field) == (4, 15, "warehouses.web.interval")
    assert "30s, 5m" in problem.message and expected in problem.message


def test_zero_timeout_is_refused() -> None:
    problem = only_problem(BASE + "    verify: {timeout: 0s}\n")
    assert (problem.line, problem.column, problem.field) == (12, 23, "stages.dev.verify.timeout")


@pytest.mark.parametrize(
    ("path", "expected"),
    [("/etc/values.yaml", "is absolute"), ("../other/values.yaml", "leaves the repository")],
)
def test_update_path_outside_the_repository_is_refused(path: str, expected: str) -> None:
    problem = only_problem(BASE.replace("- kustomize: overlays/dev", f"- helm: {path}"))
    assert (problem.line, problem.column, problem.field) == (11, 15, "stages.dev.update[0].helm")
    assert expected in problem.message


def test_unsupported_version_names_the_supported_ones() -> None:
    problem = only_problem(BASE.replace("version: 1", "version: 2"))
    assert (problem.line, problem.column, problem.field) == (1, 10, "version")
    assert problem.message == "unsupported version 2; this Ferry reads version 1"


def test_missing_version_says_what_to_add() -> None:
    problem = only_problem(BASE.replace("version: 1\n", ""))
    assert (problem.line, problem.column, problem.field) == (1, 1, "version")
    assert "add version: 1" in problem.message


def test_warehouse_image_carrying_a_tag_is_refused() -> None:
    problem = only_problem(BASE.replace("ghcr.io/acme/web", "ghcr.io/acme/web:1.2.3"))
    assert (problem.line, problem.column, problem.field) == (5, 16, "warehouses.web.images[0].image")
    assert 'name the repository only (e.g. "ghcr.io/acme/web")' in problem.message


def test_image_without_selection_rule_is_refused() -> None:
    problem = only_problem(BASE.replace('        semver: ">=1.0.0 <2.0.0"\n', ""))
    assert (problem.line, problem.column, problem.field) == (5, 9, "warehouses.web.images[0].image")
    assert "has no selection rule" in problem.message


def test_image_with_two_selection_rules_points_at_the_second() -> None:
    problem = only_problem(
        BASE.replace('        semver: ">=1.0.0 <2.0.0"', '        semver: "^1"\n        lexical: true')
    )
    assert (problem.line, problem.column, problem.field) == (7, 9, "warehouses.web.images[0].lexical")
    assert problem.message == "give one selection rule per image, found semver and lexical"


@pytest.mark.parametrize("update", ["    update: []\n", ""])
def test_stage_that_updates_nothing_is_refused(update: str) -> None:
    text = BASE.replace("    update:\n      - kustomize: overlays/dev\n", update)
    problem = only_problem(text)
    assert problem.field == "stages.dev.update"
    assert problem.line == (10 if update else 8)
    assert 'stage "dev" updates nothing' in problem.message


def test_argocd_without_an_app_is_refused() -> None:
    problem = only_problem(BASE + "    argocd: {server: main}\n")
    assert (problem.line, problem.column, problem.field) == (12, 13, "stages.dev.argocd")
    assert "app: <name> or apps: [<name>, ...]" in problem.message


def test_wrong_type_says_what_was_expected_and_what_came() -> None:
    problem = only_problem(BASE + "    auto_merge: maybe\n")
    assert (problem.line, problem.column, problem.field) == (12, 17, "stages.dev.auto_merge")
    assert problem.message == 'expected true or false, got "maybe"'


def test_stage_name_unfit_for_branch_names_points_at_the_key() -> None:
    problem = only_problem(BASE.replace("  dev:", "  dev env:"))
    assert (problem.line, problem.column, problem.field) == (8, 3, "stages.dev env")
    assert 'name "dev env" is not allowed' in problem.message


def test_promoter_must_be_a_login_or_a_team_slug() -> None:
    problem = only_problem(BASE + '    promoters: [alice, "@acme"]\n')
    assert (problem.line, problem.field) == (12, "stages.dev.promoters[1]")


def test_tab_indentation_is_a_yaml_error_with_the_parser_position() -> None:
    problem = only_problem((FIXTURES / "tab-indented.yml").read_text())
    assert (problem.line, problem.column, problem.field) == (3, 1, "")
    assert "tabs" in problem.message


def test_bad_indentation_is_a_yaml_error_with_a_hint() -> None:
    problem = only_problem(BASE.replace("    update:", "   update:"))
    assert problem.line == 10
    assert "YAML syntax error" in problem.message and "indentation" in problem.message


def test_duplicate_key_is_a_yaml_error_at_the_second_key() -> None:
    problem = only_problem(BASE + "  dev:\n    from: {warehouse: web}\n")
    assert (problem.line, problem.column) == (12, 3)
    assert 'duplicate key "dev"' in problem.message


@pytest.mark.parametrize(("text", "expected"), [("", "the config is empty"), ("- 1\n", "expected a mapping")])
def test_config_that_is_not_a_mapping_is_refused(text: str, expected: str) -> None:
    problem = only_problem(text)
    assert problem.line == 1 and expected in problem.message


def test_problems_carry_the_source_name_given() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(BASE.replace("version: 1", "version: 3"), source="repo/.github/ferry.yml")
    assert str(caught.value.problems[0]).startswith("repo/.github/ferry.yml:1:10: version: ")


def test_locate_points_a_missing_key_at_its_parent_key() -> None:
    tree = YAML().load(BASE)
    assert locate(tree, ("stages", "dev", "argocd")) == (8, 3)
    assert locate(tree, ("stages", "dev", "from", "warehouse")) == (9, 23)
    assert locate(tree, ("stages", "dev", "from"), at_key=True) == (9, 5)


def test_missing_update_target_is_reported_at_its_config_entry() -> None:
    problem = only_problem(BASE, files={})
    assert (problem.line, problem.column, problem.field) == (11, 20, "stages.dev.update[0].kustomize")
    assert problem.message == (
        "overlays/dev holds no kustomization file (kustomization.yaml, kustomization.yml, Kustomization)"
    )


def test_missing_values_file_is_reported() -> None:
    problem = only_problem(BASE.replace("kustomize: overlays/dev", "helm: charts/web/values.yaml"), files={})
    assert problem.message == "charts/web/values.yaml does not exist in the repository"


def test_update_target_without_the_warehouse_images_is_reported() -> None:
    kustomization = "images:\n  - name: ghcr.io/acme/other\n    newTag: 1.0.0\n"
    found = problems_of(BASE, files={"overlays/dev/kustomization.yaml": kustomization})
    assert [(p.line, p.field) for p in found] == [
        (10, "stages.dev.update"),
        (11, "stages.dev.update[0].kustomize"),
    ]
    assert (
        'holds no image of warehouse "web" (ghcr.io/acme/web); it holds: ghcr.io/acme/other'
        in found[1].message
    )
    assert "image ghcr.io/acme/web of warehouse" in found[0].message


def test_warehouse_image_in_none_of_the_stage_targets_is_reported() -> None:
    files = example_files()
    files["overlays/staging/kustomization.yaml"] = files["overlays/staging/kustomization.yaml"].replace(
        "ghcr.io/acme/worker", "ghcr.io/acme/wrk"
    )
    problem = only_problem((EXAMPLE / CONFIG_PATH).read_text(), files=files)
    assert problem.field == "stages.staging.update"
    assert 'image ghcr.io/acme/worker of warehouse "shop" is in none of the files' in problem.message


def test_unreadable_update_target_is_reported_with_its_error() -> None:
    problem = only_problem(BASE, files={"overlays/dev/kustomization.yaml": "images: [\n"})
    assert problem.field == "stages.dev.update[0].kustomize"
    assert problem.message.startswith("overlays/dev/kustomization.yaml: ")


def test_helm_target_with_explicit_paths_is_checked_at_those_paths() -> None:
    text = BASE.replace(
        "- kustomize: overlays/dev", "- {helm: values.yaml, repository: app.repo, tag: app.tag}"
    )
    values = "app:\n  repo: ghcr.io/acme/web\n  tag: 1.0.0\n"
    config = load_config(text, files={"values.yaml": values})
    assert config.stages["dev"].update == [
        HelmUpdate(helm="values.yaml", repository="app.repo", tag="app.tag")
    ]


def test_stages_may_share_defaults_through_anchors_in_x_keys() -> None:
    text = BASE.replace("stages:\n", "x-defaults: &defaults\n  auto_merge: true\nstages:\n").replace(
        "    from: {warehouse: web}\n", "    <<: *defaults\n    from: {warehouse: web}\n"
    )
    assert load_config(text).stages["dev"].auto_merge is True


def test_problem_in_a_merged_anchor_points_at_the_anchor() -> None:
    text = BASE.replace("stages:\n", "x-defaults: &defaults\n  auto_merge: maybe\nstages:\n").replace(
        "    from: {warehouse: web}\n", "    <<: *defaults\n    from: {warehouse: web}\n"
    )
    problem = only_problem(text)
    assert (problem.line, problem.column, problem.field) == (8, 15, "stages.dev.auto_merge")
