"""One pass reads one state: every read is pinned to the default branch's head taken at the pass's start,
so a push landing between two reads of a pass cannot pair one commit's facts with another's (a torn read)."""

from __future__ import annotations

from test_faults import sandbox, settle

from bot.core.config_load import CONFIG_PATH
from bot.core.gates import STATUS_CONFIG
from bot.sandbox.world import World


def config_states(world: World, sha: str) -> list[str]:
    return [s["state"] for s in world.github.statuses.get(sha, []) if s["context"] == STATUS_CONFIG]


async def test_a_config_pushed_between_the_reads_of_one_pass_is_never_judged_by_the_older_text() -> None:
    async with sandbox() as world:
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        (repo,) = reconciler.repos
        await settle(world)
        client = reconciler.repo_client(repo)
        read_head = client.head
        pushed: list[str] = []

        async def head_then_push(branch: str) -> str:
            sha = await read_head(branch)
            if not pushed:  # the next pass: right after it pins the head, a person breaks the config
                pushed.append(
                    await world.github.push_files({CONFIG_PATH: b"stages: [\n"}, "Edit the pipeline")
                )
            return sha

        client.head = head_then_push  # type: ignore[method-assign]
        reconciler.trigger(repo)
        await world.wait_for("a pass torn by the push", lambda: pushed, 30)
        await world.wait_for("ferry/config on the pushed commit", lambda: config_states(world, pushed[0]), 30)
        await settle(world)
        assert config_states(world, pushed[0]) == ["failure"]
