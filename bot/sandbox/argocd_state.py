"""The Argo CD stand-in's records: what each application is, what runs in the cluster for it, its
operations and comparisons; and the comparison of desired with live state.

``AppRecord`` holds what a real installation spreads over the Application object (spec, status,
operation), the controller's cache of live objects, and the cluster itself. Sync status per resource
follows controller/state.go ``CompareAppState``: a desired object missing from the cluster or
different from it is OutOfSync, a live object no longer desired is OutOfSync and ``requiresPruning``,
fields named by ``ignoreDifferences`` are left out of the comparison, and when the desired state could
not be generated every resource and the app are ``Unknown``.
"""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.argocd_apps import AppSpec, IgnoreDifference, Source
from bot.sandbox.argocd_render import CLUSTER_SCOPED, Manifest, images_of

Key = tuple[str, str, str, str]  # group, kind, namespace, name

SYNCED, OUT_OF_SYNC, UNKNOWN = "Synced", "OutOfSync", "Unknown"
RUNNING, SUCCEEDED, FAILED, ERROR = "Running", "Succeeded", "Failed", "Error"
MSG_RUNNING = "one or more tasks are running"
MSG_SYNCED = "successfully synced (all tasks run)"


def key_of(manifest: Manifest) -> Key:
    api = str(manifest.get("apiVersion", ""))
    group = api.rpartition("/")[0]
    meta = manifest.get("metadata") or {}
    return group, str(manifest.get("kind", "")), str(meta.get("namespace", "")), str(meta.get("name", ""))


def with_namespace(manifest: Manifest, namespace: str) -> Manifest:
    """The object as Argo CD applies it: namespaced objects without one go to the destination's."""
    if manifest.get("kind") in CLUSTER_SCOPED:
        return manifest
    meta = manifest.setdefault("metadata", {})
    if not meta.get("namespace"):
        meta["namespace"] = namespace
    return manifest


@dataclass
class Condition:
    type: str
    message: str
    at: float


@dataclass
class LiveObject:
    """An object in the cluster: as last applied, when its pod template last changed, and the images
    its previous pods still run until that rollout completes."""

    manifest: Manifest
    rollout_started: float
    previous_images: tuple[str, ...] = ()


@dataclass
class Operation:
    """A sync operation: requested (``picked_up`` False), Running, or finished with a phase."""

    revisions: list[str]  # per source, as requested ("" means the source's targetRevision)
    sources: tuple[Source, ...]
    infos: dict[str, str]
    username: str | None  # None for the controller's automated sync
    requested_at: float
    prune: bool = False
    dry_run: bool = False
    resources: tuple[Key, ...] | None = None  # a partial sync (self-heal syncs only what drifted)
    self_heal_attempts: int = 0
    picked_up: bool = False
    started_at: float = 0.0
    finish_at: float = 0.0
    finished_at: float | None = None
    phase: str = RUNNING
    message: str = MSG_RUNNING
    resolved: list[str] | None = None
    desired: list[Manifest] | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    fail_with: str | None = None

    @property
    def automated(self) -> bool:
        return self.username is None

    @property
    def finished(self) -> bool:
        return self.phase != RUNNING


@dataclass
class Comparison:
    """The last full comparison (``CompareWithLatest``): the revisions it resolved, what they render to."""

    at: float
    revisions: list[str]
    sources: tuple[Source, ...]
    desired: list[Manifest] | None
    error: str | None = None
    types: tuple[str, ...] = ()  # status.sourceType(s): Helm, Kustomize or Directory per source


@dataclass
class HistoryEntry:
    id: int
    revisions: list[str]
    sources: tuple[Source, ...]
    started_at: float
    deployed_at: float
    username: str | None


