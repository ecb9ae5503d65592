"""The faults of running against a real Argo CD, end to end: Ferry's real code path against the sandbox's
stand-ins, whose Argo CD behaves as the real one does (apps tracking main with automated sync, whole-tree
rendering, refusals, windows, RBAC, deletion, conditions; see bot/sandbox/argocd_standin.py).

Each test asserts the verdict Ferry posts and that its description tells a person what to do."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from test_argocd_faults import (
    argocd,
    decided,
    dev_merge_commit,
    dev_merged_by_people,
    dev_only,
    health_states,
    release,
    sandbox,
    starting_commit_verified,
)

from bot import events
from bot.core.text import STATUS_DESCRIPTION_LIMIT
from bot.sandbox.argocd_apps import git_app
from bot.sandbox.world import FULL_NAME, World

DEV_PATH = "overlays/dev/kustomization.yaml"
BASE_DEPLOYMENT = "base/web-deployment.yaml"


def last_description(world: World, sha: str) -> str:
    return health_states(world, sha)[-1][1]


async def file_text(world: World, path: str) -> str:
    store = world.github.state.store
    head = await store.get_ref("refs/heads/main")
    assert head is not None
    entry = await store.entry_at(head, path)
    assert entry is not None
    return (await store.read_blob(entry.sha)).decode()


async def push(world: World, path: str, text: str, message: str) -> str:
    return await world.github.push_files({path: text.encode()}, message)


def dev_sync_requests(world: World) -> list[str]:
    return [e.detail for e in world.kinds(events.SYNC_REQUESTED, "dev")]


def assert_actionable(description: str) -> None:
    assert 0 < len(description) <= STATUS_DESCRIPTION_LIMIT


async def test_an_app_that_refuses_revision_overrides_is_verified_through_a_refresh() -> None:
    # shop-dev syncs automatically: Argo CD refuses a sync naming a revision (code 9, "auto-sync currently
    # set to main"), which Ferry used to read as "busy" until the timeout.
    async with sandbox() as world:
        await starting_commit_verified(world)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"
        assert [s for s in argocd(world).syncs if s[0] == "shop-dev"] == []  # never a sync request
        assert any(name == "shop-dev" for name, _kind, _at in argocd(world).refreshes)
        assert any(": refresh for " in detail for detail in dev_sync_requests(world))


async def test_a_readme_commit_on_main_during_verification_still_verifies_the_merge() -> None:
    async with sandbox(progress_seconds=1.5) as world:
        await starting_commit_verified(world)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        readme = await push(world, "README.md", "# gitops\n", "README")  # Argo CD now compares to this
        assert await decided(world, merge) == "success"
        assert last_description(world, merge).startswith("verified: healthy at")
        app = await world.runtime.reconciler.argocd.get_app("default", "shop-dev")  # type: ignore[union-attr]
        assert app.sync_revision == readme


async def test_a_commit_changing_the_stage_files_during_verification_supersedes_the_merge() -> None:
    async with sandbox(progress_seconds=1.5) as world:
        await starting_commit_verified(world)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        overlay = (await file_text(world, DEV_PATH)).replace(
            "resources:", "commonLabels:\n  tier: web\n\nresources:"
        )
        change = await push(world, DEV_PATH, overlay, "dev: label everything")
        state = await decided(world, merge)
        description = last_description(world, merge)
        assert state == "error" and description.startswith("Superseded: dev")
        assert change[:7] in description or "moved on" in description
        assert all(s != "failure" for s, _ in health_states(world, merge))
        # The person's commit is observed, not synced by Ferry: it says what runs there.
        assert await decided(world, change) == "success"
        assert "(not deployed by Ferry)" in last_description(world, change)


async def test_first_contact_with_a_changed_shared_base_rolls_nothing_back() -> None:
    base_change: list[str] = []

    async def change_the_base(world: World) -> None:
        text = await file_text(world, BASE_DEPLOYMENT)
        sha = await push(
            world, BASE_DEPLOYMENT, text.replace("replicas: 2", "replicas: 3"), "base: 3 replicas"
        )
        base_change.append(sha)
        for app in ("shop-dev", "shop-staging", "shop-prod-eu", "shop-prod-us"):
            await argocd(world).refresh(app)  # Argo CD runs the new base everywhere before Ferry arrives

    world = World(progress_seconds=0.2)
    try:
        await world.start(dev_only, RELEASES, before_ferry=change_the_base)  # Ferry's first look follows
        [head] = base_change
        operations_before = len(argocd(world).operations)
        # dev's deploy commit is the one that last changed its overlay: the seed, before the base change.
        (seed,) = (await world.github.state.store.read_commit(head)).parents
        assert await decided(world, seed) == "success"
        assert last_description(world, seed) == (
            f"shop-dev runs web 1.4.2, worker 1.4.2 at {head[:7]} (not deployed by Ferry)"
        )
        await world.wait_for("every stage observed", lambda: len(world.kinds(events.HEALTH_VERDICT)) >= 3, 30)
        # Nothing was asked of Argo CD, so nothing went back to the commit that last touched the overlays.
        assert world.kinds(events.SYNC_REQUESTED) == []
        later = argocd(world).operations[operations_before:]
        assert all(op.username is None for op in later)
        for app in ("shop-dev", "shop-staging", "shop-prod-eu"):
            state = await world.runtime.reconciler.argocd.get_app("default", app)  # type: ignore[union-attr]
            assert state.sync_revision == head
    finally:
        await world.stop()


async def test_sixty_closed_prs_updated_after_the_last_promotion_change_no_deploy_commit() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"
        asked = len(world.kinds(events.SYNC_REQUESTED))
        async with world.person("dora", "write") as dora:
            for number in range(60):
                branch = f"docs/typo-{number}"
                await world.github.push_files(
                    {f"docs/{number}.md": b"x\n"}, "typo", branch=branch, login="dora"
                )
                opened = await dora.post(
                    f"/repos/{FULL_NAME}/pulls",
                    json={"title": f"typo {number}", "head": branch, "base": "main"},
                )
                await dora.patch(
                    f"/repos/{FULL_NAME}/pulls/{opened.json()['number']}", json={"state": "closed"}
                )
        assert world.runtime is not None
        await world.runtime.reconciler.reconcile(FULL_NAME)
        snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
        assert snapshot is not None
        deploy = snapshot.deploys["dev"]
        assert deploy.commit == merge and deploy.promotion is not None  # never the PR's head commit
        assert len(world.kinds(events.SYNC_REQUESTED)) == asked
        assert health_states(world, deploy.promotion.head_sha) == []


async def test_a_promotion_that_changes_only_the_second_file_of_a_stage_is_its_deploy_commit() -> None:
    def two_files(config: dict[str, Any]) -> None:
        dev_only(config, auto_merge=True)
        # dev's first file holds web; its second holds worker (its own file, by a dotted path).
        config["stages"]["dev"]["update"] = [
            {"kustomize": "overlays/dev"},
            {"yaml": "overlays/dev/worker.yaml", "path": "image"},
        ]

    async def split_dev_files(world: World) -> None:
        text = await file_text(world, DEV_PATH)
        worker = re.search(r"name: (\S+/acme/worker)\n\s+newTag: (\S+)", text)
        assert worker is not None
        web_only = text[: worker.start()].rsplit("  - ", 1)[0]
        files = {
            DEV_PATH: web_only.encode(),
            "overlays/dev/worker.yaml": f"image: {worker[1]}:{worker[2]}\n".encode(),
        }
        await world.github.push_files(files, "dev: worker image in its own file")

    world = World(progress_seconds=0.2)
    try:
        await world.start(two_files, RELEASES, before_ferry=split_dev_files)
        await world.wait_for("dev observed", lambda: world.kinds(events.HEALTH_VERDICT, "dev"), 30)
        world.registry.push("acme/worker", "1.5.0")  # only worker moves: the promotion edits the second file
        merge = await dev_merge_commit(world)
        [pull] = [p for p in world.github.pulls.values() if p["merge_commit_sha"] == merge]
        async with world.person("dora", "read") as dora:
            files = (await dora.get(f"/repos/{FULL_NAME}/pulls/{pull['number']}/files")).json()
        assert [f["filename"] for f in files] == ["overlays/dev/worker.yaml"]
        assert await decided(world, merge) == "success"
        assert last_description(world, merge).startswith("verified: healthy at")
        assert world.runtime is not None
        snapshot = await world.runtime.reconciler.snapshot(FULL_NAME)
        assert snapshot is not None and snapshot.deploys["dev"].commit == merge
    finally:
        await world.stop()


def _dev_pull(world: World) -> dict[str, object] | None:
    for pull in world.github.pulls.values():
        if pull["state"] == "open" and str(pull["head"]["ref"]).startswith("ferry/dev/"):
            return pull
    return None


RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}


async def test_a_permanently_out_of_sync_healthy_app_is_verified() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        # An HPA keeps replicas at 5: Argo CD reports OutOfSync for good, and the app stays Healthy.
        argocd(world).set_drift("shop-dev", "Deployment", "web", "/spec/replicas", 5)
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"
        app = await world.runtime.reconciler.argocd.get_app("default", "shop-dev")  # type: ignore[union-attr]
        assert (app.sync_status, app.health_status) == ("OutOfSync", "Healthy")


async def test_a_sync_window_keeps_the_stage_pending_saying_so_then_fails_at_the_timeout() -> None:
    async with sandbox(lambda config: dev_only(config, timeout="20s")) as world:
        await starting_commit_verified(world)
        argocd(world).add_sync_window("deny", "* * * * *", "1h", applications=["shop-dev"])
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        descriptions = [d for _, d in health_states(world, merge)]
        assert any("blocked by sync window deny '* * * * *' for 1h" in d for d in descriptions[:-1])
        assert descriptions[-1].startswith(
            "timed out after 20s waiting for shop-dev: blocked by sync window deny"
        )
        assert_actionable(descriptions[-1])


async def test_a_manual_app_blocked_by_a_sync_window_says_which_window_in_the_timeline_and_the_status() -> (
    None
):
    # Argo CD refuses the sync with 403 "cannot sync: blocked by sync window" and names no window
    # (server/application/application.go Sync); Ferry reads …/syncwindows to say which.
    async with sandbox(lambda config: dev_only(config, timeout="20s", auto_merge=False)) as world:
        await starting_commit_verified(world)
        argocd(world).set_spec("shop-dev", git_app("overlays/dev", "main"))  # a manual app
        argocd(world).add_sync_window("deny", "* * * * *", "1h", applications=["shop-dev"])
        release(world, "1.5.0")
        async with world.person("dora", "write") as dora:
            pull = await world.wait_for("dev's PR", lambda: _dev_pull(world), 30)
            await world.merge(dora, pull, "@dora")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        window = "blocked by sync window deny '* * * * *' for 1h"
        assert any(d.endswith(f'(blocked): sync of "shop-dev" {window}') for d in dev_sync_requests(world))
        assert last_description(world, merge).startswith(
            f"timed out after 20s waiting for shop-dev: {window}"
        )


async def test_a_token_without_sync_permission_fails_naming_the_rbac_rule_to_add() -> None:
    async with sandbox(dev_merged_by_people) as world:
        await starting_commit_verified(world)
        argocd(world).set_spec("shop-dev", git_app("overlays/dev", "main"))  # a manual app
        argocd(world).add_token(world.argocd_token, subject="ferry", actions=["get"])
        release(world, "1.5.0")
        async with world.person("dora", "write") as dora:
            pull = await world.wait_for("dev's PR", lambda: _dev_pull(world), 30)
            await world.merge(dora, pull, "@dora")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        description = last_description(world, merge)
        assert "applications, sync, default/shop-dev" in description and "argocd-rbac-cm" in description
        assert_actionable(description)


async def test_a_manual_sync_argo_cd_has_not_re_compared_yet_is_verified_after_a_hard_refresh() -> None:
    # Real Argo CD compares again only when its queued post-operation refresh is processed, and polls every
    # 3 minutes (controller/appcontroller.go processRequestedAppOperation, timeout.reconciliation): until
    # then it still compares to the old head. Ferry must ask for the hard refresh, not wait out its timeout.
    async with sandbox(dev_merged_by_people) as world:
        await starting_commit_verified(world)
        argocd(world).set_spec("shop-dev", git_app("overlays/dev", "main"))  # a manual app
        controller = argocd(world).controller
        controller.settings = replace(
            controller.settings, poll_seconds=180.0, post_operation_refresh_seconds=180.0
        )
        release(world, "1.5.0")
        async with world.person("dora", "write") as dora:
            pull = await world.wait_for("dev's PR", lambda: _dev_pull(world), 30)
            await world.merge(dora, pull, "@dora")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "success"
        assert any(name == "shop-dev" and kind == "hard" for name, kind, _ in argocd(world).refreshes)


async def test_an_app_being_deleted_fails_saying_so() -> None:
    async with sandbox() as world:
        await starting_commit_verified(world)
        argocd(world).delete_app("shop-dev")
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        assert "being deleted" in last_description(world, merge)


async def test_a_comparison_error_is_pending_with_its_message_then_fails_naming_it() -> None:
    async with sandbox(lambda config: dev_only(config, timeout="20s")) as world:
        await starting_commit_verified(world)
        base = await file_text(world, "base/kustomization.yaml")
        await push(
            world, "base/kustomization.yaml", base.replace("web-service.yaml", "web-svc.yaml"), "base: typo"
        )
        release(world, "1.5.0")
        merge = await dev_merge_commit(world)
        assert await decided(world, merge) == "failure"
        descriptions = [d for _, d in health_states(world, merge)]
        assert any("ComparisonError" in d for d in descriptions[:-1])
        assert descriptions[-1].startswith("timed out after 20s waiting for shop-dev: ComparisonError:")
        assert_actionable(descriptions[-1])


async def test_a_multi_source_app_with_its_git_source_second_is_verified_without_resyncing() -> None:
    async with sandbox() as world:
        await world.wait_for("prod observed", lambda: world.kinds(events.HEALTH_VERDICT, "prod"), 30)
        values = await file_text(world, "charts/web/values-prod.yaml")
        # prod has promoters: a release manager merges (her merge is her approval), dora opens the PR.
        async with (
            world.person("rita", "write", ["acme/release-managers"]) as rita,
            world.person("dora") as dora,
        ):
            branch = "ferry/prod/000000000001"
            # The chart renders repository@digest when a digest is set: move both, as a promotion does.
            moved = r'tag: "1.4.1"\n\1digest: sha256:' + "1" * 64
            changed = re.sub(r'tag: "1.4.0"\n(\s+)digest: \S+', moved, values, count=1)
            assert changed != values
            await world.github.push_files(
                {"charts/web/values-prod.yaml": changed.encode()}, _trailers(), branch=branch, login="dora"
            )
            opened = await dora.post(
                f"/repos/{FULL_NAME}/pulls",
                json={"title": "Promote web 1.4.1 to prod", "head": branch, "base": "main"},
            )
            await world.merge(rita, opened.json(), "@rita")
        merge = await world.wait_for("the prod merge", lambda: _merged_prod(world), 30)
        assert await decided_prod(world, merge) == "success"
        us = [op for op in argocd(world).operations if op.app == "shop-prod-us" and merge in op.revisions]
        assert len(us) == 1  # applied once: no re-sync every pass (its first revision is the chart's)


def _trailers() -> str:
    return "Promote web 1.4.1 to prod\n\nFerry-Stage: prod\nFerry-Freight: 000000000001\n"


def _merged_prod(world: World) -> str | None:
    for pull in world.github.pulls.values():
        if pull["merged"] and str(pull["head"]["ref"]).startswith("ferry/prod/"):
            return str(pull["merge_commit_sha"])
    return None


async def decided_prod(world: World, sha: str) -> str:
    def verdict() -> str | None:
        records = [s for s in world.github.statuses.get(sha, []) if s["context"] == "ferry/health/prod"]
        last = sorted(records, key=lambda s: s["id"])[-1]["state"] if records else None
        return last if last in ("success", "failure", "error") else None

    return str(await world.wait_for(f"prod's verdict on {sha[:7]}", verdict, 45))
