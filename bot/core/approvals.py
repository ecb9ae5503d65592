"""Approvals that guard the merge into a stage with ``promoters`` (pure).

A promotion pull request of such a stage is ready to merge once a member of ``promoters`` approved its
current head commit, by a GitHub review in state APPROVED whose ``commit_id`` is the head, or by ``/approve``
in a comment (Ferry's reply records it, with ``approve_marker``, for the head it approved). On top of the
upstream check, ``ferry/gate`` stays pending until then; with branch protection requiring ``ferry/gate``,
nobody else can merge.

What does not count, as on GitHub (docs.github.com/en/rest/pulls/reviews, "About pull request reviews"):
an approval by a bot, by the pull request's author (GitHub itself answers 422 "Can not approve your own pull
request"), a dismissed one, one the same person overtook with a later "request changes", and a stale one
(its ``commit_id`` is not the head: a commit was pushed after it). A person's latest deciding review is
their word, as branch protection counts it.

A pull request merged without that approval is not deployed: Ferry asks Argo CD for no sync and posts a
failure ``ferry/health/<stage>`` and one comment naming who merged it and who may approve. A merge by a
member of ``promoters`` is itself their approval.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.core.actions import Action, PostComment, SetStatus
from bot.core.gates import Gate, health_context
from bot.core.text import fit_description

APPROVED = "APPROVED"
DECIDING = ("APPROVED", "CHANGES_REQUESTED", "DISMISSED")  # COMMENTED and PENDING decide nothing
# A line of its own in Ferry's answer: text Ferry quotes from people sits inside other lines, and a
# comment's HTML comments are dropped before a command is read, so nobody can make Ferry write one.
APPROVE_MARKER_RE = re.compile(
    r"^<!-- ferry:approved:(?P<stage>[^:\s]+):(?P<sha>[0-9a-f]{40}):(?P<login>[^\s>]+) -->$", re.M
)
UNAPPROVED_MARKER = "ferry:unapproved"
HELD_PREFIXES = ("Not deployed: merged by ", "Not verified: merged by ")


def approve_marker(stage: str, head_sha: str, login: str) -> str:
    """Carried by Ferry's answer to ``/approve``: the record of that approval, for that head only."""
    return f"<!-- ferry:approved:{stage}:{head_sha}:{login} -->"


@dataclass(frozen=True)
class Review:
    """One review of a pull request, as GitHub lists it (``/approve`` reads as an APPROVED review)."""

    login: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED | PENDING
    commit_id: str
    bot: bool = False
    via: str = "review"  # review | /approve


@dataclass(frozen=True)
class PullReviews:
    """What GitHub says about who approved one promotion pull request.

    ``promoters``: the logins (lower case) among its reviewers and its merger that belong to the stage's
    ``promoters`` (team membership is GitHub's to answer, so the adapter resolves it). ``merged_by`` is set
    for a merged pull request.
    """

    number: int
    head_sha: str
    author: str
    reviews: tuple[Review, ...] = ()
    promoters: frozenset[str] = frozenset()
    merged_by: str = ""


def counted_logins(reviews: Iterable[Review], head_sha: str, author: str) -> list[str]:
    """People whose approval of ``head_sha`` stands, before asking whether they are promoters."""
    latest: dict[str, Review] = {}
    approved_by_comment: list[str] = []
    for review in reviews:
        if review.bot or review.login.lower() == author.lower():
            continue
        if review.via != "review":
            if review.state == APPROVED and review.commit_id == head_sha:
                approved_by_comment.append(review.login)
        elif review.state in DECIDING:
            latest[review.login.lower()] = review
    found = [r.login for r in latest.values() if r.state == APPROVED and r.commit_id == head_sha]
    return list(dict.fromkeys([*found, *approved_by_comment]))


def approvers(pull: PullReviews) -> list[str]:
    """The promoters whose approval of the pull request's head counts."""
    return [
        login
        for login in counted_logins(pull.reviews, pull.head_sha, pull.author)
        if login.lower() in pull.promoters
    ]


def stale_approvers(pull: PullReviews) -> list[str]:
    """Promoters who approved an earlier commit only (a commit was pushed after their approval)."""
    current = {login.lower() for login in approvers(pull)}
    return list(
        dict.fromkeys(
            r.login
            for r in pull.reviews
            if r.state == APPROVED
            and r.commit_id != pull.head_sha
            and r.login.lower() in pull.promoters
            and r.login.lower() not in current
        )
    )


