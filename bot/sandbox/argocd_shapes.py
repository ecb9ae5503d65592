"""The Argo CD stand-in's record of each application, and Argo CD's JSON shapes for it.

``App`` and ``Operation`` are what ``bot.sandbox.argocd_standin`` keeps and advances; the functions
here turn them into the bodies Argo CD's API returns (``v1alpha1Application`` with its
``status``, ``operationState``, resources and revision history; the tests check them against
``swagger.json``). Serving them over HTTP, timing operations and reading git stay in the stand-in.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ARGOCD_NAMESPACE = "argocd"
BROKEN_MARKER = "-broken"
IN_CLUSTER = "https://kubernetes.default.svc"

MSG_SYNCED = "successfully synced (all tasks run)"
MSG_PROGRESSING = "Waiting for rollout to finish: 0 of 1 updated replicas are available..."
MSG_BACKOFF = 'Back-off pulling image "{image}": ImagePullBackOff'


@dataclass
class Operation:
    revision: str
    infos: dict[str, str]
    username: str
    started_at: float
    finish_at: float
    prune: bool = False
    sha: str | None = None
    images: tuple[str, ...] | None = None
    error: str | None = None
    finished: bool = False

    @property
    def broken_image(self) -> str | None:
        return next((i for i in self.images or () if BROKEN_MARKER in _tag(i)), None)


@dataclass
class App:
    name: str
    path: str
    created_at: float
    revision: str | None = None
    images: tuple[str, ...] = ()
    health: str = "Missing"
    health_since: float = 0.0
    reconciled_at: float | None = None
    operation: Operation | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    generation: int = 1
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


def application(app: App, repo_url: str, resource_version: int) -> dict[str, Any]:
    """The ``v1alpha1Application`` of ``app``, deployed from the repository at ``repo_url``."""
    operation = app.operation
    running = operation is not None and not operation.finished
    status: dict[str, Any] = {
        "sync": {
            "status": "Synced" if app.revision and not running else "OutOfSync",
            "comparedTo": {"source": _source(app, repo_url), "destination": _destination(app)},
        },
        "health": {"status": "Progressing" if running else app.health},
        "resources": _resources(app, running),
        "summary": {"images": list(app.images)},
        "history": app.history[-10:],
        "sourceType": "Directory",
        "controllerNamespace": ARGOCD_NAMESPACE,
    }
    if app.revision:
        status["sync"]["revision"] = app.revision
    if not running and app.health_since:
        status["health"]["lastTransitionTime"] = _ts(app.health_since)
    if app.reconciled_at is not None:
        status["reconciledAt"] = _ts(app.reconciled_at)
    document: dict[str, Any] = {
        "metadata": {
            "name": app.name,
            "namespace": ARGOCD_NAMESPACE,
            "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{repo_url}#{app.name}")),
            "resourceVersion": str(resource_version),
            "generation": app.generation,
            "creationTimestamp": _ts(app.created_at),
        },
        "spec": {
            "project": "default",
            "source": _source(app, repo_url),
            "destination": _destination(app),
            "syncPolicy": {"syncOptions": ["CreateNamespace=true"]},
        },
        "status": status,
    }
    if operation is not None:
        status["operationState"] = _operation_state(operation)
        if running:
            document["operation"] = _operation(operation)
    return document


def history_entry(app: App, operation: Operation, repo_url: str) -> dict[str, Any]:
    """The ``v1alpha1RevisionHistory`` entry a finished ``operation`` adds to ``app``."""
    return {
        "id": len(app.history),
        "revision": operation.sha,
        "deployStartedAt": _ts(operation.started_at),
        "deployedAt": _ts(operation.finish_at),
        "source": _source(app, repo_url),
        "initiatedBy": _initiator(operation),
    }


def _source(app: App, repo_url: str) -> dict[str, Any]:
    return {"repoURL": repo_url, "path": app.path, "targetRevision": "HEAD"}


def _ts(moment: float) -> str:
    """Argo CD's v1Time: RFC 3339, whole seconds, UTC."""
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _operation_state(operation: Operation) -> dict[str, Any]:
    state: dict[str, Any] = {
        "operation": _operation(operation),
        "phase": "Running",
        "message": "one or more tasks are running",
        "startedAt": _ts(operation.started_at),
    }
    if operation.finished:
        state["finishedAt"] = _ts(operation.finish_at)
        state["phase"] = "Failed" if operation.error else "Succeeded"
        state["message"] = operation.error or MSG_SYNCED
    if operation.sha and operation.finished and not operation.error:
        state["syncResult"] = {"revision": operation.sha, "resources": _results(operation)}
    return state


def _resources(app: App, running: bool) -> list[dict[str, Any]]:
    health: dict[str, Any] = {"status": "Healthy"}
    if running:
        health = {"status": "Progressing", "message": MSG_PROGRESSING}
    elif app.health == "Degraded":
        broken = next((i for i in app.images if BROKEN_MARKER in _tag(i)), "?")
        health = {"status": "Degraded", "message": MSG_BACKOFF.format(image=broken)}
    elif app.health == "Missing":
        health = {"status": "Missing"}
    sync = "OutOfSync" if running or not app.revision else "Synced"
    return [
        {"version": "v1", "kind": "Service", "namespace": app.name, "name": app.name, "status": sync,
         "health": {"status": "Healthy" if app.revision else "Missing"}},
        {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": app.name, "name": app.name,
         "status": sync, "health": health},
    ]  # fmt: skip


def _results(operation: Operation) -> list[dict[str, Any]]:
    return [
        {"group": "apps", "version": "v1", "kind": "Deployment", "name": "workload", "status": "Synced",
         "message": "deployment.apps/workload configured", "syncPhase": "Sync", "hookPhase": "Running",
         "images": list(operation.images or ())},
    ]  # fmt: skip


def _destination(app: App) -> dict[str, Any]:
    return {"server": IN_CLUSTER, "namespace": app.name}


def _operation(operation: Operation) -> dict[str, Any]:
    result: dict[str, Any] = {
        "sync": {"revision": operation.revision, "prune": operation.prune},
        "initiatedBy": _initiator(operation),
    }
    if operation.infos:
        result["info"] = [{"name": k, "value": v} for k, v in operation.infos.items()]
    return result


def _initiator(operation: Operation) -> dict[str, Any]:
    return {"username": operation.username}


def _tag(image: str) -> str:
    without_digest = image.split("@", 1)[0]
    _, sep, tail = without_digest.rpartition(":")
    return tail if sep and "/" not in tail else ""
