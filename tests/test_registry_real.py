"""Against the real registry (distribution 2.8 on 127.0.0.1): tags, digests, `ferry select` and `freight`."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import pytest
from registry_server import LocalRegistry, registry  # noqa: F401 - the fixture

from bot.cli import main
from bot.core.config import ImageRule, Warehouse
from bot.core.selection import TagRule
from bot.errors import RegistryError
from bot.registry import RegistryClient, discover_freight

pytestmark = pytest.mark.registry


WEB_TAGS = ("1.9.0", "1.9.3", "1.10.0", "1.10.1-rc.1", "2.0.0-beta.1", "latest")


@pytest.fixture(scope="module")
def web(registry: LocalRegistry) -> dict[str, str]:  # noqa: F811
    """acme/web with a release line, a prerelease and `latest`; tag -> digest the PUT answered."""
    digests = {tag: registry.push("acme/web", tag) for tag in WEB_TAGS}
    digests["docker-1.0.0"] = registry.push("acme/web", "docker-1.0.0", docker=True)
    return digests


async def test_tags_listed_are_the_tags_pushed(registry: LocalRegistry, web: dict[str, str]) -> None:  # noqa: F811
    async with RegistryClient() as client:
        tags = await client.list_tags(f"{registry.host}/acme/web")
    assert sorted(tags) == sorted(web)


async def test_digest_is_the_one_the_push_answered_for_oci_and_docker_manifests(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
) -> None:
    async with RegistryClient() as client:
        assert await client.digest(f"{registry.host}/acme/web", "1.10.0") == web["1.10.0"]
        assert await client.digest(f"{registry.host}/acme/web", "docker-1.0.0") == web["docker-1.0.0"]


async def test_unknown_repository_is_a_permanent_error_that_says_so(registry: LocalRegistry) -> None:  # noqa: F811
    async with RegistryClient() as client:
        with pytest.raises(RegistryError) as caught:
            await client.list_tags(f"{registry.host}/acme/nope")
    assert not caught.value.temporary
    assert 'repository "acme/nope" not found' in str(caught.value)
    assert "unknown repository" in str(caught.value)


async def test_unknown_tag_is_a_permanent_error_naming_the_tag(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
) -> None:
    async with RegistryClient() as client:
        with pytest.raises(RegistryError, match=r'tag "9\.9\.9" not found') as caught:
            await client.digest(f"{registry.host}/acme/web", "9.9.9")
    assert not caught.value.temporary


def test_ferry_select_with_image_prints_the_newest_tag_and_its_registry_digest(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["select", "--image", f"{registry.host}/acme/web", "--semver", "^1", "--digest"])
    assert (code, capsys.readouterr().out) == (0, f"1.10.0@{web['1.10.0']}\n")


def test_ferry_select_with_prerelease_takes_the_newest_prerelease(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["select", "--image", f"{registry.host}/acme/web", "--prerelease"]) == 0
    assert capsys.readouterr().out == "2.0.0-beta.1\n"


def test_ferry_select_follow_prints_the_current_digest_of_a_mutable_tag(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["select", "--image", f"{registry.host}/acme/web", "--follow", "latest"]) == 0
    assert capsys.readouterr().out == f"latest@{web['latest']}\n"


def test_ferry_select_on_an_unknown_repository_fails_with_a_message(
    registry: LocalRegistry,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["select", "--image", f"{registry.host}/acme/nope"]) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith('ferry: repository "acme/nope" not found on registry')


def test_ferry_select_when_nothing_qualifies_fails_naming_the_newest_rejected(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["select", "--image", f"{registry.host}/acme/web", "--semver", ">=3"]) == 1
    err = capsys.readouterr().err
    assert f'image "{registry.host}/acme/web": no tag qualifies for semver ">=3" among 7 tags' in err
    assert "newest rejected: 2.0.0-beta.1 (a prerelease: set prerelease: true" in err


def test_ferry_select_on_an_unreachable_registry_fails_cleanly(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("bot.cli.select.CLI_RETRIES", 0)  # backoff is covered with a fake clock elsewhere
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert main(["select", "--image", f"127.0.0.1:{port}/acme/web"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(
        f'ferry: registry "127.0.0.1:{port}" is unreachable for image "127.0.0.1:{port}/acme/web"'
    )
    assert err.rstrip().endswith("1 attempt): check the host name and that the registry is up")
    assert "Traceback" not in err


def test_ferry_select_reads_tags_from_stdin(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("1.0.0\n1.2.0\n\n2.0.0-rc.1\nlatest\n"))
    assert main(["select", "--semver", "^1"]) == 0
    assert capsys.readouterr().out == "1.2.0\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["select", "--semver", ">= bar"], '">= bar" is not a version constraint'),
        (["select", "--allow", "(oops"], 'allow regex "(oops": missing ), unterminated subpattern'),
        (["select", "--digest"], "--digest needs --image"),
    ],
)
def test_ferry_select_refuses_malformed_rules_before_reading_anything(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 1
    assert message in capsys.readouterr().err


async def test_a_repushed_mutable_tag_changes_the_freight_id(registry: LocalRegistry) -> None:  # noqa: F811
    warehouse = Warehouse(images=[ImageRule(image=f"{registry.host}/acme/edge", digest="latest")])
    first_digest = registry.push("acme/edge", "latest", salt="first")
    async with RegistryClient() as client:
        before = await discover_freight(client, "edge", warehouse)
        registry.push("acme/edge", "latest", salt="second")
        after = await discover_freight(client, "edge", warehouse)
    assert before.images[0].digest == first_digest
    assert (
        before.tag_of(f"{registry.host}/acme/edge") == after.tag_of(f"{registry.host}/acme/edge") == "latest"
    )
    assert before.id != after.id
    assert TagRule.from_image_rule(warehouse.images[0]).strategy == "digest"


def test_ferry_freight_shows_the_newest_freight_of_each_warehouse(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    registry.push("acme/api", "3.1.0")
    api_digest = registry.push("acme/api", "3.2.0")
    config = tmp_path / ".github" / "ferry.yml"
    config.parent.mkdir()
    config.write_text(
        f"""\
