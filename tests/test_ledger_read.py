"""Reading the ledger from the GitHub stand-in's Deployments: every page, the verdict kept through
GitHub's own ``inactive``, other tools' deployments left out."""

from __future__ import annotations

from dataclasses import replace

from github_standin_helpers import (
    API,
    ferry_repo,  # noqa: F401 - the ``repo`` fixture
    person,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)

from bot.core.actions import RecordDeployment
from bot.core.freight import Freight, FreightImage
from bot.core.ledger import TASK_PROMOTE, deployment_payload
from bot.github.repo import RepoGitHub
from bot.sandbox.github_standin import GitHubStandIn


async def test_the_ledger_reads_every_ferry_deployment_with_its_verdict_and_skips_other_tools(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    head = await repo.head(await repo.default_branch())
    async with person(standin, "rita") as rita:
        made = []
        for n in range(105):  # more than one page
            freight = Freight("web", (FreightImage("ghcr.io/acme/web", f"1.{n}.0"),))
            body = {
                "ref": head,
                "environment": "dev",
                "task": TASK_PROMOTE,
                "payload": deployment_payload(freight),
                "auto_merge": False,
                "required_contexts": [],
            }
            answer = await rita.post(f"{API}/deployments", json=body)
            assert answer.status_code == 201, answer.text
            made.append(answer.json()["id"])
        for state in ("in_progress", "success"):
            got = await rita.post(f"{API}/deployments/{made[0]}/statuses", json={"state": state})
            assert got.status_code == 201, got.text
        # A newer success makes GitHub mark the older one inactive; its verdict must still read verified.
        got = await rita.post(f"{API}/deployments/{made[1]}/statuses", json={"state": "success"})
        assert got.status_code == 201, got.text
        other = await rita.post(
            f"{API}/deployments", json={"ref": head, "environment": "dev", "task": "deploy"}
        )
        assert other.status_code == 201, other.text
    entries = await repo.read_ledger("dev")
    assert len(entries) == 105
    by_id = {e.deployment_id: e for e in entries}
    assert by_id[made[0]].verified and by_id[made[1]].verified
    assert by_id[made[2]].outcome == "pending"
    assert by_id[made[0]].freight.tag_of("ghcr.io/acme/web") == "1.0.0"
    assert await repo.read_ledger("staging") == []


async def test_a_verification_recorded_twice_is_one_deployment_and_each_state_written_once(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    head = await repo.head(await repo.default_branch())
    freight = Freight("web", (FreightImage("ghcr.io/acme/web", "1.5.0"),))
    begins = RecordDeployment(
        "prod", head, TASK_PROMOTE, freight, "in_progress", "Verifying", production=True
    )
    assert await repo.record_deployment(begins) is True
    assert await repo.record_deployment(begins) is False  # another pass, or a replica: found, not created
    verdict = replace(begins, state="success", description="verified", url="https://argocd/applications/web")
    assert await repo.record_deployment(verdict) is True
    assert await repo.record_deployment(verdict) is False
    records = list(standin.state.deployments.values())
    assert len(records) == 1
    record = records[0]
    assert [s.state for s in record.statuses] == ["in_progress", "success"]
    assert record.production_environment and not record.transient_environment and record.task == TASK_PROMOTE
    assert record.statuses[-1].environment_url == "https://argocd/applications/web"
    # ``inactive`` never creates a deployment for a verification the ledger does not hold.
    gone = replace(begins, sha="0" * 40, state="inactive")
    assert await repo.record_deployment(gone) is False
    assert len(standin.state.deployments) == 1
    (entry,) = await repo.read_ledger("prod")
    assert entry.verified and entry.freight == freight
