"""`ferry doctor` against the sandbox world: all ✔ when the installation is set up as docs/install.md says,
then each thing broken in turn shows ✘ (or !) with the fix a person needs."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.app_manifest import default_events, default_permissions
from bot.core.gates import STATUS_GATE
from bot.doctor import Check, failed
from bot.doctor_facts import diagnose
from bot.sandbox.world import FULL_NAME, World

ROOT = Path(__file__).resolve().parent.parent
RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}


def unchanged(config: dict[str, object]) -> None:
    """The example's config as it is."""


@pytest.fixture
async def world() -> AsyncIterator[World]:
    """The sandbox set up as docs/install.md says: the App as its manifest asks (administration included),
    the default branch requiring ferry/gate, Ferry receiving the App's webhooks."""
    world = World()
    try:
        await world.start(unchanged, RELEASES)
        world.github.set_app_permissions(default_permissions())
        world.github.set_app_events(default_events())
        world.github.set_branch_protection("main", contexts=[STATUS_GATE])
        await world.github.push_files({"README.md": b"the shop's environments\n"}, "a person's commit")
        await world.github.wait_for_deliveries()
        yield world
    finally:
        await world.stop()


async def checks_of(world: World) -> list[Check]:
    return await diagnose(world.settings(), FULL_NAME)


def the(checks: list[Check], name: str) -> Check:
    found = [c for c in checks if c.name == name]
    assert len(found) == 1, f"no single check {name!r} in {[c.name for c in checks]}"
    return found[0]


def not_ok(checks: list[Check]) -> list[Check]:
    return [c for c in checks if c.state != "ok"]


async def test_a_sandbox_set_up_as_the_guide_says_passes_every_check(world: World) -> None:
    checks = await checks_of(world)
    assert not_ok(checks) == []
    names = [c.name for c in checks]
    assert names[:5] == [
        "App installed",
        "App permissions",
        "App events",
        "installation permissions",
        "App webhook",
    ]
    assert the(checks, "App webhook").detail.startswith(
        f"GitHub delivers to {world.github.webhook_url} (last: push"
    )
    assert ".github/ferry.yml" in names and "branch protection (main)" in names
    for stage in ("dev", "staging", "prod"):
        assert f"stage {stage}: files" in names
    dev = the(checks, "stage dev: files").detail
    assert dev.startswith("overlays/dev/kustomization.yaml: ")
    assert "/acme/web 1.4.2" in dev and "/acme/worker 1.4.2" in dev
    registry = [c for c in checks if c.name.startswith("registry: ")]
    assert len(registry) == 2 and all("picks 1.4.2" in c.detail for c in registry)
    argo = {
        c.name.removeprefix("stage ").split(": Argo CD app ")[1]: c.detail
        for c in checks
        if "Argo CD" in c.name
    }
    assert list(argo) == ["shop-dev", "shop-staging", "shop-prod-eu", "shop-prod-us"]
    assert "automated sync of main: after a merge Ferry asks for a refresh" in argo["shop-dev"]
    assert "manual sync: after a merge Ferry syncs it to main" in argo["shop-prod-eu"]
    assert "applications, sync, default/shop-prod-eu, allow" in argo["shop-prod-eu"]
    assert (
        "automated" in argo["shop-prod-us"]
        and f"multi-source: Ferry judges source 2 ({FULL_NAME})" in argo["shop-prod-us"]
    )


async def test_an_argo_cd_app_the_token_cannot_see_fails_with_the_policy_line_to_add(world: World) -> None:
    assert world.argocd is not None
    world.argocd.remove_app("shop-staging")
    checks = await checks_of(world)
    check = the(checks, "stage staging: Argo CD app shop-staging")
    assert check.state == "fail"
    assert check.detail == 'not found on server "default", or the token may not get it'
    assert "applications, get, */shop-staging, allow" in check.fix
    assert the(checks, "stage dev: Argo CD app shop-dev").state == "ok"