version: 1
warehouses:
  web:
    images:
      - image: {registry.host}/acme/web
        semver: "^1"
      - image: {registry.host}/acme/api
        semver: ">=3"
stages:
  dev:
    from: {{warehouse: web}}
    update:
      - kustomize: overlays/dev
"""
    )
    assert main(["freight", str(tmp_path)]) == 0, capsys.readouterr().err
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["WAREHOUSE", "IMAGE", "TAG", "DIGEST", "FREIGHT"]
    rows = {line.split()[1]: line.split() for line in lines[1:]}
    assert rows[f"{registry.host}/acme/web"][2:4] == ["1.10.0", web["1.10.0"][:19]]
    assert rows[f"{registry.host}/acme/api"][2:4] == ["3.2.0", api_digest[:19]]
    assert len({row[4] for row in rows.values()}) == 1  # one freight for the warehouse

    assert main(["freight", str(config), "--json"]) == 0
    [freight] = json.loads(capsys.readouterr().out)
    assert freight["warehouse"] == "web"
    assert freight["freight"] == rows[f"{registry.host}/acme/web"][4]
    assert {i["tag"] for i in freight["images"]} == {"1.10.0", "3.2.0"}


def test_ferry_freight_reports_a_failing_warehouse_and_still_shows_the_others(
    registry: LocalRegistry,  # noqa: F811
    web: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "pipeline.yml"
    config.write_text(
        f"""\
version: 1
warehouses:
  web:
    images:
      - image: {registry.host}/acme/web
        semver: "~1.9"
  ghost:
    images:
      - image: {registry.host}/acme/ghost
        semver: "^1"
stages:
  dev:
    from: {{warehouse: web}}
    update:
      - kustomize: overlays/dev
  qa:
    from: {{warehouse: ghost}}
    update:
      - kustomize: overlays/qa
"""
    )
    assert main(["freight", str(config)]) == 1
    captured = capsys.readouterr()
    assert [line.split()[2] for line in captured.out.splitlines()[1:]] == ["1.9.3"]
    assert captured.err.startswith('ferry: warehouse "ghost": repository "acme/ghost" not found')
