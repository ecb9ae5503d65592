"""Every list the GitHub stand-in serves pages as GitHub's do: ``per_page`` (default 30, at most 100) and
``page`` with an RFC 5988 ``Link`` header (rel next/last), so a client that reads one page misses the
rest; and the repository-wide comment lists answer ``since``, ``sort`` and ``direction``."""

from __future__ import annotations

from pathlib import Path

import httpx
from github_standin_helpers import (
    API,
    OWNER,
    REPO,
    SECRET,
    SEED,
    Clock,
    branch_with_change,
    installation_client,
    person,
    seeded_standin,  # noqa: F401 - the ``standin`` fixture
)

from bot.sandbox.github_standin import GitHubStandIn


async def walk(gh: httpx.AsyncClient, path: str, per_page: int, key: str | None = None) -> list[object]:
    """Follow rel="next" from the first page; the ids (or commit shas) seen."""
    seen: list[object] = []
    url: str | None = f"{path}{'&' if '?' in path else '?'}per_page={per_page}"
    while url:
        page = await gh.get(url)
        assert page.status_code == 200, (path, page.text)
        items = page.json()[key] if key else page.json()
        assert len(items) <= per_page
        seen += [item.get("id", item.get("sha")) for item in items]
        url = page.links.get("next", {}).get("url")
        if url:
            assert "last" in page.links
    return seen


async def test_each_list_ferry_reads_pages_with_link_headers(standin: GitHubStandIn) -> None:
    async with person(standin, "alice", "admin") as gh:
        head = await branch_with_change(gh, "ferry/dev/one", "envs/dev/values.yaml", "tag: 2\n")
        pr = (
            await gh.post(f"{API}/pulls", json={"title": "p", "head": "ferry/dev/one", "base": "main"})
        ).json()
        for n in range(3):
            await gh.post(f"{API}/issues/{pr['number']}/comments", json={"body": f"c{n}"})
            await gh.post(f"{API}/commits/{head}/comments", json={"body": f"c{n}"})
            await gh.post(f"{API}/statuses/{head}", json={"state": "pending", "context": f"ctx/{n}"})
            deployment = (
                await gh.post(
                    f"{API}/deployments", json={"ref": head, "required_contexts": [], "environment": f"e{n}"}
                )
            ).json()
            await gh.post(f"{API}/deployments/{deployment['id']}/statuses", json={"state": "queued"})
            await standin.review(pr["number"], f"reviewer{n}", "COMMENT", body=f"r{n}")
        lists = {
            f"{API}/pulls/{pr['number']}/reviews": 3,
            f"{API}/issues/{pr['number']}/comments": 3,
            f"{API}/issues/comments": 3,
            f"{API}/commits/{head}/comments": 3,
            f"{API}/comments": 3,
            f"{API}/commits/{head}/statuses": 3,
            f"{API}/commits?sha=ferry/dev/one": 2,
            f"{API}/deployments": 3,
            f"{API}/pulls": 1,
        }
        for path, count in lists.items():
            assert len(set(await walk(gh, path, per_page=2))) == count, path
        assert len(await walk(gh, f"{API}/environments", per_page=2, key="environments")) == 3
        combined = await gh.get(f"{API}/commits/{head}/status", params={"per_page": 2})
        assert len(combined.json()["statuses"]) == 2 and combined.json()["total_count"] == 3
        assert 'rel="next"' in combined.headers["Link"]
    rest = installation_client(standin)
    installations = await rest.apps.async_list_repos_accessible_to_installation(per_page=1)
    assert installations.parsed_data.total_count == 1 and "Link" not in installations.headers


async def test_per_page_stops_at_100_and_defaults_to_30(standin: GitHubStandIn) -> None:
    async with person(standin, "alice") as gh:
        main = (await gh.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"]
        for n in range(101):
            answer = await gh.post(f"{API}/statuses/{main}", json={"state": "success", "context": f"c/{n}"})
            assert answer.status_code == 201
        big = await gh.get(f"{API}/commits/{main}/statuses", params={"per_page": 500})
        assert len(big.json()) == 100 and "page=2" in big.links["next"]["url"]
        default = await gh.get(f"{API}/commits/{main}/status")
        assert (len(default.json()["statuses"]), default.json()["total_count"]) == (30, 101)
        assert default.json()["state"] == "success"
        last = await gh.get(big.links["last"]["url"])
        assert len(last.json()) == 1 and "next" not in last.links and "prev" in last.links


async def test_repository_comments_since_a_time_in_the_order_asked(tmp_path: Path) -> None:
    clock = Clock()
    async with GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock) as github:
        await github.seed(SEED)
        async with person(github, "alice") as gh:
            await branch_with_change(gh, "ferry/dev/one", "a.txt", "a")
            pr = (
                await gh.post(f"{API}/pulls", json={"title": "p", "head": "ferry/dev/one", "base": "main"})
            ).json()
            ids = []
            for n in range(3):
                made = await gh.post(f"{API}/issues/{pr['number']}/comments", json={"body": f"/status {n}"})
                ids.append(made.json()["id"])
                clock.now += 60
            await gh.patch(f"{API}/issues/comments/{ids[0]}", json={"body": "/status edited"})

            async def listed(**params: str) -> list[int]:
                answer = await gh.get(f"{API}/issues/comments", params=params)
                assert answer.status_code == 200, answer.text
                return [c["id"] for c in answer.json()]

            assert await listed() == ids  # ascending id
            assert await listed(since="2025-06-15T15:08:10Z") == [ids[0], ids[2]]  # updated since
            assert await listed(sort="updated", direction="asc") == [ids[1], ids[2], ids[0]]
            assert await listed(sort="created", direction="desc") == ids[::-1]
            assert (await gh.get(f"{API}/issues/comments", params={"since": "yesterday"})).status_code == 422
            spaced = await gh.get(f"{API}/issues/comments", params={"since": "2025-06-15 15:08:10+00:00"})
            assert spaced.status_code == 422 and "YYYY-MM-DDTHH:MM:SSZ" in spaced.json()["message"]
            per_issue = await gh.get(
                f"{API}/issues/{pr['number']}/comments", params={"since": "2025-06-15T15:08:10Z"}
            )
            assert [c["id"] for c in per_issue.json()] == [ids[0], ids[2]]
        rest = installation_client(github)
        typed = (await rest.issues.async_list_comments_for_repo(OWNER, REPO, per_page=100)).parsed_data
        assert [c.id for c in typed] == ids
        commits = (await rest.repos.async_list_commit_comments_for_repo(OWNER, REPO)).parsed_data
        assert commits == []
