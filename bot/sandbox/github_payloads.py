"""Webhook payloads as GitHub sends them, and the App/installation/permission bodies of the REST API.

Pure builders over ``github_shapes``; each webhook follows GitHub's description (``x-webhooks`` of
``@octokit/openapi``) and has every key of the matching ``tests/fixtures/github-webhooks/`` payload (the
tests check both), plus ``installation`` as an App receives.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from bot.sandbox.github_shapes import Json, iso, node_id, user, webhook_repository
from bot.sandbox.github_state import APP_SLUG, Account, Site
from bot.sandbox.gitstore import ZERO_SHA, CommitInfo, FileChange


def installation_ref(site: Site) -> Json:
    return {"id": site.installation_id, "node_id": node_id("Installation", site.installation_id)}


def organization(site: Site, owner: Account) -> Json:
    """``{"organization": ...}`` when an organization owns the repository, else ``{}``: GitHub adds it to
    "the payload of an event that occurs from activity in a repository owned by an organization"
    (docs.github.com, webhook events and payloads; ``organization-simple-webhooks`` in its description)."""
    if owner.type != "Organization":
        return {}
    url, account = f"{site.api}/orgs/{owner.login}", user(site, owner)
    return {
        "organization": {
            "login": owner.login,
            "id": owner.id,
            "node_id": account["node_id"],
            "url": url,
            "repos_url": f"{url}/repos",
            "events_url": f"{url}/events",
            "hooks_url": f"{url}/hooks",
            "issues_url": f"{url}/issues",
            "members_url": f"{url}/members{{/member}}",
            "public_members_url": f"{url}/public_members{{/member}}",
            "avatar_url": account["avatar_url"],
            "description": None,
        }
    }


def app(site: Site, owner: Account) -> Json:
    created = iso(site.created_at)
    return {
        "id": site.app_id,
        "slug": APP_SLUG,
        "client_id": f"Iv1.sandbox{site.app_id}",
        "node_id": node_id("App", site.app_id),
        "owner": user(site, owner),
        "name": "Ferry (sandbox)",
        "description": "Ferry running against the offline sandbox",
        "external_url": site.html,
        "html_url": f"{site.html}/apps/{APP_SLUG}",
        "created_at": created,
        "updated_at": created,
        "permissions": dict(site.app_permissions),
        "events": list(site.app_events),
        "installations_count": 1,
    }


def installation(site: Site, owner: Account) -> Json:
    created = iso(site.created_at)
    ident = site.installation_id
    return {
        "id": ident,
        "account": user(site, owner),
        "repository_selection": "selected",
        "access_tokens_url": f"{site.api}/app/installations/{ident}/access_tokens",
        "repositories_url": f"{site.api}/installation/repositories",
        "html_url": f"{site.html}/organizations/{site.owner}/settings/installations/{ident}",
        "app_id": site.app_id,
        "app_slug": APP_SLUG,
        "client_id": f"Iv1.sandbox{site.app_id}",
        "target_id": owner.id,
        "target_type": owner.type,
        "permissions": dict(site.app_permissions),
        "events": list(site.app_events),
        "created_at": created,
        "updated_at": created,
        "single_file_name": None,
        "has_multiple_single_files": False,
        "single_file_paths": [],
        "suspended_by": None,
        "suspended_at": None,
    }


def access_token(site: Site, token: str, expires_at: float) -> Json:
    return {
        "token": token,
        "expires_at": iso(expires_at),
        "permissions": dict(site.app_permissions),
        "repository_selection": "selected",
    }


def collaborator_permission(site: Site, account: Account, role: str, legacy: str) -> Json:
    collaborator = user(site, account)
    collaborator["role_name"] = role
    collaborator["permissions"] = {
        "admin": role == "admin",
        "maintain": role in ("admin", "maintain"),
        "push": role in ("admin", "maintain", "write"),
        "triage": role in ("admin", "maintain", "write", "triage"),
        "pull": role != "none",
    }
    return {"permission": legacy, "role_name": role, "user": collaborator}


def team_membership(site: Site, org: str, slug: str, login: str) -> Json:
    return {
        "url": f"{site.api}/orgs/{org}/teams/{slug}/memberships/{login}",
        "role": "member",
        "state": "active",
    }


def rate_limit(limit: int, remaining: int, reset: int) -> Json:
    # GitHub's ``rate-limit`` schema: limit, remaining, reset, used; the resource's name is its key
    # (the ``X-RateLimit-Resource`` header carries it on other answers).
    core = {"limit": limit, "remaining": remaining, "reset": reset, "used": limit - remaining}
    search = {"limit": 30, "remaining": 30, "reset": reset, "used": 0}
    return {"resources": {"core": core, "search": search}, "rate": core}


# webhooks --------------------------------------------------------------------------------------
# A push's repository (its own schema in GitHub's description, ``webhook-push``) has the merge switches
# but not the default merge and squash messages.
PUSH_OMITS = (
    "use_squash_pr_title_as_default",
    "squash_merge_commit_title",
    "squash_merge_commit_message",
    "merge_commit_title",
    "merge_commit_message",
)


@dataclass(frozen=True)
class PushedCommit:
    info: CommitInfo
    changes: list[FileChange]


def _push_commit(site: Site, pushed: PushedCommit, usernames: dict[str, str]) -> Json:
    info = pushed.info

    def person(who: Any) -> Json:
        body: Json = {"name": who.name, "email": who.email}
        if who.email in usernames:
            body["username"] = usernames[who.email]
        return body

    return {
        "id": info.sha,
        "tree_id": info.tree,
        "distinct": True,
        "message": info.message,
        "timestamp": iso(info.committer.timestamp),
        "url": f"{site.repo_html}/commit/{info.sha}",
        "author": person(info.author),
        "committer": person(info.committer),
        "added": [c.filename for c in pushed.changes if c.status == "added"],
        "removed": [c.filename for c in pushed.changes if c.status == "removed"],
        "modified": [c.filename for c in pushed.changes if c.status not in ("added", "removed")],
    }


def push(
    site: Site,
    owner: Account,
    sender: Account,
    *,
    ref: str,
    before: str,
    after: str,
    forced: bool,
    commits: list[PushedCommit],
    usernames: dict[str, str],
    pushed_at: float,
) -> Json:
    created, deleted = before == ZERO_SHA, after == ZERO_SHA
    repo = webhook_repository(site, owner, pushed_at=pushed_at)
    # Push deliveries carry Unix timestamps and an owner with name/email, unlike the REST object.
    repo |= {
        "created_at": int(site.created_at),
        "pushed_at": int(pushed_at),
        "stargazers": 0,
        "master_branch": "main",
    }
    repo["owner"] = {"name": owner.login, "email": None, **repo["owner"]}
    if owner.type == "Organization":
        repo["organization"] = owner.login  # the push schema's repository names its organization
    for key in PUSH_OMITS:
        repo.pop(key)
    listed = [_push_commit(site, c, usernames) for c in commits]
    compare = (
        f"{site.repo_html}/commit/{after}"
        if created
        else f"{site.repo_html}/compare/{before[:12]}...{after[:12]}"
    )
    return {
        "ref": ref,
        "before": before,
        "after": after,
        "created": created,
        "deleted": deleted,
        "forced": forced,
        "base_ref": None,
        "compare": compare,
        "commits": listed,
        "head_commit": listed[-1] if listed else None,
        "repository": repo,
        **organization(site, owner),
        "pusher": {"name": sender.login, "email": sender.email},
        "sender": user(site, sender),
        "installation": installation_ref(site),
    }


def pull_request(site: Site, owner: Account, sender: Account, action: str, pr: Json, **extra: Any) -> Json:
    payload: Json = {"action": action, "number": pr["number"], "pull_request": pr}
    payload |= extra  # label (labeled/unlabeled), before/after (synchronize)
    return payload | {
        "repository": webhook_repository(site, owner),
        **organization(site, owner),
        "installation": installation_ref(site),
        "sender": user(site, sender),
    }


def pull_request_review(
    site: Site, owner: Account, sender: Account, *, action: str, review: Json, pr: Json, **extra: Any
) -> Json:
    """``pull_request_review`` (submitted, edited, dismissed): ``review`` in its webhook variant, ``pr``
    the list form of the pull request (no ``merged``/``mergeable``: "Simple Pull Request")."""
    return {"action": action, "review": review, "pull_request": pr, **extra} | {
        "repository": webhook_repository(site, owner),
        **organization(site, owner),
        "sender": user(site, sender),
        "installation": installation_ref(site),
    }


def issue_comment(
    site: Site,
    owner: Account,
    sender: Account,
    *,
    action: str,
    issue: Json,
    comment: Json,
    changes: Json | None = None,
) -> Json:
    payload: Json = {"action": action}
    if changes is not None:
        payload["changes"] = changes
    return payload | {
        "issue": issue,
        "comment": comment,
        "repository": webhook_repository(site, owner),
        **organization(site, owner),
        "sender": user(site, sender),
        "installation": installation_ref(site),
    }


def commit_comment(site: Site, owner: Account, sender: Account, comment: Json) -> Json:
    return {
        "action": "created",
        "comment": comment,
        "repository": webhook_repository(site, owner),
        **organization(site, owner),
        "sender": user(site, sender),
        "installation": installation_ref(site),
    }


def status(
    site: Site,
    owner: Account,
    sender: Account,
    *,
    status_body: Json,
    commit_body: Json,
    branches: list[tuple[str, str]],
    protected: Collection[str] = (),
) -> Json:
    return {
        "id": status_body["id"],
        "sha": commit_body["sha"],
        "name": site.full_name,
        "target_url": status_body["target_url"],
        "context": status_body["context"],
        "description": status_body["description"],
        "state": status_body["state"],
        "commit": commit_body,
        "branches": [
            {
                "name": name,
                "commit": {"sha": sha, "url": f"{site.repo_api}/commits/{sha}"},
                "protected": name in protected,
            }
            for name, sha in branches
        ],
        "created_at": status_body["created_at"],
        "updated_at": status_body["updated_at"],
        "repository": webhook_repository(site, owner),
        **organization(site, owner),
        "sender": user(site, sender),
        "installation": installation_ref(site),
        "avatar_url": status_body["avatar_url"],
    }


def installation_event(site: Site, owner: Account, sender: Account, action: str = "created") -> Json:
    return {
        "action": action,
        "installation": installation(site, owner),
        "repositories": [
            {
                "id": site.repo_id,
                "node_id": node_id("Repository", site.repo_id),
                "name": site.repo,
                "full_name": site.full_name,
                "private": True,
            }
        ],
        "requester": None,
        "sender": user(site, sender),
    }
