"""The comment grammar, the command table and the permission rules (bot.commands, pure)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.commands import (
    COMMANDS,
    MAX_ARGUMENT_CHARS,
    MAX_LINE_CHARS,
    Asker,
    Command,
    CommandError,
    Selector,
    command_line,
    is_bot,
    is_promoter,
    parse_comment,
    pick,
    refusal,
    render_docs,
    render_error,
    render_help,
    unknown_stage,
)
from bot.core.freight import Freight, FreightImage

REPO_ROOT = Path(__file__).resolve().parent.parent
OLD = Freight(
    "shop", (FreightImage("ghcr.io/acme/web", "1.4.2"), FreightImage("ghcr.io/acme/worker", "1.4.2"))
)
NEW = Freight(
    "shop", (FreightImage("ghcr.io/acme/web", "1.5.0"), FreightImage("ghcr.io/acme/worker", "1.5.1"))
)
PROMOTERS = ["@acme/release-managers", "Carol"]


def promote(stage: str, selector: Selector | None = None, reason: str = "") -> Command:
    return Command("promote", stage, selector or Selector(), reason)


# ---- where the command is ------------------------------------------------------------------------
def test_a_trailing_html_trailer_is_not_part_of_the_command() -> None:
    body = "/promote prod <!-- sent from my phone -->\n\n<!-- Reviewable:start -->\nstuff\n<!-- end -->"
    assert parse_comment(body) == promote("prod")


def test_a_second_line_of_prose_is_not_read_as_arguments() -> None:
    assert parse_comment("/promote prod\nbecause the checkout fix must go out today") == promote("prod")


def test_prose_before_the_command_means_there_is_no_command() -> None:
    assert parse_comment("Looks good to me.\n/promote prod") is None


def test_a_command_inside_a_code_block_is_not_run() -> None:
    assert parse_comment("```\n/promote prod\n```\nthat is how you would do it") is None
    assert parse_comment("~~~~\n/promote prod\n~~~~") is None
    assert parse_comment("    /promote prod") is None  # an indented code block


def test_an_unclosed_code_block_hides_everything_after_it() -> None:
    assert parse_comment("```sh\n/promote prod") is None


def test_a_command_inside_a_quote_is_not_run() -> None:
    assert parse_comment("> /promote prod\n\nno, please wait") is None


def test_a_command_after_a_quote_and_a_code_block_is_run() -> None:
    assert parse_comment("> /promote prod\n```\n/help\n```\n\n/rollback prod") == Command("rollback", "prod")


def test_html_comments_and_quotes_are_removed_before_the_first_line_is_chosen() -> None:
    assert command_line("<!-- a\nmulti-line\ncomment -->\n\n  /status\r\nmore") == "  /status"


def test_the_command_word_is_case_insensitive() -> None:
    assert parse_comment("/PROMOTE prod") == promote("prod")


def test_a_word_that_only_starts_like_a_command_is_not_one() -> None:
    assert parse_comment("/promoted prod yesterday") is None
    assert parse_comment("/statuses") is None


def test_a_misspelt_command_word_is_left_alone_since_it_may_be_another_bots() -> None:
    assert parse_comment("/promte prod") is None
    assert parse_comment("/lgtm") is None
    assert parse_comment("/assign @rita") is None


def test_a_command_not_at_the_start_of_the_line_is_prose() -> None:
    assert parse_comment("please /promote prod") is None


# ---- arguments -----------------------------------------------------------------------------------
def test_freight_id_tag_and_image_pairs_are_read() -> None:
    assert parse_comment("/promote prod 0123456789ab") == promote("prod", Selector("0123456789ab"))
    assert parse_comment("/promote prod 1.5.0") == promote("prod", Selector("1.5.0"))
    pairs = parse_comment("/promote prod web=1.5.0 ghcr.io/acme/worker=1.5.1")
    assert pairs == promote("prod", Selector(images=(("web", "1.5.0"), ("ghcr.io/acme/worker", "1.5.1"))))


def test_reason_is_read_in_both_spellings() -> None:
    assert parse_comment('/rollback prod --reason "checkout is broken"') == Command(
        "rollback", "prod", Selector(), "checkout is broken"
    )
    assert parse_comment("/promote prod --reason=hotfix") == promote("prod", reason="hotfix")


def test_shell_metacharacters_are_plain_characters_and_never_run() -> None:
    parsed = parse_comment("/promote prod $(reboot)")
    assert isinstance(parsed, CommandError)
    assert "`$(reboot)` is not a valid tag" in parsed.message
    assert parse_comment("/promote prod;rm") == promote("prod;rm")  # an unknown stage, answered later
    piped = parse_comment("/promote prod 1.5.0 | sh")
    assert isinstance(piped, CommandError) and "3 arguments" in piped.message


def test_an_unclosed_quote_is_reported_not_raised() -> None:
    parsed = parse_comment('/promote prod "1.5.0')
    assert isinstance(parsed, CommandError)
    assert "cannot read the arguments (no closing quotation)" in parsed.message


def test_very_long_arguments_are_refused_with_the_limit() -> None:
    long_tag = parse_comment("/promote prod " + "a" * (MAX_ARGUMENT_CHARS + 1))
    assert isinstance(long_tag, CommandError) and f"at most {MAX_ARGUMENT_CHARS}" in long_tag.message
    long_line = parse_comment("/promote prod " + "x " * MAX_LINE_CHARS)
    assert (
        isinstance(long_line, CommandError) and f"Ferry reads at most {MAX_LINE_CHARS}" in long_line.message
    )
    many = parse_comment("/promote prod " + " ".join(f"i{n}=1" for n in range(40)))
    assert isinstance(many, CommandError) and "at most 16" in many.message


def test_echoed_input_is_bounded_and_cannot_break_out_of_code() -> None:
    parsed = parse_comment("/promote prod --`" + "y" * 250 + "`")
    assert isinstance(parsed, CommandError)
    assert "``" not in parsed.message and len(parsed.message) < 120


def test_unknown_flag_is_answered_with_the_usage_in_a_code_block() -> None:
    parsed = parse_comment("/promote prod --force")
    assert isinstance(parsed, CommandError)
    text = render_error(parsed)
    assert "unknown option `--force` for /promote" in text
    assert "```\n/promote <stage> [<freight-id> | <tag> | <image>=<tag> ...] [--reason <text>]\n```" in text


def test_missing_stage_and_mixed_selectors_are_errors() -> None:
    assert parse_comment("/promote") == CommandError("promote", "/promote needs a stage")
    mixed = parse_comment("/promote prod 1.5.0 web=1.5.0")
    assert isinstance(mixed, CommandError) and "not both" in mixed.message
    pairs = parse_comment("/rollback prod web=1.4.0")
    assert isinstance(pairs, CommandError) and "not `<image>=<tag>` pairs" in pairs.message


def test_words_after_status_and_help_are_conversation() -> None:
    assert parse_comment("/status please") == Command("status")
    assert parse_comment("/help me") == Command("help")


def test_unknown_stage_lists_the_stages_and_guesses() -> None:
    text = unknown_stage("prdo", ["dev", "staging", "prod"])
    assert text == 'there is no stage `prdo` (did you mean "prod"?); stages: `dev`, `staging`, `prod`'


# ---- one table -----------------------------------------------------------------------------------
def test_help_lists_every_command_the_parser_knows() -> None:
    text = render_help()
    for spec in COMMANDS:
        assert f"`{spec.usage.replace('|', chr(92) + '|')}`" in text
        assert parse_comment(f"/{spec.name} prod") is not None


def test_committed_command_reference_is_current() -> None:
    committed = (REPO_ROOT / "docs" / "commands.md").read_text()
    assert committed == render_docs(), (
        "run: python -c 'import bot.commands as c; print(c.render_docs(), end=\"\")' > docs/commands.md"
    )


# ---- who ----------------------------------------------------------------------------------------
def test_bots_are_recognised_by_type_or_login() -> None:
    assert is_bot("renovate[bot]", "User")
    assert is_bot("ferry", "Bot")
    assert not is_bot("rita", "User")


def test_promoters_match_logins_without_case_and_teams_by_membership() -> None:
    assert is_promoter("carol", PROMOTERS, ())
    assert is_promoter("rita", PROMOTERS, {"acme/release-managers"})
    assert not is_promoter("rita", PROMOTERS, {"acme/developers"})


def _refusal(asker: Asker, *, fork: bool = False, promoters: list[str] | None = None) -> str | None:
    return refusal(
        promote("prod"),
        asker,
        repo="acme/gitops",
        promoters=PROMOTERS if promoters is None else promoters,
        on_fork_pull=fork,
        default_branch="main",
    )


def test_a_reader_is_refused_with_their_access_named() -> None:
    assert _refusal(Asker("watcher", "read")) == (
        "@watcher has read access to acme/gitops; /promote needs write, maintain or admin"
    )


@pytest.mark.parametrize("permission", ["write", "maintain", "admin"])
def test_write_access_is_enough_for_a_stage_without_promoters(permission: str) -> None:
    assert _refusal(Asker("dana", permission), promoters=[]) is None


def test_writer_outside_the_promoters_is_refused_with_the_list() -> None:
    reason = _refusal(Asker("dana", "write"))
    assert reason is not None
    assert "only `@acme/release-managers`, `Carol` may promote into `prod`" in reason
    assert "on main" in reason


def test_outside_collaborator_on_a_fork_pull_request_is_refused() -> None:
    reason = _refusal(
        Asker("outsider", "write", "COLLABORATOR", frozenset({"acme/release-managers"})), fork=True
    )
    assert reason is not None and "comes from a fork" in reason
    member = Asker("rita", "write", "MEMBER", frozenset({"acme/release-managers"}))
    assert _refusal(member, fork=True) is None


def test_read_only_commands_need_no_permission() -> None:
    assert (
        refusal(
            Command("status"),
            Asker("x", "none"),
            repo="a/b",
            promoters=[],
            on_fork_pull=True,
            default_branch="main",
        )
        is None
    )


# ---- which freight -------------------------------------------------------------------------------
def test_freight_is_picked_by_id_tag_or_image_pairs() -> None:
    candidates = [NEW, OLD]
    assert pick(Selector(OLD.id), candidates) == OLD
    assert pick(Selector("1.4.2"), candidates) == OLD
    assert pick(Selector(images=(("worker", "1.5.1"),)), candidates) == NEW
    assert pick(Selector(images=(("acme/web", "1.5.0"), ("worker", "1.5.0"))), candidates) is None
    assert pick(Selector("0" * 12), candidates) is None
