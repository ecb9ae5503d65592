"""The ``busy-main`` sandbox scenario: a release goes dev → staging → prod while people keep using ``main``.

The apps are set up as most teams run them: tracking ``main`` with automated sync, one prod app manual and
one multi-source (a chart from a chart repository, its values from this repository). While dev and staging
verify, people push unrelated commits to ``main`` (a README change, a change to another stage's overlay),
and 60 unrelated pull requests are opened and closed, so the closed-PR list that once found deploy commits
is full of strangers. Argo CD compares every app to the new heads of ``main``; Ferry must still verify each
stage on the release, ask Argo CD for nothing off ``main``'s first-parent line, and post no failure.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot import events
from bot.core.gates import HEALTH_PREFIX
from bot.core.stage_view import stage_view
from bot.sandbox.example import quick_pipeline
from bot.sandbox.github_state import StatusRecord
from bot.sandbox.world import FULL_NAME, World

RELEASE = "1.5.0"
MANAGER, TEAM, PEOPLE = "rita", "acme/release-managers", "dora"
STAGES = ("dev", "staging", "prod")
UNRELATED_PULLS = 60
SHORT_SHA = re.compile(r"\b([0-9a-f]{7,40})\b")


def busy_main_edit(config: dict[str, Any]) -> None:
    quick_pipeline(config)


async def _verdict(world: World, stage: str, within: float = 90.0) -> str:
    def decided() -> str | None:
        merges = world.kinds(events.PR_MERGED, stage)
        verdicts = world.kinds(events.HEALTH_VERDICT, stage)
        if merges and verdicts and verdicts[-1].at >= merges[-1].at:
            return verdicts[-1].detail.split(":", 1)[0]
        return None

    return str(await world.wait_for(f"a health verdict for {stage}", decided, within))


async def _merged(world: World, stage: str, within: float = 60.0) -> None:
    await world.wait_for(f"{stage}'s promotion merged", lambda: world.kinds(events.PR_MERGED, stage), within)


async def _unrelated_pulls(world: World, person: httpx.AsyncClient, count: int) -> None:
    """People open pull requests that have nothing to do with Ferry, and close them."""
    for number in range(count):
        branch = f"docs/typo-{number}"
        await world.github.push_files(
            {f"docs/notes-{number}.md": f"note {number}\n".encode()},
            f"Note {number}",
            branch=branch,
            login=PEOPLE,
        )
        opened = await person.post(
            f"/repos/{FULL_NAME}/pulls", json={"title": f"Fix typo {number}", "head": branch, "base": "main"}
        )
        opened.raise_for_status()
        closed = await person.patch(
            f"/repos/{FULL_NAME}/pulls/{opened.json()['number']}", json={"state": "closed"}
        )
        closed.raise_for_status()
    world.timeline.add("unrelated_prs", "", f"{count} unrelated pull requests opened and closed")


async def _push(world: World, path: str, text: str, why: str) -> None:
    await world.github.push_files({path: text.encode()}, why, login=PEOPLE)
    world.timeline.add("pushed_to_main", "", f"@{PEOPLE}: {why} ({path})")


async def _staging_overlay_with_a_label(world: World) -> str:
    path = "overlays/staging/kustomization.yaml"
    store = world.github.state.store
    head = await store.get_ref("refs/heads/main")
    assert head is not None
    entry = await store.entry_at(head, path)
    assert entry is not None
    text = (await store.read_blob(entry.sha)).decode()
    return text.replace("resources:", "commonAnnotations:\n  team: shop\n\nresources:", 1)


async def busy_main(world: World) -> bool:
    rita = world.person(MANAGER, "write", [TEAM])
    dora = world.person(PEOPLE, "write")
    async with rita, dora:
        await world.wait_for("every stage verified on the starting commit", verified_now(world), 60)
        world.registry.push("acme/web", RELEASE)
        world.registry.push("acme/worker", RELEASE)
        world.timeline.add("release_pushed", "", f"web and worker {RELEASE} pushed to the registry")
        await _merged(world, "dev")
        strangers = asyncio.get_running_loop().create_task(_unrelated_pulls(world, dora, UNRELATED_PULLS))
        await _push(world, "README.md", "# acme gitops\n\nOn call: #shop-oncall\n", "README: on-call channel")
        overlay = await _staging_overlay_with_a_label(world)
        await _push(world, "overlays/staging/kustomization.yaml", overlay, "staging: annotate with the team")
        dev = await _verdict(world, "dev")
        await _merged(world, "staging")
        await _push(world, "README.md", "# acme gitops\n\nOn call: #shop-oncall-2\n", "README: new channel")
        staging = await _verdict(world, "staging")
        await strangers
        prod_pull = await world.wait_for(
            "the prod promotion PR", lambda: _ferry_pull(world, rita, "prod"), 90
        )
        await world.approve(rita, prod_pull, f"@{MANAGER} (release manager)")  # one of prod's promoters
        await world.wait_for("the prod gate to open", lambda: _gate_open(rita, prod_pull["head"]["sha"]), 60)
        await world.merge(rita, prod_pull, f"@{MANAGER} (release manager)")
        prod = await _verdict(world, "prod")
    verdicts = dev == staging == prod == "success"
    return verdicts and await _ends_as_promised(world)


async def _ferry_pull(world: World, client: httpx.AsyncClient, stage: str) -> dict[str, Any] | None:
    pulls = await world.open_pulls(client)
    return next((p for p in pulls if p["head"]["ref"].startswith(f"ferry/{stage}/")), None)


async def _gate_open(client: httpx.AsyncClient, sha: str) -> bool:
    response = await client.get(f"/repos/{FULL_NAME}/commits/{sha}/status")
    statuses = response.json().get("statuses", [])
    return any(s["context"] == "ferry/gate" and s["state"] == "success" for s in statuses)


def verified_now(world: World) -> Callable[[], bool]:
    """A check that every stage's newest health status, on whichever commit, is success.

    Read from the GitHub stand-in's own records: waiting on it costs Ferry no snapshot and GitHub no
    request (polled through Ferry's snapshots, the wait was a quarter of the requests a quickstart
    counted as Ferry's). Health statuses go only on deploy commits, and a new deploy gets its pending
    status before anything is asked of Argo CD, so the newest one is the stage's verdict.
    """

    def check() -> bool:
        newest: dict[str, StatusRecord] = {}
        for records in world.github.state.statuses.values():
            for record in records:
                known = newest.get(record.context)
                if record.context.startswith(HEALTH_PREFIX) and (known is None or record.id > known.id):
                    newest[record.context] = record
        return all(
            (verdict := newest.get(HEALTH_PREFIX + stage)) is not None and verdict.state == "success"
            for stage in STAGES
        )

    return check


async def stage_health(world: World, stage: str) -> str | None:
    """The stage's ``ferry/health`` state on its deploy commit, as Ferry itself reads it (None: none)."""
    assert world.runtime is not None
    snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
    deploy = snapshot.deploys.get(stage) if snapshot is not None else None
    status = deploy.statuses.get(HEALTH_PREFIX + stage) if deploy is not None else None
    return status.state if status else None


def all_verified(world: World) -> Callable[[], Awaitable[bool]]:
    """A check that every stage's health status on its deploy commit is success (one snapshot)."""

    async def check() -> bool:
        assert world.runtime is not None
        snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
        if snapshot is None:
            return False
        states = []
        for stage in STAGES:
            deploy = snapshot.deploys.get(stage)
            status = deploy.statuses.get(HEALTH_PREFIX + stage) if deploy else None
            states.append(status.state if status else None)
        return all(state == "success" for state in states)

    return check


async def first_parent_line(world: World) -> list[str]:
    """``git rev-list --first-parent main`` of the stand-in's repository."""
    store = world.github.state.store
    _code, out = await store.run("rev-list", "--first-parent", "refs/heads/main")
    return out.decode().split()


async def off_main_requests(world: World) -> list[str]:
    """Commits Ferry named in a sync request, or Argo CD was asked to deploy, that are not on main's
    first-parent line (should be none)."""
    line = await first_parent_line(world)
    off: list[str] = []
    for event in world.kinds(events.SYNC_REQUESTED):
        named = SHORT_SHA.findall(event.detail.split(" for ", 1)[-1])
        off += [sha for sha in named[:1] if not any(full.startswith(sha) for full in line)]
    assert world.argocd is not None
    for operation in world.argocd.operations:
        commits = [r for r in operation.revisions if re.fullmatch(r"[0-9a-f]{40}", r)]
        off += [r for r in commits if r not in line]
    return off


def failure_statuses(world: World) -> list[str]:
    return [
        f"{sha[:7]} {record.context}: {record.description}"
        for sha, records in world.github.state.statuses.items()
        for record in records
        if record.context.startswith(HEALTH_PREFIX) and record.state == "failure"
    ]


async def _ends_as_promised(world: World) -> bool:
    """Every stage verified on the release, nothing asked off main, no failure status."""
    assert world.runtime is not None
    snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
    if snapshot is None or snapshot.config is None or not await all_verified(world)():
        return False
    views = [stage_view(snapshot, stage) for stage in STAGES]
    freights = {view.freight_id for view in views}
    on_release = all(set(view.tags.values()) == {RELEASE} for view in views)
    return (
        len(freights) == 1
        and None not in freights
        and on_release
        and not await off_main_requests(world)
        and not failure_statuses(world)
    )