@dataclass
class AppRecord:
    name: str
    spec: AppSpec
    created_at: float
    live: dict[Key, LiveObject] = field(default_factory=dict)
    operation: Operation | None = None
    history: list[HistoryEntry] = field(default_factory=list)
    comparison: Comparison | None = None
    reconciled_at: float | None = None
    refresh_at: float | None = None  # a refresh the controller has queued (after an operation)
    deleting_at: float | None = None
    sync_error: Condition | None = None
    spec_error: Condition | None = None
    health: tuple[str, float] = ("Missing", 0.0)
    drift: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    generation: int = 1
    fail_next_operation: str | None = None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def namespace(self) -> str:
        return self.spec.namespace or self.name

    @property
    def running(self) -> bool:
        return self.operation is not None and not self.operation.finished

    def live_view(self, key: Key) -> Manifest | None:
        """The live object as the cluster holds it now: as applied, then changed by other controllers
        (``drift``, e.g. an HPA setting ``/spec/replicas``)."""
        found = self.live.get(key)
        if found is None:
            return None
        patches = self.drift.get((key[1], key[3]))
        if not patches:
            return found.manifest
        manifest = copy.deepcopy(found.manifest)
        for pointer, value in patches.items():
            set_pointer(manifest, pointer, value)
        return manifest


@dataclass(frozen=True)
class ResourceState:
    key: Key
    version: str
    status: str
    requires_pruning: bool = False


def resource_states(app: AppRecord) -> list[ResourceState]:
    """Each managed resource's sync status against the last comparison, sorted as Argo CD sorts them."""
    comparison = app.comparison
    desired = {key_of(m): m for m in (comparison.desired or [])} if comparison else {}
    failed = comparison is None or comparison.desired is None
    states = []
    for key, manifest in desired.items():
        live = app.live_view(key)
        same = live is not None and _comparable(manifest, app.spec.ignore_differences) == _comparable(
            live, app.spec.ignore_differences
        )
        status = UNKNOWN if failed else (SYNCED if same else OUT_OF_SYNC)
        states.append(ResourceState(key, _version(manifest), status))
    for key, live_object in app.live.items():
        if key not in desired:
            status = UNKNOWN if failed else OUT_OF_SYNC
            states.append(ResourceState(key, _version(live_object.manifest), status, requires_pruning=True))
    return sorted(states, key=lambda s: (s.key[0], s.key[1], s.key[2], s.key[3]))


def sync_status(app: AppRecord, states: list[ResourceState]) -> str:
    if app.comparison is None or app.comparison.desired is None:
        return UNKNOWN
    return SYNCED if all(s.status == SYNCED for s in states) else OUT_OF_SYNC


def summary_images(app: AppRecord, rollout_done: dict[Key, bool]) -> list[str]:
    """Images of what runs: each workload's images, plus its previous ones while a rollout is unfinished."""
    images: set[str] = set()
    for key, live in app.live.items():
        images.update(images_of(live.manifest))
        if not rollout_done.get(key, True):
            images.update(live.previous_images)
    return sorted(images)


def _version(manifest: Manifest) -> str:
    return str(manifest.get("apiVersion", "")).rpartition("/")[2]


def _comparable(manifest: Manifest, ignored: tuple[IgnoreDifference, ...]) -> Manifest:
    group, kind, _, name = key_of(manifest)
    pointers = [
        pointer
        for rule in ignored
        if rule.kind == kind and rule.group == group and rule.name in ("", name)
        for pointer in rule.json_pointers
    ]
    if not pointers:
        return manifest
    copied = copy.deepcopy(manifest)
    for pointer in pointers:
        remove_pointer(copied, pointer)
    return copied


def _steps(pointer: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer.strip("/").split("/") if p != ""]


def set_pointer(document: Any, pointer: str, value: Any) -> None:
    *parents, last = _steps(pointer)
    for step in parents:
        document = document[int(step)] if isinstance(document, list) else document.setdefault(step, {})
    if isinstance(document, list):
        document[int(last)] = value
    else:
        document[last] = value


def remove_pointer(document: Any, pointer: str) -> None:
    *parents, last = _steps(pointer)
    for step in parents:
        if isinstance(document, list):
            document = document[int(step)] if step.isdigit() and int(step) < len(document) else None
        else:
            document = document.get(step) if isinstance(document, dict) else None
        if document is None:
            return
    if isinstance(document, dict):
        document.pop(last, None)
