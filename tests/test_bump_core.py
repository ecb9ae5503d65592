"""bot.core.manifest: one test per rule and per edge case of finding and bumping image references."""

from __future__ import annotations

import pytest
from ruamel.yaml import YAML

from bot.core.manifest import (
    Change,
    HelmPaths,
    ImageUpdate,
    bump_text,
    find_images,
    resolve_kustomization,
)
from bot.core.yaml_scalars import reads_as_non_string, render_scalar
from bot.errors import InvalidReferenceError, ManifestError

DIGEST_A = "sha256:" + "a1" * 32
DIGEST_B = "sha256:" + "b2" * 32


def changed_lines(old: str, new: str) -> set[int]:
    """1-based numbers of the lines that differ; the texts must have as many lines."""
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines)
    return {n for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=True), start=1) if a != b}


def load(text: str) -> object:
    return YAML(typ="safe", pure=True).load(text)


# --- kustomize ------------------------------------------------------------------------------------

KUSTOMIZATION = """\
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
images:
  - name: ghcr.io/acme/web   # the front end
    newTag: 1.0.0
  - name: placeholder
    newName: ghcr.io/acme/api
    newTag: 2.0.0
"""


def test_kustomize_entry_is_matched_by_name_and_gets_the_new_tag() -> None:
    result = bump_text(KUSTOMIZATION, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert result.text == KUSTOMIZATION.replace("newTag: 1.0.0", "newTag: 1.1.0")
    assert result.changes == (Change(5, "ghcr.io/acme/web", "1.0.0", "1.1.0"),)


def test_kustomize_entry_with_new_name_is_matched_by_new_name_not_name() -> None:
    result = bump_text(KUSTOMIZATION, [ImageUpdate("ghcr.io/acme/api", "2.1.0")])
    assert changed_lines(KUSTOMIZATION, result.text) == {8}
    with pytest.raises(ManifestError, match='"placeholder" is not in this file'):
        bump_text(KUSTOMIZATION, [ImageUpdate("placeholder", "2.1.0")])


def test_kustomize_entry_without_new_tag_gets_one_in_its_own_indentation() -> None:
    text = (
        "images:\n  - name: ghcr.io/acme/web\n    newName: ghcr.io/acme/web2  # moved\nresources: [a.yaml]\n"
    )
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web2", "1.2")])
    assert result.text == (
        "images:\n  - name: ghcr.io/acme/web\n    newName: ghcr.io/acme/web2  # moved\n"
        '    newTag: "1.2"\nresources: [a.yaml]\n'
    )


def test_kustomize_flow_entry_without_new_tag_gets_one_inside_the_braces() -> None:
    text = "images: [{name: ghcr.io/acme/web}]\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "v1")])
    assert result.text == "images: [{name: ghcr.io/acme/web, newTag: v1}]\n"


def test_kustomize_pinned_digest_is_replaced_along_with_the_tag() -> None:
    text = f"images:\n- name: ghcr.io/acme/web\n  newTag: 1.0.0\n  digest: {DIGEST_A}\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_B)])
    assert result.text == f"images:\n- name: ghcr.io/acme/web\n  newTag: 1.1.0\n  digest: {DIGEST_B}\n"
    assert result.changes[0].old == f"1.0.0@{DIGEST_A}"


def test_kustomize_digest_only_entry_gets_only_the_new_digest() -> None:
    text = f"images:\n- name: ghcr.io/acme/web\n  digest: {DIGEST_A}\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_B)])
    assert result.text == f"images:\n- name: ghcr.io/acme/web\n  digest: {DIGEST_B}\n"


def test_kustomize_pinned_digest_with_an_update_without_digest_is_refused() -> None:
    text = f"images:\n- name: ghcr.io/acme/web\n  newTag: 1.0.0\n  digest: {DIGEST_A}\n"
    with pytest.raises(ManifestError, match=r"<text>:3: ghcr.io/acme/web at images\[0\] pins a digest"):
        bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])


def test_digest_is_not_added_where_none_is_pinned() -> None:
    result = bump_text(KUSTOMIZATION, [ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_B)])
    assert DIGEST_B not in result.text
    assert changed_lines(KUSTOMIZATION, result.text) == {5}


def test_images_list_of_a_non_kustomize_resource_is_not_read_as_kustomize() -> None:
    text = "kind: ConfigMap\nimages:\n  - name: ghcr.io/acme/web\n    newTag: 1.0.0\n"
    assert find_images(text) == []


# --- Helm values ----------------------------------------------------------------------------------

VALUES = """\
image:
  registry: docker.io
  repository: bitnami/nginx
  tag: 1.25.3-debian-12-r0
  digest: ""
metrics:
  image:
    repository: ghcr.io/acme/exporter
    tag: "0.9"
"""