async def test_a_refused_argo_cd_token_fails_each_app_naming_the_server(world: World) -> None:
    settings = world.settings()
    servers = {
        name: s.model_copy(update={"token": SecretStr("expired")})
        for name, s in settings.argocd_servers.items()
    }
    checks = await diagnose(settings.model_copy(update={"argocd_servers": servers}), FULL_NAME)
    argo = [c for c in checks if "Argo CD" in c.name]
    assert len(argo) == 4 and {c.state for c in argo} == {"fail"}
    assert argo[0].detail.startswith('Argo CD server "default" refused the token')
    assert "expired" not in argo[0].detail
    assert 'check server "default" in FERRY_ARGOCD_SERVERS' in argo[0].fix


async def test_a_sync_window_warns_that_the_stages_deploys_wait_for_it(world: World) -> None:
    assert world.argocd is not None
    world.argocd.add_sync_window("deny", applications=["shop-prod-*"])
    checks = await checks_of(world)
    eu, us = (
        the(checks, "stage prod: Argo CD app shop-prod-eu"),
        the(checks, "stage prod: Argo CD app shop-prod-us"),
    )
    assert (eu.state, us.state) == ("warn", "warn")
    assert "a sync window blocks syncs now (deny '* * * * *' for 1h)" in eu.detail
    assert eu.fix.startswith("Ferry's sync waits until the window ends") and us.fix.startswith(
        "auto-sync waits"
    )
    assert the(checks, "stage dev: Argo CD app shop-dev").state == "ok"
    assert not failed(checks)


async def test_a_missing_permission_fails_with_where_to_grant_it(world: World) -> None:
    world.github.set_app_permissions({k: v for k, v in default_permissions().items() if k != "deployments"})
    check = the(await checks_of(world), "App permissions")
    assert check.state == "fail" and check.detail == "missing deployments: write"
    assert "grant Deployments: Read and write on the App's Permissions & events page" in check.fix
    assert "/organizations/acme/settings/apps/ferry-sandbox/permissions" in check.fix


async def test_without_the_optional_administration_permission_branch_protection_is_a_warning(
    world: World,
) -> None:
    world.github.set_app_permissions(default_permissions(optional=False))
    checks = await checks_of(world)
    assert [(c.name, c.state) for c in not_ok(checks)] == [
        ("App permissions", "warn"),
        ("branch protection (main)", "warn"),
    ]
    assert "administration: read, which is optional" in the(checks, "branch protection (main)").detail
    assert not failed(checks)


async def test_more_permissions_than_ferry_uses_is_a_warning(world: World) -> None:
    world.github.set_app_permissions(default_permissions() | {"checks": "write", "actions": "read"})
    check = the(await checks_of(world), "App permissions")
    assert check.state == "warn" and check.detail == "more than Ferry uses: actions: read, checks: write"
    assert check.fix.startswith("lower the permissions Ferry does not use")


async def test_an_event_not_subscribed_fails_naming_it(world: World) -> None:
    world.github.set_app_events([e for e in default_events() if e != "pull_request_review"])
    check = the(await checks_of(world), "App events")
    assert check.state == "fail" and check.detail == "not subscribed to pull_request_review"
    assert "Subscribe to events" in check.fix


async def test_an_invalid_config_fails_with_its_problems_and_stops_the_checks_that_need_it(
    world: World,
) -> None:
    await world.github.push_files(
        {".github/ferry.yml": b"version: 1\nwarehouses: {}\nstages: []\n"}, "break it"
    )
    checks = await checks_of(world)
    check = the(checks, ".github/ferry.yml")
    assert check.state == "fail" and ".github/ferry.yml:3:" in check.detail
    assert "ferry validate" in check.fix
    assert not any(c.name.startswith(("stage ", "registry: ")) for c in checks)
    assert the(checks, "branch protection (main)").state == "ok"


