"""The ledger's reading of GitHub Deployments: outcome from the whole status list, foreign ones ignored."""

from __future__ import annotations

from datetime import UTC, datetime

from bot.core.freight import Freight, FreightImage
from bot.core.ledger import TASK_PROMOTE, deployment_payload, entry_from_deployment

FREIGHT = Freight("web", (FreightImage("ghcr.io/acme/web", "1.5.0", "sha256:" + "a" * 64),))


def _deployment(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "id": 7,
        "sha": "c" * 40,
        "environment": "dev",
        "task": TASK_PROMOTE,
        "payload": deployment_payload(FREIGHT, pushed_at=datetime(2026, 1, 2, 3, 4, tzinfo=UTC)),
        "created_at": "2026-01-02T03:10:00Z",
        "creator": {"login": "ferry[bot]"},
    }
    return base | over


def _status(n: int, state: str, minute: int) -> dict[str, object]:
    return {"id": n, "state": state, "created_at": f"2026-01-02T03:{minute:02d}:00Z"}


def test_success_then_inactive_reads_as_verified_because_github_deactivates_superseded_deployments() -> None:
    entry = entry_from_deployment(
        _deployment(), [_status(3, "inactive", 30), _status(1, "in_progress", 11), _status(2, "success", 14)]
    )
    assert entry is not None
    assert entry.verified and entry.freight.id == FREIGHT.id and entry.stage == "dev"
    assert entry.decided_at == datetime(2026, 1, 2, 3, 14, tzinfo=UTC)
    assert entry.pushed_at == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def test_failure_after_in_progress_reads_as_failed_and_no_status_as_pending() -> None:
    failed = entry_from_deployment(_deployment(), [_status(1, "in_progress", 11), _status(2, "failure", 20)])
    assert failed is not None and failed.failed
    pending = entry_from_deployment(_deployment(), [])
    assert pending is not None and pending.outcome == "pending"


def test_deployments_written_by_other_tools_are_not_part_of_the_ledger() -> None:
    assert entry_from_deployment(_deployment(task="deploy"), []) is None
    assert entry_from_deployment(_deployment(payload={"image": "web"}), []) is None
