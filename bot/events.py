"""Timeline events: what Ferry did, for logs, metrics and the sandbox's narrated timeline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

# Event kinds (the sandbox's --json `events[].kind` values; a contract: add, never rename).
FREIGHT_DISCOVERED = "freight_discovered"
PR_OPENED = "pr_opened"
PR_REBUILT = "pr_rebuilt"
PR_SUPERSEDED = "pr_superseded"
PR_MERGED = "pr_merged"
SYNC_REQUESTED = "sync_requested"
HEALTH_VERDICT = "health_verdict"
GATE_SET = "gate_set"
CONFIG_STATUS = "config_status"
COMMENT_POSTED = "comment_posted"
COMMAND_ACCEPTED = "command_accepted"
COMMAND_REFUSED = "command_refused"


@dataclass(frozen=True)
class Event:
    kind: str
    repo: str
    stage: str
    detail: str
    at: float = field(default_factory=time.time)


EventSink = Callable[[Event], None]


def discard(_: Event) -> None:
    """The sink used when nobody listens."""
