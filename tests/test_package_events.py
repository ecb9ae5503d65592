"""A GHCR `package` event refreshes the warehouses that watch its image, in whichever repositories they are.

The event's `repository` is the repository the package belongs to: usually the application's, not the
GitOps repository. Routing by it refreshed the wrong cache and reconciled the application repository as
if it held a pipeline. These tests route a realistic payload (a container published to ghcr.io by
GitHub Actions, shaped as GitHub documents the `package` webhook) through the router, a real freight
cache, and the sandbox world's real server.
"""

from __future__ import annotations

import copy
import json
import uuid
from pathlib import Path
from typing import Any, cast

import httpx
import pytest

from bot.core.config import ImageRule, Warehouse
from bot.core.freight import Freight, FreightImage
from bot.freight_cache import FreightCache
from bot.reconciler import Reconciler
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World
from bot.server import WEBHOOK_PATH, WebhookDelivery, signature_for
from bot.webhooks import WebhookRouter, package_image

PAYLOAD = Path(__file__).parent / "fixtures" / "github-webhooks" / "package.published.container.json"
GITOPS, OTHER_GITOPS, APP = "acme/gitops", "acme/platform", "acme/web"
INSTALLATION = 957387


def payload(url: str | None = "ghcr.io/acme/web:1.5.0", event: str = "package") -> dict[str, Any]:
    data = copy.deepcopy(json.loads(PAYLOAD.read_text()))
    if url is None:
        del data["package"]["package_version"]["package_url"]
    else:
        data["package"]["package_version"]["package_url"] = url
    if event == "registry_package":  # the same package, under the older event's key
        data["registry_package"] = data.pop("package")
    return dict(data)


@pytest.mark.parametrize(
    ("url", "image"),
    [
        ("ghcr.io/acme/web:1.5.0", "ghcr.io/acme/web"),
        ("ghcr.io/Acme/Web:", "ghcr.io/acme/web"),  # GHCR sends the owner's spelling and an empty tag
        ("ghcr.io/acme/shop/web@sha256:" + "ab" * 32, "ghcr.io/acme/shop/web"),
        ("docker.pkg.github.com/acme/web/web:1.5.0", "docker.pkg.github.com/acme/web/web"),
        (None, "ghcr.io/acme/web"),  # no package_url: the owner and package name on ghcr.io
        ("not a reference", "ghcr.io/acme/web"),
    ],
)
def test_the_image_is_read_from_the_package_url_or_the_owner_and_name(url: str | None, image: str) -> None:
    assert package_image(payload(url)) == image
    assert package_image(payload(url, "registry_package")) == image


def test_a_package_that_is_not_a_container_names_no_image() -> None:
    npm = payload()
    npm["package"]["package_type"] = npm["package"]["ecosystem"] = "npm"
    npm["package"]["package_version"]["package_url"] = "npm.pkg.github.com/@acme/web"
    assert package_image(npm) is None
    assert package_image({"action": "published"}) is None


class RecordingReconciler:
    """What the router uses of the Reconciler; `trigger` ignores repositories not installed, as it does."""

    def __init__(self, repos: dict[str, int]) -> None:
        self.repos = dict(repos)
        self.triggered: list[str] = []
        self.full_reads: list[bool] = []

    def trigger(self, repo: str, *, full: bool = True) -> None:
        if repo in self.repos:
            self.triggered.append(repo)
            self.full_reads.append(full)


def warehouse(*images: str) -> Warehouse:
    return Warehouse(images=[ImageRule(image=image, semver="^1") for image in images])


async def warm_cache(watching: dict[str, Warehouse]) -> tuple[FreightCache, list[str]]:
    """A cache the passes of these repositories have filled; it records every registry poll."""
    polled: list[str] = []

    async def discover(name: str, found: Warehouse) -> Freight:
        polled.append(name)
        return Freight(name, tuple(FreightImage(rule.name, "1.4.0") for rule in found.images))

    cache = FreightCache(discover)
    for repo, watched in watching.items():
        await cache.newest(repo, f"{repo.split('/')[1]}-shop", watched)
    return cache, polled


async def deliver(
    cache: FreightCache, reconciler: RecordingReconciler, event: str, data: dict[str, Any]
) -> None:
    router = WebhookRouter(cast(Reconciler, reconciler), on_package=cache.refresh_image)
    await router.deliver(WebhookDelivery(event, str(uuid.uuid4()), data, 0.0))


@pytest.mark.parametrize("event", ["package", "registry_package"])
async def test_the_event_refreshes_the_repository_watching_the_image_not_the_one_it_names(event: str) -> None:
    watching = {
        GITOPS: warehouse("ghcr.io/acme/web", "ghcr.io/acme/worker"),
        OTHER_GITOPS: warehouse("ghcr.io/acme/api"),
    }
    cache, polled = await warm_cache(watching)
    reconciler = RecordingReconciler({GITOPS: INSTALLATION, OTHER_GITOPS: INSTALLATION, APP: INSTALLATION})
    await deliver(cache, reconciler, event, payload(event=event))
    assert reconciler.triggered == [GITOPS]
    assert reconciler.full_reads == [False]  # a new image changes nothing on GitHub: the check decides
    for repo, watched in watching.items():
        await cache.newest(repo, f"{repo.split('/')[1]}-shop", watched)
    assert polled == ["gitops-shop", "platform-shop", "gitops-shop"]  # only the watcher asks again


