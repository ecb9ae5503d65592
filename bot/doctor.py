"""``ferry doctor``'s judgement: plain facts about one installation in, one ``Check`` per line out. Pure.

``bot.doctor_github`` judges the App, its webhook and branch protection; ``bot.doctor_pipeline`` the
pipeline config, each stage's files, Argo CD applications and registries. The facts are gathered by
``bot.doctor_facts``; what each check compares them with comes from the code Ferry runs (the App
manifest's table, the config loader and its file checks, the stage view, tag selection, the gate's
status context). Each failing check says what to do about it. This module holds the ``Check`` and the
report (a table, or JSON).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal

State = Literal["ok", "warn", "fail"]
SYMBOLS: Final[Mapping[str, str]] = {"ok": "✔", "warn": "!", "fail": "✘"}


@dataclass(frozen=True)
class Check:
    """One line of the report: ``name`` what was checked, ``detail`` what was found, ``fix`` what to do."""

    name: str
    state: State
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


# ---- the report ------------------------------------------------------------------------------------
def failed(checks: Sequence[Check]) -> bool:
    return any(check.state == "fail" for check in checks)


def counts(checks: Sequence[Check]) -> dict[str, int]:
    return {state: sum(1 for c in checks if c.state == state) for state in ("ok", "warn", "fail")}


def render_table(repo: str, checks: Sequence[Check]) -> str:
    """One line per check (symbol, name, what was found), the fix under each failure or warning."""
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"ferry doctor {repo}"]
    for check in checks:
        lines.append(f"{SYMBOLS[check.state]} {check.name.ljust(width)}  {check.detail}")
        if check.fix:
            lines.append(f"  {' ' * width}  fix: {check.fix}")
    tally = counts(checks)
    lines.append(f"{tally['ok']} ok, {tally['warn']} warnings, {tally['fail']} failed")
    return "\n".join(lines) + "\n"


def render_json(repo: str, checks: Sequence[Check]) -> str:
    """``{"repository", "ok", "counts": {ok, warn, fail}, "checks": [{name, state, detail, fix}]}``."""
    report = {
        "repository": repo,
        "ok": not failed(checks),
        "counts": counts(checks),
        "checks": [asdict(check) for check in checks],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
