"""Health as gitops-engine assesses it, over the stand-in's model of a rollout.

A Deployment whose pod template changed at ``rollout_started`` is Progressing ("Waiting for rollout to
finish: 0 of N updated replicas are available...") while its new pods start (``progress_seconds``),
then Healthy. When a new pod cannot pull its image it stays Progressing until the Deployment's
``progressDeadlineSeconds`` (Kubernetes' default 600 s) has passed, then Kubernetes sets the
Progressing condition's reason to ``ProgressDeadlineExceeded`` and the Deployment turns Degraded
('Deployment "web" exceeded its progress deadline') (gitops-engine pkg/health/health_deployment.go,
``getAppsv1DeploymentHealth``). The pod's own message ('Back-off pulling image "..."', reason
``ImagePullBackOff``) is on the Pod node of the resource tree, not on the Deployment
(pkg/health/health_pod.go). The app's health is the worst of its resources', ignoring resources that
do not exist yet; its message names the causes (controller/health.go ``setApplicationHealth``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.sandbox.argocd_render import images_of, split_image
from bot.sandbox.argocd_state import AppRecord, Key, LiveObject

HEALTHY, PROGRESSING, DEGRADED, MISSING, SUSPENDED, UNKNOWN = (
    "Healthy", "Progressing", "Degraded", "Missing", "Suspended", "Unknown",
)  # fmt: skip
_ORDER = [HEALTHY, SUSPENDED, PROGRESSING, MISSING, DEGRADED, UNKNOWN]  # gitops-engine health.IsWorse
BROKEN_MARKER = "-broken"
MSG_ROLLOUT = "Waiting for rollout to finish: 0 of {replicas} updated replicas are available..."
MSG_DEADLINE = 'Deployment "{name}" exceeded its progress deadline'
MSG_BACKOFF = 'Back-off pulling image "{image}"'
MSG_NOT_CREATED = "Resource has not been created"
HEALTH_CHECKED = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Service", "Ingress", "Pod", "Job",
     "PersistentVolumeClaim", "HorizontalPodAutoscaler", "Application"}
)  # fmt: skip

PullError = Callable[[str], str | None]


def broken_tag_pull_error(image: str) -> str | None:
    """Default image pull model: a tag containing ``-broken`` cannot be pulled."""
    _, tag, _ = split_image(image)
    return "ErrImagePull: not found" if tag and BROKEN_MARKER in tag else None


@dataclass(frozen=True)
class Health:
    status: str
    message: str = ""
    since: float = 0.0


@dataclass(frozen=True)
class Rollouts:
    """The rollout model's settings: pod start time and the default progress deadline, in seconds."""

    progress_seconds: float
    deadline_seconds: float
    pull_error: PullError


def resource_health(live: LiveObject, now: float, rollouts: Rollouts) -> Health | None:
    """The health of one live object at ``now``; None for kinds gitops-engine has no check for."""
    kind = live.manifest.get("kind")
    if kind not in HEALTH_CHECKED:
        return None
    if kind != "Deployment":
        return Health(HEALTHY, since=live.rollout_started)
    spec = live.manifest.get("spec") or {}
    if spec.get("paused"):
        return Health(SUSPENDED, "Deployment is paused", live.rollout_started)
    replicas = int(spec.get("replicas", 1) or 0)
    start = live.rollout_started
    if replicas == 0:
        return Health(HEALTHY, since=start)
    waiting = MSG_ROLLOUT.format(replicas=replicas)
    if any(rollouts.pull_error(image) for image in images_of(live.manifest)):
        deadline = float(spec.get("progressDeadlineSeconds") or rollouts.deadline_seconds)
        if now >= start + deadline:
            name = (live.manifest.get("metadata") or {}).get("name", "")
            return Health(DEGRADED, MSG_DEADLINE.format(name=name), start + deadline)
        return Health(PROGRESSING, waiting, start)
    if now < start + rollouts.progress_seconds:
        return Health(PROGRESSING, waiting, start)
    return Health(HEALTHY, since=start + rollouts.progress_seconds)


