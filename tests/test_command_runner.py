"""Comment commands from a webhook payload to reactions, a pull request and one reply (fake GitHub port).

Payloads are the webhook fixtures in tests/fixtures/github-webhooks/, with the body, author and repository
changed; snapshots are built by hand from the example repository, as in test_decide.
"""

from __future__ import annotations

import asyncio
import copy
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import pytest

from bot import events
from bot.command_replies import Claim, Comment, is_command, reply_marker
from bot.command_runner import CommandRunner, Outcome, comment_event
from bot.core.actions import OpenPromotion
from bot.core.config_load import CONFIG_PATH, load_config
from bot.core.freight import Freight, FreightImage
from bot.core.promotion import branch_name, commit_message
from bot.core.snapshot import CommitStatus, Deploy, MergedPromotion, PullRequest, Snapshot
from bot.errors import GitHubError

EXAMPLE = Path(__file__).resolve().parent.parent / "config" / "example"
DEV, STAGING, PROD = (
    "overlays/dev/kustomization.yaml",
    "overlays/staging/kustomization.yaml",
    "charts/web/values-prod.yaml",
)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
POSTED = NOW + timedelta(minutes=10)  # when the comments of these tests are posted
REPO = "acme/gitops"


def _freight(tag: str, fill: str) -> Freight:
    digest = "sha256:" + fill * 64
    return Freight(
        "shop",
        (FreightImage("ghcr.io/acme/web", tag, digest), FreightImage("ghcr.io/acme/worker", tag, digest)),
    )


NEW, OLD, OLDER = _freight("1.5.0", "a"), _freight("1.4.9", "b"), _freight("1.4.8", "c")


def _health(stage: str, state: str, since: datetime = NOW) -> dict[str, CommitStatus]:
    context = f"ferry/health/{stage}"
    return {context: CommitStatus(context, state, f"{state} at x", created_at=since, updated_at=since)}


def _at(text: str, before: str, after: str) -> str:
    assert before in text
    return text.replace(before, after)


def snapshot(*, staging_health: str = "success", prod_runs: Freight | None = None) -> Snapshot:
    files = {path: (EXAMPLE / path).read_text() for path in (DEV, STAGING, PROD)}
    files[DEV] = files[DEV].replace("newTag: 1.4.2", "newTag: 1.5.0")
    files[STAGING] = files[STAGING].replace("newTag: 1.4.1", "newTag: 1.5.0")
    deploys = {
        stage: Deploy(
            stage[0] * 40, stage[0] * 40, commit_message(stage, NEW), NOW, statuses=_health(stage, state)
        )
        for stage, state in (("dev", "success"), ("staging", staging_health))
    }
    deploys["prod"] = Deploy("p" * 40, "p" * 40, "Initial commit", NOW, statuses=_health("prod", "success"))
    if prod_runs is not None:
        files[PROD] = files[PROD].replace('tag: "1.4.0"', f'tag: "{prod_runs.images[0].tag}"')
        deploys["prod"] = replace(deploys["prod"], message=commit_message("prod", prod_runs))
    text = (EXAMPLE / CONFIG_PATH).read_text()
    paths = frozenset(str(p.relative_to(EXAMPLE)) for p in EXAMPLE.rglob("*") if p.is_file())
    return Snapshot(
        repo=REPO,
        default_branch="main",
        head_sha="1" * 40,
        now=NOW + timedelta(minutes=10),
        config=load_config(text, files=files),
        paths=paths,
        files=files,
        blob_shas={p: "b" * 40 for p in files},
        warehouse_freight={"shop": NEW},
        deploys=deploys,
        open_prs=(PullRequest(12, "https://gh/pull/12", branch_name("dev", "0" * 12), "dev", "0" * 12, "h"),),
    )


