"""Secrets never leave Ferry: the quickstart world (dev and staging promoted and verified, prod's PR opened,
then a broken release failing in dev), with faults on the error paths, logging at DEBUG; then every log
line, PR, comment, commit status and commit message is searched for every secret."""

from __future__ import annotations

import io
import json
import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from bot import events
from bot.logs import configure_logging
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
BROKEN = "1.6.0-broken"


def pipeline_taking_prereleases(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="20s")
    for warehouse in config["warehouses"].values():
        for image in warehouse["images"]:
            image["prerelease"] = True  # so the broken build is promoted and fails, and Ferry comments


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


def release(world: World, tag: str) -> None:
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)


def pem_body_lines(pem: str) -> list[str]:
    return [line for line in pem.splitlines() if line and not line.startswith("-----")]


def capture_installation_tokens(world: World) -> set[str]:
    """Every installation token Ferry presents: githubkit caches them process-wide, so one minted for an
    earlier test may be the one in use here; recording what the stand-in validates catches both."""
    seen: set[str] = set()
    state = world.github.state
    valid = state.installation_token_valid

    def recording(token: str) -> bool:
        ok = valid(token)
        if ok:
            seen.add(token)
        return ok

    state.installation_token_valid = recording  # type: ignore[method-assign]
    return seen


def git_messages(world: World) -> str:
    return subprocess.run(
        ["git", "-C", str(world.github.repo_path), "log", "--all", "--format=%B"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout


def everything_ferry_wrote(world: World) -> dict[str, str]:
    places = {}
    for number, pull in world.github.pulls.items():
        places[f"PR #{number} title"] = pull["title"]
        places[f"PR #{number} body"] = pull["body"] or ""
    for comment in world.github.comments:
        places[f"comment {comment['id']}"] = comment["body"]
    for sha, statuses in world.github.statuses.items():
        for status in statuses:
            places[f"status {status['context']} on {sha[:7]} ({status['id']})"] = json.dumps(
                [status["description"], status["target_url"]]
            )
    places["commit messages"] = git_messages(world)
    return places


async def test_no_secret_appears_in_logs_pull_requests_comments_statuses_or_commits(
    restore_logging: None,
) -> None:
    world = World(progress_seconds=0.2)
    pem = world.github.app_private_key_pem
    logs = io.StringIO()
    configure_logging("DEBUG", "json", secrets=[world.webhook_secret, world.argocd_token, pem], stream=logs)
    tokens = capture_installation_tokens(world)
    try:
        await world.start(pipeline_taking_prereleases, RELEASES)
        assert world.argocd is not None
        # Faults on the way, so error paths (the likeliest to print a request) are logged too.
        world.github.fail_next("POST", "/repos/{owner}/{repo}/pulls", 502)
        world.argocd.fail_next("POST", "/api/v1/applications/shop-staging/sync", 401, times=2)
        release(world, "1.5.0")
        await world.wait_for("the prod PR", lambda: world.kinds(events.PR_OPENED, "prod"), 60)
        release(world, BROKEN)
        await world.wait_for("the failure comment", lambda: world.kinds(events.COMMENT_POSTED), 30)
        assert world.runtime is not None
        await world.runtime.reconciler.idle()
        written = everything_ferry_wrote(world)  # before stop(), which removes the sandbox's repository
    finally:
        await world.stop()

    secrets = {
        "the webhook secret": world.webhook_secret,
        "the Argo CD token": world.argocd_token,
        "the App private key": pem,
    }
    secrets |= {f"line {i} of the App private key": line for i, line in enumerate(pem_body_lines(pem))}
    assert tokens, "Ferry presented no installation token: the capture is broken"
    for token in tokens:
        secrets[f"installation token {token[:8]}…"] = token
        secrets[f"the signature of installation token {token[:8]}…"] = token.rsplit(".", 1)[1]
    assert any("1.5.0" in text for text in written.values()) and world.github.comments
    written["the logs"] = logs.getvalue()
    assert '"level": "debug"' in written["the logs"] and "ferry" in written["the logs"]
    leaks = [
        f"{what} in {where}" for where, text in written.items() for what, s in secrets.items() if s in text
    ]
    assert leaks == []
