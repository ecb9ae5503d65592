"""Every write checked against the newest state: a late merge event and a read torn by a merge landing
mid-pass must never move a stage back, sync a PR head, or overwrite a newer verdict (issue: compare-and-swap
before every write). The sandbox world runs Ferry's real code path against the GitHub and Argo CD stand-ins.
"""

from __future__ import annotations

import uuid
from typing import Any

from test_faults import (
    DEV_FILE,
    dev_waits_for_a_person,
    git,
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


# ---- each write checked right before it is made ---------------------------------------------------


def comments_on(world: World, pull: dict[str, Any]) -> list[str]:
    return [c["body"] for c in world.github.comments if c.get("issue_url") == pull["issue_url"]]


async def test_a_promotion_merged_while_the_lists_lag_is_never_closed_as_superseded() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        async with world.person("mia") as mia:
            release(world, "1.5.0")
            (pull,) = await world.wait_for("the 1.5.0 PR", lambda: open_dev_pulls(world), 30)
            await settle(world)
            world.github.set_list_lag(5)  # GitHub's lists show the merge seconds late
            await world.merge(mia, pull, "@mia")
            release(world, "1.6.0")
            await dev_merged_and_verified(world, "1.5.0")
            await world.wait_for("the 1.6.0 PR", lambda: open_dev_pulls(world), 30)
            await settle(world)
        merged = world.github.pulls[pull["number"]]
        assert merged["merged"]
        assert not [c for c in comments_on(world, merged) if "Ferry closed" in c]
        assert not [e for e in world.kinds(events.PR_SUPERSEDED, "dev") if f"#{pull['number']} " in e.detail]


async def test_a_persons_commit_on_a_promotion_branch_is_kept_and_the_rebuild_refused_on_the_pr() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        release(world, "1.5.0")
        (pull,) = await world.wait_for("the 1.5.0 PR", lambda: open_dev_pulls(world), 30)
        await settle(world)
        branch = pull["head"]["ref"]
        theirs = git(world, "show", f"{branch}:{DEV_FILE}") + "# pinned replicas, see OPS-12\n"
        fixup = await world.github.push_files({DEV_FILE: theirs.encode()}, "Pin replicas", branch=branch)
        await settle(world)
        original = git(world, "show", f"main:{DEV_FILE}")
        await world.github.push_files(
            {DEV_FILE: (original + "# owned by the shop team\n").encode()}, "Note who owns the dev overlay"
        )
        await world.wait_for("the rebuild refused", lambda: world.kinds(events.PR_REBUILD_REFUSED, "dev"), 30)
        await settle(world)
        reconciler = world.runtime.reconciler if world.runtime else None
        assert reconciler is not None
        reconciler.trigger(next(iter(reconciler.repos)))  # another pass refuses again, quietly
        await settle(world)
        assert git(world, "rev-parse", branch).strip() == fixup
        assert not world.kinds(events.PR_REBUILT, "dev")
        assert len(world.kinds(events.PR_REBUILD_REFUSED, "dev")) == 1
        said = [c for c in comments_on(world, world.github.pulls[pull["number"]]) if fixup[:7] in c]
        assert len(said) == 1 and "not Ferry's" in said[0]


async def test_a_stage_file_changed_between_observing_and_syncing_gets_no_sync_for_the_older_commit() -> None:
    async with sandbox() as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        await settle(world)
        world.github.set_app_events(["push", "issue_comment", "installation"])  # no merge events: passes only
        client = reconciler.repo_client(repo)
        read_head = client.head
        torn: list[str] = []

        async def head_then_push(branch: str) -> str:
            sha = await read_head(branch)
            merges = {p["merge_commit_sha"] for p in world.github.pulls.values() if p["merged"]}
            if not torn and sha in merges:  # the pass that is about to deploy Ferry's merge
                torn.append(sha)
                text = git(world, "show", f"{sha}:{DEV_FILE}") + "# replicas: 3\n"
                await world.github.push_files({DEV_FILE: text.encode()}, "Scale dev by hand")
            return sha

        client.head = head_then_push  # type: ignore[method-assign]
        release(world, "1.5.0")
        await world.wait_for("a pass torn after Ferry's merge", lambda: torn, 45)
        await world.wait_for(
            "dev's verdict on the person's change",
            lambda: [
                e for e in world.kinds(events.HEALTH_VERDICT, "dev") if "not deployed by Ferry" in e.detail
            ],
            30,
        )
        await settle(world)
        (merge,) = torn
        [(state, description)] = health(world, merge)  # never pending: verification did not begin
        assert state == "error" and description.startswith("Superseded: dev moved on")
        assert not [e for e in world.kinds(events.SYNC_REQUESTED, "dev") if merge[:7] in e.detail]
