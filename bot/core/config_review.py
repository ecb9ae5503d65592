"""What `ferry/config` and the review comment say about ``.github/ferry.yml`` at a commit, pure.

The same verdict serves the default branch (after a merge) and a pull request's head (before it): a
success names what the config defines, a failure names the first problem (``file:line:column``) and how
many more there are. On a pull request with more than one problem, one comment lists them all; it is
found again by ``REVIEW_MARKER`` and edited (never posted twice), and says so once the config is fixed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from bot.core.config import CONFIG_PATH, PipelineConfig
from bot.core.pipeline import stage_order
from bot.core.text import fit_description
from bot.errors import Problem

REVIEW_MARKER = "<!-- ferry:config-review -->"
# A pull request that leaves the config alone gets a success too, so that branch protection can require
# `ferry/config` on every pull request (GitHub cannot require a status only for some paths).
UNCHANGED = f"Unchanged: this pull request does not change {CONFIG_PATH}"
HOW_TO_FIX = (
    "Fix each problem and push to this branch; Ferry checks every new head commit and edits this comment. "
    "`ferry validate` finds the same problems locally."
)


# What the default branch's protection says of `ferry/gate` (``bot.github.reviews.gate_rule``): required;
# missing (protected without it); unprotected; forbidden (403: the App lacks the optional
# ``administration: read``, so it cannot tell).
GateRule = Literal["required", "missing", "unprotected", "forbidden"]


def gate_warning(rule: GateRule | None, branch: str) -> str:
    """The words a valid config's `ferry/config` adds when ``branch`` does not require `ferry/gate`: without
    it anyone with write access merges a promotion whose gate (upstream check, approval) is not green."""
    if rule == "missing":
        return f"; warning: {branch} does not require ferry/gate"
    if rule == "unprotected":
        return f"; warning: {branch} is not protected, so ferry/gate is not required"
    if rule == "forbidden":
        return f"; cannot read {branch}'s protection (optional administration: read) to check ferry/gate"
    return ""


def config_verdict(
    config: PipelineConfig | None,
    problems: Sequence[Problem],
    *,
    gate_rule: GateRule | None = None,
    branch: str = "main",
) -> tuple[str, str] | None:
    """``(state, description)`` of `ferry/config` for a config and its problems; None: nothing to say.

    A failure: ``"<file>:<line>:<column>: <field>: <message> (+N more)"``, cut to GitHub's 140 characters.
    A success warns (``gate_warning``) when ``branch`` does not require `ferry/gate`; it stays a success.
    """
    if problems:
        more = len(problems) - 1
        suffix = f" (+{more} more)" if more else ""
        return "failure", fit_description(f"{problems[0]}{suffix}")
    if config is None:
        return None
    valid = f"Valid: {len(config.warehouses)} warehouse(s), stages {' → '.join(stage_order(config))}"
    return "success", fit_description(valid + gate_warning(gate_rule, branch))


def review_comment(sha: str, problems: Sequence[Problem]) -> str:
    """The pull request comment listing every problem of the config at ``sha`` (markdown, with the marker)."""
    rows = "\n".join(f"| `{_where(p)}` | `{p.field or '-'}` | {_cell(p.message)} |" for p in problems)
    return (
        f"**`{CONFIG_PATH}` has {len(problems)} problem(s)** at {sha[:7]}: Ferry would promote nothing "
        "from this config.\n\n"
        f"| Where | Field | What is wrong and how to fix it |\n|---|---|---|\n{rows}\n\n"
        f"{HOW_TO_FIX}\n\n{REVIEW_MARKER}\n"
    )


def fixed_comment(sha: str, description: str) -> str:
    """The review comment once the config at ``sha`` is valid (or no longer changed)."""
    return f"**`{CONFIG_PATH}` is fixed** at {sha[:7]}: {description}\n\n{REVIEW_MARKER}\n"


def _where(problem: Problem) -> str:
    return f"{problem.file}:{problem.line}:{problem.column or 1}" if problem.line else problem.file


def _cell(text: str) -> str:
    return " ".join(text.replace("|", "\\|").split())
