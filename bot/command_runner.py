"""Comment commands, wired: from a comment nobody answered yet to reactions, look-ups, a pull request and
one reply.

Belongs here: reading ``issue_comment``/``commit_comment`` payloads, asking GitHub who the commenter is,
resolving the freight once (to digests) from the default branch's snapshot, opening the promotion through
``build_promotion`` and ``RepoGitHub.open_promotion``, and answering exactly once. The grammar and the
permission rules are pure, in ``bot.commands`` (which comments count as answers: ``bot.command_replies``);
choosing a freight and the ``/status`` page, in ``bot.command_views``; finding the comments to answer,
``bot.command_sweep``.

One answer, however many replicas see the command: the first step is the 👀 reaction, an atomic claim
that only one replica wins (``bot.command_claims``). Answering twice is harmless anyway: the reply
carries ``<!-- ferry:reply-to:<comment-id> -->`` and the App's own comments in the thread (every page)
are looked for before any work and again right before the reply, and the promotion branch name is
deterministic, so an earlier PR is found.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot import events
from bot.command_approve import answer_approve
from bot.command_claims import DEFAULT_CLAIM_TIMEOUT, ClaimGitHub, CommandClaims
from bot.command_replies import EXPIRED, Comment, expired, reply_marker
from bot.command_views import Declined, promote_freight, render_status
from bot.commands import (
    SPECS,
    Asker,
    Command,
    CommandError,
    Selector,
    echo,
    is_bot,
    is_promoter,
    matches,
    parse_comment,
    promoter_teams,
    refusal,
    render_error,
    render_help,
    unknown_stage,
)
from bot.core.actions import OpenPromotion
from bot.core.config import PipelineConfig
from bot.core.decide import build_promotion, decide
from bot.core.dora import RepoFigures
from bot.core.durations import format_duration
from bot.core.freight import Freight
from bot.core.gates import health_context
from bot.core.history import Ledger, rollback_targets
from bot.core.pipeline import stage_order
from bot.core.promotion import parse_trailers
from bot.core.snapshot import CommitStatus, MergedPromotion, Snapshot
from bot.core.stage_view import StageView, freight_from_trailers, stage_view
from bot.errors import ExternalError, FerryError, GitHubError

if TYPE_CHECKING:
    from bot.reconciler import Reconciler

log = logging.getLogger("ferry.commands")

ROCKET, CONFUSED = "rocket", "confused"
DEFAULT_MAX_AGE = timedelta(hours=1)  # FERRY_COMMAND_MAX_AGE
ROLLBACK_HISTORY = 20  # merged promotions of a stage read back, newest first
LOOKS = 3  # a /promote or /rollback whose base moved is decided again, this many times in one pass at most
BASE_KEEPS_MOVING = (
    "{branch} moved {looks} times while Ferry was opening the promotion for {command}; "
    "the next pass tries again"
)

NO_CONFIG = "{repo} has no `.github/ferry.yml` on its default branch"
INVALID_CONFIG = "`.github/ferry.yml` on {branch} is invalid (see its `ferry/config` status); fix it first"
NOTHING_EARLIER = "`{stage}` has no earlier verified freight to return to{matching}"
ALREADY_RUNS = "`{stage}` already runs {label} (`{id}`)"
NOTHING_TO_EDIT = "the files of `{stage}` already hold {label}"
REFUSED = "@{login} Ferry did not run `{command}`: {reason}."
OPENED = "@{login} opened {url}: {title} (freight `{id}`, resolved to digests now)."
RESTORED = (
    "@{login} {url} had commits pushed after Ferry opened it; Ferry rebuilt it from {label} "
    "(freight `{id}`, resolved to digests now)."
)
ALREADY_OPEN = "@{login} {url} already moves `{stage}` to {label} (freight `{id}`)."
REQUESTED_BY = "@{login} in {url}"
REASON_LINE = "Requested by @{login} in {url}"

Verdict = Literal["ignored", "duplicate", "claimed", "answered", "accepted", "refused"]


def comment_event(event: str, payload: Mapping[str, Any]) -> Comment | None:
    """The comment a delivery announces, or None: edits, deletions and other events are not commands."""
    if event not in ("issue_comment", "commit_comment") or payload.get("action") != "created":
        return None
    comment, repository = payload.get("comment"), payload.get("repository")
    if not isinstance(comment, dict) or not isinstance(repository, dict):
        return None
    user = comment.get("user") or payload.get("sender") or {}
    sender = payload.get("sender") or {}
    login, account_type = str(user.get("login", "")), str(user.get("type", ""))
    if is_bot(str(sender.get("login", "")), str(sender.get("type", ""))):
        account_type = "Bot"  # whoever sent it, a bot's comment is never obeyed
    issue = payload.get("issue") if event == "issue_comment" else None
    app = comment.get("performed_via_github_app")
    return Comment(
        kind="issue" if isinstance(issue, dict) else "commit",
        repo=str(repository.get("full_name", "")),
        comment_id=int(comment.get("id", 0)),
        body=str(comment.get("body") or ""),
        login=login,
        account_type=account_type,
        association=str(comment.get("author_association", "NONE")),
        url=str(comment.get("html_url", "")),
        issue_number=int(issue.get("number", 0)) if isinstance(issue, dict) else None,
        is_pull=isinstance(issue, dict) and "pull_request" in issue,
        commit_sha=None if isinstance(issue, dict) else str(comment.get("commit_id", "")),
        created_at=_time(comment.get("created_at")),
        updated_at=_time(comment.get("updated_at")),
        via_app=int(app["id"]) if isinstance(app, dict) and isinstance(app.get("id"), int) else None,
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


class CommandGitHub(ClaimGitHub, Protocol):
    """What the runner asks of one repository (``bot.github.repo.RepoGitHub``)."""

    async def permission(self, login: str) -> str: ...
    async def team_member(self, org: str, team: str, login: str) -> bool: ...
    async def react_to_comment(
        self, kind: Literal["issue", "commit"], comment_id: int, content: str
    ) -> None: ...
    async def comment_once(self, number: int, body: str, *, marker: str) -> bool: ...
    async def commit_comment_once(self, sha: str, body: str, *, marker: str) -> bool: ...
    async def pull_head_repo(self, number: int) -> str | None:
        """The repository a pull request's head lives in (None: a deleted fork); this repository's own
        name for an issue that is no pull request."""
        ...

    async def pull_for_branch(self, branch: str) -> tuple[int, str] | None: ...
    async def refused_promotion(self, branch: str) -> tuple[int, str] | None: ...
    async def open_promotion(self, action: OpenPromotion) -> tuple[int, str]: ...
    async def merged_promotions(self) -> list[MergedPromotion]: ...
    async def head(self, branch: str) -> str: ...
    async def statuses(self, sha: str) -> dict[str, CommitStatus]: ...
    async def commit_message(self, sha: str) -> str: ...


@dataclass(frozen=True)
class Outcome:
    verdict: Verdict
    reply: str = ""
    stage: str = ""
    pull: str = ""  # the pull request opened (or found) for the command
    summary: str = ""  # one line for the timeline event
    retry_in: float = 0.0  # "claimed": seconds until the claim may be taken over


class CommandRunner:
    """Answers one comment command: ``handle`` is called by ``bot.command_sweep`` for every command
    nobody answered yet, inside the repository's reconcile pass (one writer per repository).

    ``max_age`` bounds how late a ``/promote`` or ``/rollback`` may run (older ones are answered as
    expired); ``claim_timeout`` how long another replica's claim on a command stands without a reply;
    ``clock`` is the time now (UTC).
    """

    def __init__(
        self,
        *,
        snapshot: Callable[[str], Awaitable[Snapshot | None]],
        client: Callable[[str], CommandGitHub],
        emit: events.EventSink = events.discard,
        trigger: Callable[[str], None] = lambda repo: None,
        max_age: timedelta = DEFAULT_MAX_AGE,
        claim_timeout: timedelta = DEFAULT_CLAIM_TIMEOUT,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        delivery: Callable[[str, Sequence[str]], Awaitable[RepoFigures | None]] | None = None,
        undeployable: Callable[[Freight], Awaitable[str | None]] | None = None,
    ) -> None:
        self.undeployable = undeployable  # why freight from history cannot be deployed (registry check)
        self.snapshot = snapshot
        self.delivery = delivery  # a repository's delivery figures (read again when stale), for /status
        self.client = client
        self.emit = emit
        self.trigger = trigger
        self.max_age = max_age
        self.clock = clock
        self._locks: dict[tuple[str, str, int], asyncio.Lock] = {}
        self.claims = CommandClaims(claim_timeout, clock)

    @classmethod
    def for_reconciler(
        cls,
        reconciler: Reconciler,
        *,
        max_age: timedelta = DEFAULT_MAX_AGE,
        undeployable: Callable[[Freight], Awaitable[str | None]] | None = None,
        claim_timeout: timedelta = DEFAULT_CLAIM_TIMEOUT,
    ) -> CommandRunner:
        return cls(
            undeployable=undeployable,
            snapshot=reconciler.snapshot_with_ledger,
            client=reconciler.repo_client,
            emit=reconciler.emit,
            trigger=reconciler.trigger,
            max_age=max_age,
            claim_timeout=claim_timeout,
            clock=reconciler.clock,
            delivery=reconciler.delivery.refresh,
        )

    async def handle(self, event: Comment) -> Outcome:
        if is_bot(event.login, event.account_type):
            return Outcome("ignored")
        parsed = parse_comment(event.body)
        if parsed is None:
            return Outcome("ignored")
        key = (event.repo, event.kind, event.comment_id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        try:
            async with lock:  # one comment handled twice at once: the second sees the first's reply
                return await self._handle(event, parsed)
        finally:
            if not lock.locked():
                self._locks.pop(key, None)

    async def _handle(self, event: Comment, parsed: Command | CommandError) -> Outcome:
        gh = self.client(event.repo)
        won = await self.claims.win(event, gh)
        if won == "answered":
            return Outcome("duplicate")
        if not isinstance(won, str):
            return Outcome("claimed", retry_in=won)  # another replica's to answer, for now
        marker = reply_marker(event.comment_id)
        if await gh.has_reply(event):
            self.claims.done(event)
            return Outcome("duplicate")
        try:
            outcome = await self._answer(event, parsed, gh)
        except ExternalError as exc:
            if exc.temporary:
                raise  # no reply yet: the next pass finds the command unanswered and tries it all again
            outcome = self._refuse(event, parsed, str(exc))
        if outcome.verdict == "accepted" and outcome.pull:
            await gh.react_to_comment(event.kind, event.comment_id, ROCKET)
        elif outcome.verdict == "refused":
            await gh.react_to_comment(event.kind, event.comment_id, CONFUSED)
        if event.kind == "issue" and event.issue_number is not None:
            await gh.comment_once(event.issue_number, outcome.reply, marker=marker)
        elif event.commit_sha:
            await gh.commit_comment_once(event.commit_sha, outcome.reply, marker=marker)
        self.claims.done(event)
        kind = events.COMMAND_REFUSED if outcome.verdict == "refused" else events.COMMAND_ACCEPTED
        text = parsed.text if isinstance(parsed, Command) else f"/{parsed.name}"
        summary = outcome.summary or outcome.verdict
        self.emit(
            events.Event(
                kind, event.repo, outcome.stage, f"{text} by @{event.login} on {event.where}: {summary}"
            )
        )
        return outcome

    @staticmethod
    def _refuse(event: Comment, parsed: Command | CommandError, reason: str, stage: str = "") -> Outcome:
        text = parsed.text if isinstance(parsed, Command) else f"/{parsed.name}"
        reason = reason.rstrip(".")
        reply = REFUSED.format(login=event.login, command=echo(text), reason=reason)
        return Outcome("refused", reply, stage, summary=f"refused: {' '.join(reason.split())}")

    async def _answer(self, event: Comment, parsed: Command | CommandError, gh: CommandGitHub) -> Outcome:
        if isinstance(parsed, CommandError):
            reply = f"@{event.login} {render_error(parsed)}"
            return Outcome("refused", reply, summary=f"refused: {parsed.message}")
        if SPECS[parsed.name].mutates and expired(event, self.clock(), self.max_age):
            posted = f"at {event.created_at:%Y-%m-%d %H:%M} UTC" if event.created_at else "long ago"
            age = format_duration(self.max_age)
            reason = EXPIRED.format(posted=posted, max_age=age, command=echo(parsed.text))
            return self._refuse(event, parsed, reason, parsed.stage)
        if parsed.name == "help":
            return Outcome("answered", render_help())
        branch = ""
        for _ in range(LOOKS):
            try:
                return await self._decide(event, parsed, gh)
            except _BaseMoved as moved:  # decided on a default branch that moved since: look again
                branch = moved.branch
        moving = BASE_KEEPS_MOVING.format(branch=branch, looks=LOOKS, command=echo(parsed.text))
        raise GitHubError(moving, temporary=True)  # unanswered: the next pass finds it and tries again

    async def _decide(self, event: Comment, parsed: Command, gh: CommandGitHub) -> Outcome:
        """Answer ``parsed`` from a fresh snapshot; ``_BaseMoved`` when the promotion it would open was
        built on a default branch head that moved since the snapshot."""
        snapshot = await self.snapshot(event.repo)
        if snapshot is None:
            return self._refuse(event, parsed, NO_CONFIG.format(repo=event.repo))
        config = snapshot.config
        if config is None or snapshot.config_problems:
            return self._refuse(event, parsed, INVALID_CONFIG.format(branch=snapshot.default_branch))
        if parsed.name == "approve":
            return await answer_approve(self, event, parsed, gh, snapshot)
        stages = stage_order(config)
        if parsed.name == "status":
            figures = await self.delivery(event.repo, stages) if self.delivery is not None else None
            declined = await declined_promotions(gh, snapshot)
            return Outcome("answered", render_status(snapshot, figures, declined))
        if parsed.stage not in config.stages:
            return self._refuse(event, parsed, unknown_stage(parsed.stage, stages))
        why = await self._authorize(event, parsed, gh, snapshot)
        if why is not None:
            return self._refuse(event, parsed, why, parsed.stage)
        views = {name: stage_view(snapshot, name) for name in stages}
        if parsed.name == "rollback":
            found = await rollback_freight(gh, config, views[parsed.stage], parsed.selector, snapshot.ledger)
        else:
            found = promote_freight(snapshot, views, parsed.stage, parsed.selector, parsed.reason)
        if isinstance(found, str):
            return self._refuse(event, parsed, found, parsed.stage)
        newest = snapshot.warehouse_freight.get(views[parsed.stage].warehouse)
        if self.undeployable is not None and (newest is None or found.id != newest.id):
            why = await self.undeployable(found)  # freight from history: is it still in the registry?
            if why is not None:
                return self._refuse(event, parsed, why, parsed.stage)
        return await self._open(event, parsed, gh, snapshot=snapshot, views=views, freight=found)

    async def _authorize(
        self, event: Comment, command: Command, gh: CommandGitHub, snapshot: Snapshot
    ) -> str | None:
        assert snapshot.config is not None
        promoters = list(snapshot.config.stages[command.stage].promoters)
        permission = await gh.permission(event.login)
        member_of: set[str] = set()
        if promoters and not is_promoter(event.login, promoters, ()):
            for org, team in promoter_teams(promoters):
                if await gh.team_member(org, team, event.login):
                    member_of.add(f"{org}/{team}")
                    break
        on_fork = False
        if event.is_pull is not False and event.issue_number is not None:
            # A listed comment does not say whether its issue is a pull request: GitHub is asked.
            on_fork = await gh.pull_head_repo(event.issue_number) != event.repo
        asker = Asker(event.login, permission, event.association, frozenset(member_of))
        return refusal(
            command,
            asker,
            repo=event.repo,
            promoters=promoters,
            on_fork_pull=on_fork,
            default_branch=snapshot.default_branch,
        )

    async def _open(
        self,
        event: Comment,
        command: Command,
        gh: CommandGitHub,
        *,
        snapshot: Snapshot,
        views: Mapping[str, StageView],
        freight: Freight,
    ) -> Outcome:
        stage = command.stage
        if views[stage].runs(freight):
            return self._refuse(event, command, _fill(ALREADY_RUNS, stage, freight), stage)
        reason = REASON_LINE.format(login=event.login, url=event.url)
        if command.reason:
            reason += f": {' '.join(command.reason.split())}"
        try:
            action = build_promotion(
                snapshot,
                views,
                stage,
                freight,
                requested_by=REQUESTED_BY.format(login=event.login, url=event.url),
                requested_by_login=event.login,
                rollback=command.name == "rollback",
                reason=reason,
            )
        except FerryError as exc:
            return self._refuse(event, command, str(exc), stage)
        if not action.files:
            return self._refuse(event, command, _fill(NOTHING_TO_EDIT, stage, freight), stage)
        # The check a pass makes (``bot.actor.Actor.open_promotion``): a promotion is opened (or rebuilt) only
        # on the default branch's head, re-read right before; built on an older one it would undo what
        # landed since, so it is decided again on a fresh snapshot instead.
        if await gh.head(snapshot.default_branch) != action.base_sha:
            raise _BaseMoved(snapshot.default_branch)
        existing = await gh.pull_for_branch(action.branch)
        if existing is not None:
            url = existing[1]
            if await self._tampered(gh, snapshot, action.branch, stage, freight):
                # Someone pushed to Ferry's branch after it was opened: put back what was asked for.
                await gh.open_promotion(replace(action, rebuild_pr=existing[0]))
                detail = f"#{existing[0]} {action.title}"
                self.emit(events.Event(events.PR_REBUILT, event.repo, stage, detail, freight=freight.id))
                self.trigger(event.repo)
                reply = RESTORED.format(login=event.login, url=url, label=freight.label, id=freight.id)
                return Outcome("accepted", reply, stage, url, f"restored {url}")
            reply = ALREADY_OPEN.format(
                login=event.login, url=url, stage=stage, label=freight.label, id=freight.id
            )
            return Outcome("accepted", reply, stage, url, f"already open: {url}")
        number, url = await gh.open_promotion(action)
        detail = f"#{number} {action.title}"
        self.emit(events.Event(events.PR_OPENED, event.repo, stage, detail, freight=freight.id))
        self.trigger(event.repo)  # the pass sets the gate on the new pull request
        reply = OPENED.format(login=event.login, url=url, title=action.title, id=freight.id)
        return Outcome("accepted", reply, stage, url, f"opened #{number} {action.title}")

    @staticmethod
    async def _tampered(
        gh: CommandGitHub, snapshot: Snapshot, branch: str, stage: str, freight: Freight
    ) -> bool:
        """Whether the open PR's head is not Ferry's commit for this freight (a person pushed to it)."""
        pull = next((pr for pr in snapshot.open_prs if pr.branch == branch), None)
        if pull is None:
            return False  # opened since the snapshot: Ferry's own, moments old
        trailers = parse_trailers(await gh.commit_message(pull.head_sha))
        return (trailers.stage, trailers.freight_id) != (stage, freight.id)


class _BaseMoved(Exception):
    """The default branch (``branch``) moved on from the head a command's promotion was built on."""

    def __init__(self, branch: str) -> None:
        super().__init__(f"{branch} moved")
        self.branch = branch


