"""The GitHub App manifest asks for exactly what Ferry uses: every event the router acts on, the permissions
behind the adapter's writes, and nothing else; the file in .github/ and the table in docs/install.md are
generated from the one table in bot/app_manifest.py."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bot.app_manifest import (
    EVENTS,
    EXAMPLE_URL,
    PERMISSIONS,
    WEBHOOK_PATH,
    build_manifest,
    manifest_json,
    missing_permissions,
    render_reference,
    unused_permissions,
)
from bot.server import WEBHOOK_PATH as SERVER_WEBHOOK_PATH
from bot.webhooks import TRIGGERING_EVENTS

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / ".github" / "app-manifest.json"
INSTALL = ROOT / "docs" / "install.md"


def test_the_manifest_file_is_the_generated_manifest() -> None:
    expected = manifest_json(build_manifest(EXAMPLE_URL))
    assert MANIFEST.read_text() == expected, (
        "regenerate: ferry app manifest --url https://ferry.example.com > .github/app-manifest.json"
    )


def test_manifest_subscribes_to_every_event_that_triggers_a_pass_and_no_other() -> None:
    manifest = json.loads(MANIFEST.read_text())
    assert set(manifest["default_events"]) == set(TRIGGERING_EVENTS)


def test_every_event_has_the_permission_github_requires_for_it() -> None:
    permissions = build_manifest(EXAMPLE_URL, optional=False)["default_permissions"]
    for event in EVENTS:
        assert event.permission in permissions, event.name


def test_manifest_grants_the_writes_promotions_and_the_ledger_need() -> None:
    permissions = json.loads(MANIFEST.read_text())["default_permissions"]
    for scope in ("contents", "pull_requests", "issues", "statuses", "deployments"):
        assert permissions[scope] == "write", scope
    assert permissions["members"] == "read"  # promoters given as @org/team
    assert permissions["administration"] == "read"  # optional: branch protection is read, never written
    for unused in ("checks", "packages"):  # only for their events: read, never write
        assert permissions[unused] == "read"


def test_the_only_optional_permission_is_administration_read() -> None:
    assert [(p.name, p.level) for p in PERMISSIONS if p.optional] == [("administration", "read")]
    assert "administration" not in build_manifest(EXAMPLE_URL, optional=False)["default_permissions"]


def test_webhooks_go_to_the_path_ferry_serves() -> None:
    assert WEBHOOK_PATH == SERVER_WEBHOOK_PATH
    hook = build_manifest("https://ferry.example.com/")["hook_attributes"]
    assert hook == {"url": "https://ferry.example.com/webhooks/github", "active": True}


def test_a_lower_level_is_missing_and_a_higher_one_is_more_than_ferry_uses() -> None:
    granted = dict(build_manifest(EXAMPLE_URL)["default_permissions"])
    assert missing_permissions(granted, optional=False) == []
    granted["deployments"] = "read"
    granted["checks"] = "write"
    granted["actions"] = "read"
    del granted["administration"]
    assert [p.name for p in missing_permissions(granted, optional=False)] == ["deployments"]
    assert [p.name for p in missing_permissions(granted, optional=True)] == ["administration"]
    assert unused_permissions(granted) == {"actions": "read", "checks": "write"}


def test_install_guide_justifies_each_permission_and_event_from_the_same_table() -> None:
    text = INSTALL.read_text()
    found = re.search(r"<!-- app-permissions:start[^>]*-->\n(.*?)<!-- app-permissions:end -->", text, re.S)
    assert found, "docs/install.md lacks the generated permission table"
    assert found.group(1) == render_reference(), "regenerate docs/install.md's permission table"
