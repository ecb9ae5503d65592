"""A second replica opening the same promotion from a snapshot taken before the branch existed finds the
branch already made (422) and must not force it over a person's commit pushed since (found by the chaos
scenario's person push under several replicas and lagging lists)."""

from __future__ import annotations

import pytest
from test_compare_and_swap import open_dev_pulls
from test_faults import DEV_FILE, dev_waits_for_a_person, git, release, sandbox, settle

from bot.actor import Actor
from bot.core.actions import OpenPromotion
from bot.github.repo import BranchMoved


async def test_a_late_replica_opening_the_same_promotion_keeps_a_persons_commit_on_its_branch() -> None:
    async with sandbox(dev_waits_for_a_person) as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        client = reconciler.repo_client(repo)
        opened: list[OpenPromotion] = []
        open_promotion = client.open_promotion

        async def recording(action: OpenPromotion) -> tuple[int, str]:
            opened.append(action)
            return await open_promotion(action)

        client.open_promotion = recording  # type: ignore[method-assign]
        release(world, "1.5.0")
        (pull,) = await world.wait_for("the 1.5.0 PR", lambda: open_dev_pulls(world), 30)
        await settle(world)
        branch = pull["head"]["ref"]
        theirs = git(world, "show", f"{branch}:{DEV_FILE}") + "# pinned replicas, see OPS-12\n"
        fixup = await world.github.push_files({DEV_FILE: theirs.encode()}, "Pin replicas", branch=branch)

        (decided,) = [a for a in opened if a.branch == branch]
        assert decided.expected_head is None  # decided when no branch existed, as a lagging replica would
        with pytest.raises(BranchMoved):
            await open_promotion(decided)
        assert git(world, "rev-parse", branch).strip() == fixup
        snapshot = await reconciler.snapshot(repo)
        assert await Actor(reconciler, repo, snapshot).open_promotion(decided) is False  # decided again
        assert git(world, "rev-parse", branch).strip() == fixup
