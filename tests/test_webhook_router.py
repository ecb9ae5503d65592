"""WebhookRouter: which repository a real GitHub payload wakes, and which installations it adds or drops.

Every payload in tests/fixtures/github-webhooks/ goes through the router into a recording fake that
has only what the router uses of the Reconciler (``repos``, ``trigger``, ``promotion_merged``).
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bot.observe_approvals import reader_for
from bot.reconciler import Reconciler
from bot.server import WebhookDelivery
from bot.webhooks import WebhookRouter

KNOWN_INSTALLATION = 957387
OTHER_INSTALLATION = 7
OTHER_REPO = "someone/else"
REPO_EVENTS = frozenset(
    {"push", "pull_request", "issue_comment", "commit_comment", "status", "check_suite", "package",
     "registry_package"}
)  # fmt: skip
PACKAGE_EVENTS = frozenset({"package", "registry_package"})
QUIET_EVENTS = frozenset({"ping", "check_run"})  # Ferry reads commit statuses, never check runs
MERGE_SHA = "2011efc948a207c52267cb635d39dd9f452bf6e0"  # pull_request.closed: merge_commit_sha


class RepoClient:
    """Stands for a repository's GitHub client (the review reader is kept per client)."""


class RecordingReconciler:
    """``installed`` is what GitHub lists for each installation (the App's installation data)."""

    def __init__(
        self, repos: dict[str, int] | None = None, installed: dict[int, list[str]] | None = None
    ) -> None:
        self.repos: dict[str, int] = dict(repos or {})
        self.installed = dict(installed or {})
        self.triggered: list[str] = []
        self.merged: list[tuple[str, str, str]] = []
        self.installations_added: list[int] = []
        self.not_owned: set[str] = set()  # repositories another shard owns
        self.clients: dict[str, Any] = {}

    def owns(self, repo: str) -> bool:
        return repo not in self.not_owned

    async def add_installation(self, installation_id: int, *, reconcile: bool = True) -> list[str]:
        self.installations_added.append(installation_id)
        listed = self.installed.get(installation_id, [])
        for repo in listed:
            self.repos[repo] = installation_id
            if reconcile:
                self.trigger(repo)
        return listed

    def trigger(self, repo: str, *, full: bool = True) -> None:
        self.triggered.append(repo)

    def repo_client(self, repo: str) -> Any:
        return self.clients.setdefault(repo, RepoClient())

    async def promotion_merged(
        self, repo: str, stage: str, merge_commit: str, *, pull_number: int | None = None
    ) -> None:
        self.merged.append((repo, stage, merge_commit))


def recorder(commented: list[WebhookDelivery]) -> Callable[[WebhookDelivery], Awaitable[None]]:
    """An ``on_comment`` handler that records the deliveries it is given."""

    async def on_comment(got: WebhookDelivery) -> None:
        commented.append(got)

    return on_comment


def router_for(fake: RecordingReconciler) -> WebhookRouter:
    return WebhookRouter(cast(Reconciler, fake))