class FakeGitHub:
    """The runner's port, recording what Ferry did on GitHub."""

    def __init__(self) -> None:
        self.permissions = {"rita": "write", "dana": "write", "watcher": "read", "outsider": "write"}
        self.teams = {("acme", "release-managers"): {"rita", "outsider"}}
        self.fork_pulls: set[int] = set()
        self.reactions: list[tuple[str, int, str]] = []
        self.replies: list[tuple[int | str, str]] = []
        self.opened: list[OpenPromotion] = []
        self.open_branches: dict[str, tuple[int, str]] = {}
        self.merged: list[MergedPromotion] = []
        self.statuses_by_sha: dict[str, dict[str, CommitStatus]] = {}
        self.messages: dict[str, str] = {}
        self.fail_permission: GitHubError | None = None
        self.heads: list[str] = []  # what the next reads of the default branch's head answer, in turn
        self.head_reads = 0

    async def head(self, branch: str) -> str:
        assert branch == "main"
        self.head_reads += 1
        return self.heads.pop(0) if self.heads else "1" * 40

    async def permission(self, login: str) -> str:
        if self.fail_permission is not None:
            raise self.fail_permission
        return self.permissions.get(login, "none")

    async def team_member(self, org: str, team: str, login: str) -> bool:
        return login in self.teams.get((org, team), set())

    async def react_to_comment(self, kind: Literal["issue", "commit"], comment_id: int, content: str) -> None:
        await self.claim_comment(kind, comment_id, content)

    async def claim_comment(self, kind: Literal["issue", "commit"], comment_id: int, content: str) -> Claim:
        """As GitHub: one reaction per user and content; 201 (new) for the request that made it, else 200."""
        made = (kind, comment_id, content)
        new = made not in self.reactions
        if new:
            self.reactions.append(made)
        return Claim(new, self.reactions.index(made) + 1, datetime.now(UTC))

    async def drop_reaction(
        self, kind: Literal["issue", "commit"], comment_id: int, reaction_id: int
    ) -> None:
        raise AssertionError("a claim of this process's own is never taken over")

    async def comment_bodies(self, number: int | str) -> list[str]:
        return [body for target, body in self.replies if target == number]

    async def has_reply(self, comment: Comment) -> bool:
        target = comment.issue_number if comment.kind == "issue" else comment.commit_sha
        marker = reply_marker(comment.comment_id)
        return any(marker in body for body in await self.comment_bodies(target or ""))

    async def comment_once(self, number: int, body: str, *, marker: str) -> bool:
        await asyncio.sleep(0)  # let a concurrent delivery interleave, as the network would
        if any(marker in b for b in await self.comment_bodies(number)):
            return False
        self.replies.append((number, f"{body}\n\n{marker}\n"))
        return True

    async def commit_comment_once(self, sha: str, body: str, *, marker: str) -> bool:
        if any(marker in b for b in await self.comment_bodies(sha)):
            return False
        self.replies.append((sha, f"{body}\n\n{marker}\n"))
        return True

    async def pull_head_repo(self, number: int) -> str | None:
        return "outsider/gitops" if number in self.fork_pulls else REPO

    async def pull_for_branch(self, branch: str) -> tuple[int, str] | None:
        return self.open_branches.get(branch)

    async def refused_promotion(self, branch: str) -> tuple[int, str] | None:
        return None

    async def open_promotion(self, action: OpenPromotion) -> tuple[int, str]:
        number = 40 + len(self.opened)
        self.opened.append(action)
        self.open_branches[action.branch] = (number, f"https://gh/pull/{number}")
        return self.open_branches[action.branch]

    async def merged_promotions(self) -> list[MergedPromotion]:
        return list(self.merged)

    async def statuses(self, sha: str) -> dict[str, CommitStatus]:
        return self.statuses_by_sha.get(sha, {})

    async def commit_message(self, sha: str) -> str:
        return self.messages[sha]


class World:
    def __init__(self, snap: Snapshot | None = None) -> None:
        self.gh = FakeGitHub()
        self.snap = snap or snapshot()
        self.events: list[events.Event] = []
        self.triggered: list[str] = []

        async def read(repo: str) -> Snapshot | None:
            return self.snap

        self.runner = CommandRunner(
            snapshot=read,
            client=lambda repo: self.gh,
            emit=self.events.append,
            trigger=self.triggered.append,
            clock=lambda: POSTED + timedelta(seconds=5),
        )

    async def say(self, body: str, **kwargs: Any) -> Outcome:
        event = comment_event(kwargs.pop("event", "issue_comment"), payload(body, **kwargs))
        assert event is not None
        return await self.runner.handle(event)

    def contents(self) -> list[str]:
        return [content for _, _, content in self.gh.reactions]

    def reply(self) -> str:
        [(_, body)] = self.gh.replies
        return body


def payload(
    body: str,
    *,
    login: str = "rita",
    user_type: str = "User",
    action: str = "created",
    association: str = "MEMBER",
    pull: int | None = None,
    comment_id: int = 700,
    kind: str = "issue_comment",
) -> dict[str, Any]:
    name = f"{kind}.{action}.json"
    data: dict[str, Any] = copy.deepcopy(json.loads((CONTRACTS / "github-webhooks" / name).read_text()))
    data["action"] = action
    data["repository"]["full_name"] = REPO
    for user in (data["comment"]["user"], data["sender"]):
        user["login"], user["type"] = login, user_type
    posted = f"{POSTED:%Y-%m-%dT%H:%M:%SZ}"
    data["comment"].update(
        body=body, id=comment_id, author_association=association, created_at=posted, updated_at=posted
    )
    data["comment"]["html_url"] = f"https://github.com/{REPO}/issues/1#issuecomment-{comment_id}"
    if pull is not None:
        data["issue"]["number"] = pull
        data["issue"]["pull_request"] = {"url": f"https://api.github.com/repos/{REPO}/pulls/{pull}"}
    return data


