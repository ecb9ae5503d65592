"""Route verified webhook deliveries to the reconciler: which repository to reconcile now.

Webhooks only wake the loop; the pass re-reads the truth, so a lost or repeated delivery is harmless. Only
the replica that owns a repository (``FERRY_SHARD``) acts on its deliveries; another acknowledges them.
Repositories enter the reconcile set only from installation data GitHub lists (at start-up, and when
an installation event or a delivery for a repository not yet known asks to look again), never from a
payload alone: a signed delivery naming a repository the App is not installed on adds nothing.

A ``package`` or ``registry_package`` event names the repository the package belongs to (usually the
application's, not the GitOps repository): it is routed by the image it announces instead, to every
repository whose warehouses watch that image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from bot import events
from bot.core.images import normalise_name
from bot.core.promotion import parse_branch
from bot.errors import ExternalError, InvalidReferenceError
from bot.event_log import log_event
from bot.observe_approvals import reader_for
from bot.reconciler import Reconciler
from bot.server import WebhookDelivery

log = logging.getLogger("ferry.webhooks")

# Events that may change what a pass decides.
TRIGGERING_EVENTS = frozenset(
    {
        "push",
        "pull_request",
        "pull_request_review",  # an approval by a promoter may turn a gate green
        "issue_comment",
        "commit_comment",
        "status",
        "check_suite",
        "package",
        "registry_package",
    }
)

PACKAGE_EVENTS = frozenset({"package", "registry_package"})
# package_type / ecosystem of a container image: "CONTAINER" on ghcr.io, "docker" on the older
# docker.pkg.github.com (GitHub's package webhook payloads).
CONTAINER_PACKAGES = frozenset({"container", "docker"})
GHCR = "ghcr.io"

CommentHandler = Callable[[WebhookDelivery], Awaitable[None]]
# How often a delivery for an unknown repository may make Ferry list its installation's repositories
# again (the installation_repositories event that would have added it may have been lost).
RELIST_SECONDS = 300.0
# A package event's image (normalised) -> the repositories whose warehouses watch it, their
# cached freight forgotten.
PackageHandler = Callable[[str], Iterable[str]]


class WebhookRouter:
    def __init__(
        self,
        reconciler: Reconciler,
        *,
        on_comment: CommentHandler | None = None,
        on_package: PackageHandler | None = None,
        on_merge_handled: Callable[[float], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.reconciler = reconciler
        self.on_comment = on_comment
        self.on_package = on_package
        self.on_merge_handled = on_merge_handled  # seconds from receipt to the sync request
        self._clock = clock
        self._listed_at: dict[int, float] = {}  # installation id -> when its repositories were last listed

    def accept(self, delivery: WebhookDelivery) -> Awaitable[None] | None:
        """Route ``delivery`` at once: None when that was all (a pass queued, or nothing to do), else what
        is left to await (a merge's sync, a command to answer, an installation to list), which the server
        runs off the request path."""
        token = events.DELIVERY.set(delivery.delivery_id)
        try:
            rest = self._route(delivery)
        finally:
            events.DELIVERY.reset(token)
        return None if rest is None else self._naming(delivery, rest)

    async def deliver(self, delivery: WebhookDelivery) -> None:
        """``accept`` ``delivery`` and await what is left of it."""
        rest = self.accept(delivery)
        if rest is not None:
            await rest

    @staticmethod
    async def _naming(delivery: WebhookDelivery, rest: Awaitable[None]) -> None:
        # Everything this delivery causes (events, passes it queues) names it in the log.
        token = events.DELIVERY.set(delivery.delivery_id)
        try:
            await rest
        finally:
            events.DELIVERY.reset(token)

    def _route(self, delivery: WebhookDelivery) -> Awaitable[None] | None:
        payload = delivery.payload
        event = delivery.event
        if event == "installation":
            return self._installation(payload)
        if event == "installation_repositories":
            return self._installation_repositories(payload)
        if event not in TRIGGERING_EVENTS:
            return None
        if event in PACKAGE_EVENTS:
            self._package(payload)
            return None
        repo = _repo_name(payload)
        if repo is None:
            return None
        if repo not in self.reconciler.repos:
            return self._if_installed(delivery, repo)  # GitHub may have to be asked
        return self._for_repo(delivery, repo)

    async def _if_installed(self, delivery: WebhookDelivery, repo: str) -> None:
        if await self._installed(repo, _installation_id(delivery.payload)):
            rest = self._for_repo(delivery, repo)
            if rest is not None:
                await rest

    def _for_repo(self, delivery: WebhookDelivery, repo: str) -> Awaitable[None] | None:
        payload = delivery.payload
        event = delivery.event
        if not self.reconciler.owns(repo):
            # Acknowledged (202) and left to the replica that owns the repository: its next pass reads
            # what changed from GitHub, commands included (deploy/README.md: shards).
            log.debug("delivery for another shard's repository", extra={"repo": repo})
            return None
        merged = _merged_promotion(event, payload)
        if merged is not None:
            _log_merge(repo, payload)
            return self._merged(delivery, repo, merged)
        if event == "pull_request_review":
            reviewed = (payload.get("pull_request") or {}).get("number")
            if isinstance(reviewed, int):
                reader_for(self.reconciler.repo_client(repo)).forget(reviewed)
        if event in ("issue_comment", "commit_comment") and self.on_comment is not None:
            return self._comment(delivery, repo, self.on_comment)
        self.reconciler.trigger(repo)
        return None

    async def _merged(self, delivery: WebhookDelivery, repo: str, merged: tuple[str, str, int]) -> None:
        stage, commit, number = merged
        await self.reconciler.promotion_merged(repo, stage, commit, pull_number=number)
        if self.on_merge_handled is not None:
            self.on_merge_handled(time.time() - delivery.received_at)

    async def _comment(self, delivery: WebhookDelivery, repo: str, on_comment: CommentHandler) -> None:
        await on_comment(delivery)
        self.reconciler.trigger(repo)

    async def _installed(self, repo: str, installation: int | None) -> bool:
        """Whether the App is installed on ``repo``: known, or listed by GitHub for the delivery's
        installation when asked again (at most every ``RELIST_SECONDS`` per installation)."""
        if repo in self.reconciler.repos:
            return True
        if installation is None:
            return False
        now = self._clock()
        last = self._listed_at.get(installation)
        if last is not None and now - last < RELIST_SECONDS:
            return False
        self._listed_at[installation] = now
        try:
            listed = await self.reconciler.add_installation(installation, reconcile=False)
        except ExternalError:
            del self._listed_at[installation]  # GitHub did not answer: the next delivery may ask again
            raise
        if repo not in listed:
            log.info("delivery for a repository the App is not installed on", extra={"repo": repo})
            return False
        return True

    def _package(self, payload: Mapping[str, Any]) -> None:
        """New tags: refresh the warehouses watching the image now rather than after their interval.

        The payload's repository is not reconciled for it: it rarely holds a pipeline, and when it
        does its warehouses watching the image put it in the list like any other repository.
        """
        image = package_image(payload)
        if image is None or self.on_package is None:
            return
        for repo in self.on_package(image):
            # A new image changes nothing on GitHub: the pass's change check says whether GitHub must be
            # read again (``bot.observe_reuse``). A repository no longer installed is ignored there.
            self.reconciler.trigger(repo, full=False)

    async def _installation(self, payload: Mapping[str, Any]) -> None:
        installation = _installation_id(payload)
        action = payload.get("action")
        if action in ("deleted", "suspend"):  # a suspended installation's tokens are refused
            for name in [n for n, i in self.reconciler.repos.items() if i == installation]:
                del self.reconciler.repos[name]
            return
        if installation is None:
            return
        # created, unsuspend, new_permissions_accepted: GitHub lists what the installation covers.
        self._listed_at[installation] = self._clock()
        await self.reconciler.add_installation(installation)

    async def _installation_repositories(self, payload: Mapping[str, Any]) -> None:
        installation = _installation_id(payload)
        for repo in payload.get("repositories_removed") or []:
            self.reconciler.repos.pop(str(repo.get("full_name")), None)
        added = {str(repo.get("full_name")) for repo in payload.get("repositories_added") or []}
        if installation is None or not added:
            return
        self._listed_at[installation] = self._clock()
        listed = await self.reconciler.add_installation(installation, reconcile=False)
        for name in listed:
            if name in added:
                self.reconciler.trigger(name)


def _merged_promotion(event: str, payload: Mapping[str, Any]) -> tuple[str, str, int] | None:
    """(stage, merge commit, pull request number) when the event is a Ferry promotion PR being merged."""
    if event != "pull_request" or payload.get("action") != "closed":
        return None
    pull = payload.get("pull_request")
    if not isinstance(pull, dict) or not pull.get("merged") or not pull.get("merge_commit_sha"):
        return None
    parsed = parse_branch(str((pull.get("head") or {}).get("ref", "")))
    return (parsed[0], str(pull["merge_commit_sha"]), int(pull.get("number") or 0)) if parsed else None


def _log_merge(repo: str, payload: Mapping[str, Any]) -> None:
    """Log who merged a promotion PR (a person's merge is the approval; Ferry's own is logged when made)."""
    pull = payload["pull_request"]
    stage, freight = parse_branch(str(pull["head"]["ref"])) or ("", "")
    merged_by = pull.get("merged_by")
    login = merged_by.get("login") if isinstance(merged_by, dict) else None
    detail = f"#{pull.get('number')} merged by @{login or 'unknown'}"
    log_event(events.Event(events.PR_MERGED, repo, stage, detail, freight=freight))


def package_image(payload: Mapping[str, Any]) -> str | None:
    """The normalised image a ``package``/``registry_package`` event announces; None if not a container.

    From ``package_version.package_url`` (``ghcr.io/acme/web:1.5.0``; the tag may be empty), else from
    the owner and package name on ghcr.io. GHCR names are case-insensitive and references lowercase.
    """
    package = payload.get("package") or payload.get("registry_package")
    if not isinstance(package, dict):
        return None
    kinds = {str(package.get(key) or "").lower() for key in ("package_type", "ecosystem")}
    if not kinds & CONTAINER_PACKAGES:
        return None
    version = package.get("package_version")
    candidates = []
    if isinstance(version, dict) and isinstance(version.get("package_url"), str):
        candidates.append(version["package_url"])
    owner = package.get("owner")
    login = owner.get("login") if isinstance(owner, dict) else None
    if isinstance(login, str) and isinstance(package.get("name"), str):
        candidates.append(f"{GHCR}/{login}/{package['name']}")
    for candidate in candidates:
        name = candidate.strip().lower().partition("@")[0]
        if name.rfind(":") > name.rfind("/"):
            name = name[: name.rfind(":")]
        try:
            return normalise_name(name)
        except InvalidReferenceError:
            continue
    return None


def _repo_name(payload: Mapping[str, Any]) -> str | None:
    repository = payload.get("repository")
    if isinstance(repository, dict) and isinstance(repository.get("full_name"), str):
        return str(repository["full_name"])
    return None


def _installation_id(payload: Mapping[str, Any]) -> int | None:
    installation = payload.get("installation")
    if isinstance(installation, dict) and isinstance(installation.get("id"), int):
        return int(installation["id"])
    return None
