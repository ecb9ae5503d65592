"""Every fixture under tests/fixtures/manifests bumped: exactly the intended lines differ, nothing else.

The fixtures are copies of well-known public files (bitnami/nginx values, Argo CD's base
kustomization, podinfo's chart values, kustomization and deployment, an awesome-compose style
compose file) and edge cases of our own (CRLF, flow style, anchors, quoted and empty tags,
digests, no final newline, a byte-order mark, several documents, a ~6,000-line values file).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from bot.core import yaml_scalars
from bot.core.manifest import HelmPaths, ImageUpdate, bump_text, find_images
from bot.errors import ManifestError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "manifests"
DIGEST_A = "sha256:" + "a1" * 32
DIGEST_C = "sha256:" + "c3" * 32


def read(name: str) -> str:
    return (FIXTURES / name).read_bytes().decode("utf-8")


# fixture, updates, options, 1-based lines expected to change
CASES: list[tuple[str, list[ImageUpdate], dict[str, Any], set[int]]] = [
    ("argocd-base-kustomization.yaml", [ImageUpdate("quay.io/argoproj/argocd", "v2.8.0")], {}, {8}),
    (
        "argocd-example-overlay-dev.yaml",
        [ImageUpdate("ghcr.io/acme/guestbook-ui", "0.3"), ImageUpdate("redis", "7.2.5-alpine")],
        {},
        {24, 26},
    ),
    ("podinfo-kustomization.yaml", [ImageUpdate("ghcr.io/stefanprodan/podinfo", "6.2.0")], {}, {17}),
    ("podinfo-deployment.yaml", [ImageUpdate("ghcr.io/stefanprodan/podinfo", "6.2.0")], {}, {26}),
    (
        "podinfo-values.yaml",
        [ImageUpdate("ghcr.io/stefanprodan/podinfo", "6.9.2"), ImageUpdate("docker.io/redis", "7.2.4")],
        {},
        {11, 100},
    ),
    ("bitnami-nginx-values.yaml", [ImageUpdate("bitnami/nginx", "1.29.2-debian-12-r0", DIGEST_C)], {}, {89}),
    (
        "bitnami-nginx-values.yaml",
        [ImageUpdate("docker.io/bitnami/nginx", "1.29.2-debian-12-r0", DIGEST_C)],
        {"helm_paths": HelmPaths("image.repository", "image.tag", "image.digest")},
        {89, 90},
    ),
    ("bitnami-nginx-values.yaml", [ImageUpdate("bitnami/git", "2.51.0-debian-12-r0")], {}, {214}),
    (
        "compose.yaml",
        [
            ImageUpdate("ghcr.io/acme/web", "1.5.0"),
            ImageUpdate("redis", "7.4"),
            ImageUpdate("postgres", "17"),
        ],
        {},
        {4, 16, 23},
    ),
    (
        "crlf-values.yaml",
        [ImageUpdate("ghcr.io/acme/web", "1.1.0"), ImageUpdate("ghcr.io/acme/worker", "2.4")],
        {},
        {4, 9},
    ),
    ("no-final-newline-kustomization.yaml", [ImageUpdate("ghcr.io/acme/web", "1.1.0")], {}, {7}),
    ("bom-unicode-values.yaml", [ImageUpdate("ghcr.io/acme/api", "3.2.0")], {}, {8}),
    (
        "flow-kustomization.yaml",
        [ImageUpdate("ghcr.io/acme/web", "1.1"), ImageUpdate("ghcr.io/acme/api-v2", "2.1.0")],
        {},
        {4},
    ),
    (
        "flow-values.yaml",
        [ImageUpdate("ghcr.io/acme/web", "1.1.0"), ImageUpdate("ghcr.io/acme/log", "1.3.0")],
        {},
        {1, 4},
    ),
    ("anchors-values.yaml", [ImageUpdate("ghcr.io/acme/web", "1.1.0")], {}, {5}),
    ("anchors-values.yaml", [ImageUpdate("ghcr.io/acme/worker", "3.1.0")], {}, {18}),
    (
        "quoted-and-empty-values.yaml",
        [ImageUpdate(f"ghcr.io/acme/{name}", "1.20") for name in "abcdefg"],
        {},
        {4, 8, 12, 17, 21, 25, 29},
    ),
    (
        "digests-kustomization.yaml",
        [
            ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_C),
            ImageUpdate("ghcr.io/acme/api", "1.1.0", DIGEST_C),
        ],
        {},
        {5, 6, 8},
    ),
    ("digests-deployment.yaml", [ImageUpdate("ghcr.io/acme/web", "1.1.0", DIGEST_C)], {}, {10, 13}),
    ("multi-document.yaml", [ImageUpdate("ghcr.io/acme/web", "1.1.0")], {}, {10, 25, 35}),
    ("large-values.yaml", [ImageUpdate("ghcr.io/acme/svc050", "2.0.0")], {}, {2673}),
    (
        "large-values.yaml",
        [ImageUpdate("ghcr.io/acme/svc000", "2.0.0"), ImageUpdate("ghcr.io/acme/svc112", "2.0.0")],
        {},
        {23, 5959},
    ),
]


def changed_lines(old: str, new: str) -> set[int]:
    old_lines, new_lines = old.splitlines(keepends=True), new.splitlines(keepends=True)
    assert len(old_lines) == len(new_lines), "a line was added or removed"
    return {n for n, (a, b) in enumerate(zip(old_lines, new_lines, strict=True), start=1) if a != b}


def strip_changed(text: str, lines: set[int]) -> list[str]:
    return [line for n, line in enumerate(text.splitlines(keepends=True), start=1) if n not in lines]


@pytest.mark.parametrize(
    ("name", "updates", "options", "lines"),
    CASES,
    ids=[f"{case[0]}:{','.join(u.image.rsplit('/', 1)[-1] for u in case[1])}" for case in CASES],
)
def test_fixture_bump_changes_exactly_the_intended_lines(
    name: str, updates: list[ImageUpdate], options: dict[str, Any], lines: set[int]
) -> None:
    text = read(name)
    result = bump_text(text, updates, source=name, **options)
    assert changed_lines(text, result.text) == lines
    assert strip_changed(text, lines) == strip_changed(result.text, lines)
    assert {change.line for change in result.changes} <= lines
    wanted = {update.image.rsplit("/", 1)[-1]: update for update in updates}
    for occurrence in find_images(result.text, **options):
        update = wanted.get(occurrence.image.rsplit("/", 1)[-1])
        if update is not None:  # a digest-only entry stays digest-only
            assert occurrence.tag in (update.tag, None), f"{name}:{occurrence.line}"
            assert occurrence.digest in (update.digest, None), f"{name}:{occurrence.line}"
            assert (occurrence.tag, occurrence.digest) != (None, None), f"{name}:{occurrence.line}"


def test_fixture_bump_keeps_crlf_and_the_byte_order_mark() -> None:
    crlf = bump_text(read("crlf-values.yaml"), [ImageUpdate("ghcr.io/acme/web", "1.1.0")]).text
    assert crlf.count("\r\n") == crlf.count("\n") == 9
    assert '  tag: "1.1.0"\r\n' in crlf
    bom = bump_text(read("bom-unicode-values.yaml"), [ImageUpdate("ghcr.io/acme/api", "3.2.0")]).text
    assert bom.startswith("\ufeff# Überblick")
    assert "    tag: 3.2.0 # π-ish\n" in bom


def test_fixture_without_final_newline_stays_without_one() -> None:
    text = bump_text(
        read("no-final-newline-kustomization.yaml"), [ImageUpdate("ghcr.io/acme/web", "1.1.0")]
    ).text
    assert text.endswith("    newTag: 1.1.0")


def test_fixture_quoted_and_empty_tags_read_back_as_the_new_strings() -> None:
    updates = [ImageUpdate(f"ghcr.io/acme/{name}", "1.20") for name in "abcdefg"]
    text = bump_text(read("quoted-and-empty-values.yaml"), updates).text
    data = YAML(typ="safe", pure=True).load(text)
    assert {name: data[name]["image"]["tag"] for name in "abcdefg"} == dict.fromkeys("abcdefg", "1.20")
    assert "tag: '1.20'" in text  # single quotes stay single
    assert 'tag: "1.20"' in text  # plain becomes double-quoted: 1.20 would read as a number


def test_fixture_kustomize_entry_matched_only_by_its_new_name() -> None:
    with pytest.raises(ManifestError, match=r"ghcr\.io/acme/guestbook-ui \(line 24\)"):
        bump_text(
            read("argocd-example-overlay-dev.yaml"),
            [ImageUpdate("gcr.io/heptio-images/ks-guestbook-demo", "1")],
        )


def test_fixture_pinned_digest_without_new_digest_is_refused() -> None:
    with pytest.raises(ManifestError, match=r"digests-kustomization.yaml:5: .* pins a digest"):
        bump_text(
            read("digests-kustomization.yaml"),
            [ImageUpdate("ghcr.io/acme/web", "1.1.0")],
            source="digests-kustomization.yaml",
        )


def test_fixture_with_tabs_is_reported_with_its_line() -> None:
    with pytest.raises(ManifestError, match=r"^malformed-tabs.yaml:3:1: malformed YAML: .*tab"):
        find_images(read("malformed-tabs.yaml"), source="malformed-tabs.yaml")


def test_generated_fixtures_match_their_generator() -> None:
    spec = importlib.util.spec_from_file_location("make_fixtures", FIXTURES / "make_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for name, text in module.FILES.items():
        assert read(name) == text, f"{name} differs from make_fixtures.py: re-run it"
    assert 5900 <= read("large-values.yaml").count("\n") <= 6100


def test_pure_python_parser_gives_the_same_results_as_libyaml(monkeypatch: pytest.MonkeyPatch) -> None:
    results = {}
    for parser in (yaml_scalars._CParser, None):  # libyaml, then ruamel's pure-Python parser
        monkeypatch.setattr(yaml_scalars, "_CParser", parser)
        results[parser is None] = [
            bump_text(read(name), updates, **options).text for name, updates, options, _ in CASES[:-2]
        ]
    assert results[True] == results[False]
