"""A promotion a person closed unmerged stays closed: Ferry says so once under it and does not open it
again; `/promote` asks for it after all. A close Ferry made itself, or a merge, is no refusal."""

from __future__ import annotations

from typing import Any

import httpx
from github_standin_helpers import (
    API,
    branch_with_change,
    ferry_repo,  # noqa: F401 - the ``repo`` fixture
    open_pull,
    person,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)

from bot import events
from bot.core.actions import ClosePromotion
from bot.github.repo import RepoGitHub
from bot.sandbox.example import quick_pipeline
from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}


async def test_only_a_persons_unmerged_close_of_the_newest_pull_request_is_a_refusal(
    standin: GitHubStandIn, repo: RepoGitHub
) -> None:
    async with person(standin, "rita") as rita:
        branches = {name: f"ferry/dev/{name}" for name in ("declined", "ferry-closed", "merged", "open")}
        pulls: dict[str, dict[str, Any]] = {}
        for name, branch in branches.items():
            await branch_with_change(rita, branch, f"envs/dev/{name}.yaml", "tag: 1.1.0\n")
            pulls[name] = await open_pull(rita, branch)
        await rita.patch(f"{API}/pulls/{pulls['declined']['number']}", json={"state": "closed"})
        merged = await rita.put(f"{API}/pulls/{pulls['merged']['number']}/merge", json={})
        assert merged.status_code == 200, merged.text
    await repo.close_promotion(
        ClosePromotion(pulls["ferry-closed"]["number"], "dev", "Ferry closed this pull request: superseded."),
        None,
    )

    declined = await repo.refused_promotion(branches["declined"])
    assert declined == (pulls["declined"]["number"], pulls["declined"]["html_url"])
    assert await repo.refused_promotion(branches["ferry-closed"]) is None
    assert await repo.refused_promotion(branches["merged"]) is None
    assert await repo.refused_promotion(branches["open"]) is None
    assert await repo.refused_promotion("ferry/dev/never-proposed") is None


def _prod_pulls(pulls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in pulls if p["head"]["ref"].startswith("ferry/prod/")]


async def _comments(client: httpx.AsyncClient, number: int) -> list[str]:
    answer = await client.get(f"/repos/{FULL_NAME}/issues/{number}/comments", params={"per_page": 100})
    answer.raise_for_status()
    return [c["body"] for c in answer.json()]


async def test_a_prod_promotion_closed_by_a_person_is_not_reopened_and_promote_asks_again() -> None:
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        async with world.person("rita", "write", ["acme/release-managers"]) as rita:

            async def prod_pull() -> dict[str, Any] | None:
                found = _prod_pulls(await world.open_pulls(rita))
                return found[0] if found else None

            pull = await world.wait_for("prod's promotion opened", prod_pull, 90)
            closed = await rita.patch(f"/repos/{FULL_NAME}/pulls/{pull['number']}", json={"state": "closed"})
            closed.raise_for_status()

            await reconciler.reconcile(FULL_NAME)
            await reconciler.reconcile(FULL_NAME)
            reconciler.declined.clear()  # as after a restart: GitHub, not memory, says it was declined
            await reconciler.reconcile(FULL_NAME)

            assert _prod_pulls(await world.open_pulls(rita)) == []
            assert len(world.kinds(events.PR_OPENED, "prod")) == 1
            assert len(world.kinds(events.PROMOTION_DECLINED, "prod")) == 1
            said = [body for body in await _comments(rita, pull["number"]) if "/promote prod" in body]
            assert len(said) == 1 and "will not open this promotion" in said[0]

            # /status lists the refusal and how to ask again.
            status = await rita.post(
                f"/repos/{FULL_NAME}/issues/{pull['number']}/comments", json={"body": "/status"}
            )
            status.raise_for_status()
            marker = f"ferry:reply-to:{status.json()['id']}"

            async def status_reply() -> str | None:
                return next((b for b in await _comments(rita, pull["number"]) if marker in b), None)

            listed = await world.wait_for("the answer to /status", status_reply, 30)
            assert "**Declined**" in listed, listed
            assert f"- **prod**: [#{pull['number']}]({pull['html_url']})" in listed, listed
            assert "comment `/promote prod` to ask" in listed, listed

            asked = await rita.post(
                f"/repos/{FULL_NAME}/issues/{pull['number']}/comments", json={"body": "/promote prod"}
            )
            asked.raise_for_status()
            again = await world.wait_for("prod's promotion opened on /promote", prod_pull, 30)
            assert again["number"] != pull["number"]
            assert again["head"]["ref"] == pull["head"]["ref"]
    finally:
        await world.stop()
