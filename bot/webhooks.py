"""Route verified webhook deliveries to the reconciler: which repository to reconcile now.

Webhooks only wake the loop; the pass re-reads the truth, so a lost or repeated delivery is harmless.
A ``package`` or ``registry_package`` event names the repository the package belongs to (usually the
application's, not the GitOps repository): it is routed by the image it announces instead, to every
repository whose warehouses watch that image.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

from bot.core.images import normalise_name
from bot.core.promotion import parse_branch
from bot.errors import InvalidReferenceError
from bot.reconciler import Reconciler
from bot.server import WebhookDelivery

log = logging.getLogger("ferry.webhooks")

# Events that may change what a pass decides.
TRIGGERING_EVENTS = frozenset(
    {
        "push",
        "pull_request",
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
    ) -> None:
        self.reconciler = reconciler
        self.on_comment = on_comment
        self.on_package = on_package
        self.on_merge_handled = on_merge_handled  # seconds from receipt to the sync request

    async def deliver(self, delivery: WebhookDelivery) -> None:
        payload = delivery.payload
        event = delivery.event
        if event == "installation":
            await self._installation(payload)
            return
        if event == "installation_repositories":
            self._installation_repositories(payload)
            return
        if event not in TRIGGERING_EVENTS:
            return
        if event in PACKAGE_EVENTS:
            self._package(payload)
            return
        repo = _repo_name(payload)
        installation = _installation_id(payload)
        if repo is None:
            return
        if installation is not None and repo not in self.reconciler.repos:
            self.reconciler.repos[repo] = installation
        merged = _merged_promotion(event, payload)
        if merged is not None:
            await self.reconciler.promotion_merged(repo, *merged)
            if self.on_merge_handled is not None:
                self.on_merge_handled(time.time() - delivery.received_at)
            return
        if event in ("issue_comment", "commit_comment") and self.on_comment is not None:
            await self.on_comment(delivery)
        self.reconciler.trigger(repo)

    def _package(self, payload: Mapping[str, Any]) -> None:
        """New tags: refresh the warehouses watching the image now rather than after their interval.

        The payload's repository is not reconciled for it: it rarely holds a pipeline, and when it
        does its warehouses watching the image put it in the list like any other repository.
        """
        image = package_image(payload)
        if image is None or self.on_package is None:
            return
        for repo in self.on_package(image):
            self.reconciler.trigger(repo)  # a repository no longer installed is ignored there

    async def _installation(self, payload: Mapping[str, Any]) -> None:
        installation = _installation_id(payload)
        repos = [r.get("full_name") for r in payload.get("repositories") or [] if isinstance(r, dict)]
        action = payload.get("action")
        if action in ("deleted", "suspend"):  # a suspended installation's tokens are refused
            for name in [n for n, i in self.reconciler.repos.items() if i == installation]:
                del self.reconciler.repos[name]
            return
        if installation is None:
            return
        if action == "unsuspend":
            await self.reconciler.add_installation(installation)  # the payload does not list them
            return
        for added in repos:
            if isinstance(added, str):
                self.reconciler.repos[added] = installation
                self.reconciler.trigger(added)

    def _installation_repositories(self, payload: Mapping[str, Any]) -> None:
        installation = _installation_id(payload)
        for repo in payload.get("repositories_removed") or []:
            self.reconciler.repos.pop(str(repo.get("full_name")), None)
        if installation is None:
            return
        for repo in payload.get("repositories_added") or []:
            name = str(repo.get("full_name"))
            self.reconciler.repos[name] = installation
            self.reconciler.trigger(name)


def _merged_promotion(event: str, payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """(stage, merge commit) when the event is a Ferry promotion PR being merged."""
    if event != "pull_request" or payload.get("action") != "closed":
        return None
    pull = payload.get("pull_request")
    if not isinstance(pull, dict) or not pull.get("merged") or not pull.get("merge_commit_sha"):
        return None
    parsed = parse_branch(str((pull.get("head") or {}).get("ref", "")))
    return (parsed[0], str(pull["merge_commit_sha"])) if parsed else None


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
