"""Every write checked against the newest state: a late merge event and a read torn by a merge landing
mid-pass must never move a stage back, sync a PR head, or overwrite a newer verdict (issue: compare-and-swap
before every write). The sandbox world runs Ferry's real code path against the GitHub and Argo CD stand-ins.
"""

from __future__ import annotations

import uuid
from typing import Any

from test_faults import (
    dev_waits_for_a_person,
    merged_pull_event,
    post_delivery,
    record_payloads,
    release,
    sandbox,
    settle,
)

from bot import events
from bot.core.gates import health_context
from bot.sandbox.world import World

DEV = health_context("dev")


def dev_promotion(world: World, tag: str) -> dict[str, Any]:
    """The merged dev promotion of ``tag``."""
    return next(
        p
        for _, p in sorted(world.github.pulls.items())
        if p["head"]["ref"].startswith("ferry/dev/") and tag in p["title"] and p["merged"]
    )


async def dev_merged_and_verified(world: World, tag: str) -> str:
    """Wait until the dev promotion of ``tag`` is merged and verified; its merge commit."""

    def merged() -> str | None:
        found = [
            p
            for p in world.github.pulls.values()
            if p["head"]["ref"].startswith("ferry/dev/") and tag in p["title"] and p["merged"]
        ]
        return found[0]["merge_commit_sha"] if found else None

    merge: str = await world.wait_for(f"dev's {tag} promotion merged", merged, 45)

    def verified() -> bool:
        return any(
            e.detail.startswith("success") and merge[:7] in e.detail
            for e in world.kinds(events.HEALTH_VERDICT, "dev")
        )

    await world.wait_for(f"dev's verdict on {merge[:7]}", verified, 30)
    return merge


def health(world: World, sha: str) -> list[tuple[str, str]]:
    """Every ``ferry/health/dev`` status ever posted on ``sha``, oldest first: (state, description)."""
    return [(s["state"], s["description"]) for s in world.github.statuses.get(sha, []) if s["context"] == DEV]


def dev_runs(world: World) -> str:
    assert world.argocd is not None
    return world.argocd.app("shop-dev").history[-1].revisions[0]


async def test_a_late_merge_event_of_an_older_promotion_moves_nothing_back_nor_restates_a_verdict() -> None:
    async with sandbox() as world:
        sent = record_payloads(world)
        release(world, "1.5.0")
        older = await dev_merged_and_verified(world, "1.5.0")
        release(world, "1.6.0")
        newer = await dev_merged_and_verified(world, "1.6.0")
        await settle(world)
        assert world.argocd is not None and dev_runs(world) == newer
        number = dev_promotion(world, "1.5.0")["number"]
        late = next(
            p
            for e, p in sent
            if e == "pull_request"
            and p.get("action") == "closed"
            and p["pull_request"]["number"] == number
            and p["pull_request"].get("merged")
        )
        assert late == merged_pull_event(sent)  # the first merge of the run
        before = (health(world, older), health(world, newer), len(world.argocd.syncs))
        for restarted in (False, True):  # at the replica that saw the merges, then at a fresh one
            if restarted:
                await world.stop_ferry()
                await world.start_ferry()
                await settle(world)
                before = (health(world, older), health(world, newer), len(world.argocd.syncs))
            assert await post_delivery(world, "pull_request", late, str(uuid.uuid4())) < 300
            await settle(world)
            assert (health(world, older), health(world, newer), len(world.argocd.syncs)) == before
            assert dev_runs(world) == newer
            assert health(world, newer)[-1][0] == "success"
            assert health(world, older)[-1][0] == "success"


async def test_a_merge_landing_between_the_reads_of_one_pass_never_syncs_a_pull_request_head() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        async with world.person("mia") as mia:
            release(world, "1.5.0")
            (pull,) = await world.wait_for("the 1.5.0 PR", lambda: open_dev_pulls(world), 30)
            await world.merge(mia, pull, "@mia")
            first = await dev_merged_and_verified(world, "1.5.0")
            release(world, "1.6.0")
            (pull,) = await world.wait_for("the 1.6.0 PR", lambda: open_dev_pulls(world), 30)
            await settle(world)
            seen_before = {sha for sha in world.github.statuses if health(world, sha)}
            # Tear the next pass: right after it reads the default branch's head, a person merges the open
            # promotion, before the pass reads history, statuses and pull requests.
            client = reconciler.repo_client(repo)
            read_head = client.head
            torn: list[str] = []

            async def head_then_merge(branch: str) -> str:
                sha = await read_head(branch)
                if not torn:
                    torn.append(sha)
                    await world.merge(mia, pull, "@mia")
                return sha

            client.head = head_then_merge  # type: ignore[method-assign]
            world.github.set_delivery(delay=1.0, seed=7)  # the merge's own event comes late, too
            reconciler.trigger(repo)
            second = await dev_merged_and_verified(world, "1.6.0")
            await settle(world)
        assert torn, "no pass was torn: the test did not exercise the race"
        heads = {p["head"]["sha"] for p in world.github.pulls.values()}
        synced_for = [e.detail for e in world.kinds(events.SYNC_REQUESTED, "dev")]
        assert not [d for d in synced_for if any(h[:7] in d for h in heads)], synced_for
        assert all(not health(world, h) for h in heads), {h[:7]: health(world, h) for h in heads}
        verdicts = {sha for sha in world.github.statuses if health(world, sha)}
        assert verdicts <= seen_before | {first, second}
        assert dev_runs(world) == second


def open_dev_pulls(world: World) -> list[dict[str, Any]]:
    return [
        p
        for p in world.github.pulls.values()
        if p["head"]["ref"].startswith("ferry/dev/") and p["state"] == "open"
    ]
