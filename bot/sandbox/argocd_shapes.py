"""Argo CD's JSON for the stand-in's records: ``v1alpha1Application`` (spec, status, operation),
``v1alpha1ApplicationTree``, and the sync windows answer (the tests check them against swagger.json).

Where fields come from in Argo CD: ``status.sync`` from the last full comparison (``revision`` for one
source, ``revisions`` in source order for several; controller/state.go ``CompareAppState``), resource
sync status and health as the API server returns them (``inferResourcesStatusHealth`` fills health from
the resource tree), ``status.operationState`` from the latest operation (absent between a sync request
and the controller picking it up: ``argo.SetAppOperation`` clears it), the top-level ``operation`` while
one is requested or running, ``status.history`` per finished sync (``revision``+``source`` or
``revisions``+``sources``), ``status.conditions`` (InvalidSpecError, ComparisonError, SyncError).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from bot.sandbox.argocd_apps import AppSpec, Source
from bot.sandbox.argocd_controller import IN_CLUSTER
from bot.sandbox.argocd_health import MISSING, MSG_NOT_CREATED, UNKNOWN, Rollouts, app_health, rollout_done
from bot.sandbox.argocd_state import (
    AppRecord,
    Condition,
    HistoryEntry,
    Operation,
    key_of,
    resource_states,
    summary_images,
    sync_status,
)

ARGOCD_NAMESPACE = "argocd"
RESOURCES_FINALIZER = "resources-finalizer.argocd.argoproj.io"
AUTO_SYNC_RETRY_LIMIT = 5  # autoSync's operation: Retry{Limit: 5} unless syncPolicy.retry says otherwise


def ts(moment: float) -> str:
    """Argo CD's v1Time: RFC 3339, whole seconds, UTC."""
    return datetime.fromtimestamp(int(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def application(
    app: AppRecord, *, now: float, repo_url: str, resource_version: int, rollouts: Rollouts
) -> dict[str, Any]:
    """The ``v1alpha1Application`` of ``app`` as the API server returns it at ``now``."""
    metadata: dict[str, Any] = {
        "name": app.name,
        "namespace": ARGOCD_NAMESPACE,
        "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{repo_url}#{app.name}")),
        "resourceVersion": str(resource_version),
        "generation": app.generation,
        "creationTimestamp": ts(app.created_at),
    }
    if app.deleting_at is not None:
        metadata["deletionTimestamp"] = ts(app.deleting_at)
        metadata["finalizers"] = [RESOURCES_FINALIZER]
    document: dict[str, Any] = {
        "metadata": metadata,
        "spec": spec_json(app.spec, repo_url, app.namespace),
        "status": _status(app, now, repo_url, rollouts),
    }
    if app.running and app.operation is not None:
        document["operation"] = _operation(app.operation, app.spec, repo_url)
    return document


def spec_json(spec: AppSpec, repo_url: str, namespace: str) -> dict[str, Any]:
    policy: dict[str, Any] = {"syncOptions": list(spec.sync_options)}
    if spec.automated:
        policy["automated"] = {"prune": spec.prune, "selfHeal": spec.self_heal}
    out: dict[str, Any] = {"project": spec.project, **_sources(spec, spec.sources, repo_url)}
    out["destination"] = _destination(namespace)
    out["syncPolicy"] = policy
    if spec.ignore_differences:
        out["ignoreDifferences"] = _ignored(spec)
    return out


def _status(app: AppRecord, now: float, repo_url: str, rollouts: Rollouts) -> dict[str, Any]:
    states = resource_states(app)
    health, per_key = app_health(app, now, rollouts)
    comparison = app.comparison
    sync: dict[str, Any] = {"status": UNKNOWN if app.spec_error else sync_status(app, states)}
    compared_sources = comparison.sources if comparison else app.spec.sources
    sync["comparedTo"] = {**_sources(app.spec, compared_sources, repo_url),
                          "destination": _destination(app.namespace)}  # fmt: skip
    if app.spec.ignore_differences:
        sync["comparedTo"]["ignoreDifferences"] = _ignored(app.spec)
    if comparison is not None:
        key = "revisions" if app.spec.multi_source else "revision"
        sync[key] = list(comparison.revisions) if app.spec.multi_source else comparison.revisions[0]
    health_json: dict[str, Any] = {"status": UNKNOWN if app.spec_error else health.status}
    if health.message and not app.spec_error:
        health_json["message"] = health.message
    if app.health[1]:
        health_json["lastTransitionTime"] = ts(app.health[1])
    desired = {key_of(m) for m in (comparison.desired or [])} if comparison else set()
    resources = []
    for state in states:
        group, kind, namespace, name = state.key
        item: dict[str, Any] = {"version": state.version, "kind": kind, "name": name, "status": state.status}
        if group:
            item["group"] = group
        if namespace:
            item["namespace"] = namespace
        found = per_key.get(state.key)
        if found is not None:
            item["health"] = {"status": found.status} | ({"message": found.message} if found.message else {})
        elif state.key in desired and state.key not in app.live:
            item["health"] = {"status": MISSING, "message": MSG_NOT_CREATED}
        if state.requires_pruning:
            item["requiresPruning"] = True
        resources.append(item)
    status: dict[str, Any] = {
        "sync": sync,
        "health": health_json,
        "resources": resources,
        "summary": {"images": summary_images(app, rollout_done(app, now, rollouts))},
        "history": [_history(entry, app.spec, repo_url) for entry in app.history],
        "resourceHealthSource": "appTree",
        "controllerNamespace": ARGOCD_NAMESPACE,
    }
    if comparison is not None and comparison.types:
        if app.spec.multi_source:
            status["sourceTypes"] = list(comparison.types)
        else:
            status["sourceType"] = comparison.types[0]
    conditions = []
    if app.spec_error is not None:
        conditions.append(app.spec_error)
    if comparison is not None and comparison.error is not None and app.spec_error is None:
        conditions.append(Condition("ComparisonError", comparison.error, comparison.at))
    if app.sync_error is not None:
        conditions.append(app.sync_error)
    if conditions:
        status["conditions"] = [
            {"type": c.type, "message": c.message, "lastTransitionTime": ts(c.at)} for c in conditions
        ]
    if app.reconciled_at is not None:
        status["reconciledAt"] = ts(app.reconciled_at)
    operation = app.operation
    if operation is not None and operation.picked_up:
        status["operationState"] = _operation_state(operation, app.spec, repo_url)
    return status


