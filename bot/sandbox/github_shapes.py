"""REST response bodies shaped as GitHub's API version 2022-11-28 returns them.

Pure builders from the stand-in's records to JSON-ready dicts; githubkit's ``2022-11-28`` models parse
every one of them (the tests check). Webhook payloads reuse these objects (``github_payloads``).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.github_state import (
    Account,
    Site,
)
from bot.sandbox.gitstore import CommitInfo, FileChange, TreeEntry

Json = dict[str, Any]
DOCS = "https://docs.github.com/rest"
# GitHub's legacy "permission" field folds the finer roles into four words.
LEGACY_PERMISSION = {
    "admin": "admin",
    "maintain": "write",
    "write": "write",
    "triage": "read",
    "read": "read",
    "none": "none",
}


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(int(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def node_id(kind: str, ident: int | str) -> str:
    return base64.b64encode(f"0:{kind}{ident}".encode()).decode()


def error(message: str, *, errors: list[Json] | list[str] | None = None, status: int | None = None) -> Json:
    body: Json = {"message": message, "documentation_url": DOCS}
    if errors is not None:
        body["errors"] = errors
    if status is not None:
        body["status"] = str(status)
    return body


def user(site: Site, account: Account) -> Json:
    url = f"{site.api}/users/{account.login}"
    return {
        "login": account.login,
        "id": account.id,
        "node_id": node_id("User", account.id),
        "avatar_url": f"{site.html}/avatars/{account.login}",
        "gravatar_id": "",
        "url": url,
        "html_url": f"{site.html}/{account.login}",
        "followers_url": f"{url}/followers",
        "following_url": f"{url}/following{{/other_user}}",
        "gists_url": f"{url}/gists{{/gist_id}}",
        "starred_url": f"{url}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{url}/subscriptions",
        "organizations_url": f"{url}/orgs",
        "repos_url": f"{url}/repos",
        "events_url": f"{url}/events{{/privacy}}",
        "received_events_url": f"{url}/received_events",
        "type": account.type,
        "user_view_type": "public",
        "site_admin": False,
    }


def repository(site: Site, owner: Account, *, pushed_at: float | None = None) -> Json:
    """GitHub's ``repository`` object: a pull request's ``head.repo``/``base.repo``. Other places add to it
    or take from it, as GitHub's description says: ``full_repository``, ``webhook_repository``,
    ``minimal_repository``."""
    api, html = site.repo_api, site.repo_html
    created = iso(site.created_at)
    pushed = iso(pushed_at) if pushed_at is not None else created
    urls = {
        "forks_url": f"{api}/forks",
        "keys_url": f"{api}/keys{{/key_id}}",
        "collaborators_url": f"{api}/collaborators{{/collaborator}}",
        "teams_url": f"{api}/teams",
        "hooks_url": f"{api}/hooks",
        "issue_events_url": f"{api}/issues/events{{/number}}",
        "events_url": f"{api}/events",
        "assignees_url": f"{api}/assignees{{/user}}",
        "branches_url": f"{api}/branches{{/branch}}",
        "tags_url": f"{api}/tags",
        "blobs_url": f"{api}/git/blobs{{/sha}}",
        "git_tags_url": f"{api}/git/tags{{/sha}}",
        "git_refs_url": f"{api}/git/refs{{/sha}}",
        "trees_url": f"{api}/git/trees{{/sha}}",
        "statuses_url": f"{api}/statuses/{{sha}}",
        "languages_url": f"{api}/languages",
        "stargazers_url": f"{api}/stargazers",
        "contributors_url": f"{api}/contributors",
        "subscribers_url": f"{api}/subscribers",
        "subscription_url": f"{api}/subscription",
        "commits_url": f"{api}/commits{{/sha}}",
        "git_commits_url": f"{api}/git/commits{{/sha}}",
        "comments_url": f"{api}/comments{{/number}}",
        "issue_comment_url": f"{api}/issues/comments{{/number}}",
        "contents_url": f"{api}/contents/{{+path}}",
        "compare_url": f"{api}/compare/{{base}}...{{head}}",
        "merges_url": f"{api}/merges",
        "archive_url": f"{api}/{{archive_format}}{{/ref}}",
        "downloads_url": f"{api}/downloads",
        "issues_url": f"{api}/issues{{/number}}",
        "pulls_url": f"{api}/pulls{{/number}}",
        "milestones_url": f"{api}/milestones{{/number}}",
        "notifications_url": f"{api}/notifications{{?since,all,participating}}",
        "labels_url": f"{api}/labels{{/name}}",
        "releases_url": f"{api}/releases{{/id}}",
        "deployments_url": f"{api}/deployments",
    }
    return {
        "id": site.repo_id,
        "node_id": node_id("Repository", site.repo_id),
        "name": site.repo,
        "full_name": site.full_name,
        "private": True,
        "owner": user(site, owner),
        "html_url": html,
        "description": "GitOps repository of the Ferry sandbox",
        "fork": False,
        "url": api,
        **urls,
        "created_at": created,
        "updated_at": created,
        "pushed_at": pushed,
        "git_url": f"{html}.git",
        "ssh_url": f"{html}.git",
        "clone_url": f"{html}.git",
        "svn_url": html,
        "homepage": None,
        "size": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "language": None,
        "has_issues": True,
        "has_projects": False,
        "has_downloads": False,
        "has_wiki": False,
        "has_pages": False,
        "has_discussions": False,
        "forks_count": 0,
        "mirror_url": None,
        "archived": False,
        "disabled": False,
        "open_issues_count": 0,
        "license": None,
        "allow_forking": False,
        "is_template": False,
        "web_commit_signoff_required": False,
        "topics": [],
        "visibility": "private",
        "forks": 0,
        "open_issues": 0,
        "watchers": 0,
        "default_branch": "main",
        "permissions": {"admin": False, "maintain": False, "push": True, "triage": True, "pull": True},
        "allow_squash_merge": site.settings.allow_squash_merge,
        "allow_merge_commit": site.settings.allow_merge_commit,
        "allow_rebase_merge": site.settings.allow_rebase_merge,
        "allow_auto_merge": False,
        "delete_branch_on_merge": site.settings.delete_branch_on_merge,
        "allow_update_branch": False,
        "use_squash_pr_title_as_default": False,
        "squash_merge_commit_title": "COMMIT_OR_PR_TITLE",
        "squash_merge_commit_message": "COMMIT_MESSAGES",
        "merge_commit_title": "MERGE_MESSAGE",
        "merge_commit_message": "PR_TITLE",
    }


def full_repository(site: Site, owner: Account) -> Json:
    """``GET /repos/{owner}/{repo}``: ``full-repository`` alone counts watchers and the fork network."""
    return repository(site, owner) | {"subscribers_count": 0, "network_count": 0, "custom_properties": {}}


def webhook_repository(site: Site, owner: Account, *, pushed_at: float | None = None) -> Json:
    """A webhook's top-level ``repository`` and ``/installation/repositories``: ``repository`` plus the
    organization's custom properties (GitHub's description: ``repository-webhooks``, and the ``allOf``
    of ``GET /installation/repositories``)."""
    return repository(site, owner, pushed_at=pushed_at) | {"custom_properties": {}}


# ``minimal-repository`` (a combined status's ``repository``) has no merge settings.
MERGE_SETTINGS = (
    "allow_squash_merge",
    "allow_merge_commit",
    "allow_rebase_merge",
    "allow_auto_merge",
    "allow_update_branch",
    "use_squash_pr_title_as_default",
    "squash_merge_commit_title",
    "squash_merge_commit_message",
    "merge_commit_title",
    "merge_commit_message",
)


def minimal_repository(site: Site, owner: Account) -> Json:
    body = repository(site, owner)
    for key in MERGE_SETTINGS:
        body.pop(key)
    return body


def label(site: Site, name: str, ident: int) -> Json:
    return {
        "id": ident,
        "node_id": node_id("Label", ident),
        "url": f"{site.repo_api}/labels/{name}",
        "name": name,
        "color": "ededed",
        "default": False,
        "description": None,
        "archived_at": None,
        "archived_by": None,
    }


def git_ref(site: Site, ref: str, sha: str, kind: str = "commit") -> Json:
    plural = "commits" if kind == "commit" else f"{kind}s"
    return {
        "ref": ref,
        "node_id": node_id("Ref", ref),
        "url": f"{site.repo_api}/git/{ref}",
        "object": {"sha": sha, "type": kind, "url": f"{site.repo_api}/git/{plural}/{sha}"},
    }


def verification(info: CommitInfo, verified: bool) -> Json:
    if not verified:
        return {
            "verified": False,
            "reason": "unsigned",
            "signature": None,
            "payload": None,
            "verified_at": None,
        }
    return {
        "verified": True,
        "reason": "valid",
        "signature": "-----BEGIN PGP SIGNATURE-----\n\nsandbox\n-----END PGP SIGNATURE-----\n",
        "payload": f"{info.raw_header}\n\n{info.message}",
        "verified_at": iso(info.committer.timestamp),
    }


def git_person(who: Any) -> Json:
    return {"name": who.name, "email": who.email, "date": iso(who.timestamp)}


def git_commit(site: Site, info: CommitInfo, verified: bool) -> Json:
    api, html = site.repo_api, site.repo_html
    return {
        "sha": info.sha,
        "node_id": node_id("Commit", info.sha),
        "url": f"{api}/git/commits/{info.sha}",
        "html_url": f"{html}/commit/{info.sha}",
        "author": git_person(info.author),
        "committer": git_person(info.committer),
        "message": info.message,
        "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
        "parents": [
            {"sha": p, "url": f"{api}/git/commits/{p}", "html_url": f"{html}/commit/{p}"}
            for p in info.parents
        ],
        "verification": verification(info, verified),
    }


def blob(site: Site, sha: str, data: bytes) -> Json:
    return {
        "sha": sha,
        "node_id": node_id("Blob", sha),
        "size": len(data),
        "url": f"{site.repo_api}/git/blobs/{sha}",
        "content": base64.encodebytes(data).decode(),
        "encoding": "base64",
    }


def tree(site: Site, sha: str, entries: list[TreeEntry]) -> Json:
    items = []
    for entry in entries:
        item: Json = {
            "path": entry.path,
            "mode": entry.mode,
            "type": entry.type,
            "sha": entry.sha,
            "url": f"{site.repo_api}/git/{entry.type}s/{entry.sha}",
        }
        if entry.size is not None:
            item["size"] = entry.size
        items.append(item)
    return {"sha": sha, "url": f"{site.repo_api}/git/trees/{sha}", "tree": items, "truncated": False}


def commit(
    site: Site,
    info: CommitInfo,
    *,
    verified: bool,
    author: Json | None,
    committer: Json | None,
    files: list[FileChange] | None = None,
    comment_count: int = 0,
) -> Json:
    """The ``commit`` object of ``GET /repos/{o}/{r}/commits[/{ref}]``; ``files`` only on the single one."""
    api, html = site.repo_api, site.repo_html
    body: Json = {
        "url": f"{api}/commits/{info.sha}",
        "sha": info.sha,
        "node_id": node_id("Commit", info.sha),
        "html_url": f"{html}/commit/{info.sha}",
        "comments_url": f"{api}/commits/{info.sha}/comments",
        "commit": {
            "url": f"{api}/git/commits/{info.sha}",
            "author": git_person(info.author),
            "committer": git_person(info.committer),
            "message": info.message,
            "comment_count": comment_count,
            "tree": {"sha": info.tree, "url": f"{api}/git/trees/{info.tree}"},
            "verification": verification(info, verified),
        },
        "author": author,
        "committer": committer,
        "parents": [
            {"sha": p, "url": f"{api}/commits/{p}", "html_url": f"{html}/commit/{p}"} for p in info.parents
        ],
    }
    if files is not None:
        adds = sum(f.additions for f in files)
        dels = sum(f.deletions for f in files)
        body["stats"] = {"additions": adds, "deletions": dels, "total": adds + dels}
        body["files"] = [diff_entry(site, info.sha, f) for f in files]
    return body


def diff_entry(site: Site, ref: str, change: FileChange) -> Json:
    return {
        "sha": change.sha,
        "filename": change.filename,
        "status": change.status,
        "additions": change.additions,
        "deletions": change.deletions,
        "changes": change.additions + change.deletions,
        "blob_url": f"{site.repo_html}/blob/{ref}/{change.filename}",
        "raw_url": f"{site.repo_html}/raw/{ref}/{change.filename}",
        "contents_url": f"{site.repo_api}/contents/{change.filename}?ref={ref}",
    }


def content_entry(site: Site, entry: TreeEntry, ref: str, data: bytes | None = None) -> Json:
    kind = {"blob": "file", "tree": "dir", "commit": "submodule"}[entry.type]
    if entry.mode == "120000":
        kind = "symlink"
    url = f"{site.repo_api}/contents/{entry.path}?ref={ref}"
    git_url = f"{site.repo_api}/git/{entry.type}s/{entry.sha}"
    html_url = f"{site.repo_html}/{'tree' if kind == 'dir' else 'blob'}/{ref}/{entry.path}"
    body: Json = {
        "type": kind,
        "size": entry.size or 0,
        "name": entry.path.rsplit("/", 1)[-1],
        "path": entry.path,
        "sha": entry.sha,
        "url": url,
        "git_url": git_url,
        "html_url": html_url,
        "download_url": f"{site.repo_html}/raw/{ref}/{entry.path}" if kind == "file" else None,
        "_links": {"self": url, "git": git_url, "html": html_url},
    }
    if data is not None:
        body["content"] = base64.encodebytes(data).decode()
        body["encoding"] = "base64"
    return body
