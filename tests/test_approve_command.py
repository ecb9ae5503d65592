"""``/approve`` in a comment on a promotion pull request: who may, where, and the record Ferry's reply keeps
(the fake GitHub port and snapshots of test_command_runner)."""

from __future__ import annotations

from dataclasses import replace

from test_command_runner import NEW, World, snapshot

from bot.core.approvals import APPROVE_MARKER_RE
from bot.core.promotion import branch_name
from bot.core.snapshot import PullRequest

HEAD = "e" * 40


def _prod_pull(author: str = "ferry-app[bot]") -> World:
    prod = PullRequest(
        21, "https://gh/pull/21", branch_name("prod", NEW.id), "prod", NEW.id, HEAD, author=author
    )
    snap = snapshot()
    return World(replace(snap, open_prs=(*snap.open_prs, prod)))


async def test_a_promoter_approves_a_prod_pull_request_and_the_reply_records_the_head() -> None:
    world = _prod_pull()
    outcome = await world.say("/approve", pull=21)
    assert outcome.verdict == "accepted" and outcome.stage == "prod"
    reply = world.reply()
    assert "@rita approved #21 for `prod` at eeeeeee" in reply
    record = APPROVE_MARKER_RE.search(reply)
    assert record is not None and (record["stage"], record["sha"], record["login"]) == ("prod", HEAD, "rita")
    assert world.triggered == ["acme/gitops"]  # the next pass opens the gate


async def test_a_writer_outside_the_promoters_cannot_approve() -> None:
    world = _prod_pull()
    outcome = await world.say("/approve", pull=21, login="dana")
    assert outcome.verdict == "refused"
    assert "only `@acme/release-managers`" in world.reply() and "ferry:approved" not in world.reply()


async def test_the_pull_requests_author_cannot_approve_it() -> None:
    world = _prod_pull(author="rita")
    outcome = await world.say("/approve", pull=21)
    assert outcome.verdict == "refused"
    assert "you opened this pull request; another of @acme/release-managers must approve it" in world.reply()


async def test_approve_elsewhere_than_a_promotion_pull_request_is_refused() -> None:
    world = _prod_pull()
    await world.say("/approve")
    assert "/approve works in a comment on the open promotion pull request you approve" in world.reply()


async def test_a_stage_without_promoters_needs_no_approval() -> None:
    world = _prod_pull()
    await world.say("/approve", pull=12)  # #12 promotes dev, which has no promoters
    assert "`dev` has no `promoters`: merging its pull request is the approval" in world.reply()
