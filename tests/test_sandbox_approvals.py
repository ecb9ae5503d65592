"""``ferry sandbox --scenario approvals``: an unapproved merge into prod is held and reported, a promoter's
approval opens the gate (the whole story through Ferry's real code path, stand-ins on loopback)."""

from __future__ import annotations

from bot.sandbox.run import run_scenario


async def test_an_unapproved_prod_merge_is_held_and_a_promoters_approval_opens_the_gate() -> None:
    result = await run_scenario("approvals")
    assert result["ok"] is True, result.get("error")
    kinds = [(e["kind"], e["stage"], e["detail"]) for e in result["events"]]
    held = [d for k, s, d in kinds if k == "health_verdict" and s == "prod" and d.startswith("failure")]
    assert held == [
        "failure: Not verified: merged by @bob without an approving review from @acme/release-managers; "
        "shop-prod-us syncs on its own"
    ]
    # The unapproved merge asked Argo CD for nothing; the approved one synced the manual app.
    merges = [i for i, (k, s, _) in enumerate(kinds) if k == "pr_merged" and s == "prod"]
    between = [d for k, s, d in kinds[merges[0] : merges[1]] if k == "sync_requested" and s == "prod"]
    assert between == []
    gates = [d for k, s, d in kinds if k == "gate_set" and s == "prod"]
    assert gates[-1].startswith("success: Approved by @rita")
    assert result["stages"]["prod"]["health"] == "success"
