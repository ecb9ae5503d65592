"""The GitHub App manifest asks for exactly what Ferry uses: every event the router acts on, and the
permissions behind the adapter's writes."""

from __future__ import annotations

import json
from pathlib import Path

from bot.webhooks import TRIGGERING_EVENTS

MANIFEST = Path(__file__).resolve().parent.parent / ".github" / "app-manifest.json"


def test_manifest_subscribes_to_every_event_that_triggers_a_pass() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert set(manifest["default_events"]) == set(TRIGGERING_EVENTS)


def test_manifest_grants_the_writes_promotions_need() -> None:
    permissions = json.loads(MANIFEST.read_text())["default_permissions"]
    for scope in ("contents", "pull_requests", "issues", "statuses"):
        assert permissions[scope] == "write", scope
    assert permissions["members"] == "read"  # promoters given as @org/team
