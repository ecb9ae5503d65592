"""The compare-and-swap decisions over random interleavings, without the network (hypothesis stateful).

A model of one stage: the default branch's first-parent line (commits that change the stage's files, and
commits that do not), an Argo CD app that runs one of its commits (Ferry's syncs, and people syncing it by
hand), and the ``ferry/health/<stage>`` statuses. Passes take snapshots and carry their decisions out
later, in any order and any number of times (late passes, late merge events, a second replica), each
write going through ``bot.core.guards`` and ``bot.core.drift`` against the model's current state, as the
actor does against GitHub. Invariants: no sync to a commit that is not the stage's newest deploy commit at
that moment; no pending over a verdict written after the decision; and once passes run on the final state,
no status contradicts what the app runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot.core.argo_app import AppState, Relation
from bot.core.drift import drift_actions
from bot.core.guards import deploy_still_newest, status_write
from bot.core.snapshot import CommitStatus

CONTEXT = "ferry/health/dev"
PENDING = "Asking Argo CD to deploy"
VERIFIED = "verified: healthy"
SUPERSEDED = "Superseded: dev moved on before this merge was verified"


@dataclass(frozen=True)
class Write:
    """A decided effect: a sync, or a status (``seen``: the status the decision saw on that commit)."""

    commit: int
    state: str = ""  # "" for a sync
    description: str = ""
    seen: CommitStatus | None = None


@dataclass
class Pass:
    head: int
    writes: list[Write] = field(default_factory=list)


class Stage(RuleBasedStateMachine):
    """Commits are numbered by their position on the first-parent line; commit 0 deploys the stage."""

    @initialize()
    def start(self) -> None:
        self.changes = [True]  # does commit i change the stage's files?
        self.app = 0  # the commit the app last synced
        self.statuses: dict[int, CommitStatus] = {0: CommitStatus(CONTEXT, "success", VERIFIED)}
        self.passes: list[Pass] = []
        self.syncs = 0

    # ---- the model of GitHub and Argo CD -------------------------------------------------------
    @property
    def head(self) -> int:
        return len(self.changes) - 1

    def newest_deploy(self, head: int) -> int:
        return max(i for i in range(head + 1) if self.changes[i])

    def relation(self, base: int, head: int) -> Relation:
        """``RepoHistory.relation(base, head, stage_paths)`` on a linear first-parent line."""
        if base == head:
            return "same"
        if base > head:
            return "behind"
        return "moved_on" if any(self.changes[base + 1 : head + 1]) else "equivalent"

    def app_state(self, deploy: int) -> tuple[AppState, dict[str, Relation]]:
        """The app as Argo CD reports it, and its revision's relation to ``deploy``."""
        runs = self.newest_deploy(self.app) == self.newest_deploy(self.head)
        state = AppState(
            "web",
            sync_status="Synced" if runs else "OutOfSync",
            health_status="Healthy",
            operation_revision=f"{self.app:040d}",
            operation_phase="Succeeded",
        )
        return state, {f"{self.app:040d}": self.relation(deploy, self.app)}

    # ---- what happens ----------------------------------------------------------------------------
    @rule(changes_stage=st.booleans())
    def push(self, changes_stage: bool) -> None:
        """A merge of a promotion (it changes the stage's files) or an unrelated commit."""
        self.changes.append(changes_stage)

    @rule(data=st.data())
    def someone_syncs_the_app_by_hand(self, data: st.DataObject) -> None:
        self.app = data.draw(st.integers(0, self.head))

    @rule()
    def observe_and_decide(self) -> None:
        """A pass's snapshot and the writes ``decide`` makes from it (verification and drift)."""
        deploy = self.newest_deploy(self.head)
        seen = self.statuses.get(deploy)
        work = Pass(self.head)
        if seen is None:
            work.writes += [Write(deploy, "pending", f"{PENDING} {deploy}", seen), Write(deploy)]
        elif seen.state == "pending":
            if self.newest_deploy(self.app) == deploy:
                work.writes.append(Write(deploy, "success", f"{VERIFIED} {deploy}", seen))
        else:
            state, relation = self.app_state(deploy)
            commit = f"{deploy:040d}"
            for action in drift_actions(
                CONTEXT,
                commit,
                (seen.state, seen.description),
                states=[state],
                relation=relation,
                target_url=None,
            ):
                assert hasattr(action, "state") and hasattr(action, "description")
                work.writes.append(Write(deploy, action.state, action.description, seen))
        self.passes.append(work)

    @precondition(lambda self: bool(self.passes))
    @rule(data=st.data(), keep=st.booleans())
    def carry_out_a_pass(self, data: st.DataObject, keep: bool) -> None:
        """Any earlier pass acts now (late, or again: a redelivered event, a second replica)."""
        index = data.draw(st.integers(0, len(self.passes) - 1))
        work = self.passes[index] if keep else self.passes.pop(index)
        self.act(work)

    def act(self, work: Pass) -> None:
        for write in work.writes:
            stands = work.head == self.head or deploy_still_newest(self.relation(write.commit, self.head))
            begins = not write.state or (write.state == "pending" and write.seen is None)
            if begins and not stands:  # no sync: the commit is marked superseded where it has no status
                if status_write(None, self.statuses.get(write.commit), "error", SUPERSEDED) == "write":
                    self.statuses[write.commit] = CommitStatus(CONTEXT, "error", SUPERSEDED)
                return  # decide again: the rest of the pass no longer stands either
            if not write.state:
                assert write.commit == self.newest_deploy(self.head), "a sync to a commit that is not newest"
                self.app = write.commit
                self.syncs += 1
                continue
            current = self.statuses.get(write.commit)
            if status_write(write.seen, current, write.state, write.description) != "write":
                return
            if current is not None and current.state != "pending":
                assert write.seen is not None and write.seen.state == current.state, (
                    "a newer verdict overwritten"
                )
            self.statuses[write.commit] = CommitStatus(CONTEXT, write.state, write.description)

    @invariant()
    def the_app_never_runs_a_commit_off_the_line(self) -> None:
        assert 0 <= self.app <= self.head

    def teardown(self) -> None:
        """Fresh passes on the final state: the newest deploy commit's status agrees with the app."""
        for _ in range(4):
            self.observe_and_decide()
            self.act(self.passes.pop())
        deploy = self.newest_deploy(self.head)
        status = self.statuses.get(deploy)
        runs = self.newest_deploy(self.app) == deploy
        assert status is not None
        if status.state == "success":
            assert runs, f"success on {deploy} while the app runs {self.app}"
        if status.state == "failure":
            assert not runs, f"drift reported on {deploy} while the app runs it"


Stage.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_guarded_writes_hold_over_any_interleaving = Stage.TestCase
