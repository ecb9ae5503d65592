"""A broken `.github/ferry.yml` is stopped before it merges: `ferry/config` on the pull request's head
commit names the first problem by file:line:column, one comment lists them all and is edited (never
repeated) as the author pushes fixes, and says so once the config is valid."""

from __future__ import annotations

import base64
from typing import Any

import httpx

from bot import events
from bot.config_prs import ConfigReview
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

API = f"/repos/{FULL_NAME}"
CONFIG = ".github/ferry.yml"
RELEASES = {"web": ["1.4.0"], "worker": ["1.4.0"]}
DEV_MERGE = "    auto_merge: true\n    update:\n    - kustomize: overlays/dev"
PROD_MERGE = "    auto_merge: false\n"


async def _commit(client: httpx.AsyncClient, branch: str, parent: str, text: str) -> str:
    """One commit of ``text`` as the config on top of ``parent``; ``branch`` made or moved to it."""
    tree = (await client.get(f"{API}/git/commits/{parent}")).json()["tree"]["sha"]
    made = await client.post(
        f"{API}/git/trees",
        json={
            "base_tree": tree,
            "tree": [{"path": CONFIG, "mode": "100644", "type": "blob", "content": text}],
        },
    )
    commit = await client.post(
        f"{API}/git/commits",
        json={"message": "Edit the pipeline", "tree": made.json()["sha"], "parents": [parent]},
    )
    sha = str(commit.json()["sha"])
    moved = await client.patch(f"{API}/git/refs/heads/{branch}", json={"sha": sha})
    if moved.status_code == 422:
        created = await client.post(f"{API}/git/refs", json={"ref": f"refs/heads/{branch}", "sha": sha})
        created.raise_for_status()
    return sha


async def _config_text(client: httpx.AsyncClient) -> str:
    answer = await client.get(f"{API}/contents/{CONFIG}")
    answer.raise_for_status()
    return base64.b64decode(answer.json()["content"]).decode()


async def _config_statuses(client: httpx.AsyncClient, sha: str) -> list[dict[str, Any]]:
    """Every `ferry/config` status ever posted on ``sha``, newest first (GitHub lists them all)."""
    answer = await client.get(f"{API}/commits/{sha}/statuses", params={"per_page": 100})
    answer.raise_for_status()
    return [s for s in answer.json() if s["context"] == "ferry/config"]


async def _reviews(client: httpx.AsyncClient, number: int) -> list[dict[str, Any]]:
    answer = await client.get(f"{API}/issues/{number}/comments", params={"per_page": 100})
    answer.raise_for_status()
    return [c for c in answer.json() if "ferry:config-review" in c["body"]]