async def declined_promotions(gh: CommandGitHub, snapshot: Snapshot) -> list[Declined]:
    """The promotions a pass would open now whose pull request a person closed unmerged (what ``/status``
    lists, with how to ask again): the refusal is read from GitHub, as the pass reads it."""
    found: list[Declined] = []
    for action in decide(snapshot):
        if isinstance(action, OpenPromotion) and action.rebuild_pr is None:
            refused = await gh.refused_promotion(action.branch)
            if refused is not None:
                found.append(Declined(action.stage, action.freight, *refused))
    return found


def _fill(template: str, stage: str, freight: Freight) -> str:
    return template.format(stage=stage, label=freight.label, id=freight.id)


# ---- freight for /rollback (it reads history) ------------------------------------------------
async def rollback_freight(
    gh: CommandGitHub,
    config: PipelineConfig,
    view: StageView,
    selector: Selector,
    ledger: Ledger | None = None,
) -> Freight | str:
    """The freight ``/rollback`` returns a stage to: verified there before, newest first, not the current.

    Read from the freight ledger (a baseline counts, so the first rollback after adopting Ferry returns
    to what ran before it); merged promotions and their health statuses are read only when the ledger
    has nothing (history from before the ledger).
    """
    targets = rollback_targets(ledger or (), view.name, view.runs)
    chosen = next((e.freight for e in targets if selector.empty or matches(e.freight, selector)), None)
    if chosen is not None:
        return chosen
    merged = [m for m in await gh.merged_promotions() if m.stage == view.name]
    merged.sort(key=lambda m: m.merged_at.timestamp() if m.merged_at else 0.0, reverse=True)
    needs_status = config.stages[view.name].argocd is not None
    for promotion in merged[:ROLLBACK_HISTORY]:
        if promotion.freight_id == view.freight_id:
            continue
        status = (await gh.statuses(promotion.merge_commit_sha)).get(health_context(view.name))
        if (status.state if status else ("none" if needs_status else "success")) != "success":
            continue
        freight = freight_from_trailers(view.warehouse, await gh.commit_message(promotion.head_sha))
        if freight is None or view.runs(freight):
            continue
        if selector.empty or matches(freight, selector):
            return freight
    matching = f" matching {selector.describe()}" if not selector.empty else ""
    return NOTHING_EARLIER.format(stage=view.name, matching=matching)
