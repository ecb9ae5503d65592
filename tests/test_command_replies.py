"""Which comments count as Ferry's answers, and which are commands still to answer (pure rules)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from bot.command_replies import AppIdentity, Comment, answered_ids, expired, is_command, reply_marker

APP = AppIdentity(app_id=77, login="ferry[bot]")
AT = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def comment(body: str, login: str = "rita", account_type: str = "User", **fields: object) -> Comment:
    base = Comment(
        kind="issue",
        repo="acme/gitops",
        comment_id=900,
        body=body,
        login=login,
        account_type=account_type,
        association="MEMBER",
        url="https://github.com/acme/gitops/issues/1#issuecomment-900",
        issue_number=1,
        created_at=AT,
        updated_at=AT,
    )
    return replace(base, **fields)  # type: ignore[arg-type]


def test_only_the_apps_own_comment_answers_a_command() -> None:
    marker = f"Done.\n\n{reply_marker(41)}\n"
    assert answered_ids([comment(marker, "ferry[bot]", "Bot")], APP) == {41}
    assert answered_ids([comment(marker, "FERRY[bot]", "Bot")], APP) == {41}  # logins ignore case
    assert answered_ids([comment(marker, "renamed[bot]", "Bot", via_app=77)], APP) == {41}


def test_a_reply_marker_in_a_persons_or_another_bots_comment_counts_for_nothing() -> None:
    marker = f"lgtm {reply_marker(41)}"
    assert answered_ids([comment(marker, "watcher")], APP) == set()
    assert answered_ids([comment(marker, "ferry[bot]", "User")], APP) == set()  # a person is never a Bot
    assert answered_ids([comment(marker, "renovate[bot]", "Bot")], APP) == set()
    assert answered_ids([comment(marker, "renovate[bot]", "Bot", via_app=5)], APP) == set()


def test_a_command_is_a_persons_unedited_comment_that_parses() -> None:
    assert is_command(comment("/promote prod"))
    assert not is_command(comment("Ship it"))
    assert not is_command(comment("/promote prod", "ferry[bot]", "Bot"))
    assert not is_command(comment("/promote prod", updated_at=AT + timedelta(seconds=30)))
    assert is_command(comment("/promote prod", updated_at=AT + timedelta(milliseconds=400)))


def test_a_command_expires_after_the_max_age_not_at_it() -> None:
    posted = comment("/promote prod")
    assert not expired(posted, AT + timedelta(hours=1), timedelta(hours=1))
    assert expired(posted, AT + timedelta(hours=1, seconds=1), timedelta(hours=1))
