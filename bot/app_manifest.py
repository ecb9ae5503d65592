"""The GitHub App Ferry is: the permissions it asks for and the events it subscribes to, each with why.

One table for everything that needs it: ``ferry app create`` builds the App manifest from it
(``build_manifest``), ``ferry doctor`` compares an App and its installation with it (``missing_permissions``,
``missing_events``), ``.github/app-manifest.json`` is ``build_manifest(EXAMPLE_URL)`` and the table in
docs/install.md is ``render_reference()`` (tests keep both equal). Pure: no I/O.

The manifest's shape is GitHub's ("Registering a GitHub App from a manifest", docs.github.com/en/apps/
sharing-github-apps/registering-a-github-app-from-a-manifest: ``name``, ``url``, ``hook_attributes``,
``redirect_url``, ``public``, ``default_permissions``, ``default_events``). Permission and event names
are GitHub's (docs.github.com/en/rest/authentication/permissions-required-for-github-apps;
docs.github.com/en/webhooks/webhook-events-and-payloads, which names the permission each event needs).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

Level = Literal["read", "write"]

APP_NAME: Final = "Ferry"
DESCRIPTION: Final = (
    "Promotes container images through environments with pull requests; "
    "Argo CD's verdict gates the next stage."
)
WEBHOOK_PATH: Final = "/webhooks/github"  # bot.server.WEBHOOK_PATH (a test keeps them equal)
EXAMPLE_URL: Final = "https://ferry.example.com"  # the URL in .github/app-manifest.json
# GitHub grants levels in this order; a higher one includes the lower ones.
LEVELS: Final = ("none", "read", "write", "admin")


@dataclass(frozen=True)
class Permission:
    """A permission Ferry asks for (GitHub's key, e.g. ``pull_requests``) and why; ``optional`` ones are
    asked for too, but Ferry works without them (``ferry doctor`` warns instead of failing)."""

    name: str
    level: Level
    title: str  # as GitHub's App settings page names it
    why: str
    optional: bool = False


@dataclass(frozen=True)
class Event:
    """A webhook event Ferry subscribes to, the permission GitHub requires for it, and why."""

    name: str
    permission: str
    why: str


PERMISSIONS: Final = (
    Permission(
        "contents",
        "write",
        "Contents",
        "read `.github/ferry.yml` and the stages' files; write each promotion's commit and branch "
        "(Git Data API); merge promotion pull requests (`auto_merge`); answer commands on commits "
        "(commit comments)",
    ),
    Permission(
        "pull_requests",
        "write",
        "Pull requests",
        "open, update and close promotion pull requests; read their reviews (approvals by `promoters`); "
        "list every open pull request and the files it changes (`ferry/config` on pull requests)",
    ),
    Permission(
        "issues",
        "write",
        "Issues",
        "label promotion pull requests (`ferry`, `stage:<stage>`); answer comment commands on pull "
        "requests and issues (comments and reactions); the one comment listing a pull request's config "
        "problems",
    ),
    Permission(
        "statuses",
        "write",
        "Commit statuses",
        "post `ferry/health/<stage>`, `ferry/gate` and `ferry/config`; read the statuses on deploy commits",
    ),
    Permission(
        "deployments",
        "write",
        "Deployments",
        "record each verification as a GitHub Deployment of the deploy commit to the stage's "
        "environment: the freight history that gates, rollbacks and delivery figures read",
    ),
    Permission(
        "checks",
        "read",
        "Checks",
        "receive `check_suite` events (GitHub requires this permission for them); Ferry reads no check run",
    ),
    Permission(
        "packages",
        "read",
        "Packages",
        "receive `package` and `registry_package` events (GitHub requires this permission for them)",
    ),
    Permission(
        "members",
        "read",
        "Members (organization)",
        "check whether a commenter belongs to a `@org/team` named in a stage's `promoters`",
    ),
    Permission(
        "metadata",
        "read",
        "Metadata",
        "every App has it: the repository, its default branch, a commenter's permission on it",
    ),
    Permission(
        "administration",
        "read",
        "Administration",
        "read the default branch's protection, so `ferry doctor` can check that it requires `ferry/gate`. "
        "Optional: it also shows the repository's settings, collaborators and deploy keys to the App, so "
        "leave it out (`ferry app create --minimal`) if that is too much; the check then warns and you "
        "check branch protection by hand",
        optional=True,
    ),
)

EVENTS: Final = (
    Event(
        "push",
        "contents",
        "a commit on the default branch (a merge, a person's edit) is a hint to look again",
    ),
    Event(
        "pull_request",
        "pull_requests",
        "a promotion merged (Argo CD is asked to deploy it at once), closed or reopened; a pull request "
        "opened or pushed to gets `ferry/config` on its new head",
    ),
    Event(
        "pull_request_review",
        "pull_requests",
        "an approving review by a promoter may turn a stage's `ferry/gate` green",
    ),
    Event(
        "issue_comment", "issues", "`/promote`, `/rollback`, `/status`, `/help` on pull requests and issues"
    ),
    Event("commit_comment", "contents", "the same commands on commits"),
    Event(
        "status",
        "statuses",
        "a commit status changed (CI on a promotion pull request, a gate): an `auto_merge` may proceed",
    ),
    Event(
        "check_suite",
        "checks",
        "CI check runs finished on a promotion pull request: an `auto_merge` that branch protection held "
        "back may merge now rather than at the next poll",
    ),
    Event(
        "package",
        "packages",
        "a new image version on GitHub Packages (ghcr.io): the warehouses watching it look now, "
        "not at their next interval",
    ),
    Event(
        "registry_package",
        "packages",
        "the same news as GitHub delivers it to Apps for container images (akuity/kargo#4699)",
    ),
)


def _rank(level: str | None) -> int:
    return LEVELS.index(level) if level in LEVELS else 0


def grants(granted: Mapping[str, str], name: str, level: str) -> bool:
    """Whether ``granted`` holds permission ``name`` at ``level`` or higher (write includes read)."""
    return _rank(granted.get(name)) >= _rank(level)


def default_permissions(*, optional: bool = True) -> dict[str, str]:
    """``{name: level}`` of the permissions to ask for; ``optional=False`` leaves the optional ones out."""
    return {p.name: p.level for p in PERMISSIONS if optional or not p.optional}


def default_events() -> list[str]:
    return [event.name for event in EVENTS]


def build_manifest(
    url: str,
    *,
    name: str = APP_NAME,
    redirect_url: str | None = None,
    optional: bool = True,
    public: bool = False,
) -> dict[str, Any]:
    """The App manifest for a Ferry reachable at ``url`` (its homepage is the status page at ``url``,
    its webhook ``url`` + ``WEBHOOK_PATH``); ``redirect_url`` is where GitHub sends the browser back with
    the one-time code."""
    base = url.rstrip("/")
    manifest: dict[str, Any] = {
        "name": name,
        "url": base + "/",
        "description": DESCRIPTION,
        "hook_attributes": {"url": base + WEBHOOK_PATH, "active": True},
    }
    if redirect_url is not None:
        manifest["redirect_url"] = redirect_url
    manifest |= {
        "public": public,
        "default_permissions": default_permissions(optional=optional),
        "default_events": default_events(),
    }
    return manifest


def manifest_json(manifest: Mapping[str, Any]) -> str:
    """The manifest as ``.github/app-manifest.json`` holds it (2-space indent, final newline)."""
    return json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"


def missing_permissions(granted: Mapping[str, str], *, optional: bool) -> list[Permission]:
    """The permissions (required ones, or with ``optional`` the optional ones) that ``granted`` (GitHub's
    ``{name: "read" | "write" | "admin"}``) lacks or grants at a lower level than Ferry needs."""
    return [p for p in PERMISSIONS if p.optional == optional and _rank(granted.get(p.name)) < _rank(p.level)]


def unused_permissions(granted: Mapping[str, str]) -> dict[str, str]:
    """Permissions granted beyond what Ferry asks for: names it never uses, or a higher level."""
    wanted = {p.name: p.level for p in PERMISSIONS}
    return {
        name: level
        for name, level in sorted(granted.items())
        if name not in wanted or _rank(level) > _rank(wanted[name])
    }


def missing_events(subscribed: list[str] | tuple[str, ...]) -> list[Event]:
    return [event for event in EVENTS if event.name not in subscribed]


def render_reference() -> str:
    """The Markdown tables of docs/install.md (between its ``app-permissions`` markers)."""
    lines = ["| permission | access | why Ferry needs it |", "| --- | --- | --- |"]
    for p in PERMISSIONS:
        access = ("Read and write" if p.level == "write" else "Read-only") + (
            " (optional)" if p.optional else ""
        )
        lines.append(f"| {p.title} (`{p.name}`) | {access} | {p.why} |")
    lines += ["", "| event | needs | why Ferry subscribes |", "| --- | --- | --- |"]
    for event in EVENTS:
        lines.append(f"| `{event.name}` | `{event.permission}` | {event.why} |")
    return "\n".join(lines) + "\n"
