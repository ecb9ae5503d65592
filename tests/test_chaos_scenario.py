"""`ferry sandbox --scenario chaos`: three Ferry replicas under late, reordered and doubled webhooks, lagging
lists, GitHub's secondary limits, eight releases, a person's push to a Ferry branch, a killed Ferry and a
manual sync backwards; every stage ends verified on the newest release and every invariant, counted from the
stand-ins' records, is at its target."""

from __future__ import annotations

import json

import pytest

from bot import events
from bot.cli import main
from bot.sandbox.chaos_invariants import INVARIANTS
from bot.sandbox.scenario_chaos import RELEASES


def test_chaos_ends_verified_on_the_newest_release_with_every_invariant_at_its_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["sandbox", "--scenario", "chaos", "--seed", "1", "--replicas", "3", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert result.get("error") is None, result.get("error")
    assert code == 0 and result["ok"] is True
    assert result["invariants"] == {
        name: {"count": target, "target": target} for name, target in INVARIANTS.items()
    }
    newest = RELEASES[-1]
    for stage in result["stages"].values():
        assert stage["health"] == "success" and set(stage["images"].values()) == {newest}
    told = [event["kind"] for event in result["events"]]
    kinds = (
        "person_pushed",
        "ferry_killed",
        "ferry_restarted",
        "synced_back",
        "synced_forward",
        "secondary_limits",
    )
    for kind in kinds:
        assert kind in told, kind
    drifted = [e for e in result["events"] if e["kind"] == events.HEALTH_VERDICT and "drifted" in e["detail"]]
    assert drifted, "the manual sync backwards was reported"


def test_replicas_must_be_one_or_more(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["sandbox", "--scenario", "chaos", "--replicas", "0"])
    assert "--replicas takes a whole number of Ferry processes, 1 or more, not '0'" in capsys.readouterr().err
