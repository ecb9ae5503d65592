"""Who may call the GitHub stand-in and what it costs them: App JWTs and installation tokens (also those
githubkit cached from an earlier stand-in), rate-limit headers with free 304s, injected faults as
githubkit classifies them, pagination links and GitHub's JSON 404."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy
from githubkit.exception import RequestFailed, SecondaryRateLimitExceeded

from bot.sandbox.github_standin import GitHubStandIn

OWNER, REPO = "acme", "gitops"
SEED = {"README.md": b"# gitops\n"}


class Rest:
    """REST 2022-11-28 of a githubkit client, holding the client (githubkit keeps only a weak reference)."""

    def __init__(self, github: Any) -> None:
        self.github = github

    def __getattr__(self, name: str) -> Any:
        return getattr(self.github.rest("2022-11-28"), name)


def installation_client(standin: GitHubStandIn, **options: Any) -> Rest:
    app = GitHub(AppAuthStrategy(1, standin.app_private_key_pem), base_url=standin.base_url, **options)
    return Rest(app.with_auth(app.auth.as_installation(1)))


@pytest.fixture
async def standin(tmp_path: Path) -> AsyncIterator[GitHubStandIn]:
    github = GitHubStandIn(tmp_path, webhook_secret="not-a-real-secret")
    await github.seed(SEED)
    async with github:
        yield github


@pytest.fixture
def rest(standin: GitHubStandIn) -> Rest:
    return installation_client(standin, auto_retry=False, http_cache=False)


async def test_app_endpoints_accept_the_app_jwt_and_list_the_installation(standin: GitHubStandIn) -> None:
    app = Rest(GitHub(AppAuthStrategy(1, standin.app_private_key_pem), base_url=standin.base_url))
    assert [i.id for i in (await app.apps.async_list_installations()).parsed_data] == [1]
    assert (await app.apps.async_get_repo_installation(OWNER, REPO)).parsed_data.app_id == 1
    token = (await app.apps.async_create_installation_access_token(1)).parsed_data
    assert token.token.startswith("ghs_")


async def test_a_jwt_signed_by_another_key_is_refused_with_401(standin: GitHubStandIn) -> None:
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    forged = jwt.encode(
        {"iss": "1", "iat": int(time.time()) - 60, "exp": int(time.time()) + 540}, stranger, "RS256"
    )
    async with httpx.AsyncClient(base_url=standin.base_url) as client:
        answer = await client.post(
            "/app/installations/1/access_tokens", headers={"Authorization": f"Bearer {forged}"}
        )
        anonymous = await client.get(f"/repos/{OWNER}/{REPO}")
    assert answer.status_code == 401 and answer.json()["message"] == "A JSON web token could not be decoded"
    assert anonymous.status_code == 401


async def test_a_conditional_get_answers_304_without_spending_rate_limit(
    standin: GitHubStandIn, rest: Any
) -> None:
    token = standin.add_user("watcher", "read")
    headers = {"Authorization": f"token {token}"}
    async with httpx.AsyncClient(base_url=standin.base_url, headers=headers) as client:
        first = await client.get(f"/repos/{OWNER}/{REPO}/git/ref/heads/main")
        repeat = await client.get(
            f"/repos/{OWNER}/{REPO}/git/ref/heads/main", headers={"If-None-Match": first.headers["ETag"]}
        )
        third = await client.get(f"/repos/{OWNER}/{REPO}/pulls")
    assert repeat.status_code == 304 and repeat.content == b""
    assert int(first.headers["X-RateLimit-Used"]) == int(repeat.headers["X-RateLimit-Used"]) == 1
    assert third.headers["X-RateLimit-Remaining"] == "4998"
    assert standin.requests["GET /repos/{owner}/{repo}/git/ref/{ref}"] == 2


async def test_fail_next_answers_the_next_matching_request_then_recovers(
    standin: GitHubStandIn, rest: Any
) -> None:
    standin.fail_next("GET", "/repos/{owner}/{repo}/pulls", 502, times=2)
    for _ in range(2):
        with pytest.raises(RequestFailed) as failed:
            await rest.pulls.async_list(OWNER, REPO)
        assert failed.value.response.status_code == 502
    assert (await rest.pulls.async_list(OWNER, REPO)).parsed_data == []
    assert standin.requests["GET /repos/{owner}/{repo}/pulls"] == 3


async def test_a_secondary_rate_limit_fault_is_recognised_by_githubkit_with_its_retry_after(
    standin: GitHubStandIn, rest: Any
) -> None:
    standin.fail_next(
        "POST",
        "/repos/{owner}/{repo}/git/blobs",
        403,
        headers={"Retry-After": "30"},
        body={"message": "You have exceeded a secondary rate limit. Please wait a few minutes."},
    )
    with pytest.raises(SecondaryRateLimitExceeded) as limited:
        await rest.git.async_create_blob(OWNER, REPO, content="x", encoding="utf-8")
    assert limited.value.retry_after.total_seconds() == 30


async def test_pagination_links_lead_through_every_commit(standin: GitHubStandIn) -> None:
    for n in range(4):
        await standin.push_files({f"f{n}.txt": b"x"}, f"commit {n}")
    token = standin.add_user("reader", "read")
    seen: list[str] = []
    url: str | None = f"{standin.base_url}/repos/{OWNER}/{REPO}/commits?per_page=2"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as client:
        while url:
            page = await client.get(url)
            seen += [c["sha"] for c in page.json()]
            url = page.links.get("next", {}).get("url")
    assert len(seen) == len(set(seen)) == 5


async def test_unknown_routes_and_repositories_answer_githubs_json_404(standin: GitHubStandIn) -> None:
    token = standin.add_user("reader", "read")
    async with httpx.AsyncClient(
        base_url=standin.base_url, headers={"Authorization": f"token {token}"}
    ) as client:
        for path in (
            "/repos/acme/other",
            "/nowhere",
            f"/repos/{OWNER}/{REPO}/pulls/99",
            f"/repos/{OWNER}/{REPO}/contents/nope",
        ):
            answer = await client.get(path)
            assert answer.status_code == 404, path
            assert answer.json()["message"] == "Not Found"


async def test_githubkits_http_cache_revalidates_so_idle_reads_cost_no_rate_limit(
    standin: GitHubStandIn,
) -> None:
    rest = installation_client(standin, cache_strategy=MemCacheStrategy())  # http_cache is on by default
    seen = []
    for _ in range(3):
        answer = await rest.git.async_get_ref(OWNER, REPO, "heads/main")
        seen.append((answer.parsed_data.object_.sha, answer.headers["X-RateLimit-Used"]))
    moved = await standin.push_files({"README.md": b"moved"}, "Move main")
    after = await rest.git.async_get_ref(OWNER, REPO, "heads/main")
    assert [used for _, used in seen] == ["1", "1", "1"] and len({sha for sha, _ in seen}) == 1
    assert after.parsed_data.object_.sha == moved and after.headers["X-RateLimit-Used"] == "2"


async def test_a_token_cached_from_an_earlier_stand_in_is_accepted_by_the_next(tmp_path: Path) -> None:
    cache = MemCacheStrategy()  # githubkit's cache outlives one stand-in, as in a test session or a restart
    heads = []
    for name in ("first", "second"):
        async with GitHubStandIn(tmp_path / name, webhook_secret="s") as github:
            await github.seed(SEED)
            rest = installation_client(github, cache_strategy=cache)
            heads.append((await rest.git.async_get_ref(OWNER, REPO, "heads/main")).parsed_data.ref)
            assert github.requests["POST /app/installations/{installation_id}/access_tokens"] == (
                name == "first"
            )
    assert heads == ["refs/heads/main", "refs/heads/main"]
