"""Repository, Git Data API (refs, blobs, trees, commits), contents and commit-history routes of the
GitHub stand-in, all read from and written to the bare repository."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import Any

from aiohttp import web

from bot.sandbox import github_shapes as shapes
from bot.sandbox.github_ops import (
    ApiError,
    GitHubOps,
    actor,
    invalid,
    json_response,
    not_found,
    paginate,
    read_json,
)
from bot.sandbox.github_state import GITHUB_COMMITTER
from bot.sandbox.gitstore import Signature, TreeChange

REPO = "/repos/{owner}/{repo}"
TREE_MODES = {"100644": "blob", "100755": "blob", "120000": "blob", "040000": "tree", "160000": "commit"}
SHA_HEX = set("0123456789abcdef")


def _is_sha(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 40 and set(value) <= SHA_HEX


class GitRoutes:
    def __init__(self, ops: GitHubOps) -> None:
        self.ops = ops
        self.state = ops.state
        self.store = ops.state.store

    def register(self, router: web.UrlDispatcher) -> None:
        router.add_get(REPO, self.get_repo)
        router.add_get(REPO + "/git/ref/{ref:.+}", self.get_ref)
        router.add_get(REPO + "/git/matching-refs/{ref:.*}", self.matching_refs)
        router.add_post(REPO + "/git/refs", self.create_ref)
        router.add_patch(REPO + "/git/refs/{ref:.+}", self.update_ref)
        router.add_delete(REPO + "/git/refs/{ref:.+}", self.delete_ref)
        router.add_post(REPO + "/git/blobs", self.create_blob)
        router.add_get(REPO + "/git/blobs/{file_sha}", self.get_blob)
        router.add_post(REPO + "/git/trees", self.create_tree)
        router.add_get(REPO + "/git/trees/{tree_sha:.+}", self.get_tree)
        router.add_post(REPO + "/git/commits", self.create_commit)
        router.add_get(REPO + "/git/commits/{commit_sha}", self.get_git_commit)
        router.add_get(REPO + "/contents", self.get_contents)
        router.add_get(REPO + "/contents/{path:.*}", self.get_contents)
        router.add_get(REPO + "/commits", self.list_commits)

    def register_late(self, router: web.UrlDispatcher) -> None:
        """Routes whose ``{ref}`` may hold slashes; registered after the more specific ``/commits/...``."""
        router.add_get(REPO + "/commits/{ref:.+}", self.get_commit)

    async def get_repo(self, request: web.Request) -> web.Response:
        return json_response(shapes.full_repository(self.ops.site, self.ops.owner))

    # refs --------------------------------------------------------------------------------------
    async def get_ref(self, request: web.Request) -> web.Response:
        ref = "refs/" + request.match_info["ref"]
        sha = await self.store.get_ref(ref)
        if sha is None:
            raise not_found()
        return json_response(shapes.git_ref(self.ops.site, ref, sha))

    async def matching_refs(self, request: web.Request) -> web.Response:
        prefix = "refs/" + request.match_info["ref"]
        refs = sorted((r, s) for r, s in (await self.store.refs()).items() if r.startswith(prefix))
        return json_response([shapes.git_ref(self.ops.site, r, s) for r, s in refs])

    async def create_ref(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        ref, sha = body.get("ref"), body.get("sha")
        if not isinstance(ref, str) or not ref.startswith("refs/") or ref.count("/") < 2:
            raise ApiError(422, f"{ref} is not a valid ref name.")
        async with self.state.write_lock:
            if not _is_sha(sha) or await self.store.object_type(sha) is None:
                raise ApiError(422, "Object does not exist")
            if await self.store.get_ref(ref) is not None:
                raise ApiError(422, "Reference already exists")
            await self.ops.move_ref(ref, sha, actor(request))
        return json_response(shapes.git_ref(self.ops.site, ref, sha), 201)

    async def update_ref(self, request: web.Request) -> web.Response:
        ref = "refs/" + request.match_info["ref"]
        body = await read_json(request)
        sha, force = body.get("sha"), bool(body.get("force", False))
        async with self.state.write_lock:
            current = await self.store.get_ref(ref)
            if current is None:
                raise ApiError(422, "Reference does not exist")
            if not _is_sha(sha) or await self.store.object_type(sha) is None:
                raise ApiError(422, "Object does not exist")
            fast_forward = await self.store.is_ancestor(current, sha)
            if not force and not fast_forward:
                raise ApiError(422, "Update is not a fast forward")
            await self.ops.move_ref(ref, sha, actor(request), forced=not fast_forward)
        return json_response(shapes.git_ref(self.ops.site, ref, sha))

    async def delete_ref(self, request: web.Request) -> web.Response:
        ref = "refs/" + request.match_info["ref"]
        async with self.state.write_lock:
            if await self.store.get_ref(ref) is None:
                raise ApiError(422, "Reference does not exist")
            await self.ops.move_ref(ref, None, actor(request))
        return web.Response(status=204)

    # objects -----------------------------------------------------------------------------------
    async def create_blob(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        content, encoding = body.get("content"), body.get("encoding", "utf-8")
        if not isinstance(content, str):
            raise invalid(
                'Invalid request.\n\n"content" wasn\'t supplied.', "Blob", "content", "missing_field"
            )
        if encoding == "base64":
            try:
                data = base64.b64decode(content)
            except (binascii.Error, ValueError) as exc:
                raise invalid("Invalid base64 content", "Blob", "content") from exc
        elif encoding in ("utf-8", "utf8"):
            data = content.encode()
        else:
            raise invalid(f"encoding must be utf-8 or base64, not {encoding}", "Blob", "encoding")
        sha = await self.store.write_blob(data)
        return json_response({"url": f"{self.ops.site.repo_api}/git/blobs/{sha}", "sha": sha}, 201)

    async def get_blob(self, request: web.Request) -> web.Response:
        sha = request.match_info["file_sha"]
        if not _is_sha(sha) or await self.store.object_type(sha) != "blob":
            raise not_found()
        return json_response(shapes.blob(self.ops.site, sha, await self.store.read_blob(sha)))

    async def _tree_of(self, rev: str) -> str | None:
        kind = await self.store.object_type(rev) if _is_sha(rev) else None
        if kind == "tree":
            return rev
        commit = await self.store.resolve_commit(rev)
        return (await self.store.read_commit(commit)).tree if commit else None

    async def get_tree(self, request: web.Request) -> web.Response:
        tree_sha = await self._tree_of(request.match_info["tree_sha"])
        if tree_sha is None:
            raise not_found()
        recursive = request.query.get("recursive", "") not in ("", "0", "false")
        entries = await self.store.ls_tree(tree_sha, recursive=recursive)
        return json_response(shapes.tree(self.ops.site, tree_sha, entries))

    async def create_tree(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        items, base = body.get("tree"), body.get("base_tree")
        if not isinstance(items, list):
            raise invalid('Invalid request.\n\n"tree" wasn\'t supplied.', "Tree", "tree", "missing_field")
        if base is not None and (not _is_sha(base) or (base := await self._tree_of(base)) is None):
            raise invalid("base_tree is not a valid tree oid", "Tree", "base_tree")
        changes = []
        for item in items:
            path, mode = item.get("path"), item.get("mode")
            kind = item.get("type", TREE_MODES.get(mode or ""))
            if not isinstance(path, str) or not path or mode not in TREE_MODES or kind != TREE_MODES[mode]:
                raise invalid(
                    f"tree.path {path!r}: mode {mode!r} and type {kind!r} do not match", "Tree", "tree"
                )
            if "content" in item and item["content"] is not None:
                sha = await self.store.write_blob(str(item["content"]).encode())
            else:
                sha = item.get("sha")
                if sha is not None and (not _is_sha(sha) or await self.store.object_type(sha) != kind):
                    raise invalid(f"tree.sha {sha} is not a valid {kind}", "Tree", "tree")
            changes.append(TreeChange(path.strip("/"), mode, kind, sha))
        tree_sha = await self.store.write_tree(base, changes)
        entries = await self.store.ls_tree(tree_sha)
        return json_response(shapes.tree(self.ops.site, tree_sha, entries), 201)

    def _signature(self, value: Any, fallback: Signature) -> Signature:
        if not isinstance(value, dict):
            return fallback
        when = fallback.timestamp
        if isinstance(value.get("date"), str):
            try:
                when = int(datetime.fromisoformat(value["date"].replace("Z", "+00:00")).timestamp())
            except ValueError as exc:
                raise invalid(f"date {value['date']!r} is not ISO 8601", "Commit", "author") from exc
        return Signature(str(value.get("name", fallback.name)), str(value.get("email", fallback.email)), when)

    async def create_commit(self, request: web.Request) -> web.Response:
        body = await read_json(request)
        message, tree, parents = body.get("message"), body.get("tree"), body.get("parents", [])
        if not isinstance(message, str):
            raise invalid(
                'Invalid request.\n\n"message" wasn\'t supplied.', "Commit", "message", "missing_field"
            )
        if not _is_sha(tree) or await self.store.object_type(tree) != "tree":
            raise ApiError(422, "Tree SHA does not exist")
        for parent in parents:
            if not _is_sha(parent) or await self.store.object_type(parent) != "commit":
                raise ApiError(422, "Parent SHA does not exist or is not a commit object")
        who = actor(request)
        now = int(self.state.clock())
        default = Signature(who.login, who.email, now)
        author = self._signature(body.get("author"), default)
        committer = self._signature(
            body.get("committer"), author if "author" in body else Signature(*GITHUB_COMMITTER, now)
        )
        sha = await self.store.commit_tree(tree, parents, message, author, committer)
        if "author" not in body and "committer" not in body:
            self.state.verified.add(sha)  # GitHub signs API commits made without a custom identity
        info = await self.store.read_commit(sha)
        return json_response(shapes.git_commit(self.ops.site, info, sha in self.state.verified), 201)

    async def get_git_commit(self, request: web.Request) -> web.Response:
        sha = request.match_info["commit_sha"]
        if not _is_sha(sha) or await self.store.object_type(sha) != "commit":
            raise not_found()
        info = await self.store.read_commit(sha)
        return json_response(shapes.git_commit(self.ops.site, info, sha in self.state.verified))

    # contents and history ----------------------------------------------------------------------
    async def get_contents(self, request: web.Request) -> web.Response:
        ref = request.query.get("ref", "main")
        path = request.match_info.get("path", "").strip("/")
        commit = await self.store.resolve_commit(ref)
        if commit is None:
            raise ApiError(404, f"No commit found for the ref {ref}")
        entry = await self.store.entry_at(commit, path)
        if entry is None:
            raise not_found()
        site = self.ops.site
        if entry.type == "tree":
            children = await self.store.ls_tree(commit, f"{path}/" if path else "")
            return json_response([shapes.content_entry(site, child, ref) for child in children])
        data = await self.store.read_blob(entry.sha) if entry.type == "blob" else b""
        return json_response(shapes.content_entry(site, entry, ref, data))

    async def list_commits(self, request: web.Request) -> web.Response:
        rev = request.query.get("sha", "main")
        if await self.store.get_ref("refs/heads/main") is None:
            raise ApiError(409, "Git Repository is empty.")
        start = await self.ops.commit_or_404(rev)
        shas = await self.store.rev_list(start, request.query.get("path") or None)
        page, headers = paginate(request, shas)
        bodies = [await self.ops.commit_body(sha, files=False) for sha in page]
        return json_response(bodies, headers=headers)

    async def get_commit(self, request: web.Request) -> web.Response:
        sha = await self.ops.commit_or_404(request.match_info["ref"])
        return json_response(await self.ops.commit_body(sha, files=True))