def test_helm_mapping_is_matched_by_registry_joined_with_repository() -> None:
    (first, second) = find_images(VALUES)
    assert (first.image, first.tag, first.line, first.kind, first.path) == (
        "docker.io/bitnami/nginx",
        "1.25.3-debian-12-r0",
        4,
        "helm",
        "image",
    )
    assert (second.image, second.path) == ("ghcr.io/acme/exporter", "metrics.image")
    result = bump_text(VALUES, [ImageUpdate("bitnami/nginx", "1.25.4-debian-12-r0")])
    assert changed_lines(VALUES, result.text) == {4}


def test_helm_empty_digest_field_is_not_a_pin_but_an_explicit_digest_path_fills_it() -> None:
    update = ImageUpdate("docker.io/bitnami/nginx", "1.26", DIGEST_B)
    assert changed_lines(VALUES, bump_text(VALUES, [update]).text) == {4}
    paths = HelmPaths(repository="image.repository", tag="image.tag", digest="image.digest")
    result = bump_text(VALUES, [update], helm_paths=paths)
    assert result.text.splitlines()[3:5] == ['  tag: "1.26"', f'  digest: "{DIGEST_B}"']


def test_helm_explicit_paths_change_only_that_place() -> None:
    text = (
        "app:\n  img: {repo: ghcr.io/acme/web, version: 1.0.0}\n"
        "other:\n  repository: ghcr.io/acme/web\n  tag: 1.0.0\n"
    )
    paths = HelmPaths(repository="app.img.repo", tag="app.img.version")
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")], helm_paths=paths)
    assert changed_lines(text, result.text) == {2}
    (occurrence,) = find_images(text, helm_paths=paths)
    assert occurrence.path == "app.img"


def test_helm_explicit_tag_path_without_repository_applies_to_the_only_update() -> None:
    text = "web:\n  version: 1.0.0\n"
    result = bump_text(
        text, [ImageUpdate("ghcr.io/acme/web", "2.0.0")], helm_paths=HelmPaths(tag="web.version")
    )
    assert result.text == "web:\n  version: 2.0.0\n"
    with pytest.raises(ManifestError, match="give the repository path too"):
        bump_text(
            text,
            [ImageUpdate("ghcr.io/acme/web", "2.0.0"), ImageUpdate("ghcr.io/acme/api", "2.0.0")],
            helm_paths=HelmPaths(tag="web.version"),
        )


def test_helm_explicit_path_missing_from_the_file_is_named() -> None:
    with pytest.raises(ManifestError, match=r"Helm tag path 'image\.version' is not in this file"):
        bump_text(VALUES, [ImageUpdate("bitnami/nginx", "1")], helm_paths=HelmPaths(tag="image.version"))


def test_helm_tag_holding_a_digest_keeps_that_form() -> None:
    text = f"image:\n  repository: ghcr.io/acme/web\n  tag: 1.0.0@{DIGEST_A}\n"
    (occurrence,) = find_images(text)
    assert (occurrence.tag, occurrence.digest) == ("1.0.0", DIGEST_A)
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_B)])
    assert result.text == f"image:\n  repository: ghcr.io/acme/web\n  tag: 1.1.0@{DIGEST_B}\n"


def test_merge_keys_supply_the_registry() -> None:
    text = "d: &d {registry: ghcr.io}\nweb:\n  <<: *d\n  repository: acme/web\n  tag: 1.0.0\n"
    assert [o.image for o in find_images(text)] == ["ghcr.io/acme/web"]


# --- whole references -----------------------------------------------------------------------------

DEPLOYMENT = f"""\
spec:
  template:
    spec:
      initContainers:
        - name: migrate
          image: ghcr.io/acme/web@{DIGEST_A}
      containers:
        - name: web
          image: ghcr.io/acme/web:1.0.0 # pinned by Ferry
        - name: proxy
          image: "nginx:1.25"
          env:
            - name: HOST
              value: web:8080
"""


def test_whole_references_are_found_under_image_keys_with_their_paths() -> None:
    found = [(o.image, o.tag, o.digest, o.line, o.path) for o in find_images(DEPLOYMENT)]
    assert found == [
        ("ghcr.io/acme/web", None, DIGEST_A, 6, "spec.template.spec.initContainers[0].image"),
        ("ghcr.io/acme/web", "1.0.0", None, 9, "spec.template.spec.containers[0].image"),
        ("docker.io/library/nginx", "1.25", None, 11, "spec.template.spec.containers[1].image"),
    ]


def test_every_reference_to_the_image_changes_keeping_the_digest_only_form() -> None:
    result = bump_text(DEPLOYMENT, [ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_B)])
    assert changed_lines(DEPLOYMENT, result.text) == {6, 9}
    assert f"image: ghcr.io/acme/web@{DIGEST_B}\n" in result.text
    assert "image: ghcr.io/acme/web:1.1.0 # pinned by Ferry\n" in result.text