async def test_a_pull_request_breaking_the_config_fails_ferry_config_until_it_is_fixed() -> None:
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        world.github.set_delivery(duplicate=1.0)  # every webhook arrives twice, as a redelivery does
        async with world.person("rita", "write") as rita:
            main = (await rita.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"]
            good = await _config_text(rita)
            assert DEV_MERGE in good and PROD_MERGE in good
            two = good.replace(DEV_MERGE, DEV_MERGE.replace("true", "perhaps")).replace(
                PROD_MERGE, "    auto_merge: nope\n"
            )
            first = await _commit(rita, "tune-pipeline", main, two)
            opened = await rita.post(
                f"{API}/pulls", json={"title": "Tune the pipeline", "head": "tune-pipeline", "base": "main"}
            )
            assert opened.status_code == 201, opened.text
            number = opened.json()["number"]
            dev_line = good.splitlines().index("    auto_merge: true") + 1
            prod_line = good.splitlines().index("    auto_merge: false") + 1

            [failed] = await world.wait_for("ferry/config on the PR", lambda: _config_statuses(rita, first))
            assert failed["state"] == "failure"
            assert failed["description"].startswith(f"{CONFIG}:{dev_line}:17: stages.dev.auto_merge:")
            assert failed["description"].endswith("(+1 more)")
            [comment] = await _reviews(rita, number)
            assert (
                f"{CONFIG}:{dev_line}:17" in comment["body"] and f"{CONFIG}:{prod_line}:17" in comment["body"]
            )
            assert "expected true or false" in comment["body"]
            assert failed["target_url"] == comment["html_url"]

            one = good.replace(PROD_MERGE, "    auto_merge: nope\n")
            second = await _commit(rita, "tune-pipeline", first, one)
            [again] = await world.wait_for(
                "ferry/config on the 2nd push", lambda: _config_statuses(rita, second)
            )
            assert again["state"] == "failure" and again["description"].startswith(
                f"{CONFIG}:{prod_line}:17:"
            )
            assert "more)" not in again["description"]
            [edited] = await _reviews(rita, number)
            assert edited["id"] == comment["id"]
            assert (
                f"{CONFIG}:{prod_line}:17" in edited["body"] and f"{CONFIG}:{dev_line}:" not in edited["body"]
            )

            third = await _commit(rita, "tune-pipeline", second, good + "\n# tuned\n")
            [valid] = await world.wait_for("ferry/config on the fix", lambda: _config_statuses(rita, third))
            assert valid["state"] == "success"
            # The sandbox's App lacks the optional administration: read, and ferry/config says so.
            assert valid["description"] == (
                "Valid: 1 warehouse(s), stages dev → staging → prod; cannot read main's protection "
                "(optional administration: read) to check ferry/gate"
            )
            [fixed] = await _reviews(rita, number)
            assert fixed["id"] == comment["id"] and "is fixed" in fixed["body"] and third[:7] in fixed["body"]

            # A restarted Ferry (nothing remembered) and a redelivered webhook say nothing new.
            assert world.runtime is not None
            reconciler = world.runtime.reconciler
            await reconciler.idle()
            for step in reconciler.change_steps:
                if isinstance(step, ConfigReview):
                    await ConfigReview(step.client, step.uses_ferry)(FULL_NAME)
            await reconciler.idle()
            assert len(await _config_statuses(rita, third)) == 1
            assert len(await _config_statuses(rita, first)) == 1
            assert await _reviews(rita, number) == [fixed]
    finally:
        await world.stop()


async def test_a_pull_request_that_leaves_the_config_alone_gets_unchanged_success() -> None:
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        async with world.person("rita", "write") as rita:
            main = (await rita.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"]
            tree = (await rita.get(f"{API}/git/commits/{main}")).json()["tree"]["sha"]
            made = await rita.post(
                f"{API}/git/trees",
                json={
                    "base_tree": tree,
                    "tree": [{"path": "NOTES.md", "mode": "100644", "type": "blob", "content": "hi\n"}],
                },
            )
            commit = await rita.post(
                f"{API}/git/commits", json={"message": "Notes", "tree": made.json()["sha"], "parents": [main]}
            )
            sha = commit.json()["sha"]
            await rita.post(f"{API}/git/refs", json={"ref": "refs/heads/notes", "sha": sha})
            opened = await rita.post(f"{API}/pulls", json={"title": "Notes", "head": "notes", "base": "main"})
            assert opened.status_code == 201, opened.text
            [status] = await world.wait_for("ferry/config on the PR", lambda: _config_statuses(rita, sha))
            assert status["state"] == "success" and status["description"].startswith("Unchanged:")
            assert await _reviews(rita, opened.json()["number"]) == []
    finally:
        await world.stop()


async def test_promotions_merge_when_branch_protection_requires_ferry_config() -> None:
    world = World()

    async def protect(world: World) -> None:
        world.github.set_branch_protection("main", checks=[("ferry/gate", 1), ("ferry/config", 1)])

    try:
        await world.start(quick_pipeline, RELEASES, before_ferry=protect)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        merged = lambda: world.kinds(events.PR_MERGED, "dev")  # noqa: E731
        await world.wait_for("dev's promotion merged by Ferry", merged, 90)
    finally:
        await world.stop()
