"""Ferry's decisions in the log: every domain event (``bot.events``) as one structured INFO line.

Each line carries ``kind`` (the event kind, as in the sandbox's ``--json``), ``repository``, ``stage``,
``freight`` and ``delivery`` (the X-GitHub-Delivery id of the webhook that caused it; null for the timer
and start-up), so ``grep`` on a delivery id from GitHub's "Recent Deliveries" finds what Ferry did about
it. The formatting and the scrubbing of secrets are ``bot.logs``'s.
"""

from __future__ import annotations

from typing import Final

from bot import events
from bot.core.snapshot import Snapshot
from bot.logs import get_logger

log = get_logger("ferry.events")

MESSAGES: Final = {
    events.FREIGHT_DISCOVERED: "freight discovered",
    events.PR_OPENED: "promotion PR opened",
    events.PR_REBUILT: "promotion PR rebuilt",
    events.PR_REBUILD_REFUSED: "promotion PR not rebuilt: a person pushed to its branch",
    events.PR_SUPERSEDED: "promotion PR superseded",
    events.PR_MERGED: "promotion PR merged",
    events.SYNC_REQUESTED: "sync requested",
    events.HEALTH_VERDICT: "health verdict",
    events.GATE_SET: "gate set",
    events.CONFIG_STATUS: "config status",
    events.COMMENT_POSTED: "comment posted",
    events.COMMAND_ACCEPTED: "command accepted",
    events.COMMAND_REFUSED: "command refused",
}


def log_event(event: events.Event) -> None:
    """Write ``event`` to the ``ferry.events`` logger at INFO; unknown fields are null, never left out."""
    log.info(
        MESSAGES.get(event.kind, event.kind.replace("_", " ")),
        extra={
            "kind": event.kind,
            "repository": event.repo,
            "stage": event.stage or None,
            "freight": event.freight or None,
            "delivery": event.delivery or None,
            "detail": event.detail,
        },
    )


def logged(sink: events.EventSink) -> events.EventSink:
    """A sink that logs each event, then hands it to ``sink`` (the sandbox's timeline, or nothing)."""

    def both(event: events.Event) -> None:
        log_event(event)
        sink(event)

    return both


def freight_at(snapshot: Snapshot | None, *, sha: str = "", number: int = 0) -> str:
    """The freight id a commit or PR of the snapshot carries: an open PR (by head commit or number) or a
    stage's deploy commit brought by a promotion; "" when the snapshot does not say."""
    if snapshot is None:
        return ""
    for pr in snapshot.open_prs:
        if (sha and pr.head_sha == sha) or (number and pr.number == number):
            return pr.freight_id
    for deploy in snapshot.deploys.values():
        if sha and deploy.commit == sha and deploy.promotion is not None:
            return deploy.promotion.freight_id
    return ""