def _operation_state(operation: Operation, spec: AppSpec, repo_url: str) -> dict[str, Any]:
    state: dict[str, Any] = {
        "operation": _operation(operation, spec, repo_url),
        "phase": operation.phase,
        "message": operation.message,
        "startedAt": ts(operation.started_at),
    }
    if operation.finished_at is not None:
        state["finishedAt"] = ts(operation.finished_at)
    if operation.resolved is not None:
        result: dict[str, Any] = _revision_fields(spec, operation.resolved)
        result.update(_sources(spec, operation.sources, repo_url))
        if operation.results:
            result["resources"] = operation.results
        state["syncResult"] = result
    return state


def _operation(operation: Operation, spec: AppSpec, repo_url: str) -> dict[str, Any]:
    sync: dict[str, Any] = {"prune": operation.prune, **_revision_fields(spec, operation.revisions)}
    sync.update(_sources(spec, operation.sources, repo_url))
    sync["syncOptions"] = list(spec.sync_options)
    if operation.dry_run:
        sync["dryRun"] = True
    if operation.resources is not None:
        sync["resources"] = [
            {"group": group, "kind": kind, "name": name} for group, kind, _, name in operation.resources
        ]
    result: dict[str, Any] = {"sync": sync, "initiatedBy": _initiator(operation.username)}
    if operation.infos:
        result["info"] = [{"name": k, "value": v} for k, v in operation.infos.items()]
    if operation.automated:
        result["retry"] = {"limit": AUTO_SYNC_RETRY_LIMIT}
    return result


def _history(entry: HistoryEntry, spec: AppSpec, repo_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": entry.id,
        **_revision_fields(spec, entry.revisions),
        **_sources(spec, entry.sources, repo_url),
        "deployStartedAt": ts(entry.started_at),
        "deployedAt": ts(entry.deployed_at),
        "initiatedBy": _initiator(entry.username),
    }
    return out


def _revision_fields(spec: AppSpec, revisions: list[str]) -> dict[str, Any]:
    if spec.multi_source:
        return {"revisions": list(revisions)}
    return {"revision": revisions[0] if revisions else ""}


def _sources(spec: AppSpec, sources: tuple[Source, ...], repo_url: str) -> dict[str, Any]:
    if spec.multi_source:
        return {"sources": [source_json(s, repo_url) for s in sources]}
    return {"source": source_json(sources[0], repo_url)}


def source_json(source: Source, repo_url: str) -> dict[str, Any]:
    out: dict[str, Any] = {"repoURL": source.repo_url or repo_url, "targetRevision": source.target_revision}
    if source.path is not None:
        out["path"] = source.path
    if source.chart is not None:
        out["chart"] = source.chart
    if source.ref is not None:
        out["ref"] = source.ref
    if source.value_files or source.release_name:
        helm: dict[str, Any] = {}
        if source.value_files:
            helm["valueFiles"] = list(source.value_files)
        if source.release_name:
            helm["releaseName"] = source.release_name
        out["helm"] = helm
    return out


def _initiator(username: str | None) -> dict[str, Any]:
    return {"automated": True} if username is None else {"username": username}


def _destination(namespace: str) -> dict[str, Any]:
    return {"server": IN_CLUSTER, "namespace": namespace}


def _ignored(spec: AppSpec) -> list[dict[str, Any]]:
    out = []
    for rule in spec.ignore_differences:
        item: dict[str, Any] = {"kind": rule.kind, "jsonPointers": list(rule.json_pointers)}
        if rule.group:
            item["group"] = rule.group
        if rule.name:
            item["name"] = rule.name
        out.append(item)
    return out
