"""Carry out one pass's actions, each only if what it was decided on still holds (compare-and-swap).

Right before each write the one fact it depends on is read again, as cheaply as GitHub allows, and
``bot.core.guards`` says whether the write stands:

- a sync (and the pending status that records it, written first) only while its commit is still the
  stage's newest deploy commit: the default branch's head re-read, compared with the deploy commit over the
  stage's files; only by the pass that wrote that pending (one sync, however many passes decided it); and
  only while no verdict is on that commit (its ``ferry/health/<stage>`` re-read);
- a commit status only when the status on that commit is still the one the decision saw;
- closing a superseded promotion only while it is still open and unmerged;
- rebuilding a promotion branch only while its head is Ferry's own last commit: a person's push is kept,
  and said so on the pull request.

When a write no longer stands, the repository is decided again (another pass) instead.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from bot import events
from bot.argocd_answers import ROUTINE_OUTCOMES
from bot.argocd_deploy import perform
from bot.core.actions import (
    Action,
    ClosePromotion,
    LabelPromotion,
    MergePromotion,
    OpenPromotion,
    PostComment,
    RecordDeployment,
    RequestSync,
    SetStatus,
)
from bot.core.config_load import update_target_paths
from bot.core.gates import HEALTH_PREFIX, STATUS_CONFIG, STATUS_GATE, health_context
from bot.core.guards import branch_rebuild, deploy_still_newest, may_close, status_write, sync_stands
from bot.core.promotion import declined_comment, declined_marker
from bot.core.snapshot import CommitStatus, Snapshot
from bot.core.verification import refused_status, superseded_description
from bot.errors import ExternalError
from bot.event_log import freight_at
from bot.github.repo import BranchMoved

if TYPE_CHECKING:
    from bot.reconciler import Reconciler

log = logging.getLogger("ferry.reconciler")

Seen = Mapping[tuple[str, str], CommitStatus | None]  # (sha, context) -> the status the decision saw


def seen_statuses(snapshot: Snapshot) -> dict[tuple[str, str], CommitStatus | None]:
    """Every (commit, context) status a snapshot read, as the decisions made from it saw them."""
    seen: dict[tuple[str, str], CommitStatus | None] = {}
    if snapshot.config_commit is not None:
        seen[(snapshot.config_commit, STATUS_CONFIG)] = snapshot.config_statuses.get(STATUS_CONFIG)
    for stage, deploy in snapshot.deploys.items():
        context = health_context(stage)
        seen[(deploy.commit, context)] = deploy.statuses.get(context)
    for pr in snapshot.open_prs:
        seen[(pr.head_sha, STATUS_GATE)] = pr.statuses.get(STATUS_GATE)
    return seen


class Actor:
    """Performs one pass's actions in order through a table of handlers, one per action type.

    ``seen`` holds the statuses the decisions were made on; a (commit, context) missing from it is read
    from GitHub when written (the merge fast path passes what it read itself).
    """

    def __init__(
        self,
        reconciler: Reconciler,
        repo: str,
        snapshot: Snapshot | None,
        *,
        seen: Seen | None = None,
        stage_paths: Mapping[str, tuple[str, ...]] | None = None,
    ) -> None:
        self.r = reconciler
        self.repo = repo
        self.snapshot = snapshot
        self.gh = reconciler.repo_client(repo)
        self.opened: dict[str, str] = {}  # branch -> PR url, for "superseded by" links
        self.seen: dict[tuple[str, str], CommitStatus | None] = dict(
            seen if seen is not None else seen_statuses(snapshot) if snapshot is not None else {}
        )
        self.stage_paths = dict(stage_paths or {})
        if snapshot is not None and snapshot.config is not None and not self.stage_paths:
            self.stage_paths = {
                stage: tuple(paths)
                for stage, paths in update_target_paths(snapshot.config, snapshot.paths.__contains__).items()
            }
        self.newest: dict[tuple[str, str], bool] = {}  # (stage, commit) -> still its newest deploy commit
        self.moved_to: dict[tuple[str, str], str] = {}  # (commit, health context) -> the head that moved on
        self.superseded: set[tuple[str, str]] = set()  # (commit, health context) marked overtaken
        # (commit, health context) whose verification-begins pending this pass did not write (another
        # pass or replica did, or the stage moved on): its deploy request is that writer's, not this one's.
        self.unrecorded: set[tuple[str, str]] = set()
        self.handlers: dict[type, Callable[[Any], Awaitable[bool]]] = {
            SetStatus: self.set_status,
            OpenPromotion: self.open_promotion,
            ClosePromotion: self.close_promotion,
            MergePromotion: self.merge,
            LabelPromotion: self.label,
            PostComment: self.comment,
            RequestSync: self.request_sync,
            RecordDeployment: self.record,
        }
        self.ledger_failed: ExternalError | None = None
        self.ledger_written = False  # a ledger write GitHub refused for now

    async def run(self, actions: list[Action]) -> None:
        try:
            await self._run(actions)
        finally:
            if self.ledger_failed is not None or self.ledger_written:
                self.r.ledger_changed(self.repo)  # the next pass reads the ledger again
        if self.ledger_failed is not None:
            raise self.ledger_failed  # the status stands; a retried pass writes what the ledger lacks

    async def _run(self, actions: list[Action]) -> None:
        for action in actions:
            try:
                done = await self.handlers[type(action)](action)  # False: not written
            except ExternalError as exc:
                if exc.temporary:
                    raise  # the pass is retried as a whole; every action is idempotent
                log.warning(
                    "action refused",
                    extra={"repo": self.repo, "action": action.describe(), "error": str(exc)},
                )
                continue
            if done and self.r.on_action is not None:
                self.r.on_action(action.kind)

    def _emit(self, kind: str, stage: str, detail: str, freight: str = "") -> None:
        self.r.emit(events.Event(kind, self.repo, stage, detail, freight=freight))

    def _decide_again(self, why: str, action: Action) -> bool:
        log.info(why + "; deciding again", extra={"repo": self.repo, "action": action.describe()})
        self.r.trigger(self.repo)
        return False

    async def set_status(self, action: SetStatus) -> bool:
        key = (action.sha, action.context)
        stage = action.context.removeprefix(HEALTH_PREFIX)
        # Verification begins (pending where the decision saw no status): only on the newest deploy commit.
        begins = (
            stage != action.context and action.state == "pending" and key in self.seen and not self.seen[key]
        )
        if begins:
            self.unrecorded.add(key)  # until this pending is written, its deploy request waits
        if begins and not await self.still_newest(stage, action.sha):
            return await self._overtaken(stage, action.sha, action)
        current = (await self.gh.statuses(action.sha)).get(action.context)
        seen = self.seen.get(key, current)  # not read by the decision: nothing to compare
        check = status_write(seen, current, action.state, action.description)
        if check == "done":
            return False
        if check == "stale":
            return self._decide_again(f"{action.context} on {action.sha[:7]} changed since", action)
        self.unrecorded.discard(key)
        await self.gh.set_status(action)  # ``seen`` stays: a second write to it this pass is a stale one
        if action.ledger is not None:
            await self.record(action.ledger)  # the same guarded write: only after the status stands
        freight = freight_at(self.snapshot, sha=action.sha)
        if action.context.startswith(HEALTH_PREFIX):
            stage = action.context.removeprefix(HEALTH_PREFIX)
            if action.state != "pending":
                self._emit(events.HEALTH_VERDICT, stage, f"{action.state}: {action.description}", freight)
        elif action.context == STATUS_GATE:
            self._emit(
                events.GATE_SET,
                _stage_of_sha(self.snapshot, action.sha),
                f"{action.state}: {action.description}",
                freight,
            )
        elif action.context == STATUS_CONFIG:
            self._emit(events.CONFIG_STATUS, "", f"{action.state}: {action.description}")
        return True

    async def record(self, action: RecordDeployment) -> bool:
        """Write a ledger record (look before create, in ``RepoDeployments.record_deployment``). The
        Deployments API failing never holds back the rest of the pass: the commit status decides, and a
        temporary failure makes the pass retried once its other actions are done."""
        # Whatever the answer, the ledger this pass decided on differed from what it was to be (or a
        # replica wrote it meanwhile): the next pass reads it again rather than decide this once more.
        self.ledger_written = True
        try:
            written = await self.gh.record_deployment(action)
        except ExternalError as exc:
            log.warning(
                "ledger write failed",
                extra={"repo": self.repo, "action": action.describe(), "error": str(exc)},
            )
            if exc.temporary:
                self.ledger_failed = exc
            return False
        if written:
            self._emit(events.LEDGER_RECORDED, action.stage, action.describe(), action.freight.id)
        return written

    async def open_promotion(self, action: OpenPromotion) -> bool:
        # Look before creating: another replica (or a person) may have moved the default branch
        # since this pass observed it; then this pass's decision is stale and a new pass decides.
        assert self.snapshot is not None
        if await self.gh.head(self.snapshot.default_branch) != action.base_sha:
            return self._decide_again("base moved", action)
        if action.expected_head is not None:
            message = await self.gh.commit_message(action.expected_head)
            if branch_rebuild(action.stage, action.expected_head, action.expected_head, message) == "foreign":
                return await self._keep_foreign(action, action.expected_head)
        if action.rebuild_pr is None and await self._declined(action):
            return False
        try:
            number, url = await self.gh.open_promotion(action)
        except BranchMoved as moved:
            message = await self.gh.commit_message(moved.current) if moved.current else ""
            check = branch_rebuild(action.stage, moved.expected, moved.current, message)
            if check == "foreign" and moved.current is not None and action.rebuild_pr is not None:
                return await self._keep_foreign(action, moved.current)
            # A fresh open that found the branch made since (another replica) and a person's commit on it:
            # the next pass sees the branch and its pull request, and decides on them.
            return self._decide_again(str(moved), action)
        self.opened[action.branch] = url
        kind = events.PR_REBUILT if action.rebuild_pr else events.PR_OPENED
        self._emit(kind, action.stage, f"#{number} {action.title}", action.freight.id)
        return True

    async def _declined(self, action: OpenPromotion) -> bool:
        """Whether a person closed this very promotion unmerged; then it is not opened again.

        Said once under the closed pull request (a marked comment, so a restart or a second replica says
        nothing new); remembered for this process only to spare GitHub the lookup on every pass.
        """
        key = (self.repo, action.branch)
        async with self.r.declined_lock:  # two passes of this process say it once, not twice
            if key in self.r.declined:
                return True
            found = await self.gh.refused_promotion(action.branch)
            if found is None:
                return False
            number, _ = found
            comment = declined_comment(action.stage, action.freight)
            posted = await self.gh.comment_once(number, comment, marker=declined_marker(action.branch))
            self.r.declined.add(key)
        if posted:
            detail = f"#{number} was closed unmerged; {action.freight.label} is not proposed again"
            self._emit(events.PROMOTION_DECLINED, action.stage, detail, action.freight.id)
        return True

    async def _keep_foreign(self, action: OpenPromotion, head: str) -> bool:
        """A person pushed to Ferry's branch: keep their commit, say why the promotion is not rebuilt."""
        assert action.rebuild_pr is not None
        body = (
            f"Ferry did not rebuild this promotion on the new base: `{action.branch}` has a commit that is "
            f"not Ferry's ({head[:7]}), and rebuilding would throw it away. Rebase the branch yourself, "
            f"or close this pull request and comment `/promote {action.stage}` to have Ferry open it afresh."
        )
        marker = f"<!-- ferry:foreign-push:{action.branch}:{head} -->"
        if await self.gh.comment_once(action.rebuild_pr, body, marker=marker):
            detail = f"#{action.rebuild_pr} not rebuilt: {action.branch} has a person's commit {head[:7]}"
            self._emit(events.PR_REBUILD_REFUSED, action.stage, detail, action.freight.id)
        log.warning(
            "promotion branch has a person's commit", extra={"repo": self.repo, "branch": action.branch}
        )
        return False

    async def close_promotion(self, action: ClosePromotion) -> bool:
        state, merged = await self.gh.pull_state(action.number)
        if not may_close(state, merged):
            return self._decide_again(f"#{action.number} is {'merged' if merged else state}", action)
        link = None
        if action.superseded_by_branch:
            link = self.opened.get(action.superseded_by_branch)
            if link is None:
                found = await self.gh.pull_for_branch(action.superseded_by_branch)
                link = found[1] if found else None
        await self.gh.close_promotion(action, link)
        freight = freight_at(self.snapshot, number=action.number)
        self._emit(events.PR_SUPERSEDED, action.stage, f"#{action.number} closed: {action.comment}", freight)
        return True

    async def merge(self, action: MergePromotion) -> bool:
        sha = await self.gh.merge(action)  # GitHub compares the head SHA itself
        freight = freight_at(self.snapshot, number=action.number)
        self._emit(events.PR_MERGED, action.stage, f"#{action.number} merged by Ferry as {sha[:7]}", freight)
        return True

    async def label(self, action: LabelPromotion) -> bool:
        await self.gh.add_labels(action.number, action.labels)
        return True

    async def comment(self, action: PostComment) -> bool:
        if not await self.gh.post_comment(action):
            return False  # said before (its marker is in the thread): nothing posted, nothing to report
        self._emit(events.COMMENT_POSTED, "", action.describe())
        return True

    async def _overtaken(self, stage: str, commit: str, action: Action) -> bool:
        """The stage moved on before verification of ``commit`` began: nothing is deployed for it, and its
        status says so (once, and only where no status is yet) rather than staying empty."""
        key = (commit, health_context(stage))
        if key not in self.superseded:
            self.superseded.add(key)
            current = (await self.gh.statuses(commit)).get(key[1])
            said = superseded_description(stage, self.moved_to.get(key, commit))
            if status_write(None, current, "error", said) == "write":
                await self.gh.set_status(SetStatus(commit, key[1], "error", said))
                freight = freight_at(self.snapshot, sha=commit)
                self._emit(events.HEALTH_VERDICT, stage, f"error: {said}", freight)
        return self._decide_again(f"{stage} moved on from {commit[:7]}", action)

    async def still_newest(self, stage: str, deploy_commit: str, *, again: bool = False) -> bool:
        """Whether ``deploy_commit`` is still ``stage``'s newest deploy commit: the default branch's head,
        read now, is it or descends from it without a change to the stage's files (asked once per pass,
        a sync and the pending status that records it being one write; ``again``: read anew, as before a
        sync is retried after a backoff)."""
        key = (stage, deploy_commit)
        if again or key not in self.newest:
            head = await self.gh.head(await self.gh.default_branch())
            known = self.snapshot.head_sha if self.snapshot is not None else None
            if head in (known, deploy_commit):
                self.newest[key] = True
            else:
                paths = self.stage_paths.get(stage, ())
                relation = await self.gh.history.relation(deploy_commit, head, paths)
                self.newest[key] = deploy_still_newest(relation)
                self.moved_to[(deploy_commit, health_context(stage))] = head
        return self.newest[key]

    async def request_sync(self, action: RequestSync) -> bool:
        if self.r.argocd is None or (action.revision, health_context(action.stage)) in self.unrecorded:
            return False
        if not await self.still_newest(action.stage, action.revision):
            return await self._overtaken(action.stage, action.revision, action)
        # Decided on a snapshot that may be older than a verdict another pass or replica wrote since (a pass
        # reusing its snapshot cannot see a new status).
        context = health_context(action.stage)
        health = (await self.gh.statuses(action.revision)).get(context)
        if not sync_stands(health):
            return self._decide_again(f"{context} on {action.revision[:7]} is decided already", action)
        for ask in action.asks:
            result = await perform(
                self.r.argocd,
                action,
                ask,
                repo=self.repo,
                now=self.r.clock(),
                still_wanted=lambda: self.still_newest(action.stage, action.revision, again=True),
            )
            if result.outcome == "overtaken":  # Argo CD failed it, and a newer commit landed meanwhile
                return await self._overtaken(action.stage, action.revision, action)
            if result.mode != "none":
                detail = f"{ask.app}: {result.mode} for {action.revision[:7]} ({result.outcome})"
                if result.outcome not in ROUTINE_OUTCOMES:
                    detail += f": {result.message}"  # why Argo CD did not simply act, in its words
                freight = freight_at(self.snapshot, sha=action.revision)
                self._emit(events.SYNC_REQUESTED, action.stage, detail, freight)
            if result.refused:
                await self.set_status(refused_status(action, ask.app, result.message))
        return True


def _stage_of_sha(snapshot: Snapshot | None, sha: str) -> str:
    if snapshot is None:
        return ""
    return next((pr.stage for pr in snapshot.open_prs if pr.head_sha == sha), "")