async def test_every_repository_watching_the_image_is_refreshed() -> None:
    cache, _ = await warm_cache(
        {GITOPS: warehouse("ghcr.io/acme/web"), OTHER_GITOPS: warehouse("ghcr.io/acme/web")}
    )
    reconciler = RecordingReconciler({GITOPS: INSTALLATION, OTHER_GITOPS: INSTALLATION})
    await deliver(cache, reconciler, "package", payload())
    assert reconciler.triggered == [GITOPS, OTHER_GITOPS]


async def test_a_package_repository_that_is_not_installed_is_not_registered_or_reconciled() -> None:
    cache, _ = await warm_cache({GITOPS: warehouse("ghcr.io/acme/web")})
    reconciler = RecordingReconciler({GITOPS: INSTALLATION})
    await deliver(cache, reconciler, "package", payload())
    assert reconciler.repos == {GITOPS: INSTALLATION}
    assert reconciler.triggered == [GITOPS]


async def test_an_image_no_warehouse_watches_wakes_nothing_quietly(caplog: pytest.LogCaptureFixture) -> None:
    cache, _ = await warm_cache({GITOPS: warehouse("ghcr.io/acme/api")})
    reconciler = RecordingReconciler({GITOPS: INSTALLATION, APP: INSTALLATION})
    await deliver(cache, reconciler, "package", payload())
    assert (reconciler.triggered, reconciler.repos) == ([], {GITOPS: INSTALLATION, APP: INSTALLATION})
    assert caplog.records == []


async def test_a_repository_that_holds_both_the_package_and_the_pipeline_is_refreshed_once() -> None:
    cache, _ = await warm_cache({APP: warehouse("ghcr.io/acme/web")})
    reconciler = RecordingReconciler({APP: INSTALLATION})
    await deliver(cache, reconciler, "package", payload())
    assert reconciler.triggered == [APP]


async def test_a_repository_no_longer_installed_is_not_woken() -> None:
    cache, _ = await warm_cache(
        {GITOPS: warehouse("ghcr.io/acme/web"), OTHER_GITOPS: warehouse("ghcr.io/acme/web")}
    )
    reconciler = RecordingReconciler({OTHER_GITOPS: INSTALLATION})
    await deliver(cache, reconciler, "package", payload())
    assert reconciler.triggered == [OTHER_GITOPS]


# ---- the whole path: a signed delivery to the real server, a real pass, a promotion ---------------


def slow_warehouse(config: dict[str, Any]) -> None:
    """dev promotes and merges by itself; the warehouse looks for new tags only once an hour."""
    quick_pipeline(config, verify_timeout="20s")
    config["warehouses"]["shop"]["interval"] = "1h"
    config["stages"]["staging"]["auto_promote"] = False
    config["stages"]["prod"]["auto_promote"] = False


async def post(world: World, event: str, data: dict[str, Any]) -> int:
    body = json.dumps(data).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": str(uuid.uuid4()),
        "X-Hub-Signature-256": signature_for(world.webhook_secret.encode(), body),
    }
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"http://127.0.0.1:{world.ferry_port}{WEBHOOK_PATH}", content=body, headers=headers
        )
    return response.status_code


def promotions_of(world: World, tag: str) -> list[dict[str, Any]]:
    return [
        p
        for p in world.github.pulls.values()
        if p["head"]["ref"].startswith("ferry/dev/") and tag in p["title"]
    ]


async def test_a_package_event_from_the_application_repository_promotes_new_tags_without_waiting() -> None:
    world = World(progress_seconds=0.2)
    try:
        await world.start(slow_warehouse, {"web": ["1.4.2"], "worker": ["1.4.2"]})  # what dev runs
        assert world.runtime is not None
        reconciler = world.runtime.reconciler
        passes: set[str] = set()

        def passes_seen(count: int) -> bool:
            passes.add(str(reconciler.last_pass.get(FULL_NAME, {}).get("at")))
            return len(passes - {"None"}) >= count

        await world.wait_for("the first pass", lambda: passes_seen(1), 30)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        await world.wait_for("two more passes", lambda: passes_seen(3), 15)
        assert promotions_of(world, "1.5.0") == []  # the warehouse's hour has not passed

        announced = payload(f"{world.registry.host}/acme/web:1.5.0")
        announced["installation"]["id"] = reconciler.repos[FULL_NAME]
        assert await post(world, "package", announced) == 202
        await world.wait_for("the promotion of 1.5.0", lambda: promotions_of(world, "1.5.0"), 15)
        assert APP not in reconciler.repos
    finally:
        await world.stop()
