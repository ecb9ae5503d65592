"""What `ferry/config` and the review comment say about a pull request's config, pure."""

from __future__ import annotations

from bot.core.config_review import REVIEW_MARKER, config_verdict, fixed_comment, review_comment
from bot.errors import Problem

FILE = ".github/ferry.yml"
PROBLEMS = [
    Problem(FILE, 21, 17, "stages.dev.auto_merge", 'expected true or false, got "perhaps"'),
    Problem(FILE, 49, 17, "stages.prod.auto_merge", "expected true or false, got a|b"),
]


def test_a_failure_names_the_first_problem_by_line_and_column_and_counts_the_rest() -> None:
    state, description = config_verdict(None, PROBLEMS) or ("", "")
    assert state == "failure"
    assert description == (
        f'{FILE}:21:17: stages.dev.auto_merge: expected true or false, got "perhaps" (+1 more)'
    )


def test_the_review_comment_lists_every_problem_with_where_field_and_fix() -> None:
    body = review_comment("0123456789abcdef", PROBLEMS)
    assert "2 problem(s)" in body and "0123456" in body and body.rstrip().endswith(REVIEW_MARKER)
    assert f"| `{FILE}:21:17` | `stages.dev.auto_merge` |" in body
    assert "got a\\|b |" in body  # a pipe in a message does not break the table
    assert "push to this branch" in body


def test_the_fixed_comment_keeps_the_marker_so_it_is_edited_again_not_repeated() -> None:
    body = fixed_comment("fedcba9876543210", "Valid: 1 warehouse(s), stages dev")
    assert "is fixed" in body and "fedcba9" in body and REVIEW_MARKER in body
