"""Health as gitops-engine assesses it: a rollout is Progressing while new pods start, a pod that cannot
pull its image keeps it Progressing until the Deployment's progress deadline, then it is Degraded;
the Pod (in the resource tree) carries the back-off message; old pods keep running meanwhile.

The earlier stand-in turned Degraded the moment a sync finished, with the pod's message on the
Deployment, and listed only the new image.
"""

from __future__ import annotations

from pathlib import Path

from argocd_standin_kit import BASE, FakeClock, running, shop_repo

from bot.sandbox.argocd_apps import git_app
from bot.sandbox.world import World


async def test_a_deployment_own_progress_deadline_decides_when_it_degrades(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path / "gitops")
    web = BASE["base/web.yaml"].replace("replicas: 1", "replicas: 2\n  progressDeadlineSeconds: 30")
    repo.commit({"base/web.yaml": web}, "deadline")
    clock = FakeClock()
    async with running(repo, clock, {"web-dev": git_app("overlays/dev", "main")}) as sandbox:
        repo.release("2.0.0-broken")
        await sandbox.sync("web-dev", {})
        clock.advance(29)
        waiting = await sandbox.get("web-dev")
        clock.advance(1)
        degraded = await sandbox.get("web-dev")
    resource = next(r for r in waiting["status"]["resources"] if r["kind"] == "Deployment")
    assert resource["health"] == {
        "status": "Progressing",
        "message": "Waiting for rollout to finish: 0 of 2 updated replicas are available...",
    }
    assert waiting["status"]["health"] == {
        "status": "Progressing",
        "message": "Caused by apps/Deployment:web-dev/web",
        "lastTransitionTime": "2025-03-01T10:00:00Z",
    }
    assert degraded["status"]["health"] == {
        "status": "Degraded",
        "message": "Caused by apps/Deployment:web-dev/web",
        "lastTransitionTime": "2025-03-01T10:00:30Z",
    }
    resource = next(r for r in degraded["status"]["resources"] if r["kind"] == "Deployment")
    assert resource["health"]["message"] == 'Deployment "web" exceeded its progress deadline'
    assert degraded["status"]["summary"]["images"] == [
        "ghcr.io/acme/web:1.0.0",
        "ghcr.io/acme/web:2.0.0-broken",
    ]


async def test_the_resource_tree_shows_the_pods_of_a_rollout(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path / "gitops")
    clock = FakeClock()
    async with running(repo, clock, {"web-dev": git_app("overlays/dev", "main")}) as sandbox:
        repo.release("1.1.0")
        await sandbox.sync("web-dev", {})
        async with sandbox.raw() as http:
            starting = (await http.get("/api/v1/applications/web-dev/resource-tree")).json()
            clock.advance(2)
            running_now = (await http.get("/api/v1/applications/web-dev/resource-tree")).json()
    kinds = [node["kind"] for node in starting["nodes"]]
    assert kinds == ["Service", "Deployment", "ReplicaSet", "Pod"]
    pod = starting["nodes"][3]
    assert pod["health"] == {"status": "Progressing"}
    assert pod["images"] == ["ghcr.io/acme/web:1.1.0"]
    assert pod["parentRefs"][0]["kind"] == "ReplicaSet"
    assert running_now["nodes"][3]["health"] == {"status": "Healthy"}
    assert {"name": "Status Reason", "value": "Running"} in running_now["nodes"][3]["info"]


def test_the_sandbox_cluster_cannot_pull_a_broken_release_named_by_tag_or_digest(tmp_path: Path) -> None:
    world = World(workdir=tmp_path)
    world.registry.host = "127.0.0.1:5000"
    good = world.registry.push("acme/web", "1.5.0")
    bad = world.registry.push("acme/web", "1.5.1-broken")
    assert world.pull_error(f"127.0.0.1:5000/acme/web@{bad}") is not None
    assert world.pull_error(f"127.0.0.1:5000/acme/web:1.5.0@{bad}") is not None  # the digest decides
    assert world.pull_error(f"127.0.0.1:5000/acme/web@{good}") is None
    assert world.pull_error("127.0.0.1:5000/acme/web:1.5.1-broken") is not None
    assert world.pull_error("127.0.0.1:5000/acme/web@sha256:" + "0" * 64) is None  # not ours: runs
