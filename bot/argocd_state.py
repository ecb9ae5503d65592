"""Argo CD's JSON reduced to what Ferry judges: an ``AppState`` for the source that deploys from the GitOps
repository, and the sync window that blocks an app now.

Shapes follow Argo CD's ``v1alpha1Application`` (pkg/apis/application/v1alpha1/types.go). A multi-source app
(``spec.sources``) reports ``status.sync.revisions[]``, ``operationState.syncResult.revisions[]`` and
``operation.sync.revisions[]`` in source order, so Ferry reads the position of the source whose ``repoURL``
is the GitOps repository, never the first element blindly (that is often a Helm chart's version).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from bot.core.argo_app import AppState

HEALTHY = "Healthy"
_SCP_URL = re.compile(r"^[\w.-]+@([\w.-]+):(.+)$")  # git@github.com:o/r.git


def repo_path(url: str) -> str:
    """``o/r`` for ``https://github.com/o/r(.git)``, ``git@github.com:o/r.git``, ``ssh://git@host/o/r.git``;
    lower case, so URLs people write differently compare equal."""
    text = url.strip()
    scp = _SCP_URL.match(text)
    if scp and "://" not in text:
        path = scp.group(2)
    else:
        path = text.split("://", 1)[-1]
        path = path.split("/", 1)[1] if "/" in path else ""
    path = path.strip("/").removesuffix(".git").strip("/")
    return path.lower()


def same_repository(url: str, repo: str) -> bool:
    """Whether ``url`` names the GitHub repository ``repo`` (``owner/name``) on any host."""
    path = repo_path(url)
    wanted = repo.strip("/").lower()
    return path == wanted or path.endswith("/" + wanted)


def _pick_source(spec: Mapping[str, Any], repo: str | None) -> tuple[Mapping[str, Any] | None, int | None]:
    """The GitOps repository's source and its 1-based position (None for ``spec.source``)."""
    sources = [s for s in spec.get("sources") or () if isinstance(s, dict)]
    if not sources:
        source = _obj(spec.get("source"))
        if (
            repo is not None
            and "chart" in source
            and not same_repository(_str(source.get("repoURL")) or "", repo)
        ):
            return None, None  # a chart from a Helm repository: nothing of this repository is deployed
        return source, None
    if repo is not None:
        for index, source in enumerate(sources):
            if same_repository(_str(source.get("repoURL")) or "", repo):
                return source, index + 1
    git = [(i, s) for i, s in enumerate(sources) if "chart" not in s]
    if len(git) == 1:
        return git[0][1], git[0][0] + 1
    return None, None


def app_state_from_application(
    data: Mapping[str, Any], *, name: str | None = None, repo: str | None = None
) -> AppState:
    """Reduce a ``v1alpha1Application`` (JSON or YAML, any field may be missing) to an AppState.

    ``repo`` (``owner/name``) picks the source to read; without it the single source, or the only Git
    source of a multi-source app, is read.
    """
    metadata = _obj(data.get("metadata"))
    spec = _obj(data.get("spec"))
    status = _obj(data.get("status"))
    sync = _obj(status.get("sync"))
    health = _obj(status.get("health"))
    state = _obj(status.get("operationState"))
    operation = _obj(state.get("operation"))
    sync_result = _obj(state.get("syncResult"))
    requested = data.get("operation")
    initiated = _obj(operation.get("initiatedBy")) or _obj(_obj(requested).get("initiatedBy"))
    who = _str(initiated.get("username")) or ("automated sync" if initiated.get("automated") else None)
    source, position = _pick_source(spec, repo)
    automated = _obj(spec.get("syncPolicy")).get("automated")
    return AppState(
        name=_str(metadata.get("name")) or name or "?",
        sync_status=_str(sync.get("status")),
        sync_revision=_revision(sync, position),
        health_status=_str(health.get("status")),
        health_message=_str(health.get("message")),
        operation_phase=_str(state.get("phase")),
        operation_revision=_revision(sync_result, position)
        or _revision(_obj(operation.get("sync")), position),
        operation_infos=_infos(operation.get("info")),
        operation_started_at=_time(state.get("startedAt")),
        operation_finished_at=_time(state.get("finishedAt")),
        operation_message=_str(state.get("message")),
        reconciled_at=_time(status.get("reconciledAt")),
        unhealthy_resources=_unhealthy(status.get("resources")),
        operation_requested=isinstance(requested, dict),
        requested_infos=_infos(_obj(requested).get("info")),
        operation_initiated_by=who,
        health_since=_time(health.get("lastTransitionTime")),
        images=tuple(i for i in _obj(status.get("summary")).get("images") or () if isinstance(i, str)),
        # ``IsAutomatedSyncEnabled``: automated is set and not explicitly disabled (``enabled: false``).
        automated=isinstance(automated, dict) and automated.get("enabled") is not False,
        operation_automated=bool(initiated.get("automated")),
        target_revision=_str(_obj(source).get("targetRevision")) or "",
        source_position=position,
        source_found=source is not None,
        conditions=_conditions(status.get("conditions")),
        deleting=bool(metadata.get("deletionTimestamp")),
        project=_str(spec.get("project")),
    )


