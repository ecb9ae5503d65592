"""The ``approvals`` sandbox scenario: prod's ``promoters`` guard the merge, not only the comments.

A release reaches prod's pull request, whose ``ferry/gate`` waits for an approving review from
``@acme/release-managers``. Bob, a writer outside that team, merges it anyway (the sandbox's main does not
require ``ferry/gate``): Ferry asks Argo CD for no sync, fails ``ferry/health/prod`` naming who merged and
who may approve, comments on the pull request, and ``/status`` shows it. The next release's prod pull
request is approved by Bob (which does not count) and then by Rita, a release manager: the gate turns green,
Rita merges, and prod verifies.
"""

from __future__ import annotations

from typing import Any

import httpx

from bot import events
from bot.sandbox.example import quick_pipeline
from bot.sandbox.scenario_busy_main import all_verified
from bot.sandbox.world import FULL_NAME, World

MANAGER, TEAM, WRITER = "rita", "acme/release-managers", "bob"
UNAPPROVED, APPROVED = "1.5.0", "1.6.0"
WAITING = "Waiting for an approving review from @acme/release-managers"


def approvals_edit(config: dict[str, Any]) -> None:
    """The quick pipeline; prod keeps the example's ``promoters: ["@acme/release-managers"]``."""
    quick_pipeline(config)
    config["stages"]["prod"]["promoters"] = [f"@{TEAM}"]


async def _release(world: World, tag: str) -> None:
    world.registry.push("acme/web", tag)
    world.registry.push("acme/worker", tag)
    world.timeline.add("release_pushed", "", f"web and worker {tag} pushed to the registry")


async def _prod_pull(world: World, client: httpx.AsyncClient, tag: str) -> dict[str, Any]:
    async def find() -> dict[str, Any] | None:
        pulls = await world.open_pulls(client)
        return next(
            (p for p in pulls if p["head"]["ref"].startswith("ferry/prod/") and tag in p["title"]), None
        )

    return dict(await world.wait_for(f"prod's pull request for {tag}", find, 90))


async def _gate(client: httpx.AsyncClient, sha: str) -> tuple[str, str]:
    response = await client.get(f"/repos/{FULL_NAME}/commits/{sha}/status")
    response.raise_for_status()
    for status in response.json().get("statuses", []):
        if status["context"] == "ferry/gate":
            return str(status["state"]), str(status.get("description") or "")
    return "none", ""


async def _gate_is(world: World, client: httpx.AsyncClient, sha: str, state: str, words: str) -> bool:
    async def check() -> bool:
        found, description = await _gate(client, sha)
        return found == state and words in description

    return bool(await world.wait_for(f"ferry/gate {state} ({words!r})", check, 60))


async def _prod_health(client: httpx.AsyncClient, sha: str) -> tuple[str, str]:
    response = await client.get(f"/repos/{FULL_NAME}/commits/{sha}/status")
    for status in response.json().get("statuses", []):
        if status["context"] == "ferry/health/prod":
            return str(status["state"]), str(status.get("description") or "")
    return "none", ""


async def _merge_commit(client: httpx.AsyncClient, number: int) -> str:
    response = await client.get(f"/repos/{FULL_NAME}/pulls/{number}")
    response.raise_for_status()
    return str(response.json()["merge_commit_sha"])


async def _comments(client: httpx.AsyncClient, number: int) -> list[str]:
    response = await client.get(f"/repos/{FULL_NAME}/issues/{number}/comments", params={"per_page": 100})
    response.raise_for_status()
    return [str(c.get("body") or "") for c in response.json()]


async def _held(world: World, bob: httpx.AsyncClient, pull: dict[str, Any]) -> bool:
    """Bob merges prod's unapproved pull request: held, reported on the PR and in /status."""
    syncs_before = len(world.kinds(events.SYNC_REQUESTED, "prod"))
    await world.merge(bob, pull, f"@{WRITER} (write access, not a release manager)")
    commit = await _merge_commit(bob, pull["number"])

    async def failed() -> tuple[str, str] | None:
        state, description = await _prod_health(bob, commit)
        return (state, description) if state == "failure" else None

    _, description = await world.wait_for("prod's failure for the unapproved merge", failed, 60)
    world.timeline.add("merge_held", "prod", description)

    async def reported() -> bool:
        return any("was merged without approval" in body for body in await _comments(bob, pull["number"]))

    await world.wait_for("the comment on the unapproved merge", reported, 30)
    await world.settle()
    synced = len(world.kinds(events.SYNC_REQUESTED, "prod")) > syncs_before
    return f"merged by @{WRITER}" in description and "@acme/release-managers" in description and not synced


async def _status_shows_it(world: World, rita: httpx.AsyncClient) -> bool:
    created = await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Release train"})
    created.raise_for_status()
    number = created.json()["number"]
    before = len(world.kinds(events.COMMAND_ACCEPTED))
    posted = await rita.post(f"/repos/{FULL_NAME}/issues/{number}/comments", json={"body": "/status"})
    posted.raise_for_status()
    await world.wait_for(
        "Ferry's answer to /status", lambda: len(world.kinds(events.COMMAND_ACCEPTED)) > before, 30
    )

    async def answered() -> str | None:
        return next((b for b in await _comments(rita, number) if "merged by @bob" in b), None)

    return bool(await world.wait_for("/status naming the unapproved merge", answered, 30))


async def approvals(world: World) -> bool:
    rita = world.person(MANAGER, "write", [TEAM])
    bob = world.person(WRITER, "write")
    async with rita, bob:
        await world.wait_for("every stage verified on the starting commit", all_verified(world), 60)
        await _release(world, UNAPPROVED)
        first = await _prod_pull(world, bob, UNAPPROVED)
        await _gate_is(world, bob, first["head"]["sha"], "pending", WAITING)
        held = await _held(world, bob, first)
        shown = await _status_shows_it(world, rita)
        await _release(world, APPROVED)
        second = await _prod_pull(world, rita, APPROVED)
        head = second["head"]["sha"]
        await _gate_is(world, rita, head, "pending", WAITING)
        await world.approve(bob, second, f"@{WRITER} (not a release manager: does not count)")
        await world.settle()
        still_waiting = (await _gate(rita, head))[0] == "pending"
        await world.approve(rita, second, f"@{MANAGER} (release manager)")
        await _gate_is(world, rita, head, "success", f"Approved by @{MANAGER}")
        merged = len(world.kinds(events.PR_MERGED, "prod"))
        await world.merge(rita, second, f"@{MANAGER} (release manager)")

        def verdict() -> str | None:
            verdicts = world.kinds(events.HEALTH_VERDICT, "prod")
            merges = world.kinds(events.PR_MERGED, "prod")
            if len(merges) > merged and verdicts and verdicts[-1].at >= merges[-1].at:
                return verdicts[-1].detail.split(":", 1)[0]
            return None

        prod = await world.wait_for("prod's verdict on the approved merge", verdict, 90)
    return held and shown and still_waiting and prod == "success"