CONTRACTS = Path(__file__).resolve().parent / "fixtures"


# ---- accepted ------------------------------------------------------------------------------------
async def test_promote_from_a_release_manager_opens_a_pull_request_that_says_who_asked() -> None:
    world = World()
    outcome = await world.say("/promote prod")
    assert outcome.verdict == "accepted"
    [action] = world.gh.opened
    assert action.branch == branch_name("prod", NEW.id)
    assert "Requested by @rita in https://github.com/acme/gitops/issues/1#issuecomment-700" in action.body
    assert "Requested by @rita in https://github.com/acme/gitops/issues/1#issuecomment-700" in action.message
    [(path, text)] = action.files
    assert path == PROD and 'tag: "1.5.0"' in text and "sha256:" + "a" * 64 in text  # digests, resolved now
    assert action.base_sha == "1" * 40  # the default branch, never the branch the comment is on
    assert world.contents() == ["eyes", "rocket"]
    assert "opened https://gh/pull/40" in world.reply()
    assert "<!-- ferry:reply-to:700 -->" in world.reply()
    assert [e.kind for e in world.events] == [events.PR_OPENED, events.COMMAND_ACCEPTED]
    assert world.triggered == [REPO]


async def test_promote_by_tag_image_pairs_or_freight_id_names_the_same_freight() -> None:
    for body in ("/promote prod 1.5.0", "/promote prod web=1.5.0 worker=1.5.0", f"/promote prod {NEW.id}"):
        world = World()
        assert (await world.say(body)).verdict == "accepted", world.gh.replies
        assert world.gh.opened[0].freight == NEW


async def test_promote_of_a_stage_fed_by_the_warehouse_takes_its_newest_freight() -> None:
    snap = replace(snapshot(), warehouse_freight={"shop": OLD})
    world = World(snap)
    assert (await world.say("/promote dev")).verdict == "accepted"
    assert world.gh.opened[0].freight == OLD


async def test_an_open_pull_request_for_the_same_freight_is_linked_not_repeated() -> None:
    world = World()
    world.gh.open_branches[branch_name("prod", NEW.id)] = (31, "https://gh/pull/31")
    outcome = await world.say("/promote prod")
    assert outcome.verdict == "accepted" and not world.gh.opened
    assert "https://gh/pull/31 already moves `prod`" in world.reply()


async def test_rollback_returns_to_the_last_freight_verified_there_before_the_current_one() -> None:
    world = World(snapshot(prod_runs=NEW))
    history = [(NEW, "success", 3), (OLD, "success", 2), (OLDER, "success", 1)]
    for freight, state, hour in history:
        merge, head = f"m{hour}" * 20, f"h{hour}" * 20
        world.gh.merged.append(
            MergedPromotion(hour, "u", "prod", freight.id, head, merge, NOW - timedelta(hours=5 - hour))
        )
        world.gh.statuses_by_sha[merge] = _health("prod", state)
        world.gh.messages[head] = commit_message("prod", freight)
    world.gh.statuses_by_sha["m2" * 20] = _health("prod", "failure")  # OLD failed there: skipped
    outcome = await world.say('/rollback prod --reason "checkout errors"')
    assert outcome.verdict == "accepted", world.gh.replies
    [action] = world.gh.opened
    assert action.freight == OLDER  # not verified upstream: a rollback skips the gate
    assert "rollback" in action.labels
    assert "checkout errors" in action.message


async def test_rollback_with_nothing_earlier_says_so() -> None:
    world = World(snapshot(prod_runs=NEW))
    outcome = await world.say("/rollback prod 1.2.3")
    assert outcome.verdict == "refused"
    assert "`prod` has no earlier verified freight to return to matching `1.2.3`" in world.reply()


async def test_status_shows_every_stage_and_a_diagram_coloured_by_verdict() -> None:
    world = World(snapshot(staging_health="pending"))
    assert (await world.say("/status")).verdict == "answered"
    text = world.reply()
    assert "| dev | `" + NEW.id + "` | web `1.5.0`, worker `1.5.0` | ✅ verified |" in text
    assert "| staging |" in text and "⏳ verifying" in text and "(10 min ago)" in text
    assert "[#12](https://gh/pull/12)" in text
    assert "```mermaid\ngraph LR" in text and "n_dev --> n_staging" in text
    assert "class n_staging pending" in text
    assert world.contents() == ["eyes"]