def target_revisions(data: Mapping[str, Any]) -> str:
    """The ``targetRevision`` of each source (``HEAD`` when empty), as Argo CD's sync event lists them."""
    spec = _obj(data.get("spec"))
    sources = [_obj(s) for s in spec.get("sources") or ()] or [_obj(spec.get("source"))]
    return ",".join(_str(s.get("targetRevision")) or "HEAD" for s in sources)


def pod_problems(tree: Mapping[str, Any]) -> tuple[str, ...]:
    """Unhealthy pods of a ``v1alpha1ApplicationTree`` (``GET …/resource-tree``), one line per distinct
    message: a Deployment only says it "exceeded its progress deadline"; its pods say why (gitops-engine's
    pod health reads the containers' waiting reasons, shown as ``info`` "Status Reason")."""
    lines: dict[str, str] = {}
    for node in map(_obj, tree.get("nodes") or ()):
        health = _obj(node.get("health"))
        if node.get("kind") != "Pod" or health.get("status") not in ("Degraded", "Missing"):
            continue
        info = {str(i.get("name")): str(i.get("value")) for i in map(_obj, node.get("info") or ())}
        message = _str(health.get("message")) or info.get("Status Reason") or str(health.get("status"))
        reason = info.get("Status Reason")
        if reason and reason not in message:
            message = f"{message} ({reason})"
        lines.setdefault(message, f"Pod/{node.get('name') or '?'}: {message}")
    return tuple(lines.values())


def blocking_window(response: Mapping[str, Any], *, automated: bool) -> str | None:
    """The sync window that blocks syncs now, from ``GET …/applications/{name}/syncwindows``, or None.

    Argo CD answers ``canSync`` for a manual sync; auto-sync is blocked by any active ``deny`` window, or
    when ``allow`` windows are assigned and none is active (``SyncWindows.CanSync(false)`` in
    pkg/apis/application/v1alpha1/types.go), and Argo CD then only logs "Sync prevented by sync window".
    """
    active = [_obj(w) for w in response.get("activeWindows") or ()]
    assigned = [_obj(w) for w in response.get("assignedWindows") or ()]
    deny = [w for w in active if w.get("kind") == "deny"]
    allows = [w for w in assigned if w.get("kind") == "allow"]
    outside_allow = bool(allows) and not any(w.get("kind") == "allow" for w in active)
    blocked = (bool(deny) or outside_allow) if automated else response.get("canSync") is False
    if not blocked:
        return None
    if deny:
        return "; ".join(_window_text(w) for w in deny)
    if allows:
        return "(outside every allow window: " + "; ".join(_window_text(w) for w in allows) + ")"
    return "(Argo CD gave no detail)"


def _window_text(window: Mapping[str, Any]) -> str:
    return (
        f"{window.get('kind') or '?'} '{window.get('schedule') or '?'}' for {window.get('duration') or '?'}"
    )


def _revision(holder: Mapping[str, Any], position: int | None) -> str | None:
    """``revision``, or for a multi-source app the entry of ``revisions`` at the source's position."""
    revisions = holder.get("revisions")
    if position is not None and isinstance(revisions, list):
        return _str(revisions[position - 1]) if 0 < position <= len(revisions) else None
    return _str(holder.get("revision")) or (None if position is not None else _first(revisions))


def _conditions(value: Any) -> tuple[tuple[str, str], ...]:
    items: Sequence[Any] = value if isinstance(value, list) else ()
    return tuple((str(c.get("type")), str(c.get("message") or "")) for c in map(_obj, items) if c.get("type"))


def _unhealthy(resources: Any) -> tuple[str, ...]:
    lines = []
    for item in resources if isinstance(resources, list) else ():
        resource = _obj(item)
        health = _obj(resource.get("health"))
        state = _str(health.get("status"))
        if state is None or state == HEALTHY:
            continue
        label = f"{resource.get('kind') or '?'}/{resource.get('name') or '?'}"
        lines.append(f"{label}: {_str(health.get('message')) or state}")
    return tuple(lines)


def _obj(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _first(value: Any) -> str | None:
    return _str(value[0]) if isinstance(value, list) and value else None


def _infos(value: Any) -> dict[str, str]:
    items = value if isinstance(value, list) else []
    return {str(i["name"]): str(i.get("value", "")) for i in items if isinstance(i, dict) and "name" in i}


def _time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