async def test_a_config_that_is_not_there_fails(world: World) -> None:
    await world.github.push_files({".github/ferry.yml": None}, "remove it")
    check = the(await checks_of(world), ".github/ferry.yml")
    assert (check.state, check.detail) == ("fail", "not found on main")


async def test_a_stage_file_without_an_image_of_its_warehouse_fails_with_how_to_add_it(world: World) -> None:
    host = world.registry.host
    staging = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\n"
        f"images:\n  - name: {host}/acme/web\n    newTag: 1.4.1\n"
    )
    await world.github.push_files({"overlays/staging/kustomization.yaml": staging.encode()}, "drop worker")
    checks = await checks_of(world)
    check = the(checks, "stage staging: files")
    assert check.state == "fail"
    assert f'image {host}/acme/worker of warehouse "shop" is in none of the files' in check.detail
    assert "ferry bump FILE IMAGE=TAG" in check.fix and "stages.staging.update" in check.fix
    assert the(checks, "stage dev: files").state == "ok"


async def test_a_registry_that_does_not_answer_fails_for_each_of_its_images(world: World) -> None:
    await world.registry.stop()
    checks = await checks_of(world)
    registry = [c for c in checks if c.name.startswith("registry: ")]
    assert [c.state for c in registry] == ["fail", "fail"]
    assert all("is reachable from where Ferry runs" in c.fix for c in registry)


async def test_webhooks_that_do_not_reach_ferry_fail_with_where_to_look(world: World) -> None:
    await world.stop_ferry()
    await world.github.push_files({"README.md": b"changed while Ferry is away\n"}, "another commit")
    await world.github.wait_for_deliveries()
    check = the(await checks_of(world), "App webhook")
    assert check.state == "fail"
    assert check.detail.startswith(
        f"the last delivery to {world.github.webhook_url} failed: failed to connect"
    )
    assert "reach Ferry's Service" in check.fix and "redeliver" in check.fix


async def test_an_unprotected_branch_fails_with_how_to_require_the_gate(world: World) -> None:
    world.github.remove_branch_protection("main")
    check = the(await checks_of(world), "branch protection (main)")
    assert check.state == "fail" and check.detail.startswith("main is not protected")
    assert "require the status check ferry/gate" in check.fix


async def test_protection_that_does_not_require_the_gate_fails(world: World) -> None:
    world.github.set_branch_protection("main", contexts=["ci"])
    check = the(await checks_of(world), "branch protection (main)")
    assert (check.state, check.detail) == ("fail", "ferry/gate is not required (required: ci)")


async def test_the_command_prints_a_table_and_json_and_fails_when_a_check_fails(world: World) -> None:
    world.github.remove_branch_protection("main")
    settings = world.settings()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FERRY_")} | {
        "FERRY_APP_ID": str(settings.app_id),
        "FERRY_PRIVATE_KEY": world.github.app_private_key_pem,
        "FERRY_GITHUB_URL": world.github_url,
        "FERRY_ARGOCD_SERVERS": json.dumps(
            {
                name: {"url": str(s.url), "token": s.token.get_secret_value()}
                for name, s in settings.argocd_servers.items()
            }
        ),
    }

    async def run(*args: str) -> tuple[int, str]:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "doctor", FULL_NAME, *args, cwd=ROOT, env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(60):
            out, err = await process.communicate()
        assert not err.strip() or process.returncode, err.decode()
        return int(process.returncode or 0), out.decode()

    code, table = await run()
    assert code == 1
    assert table.startswith(f"ferry doctor {FULL_NAME}\n✔ App installed")
    assert "✘ branch protection (main)" in table and "fix: in the repository's Settings → Branches" in table
    code, text = await run("--json")
    report = json.loads(text)
    assert code == 1 and report["ok"] is False and report["repository"] == FULL_NAME
    assert report["counts"]["fail"] >= 1
    assert {"name", "state", "detail", "fix"} == set(report["checks"][0])
