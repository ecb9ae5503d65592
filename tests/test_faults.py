"""GitHub misbehaving mid-promotion, repeated deliveries, newer freight and a moving base: the sandbox
world runs Ferry's real code path against the GitHub stand-in, which injects the faults."""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx

from bot import events
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import World
from bot.server import WEBHOOK_PATH, signature_for

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
PULLS = "/repos/{owner}/{repo}/pulls"
COMMITS = "/repos/{owner}/{repo}/git/commits"
LABELS = "/repos/{owner}/{repo}/issues/{issue_number}/labels"
SECONDARY_RATE_LIMIT = {
    "message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
    "documentation_url": "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api",
}
DEV_FILE = "overlays/dev/kustomization.yaml"


def dev_only(config: dict[str, Any]) -> None:
    """dev auto-promotes and auto-merges; nothing downstream moves, so the tests watch one stage."""
    quick_pipeline(config, verify_timeout="20s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


def dev_waits_for_a_person(config: dict[str, Any]) -> None:
    """As ``dev_only``, but dev's PRs stay open until someone merges them."""
    dev_only(config)
    config["stages"]["dev"]["auto_merge"] = False


@contextlib.asynccontextmanager
async def sandbox(edit: Callable[[dict[str, Any]], None] = dev_only) -> AsyncIterator[World]:
    world = World(progress_seconds=0.2)
    try:
        await world.start(edit, RELEASES)
        yield world
    finally:
        await world.stop()


def release(world: World, tag: str) -> None:
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)


def dev_pulls(world: World) -> list[dict[str, Any]]:
    """Every dev promotion PR ever opened (open, closed or merged), oldest first."""
    return [p for _, p in sorted(world.github.pulls.items()) if p["head"]["ref"].startswith("ferry/dev/")]


def git(world: World, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(world.github.repo_path), *args], check=True, capture_output=True, text=True
    ).stdout


def promotion_branches(world: World, stage: str) -> list[str]:
    refs = git(world, "for-each-ref", "--format=%(refname:short)", f"refs/heads/ferry/{stage}/")
    return refs.split()


def label_names(pull: dict[str, Any]) -> set[str]:
    return {label["name"] for label in pull["labels"]}


async def merged_into_dev(world: World) -> None:
    await world.wait_for("dev's promotion merged", lambda: world.kinds(events.PR_MERGED, "dev"), 45)


async def settle(world: World) -> None:
    """Let queued webhooks arrive and every pass they start finish (bounded: fails naming what hung)."""
    await world.settle()


def assert_one_whole_promotion(world: World) -> None:
    pulls = dev_pulls(world)
    assert len(pulls) == 1, [p["head"]["ref"] for p in pulls]
    assert label_names(pulls[0]) >= {"ferry", "stage:dev"}
    assert promotion_branches(world, "dev") == [pulls[0]["head"]["ref"]]


# ---- GitHub failing in the middle of a promotion ---------------------------------------------------


async def test_a_502_on_opening_the_pull_request_is_retried_into_exactly_one_promotion() -> None:
    async with sandbox() as world:
        world.github.fail_next("POST", PULLS, 502)
        release(world, "1.5.0")
        await merged_into_dev(world)
        assert world.github.requests[f"POST {PULLS}"] == 2  # the refused attempt, then the retry
        assert_one_whole_promotion(world)


async def test_a_secondary_rate_limit_on_the_commit_is_waited_out_into_exactly_one_promotion() -> None:
    async with sandbox() as world:
        world.github.fail_next("POST", COMMITS, 403, headers={"Retry-After": "1"}, body=SECONDARY_RATE_LIMIT)
        release(world, "1.5.0")
        await merged_into_dev(world)
        assert world.github.requests[f"POST {COMMITS}"] == 2
        assert_one_whole_promotion(world)


async def test_a_502_on_labelling_still_ends_with_a_labelled_promotion() -> None:
    async with sandbox() as world:
        world.github.fail_next("POST", LABELS, 502)
        release(world, "1.5.0")
        await merged_into_dev(world)
        assert world.github.requests[f"POST {PULLS}"] == 1
        assert_one_whole_promotion(world)


# ---- the same delivery twice -----------------------------------------------------------------------


def record_payloads(world: World) -> list[tuple[str, dict[str, Any]]]:
    sent: list[tuple[str, dict[str, Any]]] = []
    world.github.on_event.append(lambda event, payload: sent.append((event, json.loads(json.dumps(payload)))))
    return sent


