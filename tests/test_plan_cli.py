"""`ferry plan OWNER/REPO` against the sandbox: it prints what a pass would do and does none of it."""

from __future__ import annotations

import asyncio
import json
import os
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from bot.cli import main
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import ARGOCD_SERVER, FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
TOKEN_ROUTE = "POST /app/installations/{installation_id}/access_tokens"


@pytest.fixture
async def quiet_world(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[World]:
    """A started world whose own Ferry has stopped (so only `ferry plan` looks), with 1.5.0 released,
    and FERRY_* variables pointing `ferry plan` at its stand-ins."""
    world = World(progress_seconds=0.2)
    try:
        await world.start(quick_pipeline, RELEASES)
        await world.stop_ferry()
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        for name in [n for n in os.environ if n.startswith("FERRY_")]:
            monkeypatch.delenv(name)
        monkeypatch.setenv("FERRY_APP_ID", "1")
        monkeypatch.setenv("FERRY_PRIVATE_KEY", world.github.app_private_key_pem)
        monkeypatch.setenv("FERRY_WEBHOOK_SECRET", world.webhook_secret)
        monkeypatch.setenv("FERRY_GITHUB_URL", world.github_url)
        servers = {ARGOCD_SERVER: {"url": world.argocd_url, "token": world.argocd_token}}
        monkeypatch.setenv("FERRY_ARGOCD_SERVERS", json.dumps(servers))
        yield world
    finally:
        await world.stop()


def writes(world: World) -> Counter[str]:
    """Every write request the GitHub stand-in has answered, except minting installation tokens."""
    return Counter(
        {
            route: count
            for route, count in world.github.requests.items()
            if not route.startswith(("GET ", "HEAD ")) and route != TOKEN_ROUTE
        }
    )


async def test_plan_prints_the_promotion_a_pass_would_open_and_opens_nothing(
    quiet_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    assert quiet_world.argocd is not None
    before, syncs = writes(quiet_world), len(quiet_world.argocd.syncs)
    assert await asyncio.to_thread(main, ["plan", FULL_NAME]) == 0
    lines = capsys.readouterr().out.splitlines()
    opening = [line for line in lines if line.startswith("open ferry/dev/")]
    assert len(opening) == 1, lines
    assert "web 1.5.0" in opening[0] and "to dev" in opening[0]
    assert quiet_world.github.pulls == {}
    assert writes(quiet_world) == before
    assert len(quiet_world.argocd.syncs) == syncs


async def test_plan_json_prints_a_list_of_kind_and_action(
    quiet_world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    before = writes(quiet_world)
    assert await asyncio.to_thread(main, ["plan", FULL_NAME, "--json"]) == 0
    planned = json.loads(capsys.readouterr().out)
    assert isinstance(planned, list) and planned
    assert all(set(item) == {"kind", "action"} for item in planned)
    opens = [item for item in planned if item["kind"] == "open_promotion"]
    assert [item["action"].split(":")[0].rsplit("/", 1)[0] for item in opens] == ["open ferry/dev"]
    assert quiet_world.github.pulls == {}
    assert writes(quiet_world) == before


async def test_plan_for_a_repository_the_app_is_not_installed_on_names_the_ones_it_is(
    quiet_world: World,
) -> None:
    with pytest.raises(SystemExit) as exited:
        await asyncio.to_thread(main, ["plan", "acme/elsewhere"])
    assert "acme/elsewhere" in str(exited.value.code) and FULL_NAME in str(exited.value.code)


async def test_plan_needs_no_webhook_secret_it_would_never_use(
    quiet_world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FERRY_WEBHOOK_SECRET")
    assert await asyncio.to_thread(main, ["plan", FULL_NAME]) == 0
    assert any(line.startswith("open ferry/dev/") for line in capsys.readouterr().out.splitlines())
