"""Branch protection in the GitHub stand-in: what it refuses a merge for, and how it reads back.

The rules and words are GitHub's. A merge into a protected branch whose requirements are unmet answers
405 with every unmet rule, review rule first, in one sentence each: "At least 1 approving review is
required by reviewers with write access.", 'Required status check "ci" is expected.' (no status yet),
'... is in progress.' (pending), '... is failing.' (error or failure). Admins pass unless
``enforce_admins``. ("About protected branches", docs.github.com/en/repositories/configuring-branches-
and-merges-in-your-repository/managing-protected-branches/about-protected-branches: required reviews
count approvals "from people with write permissions"; required status checks must all pass.)
"""

from __future__ import annotations

from bot.sandbox.github_records import Protection, ReviewRecord
from bot.sandbox.github_shapes import Json
from bot.sandbox.github_state import Account, Site, StatusRecord

WRITERS = ("admin", "maintain", "write")


def approvals(reviews: list[ReviewRecord], accounts: dict[str, Account]) -> int:
    """People with write access whose latest deciding review approves (a comment decides nothing)."""
    latest: dict[str, str] = {}
    for review in reviews:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.user] = review.state
    return sum(
        1
        for login, state in latest.items()
        if state == "APPROVED"
        and login in accounts
        and (accounts[login].permission in WRITERS or accounts[login].type == "Bot")
    )


def merge_refusal(
    protection: Protection | None,
    *,
    latest: list[StatusRecord],
    reviews: list[ReviewRecord],
    accounts: dict[str, Account],
    merger: Account,
    app_bot: str,
    app_id: int,
) -> str | None:
    """Why GitHub would refuse this merge (the 405 message), or None when protection allows it.

    ``latest`` is the newest status of each context on the head commit; a check pinned to an App id is
    satisfied only by statuses that App's bot (``app_bot``, App ``app_id``) wrote.
    """
    if protection is None or (merger.permission == "admin" and not protection.enforce_admins):
        return None
    reasons = []
    needed = protection.required_approving_review_count
    if needed and approvals(reviews, accounts) < needed:
        noun = "review is" if needed == 1 else "reviews are"
        reasons.append(f"At least {needed} approving {noun} required by reviewers with write access.")
    by_context = {r.context: r for r in latest}
    for context, pinned in protection.required_contexts():
        status = by_context.get(context)
        foreign = status is not None and (pinned != app_id or status.creator != app_bot)
        if pinned not in (None, -1) and foreign:
            status = None  # pinned to an App: only that App's statuses count
        if status is None:
            reasons.append(f'Required status check "{context}" is expected.')
        elif status.state == "pending":
            reasons.append(f'Required status check "{context}" is in progress.')
        elif status.state != "success":
            reasons.append(f'Required status check "{context}" is failing.')
    return " ".join(reasons) or None


def protection_body(site: Site, protection: Protection) -> Json:
    """``GET /repos/{o}/{r}/branches/{branch}/protection`` (schema ``branch-protection``)."""
    url = f"{site.repo_api}/branches/{protection.branch}/protection"
    body: Json = {"url": url}
    required = protection.required_contexts()
    if required:  # GitHub leaves out the rules a branch does not have
        body["required_status_checks"] = {
            "url": f"{url}/required_status_checks",
            "strict": protection.strict,
            "contexts": [context for context, _ in required],
            "contexts_url": f"{url}/required_status_checks/contexts",
            "checks": [{"context": c, "app_id": a} for c, a in required],
        }
    body |= {
        "enforce_admins": {"url": f"{url}/enforce_admins", "enabled": protection.enforce_admins},
        "required_linear_history": {"enabled": False},
        "allow_force_pushes": {"enabled": False},
        "allow_deletions": {"enabled": False},
        "block_creations": {"enabled": False},
        "required_conversation_resolution": {"enabled": False},
        "lock_branch": {"enabled": False},
        "allow_fork_syncing": {"enabled": False},
    }
    if protection.required_approving_review_count is not None:
        body["required_pull_request_reviews"] = {
            "url": f"{url}/required_pull_request_reviews",
            "dismiss_stale_reviews": protection.dismiss_stale_reviews,
            "require_code_owner_reviews": False,
            "required_approving_review_count": protection.required_approving_review_count,
            "require_last_push_approval": False,
        }
    return body