async def post_delivery(world: World, event: str, payload: dict[str, Any], delivery_id: str) -> int:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery_id,
        "X-Hub-Signature-256": signature_for(world.webhook_secret.encode(), body),
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{world.ferry_port}{WEBHOOK_PATH}", content=body, headers=headers
        )
    return response.status_code


def what_ferry_did(world: World) -> tuple[int, int, int, int, list[str]]:
    assert world.argocd is not None
    statuses = sum(len(v) for v in world.github.statuses.values())
    kinds = [e.kind for e in world.timeline.entries if e.kind != events.FREIGHT_DISCOVERED]
    return len(world.github.pulls), len(world.github.comments), statuses, len(world.argocd.syncs), kinds


def merged_pull_event(sent: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    return next(
        p
        for e, p in sent
        if e == "pull_request" and p.get("action") == "closed" and p["pull_request"].get("merged")
    )


async def dev_verified(world: World) -> None:
    def done() -> bool:
        return any(e.detail.startswith("success") for e in world.kinds(events.HEALTH_VERDICT, "dev"))

    await world.wait_for("dev's verdict", done, 30)


async def test_the_same_delivery_twice_changes_nothing() -> None:
    async with sandbox() as world:
        sent = record_payloads(world)
        release(world, "1.5.0")
        await merged_into_dev(world)
        await dev_verified(world)
        await settle(world)
        before = what_ferry_did(world)
        merged = merged_pull_event(sent)
        # The k-th closed pull request sent is the k-th delivered: events the App does not subscribe to
        # (deployment, deployment_status) are emitted but never delivered, so indexes of all differ.
        closed = [p for e, p in sent if e == "pull_request" and p.get("action") == "closed"]
        delivered = [d for d in world.github.deliveries if (d.event, d.action) == ("pull_request", "closed")]
        original = delivered[closed.index(merged)]
        assert (original.event, original.action) == ("pull_request", "closed")
        for _ in range(2):  # GitHub redelivers with the delivery's own id
            assert await post_delivery(world, "pull_request", merged, original.delivery_id) < 300
        await settle(world)
        assert what_ferry_did(world) == before


async def test_a_merge_event_redelivered_after_a_restart_does_not_sync_a_verified_stage_again() -> None:
    async with sandbox() as world:
        sent = record_payloads(world)
        release(world, "1.5.0")
        await merged_into_dev(world)
        await dev_verified(world)
        await settle(world)
        await world.stop_ferry()
        await world.start_ferry()  # remembers no delivery ids
        await settle(world)
        before = what_ferry_did(world)
        assert await post_delivery(world, "pull_request", merged_pull_event(sent), str(uuid.uuid4())) < 300
        await settle(world)
        assert what_ferry_did(world) == before


# ---- newer freight, and a base that moved --------------------------------------------------------


async def test_an_older_open_promotion_is_closed_with_a_link_to_the_newer_one() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        release(world, "1.5.0")
        await world.wait_for("the 1.5.0 PR", lambda: world.kinds(events.PR_OPENED, "dev"), 30)
        release(world, "1.6.0")
        await world.wait_for("the 1.5.0 PR closed", lambda: world.kinds(events.PR_SUPERSEDED, "dev"), 30)
        await settle(world)
        older, newer = dev_pulls(world)
        assert "1.5.0" in older["title"] and "1.6.0" in newer["title"]
        assert older["state"] == "closed" and not older["merged"]
        assert newer["state"] == "open"
        assert label_names(newer) >= {"ferry", "stage:dev"}
        on_older = [c["body"] for c in world.github.comments if c["issue_url"] == older["issue_url"]]
        assert len(on_older) == 1 and newer["html_url"] in on_older[0]


async def test_a_promotion_is_rebuilt_on_the_new_base_when_someone_changes_the_stage_file() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        release(world, "1.5.0")
        await world.wait_for("the 1.5.0 PR", lambda: world.kinds(events.PR_OPENED, "dev"), 30)
        await settle(world)
        original = git(world, "show", f"main:{DEV_FILE}")
        new_main = await world.github.push_files(
            {DEV_FILE: (original + "# owned by the shop team\n").encode()},
            "Note who owns the dev overlay",
        )
        await world.wait_for("the PR rebuilt", lambda: world.kinds(events.PR_REBUILT, "dev"), 30)
        await settle(world)
        (pull,) = dev_pulls(world)
        head = pull["head"]["sha"]
        assert git(world, "rev-parse", f"{head}^").strip() == new_main
        rebuilt = git(world, "show", f"{head}:{DEV_FILE}")
        assert "# owned by the shop team" in rebuilt and "1.5.0" not in original
        assert "1.5.0" in rebuilt
        assert promotion_branches(world, "dev") == [pull["head"]["ref"]]
