"""What Argo CD answers a sync, told apart: the outcomes Ferry acts on and the words it reports them in.

Argo CD's refusals are told apart by their gRPC code and message (argo-cd server/application/application.go
``Sync``, util/argo/argo.go ``SetAppOperation``, util/rbac ``EnforceErr``; messages may come wrapped, e.g.
"error setting app operation: another operation is already in progress"):

- code 9 (HTTP 400) "another operation is already in progress": ours by ``infos`` (adopted) or busy;
- code 9 "Cannot sync to <rev>: auto-sync currently set to <target>": the app syncs by itself, so Ferry asks
  for a refresh instead (never reported as busy);
- code 9 "application is deleting": deleting;
- code 7 (HTTP 403) "cannot sync: blocked by sync window": blocked, with the window ``…/syncwindows`` names;
  "cannot sync: invalid sync window: <error>" (a window whose schedule does not parse blocks every sync):
  blocked, with Argo CD's message;
- code 7 "permission denied: applications, sync, <project>/<app>, …": the token lacks that RBAC rule;
- a bare "permission denied" (403, no ``project`` given) or 404 (``project`` given): no such app, or the token
  may not ``get`` it (``getAppEnforceRBAC`` hides which).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

OPERATION_IN_PROGRESS = "another operation is already in progress"
AUTO_SYNC_REFUSAL = "auto-sync currently set to"
APP_DELETING = "application is deleting"
SYNC_WINDOW = "blocked by sync window"
INVALID_WINDOW = "invalid sync window"
PERMISSION_DENIED = "permission denied"

MSG_STARTED = 'sync of "{app}" to its targetRevision {target} started'
MSG_REFRESHED = '"{app}" refreshed ({kind}): Argo CD compared it with the branch head now'
MSG_AUTO_SYNC = '"{app}" syncs by itself ({detail}); asked for a refresh instead'
MSG_ADOPTED = 'sync of "{app}" already running for promotion {promotion}; adopted it'
MSG_BUSY = 'another operation is running on "{app}" (by {who}, revision {revision}); retry later'
MSG_MISSING = 'app "{app}" not found on Argo CD server "{server}" (or the token may not get it)'
MSG_DELETING = (
    'app "{app}" is being deleted in Argo CD; recreate it, or remove it from the stage\'s argocd apps'
)
MSG_BLOCKED = 'sync of "{app}" blocked by sync window {window}'
MSG_FORBIDDEN = (
    'Argo CD token may not {rule} "{app}": add "p, <role>, applications, {rule}, {object}, allow" '
    "to argocd-rbac-cm"
)
MSG_NOTHING = 'nothing to ask of "{app}": {why}'
MSG_OVERTAKEN = 'sync of "{app}" not retried: its commit is no longer the stage\'s newest deploy commit'

SyncOutcome = Literal[
    "started",
    "refreshed",
    "adopted",
    "busy",
    "missing",
    "forbidden",
    "deleting",
    "blocked",
    "nothing",
    "overtaken",
]
AskedMode = Literal["refresh", "sync", "none"]
# Outcomes a timeline shows as one word; the others carry Argo CD's reason (who is busy, which window, ...).
ROUTINE_OUTCOMES: frozenset[SyncOutcome] = frozenset({"started", "refreshed"})


@dataclass(frozen=True)
class SyncResult:
    """``started``: our sync was accepted; ``refreshed``: Argo CD re-compared (auto-sync applies the head);
    ``adopted``: ours was already running; ``busy``: someone else's operation runs (retry later);
    ``missing``: no such app, or the token may not get it; ``forbidden``: the token lacks an RBAC rule (the
    message names it); ``deleting``: the app is being deleted; ``blocked``: a sync window blocks syncs;
    ``nothing``: the app needed nothing (pinned, running, or already there); ``overtaken``: a sync that failed
    was not sent again, its commit being no longer the stage's newest. ``mode`` is what was asked."""

    outcome: SyncOutcome
    message: str
    mode: AskedMode = "sync"

    @property
    def refused(self) -> bool:
        """Argo CD will not act on this until a person changes something (RBAC, the app)."""
        return self.outcome in ("forbidden", "deleting")


def denied_rule(text: str) -> tuple[str, str | None] | None:
    """(``sync`` or ``override``, ``<project>/<app>``) from "permission denied: applications, sync, p/a"."""
    _, found, rest = text.partition(PERMISSION_DENIED + ":")
    if not found:
        return None
    parts = [part.strip() for part in rest.split(",")]
    if len(parts) < 2 or parts[0] != "applications" or not parts[1]:
        return None
    target = parts[2] if len(parts) > 2 and "/" in parts[2] else None
    return parts[1], target


def error_detail(response: httpx.Response) -> str | None:
    """Argo CD's message from a grpc-gateway error body ``{"error", "code", "message"}``, if any."""
    body = _error_body(response)
    message, error = body.get("message"), body.get("error")
    return (message if isinstance(message, str) and message else None) or (
        error if isinstance(error, str) and error else None
    )


def error_text(response: httpx.Response) -> str:
    """The error body's ``error`` and ``message``, lower case, for telling refusals apart."""
    body = _error_body(response)
    return f"{body.get('error') or ''} {body.get('message') or ''}".lower()


def _error_body(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}
