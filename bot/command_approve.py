"""``/approve``, wired: a promoter approves the promotion pull request the comment is on.

Guarded as the other commands are (``CommandRunner._authorize``: write access, the stage's ``promoters``,
the fork rule), and refused for the pull request's author, on anything but an open promotion pull request,
and for a stage without ``promoters``. Ferry's reply carries the record (``bot.core.approvals.
approve_marker``: stage, head commit, login) that ``bot.github.reviews`` reads back from the App's own
comments, so the approval holds for that head only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from bot.command_replies import Comment
from bot.commands import Command
from bot.core.approvals import approve_marker, who_may_approve
from bot.core.snapshot import Snapshot

if TYPE_CHECKING:
    from bot.command_runner import CommandGitHub, CommandRunner, Outcome

APPROVE_WHERE = "/approve works in a comment on the open promotion pull request you approve"
APPROVE_NOT_NEEDED = "`{stage}` has no `promoters`: merging its pull request is the approval"
APPROVE_OWN = "you opened this pull request; another of {who} must approve it"
APPROVED_REPLY = (
    "@{login} approved #{number} for `{stage}` at {sha}. A commit pushed after it needs a new approval."
)


async def answer_approve(
    runner: CommandRunner, event: Comment, command: Command, gh: CommandGitHub, snapshot: Snapshot
) -> Outcome:
    """The answer to ``/approve``: accepted with the record in the reply, or refused with the reason."""
    from bot.command_runner import Outcome  # noqa: PLC0415 - the runner imports this module

    assert snapshot.config is not None
    number = event.issue_number if event.kind == "issue" else None
    pull = next((p for p in snapshot.open_prs if p.number == number), None)
    if pull is None or pull.stage not in snapshot.config.stages:
        return runner._refuse(event, command, APPROVE_WHERE)
    stage = pull.stage
    command = replace(command, stage=stage)
    promoters = list(snapshot.config.stages[stage].promoters)
    if not promoters:
        return runner._refuse(event, command, APPROVE_NOT_NEEDED.format(stage=stage), stage)
    why = await runner._authorize(event, command, gh, snapshot)
    if why is not None:
        return runner._refuse(event, command, why, stage)
    if pull.author and pull.author.lower() == event.login.lower():
        return runner._refuse(event, command, APPROVE_OWN.format(who=who_may_approve(promoters)), stage)
    runner.trigger(event.repo)  # the next pass opens the gate
    marker = approve_marker(stage, pull.head_sha, event.login)
    reply = APPROVED_REPLY.format(login=event.login, number=pull.number, stage=stage, sha=pull.head_sha[:7])
    return Outcome("accepted", f"{reply}\n\n{marker}", stage, summary=f"approved #{pull.number}")
