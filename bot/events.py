"""Timeline events: what Ferry did, for logs, metrics and the sandbox's narrated timeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

# Event kinds (the sandbox's --json `events[].kind` values; a contract: add, never rename).
FREIGHT_DISCOVERED = "freight_discovered"
PR_OPENED = "pr_opened"
PR_REBUILT = "pr_rebuilt"
PR_REBUILD_REFUSED = "pr_rebuild_refused"  # a person pushed to a Ferry branch: kept, not rebuilt
PR_SUPERSEDED = "pr_superseded"
PR_MERGED = "pr_merged"
SYNC_REQUESTED = "sync_requested"
HEALTH_VERDICT = "health_verdict"
GATE_SET = "gate_set"
CONFIG_STATUS = "config_status"
COMMENT_POSTED = "comment_posted"
COMMAND_ACCEPTED = "command_accepted"
COMMAND_REFUSED = "command_refused"
PROMOTION_DECLINED = "promotion_declined"  # a person closed a promotion unmerged: Ferry does not reopen it
LEDGER_RECORDED = "ledger_recorded"  # a GitHub Deployment (or its status) written to the freight ledger


# The X-GitHub-Delivery id of the webhook whose handling (or whose reconcile pass) is running, "" for the
# timer and start-up. Set by the webhook router and by the reconciler before each pass; read when an
# event is made, so a decision in the log names the delivery that caused it.
DELIVERY: ContextVar[str] = ContextVar("ferry_delivery", default="")


def current_delivery() -> str:
    return DELIVERY.get()


@dataclass(frozen=True)
class Event:
    kind: str
    repo: str
    stage: str
    detail: str
    at: float = field(default_factory=time.time)
    freight: str = ""  # the id of the freight the event is about, when known
    delivery: str = field(default_factory=current_delivery)


EventSink = Callable[[Event], None]


def discard(_: Event) -> None:
    """The sink used when nobody listens."""
