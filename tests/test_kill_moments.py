"""``kill -9`` at six moments of a promotion, then a restart: each ends with the stage verified, one pull
request per promotion, one Argo CD sync per merge, no comment twice, and every command answered once,
including one posted while no Ferry ran.

Five moments kill the sandbox's in-process Ferry (its passes and deliveries dropped mid-way, as SIGKILL
drops them) from the stand-ins' own hooks, so the kill lands right after the named write; one kills a
real ``ferry serve`` process with SIGKILL mid-verification and starts a new process.
"""

from __future__ import annotations

import asyncio
import collections
import json
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from serve_process import ServeProcess
from test_faults import RELEASES, dev_only, release

from bot.argocd import PROMOTION_INFO_KEY
from bot.core.gates import health_context
from bot.sandbox.argocd_apps import git_app
from bot.sandbox.github_state import BOT_LOGIN
from bot.sandbox.proxy import Tuned
from bot.sandbox.world import FULL_NAME, World
from bot.settings import Settings

DEV, STAGING = health_context("dev"), health_context("staging")
CLAIM = timedelta(seconds=2)  # FERRY_COMMAND_CLAIM_TIMEOUT: a killed process's claim lapses this fast
STARTUP = 60.0  # a cold Python start on a busy machine


def dev_then_staging(config: dict[str, Any]) -> None:
    """dev, then staging opened by Ferry once dev is verified (it waits for a person to merge)."""
    dev_only(config)
    config["stages"]["staging"]["auto_promote"] = True
    config["stages"]["staging"]["auto_merge"] = False


async def manual_dev(world: World) -> None:
    """dev's app syncs only when asked, so Ferry's deploy request is a sync Argo CD counts."""
    assert world.argocd is not None
    world.argocd.set_spec("shop-dev", git_app("overlays/dev", "main"))


def pulls_of(world: World, stage: str) -> list[dict[str, Any]]:
    return [
        p for _, p in sorted(world.github.pulls.items()) if p["head"]["ref"].startswith(f"ferry/{stage}/")
    ]


def verdicts(world: World, sha: str, context: str) -> list[str]:
    return [r.state for r in world.github.state.statuses.get(sha, []) if r.context == context]


def dev_merge(world: World) -> str | None:
    merged = [p for p in pulls_of(world, "dev") if p["merged"]]
    return str(merged[-1]["merge_commit_sha"]) if merged else None


def dev_verified(world: World) -> bool:
    sha = dev_merge(world)
    return sha is not None and verdicts(world, sha, DEV)[-1:] == ["success"]


def replies(world: World, comment_id: int) -> int:
    marker = f"<!-- ferry:reply-to:{comment_id} -->"
    return sum(1 for c in world.github.comments if c["user"]["login"] == BOT_LOGIN and marker in c["body"])


def assert_nothing_twice(world: World) -> None:
    branches = collections.Counter(p["head"]["ref"] for p in world.github.pulls.values())
    assert all(n == 1 for n in branches.values()), branches
    assert len(pulls_of(world, "dev")) == 1
    bodies = collections.Counter(c["body"] for c in world.github.comments if c["user"]["login"] == BOT_LOGIN)
    assert all(n == 1 for n in bodies.values()), bodies
    assert world.argocd is not None
    syncs = collections.Counter((s[0], s[2].get(PROMOTION_INFO_KEY, s[1])) for s in world.argocd.syncs)
    assert all(n == 1 for n in syncs.values()), world.argocd.syncs
    sha = dev_merge(world)
    assert sha is not None
    assert [s[0] for s in world.argocd.syncs].count("shop-dev") == 1  # dev's merge was deployed once
    assert verdicts(world, sha, DEV).count("pending") == 1  # verification began once


Moment = Callable[[World, str, dict[str, Any]], bool]  # (world, event, payload) -> kill now


def _ref(payload: dict[str, Any]) -> str:
    return str(payload.get("ref") or payload.get("pull_request", {}).get("head", {}).get("ref", ""))


