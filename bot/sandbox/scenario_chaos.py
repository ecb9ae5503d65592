"""The ``chaos`` sandbox scenario: eight releases through several Ferry replicas while GitHub and people
misbehave as they do, ending with the invariants counted from the stand-ins' own records.

Webhooks go to any of ``--replicas`` Ferry processes, each 0–5 s late, overtaking each other, some twice;
lists of pull requests lag their writes. Eight releases are pushed in quick succession; a person pushes a
commit to a Ferry branch; one Ferry process is killed (as by SIGKILL) while a stage verifies, and started
again; once every stage runs the newest release, someone syncs prod back by hand in Argo CD, waits for
Ferry to report the drift, and syncs it forward again. Every random choice comes from ``--seed``.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.core.gates import HEALTH_PREFIX
from bot.core.promotion import parse_branch
from bot.core.stage_view import stage_view
from bot.errors import ExternalError
from bot.sandbox.argocd_standin import FERRY_USERNAME
from bot.sandbox.chaos_invariants import (
    AppFinal,
    Health,
    History,
    Pull,
    Sync,
    count_drift_reports,
    invariants,
)
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

RELEASES = [f"1.{minor}.0" for minor in range(5, 13)]  # eight, newest last
PERSON = "dora"
STAGES = ("dev", "staging", "prod")
# The files each stage's promotions change (config/example/.github/ferry.yml's update targets).
STAGE_FILES = {"dev": "overlays/dev/", "staging": "overlays/staging/", "prod": "charts/web/values-prod.yaml"}
APP_STAGES = {"shop-dev": "dev", "shop-staging": "staging", "shop-prod-eu": "prod", "shop-prod-us": "prod"}
BACKWARDS_APP = "shop-prod-eu"  # the manual prod app: nothing automated undoes a sync by hand
MAX_DELAY = 5.0  # seconds a webhook may be late
DUPLICATE = 0.3  # share of webhooks delivered twice
LIST_LAG = 1.0  # seconds lists of issues and pull requests lag their writes
# GitHub's secondary limits: its documented numbers per installation, and its undisclosed ones met at random
# with this chance per content-creating request (github_limits); each blocks the installation for a minute.
PER_MINUTE, PER_HOUR = 80, 500
LIMIT_CHANCE = 0.004
BLOCK_SECONDS = 60.0
WITHIN = 300.0  # seconds for the pipeline to carry the newest release to prod on a busy machine, a minute's
# block or two by GitHub's secondary limits included
AFTER = 60.0 + 2 * BLOCK_SECONDS  # seconds for one more verdict, a secondary limit's block (or two) included
# Seconds for the first promotion PR, and the first verification, to appear once the releases are pushed:
# 30 on a busy machine, and a secondary limit's block or two (Ferry may be held right at the start).
EARLY = 30.0 + 2 * BLOCK_SECONDS
SHA = re.compile(r"[0-9a-f]{40}")


def chaos_edit(config: dict[str, Any]) -> None:
    """The quick pipeline with prod merging its own promotions too: nobody is at the keyboard, so nobody
    approves either (prod has no ``promoters`` here; the approvals scenario plays them)."""
    quick_pipeline(config)
    config["stages"]["prod"]["auto_merge"] = True
    config["stages"]["prod"].pop("promoters", None)


async def chaos(world: World) -> bool:
    rng = random.Random(world.seed)
    async with world.person(PERSON, "write") as person:
        await world.wait_for("every stage verified on the starting commit", on_release(world, None), 90)
        urls = [world.ferry_url()] + [await world.start_replica() for _ in range(world.replica_count - 1)]
        world.github.set_delivery(
            delay=MAX_DELAY, reorder=True, duplicate=DUPLICATE, replicas=urls, seed=world.seed
        )
        world.github.set_list_lag(LIST_LAG)
        world.github.set_secondary_limits(
            per_minute=PER_MINUTE,
            per_hour=PER_HOUR,
            block_seconds=BLOCK_SECONDS,
            status=None,
            seed=world.seed,
            chance=LIMIT_CHANCE,
        )
        world.timeline.add(
            "chaos_on", "", f"{len(urls)} replicas, webhooks 0–{MAX_DELAY:.0f} s late, seed {world.seed}"
        )
        await asyncio.gather(
            _push_releases(world, rng),
            _push_to_a_ferry_branch(world, person),
            _kill_mid_verification(world, rng),
        )
        newest = RELEASES[-1]
        await world.wait_for(f"every stage verified on {newest}", on_release(world, newest), WITHIN)
        await _sync_back_and_forward(world)
        await world.wait_for(f"every stage verified on {newest} again", on_release(world, newest), AFTER)
    refusals = world.github.secondary_refusals
    tripped = sum(1 for _, _, trip in refusals if trip)
    world.timeline.add("secondary_limits", "", f"{tripped} tripped, {len(refusals)} writes refused")
    world.invariants = await count_invariants(world)
    return True


async def _push_releases(world: World, rng: random.Random) -> None:
    for release in RELEASES:
        world.registry.push("acme/web", release)
        world.registry.push("acme/worker", release)
        world.timeline.add("release_pushed", "", f"web and worker {release} pushed to the registry")
        await asyncio.sleep(rng.uniform(0.2, 0.8))


async def _push_to_a_ferry_branch(world: World, person: httpx.AsyncClient) -> None:
    """A person pushes a commit to the first Ferry promotion branch they see open."""

    async def ferry_pull() -> dict[str, Any] | None:
        pulls = await world.open_pulls(person)
        return next((p for p in pulls if parse_branch(p["head"]["ref"])), None)

    pull = await world.wait_for("a Ferry promotion PR to push to", ferry_pull, EARLY)
    branch = pull["head"]["ref"]
    await world.github.push_files(
        {"docs/release-notes.md": b"Checked by hand.\n"}, "Release notes", branch=branch, login=PERSON
    )
    world.timeline.add("person_pushed", "", f"@{PERSON} pushed a commit to {branch} (#{pull['number']})")


def verifying(world: World) -> list[str]:
    """Commits whose newest ``ferry/health`` status is pending: a verification under way."""
    found = []
    for sha, records in world.github.state.statuses.items():
        latest: dict[str, str] = {}
        for record in records:
            if record.context.startswith(HEALTH_PREFIX):
                latest[record.context] = record.state
        found += [sha for state in latest.values() if state == "pending"]
    return found


async def _kill_mid_verification(world: World, rng: random.Random) -> None:
    """Kill the first Ferry process (no graceful stop) while a stage verifies, and start it again."""
    sha = (await world.wait_for("a verification under way", lambda: verifying(world), EARLY))[0]
    await world.stop_ferry(crash=True)
    world.timeline.add("ferry_killed", "", f"a Ferry process killed while {sha[:7]} verifies")
    await asyncio.sleep(rng.uniform(0.5, 2.0))
    await world.start_ferry()
    world.timeline.add("ferry_restarted", "", "the killed Ferry process started again")


async def _sync_back_and_forward(world: World) -> None:
    """Someone syncs prod's manual app to prod's previous deploy commit in Argo CD, Ferry reports the
    drift, and they sync it forward to the deploy commit again."""
    assert world.argocd is not None
    history = await read_history(world)
    prod = [sha for sha in history.line if "prod" in history.changes[sha]]
    older, newest = prod[-2], prod[-1]
    world.argocd.start_foreign_operation(BACKWARDS_APP, older)
    world.timeline.add(
        "synced_back", "prod", f"{BACKWARDS_APP} synced back to {older[:7]} by hand in Argo CD"
    )
    await world.wait_for(
        "Ferry to report the drift", lambda: count_drift_reports(health_records(world)), AFTER
    )
    world.argocd.start_foreign_operation(BACKWARDS_APP, newest)
    world.timeline.add("synced_forward", "prod", f"{BACKWARDS_APP} synced forward to {newest[:7]} again")


def on_release(world: World, release: str | None) -> Callable[[], Awaitable[bool]]:
    """A check that every stage is verified (health success on its deploy commit) on one freight, and with
    ``release`` that its images all run that release (as Ferry reads the repository)."""

    async def check() -> bool:
        assert world.runtime is not None
        try:
            snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
        except ExternalError as exc:
            if exc.temporary:  # GitHub holds the installation after a secondary limit: look again later
                return False
            raise
        if snapshot is None or snapshot.config is None:
            return False
        views = [stage_view(snapshot, stage) for stage in STAGES]
        for stage, view in zip(STAGES, views, strict=True):
            status = view.deploy.statuses.get(HEALTH_PREFIX + stage) if view.deploy else None
            if status is None or status.state != "success":
                return False
        return release is None or all(set(view.tags.values()) == {release} for view in views)

    return check


# ---- the stand-ins' records ---------------------------------------------------------------------


async def read_history(world: World) -> History:
    """main's first-parent line with the stages each commit changed, and every move of its head."""
    store = world.github.state.store
    _code, out = await store.run(
        "log",
        "--first-parent",
        "--diff-merges=first-parent",
        "--name-only",
        "--format=@%H",
        "refs/heads/main",
    )
    line: list[str] = []
    paths: dict[str, set[str]] = {}
    for text in out.decode().splitlines():
        if text.startswith("@"):
            line.append(text[1:])
            paths[text[1:]] = set()
        elif text.strip() and line:
            paths[line[-1]].add(text.strip())
    changes = {
        sha: frozenset(s for s, prefix in STAGE_FILES.items() if any(p.startswith(prefix) for p in changed))
        for sha, changed in paths.items()
    }
    heads = [(u.at, u.new) for u in store.ref_log if u.ref == "refs/heads/main"]
    return History(list(reversed(line)), changes, heads)


