"""The GitHub stand-in can be as unkind as GitHub, and is kind until told otherwise: webhooks late, out of
order, twice (same delivery id) and to any of several replicas, reproducibly from a seed; lists that lag
their writes; ``sort=updated``; secondary rate limits without ``Retry-After``; App event subscriptions."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path

import pytest
from github_standin_helpers import (
    API,
    OWNER,
    REPO,
    SECRET,
    SEED,
    Clock,
    branch_with_change,
    delivering,
    installation_client,
    open_pull,
    person,
    receivers,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)
from githubkit.exception import RequestFailed, SecondaryRateLimitExceeded

from bot.sandbox.github_standin import GitHubStandIn


async def push_several(github: GitHubStandIn, count: int) -> list[str]:
    """``count`` pushes to main; returns their head shas in the order they happened."""
    return [await github.push_files({f"f{n}.txt": b"x"}, f"commit {n}") for n in range(count)]


async def test_by_default_each_webhook_arrives_once_in_order_at_the_one_url(tmp_path: Path) -> None:
    async with delivering(tmp_path) as (github, target):
        pushed = await push_several(github, 5)
        await github.wait_for_deliveries()
    assert [p["after"] for _, p in target.received] == pushed
    assert len({h["X-GitHub-Delivery"] for h, _ in target.received}) == 5
    assert all(d.url == target.url and not d.redelivery for d in github.deliveries)


async def test_delayed_deliveries_overtake_each_other_when_reordering_is_on(tmp_path: Path) -> None:
    actions = ["created", "deleted", "suspend", "unsuspend", "new_permissions_accepted"]
    async with delivering(tmp_path, delay=2.0, reorder=True, seed=3) as (github, target):
        started = asyncio.get_running_loop().time()
        for action in actions:  # five events caused at once, each sent 0-2 s later
            github.announce_installation(action)
        await github.wait_for_deliveries()
        took = asyncio.get_running_loop().time() - started
    arrived = [p["action"] for _, p in target.received]
    assert sorted(arrived) == sorted(actions) and arrived != actions
    assert 0.1 < took < 10


async def test_without_reordering_a_delay_keeps_the_order(tmp_path: Path) -> None:
    async with delivering(tmp_path, delay=0.2, seed=1) as (github, target):
        pushed = await push_several(github, 6)
        await github.wait_for_deliveries()
    assert [p["after"] for _, p in target.received] == pushed


async def test_a_duplicate_is_the_same_delivery_sent_again_as_githubs_redelivery(tmp_path: Path) -> None:
    async with delivering(tmp_path, duplicate=1.0, seed=5) as (github, target):
        await push_several(github, 3)
        await github.wait_for_deliveries()
    by_id: dict[str, list[tuple[dict[str, str], dict[str, object]]]] = {}
    for headers, payload in target.received:
        by_id.setdefault(headers["X-GitHub-Delivery"], []).append((headers, payload))
    assert len(by_id) == 3 and all(len(copies) == 2 for copies in by_id.values())
    for (first, body), (again, body_again) in by_id.values():
        assert body == body_again and first["X-Hub-Signature-256"] == again["X-Hub-Signature-256"]
    assert Counter(d.redelivery for d in github.deliveries) == {False: 3, True: 3}


async def test_replicas_each_get_some_deliveries_and_a_seed_replays_the_same_plan(tmp_path: Path) -> None:
    plans = []
    for run in range(2):
        async with receivers(3) as targets:
            github = GitHubStandIn(tmp_path / str(run), webhook_secret=SECRET)
            async with github:
                await github.seed(SEED)
                github.set_delivery(replicas=[t.url for t in targets], duplicate=0.5, seed=42)
                await push_several(github, 12)
                await github.wait_for_deliveries()
            where = {t.url: n for n, t in enumerate(targets)}
            plans.append(
                sorted((d.event, d.redelivery, where[str(d.url)], d.time) for d in github.deliveries)
            )
            received = Counter(h["X-GitHub-Delivery"] for t in targets for h, _ in t.received)
            assert all(t.received for t in targets)  # every replica got something
            assert set(received.values()) <= {1, 2} and 2 in received.values()
            split = [
                d.delivery_id
                for d in github.deliveries
                if d.redelivery
                and next(o.url for o in github.deliveries if o.delivery_id == d.delivery_id) != d.url
            ]
            assert split, "with three replicas, some duplicate should reach a different replica"
    first, second = ([(e, r, w) for e, r, w, _ in plan] for plan in plans)
    assert Counter(first) == Counter(second)


async def test_events_the_app_does_not_subscribe_to_are_not_delivered(tmp_path: Path) -> None:
    async with delivering(tmp_path) as (github, target):
        github.set_app_events(["pull_request"])
        await push_several(github, 1)
        github.announce_installation()  # every App receives installation events
        await github.wait_for_deliveries()
    assert target.events() == ["installation"]


async def test_a_merged_pull_request_shows_in_lists_only_after_the_lag(tmp_path: Path) -> None:
    clock = Clock()
    async with GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock) as github:
        await github.seed(SEED)
        github.set_list_lag(5)
        async with person(github, "alice") as gh:
            await branch_with_change(gh, "ferry/dev/one", "envs/dev/values.yaml", "tag: 1.1.0\n")
            pr = await open_pull(gh, "ferry/dev/one")
            assert (await gh.get(f"{API}/pulls", params={"state": "open"})).json() == []  # just opened
            clock.now += 6
            assert [p["number"] for p in (await gh.get(f"{API}/pulls")).json()] == [pr["number"]]
            merged = await gh.put(f"{API}/pulls/{pr['number']}/merge", json={"sha": pr["head"]["sha"]})
            assert merged.status_code == 200
            assert (await gh.get(f"{API}/pulls/{pr['number']}")).json()["merged"] is True  # reads are current
            assert (await gh.get(f"{API}/pulls", params={"state": "closed"})).json() == []
            stale = (await gh.get(f"{API}/pulls", params={"state": "open"})).json()
            assert [(p["number"], p["state"], p["merged_at"]) for p in stale] == [
                (pr["number"], "open", None)
            ]
            issues = (await gh.get(f"{API}/issues", params={"state": "closed"})).json()
            assert issues == []
            clock.now += 6
            closed = (await gh.get(f"{API}/pulls", params={"state": "closed"})).json()
            assert [(p["number"], p["merged_at"] is not None) for p in closed] == [(pr["number"], True)]
            assert (await gh.get(f"{API}/pulls", params={"state": "open"})).json() == []


async def test_pull_requests_sort_by_update_oldest_first_unless_direction_says(tmp_path: Path) -> None:
    clock = Clock()
    async with GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock) as github:
        await github.seed(SEED)
        async with person(github, "alice") as gh:
            numbers = []
            for n in range(3):
                await branch_with_change(gh, f"ferry/dev/{n}", f"f{n}.txt", "x")
                numbers.append((await open_pull(gh, f"ferry/dev/{n}"))["number"])
                clock.now += 10
            await gh.post(f"{API}/issues/{numbers[0]}/comments", json={"body": "bump"})

            async def listed(**params: str) -> list[int]:
                return [p["number"] for p in (await gh.get(f"{API}/pulls", params=params)).json()]

            assert await listed() == numbers[::-1]  # created, newest first
            # "Default: desc when sort is created or sort is not specified, otherwise asc."
            assert await listed(sort="updated") == [numbers[1], numbers[2], numbers[0]]
            assert await listed(sort="updated", direction="desc") == [numbers[0], numbers[2], numbers[1]]
            assert await listed(sort="popularity", direction="desc") == [numbers[0], numbers[2], numbers[1]]
            assert (await gh.get(f"{API}/pulls", params={"sort": "sideways"})).status_code == 422


async def test_a_secondary_limit_without_retry_after_is_not_recognised_by_githubkit(
    standin: GitHubStandIn,
) -> None:
    rest = installation_client(standin)
    for status in (403, 429):
        standin.fail_next_secondary_limit("POST", "/repos/{owner}/{repo}/git/blobs", status=status)
        with pytest.raises(RequestFailed) as refused:
            await rest.git.async_create_blob(OWNER, REPO, content="x", encoding="utf-8")
        answer = refused.value.response
        assert not isinstance(refused.value, SecondaryRateLimitExceeded)  # only the words say what it is
        assert answer.status_code == status and "Retry-After" not in answer.headers
        assert int(answer.headers["X-RateLimit-Remaining"]) > 0
        assert answer.json()["message"].startswith("You have exceeded a secondary rate limit")
    standin.fail_next_secondary_limit("POST", "/repos/{owner}/{repo}/git/blobs", retry_after=60)
    with pytest.raises(SecondaryRateLimitExceeded) as limited:
        await rest.git.async_create_blob(OWNER, REPO, content="x", encoding="utf-8")
    assert limited.value.retry_after.total_seconds() == 60


async def test_a_burst_of_writes_trips_the_secondary_limit_for_a_while_and_reads_still_work(
    tmp_path: Path,
) -> None:
    clock = Clock()
    async with GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock) as github:
        await github.seed(SEED)
        github.set_secondary_limits(per_minute=3, block_seconds=60, status=429)
        async with person(github, "alice") as gh:
            answers = [
                (await gh.post(f"{API}/git/blobs", json={"content": str(n)})).status_code for n in range(5)
            ]
            assert answers == [201, 201, 201, 429, 429]
            refused = await gh.post(f"{API}/git/blobs", json={"content": "again"})
            assert "Retry-After" not in refused.headers and int(refused.headers["X-RateLimit-Remaining"]) > 0
            assert "secondary rate limit" in refused.json()["message"]
            assert (await gh.get(f"{API}/git/ref/heads/main")).status_code == 200
            clock.now += 61
            assert (await gh.post(f"{API}/git/blobs", json={"content": "later"})).status_code == 201


async def test_an_undisclosed_secondary_limit_met_at_random_blocks_the_caller_for_a_minute(
    tmp_path: Path,
) -> None:
    clock = Clock()
    async with GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock) as github:
        await github.seed(SEED)
        github.set_secondary_limits(chance=1.0, block_seconds=60, status=403, seed=1)
        async with person(github, "alice") as gh:
            first = await gh.post(f"{API}/git/blobs", json={"content": "a"})
            assert first.status_code == 403 and "Retry-After" not in first.headers
            assert "secondary rate limit" in first.json()["message"]
            clock.now += 30
            assert (await gh.post(f"{API}/git/blobs", json={"content": "b"})).status_code == 403
            assert (await gh.get(f"{API}/git/ref/heads/main")).status_code == 200
        assert [(when, trip) for _, when, trip in github.secondary_refusals] == [
            (clock.now - 30, True),
            (clock.now, False),
        ]


async def test_concurrent_writes_by_one_caller_trip_the_secondary_limit(standin: GitHubStandIn) -> None:
    standin.set_secondary_limits(concurrent=1)
    async with person(standin, "alice") as gh:
        main = (await gh.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"]
        route = "POST /repos/{owner}/{repo}/git/refs"
        async with standin.state.write_lock:  # hold the first write inside its handler
            first = asyncio.create_task(gh.post(f"{API}/git/refs", json={"ref": "refs/heads/a", "sha": main}))
            for _ in range(200):
                if standin.requests[route] == 1:
                    break
                await asyncio.sleep(0.01)
            second = await gh.post(f"{API}/git/refs", json={"ref": "refs/heads/b", "sha": main})
        assert second.status_code == 403 and "secondary rate limit" in second.json()["message"]
        assert (await first).status_code == 201
