"""`ferry bump`, `ferry images`, `ferry select` and the promotion path answer the same for the same input.

A person tries a rule with `ferry select` and an edit with `ferry bump`, then lets the App do it: the App
must choose the same tag (warehouse) and write the same bytes (decide -> promotion_files -> bump_file).
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from registry_server import LocalRegistry, registry  # noqa: F401 - the fixture

from bot.cli import main
from bot.core.actions import OpenPromotion
from bot.core.config_load import load_config
from bot.core.decide import decide
from bot.core.freight import Freight, FreightImage
from bot.core.selection import select_tag
from bot.core.snapshot import Snapshot
from bot.core.stage_view import stage_view
from bot.core.warehouse import image_rules
from bot.registry import RegistryClient, discover_freight

OLD = "sha256:" + "a1" * 32
NEW = "sha256:" + "b2" * 32
IMAGE = "registry.example.com/shop/cart"


@dataclass(frozen=True)
class Case:
    """One file, the update entry naming it in the config, and the same as `ferry bump` flags."""

    path: str
    text: str
    entry: str
    flags: tuple[str, ...] = ()
    digest: str | None = NEW


CASES = {
    "kustomize newTag carrying a digest": Case(
        "overlays/dev/kustomization.yaml",
        f"kind: Kustomization\nimages:\n  - name: cart\n    newName: {IMAGE}\n    newTag: 2.4.0@{OLD}\n",
        "{kustomize: overlays/dev}",
    ),
    "kustomize newName carrying a tag": Case(
        "overlays/dev/kustomization.yaml",
        f"kind: Kustomization\nimages:\n  - {{name: cart, newName: '{IMAGE}:2.4.0'}}  # pinned by name\n",
        "{kustomize: overlays/dev}",
        digest=None,
    ),
    "kustomize digest field": Case(
        "kustomization.yaml",
        f"images:\n- name: {IMAGE}\n  newTag: '2.4.0'\n  digest: {OLD}\n",
        "{kustomize: .}",
    ),
    "Helm values with explicit paths": Case(
        "values.yaml",
        f"cart:\n  img:\n    repo: {IMAGE}\n    version: 2.4.0 # app\n    sha: '{OLD}'\n",
        "{helm: values.yaml, repository: cart.img.repo, tag: cart.img.version, digest: cart.img.sha}",
        (
            "--helm-repository",
            "cart.img.repo",
            "--helm-tag",
            "cart.img.version",
            "--helm-digest",
            "cart.img.sha",
        ),
    ),
    "Helm values found by shape, tag@digest": Case(
        "values.yaml",
        f'image:\n  registry: registry.example.com\n  repository: shop/cart\n  tag: "2.4.0@{OLD}"\n',
        "{helm: values.yaml}",
    ),
    "a whole reference at a path": Case(
        "deploy.yaml",
        f"spec:\n  containers:\n    - name: cart\n      image: {IMAGE}:2.4.0\n",
        "{yaml: deploy.yaml, path: 'spec.containers[0].image'}",
        ("--path", "spec.containers[0].image"),
        digest=None,
    ),
}


def config(entry: str) -> str:
    return (
        "version: 1\nwarehouses:\n  shop:\n    images:\n"
        f"      - {{image: {IMAGE}, semver: '>=2.0.0'}}\n"
        "stages:\n  dev:\n    from: {warehouse: shop}\n    auto_promote: true\n"
        f"    update:\n      - {entry}\n"
    )


def snapshot(case: Case, freight: Freight) -> Snapshot:
    files = {case.path: case.text}
    return Snapshot(
        repo="acme/gitops",
        default_branch="main",
        head_sha="1" * 40,
        now=datetime(2026, 11, 26, tzinfo=UTC),
        config=load_config(config(case.entry), files=files),
        config_commit="c" * 40,
        paths=frozenset(files),
        files=files,
        blob_shas=dict.fromkeys(files, "b" * 40),
        warehouse_freight={"shop": freight},
    )


@pytest.mark.parametrize("name", CASES)
def test_bump_images_and_the_promotion_path_agree_on_every_form(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = CASES[name]
    freight = Freight("shop", (FreightImage(IMAGE, "2.5.0", case.digest),))
    file = tmp_path / case.path
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(case.text)

    assert main(["images", "--json", str(file), *case.flags]) == 0
    [before] = json.loads(capsys.readouterr().out)
    view = stage_view(snapshot(case, freight), "dev")
    assert (before["image"], before["tag"], before["digest"]) == (
        IMAGE,
        view.tags[IMAGE],
        view.digests[IMAGE],
    )
    assert (before["tag"], before["digest"]) == ("2.4.0", OLD if case.digest else None)

    update = f"{IMAGE}=2.5.0" + (f"@{case.digest}" if case.digest else "")
    assert main(["bump", str(file), update, *case.flags]) == 0
    capsys.readouterr()
    [promotion] = [a for a in decide(snapshot(case, freight)) if isinstance(a, OpenPromotion)]
    assert promotion.files == ((case.path, file.read_text()),)

    assert main(["images", "--json", str(file), *case.flags]) == 0
    [after] = json.loads(capsys.readouterr().out)
    assert (after["tag"], after["digest"]) == ("2.5.0", case.digest if before["digest"] else None)
    assert "None" not in file.read_text()


RULES = {
    "numbers that are not versions": (
        "semver: '>=1.0.0'",
        ["--semver", ">=1.0.0"],
        ["2.2.0", "2.3.0", "40213377", "1203", "latest"],
        "2.3.0",
    ),
    "lenient, asked for": (
        "semver: '*', semver_strict: false",
        ["--semver", "*", "--lenient"],
        ["2.3.0", "2.10", "1.99.1"],
        "2.10",
    ),
    "calendar versions": (
        r"numeric: true, allow: '^v(?P<date>\d+-\d+-\d+)(?:-(?P<n>\d+))?$'",
        ["--strategy", "numeric", "--allow", r"^v(?P<date>\d+-\d+-\d+)(?:-(?P<n>\d+))?$"],
        ["v2026-1-30", "v2026-9-01", "v2026-12-25", "v2026-12-25-2", "v2026-12-25-10"],
        "v2026-12-25-10",
    ),
    "dev builds across base versions": (
        r"numeric: true, allow: '^(?P<version>\d+\.\d+\.\d+)-dev-(?P<build>\d+)$'",
        ["--strategy", "numeric", "--allow", r"^(?P<version>\d+\.\d+\.\d+)-dev-(?P<build>\d+)$"],
        ["1.4.0-dev-9", "1.4.0-dev-12", "1.5.0-dev-3", "1.4.0"],
        "1.5.0-dev-3",
    ),
}


def warehouse_rule(rule: str, image: str = IMAGE) -> str:
    return (
        f"version: 1\nwarehouses:\n  shop:\n    images:\n      - {{image: {image}, {rule}}}\n"
        "stages:\n  dev: {from: {warehouse: shop}, update: [{kustomize: overlays/dev}]}\n"
    )


@pytest.mark.parametrize("name", RULES)
def test_ferry_select_and_the_warehouse_choose_the_same_tag(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    rule, flags, tags, expected = RULES[name]
    [(_, warehouse)] = image_rules(load_config(warehouse_rule(rule)).warehouses["shop"])
    assert select_tag(tags, warehouse) == expected
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(tags) + "\n"))
    assert main(["select", *flags]) == 0
    assert capsys.readouterr().out == f"{expected}\n"


@pytest.mark.registry
def test_ferry_select_and_a_warehouse_poll_agree_against_a_real_registry(
    registry: LocalRegistry,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    for tag in ("2.2.0", "2.3.0", "40213377", "v2026-12-25"):
        registry.push("acme/agree", tag)
    image = f"{registry.host}/acme/agree"
    warehouse = load_config(warehouse_rule("semver: '*'", image)).warehouses["shop"]

    async def poll() -> Freight:
        async with RegistryClient() as client:
            return await discover_freight(client, "shop", warehouse)

    freight = asyncio.run(poll())
    assert main(["select", "--image", image, "--digest"]) == 0
    [chosen] = freight.images
    assert capsys.readouterr().out == f"{chosen.tag}@{chosen.digest}\n"
    assert chosen.tag == "2.3.0"