def test_docker_hub_spellings_are_one_image() -> None:
    for spelling in ("nginx", "docker.io/nginx", "docker.io/library/nginx", "index.docker.io/library/nginx"):
        result = bump_text(DEPLOYMENT, [ImageUpdate(spelling, "1.27")])
        assert result.text.splitlines()[10] == '          image: "nginx:1.27"'


def test_reference_with_registry_port_keeps_its_spelling() -> None:
    text = "image: localhost:5000/web:1.0\n"
    result = bump_text(text, [ImageUpdate("localhost:5000/web", "1.1")])
    assert result.text == "image: localhost:5000/web:1.1\n"


def test_fully_qualified_reference_is_found_under_any_key_but_short_names_are_not() -> None:
    text = "data:\n  IMAGE: ghcr.io/acme/web:1.0.0\n  HOST: web:8080\n  NAME: nginx:1.25\n"
    assert [(o.image, o.line) for o in find_images(text)] == [("ghcr.io/acme/web", 2)]


def test_explicit_reference_path_changes_only_that_place() -> None:
    text = "a:\n  ref: ghcr.io/acme/web:1.0.0\nimage: ghcr.io/acme/web:1.0.0\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "2.0.0")], reference_path="a.ref")
    assert changed_lines(text, result.text) == {2}


def test_explicit_reference_path_holding_something_else_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"<text>:1: the value at 'a' is not an image reference"):
        bump_text("a: Not An Image\n", [ImageUpdate("web", "1")], reference_path="a")


# --- byte-exactness -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "new_line"),
    [
        ("tag: 1.0.0\n", "tag: 1.1.0\n"),
        ("tag: '1.0.0'\n", "tag: '1.1.0'\n"),
        ('tag: "1.0.0"\n', 'tag: "1.1.0"\n'),
        ("tag: 1.0.0   # keep me\n", "tag: 1.1.0   # keep me\n"),
        ("tag: &v 1.0.0\n", "tag: &v 1.1.0\n"),
        ("tag: !!str 1.0.0\n", "tag: !!str 1.1.0\n"),
        ('tag: ""\n', 'tag: "1.1.0"\n'),
        ("tag: ''\n", "tag: '1.1.0'\n"),
        ("tag:\n", "tag: 1.1.0\n"),
        ("tag: ~\n", "tag: 1.1.0\n"),
        ("tag: 1.10\n", "tag: 1.1.0\n"),
    ],
)
def test_tag_scalar_keeps_its_style_comment_and_anchor(line: str, new_line: str) -> None:
    text = "image:\n  repository: ghcr.io/acme/web\n  " + line + "  pullPolicy: Always\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert result.text == "image:\n  repository: ghcr.io/acme/web\n  " + new_line + "  pullPolicy: Always\n"


@pytest.mark.parametrize(
    "tag", ["1.10", "1e3", "yes", "on", "null", "0123", "08", "true", "12_30", "2024-01-31", "123"]
)
def test_plain_value_that_would_not_read_as_a_string_is_double_quoted(tag: str) -> None:
    text = "image:\n  repository: ghcr.io/acme/web\n  tag: v1\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", tag)])
    assert result.text == f'image:\n  repository: ghcr.io/acme/web\n  tag: "{tag}"\n'
    assert load(result.text) == {"image": {"repository": "ghcr.io/acme/web", "tag": tag}}


def test_sexagesimal_looking_tag_is_quoted() -> None:
    assert reads_as_non_string("12:30")
    assert render_scalar("12:30", "") == '"12:30"'


def test_alias_follows_its_anchor() -> None:
    text = "v: &t 1.0.0\nimage:\n  repository: ghcr.io/acme/web\n  tag: *t\ncopy: *t\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert result.text == text.replace("&t 1.0.0", "&t 1.1.0")
    assert result.changes == (Change(1, "ghcr.io/acme/web", "1.0.0", "1.1.0"),)


def test_a_reference_reached_again_through_an_alias_is_one_change_under_its_anchor_path() -> None:
    text = "app:\n  image: &web ghcr.io/acme/web:1.0.0\nsidecars:\n- image: *web\n- image: *web\n"
    assert [o.path for o in find_images(text)] == ["app.image"]
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert result.text == text.replace("web:1.0.0", "web:1.1.0")
    assert result.changes == (Change(2, "ghcr.io/acme/web", "1.0.0", "1.1.0"),)


@pytest.mark.parametrize("newline", ["\r", "\r\n", "\u2028", "\x85"])
def test_lines_broken_by_any_yaml_line_break_are_edited_in_place(newline: str) -> None:
    text = newline.join(["# web", "images:", "- name: ghcr.io/acme/web", "  newTag: 1.0.0", "x: 1", ""])
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert result.text == text.replace("1.0.0", "1.1.0")
    assert result.changes == (Change(4, "ghcr.io/acme/web", "1.0.0", "1.1.0"),)