async def test_help_answers_with_the_command_table() -> None:
    world = World()
    await world.say("/help")
    assert "/rollback <stage>" in world.reply()


async def test_commit_comment_is_answered_under_the_commit() -> None:
    world = World()
    outcome = await world.say("/promote prod", event="commit_comment", kind="commit_comment")
    assert outcome.verdict == "accepted"
    [(target, _)] = world.gh.replies
    assert target == "2011efc948a207c52267cb635d39dd9f452bf6e0"  # the fixture's commit_id
    assert world.gh.reactions[0][0] == "commit"


# ---- refused, with the reason --------------------------------------------------------------------
async def test_a_reader_is_refused_with_the_reason_and_a_confused_face() -> None:
    world = World()
    outcome = await world.say("/promote prod", login="watcher")
    assert outcome.verdict == "refused" and not world.gh.opened
    assert world.contents() == ["eyes", "confused"]
    assert "@watcher has read access to acme/gitops; /promote needs write, maintain or admin" in world.reply()
    assert [e.kind for e in world.events] == [events.COMMAND_REFUSED]


async def test_a_writer_outside_the_promoters_is_refused() -> None:
    world = World()
    await world.say("/promote prod", login="dana")
    assert "only `@acme/release-managers` may promote into `prod`" in world.reply()


async def test_outside_collaborator_on_a_fork_pull_request_is_refused() -> None:
    world = World()
    world.gh.fork_pulls.add(9)
    outcome = await world.say("/promote prod", login="outsider", association="COLLABORATOR", pull=9)
    assert outcome.verdict == "refused" and not world.gh.opened
    assert "comes from a fork" in world.reply()


async def test_unknown_stage_is_answered_with_the_stages_and_a_guess() -> None:
    world = World()
    await world.say("/promote prdo")
    assert 'no stage `prdo` (did you mean "prod"?); stages: `dev`, `staging`, `prod`' in world.reply()


async def test_a_freight_id_that_does_not_exist_is_refused_with_the_known_ones() -> None:
    world = World()
    await world.say("/promote prod 0123456789ab")
    assert "no freight Ferry knows matches `0123456789ab`" in world.reply()
    assert f"`{NEW.id}` (web 1.5.0, worker 1.5.0)" in world.reply()


async def test_promote_is_refused_while_upstream_verifies_saying_where_and_since_when() -> None:
    world = World(snapshot(staging_health="pending"))
    outcome = await world.say("/promote prod")
    assert outcome.verdict == "refused" and not world.gh.opened
    assert "`staging` is still verifying it, pending since 2026-11-26 10:00 UTC (10 min ago)" in world.reply()


async def test_unknown_flag_is_answered_with_the_usage_in_a_code_block() -> None:
    world = World()
    await world.say("/rollback prod --force")
    assert "unknown option `--force`" in world.reply() and "```\n/rollback <stage>" in world.reply()
    assert world.contents() == ["eyes", "confused"]


async def test_a_permanent_github_error_is_answered_and_a_temporary_one_left_to_redelivery() -> None:
    world = World()
    world.gh.fail_permission = GitHubError("reading rita's permission: 403 Forbidden", temporary=False)
    await world.say("/promote prod")
    assert "403 Forbidden" in world.reply()
    again = World()
    again.gh.fail_permission = GitHubError("reading rita's permission: 502", temporary=True)
    with pytest.raises(GitHubError):
        await again.say("/promote prod")
    assert again.gh.replies == []  # no reply yet, so a redelivery is not mistaken for a duplicate


async def test_a_promote_whose_base_moved_before_opening_is_decided_again_on_the_new_head() -> None:
    world = World()
    moved = replace(world.snap, head_sha="2" * 40)
    world.gh.heads = ["2" * 40, "2" * 40]  # a push lands between the snapshot and the opening
    reads: list[Snapshot] = []

    async def read(repo: str) -> Snapshot:
        reads.append(world.snap if not reads else moved)
        return reads[-1]

    world.runner.snapshot = read
    assert (await world.say("/promote prod")).verdict == "accepted"
    [action] = world.gh.opened
    assert action.base_sha == "2" * 40 and len(reads) == 2
    assert "opened https://gh/pull/40" in world.reply()