MOMENTS: dict[str, Moment] = {
    "after the branch push, before the pull request": lambda w, e, p: (
        e == "push" and _ref(p).startswith("refs/heads/ferry/dev/")
    ),
    "after the pull request, before the merge": lambda w, e, p: (
        e == "pull_request" and p.get("action") == "opened" and _ref(p).startswith("ferry/dev/")
    ),
    "after the merge, before pending": lambda w, e, p: (
        e == "pull_request" and p.get("action") == "closed" and bool(p["pull_request"].get("merged"))
    ),
    "after pending, before the sync": lambda w, e, p: (
        e == "status" and p.get("context") == DEV and p.get("state") == "pending"
    ),
    "after the verdict, before the next stage's pull request": lambda w, e, p: (
        e == "status" and p.get("context") == DEV and p.get("state") == "success"
    ),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
async def test_ferry_killed_at_a_moment_of_a_promotion_finishes_it_once_after_a_restart(moment: str) -> None:
    world = Tuned(command_claim_timeout=CLAIM)
    kills: list[asyncio.Task[None]] = []

    def kill_at_the_moment(event: str, payload: dict[str, Any]) -> None:
        if not kills and MOMENTS[moment](world, event, payload):
            kills.append(asyncio.get_running_loop().create_task(world.stop_ferry(crash=True)))

    try:
        await world.start(dev_then_staging, RELEASES, before_ferry=manual_dev)
        async with world.person("rita", "write", ["acme/release-managers"]) as rita:
            issue = (await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})).json()
            await world.settle()
            world.github.on_event.append(kill_at_the_moment)
            release(world, "1.5.0")
            asked = [await comment(rita, issue["number"], "/help")]
            await world.wait_for(f"the kill {moment}", lambda: kills and kills[0].done(), 60)
            asked.append(await comment(rita, issue["number"], "/status"))  # while no Ferry runs
            await world.start_ferry()
            await world.wait_for("dev verified", lambda: dev_verified(world), 60)
            await world.wait_for("every command answered", lambda: all(replies(world, c) for c in asked), 30)
            await world.wait_for("staging's promotion", lambda: pulls_of(world, "staging"), 30)
            await world.settle()
        assert [replies(world, c) for c in asked] == [1, 1]
        assert len(pulls_of(world, "staging")) == 1
        assert_nothing_twice(world)
    finally:
        await world.stop()


async def comment(person: Any, issue: int, body: str) -> int:
    response = await person.post(f"/repos/{FULL_NAME}/issues/{issue}/comments", json={"body": body})
    response.raise_for_status()
    return int(response.json()["id"])


# ---- a real process, SIGKILL mid-verification ------------------------------------------------------------


def serve_env(settings: Settings) -> dict[str, str]:
    """The sandbox world's settings as the environment of a ``ferry serve`` process."""
    servers = {
        name: {"url": str(s.url), "token": _plain(s.token)} for name, s in settings.argocd_servers.items()
    }
    return {
        "FERRY_APP_ID": str(settings.app_id),
        "FERRY_PRIVATE_KEY": _plain(settings.private_key),
        "FERRY_WEBHOOK_SECRET": _plain(settings.webhook_secret),
        "FERRY_GITHUB_URL": str(settings.github_url),
        "FERRY_ARGOCD_SERVERS": json.dumps(servers),
        "FERRY_POLL_FAST": "PT0.2S",
        "FERRY_POLL_IDLE": "1s",
        "FERRY_COMMAND_CLAIM_TIMEOUT": f"{CLAIM.total_seconds():g}s",
        "FERRY_LOG_FORMAT": "text",
    }


async def test_a_ferry_serve_process_killed_with_sigkill_mid_verification_is_finished_once_by_the_next(
    tmp_path: Path,
) -> None:
    world = World(progress_seconds=1.0)  # verification lasts long enough to kill it in the middle
    ferries: list[ServeProcess] = []
    try:
        await world.start(dev_only, RELEASES, before_ferry=manual_dev)
        await world.stop_ferry()  # its port and its work go to the real processes
        env = serve_env(world.settings())
        first = ServeProcess(world.ferry_port, env, tmp_path / "first.log")
        ferries.append(first)
        await first.start()
        await first.wait_until("/healthz", lambda: _up(first), STARTUP)
        async with world.person("rita", "write", ["acme/release-managers"]) as rita:
            issue = (await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})).json()
            release(world, "1.5.0")
            asked = [await comment(rita, issue["number"], "/help")]

            async def mid_verification() -> bool:
                sha = dev_merge(world)
                assert world.argocd is not None
                return (
                    sha is not None and verdicts(world, sha, DEV) == ["pending"] and bool(world.argocd.syncs)
                )

            await first.wait_until("dev's sync, its verification running", mid_verification, 60, every=0.02)
            await first.kill()  # SIGKILL
            asked.append(await comment(rita, issue["number"], "/status"))

            second = ServeProcess(world.ferry_port, env, tmp_path / "second.log")
            ferries.append(second)
            await second.start()

            async def finished() -> bool:
                return dev_verified(world) and all(replies(world, c) for c in asked)

            await second.wait_until("dev verified and every command answered", finished, STARTUP + 30)
            await asyncio.sleep(1.0)  # a late duplicate would show by now
        assert [replies(world, c) for c in asked] == [1, 1]
        assert_nothing_twice(world)
    finally:
        for ferry in ferries:
            await ferry.kill()
        await world.stop()


def _plain(value: Any) -> str:
    return str(value.get_secret_value() if hasattr(value, "get_secret_value") else value)


async def _up(ferry: ServeProcess) -> bool:
    return (await ferry.healthz())[0] == 200
