"""Two Ferry replicas on one GitHub, ``FERRY_SHARD=0/2`` and ``1/2``, every webhook delivered to both
(a mirroring proxy in front of them): only the replica that owns the repository writes anything, and
every command is answered once."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from bot import events
from bot.reconciler import shard_of
from bot.sandbox.example import quick_pipeline
from bot.sandbox.github_state import BOT_LOGIN
from bot.sandbox.replicas import Mirror, replica, writes
from bot.sandbox.world import FULL_NAME, World, free_port
from bot.server import WEBHOOK_PATH
from bot.settings import Settings

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
OWNER_SHARD = shard_of(FULL_NAME, 2)


def staging_by_command(config: dict[str, Any]) -> None:
    quick_pipeline(config, verify_timeout="20s")
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


class Sharded(World):
    """The sandbox world whose own Ferry is one of two shards."""

    shard = f"{1 - OWNER_SHARD}/2"  # the world's own replica does not own the repository

    def settings(self) -> Settings:
        return super().settings().model_copy(update={"shard": self.shard})


async def test_two_shards_with_every_webhook_delivered_to_both_write_only_through_the_owner() -> None:
    world = Sharded(progress_seconds=0.2)
    owner_port = free_port()
    mirror = Mirror(
        [f"http://127.0.0.1:{world.ferry_port}{WEBHOOK_PATH}", f"http://127.0.0.1:{owner_port}{WEBHOOK_PATH}"]
    )
    world.github.set_delivery(replicas=[mirror.url])
    owner_events: list[events.Event] = []
    await mirror.start()
    try:
        await world.start(staging_by_command, RELEASES)
        settings = world.settings().model_copy(update={"shard": f"{OWNER_SHARD}/2"})
        async with replica(settings, owner_port, owner_events) as owner:
            other = world.runtime
            assert (
                other is not None
                and owner.reconciler.owns(FULL_NAME)
                and not other.reconciler.owns(FULL_NAME)
            )
            rita = world.person("rita", "write", ["acme/release-managers"])
            async with rita:
                world.registry.push("acme/web", "1.5.0")
                world.registry.push("acme/worker", "1.5.0")

                def dev_verified() -> bool:
                    verdicts = [
                        e for e in owner_events if e.kind == events.HEALTH_VERDICT and e.stage == "dev"
                    ]
                    merged = [e for e in owner_events if e.kind == events.PR_MERGED and e.stage == "dev"]
                    return bool(merged) and any(
                        v.detail.startswith("success") and v.at >= merged[-1].at for v in verdicts
                    )

                try:
                    await world.wait_for("dev verified on 1.5.0", dev_verified, 60)
                except TimeoutError as exc:
                    raise AssertionError(
                        f"{exc}; writes by the replica that does not own it: {writes(other)}"
                    ) from exc
                issue = (await rita.post(f"/repos/{FULL_NAME}/issues", json={"title": "Train"})).json()[
                    "number"
                ]
                asked = [
                    await _comment(rita, f"issues/{issue}/comments", body)
                    for body in ("/promote staging", "/status")
                ]
                head = (await rita.get(f"/repos/{FULL_NAME}/commits/main")).json()["sha"]
                asked.append(await _comment(rita, f"commits/{head}/comments", "/help"))

                def all_answered() -> bool:
                    return all(_replies(world, c["id"]) for c in asked)

                await world.wait_for("every command answered", all_answered, 45)
                await world.github.wait_for_deliveries()
                async with asyncio.timeout(30):
                    await asyncio.sleep(0.5)
                    await owner.reconciler.idle()
                    await other.reconciler.idle()

            assert writes(other) == {}, "the replica that does not own acme/gitops wrote to GitHub"
            assert [e for e in world.timeline.entries if e.kind != events.FREIGHT_DISCOVERED] == []
            assert [e for e in owner_events if e.kind == events.SYNC_REQUESTED]  # the owner did the work
            assert all(len(_replies(world, c["id"])) == 1 for c in asked)
            bodies = [c["body"] for c in world.github.comments if c["user"]["login"] == BOT_LOGIN]
            assert len(bodies) == len(set(bodies)), "a bot comment was posted twice"
            assert (
                len([p for p in world.github.pulls.values() if p["head"]["ref"].startswith("ferry/staging/")])
                == 1
            )
    finally:
        try:
            await world.stop()
        finally:
            await mirror.stop()


async def _comment(person: httpx.AsyncClient, path: str, body: str) -> dict[str, Any]:
    response = await person.post(f"/repos/{FULL_NAME}/{path}", json={"body": body})
    response.raise_for_status()
    return dict(response.json())


def _replies(world: World, comment_id: int) -> list[dict[str, Any]]:
    marker = f"<!-- ferry:reply-to:{comment_id} -->"
    return [c for c in world.github.comments if c["user"]["login"] == BOT_LOGIN and marker in c["body"]]
