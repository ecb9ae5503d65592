"""REST bodies of GitHub's conversation objects, as API version 2022-11-28 returns them: commit statuses,
reactions, issue and commit comments, issues, pull requests and their reviews.

Pure builders from the stand-in's records (``github_state``) over the base objects of ``github_shapes``.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.sandbox.github_records import ReviewRecord
from bot.sandbox.github_shapes import Json, iso, minimal_repository, node_id, repository, user
from bot.sandbox.github_state import (
    Account,
    CommentRecord,
    IssueRecord,
    ReactionRecord,
    Site,
    StatusRecord,
)

REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


def status(site: Site, record: StatusRecord, creator: Account) -> Json:
    return {
        "url": f"{site.repo_api}/statuses/{record.sha}",
        "avatar_url": f"{site.html}/avatars/{creator.login}",
        "id": record.id,
        "node_id": node_id("StatusContext", record.id),
        "state": record.state,
        "description": record.description,
        "target_url": record.target_url,
        "context": record.context,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.created_at),
        "creator": user(site, creator),
    }


def combined_state(records: list[StatusRecord]) -> str:
    states = {r.state for r in records}
    if states & {"error", "failure"}:
        return "failure"
    if not records or "pending" in states:
        return "pending"
    return "success"


def combined_status(site: Site, sha: str, latest: list[StatusRecord], owner: Account) -> Json:
    statuses = []
    for record in latest:
        item = status(site, record, owner)
        item.pop("creator")
        item["required"] = False
        statuses.append(item)
    return {
        "state": combined_state(latest),
        "statuses": statuses,
        "sha": sha,
        "total_count": len(latest),
        "repository": minimal_repository(site, owner),
        "commit_url": f"{site.repo_api}/commits/{sha}",
        "url": f"{site.repo_api}/commits/{sha}/status",
    }


def reactions_summary(site: Site, url: str, records: list[ReactionRecord]) -> Json:
    counts = {content: sum(1 for r in records if r.content == content) for content in REACTIONS}
    return {"url": f"{url}/reactions", "total_count": len(records), **counts}


def reaction(site: Site, record: ReactionRecord, account: Account) -> Json:
    return {
        "id": record.id,
        "node_id": node_id("Reaction", record.id),
        "user": user(site, account),
        "content": record.content,
        "created_at": iso(record.created_at),
    }


def issue_comment(
    site: Site, record: CommentRecord, author: Account, association: str, reactions: list[ReactionRecord]
) -> Json:
    url = f"{site.repo_api}/issues/comments/{record.id}"
    return {
        "url": url,
        "html_url": f"{site.repo_html}/issues/{record.issue_number}#issuecomment-{record.id}",
        "issue_url": f"{site.repo_api}/issues/{record.issue_number}",
        "id": record.id,
        "node_id": node_id("IssueComment", record.id),
        "user": user(site, author),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "author_association": association,
        "body": record.body,
        "performed_via_github_app": None,
        "reactions": reactions_summary(site, url, reactions),
    }


def commit_comment(
    site: Site, record: CommentRecord, author: Account, association: str, reactions: list[ReactionRecord]
) -> Json:
    url = f"{site.repo_api}/comments/{record.id}"
    return {
        "url": url,
        "html_url": f"{site.repo_html}/commit/{record.commit_id}#commitcomment-{record.id}",
        "id": record.id,
        "node_id": node_id("CommitComment", record.id),
        "user": user(site, author),
        "position": record.position,
        "line": record.line,
        "path": record.path,
        "commit_id": record.commit_id,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "author_association": association,
        "body": record.body,
        "reactions": reactions_summary(site, url, reactions),
    }


def issue(site: Site, record: IssueRecord, author: Account, labels: list[Json], association: str) -> Json:
    url = f"{site.repo_api}/issues/{record.number}"
    kind = "pull" if record.pull else "issues"
    body: Json = {
        "url": url,
        "repository_url": site.repo_api,
        "labels_url": f"{url}/labels{{/name}}",
        "comments_url": f"{url}/comments",
        "events_url": f"{url}/events",
        "html_url": f"{site.repo_html}/{kind}/{record.number}",
        "id": record.id,
        "node_id": node_id("Issue", record.id),
        "number": record.number,
        "title": record.title,
        "user": user(site, author),
        "labels": labels,
        "state": record.state,
        "locked": False,
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "comments": record.comments,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "closed_at": iso(record.closed_at),
        "author_association": association,
        "active_lock_reason": None,
        "body": record.body,
        "performed_via_github_app": None,
        "state_reason": "completed" if record.state == "closed" else None,
        "reactions": reactions_summary(site, url, []),
        "timeline_url": f"{url}/timeline",
    }
    if record.pull:
        pr_url = f"{site.repo_api}/pulls/{record.number}"
        html = f"{site.repo_html}/pull/{record.number}"
        body["draft"] = False
        body["pull_request"] = {
            "url": pr_url,
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": iso(record.pull.merged_at),
        }
    return body


@dataclass(frozen=True)
class PullFacts:
    """What git says about a pull request right now (computed by the routes, not stored)."""

    head_sha: str
    base_sha: str
    mergeable: bool | None = None
    mergeable_state: str = "unknown"
    commits: int = 0
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0


def pull(
    site: Site,
    record: IssueRecord,
    *,
    author: Account,
    owner: Account,
    labels: list[Json],
    association: str,
    facts: PullFacts,
    merged_by: Account | None,
    full: bool = True,
) -> Json:
    """A pull request; ``full`` adds the fields of ``GET /pulls/{n}`` that lists leave out."""
    assert record.pull is not None
    info = record.pull
    api = f"{site.repo_api}/pulls/{record.number}"
    html = f"{site.repo_html}/pull/{record.number}"
    issue_url = f"{site.repo_api}/issues/{record.number}"
    repo = repository(site, owner)

    def side(ref: str, sha: str) -> Json:
        return {
            "label": f"{site.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": user(site, owner),
            "repo": repo,
        }

    body: Json = {
        "url": api,
        "id": record.id,
        "node_id": node_id("PullRequest", record.id),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_url,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{site.repo_api}/pulls/comments{{/number}}",
        "comments_url": f"{issue_url}/comments",
        "statuses_url": f"{site.repo_api}/statuses/{facts.head_sha}",
        "number": record.number,
        "state": record.state,
        "locked": False,
        "title": record.title,
        "user": user(site, author),
        "body": record.body,
        "labels": labels,
        "milestone": None,
        "active_lock_reason": None,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "closed_at": iso(record.closed_at),
        "merged_at": iso(info.merged_at),
        "merge_commit_sha": info.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [],
        "requested_teams": [],
        "head": side(info.head_ref, facts.head_sha),
        "base": side(info.base_ref, facts.base_sha),
        "_links": {
            "self": {"href": api},
            "html": {"href": html},
            "issue": {"href": issue_url},
            "comments": {"href": f"{issue_url}/comments"},
            "review_comments": {"href": f"{api}/comments"},
            "review_comment": {"href": f"{site.repo_api}/pulls/comments{{/number}}"},
            "commits": {"href": f"{api}/commits"},
            "statuses": {"href": f"{site.repo_api}/statuses/{facts.head_sha}"},
        },
        "author_association": association,
        "auto_merge": None,
        "draft": False,
    }
    if full:
        body |= {
            "merged": info.merged,
            "mergeable": facts.mergeable,
            "rebaseable": facts.mergeable,
            "mergeable_state": facts.mergeable_state,
            "merged_by": user(site, merged_by) if merged_by else None,
            "comments": record.comments,
            "review_comments": 0,
            "maintainer_can_modify": False,
            "commits": facts.commits,
            "additions": facts.additions,
            "deletions": facts.deletions,
            "changed_files": facts.changed_files,
        }
    return body


def review(
    site: Site, record: ReviewRecord, author: Account, association: str, *, webhook: bool = False
) -> Json:
    """A pull request review (schema ``pull-request-review``); ``webhook`` gives the delivery's variant,
    whose ``state`` is lower case ("approved") where the REST API says "APPROVED"."""
    pr_url = f"{site.repo_api}/pulls/{record.pull_number}"
    html = f"{site.repo_html}/pull/{record.pull_number}#pullrequestreview-{record.id}"
    body: Json = {
        "id": record.id,
        "node_id": node_id("PullRequestReview", record.id),
        "user": user(site, author),
        "body": record.body,
        "state": record.state.lower() if webhook else record.state,
        "html_url": html,
        "pull_request_url": pr_url,
        "author_association": association,
        "_links": {"html": {"href": html}, "pull_request": {"href": pr_url}},
        "commit_id": record.commit_id,
    }
    if record.submitted_at is not None or webhook:
        body["submitted_at"] = iso(record.submitted_at)
    return body
