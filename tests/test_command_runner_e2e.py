"""The `commands` sandbox scenario end to end: comments through the GitHub stand-in's REST API, webhooks
to Ferry's real server, reactions, replies and pull requests back on the stand-in."""

from __future__ import annotations

import time
from typing import Any

from bot import events
from bot.sandbox.run import summarise
from bot.sandbox.scenario_commands import FIRST, ROLLBACK_REASON, SECOND
from bot.sandbox.scenarios import SCENARIOS
from bot.sandbox.world import World
from bot.server import WebhookDelivery

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}


async def test_commands_scenario_promotes_refuses_and_rolls_back_with_one_answer_each() -> None:
    scenario = SCENARIOS["commands"]
    world = World()
    sent: list[tuple[str, dict[str, Any]]] = []
    world.github.on_event.append(lambda event, payload: sent.append((event, payload)))
    try:
        await world.start(scenario.edit, RELEASES)
        assert await scenario.play(world)
        summary = await summarise(world, "commands", True, "")
        stages = summary["stages"]
        assert {name: stage["health"] for name, stage in stages.items()} == dict.fromkeys(stages, "success")
        assert stages["prod"]["images"] == {"acme/web": FIRST, "acme/worker": FIRST}
        assert stages["staging"]["images"] == {"acme/web": SECOND, "acme/worker": SECOND}
        kinds = [e["kind"] for e in summary["events"]]
        assert kinds.count(events.COMMAND_REFUSED) == 1 and kinds.count(events.COMMAND_ACCEPTED) == 4

        comments = world.github.comments
        asked = [c for c in comments if c["body"].startswith("/")]
        replies = {
            c["body"].rsplit("ferry:reply-to:", 1)[1].split(" ")[0]: c
            for c in comments
            if "reply-to" in c["body"]
        }
        assert len(asked) == 5 and set(replies) == {str(c["id"]) for c in asked}  # one answer each, no more
        reactions = {
            c["id"]: sorted(r["content"] for r in world.github.reactions if r["subject"]["id"] == c["id"])
            for c in asked
        }
        by_login = {(c["user"]["login"], c["body"]): c for c in asked if "commit_id" not in c}
        on_commit = next(c for c in asked if "commit_id" in c)
        assert reactions[on_commit["id"]] == ["eyes", "rocket"]
        refused = by_login[("watcher", "/promote prod")]
        assert reactions[refused["id"]] == ["confused", "eyes"]
        assert "@watcher has read access to acme/gitops" in replies[str(refused["id"])]["body"]
        promoted = by_login[("rita", "/promote prod")]
        assert reactions[promoted["id"]] == ["eyes", "rocket"]
        assert "/pull/" in replies[str(promoted["id"])]["body"]
        assert "```mermaid" in replies[str(by_login[("rita", "/status")]["id"])]["body"]

        rollback = next(
            p for p in world.github.pulls.values() if "rollback" in {x["name"] for x in p["labels"]}
        )
        rollback_comment = by_login[("rita", f'/rollback prod --reason "{ROLLBACK_REASON}"')]
        assert f"Requested by @rita in {rollback_comment['html_url']}" in rollback["body"]

        # GitHub redelivers rita's comment (after a Ferry restart the delivery id is not remembered):
        payload = next(p for e, p in sent if e == "issue_comment" and p["comment"]["id"] == promoted["id"])
        pulls, answers = len(world.github.pulls), len(world.github.comments)
        assert world.runtime is not None
        await world.runtime.router.deliver(WebhookDelivery("issue_comment", "again", payload, time.time()))
        await world.runtime.reconciler.idle()
        assert (len(world.github.pulls), len(world.github.comments)) == (pulls, answers)
    finally:
        await world.stop()
