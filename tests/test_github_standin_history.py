"""The GitHub stand-in's history routes, through githubkit's typed models as Ferry reads them: the
pull request that brought a commit (docs.github.com/rest/commits/commits#list-pull-requests-associated-
with-a-commit), the comparison of two commits (…#compare-two-commits), and a path's history, which lists a
merged pull request's own commit under git's history simplification, not the merge (…#list-commits)."""

from __future__ import annotations

from typing import Any

import pytest
from githubkit.exception import RequestFailed
from test_github_standin import OWNER, REPO, branch_with_change, installation_client, rest, standin

from bot.github.history import RepoHistory
from bot.sandbox.github_standin import GitHubStandIn

__all__ = ["rest", "standin"]  # fixtures used by name


async def merged_pull(
    rest: Any, standin: GitHubStandIn, path: str, text: str, branch: str
) -> tuple[str, str, int]:
    """A pull request changing ``path``, merged with a merge commit: (head commit, merge commit, number)."""
    head = await branch_with_change(rest, branch, path, text)
    pull = (
        await rest.pulls.async_create(OWNER, REPO, data={"title": branch, "head": branch, "base": "main"})
    ).parsed_data
    merged = (await rest.pulls.async_merge(OWNER, REPO, pull.number, data={"sha": head})).parsed_data
    return head, merged.sha, pull.number


async def test_a_merged_prs_own_commit_leads_to_its_merge_commit(rest: Any, standin: GitHubStandIn) -> None:
    head, merge, number = await merged_pull(
        rest, standin, "envs/dev/values.yaml", "image:\n  tag: 1.1.0\n", "ferry/dev/a1"
    )
    history = RepoHistory(rest, OWNER, REPO)
    main = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    [latest, *_] = await history.path_history("envs/dev/values.yaml", main, 5)
    assert latest.sha == head  # the PR's own commit, as GitHub's path history lists it
    found = await history.merged_pull(head, "main", main)
    assert found is not None and (found.number, found.merge_commit_sha) == (number, merge)
    assert found.head_ref == "ferry/dev/a1"
    again = await history.merged_pull(merge, "main", main)  # the merge commit is associated as well
    assert again is not None and again.number == number


async def test_a_commit_pushed_to_main_has_no_pull_request(rest: Any, standin: GitHubStandIn) -> None:
    pushed = await standin.push_files({"README.md": b"# changed\n"}, "README")
    history = RepoHistory(rest, OWNER, REPO)
    assert await history.merged_pull(pushed, "main", pushed) is None
    pulls = await rest.repos.async_list_pull_requests_associated_with_commit(OWNER, REPO, pushed)
    assert pulls.parsed_data == []


async def test_a_commit_only_on_an_open_prs_branch_lists_that_open_pr(
    rest: Any, standin: GitHubStandIn
) -> None:
    head = await branch_with_change(rest, "feature", "README.md", "# feature\n")
    await rest.pulls.async_create(OWNER, REPO, data={"title": "feature", "head": "feature", "base": "main"})
    pulls = (await rest.repos.async_list_pull_requests_associated_with_commit(OWNER, REPO, head)).parsed_data
    assert [p.state for p in pulls] == ["open"]
    assert await RepoHistory(rest, OWNER, REPO).merged_pull(head, "main", head) is None  # not merged


async def test_compare_tells_same_descendants_ancestors_and_diverged_commits(
    rest: Any, standin: GitHubStandIn
) -> None:
    history = RepoHistory(rest, OWNER, REPO)
    base = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    readme = await standin.push_files({"README.md": b"# readme\n"}, "README")
    dev = await standin.push_files({"envs/dev/values.yaml": b"image:\n  tag: 2.0.0\n"}, "dev")
    side = await branch_with_change(rest, "side", "README.md", "# side\n", base="heads/main")
    paths = ["envs/dev/values.yaml"]
    assert await history.relation(base, base, paths) == "same"
    assert await history.relation(base, readme, paths) == "equivalent"
    assert await history.relation(base, dev, paths) == "moved_on"
    assert await history.relation(dev, base, paths) == "behind"
    await standin.push_files({"envs/prod/values.yaml": b"image:\n  tag: 3.0.0\n"}, "prod")
    assert await history.relation(side, dev, paths) == "behind"  # side branched from dev's head
    other = await standin.push_files({"README.md": b"# main moves on\n"}, "main")
    assert await history.relation(side, other, paths) == "diverged"


async def test_compare_lists_files_three_dot_and_pages_like_github(rest: Any, standin: GitHubStandIn) -> None:
    base = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    head = await standin.push_files({"a.txt": b"a\n", "b.txt": b"b\n"}, "two files")
    compared = (await rest.repos.async_compare_commits(OWNER, REPO, f"{base}...{head}")).parsed_data
    assert (compared.status, compared.ahead_by, compared.behind_by) == ("ahead", 1, 0)
    assert sorted(f.filename for f in compared.files or ()) == ["a.txt", "b.txt"]
    assert [c.sha for c in compared.commits] == [head]
    second_page = (
        await rest.repos.async_compare_commits(OWNER, REPO, f"{base}...{head}", page=2)
    ).parsed_data
    assert second_page.files == [] and second_page.commits == []


async def test_compare_of_an_unknown_commit_answers_404(standin: GitHubStandIn) -> None:
    rest = installation_client(standin)
    with pytest.raises(RequestFailed) as failed:
        await rest.repos.async_compare_commits(OWNER, REPO, "main..." + "0" * 40)
    assert failed.value.response.status_code == 404