def delivery(event: str, payload: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(event, "72d3162e-cc78-11e3-81ab-4c9367dc0958", payload, time.time())


def payload_files(contracts: Path) -> list[Path]:
    return sorted((contracts / "github-webhooks").glob("*.json"))


def load(contracts: Path, name: str) -> dict[str, Any]:
    return dict(json.loads((contracts / "github-webhooks" / f"{name}.json").read_text()))


def event_of(path: Path) -> str:
    return path.name.split(".", 1)[0]


@pytest.fixture(scope="module")
def contracts(contracts_dir: Path) -> Path:
    return contracts_dir


def test_every_contract_payload_is_covered_by_this_suite(contracts: Path) -> None:
    events = {event_of(p) for p in payload_files(contracts)}
    assert events <= REPO_EVENTS | QUIET_EVENTS | {"installation", "installation_repositories"}
    assert len(payload_files(contracts)) >= 40


@pytest.mark.parametrize(
    "name",
    [
        "push",
        "push.with-new-branch",
        "pull_request.opened",
        "pull_request.closed",
        "pull_request.synchronize",
        "pull_request.labeled",
        "pull_request.reopened",
        "pull_request.converted_to_draft",
        "pull_request.ready_for_review",
        "issue_comment.created",
        "issue_comment.edited",
        "issue_comment.deleted",
        "commit_comment.created",
        "status",
        "status.with-author-committer-null",
        "check_suite.completed",
        "check_suite.requested",
    ],
)
async def test_a_repository_event_triggers_a_pass_for_its_repository(contracts: Path, name: str) -> None:
    payload = load(contracts, name)
    repo = payload["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION, OTHER_REPO: OTHER_INSTALLATION})
    await router_for(fake).deliver(delivery(name.partition(".")[0], payload))
    assert fake.triggered == [repo]
    assert fake.merged == []
    assert fake.repos[OTHER_REPO] == OTHER_INSTALLATION


async def test_every_repository_payload_in_the_contracts_triggers_exactly_its_repository(
    contracts: Path,
) -> None:
    for path in payload_files(contracts):
        event = event_of(path)
        if event not in REPO_EVENTS or event in PACKAGE_EVENTS:
            continue  # package events are routed by image: tests/test_package_events.py
        payload = json.loads(path.read_text())
        repo = payload["repository"]["full_name"]
        fake = RecordingReconciler({repo: KNOWN_INSTALLATION})
        await router_for(fake).deliver(delivery(event, payload))
        assert fake.triggered == [repo], path.name


async def test_ping_and_check_runs_trigger_nothing(contracts: Path) -> None:
    for path in payload_files(contracts):
        if event_of(path) not in QUIET_EVENTS:
            continue
        payload = json.loads(path.read_text())
        named = payload.get("repository", {}).get("full_name", "acme/gitops")  # an App's ping names none
        repos = {named: KNOWN_INSTALLATION}
        fake = RecordingReconciler(repos)
        await router_for(fake).deliver(delivery(event_of(path), payload))
        assert (fake.triggered, fake.merged, fake.repos) == ([], [], repos), path.name


async def test_an_event_from_a_repository_not_yet_known_registers_it_from_installation_data(
    contracts: Path,
) -> None:
    payload = load(contracts, "push.with-new-branch")
    repo, installation = payload["repository"]["full_name"], payload["installation"]["id"]
    fake = RecordingReconciler(installed={installation: [repo]})
    await router_for(fake).deliver(delivery("push", payload))
    assert fake.installations_added == [installation]  # GitHub was asked, not the payload believed
    assert fake.repos == {repo: installation}
    assert fake.triggered == [repo]


async def test_a_signed_delivery_for_a_repository_the_app_is_not_installed_on_adds_nothing(
    contracts: Path,
) -> None:
    payload = load(contracts, "push.with-new-branch")
    installation = payload["installation"]["id"]
    fake = RecordingReconciler({OTHER_REPO: installation}, installed={installation: [OTHER_REPO]})
    router = router_for(fake)
    for _ in range(3):  # strays keep coming: GitHub is asked once per interval, not per delivery
        await router.deliver(delivery("push", payload))
    assert fake.repos == {OTHER_REPO: installation}
    assert fake.triggered == []
    assert fake.installations_added == [installation]


@pytest.mark.parametrize("name", ["installation.created", "installation.created.with-requester"])
async def test_a_new_installation_adds_and_reconciles_the_repositories_github_lists_for_it(
    contracts: Path, name: str
) -> None:
    payload = load(contracts, name)
    installation = payload["installation"]["id"]
    listed = [r["full_name"] for r in payload["repositories"]][:1]  # GitHub's list, not the payload's
    fake = RecordingReconciler({OTHER_REPO: OTHER_INSTALLATION}, installed={installation: listed})
    await router_for(fake).deliver(delivery("installation", payload))
    assert fake.repos == {OTHER_REPO: OTHER_INSTALLATION} | dict.fromkeys(listed, installation)
    assert fake.triggered == listed


async def test_a_deleted_installation_drops_its_repositories_and_only_those(contracts: Path) -> None:
    payload = load(contracts, "installation.deleted")
    installation = payload["installation"]["id"]
    listed = dict.fromkeys((r["full_name"] for r in payload["repositories"]), installation)
    fake = RecordingReconciler(listed | {OTHER_REPO: OTHER_INSTALLATION})
    await router_for(fake).deliver(delivery("installation", payload))
    assert fake.repos == {OTHER_REPO: OTHER_INSTALLATION}
    assert fake.triggered == []


async def test_accepting_new_permissions_keeps_the_installation_repositories(contracts: Path) -> None:
    payload = load(contracts, "installation.new_permissions_accepted")
    installation = payload["installation"]["id"]
    repos = [r["full_name"] for r in payload["repositories"]]
    listed = dict.fromkeys(repos, installation)
    fake = RecordingReconciler(dict(listed), installed={installation: repos})
    await router_for(fake).deliver(delivery("installation", payload))
    assert fake.repos == listed


async def test_a_suspended_installation_is_no_longer_reconciled(contracts: Path) -> None:
    payload = load(contracts, "installation.suspend")
    installation = payload["installation"]["id"]
    fake = RecordingReconciler({"acme/gitops": installation, OTHER_REPO: OTHER_INSTALLATION})
    await router_for(fake).deliver(delivery("installation", payload))
    assert fake.repos == {OTHER_REPO: OTHER_INSTALLATION}


async def test_unsuspending_an_installation_drops_nothing_and_lists_its_repositories_again(
    contracts: Path,
) -> None:
    payload = load(contracts, "installation.unsuspend")
    fake = RecordingReconciler({OTHER_REPO: OTHER_INSTALLATION})
    await router_for(fake).deliver(delivery("installation", payload))
    assert fake.repos == {OTHER_REPO: OTHER_INSTALLATION}
    assert fake.installations_added == [payload["installation"]["id"]]


async def test_repositories_added_to_an_installation_are_registered_and_reconciled(contracts: Path) -> None:
    payload = load(contracts, "installation_repositories.added")
    installation = payload["installation"]["id"]
    added = [r["full_name"] for r in payload["repositories_added"]]
    fake = RecordingReconciler(installed={installation: [OTHER_REPO, *added]})
    await router_for(fake).deliver(delivery("installation_repositories", payload))
    assert fake.repos == dict.fromkeys([OTHER_REPO, *added], installation)
    assert fake.triggered == added  # only the added ones GitHub confirms; the rest were not news


async def test_repositories_removed_from_an_installation_are_dropped(contracts: Path) -> None:
    payload = load(contracts, "installation_repositories.removed")
    installation = payload["installation"]["id"]
    removed = [r["full_name"] for r in payload["repositories_removed"]]
    fake = RecordingReconciler(dict.fromkeys(removed, installation) | {OTHER_REPO: OTHER_INSTALLATION})
    await router_for(fake).deliver(delivery("installation_repositories", payload))
    assert fake.repos == {OTHER_REPO: OTHER_INSTALLATION}
    assert fake.triggered == []


def merged(contracts: Path, head_ref: str) -> dict[str, Any]:
    payload = copy.deepcopy(load(contracts, "pull_request.closed"))
    payload["pull_request"]["merged"] = True
    payload["pull_request"]["head"]["ref"] = head_ref
    return payload


async def test_a_merged_promotion_pr_starts_the_stage_sync_with_its_merge_commit(contracts: Path) -> None:
    payload = merged(contracts, "ferry/staging/0123456789ab")
    repo = payload["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION})
    await router_for(fake).deliver(delivery("pull_request", payload))
    assert fake.merged == [(repo, "staging", MERGE_SHA)]


async def test_the_time_from_a_merge_webhook_to_its_sync_request_is_measured(contracts: Path) -> None:
    payload = merged(contracts, "ferry/prod/0123456789ab")
    fake = RecordingReconciler({payload["repository"]["full_name"]: KNOWN_INSTALLATION})
    measured: list[float] = []
    router = WebhookRouter(cast(Reconciler, fake), on_merge_handled=measured.append)
    await router.deliver(delivery("pull_request", payload))
    await router.deliver(delivery("push", load(contracts, "push")))
    assert len(measured) == 1 and 0 <= measured[0] < 60


@pytest.mark.parametrize("head_ref", ["changes", "ferry/staging", "ferry/staging/not-a-freight-id"])
async def test_a_merged_pull_request_that_is_not_a_promotion_only_triggers_a_pass(
    contracts: Path, head_ref: str
) -> None:
    payload = merged(contracts, head_ref)
    repo = payload["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION})
    await router_for(fake).deliver(delivery("pull_request", payload))
    assert fake.merged == []
    assert fake.triggered == [repo]


async def test_a_promotion_pr_closed_without_merging_only_triggers_a_pass(contracts: Path) -> None:
    payload = merged(contracts, "ferry/dev/0123456789ab")
    payload["pull_request"]["merged"] = False
    repo = payload["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION})
    await router_for(fake).deliver(delivery("pull_request", payload))
    assert fake.merged == []
    assert fake.triggered == [repo]


@pytest.mark.parametrize("name", ["push", "issue_comment.created", "commit_comment.created", "status"])
async def test_a_delivery_for_another_shards_repository_is_left_to_its_owner(
    contracts: Path, name: str
) -> None:
    payload = load(contracts, name)
    repo = payload["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION})
    fake.not_owned.add(repo)
    commented: list[WebhookDelivery] = []
    on_comment = recorder(commented)

    await WebhookRouter(cast(Reconciler, fake), on_comment=on_comment).deliver(
        delivery(name.partition(".")[0], payload)
    )
    assert (fake.triggered, fake.merged, commented) == ([], [], [])


async def test_a_merge_of_another_shards_promotion_starts_no_sync_here(contracts: Path) -> None:
    payload = merged(contracts, "ferry/staging/0123456789ab")
    fake = RecordingReconciler({payload["repository"]["full_name"]: KNOWN_INSTALLATION})
    fake.not_owned.add(payload["repository"]["full_name"])
    await router_for(fake).deliver(delivery("pull_request", payload))
    assert (fake.triggered, fake.merged) == ([], [])


@pytest.mark.parametrize(
    "name", ["package.published.container", "package.published.npm", "registry_package.published.container"]
)
async def test_a_package_event_does_not_reconcile_the_repository_it_names(contracts: Path, name: str) -> None:
    payload = load(contracts, name)
    repos = {payload["repository"]["full_name"]: KNOWN_INSTALLATION, OTHER_REPO: OTHER_INSTALLATION}
    fake = RecordingReconciler(repos)
    await router_for(fake).deliver(delivery(name.partition(".")[0], payload))
    assert (fake.triggered, fake.repos) == ([], repos)


async def test_a_review_webhook_makes_the_next_pass_read_that_pull_requests_reviews_again() -> None:
    """GitHub does not document that a review moves the pull request's ``updated_at`` (the review cache's
    key), so the review's own webhook is what says the cached reviews are stale."""
    fake = RecordingReconciler({"acme/gitops": 1})
    reader = reader_for(fake.repo_client("acme/gitops"))
    reader._cache[7] = reader._cache[8] = cast(Any, ("key", None, None))
    payload = {
        "action": "submitted",
        "installation": {"id": 1},
        "repository": {"full_name": "acme/gitops"},
        "pull_request": {"number": 7},
        "review": {"state": "approved"},
    }
    await router_for(fake).deliver(delivery("pull_request_review", payload))
    assert 7 not in reader._cache and 8 in reader._cache
    assert fake.triggered == ["acme/gitops"]


@pytest.mark.parametrize("name", ["push", "status", "pull_request.opened", "check_suite.completed"])
async def test_a_delivery_that_only_queues_a_pass_is_dealt_with_before_the_answer(
    contracts: Path, name: str
) -> None:
    # The server answers GitHub once ``accept`` returns: a push to a known repository has its pass queued
    # by then, with no background task left to run (and none to lose on a shutdown).
    payload = load(contracts, name)
    repo = payload["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION})
    assert router_for(fake).accept(delivery(name.partition(".")[0], payload)) is None
    assert fake.triggered == [repo]


async def test_work_that_waits_is_handed_back_to_run_after_the_answer(contracts: Path) -> None:
    commented: list[WebhookDelivery] = []
    on_comment = recorder(commented)

    comment = load(contracts, "issue_comment.created")
    repo = comment["repository"]["full_name"]
    fake = RecordingReconciler({repo: KNOWN_INSTALLATION}, installed={KNOWN_INSTALLATION: [repo]})
    router = WebhookRouter(cast(Reconciler, fake), on_comment=on_comment)
    rest = router.accept(delivery("issue_comment", comment))
    assert rest is not None and commented == [] and fake.triggered == []  # nothing done yet
    await rest
    assert len(commented) == 1 and fake.triggered == [repo]  # the command, then a pass

    unknown = load(contracts, "push.with-new-branch")  # a repository GitHub must be asked about
    fake.repos.clear()
    fake.installed = {unknown["installation"]["id"]: [unknown["repository"]["full_name"]]}
    rest = router.accept(delivery("push", unknown))
    assert rest is not None and fake.installations_added == []
    await rest
    assert fake.triggered[-1] == unknown["repository"]["full_name"]