async def test_a_promote_whose_base_keeps_moving_opens_nothing_and_is_left_for_the_next_pass() -> None:
    world = World()
    world.gh.heads = ["2" * 40, "3" * 40, "4" * 40]
    with pytest.raises(GitHubError, match="main moved 3 times") as raised:
        await world.say("/promote prod")
    assert raised.value.temporary
    assert world.gh.opened == [] and world.gh.replies == []  # unanswered: the next pass tries it again


async def test_a_promote_older_than_the_max_age_is_answered_as_expired_and_not_run() -> None:
    world = World()
    world.runner.clock = lambda: POSTED + timedelta(hours=1, minutes=1)
    outcome = await world.say("/promote prod")
    assert outcome.verdict == "refused" and world.gh.opened == []
    assert "more than 1h before Ferry could answer it" in world.reply()
    assert "comment `/promote prod` again to run it now" in world.reply()
    assert world.contents() == ["eyes", "confused"]
    late_status = World()
    late_status.runner.clock = world.runner.clock
    assert (await late_status.say("/status")).verdict == "answered"  # reading is never too late


# ---- silence ---------------------------------------------------------------------------------------
async def test_a_bot_is_never_obeyed_nor_answered() -> None:
    for login, user_type in (("renovate[bot]", "User"), ("ferry-app", "Bot")):
        world = World()
        assert (await world.say("/promote prod", login=login, user_type=user_type)).verdict == "ignored"
        assert world.gh.reactions == [] and world.gh.replies == []


async def test_an_edited_comment_is_not_a_command() -> None:
    edited = payload("/promote prod", action="edited")
    assert comment_event("issue_comment", edited) is None  # the edit's delivery gives no command
    posted = comment_event("issue_comment", payload("/promote prod"))
    assert posted is not None and posted.created_at is not None and is_command(posted)
    # Nor is the comment itself, read from GitHub once edited: whoever may edit another person's
    # comment must not give a command in that person's name.
    later = replace(posted, updated_at=posted.created_at + timedelta(minutes=2))
    assert not is_command(later)


async def test_prose_and_other_bots_commands_get_no_reaction() -> None:
    world = World()
    for body in ("Ship it!", "/lgtm", "> /promote prod", "```\n/promote prod\n```"):
        assert (await world.say(body)).verdict == "ignored"
    assert world.gh.reactions == []


# ---- the same comment twice ----------------------------------------------------------------------
async def test_the_same_comment_delivered_twice_opens_one_pull_request_and_replies_once() -> None:
    world = World()
    first = await world.say("/promote prod")
    second = await world.say("/promote prod")
    assert (first.verdict, second.verdict) == ("accepted", "duplicate")
    assert len(world.gh.opened) == 1 and len(world.gh.replies) == 1


async def test_two_deliveries_of_one_comment_at_once_still_reply_once() -> None:
    world = World()
    outcomes = await asyncio.gather(world.say("/promote prod"), world.say("/promote prod"))
    assert sorted(o.verdict for o in outcomes) == ["accepted", "duplicate"]
    assert len(world.gh.opened) == 1 and len(world.gh.replies) == 1


async def test_a_commit_pushed_to_ferrys_pull_request_after_the_comment_is_replaced() -> None:
    world = World()
    branch = branch_name("prod", NEW.id)
    pushed = PullRequest(31, "https://gh/pull/31", branch, "prod", NEW.id, "t" * 40)
    world.snap = replace(world.snap, open_prs=(pushed,))
    world.gh.open_branches[branch] = (31, "https://gh/pull/31")
    world.gh.messages["t" * 40] = "bump web to 9.9.9 by hand"
    outcome = await world.say("/promote prod")
    assert outcome.verdict == "accepted"
    [action] = world.gh.opened
    assert action.rebuild_pr == 31 and action.freight == NEW
    assert "https://gh/pull/31 had commits pushed after Ferry opened it; Ferry rebuilt it" in world.reply()


async def test_a_commit_pushed_to_the_pull_request_commented_on_changes_nothing() -> None:
    """The command reads the default branch's config and freight, never the pull request it is on."""
    world = World()
    outcome = await world.say("/promote prod", pull=5)
    # After the comment, someone pushes to #5 (say, adding themselves to prod's promoters there):
    world.gh.permissions["mallory"] = "write"
    refused = await world.say("/promote prod", pull=5, login="mallory", comment_id=701)
    assert outcome.verdict == "accepted" and refused.verdict == "refused"
    [action] = world.gh.opened
    assert action.base_sha == world.snap.head_sha
    assert {i.digest for i in action.freight.images} == {"sha256:" + "a" * 64}
