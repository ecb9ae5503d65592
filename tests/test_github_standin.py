"""The GitHub stand-in answers a real githubkit client (App JWT, installation token, REST 2022-11-28) with
bodies its typed models parse, over a real git repository, and fails the way GitHub fails."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from githubkit import AppAuthStrategy, GitHub
from githubkit.exception import RequestFailed

from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.gitstore import GitStore, Signature

OWNER, REPO = "acme", "gitops"
SEED = {
    "README.md": b"# gitops\n",
    "envs/dev/values.yaml": b"image:\n  tag: 1.0.0\n",
    "envs/prod/values.yaml": b"image:\n  tag: 0.9.0\n",
}


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[GitHubStandIn]:
    github = GitHubStandIn(tmp_path, webhook_secret="not-a-real-secret")
    await github.seed(SEED)
    async with github:
        yield github


class Rest:
    """REST 2022-11-28 of a githubkit client, holding the client (githubkit keeps only a weak reference)."""

    def __init__(self, github: Any) -> None:
        self.github = github

    def __getattr__(self, name: str) -> Any:
        return getattr(self.github.rest("2022-11-28"), name)


def app_client(standin: GitHubStandIn) -> Any:
    # githubkit's default (process-wide) token cache, as Ferry gets it: successive stand-ins accept it.
    return GitHub(
        AppAuthStrategy(1, standin.app_private_key_pem),
        base_url=standin.base_url,
        auto_retry=False,
        http_cache=False,
    )


def installation_client(standin: GitHubStandIn) -> Rest:
    """The same client Ferry builds: App auth, then the installation."""
    app = app_client(standin)
    return Rest(app.with_auth(app.auth.as_installation(1)))


@pytest.fixture
def rest(standin: GitHubStandIn) -> Any:
    return installation_client(standin)


async def branch_with_change(rest: Any, branch: str, path: str, text: str, base: str = "heads/main") -> str:
    """One commit through the Git Data API (blob, tree, commit, ref), as Ferry makes promotions."""
    parent = (await rest.git.async_get_ref(OWNER, REPO, base)).parsed_data.object_.sha
    base_tree = (await rest.git.async_get_commit(OWNER, REPO, parent)).parsed_data.tree.sha
    blob = (await rest.git.async_create_blob(OWNER, REPO, content=text, encoding="utf-8")).parsed_data
    tree = (
        await rest.git.async_create_tree(
            OWNER,
            REPO,
            base_tree=base_tree,
            tree=[{"path": path, "mode": "100644", "type": "blob", "sha": blob.sha}],
        )
    ).parsed_data
    commit = (
        await rest.git.async_create_commit(
            OWNER, REPO, message=f"Change {path}\n\nFerry-Stage: dev", tree=tree.sha, parents=[parent]
        )
    ).parsed_data
    await rest.git.async_create_ref(OWNER, REPO, ref=f"refs/heads/{branch}", sha=commit.sha)
    return str(commit.sha)


async def test_a_promotion_made_through_githubkit_lands_on_main_as_a_real_merge(
    standin: GitHubStandIn, rest: Any
) -> None:
    head = await branch_with_change(
        rest, "ferry/dev/abc123", "envs/dev/values.yaml", "image:\n  tag: 1.1.0\n"
    )
    commit = (await rest.git.async_get_commit(OWNER, REPO, head)).parsed_data
    assert commit.verification.verified is True
    assert commit.author.name == "ferry-sandbox[bot]"

    pr = (
        await rest.pulls.async_create(
            OWNER, REPO, title="Promote web 1.1.0 to dev", head="ferry/dev/abc123", base="main", body="table"
        )
    ).parsed_data
    assert (pr.mergeable, pr.mergeable_state, pr.changed_files, pr.head.sha) == (True, "clean", 1, head)
    labels = (
        await rest.issues.async_add_labels(OWNER, REPO, pr.number, labels=["ferry", "stage:dev"])
    ).parsed_data
    assert [label.name for label in labels] == ["ferry", "stage:dev"]
    comment = (
        await rest.issues.async_create_comment(OWNER, REPO, pr.number, body="Gate is green.")
    ).parsed_data
    assert comment.user.login == "ferry-sandbox[bot]"
    status = (
        await rest.repos.async_create_commit_status(
            OWNER,
            REPO,
            head,
            state="success",
            context="ferry/gate",
            description="verified in every upstream stage",
            target_url=pr.html_url,
        )
    ).parsed_data
    assert status.creator.type == "Bot"
    combined = (
        await rest.repos.async_get_combined_status_for_ref(OWNER, REPO, "ferry/dev/abc123")
    ).parsed_data
    assert (combined.state, combined.total_count, combined.sha) == ("success", 1, head)

    standin.add_user("alice", "write")
    merged = (
        await rest.pulls.async_merge(OWNER, REPO, pr.number, sha=head, merge_method="merge")
    ).parsed_data
    after = (await rest.pulls.async_get(OWNER, REPO, pr.number)).parsed_data
    assert (after.merged, after.state, after.merge_commit_sha) == (True, "closed", merged.sha)
    assert after.merged_by is not None and after.merged_by.login == "ferry-sandbox[bot]"

    main = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    info = await GitStore(standin.repo_path).read_commit(main)
    assert main == merged.sha and info.parents[1] == head
    content = (await rest.repos.async_get_content(OWNER, REPO, "envs/dev/values.yaml")).parsed_data
    assert base64.b64decode(content.content) == b"image:\n  tag: 1.1.0\n"
    permission = (await rest.repos.async_get_collaborator_permission_level(OWNER, REPO, "alice")).parsed_data
    assert (permission.permission, permission.role_name) == ("write", "write")


async def test_the_reads_a_reconcile_pass_makes_parse_into_the_typed_models(
    standin: GitHubStandIn, rest: Any
) -> None:
    head = await branch_with_change(
        rest, "ferry/prod/feed01", "envs/prod/values.yaml", "image:\n  tag: 1.0.0\n"
    )
    pr = (
        await rest.pulls.async_create(OWNER, REPO, title="Promote", head="ferry/prod/feed01", base="main")
    ).parsed_data
    await rest.issues.async_add_labels(OWNER, REPO, pr.number, labels=["ferry"])
    listed = (
        await rest.pulls.async_list(OWNER, REPO, state="open", head=f"{OWNER}:ferry/prod/feed01")
    ).parsed_data
    assert [p.number for p in listed] == [pr.number]
    issues = (await rest.issues.async_list_for_repo(OWNER, REPO, labels="ferry", state="all")).parsed_data
    assert issues[0].pull_request is not None
    assert (await rest.issues.async_get(OWNER, REPO, pr.number)).parsed_data.number == pr.number
    assert [
        r.ref for r in (await rest.git.async_list_matching_refs(OWNER, REPO, "heads/ferry/")).parsed_data
    ] == ["refs/heads/ferry/prod/feed01"]
    history = (
        await rest.repos.async_list_commits(OWNER, REPO, sha="ferry/prod/feed01", path="envs/prod")
    ).parsed_data
    assert history[0].sha == head and len(history) == 2
    single = (await rest.repos.async_get_commit(OWNER, REPO, head)).parsed_data
    assert [(f.filename, f.status) for f in single.files or []] == [("envs/prod/values.yaml", "modified")]
    listing = (await rest.repos.async_get_content(OWNER, REPO, "envs", ref="main")).parsed_data
    assert sorted(item.name for item in listing) == ["dev", "prod"]
    tree = (await rest.git.async_get_tree(OWNER, REPO, "main", recursive="1")).parsed_data
    assert {"README.md", "envs", "envs/dev/values.yaml"} <= {entry.path for entry in tree.tree}
    blob = (await rest.git.async_get_blob(OWNER, REPO, tree.tree[0].sha)).parsed_data
    assert base64.b64decode(blob.content) == SEED["README.md"]
    files = (await rest.pulls.async_list_files(OWNER, REPO, pr.number)).parsed_data
    assert [f.filename for f in files] == ["envs/prod/values.yaml"]

    await rest.repos.async_create_commit_status(
        OWNER, REPO, head, state="pending", context="ferry/health/prod"
    )
    await rest.repos.async_create_commit_status(
        OWNER, REPO, head, state="failure", context="ferry/health/prod"
    )
    statuses = (await rest.repos.async_list_commit_statuses_for_ref(OWNER, REPO, head)).parsed_data
    assert [s.state for s in statuses] == ["failure", "pending"]
    combined = (await rest.repos.async_get_combined_status_for_ref(OWNER, REPO, head)).parsed_data
    assert (combined.state, combined.total_count) == ("failure", 1)
    assert (await rest.pulls.async_get(OWNER, REPO, pr.number)).parsed_data.mergeable_state == "unstable"

    issue_comment = (
        await rest.issues.async_create_comment(OWNER, REPO, pr.number, body="/status")
    ).parsed_data
    eyes = await rest.reactions.async_create_for_issue_comment(OWNER, REPO, issue_comment.id, content="eyes")
    assert eyes.status_code == 201 and eyes.parsed_data.content == "eyes"
    again = await rest.reactions.async_create_for_issue_comment(OWNER, REPO, issue_comment.id, content="eyes")
    assert again.status_code == 200
    assert (
        len((await rest.reactions.async_list_for_issue_comment(OWNER, REPO, issue_comment.id)).parsed_data)
        == 1
    )
    edited = (
        await rest.issues.async_update_comment(OWNER, REPO, issue_comment.id, body="/status please")
    ).parsed_data
    assert edited.body == "/status please"
    on_commit = (
        await rest.repos.async_create_commit_comment(OWNER, REPO, head, body="/promote prod")
    ).parsed_data
    assert (
        await rest.repos.async_get_commit_comment(OWNER, REPO, on_commit.id)
    ).parsed_data.commit_id == head
    await rest.reactions.async_create_for_commit_comment(OWNER, REPO, on_commit.id, content="+1")
    assert (
        len((await rest.reactions.async_list_for_commit_comment(OWNER, REPO, on_commit.id)).parsed_data) == 1
    )
    assert len(standin.reactions) == 2 and len(standin.comments) == 2

    standin.add_user("rel", "maintain", teams=["acme/release-managers"])
    membership = (
        await rest.teams.async_get_membership_for_user_in_org(OWNER, "release-managers", "rel")
    ).parsed_data
    assert membership.state == "active"
    with pytest.raises(RequestFailed) as missing:
        await rest.teams.async_get_membership_for_user_in_org(OWNER, "release-managers", "alice")
    assert missing.value.response.status_code == 404
    assert (await rest.rate_limit.async_get()).parsed_data.resources.core.limit == 5000
    repos = (await rest.apps.async_list_repos_accessible_to_installation()).parsed_data
    assert [r.full_name for r in repos.repositories] == [f"{OWNER}/{REPO}"]
    assert (await rest.repos.async_get(OWNER, REPO)).parsed_data.default_branch == "main"
    closed = (await rest.pulls.async_update(OWNER, REPO, pr.number, state="closed")).parsed_data
    assert (closed.state, closed.merged) == ("closed", False)


async def test_merging_a_conflicting_pull_request_is_refused_with_405(rest: Any) -> None:
    await branch_with_change(rest, "ferry/dev/one", "envs/dev/values.yaml", "image:\n  tag: 1.1.0\n")
    second = await branch_with_change(rest, "ferry/dev/two", "envs/dev/values.yaml", "image:\n  tag: 1.2.0\n")
    first_pr = (
        await rest.pulls.async_create(OWNER, REPO, title="one", head="ferry/dev/one", base="main")
    ).parsed_data
    second_pr = (
        await rest.pulls.async_create(OWNER, REPO, title="two", head="ferry/dev/two", base="main")
    ).parsed_data
    await rest.pulls.async_merge(OWNER, REPO, first_pr.number)
    now = (await rest.pulls.async_get(OWNER, REPO, second_pr.number)).parsed_data
    assert (now.mergeable, now.mergeable_state) == (False, "dirty")
    with pytest.raises(RequestFailed) as refused:
        await rest.pulls.async_merge(OWNER, REPO, second_pr.number, sha=second)
    assert refused.value.response.status_code == 405
    with pytest.raises(RequestFailed) as again:
        await rest.pulls.async_merge(OWNER, REPO, first_pr.number)
    assert again.value.response.status_code == 405


async def test_merging_with_a_stale_head_sha_is_refused_with_409(rest: Any) -> None:
    stale = await branch_with_change(
        rest, "ferry/dev/moving", "envs/dev/values.yaml", "image:\n  tag: 1.1.0\n"
    )
    pr = (
        await rest.pulls.async_create(OWNER, REPO, title="moving", head="ferry/dev/moving", base="main")
    ).parsed_data
    blob = (await rest.git.async_create_blob(OWNER, REPO, content="x", encoding="utf-8")).parsed_data
    tree = await rest.git.async_create_tree(
        OWNER,
        REPO,
        base_tree=(await rest.git.async_get_commit(OWNER, REPO, stale)).parsed_data.tree.sha,
        tree=[{"path": "x", "mode": "100644", "type": "blob", "sha": blob.sha}],
    )
    newer = (
        await rest.git.async_create_commit(
            OWNER, REPO, message="more", tree=tree.parsed_data.sha, parents=[stale]
        )
    ).parsed_data
    await rest.git.async_update_ref(OWNER, REPO, "heads/ferry/dev/moving", sha=newer.sha)
    with pytest.raises(RequestFailed) as refused:
        await rest.pulls.async_merge(OWNER, REPO, pr.number, sha=stale)
    assert refused.value.response.status_code == 409
    assert (await rest.pulls.async_get(OWNER, REPO, pr.number)).parsed_data.head.sha == newer.sha


async def test_squash_merge_makes_one_commit_with_one_parent(standin: GitHubStandIn, rest: Any) -> None:
    head = await branch_with_change(
        rest, "ferry/dev/squash", "envs/dev/values.yaml", "image:\n  tag: 2.0.0\n"
    )
    pr = await rest.pulls.async_create(
        OWNER, REPO, title="Promote 2.0.0", head="ferry/dev/squash", base="main"
    )
    merged = (
        await rest.pulls.async_merge(OWNER, REPO, pr.parsed_data.number, sha=head, merge_method="squash")
    ).parsed_data
    info = await GitStore(standin.repo_path).read_commit(merged.sha)
    assert len(info.parents) == 1 and info.message.startswith("Promote 2.0.0 (#1)")


async def test_a_second_pull_request_for_the_same_branch_is_refused_with_422(rest: Any) -> None:
    await branch_with_change(rest, "ferry/dev/dup", "envs/dev/values.yaml", "image:\n  tag: 1.1.0\n")
    await rest.pulls.async_create(OWNER, REPO, title="first", head="ferry/dev/dup", base="main")
    with pytest.raises(RequestFailed) as refused:
        await rest.pulls.async_create(OWNER, REPO, title="second", head="acme:ferry/dev/dup", base="main")
    body = refused.value.response.json()
    assert refused.value.response.status_code == 422
    assert body["errors"][0]["message"] == "A pull request already exists for acme:ferry/dev/dup."


async def test_a_status_description_over_140_characters_is_refused_with_422(rest: Any) -> None:
    main = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    with pytest.raises(RequestFailed) as refused:
        await rest.repos.async_create_commit_status(
            OWNER, REPO, main, state="failure", context="ferry/config", description="x" * 141
        )
    assert refused.value.response.status_code == 422
    fits = await rest.repos.async_create_commit_status(
        OWNER, REPO, main, state="failure", description="x" * 140
    )
    assert fits.status_code == 201


async def test_moving_a_branch_backwards_needs_force(rest: Any) -> None:
    await branch_with_change(rest, "ferry/dev/back", "envs/dev/values.yaml", "image:\n  tag: 1.1.0\n")
    main = (await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha
    await rest.git.async_create_ref(OWNER, REPO, ref="refs/heads/elsewhere", sha=main)
    other = await branch_with_change(rest, "ferry/dev/side", "README.md", "other\n")
    with pytest.raises(RequestFailed) as refused:
        await rest.git.async_update_ref(OWNER, REPO, "heads/ferry/dev/back", sha=other)
    assert refused.value.response.status_code == 422
    moved = (
        await rest.git.async_update_ref(OWNER, REPO, "heads/ferry/dev/back", sha=other, force=True)
    ).parsed_data
    assert moved.object_.sha == other
    await rest.git.async_delete_ref(OWNER, REPO, "heads/elsewhere")
    with pytest.raises(RequestFailed) as gone:
        await rest.git.async_get_ref(OWNER, REPO, "heads/elsewhere")
    assert gone.value.response.status_code == 404


async def test_a_tree_entry_without_sha_deletes_the_file_and_the_views_show_the_pull_request(
    standin: GitHubStandIn, rest: Any
) -> None:
    head = await main_sha(rest)
    main = (await rest.git.async_get_commit(OWNER, REPO, head)).parsed_data
    tree = await rest.git.async_create_tree(
        OWNER,
        REPO,
        base_tree=main.tree.sha,
        tree=[{"path": "envs/prod/values.yaml", "mode": "100644", "type": "blob", "sha": None}],
    )
    commit = await rest.git.async_create_commit(
        OWNER, REPO, message="Drop prod", tree=tree.parsed_data.sha, parents=[head]
    )
    await rest.git.async_create_ref(OWNER, REPO, ref="refs/heads/drop", sha=commit.parsed_data.sha)
    files = (await rest.repos.async_get_commit(OWNER, REPO, "drop")).parsed_data.files or []
    assert [(f.filename, f.status) for f in files] == [("envs/prod/values.yaml", "removed")]
    pr = (await rest.pulls.async_create(OWNER, REPO, title="Drop", head="drop", base="main")).parsed_data
    await rest.repos.async_create_commit_status(OWNER, REPO, commit.parsed_data.sha, state="pending")
    assert standin.pulls[pr.number]["head"]["sha"] == commit.parsed_data.sha
    assert [s["state"] for s in standin.statuses[commit.parsed_data.sha]] == ["pending"]


async def test_seeding_from_a_directory_keeps_dotfiles(tmp_path: Path) -> None:
    source = tmp_path / "source"
    (source / ".github").mkdir(parents=True)
    (source / ".github" / "ferry.yml").write_text("version: 1\n")
    async with GitHubStandIn(tmp_path / "github", webhook_secret="s") as github:
        sha = await github.seed_directory(source)
        entry = await GitStore(github.repo_path).entry_at(sha, ".github/ferry.yml")
    assert entry is not None and entry.type == "blob"


async def main_sha(rest: Any) -> str:
    return str((await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.object_.sha)


async def test_a_full_commit_sha_names_that_commit_even_where_a_branch_has_the_same_name(
    tmp_path: Path,
) -> None:
    # git's get_oid_basic (object-name.c): forty hex digits are the object, with only a warning
    # that a ref of that name exists; GitHub's commit endpoints take a full sha the same way.
    store = GitStore(tmp_path / "repo.git")
    await store.init()
    me = Signature("Rita", "rita@example.com", 1_700_000_000)
    tree = await store.write_tree(None, [])
    first = await store.commit_tree(tree, [], "first\n", me, me)
    second = await store.commit_tree(tree, [first], "second\n", me, me)
    await store.update_ref(f"refs/heads/{first}", second)
    await store.update_ref("refs/heads/main", second)
    assert await store.resolve_commit(first) == first
    assert await store.resolve_commit(first) == first  # asked again: the same answer
    assert await store.resolve_commit("main") == second
    assert await store.resolve_commit(f"refs/heads/{first}") == second
    assert await store.resolve_commit("0" * 40) is None
    assert (await store.read_commit(second)).parents == (first,)
    assert (await store.read_commit(second)).message == "second\n"


async def test_a_branch_read_after_it_moves_or_goes_is_where_it_is_now(tmp_path: Path) -> None:
    store = GitStore(tmp_path / "repo.git")
    await store.init()
    me = Signature("Rita", "rita@example.com", 1_700_000_000)
    tree = await store.write_tree(None, [])
    first = await store.commit_tree(tree, [], "first\n", me, me)
    second = await store.commit_tree(tree, [first], "second\n", me, me)
    assert await store.get_ref("refs/heads/main") is None
    await store.update_ref("refs/heads/main", first)
    # A listing read while the branch moves may show either commit, but is not kept as the answer.
    listing, _ = await asyncio.gather(store.refs(), store.update_ref("refs/heads/main", second, first))
    assert listing["refs/heads/main"] in (first, second)
    assert await store.get_ref("refs/heads/main") == second
    await store.update_ref("refs/heads/main", first, second)
    assert await store.get_ref("refs/heads/main") == first
    await store.update_ref("refs/heads/main", second, first)
    assert await store.resolve_commit("main") == second
    await store.delete_ref("refs/heads/main")
    assert await store.refs() == {}