def app_health(app: AppRecord, now: float, rollouts: Rollouts) -> tuple[Health, dict[Key, Health]]:
    """The app's health (worst resource, "Caused by ..." naming them) and each live resource's."""
    per_key: dict[Key, Health] = {}
    for key, live in app.live.items():
        found = resource_health(live, now, rollouts)
        if found is not None:
            per_key[key] = found
    if not app.live:
        return Health(MISSING if app.comparison and app.comparison.desired else HEALTHY), per_key
    worst = HEALTHY
    causes: list[Key] = []
    for key, health in per_key.items():
        if _ORDER.index(health.status) > _ORDER.index(worst):
            worst, causes = health.status, [key]
        elif health.status == worst and worst != HEALTHY:
            causes.append(key)
    latest = max((h.since for h in per_key.values()), default=0.0)
    since = max((per_key[k].since for k in causes), default=latest)
    return Health(worst, _caused_by(causes), since), per_key


def _caused_by(causes: list[Key]) -> str:
    if not causes:
        return ""
    parts = [f"{group + '/' if group else ''}{kind}:{ns + '/' if ns else ''}{name}"
             for group, kind, ns, name in sorted(causes)[:3]]  # fmt: skip
    more = f" and {len(causes) - 3} more" if len(causes) > 3 else ""
    return "Caused by " + ", ".join(parts) + more


def rollout_done(app: AppRecord, now: float, rollouts: Rollouts) -> dict[Key, bool]:
    done = {}
    for key, live in app.live.items():
        health = resource_health(live, now, rollouts)
        done[key] = health is None or health.status == HEALTHY
    return done


def tree_nodes(app: AppRecord, now: float, rollouts: Rollouts) -> list[dict[str, Any]]:
    """``v1alpha1ResourceNode`` entries: each managed object, and a Deployment's ReplicaSets and Pods."""
    nodes: list[dict[str, Any]] = []
    for key, live in sorted(app.live.items()):
        kind = key[1]
        health = resource_health(live, now, rollouts)
        node = _node(key, live.manifest.get("apiVersion", "v1"), health)
        nodes.append(node)
        if kind == "Deployment":
            nodes += _pods(live, now, rollouts, node)
    return nodes


def _pods(live: LiveObject, now: float, rollouts: Rollouts, parent: dict[str, Any]) -> list[dict[str, Any]]:
    spec = live.manifest.get("spec") or {}
    template = spec.get("template") or {}
    replica_set = f"{parent['name']}-{_hash(template)[:10]}"
    images = images_of(live.manifest)
    failing = next((i for i in images if rollouts.pull_error(i)), None)
    started = now >= live.rollout_started + rollouts.progress_seconds
    rs_health = resource_health(live, now, rollouts)
    rs = _node(("apps", "ReplicaSet", parent["namespace"], replica_set), "apps/v1", rs_health)
    rs["parentRefs"] = [_ref(parent)]
    nodes = [rs]
    for index in range(int(spec.get("replicas", 1) or 0)):
        pod_name = f"{replica_set}-{_hash([replica_set, index])[:5]}"
        if failing is not None:
            reason = rollouts.pull_error(failing) or ""
            health = {"status": DEGRADED, "message": MSG_BACKOFF.format(image=failing)}
            info = [("Status Reason", "ImagePullBackOff"), ("Containers", f"0/{len(images)}")]
            info.append(("Last Error", reason))
        elif started:
            health = {"status": HEALTHY}
            info = [("Status Reason", "Running"), ("Containers", f"{len(images)}/{len(images)}")]
        else:
            health = {"status": PROGRESSING}
            info = [("Status Reason", "ContainerCreating"), ("Containers", f"0/{len(images)}")]
        pod = {"version": "v1", "kind": "Pod", "namespace": parent["namespace"], "name": pod_name,
               "health": health, "images": images, "parentRefs": [_ref(rs)],
               "info": [{"name": n, "value": v} for n, v in info]}  # fmt: skip
        nodes.append(pod)
    return nodes


def _node(key: Key, api_version: Any, health: Health | None) -> dict[str, Any]:
    group, kind, namespace, name = key
    node: dict[str, Any] = {"version": str(api_version).rpartition("/")[2], "kind": kind, "name": name}
    if group:
        node["group"] = group
    if namespace:
        node["namespace"] = namespace
    if health is not None:
        node["health"] = {"status": health.status} | ({"message": health.message} if health.message else {})
    return node


def _ref(node: dict[str, Any]) -> dict[str, Any]:
    return {k: node[k] for k in ("group", "kind", "namespace", "name") if k in node}


def _hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