def who_may_approve(promoters: Sequence[str]) -> str:
    """``@acme/release-managers or @rita``: how people are told whom to ask."""
    return " or ".join(p if p.startswith("@") else f"@{p}" for p in promoters)


def approval_gate(gate: Gate, promoters: Sequence[str], pull: PullReviews | None) -> Gate:
    """``gate`` (the upstream check) with the approval a stage with ``promoters`` also needs.

    ``pull`` None means the reviews were not read (GitHub failed): the gate waits, it never opens blind.
    """
    if not promoters or gate.state == "failure":
        return gate
    who = approvers(pull) if pull is not None else []
    if who:
        if gate.state != "success":
            return gate
        names = ", ".join(f"@{login}" for login in who)
        return Gate("success", f"Approved by {names}; {gate.description}")
    stale = stale_approvers(pull) if pull is not None else []
    note = f" (@{', @'.join(stale)} approved an earlier commit)" if stale else ""
    waiting = f"Waiting for an approving review from {who_may_approve(promoters)}{note}"
    upstream = gate.description if gate.state == "success" else gate.description.removeprefix("Waiting: ")
    return Gate("pending", f"{waiting}; {upstream}")


def merge_approved(pull: PullReviews) -> bool:
    """Whether a merged promotion had a promoter's approval of the head it merged, or a promoter other than
    its author merged it (their merge is their approval; nobody approves their own pull request)."""
    merger = pull.merged_by.lower()
    by_promoter = merger != "" and merger in pull.promoters and merger != pull.author.lower()
    return bool(approvers(pull)) or by_promoter


def unapproved(description: str) -> bool:
    """Whether a ``ferry/health/<stage>`` description is that of a merge held for want of approval."""
    return description.startswith(HELD_PREFIXES)


def unapproved_merge_actions(
    stage: str,
    deploy_commit: str,
    pull: PullReviews,
    promoters: Sequence[str],
    *,
    auto_sync_apps: Sequence[str],
    manual_apps: Sequence[str],
    pull_url: str = "",
) -> list[Action]:
    """The failure status and the one comment for a promotion merged without a promoter's approval.

    Ferry asks Argo CD to sync nothing; apps with automated sync follow the branch on their own, and the
    words say so rather than claim nothing was deployed.
    """
    who = who_may_approve(promoters)
    merger = f"@{pull.merged_by}" if pull.merged_by else "someone"
    if auto_sync_apps:
        apps = ", ".join(auto_sync_apps)
        state_words = (
            f"Not verified: merged by {merger} without an approving review from {who}; "
            f"{apps} {'syncs on its own' if len(auto_sync_apps) == 1 else 'sync on their own'}"
        )
    else:
        state_words = f"Not deployed: merged by {merger} without an approving review from {who}"
    description = fit_description(state_words)
    status = SetStatus(deploy_commit, health_context(stage), "failure", description, pull_url or None)
    lines = [
        f"**`{stage}` was merged without approval.** {merger} merged this pull request (head "
        f"{pull.head_sha[:7]}) without an approving review from {who}, whom `{stage}`'s `promoters` name.",
        "",
    ]
    if manual_apps:
        apps = ", ".join(manual_apps)
        lines.append(f"Ferry did not ask Argo CD to sync {apps}: this freight is not deployed there.")
    if auto_sync_apps:
        lines.append(
            f"{', '.join(auto_sync_apps)} {'syncs' if len(auto_sync_apps) == 1 else 'sync'} automatically "
            "from the branch, so Argo CD deploys this "
            "merge on its own; Ferry does not verify it. Revert the merge to take it back."
        )
    lines += [
        "",
        f"To deploy it: revert this merge, then promote again (`/promote {stage}`) and ask {who} to approve "
        "the new pull request (an approving review, or `/approve` in a comment). Require `ferry/gate` in the "
        "default branch's protection so that nobody else can merge.",
    ]
    marker = f"<!-- {UNAPPROVED_MARKER}:{stage}:{deploy_commit} -->"
    body = "\n".join(lines) + f"\n\n{marker}\n"
    return [status, PostComment(pull.number, body, marker)]
