"""The freight ledger written: every verification is a GitHub Deployment of the deploy commit to the
stage's environment, with its statuses, next to the commit status that decides. The sandbox world runs
Ferry's real code path against the GitHub stand-in's Deployments API (GitHub's shapes and rules)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from test_argocd_faults import decided, dev_merge_commit, release, sandbox, starting_commit_verified

from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE
from bot.sandbox.github_records import DeploymentRecord
from bot.sandbox.world import World

DEPLOYMENTS = "/repos/{owner}/{repo}/deployments"


def deployments(world: World, environment: str, task: str | None = None) -> list[DeploymentRecord]:
    found = [d for d in world.github.state.deployments.values() if d.environment == environment]
    return sorted((d for d in found if task in (None, d.task)), key=lambda d: d.id)


def states(record: DeploymentRecord) -> list[str]:
    return [s.state for s in record.statuses]


async def ledger_has(world: World, environment: str, task: str, sha: str, state: str) -> DeploymentRecord:
    def found() -> DeploymentRecord | None:
        for record in deployments(world, environment, task):
            if record.sha == sha and state in states(record):
                return record
        return None

    what = f"a {task} deployment of {sha[:7]} to {environment}: {state}"
    result: Any = await world.wait_for(what, found, 30)
    return result  # type: ignore[no-any-return]


async def test_first_pass_records_what_each_stage_runs_as_a_baseline() -> None:
    async with sandbox() as world:
        seeded = await starting_commit_verified(world)
        baseline = await ledger_has(world, "dev", TASK_BASELINE, seeded, "success")
        assert isinstance(baseline.payload, dict) and baseline.payload["ferry"] == 1
        tags = {i["tag"] for i in baseline.payload["freight"]["images"]}
        assert tags == {"1.4.2"}  # what the seeded dev files hold


async def test_a_promotion_is_a_deployment_in_progress_on_sync_and_success_on_the_verdict() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"
        record = await ledger_has(world, "dev", TASK_PROMOTE, merge, "success")
        assert states(record)[0] == "in_progress" and states(record)[-1] == "success"
        assert record.ref == merge and not record.transient_environment and not record.production_environment
        # Lead time starts when the freight was first seen: Ferry's commit that brought it to dev.
        pushed = datetime.fromisoformat(record.payload["pushed_at"])
        assert pushed.timestamp() <= record.statuses[-1].created_at
        success = record.statuses[-1]
        assert success.environment_url.endswith("/applications/shop-dev")
        assert success.log_url == success.environment_url
        # GitHub marks the environment's earlier successful deployment inactive (the baseline).
        baseline = deployments(world, "dev", TASK_BASELINE)[0]
        assert states(baseline)[-1] == "inactive"
        await world.settle()
        assert len(deployments(world, "dev", TASK_PROMOTE)) == 1  # looked for before created: once


async def test_deployments_api_failing_does_not_hold_back_the_status_and_is_written_on_a_later_pass() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        await world.settle()
        world.github.fail_next("POST", DEPLOYMENTS, 502, times=4)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"  # the commit status still decides
        record = await ledger_has(world, "dev", TASK_PROMOTE, merge, "success")
        await world.settle()
        assert len(deployments(world, "dev", TASK_PROMOTE)) == 1
        assert world.github.requests[f"POST {DEPLOYMENTS}"] >= 5
        assert record.payload["freight"]["images"][0]["tag"] == "1.5.0"  # type: ignore[index]


async def test_idle_passes_read_no_deployments() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        await world.settle()
        assert world.runtime is not None
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below run now
        reconciler = world.runtime.reconciler
        await reconciler.idle()
        await reconciler.reconcile("acme/gitops")  # settle anything still in flight
        before = {k: v for k, v in world.github.requests.items() if "/deployments" in k}
        for _ in range(3):
            assert await reconciler.reconcile("acme/gitops") == []
        after = {k: v for k, v in world.github.requests.items() if "/deployments" in k}
        assert after == before  # the ledger is read when a deploy commit or verdict moves, not on idle passes