def test_crlf_line_endings_and_a_missing_final_newline_survive() -> None:
    text = "images:\r\n- name: ghcr.io/acme/web\r\n  newTag: 1.0.0"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert result.text == "images:\r\n- name: ghcr.io/acme/web\r\n  newTag: 1.1.0"
    added = bump_text("images:\r\n- name: ghcr.io/acme/web", [ImageUpdate("ghcr.io/acme/web", "v2")])
    assert added.text == "images:\r\n- name: ghcr.io/acme/web\r\n  newTag: v2"


def test_multi_document_file_changes_every_match_in_every_document() -> None:
    text = "image: ghcr.io/acme/web:1.0.0\n---\n# second\nimage: ghcr.io/acme/web:1.0.0\n...\n"
    result = bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])
    assert changed_lines(text, result.text) == {1, 4}
    assert [o.document for o in find_images(result.text)] == [0, 1]


def test_unchanged_tag_gives_the_same_text_and_no_changes() -> None:
    result = bump_text(KUSTOMIZATION, [ImageUpdate("ghcr.io/acme/web", "1.0.0")])
    assert result.text is KUSTOMIZATION
    assert result.changes == ()


# --- errors ---------------------------------------------------------------------------------------


def test_missing_image_error_lists_the_images_the_file_holds_with_lines() -> None:
    with pytest.raises(ManifestError) as error:
        bump_text(KUSTOMIZATION, [ImageUpdate("ghcr.io/acme/worker", "1")], source="k.yaml")
    assert str(error.value) == (
        'k.yaml: image "ghcr.io/acme/worker" is not in this file; it holds ghcr.io/acme/web (line 5), '
        "ghcr.io/acme/api (line 8)"
    )


def test_missing_image_in_a_file_without_images_says_so() -> None:
    with pytest.raises(ManifestError, match="holds no image reference Ferry recognises"):
        bump_text("a: 1\n", [ImageUpdate("web", "1")])


def test_tab_indentation_is_reported_with_file_line_and_column() -> None:
    with pytest.raises(ManifestError, match=r"^v.yaml:3:1: malformed YAML: .*spaces, not tabs"):
        bump_text("image:\n  repository: web\n\ttag: 1\n", [ImageUpdate("web", "2")], source="v.yaml")


def test_unclosed_quote_is_reported_with_its_line() -> None:
    with pytest.raises(
        ManifestError, match=r"^v.yaml:3:1: malformed YAML: .* \(while scanning a quoted scalar at 2:4\)"
    ):
        find_images('a: 1\nb: "open\n', source="v.yaml")


@pytest.mark.parametrize(
    "update",
    [ImageUpdate("web", "-bad"), ImageUpdate("web", "1.0", "sha256:short"), ImageUpdate("Web!", "1.0")],
)
def test_invalid_tag_digest_or_name_is_refused(update: ImageUpdate) -> None:
    with pytest.raises(InvalidReferenceError):
        bump_text(KUSTOMIZATION, [update])


def test_the_same_image_given_twice_is_refused() -> None:
    with pytest.raises(ManifestError, match="given twice"):
        bump_text(KUSTOMIZATION, [ImageUpdate("nginx", "1"), ImageUpdate("docker.io/library/nginx", "2")])


def test_block_scalar_tag_is_refused_rather_than_rewritten() -> None:
    text = "image:\n  repository: ghcr.io/acme/web\n  tag: |\n    1.0.0\n"
    with pytest.raises(ManifestError, match="block scalar"):
        bump_text(text, [ImageUpdate("ghcr.io/acme/web", "1.1.0")])


# --- kustomization files --------------------------------------------------------------------------


def test_directory_resolves_to_the_first_kustomization_file_that_exists() -> None:
    assert resolve_kustomization("overlays/dev", {"overlays/dev/kustomization.yml"}.__contains__) == (
        "overlays/dev/kustomization.yml"
    )
    assert resolve_kustomization("overlays/dev/", {"overlays/dev/Kustomization"}.__contains__) == (
        "overlays/dev/Kustomization"
    )


def test_file_path_is_returned_as_is() -> None:
    assert resolve_kustomization("overlays/dev/kustomization.yaml", lambda _: False) == (
        "overlays/dev/kustomization.yaml"
    )


def test_directory_without_kustomization_names_the_candidates_tried() -> None:
    with pytest.raises(ManifestError) as error:
        resolve_kustomization("overlays/dev", lambda _: False)
    assert str(error.value) == (
        '"overlays/dev" has no kustomization: tried overlays/dev/kustomization.yaml, '
        "overlays/dev/kustomization.yml, overlays/dev/Kustomization"
    )
