"""`ferry sandbox --scenario rollback`: a broken release fails in dev, dev rolls itself back to the last
verified freight and stays there while the broken freight is still the newest, and a fixed release then
reaches prod; the `--json` object carries the invariants and the freight ledger."""

from __future__ import annotations

import json

import pytest

from bot.cli import main
from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE, TASK_ROLLBACK
from bot.sandbox.scenario_rollback import BROKEN, FIXED


def test_rollback_scenario_rolls_dev_back_keeps_the_broken_release_out_and_ships_the_fix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["sandbox", "--scenario", "rollback", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result.get("error") is None, result.get("error")
    assert code == 0 and result["ok"] is True
    assert all(i["count"] == i["target"] for i in result["invariants"].values()), result["invariants"]
    for stage in result["stages"].values():
        assert stage["health"] == "success" and set(stage["images"].values()) == {FIXED}
    dev = result["ledger"]["dev"]  # newest first
    story = [(e["task"], e["tags"], e["outcome"]) for e in reversed(dev)]
    assert story == [
        (TASK_BASELINE, ["1.4.2"], "verified"),
        (TASK_PROMOTE, [BROKEN], "failed"),
        (TASK_ROLLBACK, ["1.4.2"], "verified"),
        (TASK_PROMOTE, [FIXED], "verified"),
    ]
    # Each success supersedes the one before (GitHub marks it inactive); the failure stays visible as one.
    assert [e["active"] for e in dev] == [True, False, True, False]