def health_records(world: World) -> list[Health]:
    records = [
        r for rs in world.github.state.statuses.values() for r in rs if r.context.startswith(HEALTH_PREFIX)
    ]
    records.sort(key=lambda r: r.id)
    return [
        Health(r.sha, r.context.removeprefix(HEALTH_PREFIX), r.state, r.description or "") for r in records
    ]


async def count_invariants(world: World) -> dict[str, dict[str, int]]:
    """Every invariant, counted from the GitHub and Argo CD stand-ins' records."""
    assert world.argocd is not None
    history = await read_history(world)
    syncs = []
    for operation in world.argocd.operations:
        if operation.username != FERRY_USERNAME or operation.app not in APP_STAGES:
            continue
        commits = [r for r in operation.revisions if SHA.fullmatch(r)]
        for commit in commits[:1]:
            syncs.append(Sync(operation.app, APP_STAGES[operation.app], commit, operation.at))
    pulls = []
    for record in world.github.state.pulls():
        assert record.pull is not None
        parsed = parse_branch(record.pull.head_ref)
        if parsed is not None:
            merged = record.pull.merge_commit_sha if record.pull.merged else None
            pulls.append(Pull(record.number, parsed[0], parsed[1], merged))
    closes = [(c.number, c.merged) for c in world.github.state.close_requests]
    apps = []
    for name, stage in APP_STAGES.items():
        app = world.argocd.app(name)
        deployed = app.history[-1].revisions if app.history else []
        running = next((r for r in deployed if SHA.fullmatch(r)), None)
        apps.append(AppFinal(name, stage, running, app.health[0]))
    return invariants(
        history,
        syncs=syncs,
        pulls=pulls,
        closes=closes,
        statuses=health_records(world),
        apps=apps,
        refusals=world.github.secondary_refusals,
        replicas=world.replica_count,
        block_seconds=BLOCK_SECONDS,
    )
