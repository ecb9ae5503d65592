"""The freight ledger: which freight each stage ran and what its verification said, as plain data.

The ledger lives on GitHub as Deployments (docs.github.com/en/rest/deployments), so it is what GitHub's
Environments page, the PR timeline and DORA tools already read, and a restart loses nothing:

- one Deployment per verification: ``environment`` = the stage's name, ``ref`` = the deploy commit's sha,
  ``task`` = ``ferry:promote``, ``ferry:rollback`` or ``ferry:baseline`` (what a stage ran before Ferry's
  first promotion), ``payload`` = :func:`deployment_payload`;
- its statuses: ``in_progress`` on sync, ``success``/``failure`` on the verdict, ``inactive`` once
  superseded (GitHub sets that itself on older deployments of the environment when a newer one succeeds).

Because ``inactive`` overwrites the visible state, the outcome of an entry is read from its whole status
list (:func:`entry_from_deployment`), never from the newest status alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from bot.core.freight import Freight, FreightImage

TASK_PROMOTE = "ferry:promote"
TASK_ROLLBACK = "ferry:rollback"
TASK_BASELINE = "ferry:baseline"
LEDGER_TASKS = (TASK_PROMOTE, TASK_ROLLBACK, TASK_BASELINE)
PAYLOAD_VERSION = 1

Outcome = Literal["pending", "in_progress", "verified", "failed"]


@dataclass(frozen=True)
class LedgerEntry:
    """One verification of one freight in one stage (one GitHub Deployment).

    ``outcome`` is the verdict: ``verified`` once any status said ``success``, ``failed`` once one said
    ``failure`` or ``error`` (whichever came last wins), else ``in_progress``/``pending``. Times are UTC.
    ``pushed_at`` is when the freight's newest image was pushed (registry ``created``) or, when the
    registry does not say, when Ferry discovered it; it is the start of DORA lead time.
    """

    deployment_id: int
    stage: str
    sha: str
    task: str
    freight: Freight
    created_at: datetime
    outcome: Outcome
    decided_at: datetime | None = None
    pushed_at: datetime | None = None
    creator: str | None = None
    active: bool = True  # False once its newest status is ``inactive`` (superseded)

    @property
    def verified(self) -> bool:
        return self.outcome == "verified"

    @property
    def failed(self) -> bool:
        return self.outcome == "failed"


def deployment_payload(freight: Freight, *, pushed_at: datetime | None = None) -> dict[str, Any]:
    """The ``payload`` of a ledger Deployment: ``{"ferry": 1, "freight": {"id", "warehouse", "images":
    [{"image", "tag", "digest"}]}, "pushed_at": ISO-8601 | None}``."""
    return {
        "ferry": PAYLOAD_VERSION,
        "freight": {
            "id": freight.id,
            "warehouse": freight.warehouse,
            "images": [i.as_dict() for i in freight.images],
        },
        "pushed_at": pushed_at.isoformat() if pushed_at else None,
    }


def entry_from_deployment(
    deployment: Mapping[str, Any], statuses: Sequence[Mapping[str, Any]]
) -> LedgerEntry | None:
    """A ledger entry from a Deployment and its statuses (any order), as GitHub's REST API returns them.

    Returns None for deployments Ferry did not write (another task, or a payload without ``ferry``), so
    other tools' deployments in the same environments are ignored rather than misread.
    """
    task = deployment.get("task")
    payload = deployment.get("payload")
    if task not in LEDGER_TASKS or not isinstance(payload, Mapping) or "ferry" not in payload:
        return None
    raw = payload.get("freight")
    if not isinstance(raw, Mapping):
        return None
    images = tuple(
        FreightImage(str(i["image"]), str(i["tag"]), i.get("digest"))
        for i in raw.get("images", ())
        if isinstance(i, Mapping) and "image" in i and "tag" in i
    )
    freight = Freight(warehouse=str(raw.get("warehouse", "")), images=images)
    outcome: Outcome = "pending"
    decided_at: datetime | None = None
    active = True
    for status in sorted(statuses, key=lambda s: (str(s.get("created_at", "")), int(s.get("id", 0)))):
        state = status.get("state")
        active = state != "inactive"
        if state == "in_progress" and outcome == "pending":
            outcome = "in_progress"
        elif state in ("success", "failure", "error"):
            outcome = "verified" if state == "success" else "failed"
            decided_at = _time(status.get("created_at"))
    pushed = payload.get("pushed_at")
    creator = deployment.get("creator")
    return LedgerEntry(
        deployment_id=int(deployment["id"]),
        stage=str(deployment.get("environment", "")),
        sha=str(deployment.get("sha", "")),
        task=str(task),
        freight=freight,
        created_at=_time(deployment.get("created_at")) or _EPOCH,
        outcome=outcome,
        decided_at=decided_at,
        pushed_at=_time(pushed) if isinstance(pushed, str) else None,
        creator=creator.get("login") if isinstance(creator, Mapping) else None,
        active=active,
    )


_EPOCH = datetime.fromtimestamp(0, UTC)


def _time(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
