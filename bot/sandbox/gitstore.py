"""A bare git repository on disk, driven through the ``git`` command line in asyncio subprocesses.

This is the GitHub stand-in's object database and ref store: blobs, trees and commits are real git
objects, so anything that reads the repository (Argo CD's stand-in, ``git log`` in a test) sees exactly
what the API wrote. Only plumbing commands are used; nothing here knows about HTTP or GitHub shapes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ZERO_SHA = "0" * 40
_HEX = frozenset("0123456789abcdef")
EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


def _full_sha(rev: str) -> bool:
    return len(rev) == 40 and _HEX.issuperset(rev)


class GitStoreError(Exception):
    """A git command failed; ``stderr`` holds git's own explanation."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.returncode = returncode
        self.stderr = stderr
        super().__init__(f"git {' '.join(args)} exited {returncode}: {stderr.strip()}")


@dataclass(frozen=True)
class Signature:
    """An author or committer line: who, and when (Unix seconds, UTC)."""

    name: str
    email: str
    timestamp: int


@dataclass(frozen=True)
class CommitInfo:
    sha: str
    tree: str
    parents: tuple[str, ...]
    author: Signature
    committer: Signature
    message: str
    raw_header: str


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    type: str
    sha: str
    path: str
    size: int | None


@dataclass(frozen=True)
class TreeChange:
    """One entry of a new tree: ``sha`` None deletes the path; ``type`` "tree" grafts a whole subtree."""

    path: str
    mode: str
    type: str
    sha: str | None


@dataclass(frozen=True)
class FileChange:
    filename: str
    status: str  # GitHub's words: added, removed, modified, renamed
    additions: int
    deletions: int
    sha: str


_STATUS_WORDS = {"A": "added", "D": "removed", "M": "modified", "T": "changed", "R": "renamed"}


@dataclass(frozen=True)
class RefUpdate:
    """One move of a ref, as git's reflog keeps it: the new value (``ZERO_SHA``: deleted) and when
    (seconds since the epoch). Lets a test ask what a branch's head was at a given moment."""

    ref: str
    new: str
    at: float


class GitStore:
    """Async plumbing over one bare repository at ``path``; ``ref_log`` lists every ref move made
    through it, oldest first."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ref_log: list[RefUpdate] = []
        # Commits never change once written, so what git said of one is kept: each answer saves a git
        # process (~5 ms CPU), and a sandbox run asks about the same few commits ~1,000 times.
        self._commits: dict[str, CommitInfo] = {}
        self._commit_shas: set[str] = set()
        # Refs move only through update_ref and delete_ref below, so the last listing stands until one
        # of them runs; ``_ref_moves`` counts their starts and ends, so that a listing read while one
        # ran is not kept.
        self._refs: dict[str, str] | None = None
        self._ref_moves = 0

    async def run(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: Mapping[str, str] | None = None,
        ok_codes: tuple[int, ...] = (0,),
    ) -> tuple[int, bytes]:
        full_env = {**os.environ, "GIT_DIR": str(self.path), "LC_ALL": "C", **(env or {})}
        proc = await asyncio.create_subprocess_exec(
            "git",
            *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=full_env,
        )
        out, err = await proc.communicate(stdin)
        code = proc.returncode if proc.returncode is not None else -1
        if code not in ok_codes:
            raise GitStoreError(args, code, err.decode("utf-8", "replace"))
        return code, out

    async def _out(self, *args: str, stdin: bytes | None = None, env: Mapping[str, str] | None = None) -> str:
        return (await self.run(*args, stdin=stdin, env=env))[1].decode("utf-8", "surrogateescape")

    async def init(self, default_branch: str = "main") -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        async with self._moving_refs():
            await self.run("init", "--quiet", "--bare", f"--initial-branch={default_branch}", str(self.path))

    # objects ---------------------------------------------------------------------------------
    async def write_blob(self, data: bytes) -> str:
        return (await self._out("hash-object", "-w", "--stdin", stdin=data)).strip()

    async def object_type(self, sha: str) -> str | None:
        code, out = await self.run("cat-file", "-t", sha, ok_codes=(0, 1, 128))
        return out.decode().strip() if code == 0 else None

    async def read_blob(self, sha: str) -> bytes:
        return (await self.run("cat-file", "blob", sha))[1]

    async def resolve_commit(self, rev: str) -> str | None:
        """The commit sha for a sha, branch, tag or full ref name, or None when nothing matches."""
        if _full_sha(rev):
            # A full object name is that object, even where a branch or tag has the same name: git's
            # get_oid_basic (object-name.c) returns it at once and only warns "refname is ambiguous".
            if rev in self._commit_shas:
                return rev
            code, _ = await self.run(
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{rev}^{{commit}}",
                ok_codes=(0, 1, 128),
            )
            if code != 0:
                return None
            self._commit_shas.add(rev)
            return rev
        candidates = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}", rev]
        for candidate in candidates:
            code, out = await self.run(
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                f"{candidate}^{{commit}}",
                ok_codes=(0, 1, 128),
            )
            if code == 0:
                return out.decode().strip()
        return None

    async def read_commit(self, sha: str) -> CommitInfo:
        known = self._commits.get(sha)
        if known is not None:
            return known
        raw = (await self.run("cat-file", "commit", sha))[1].decode("utf-8", "surrogateescape")
        header, _, message = raw.partition("\n\n")
        tree = ""
        parents: list[str] = []
        people: dict[str, Signature] = {}
        for line in header.splitlines():
            key, _, value = line.partition(" ")
            if key == "tree":
                tree = value
            elif key == "parent":
                parents.append(value)
            elif key in ("author", "committer"):
                name, _, rest = value.partition(" <")
                email, _, when = rest.partition("> ")
                people[key] = Signature(name, email, int(when.split()[0]))
        info = CommitInfo(sha, tree, tuple(parents), people["author"], people["committer"], message, header)
        if _full_sha(sha):  # an abbreviation or a ref name may come to mean another commit
            self._commits[sha] = info
        return info

    async def commit_tree(
        self, tree: str, parents: Sequence[str], message: str, author: Signature, committer: Signature
    ) -> str:
        env = {
            "GIT_AUTHOR_NAME": author.name,
            "GIT_AUTHOR_EMAIL": author.email,
            "GIT_AUTHOR_DATE": f"@{author.timestamp} +0000",
            "GIT_COMMITTER_NAME": committer.name,
            "GIT_COMMITTER_EMAIL": committer.email,
            "GIT_COMMITTER_DATE": f"@{committer.timestamp} +0000",
        }
        args = ["commit-tree", tree]
        for parent in parents:
            args += ["-p", parent]
        return (await self._out(*args, stdin=message.encode(), env=env)).strip()

    # trees -----------------------------------------------------------------------------------
    async def ls_tree(self, tree_ish: str, path: str = "", *, recursive: bool = False) -> list[TreeEntry]:
        args = ["ls-tree", "-l", "-z"]
        if recursive:
            args += ["-r", "-t"]
        args.append(tree_ish)
        if path:
            args += ["--", path]
        out = (await self.run(*args))[1].decode("utf-8", "surrogateescape")
        entries = []
        for record in filter(None, out.split("\0")):
            meta, _, name = record.partition("\t")
            mode, kind, sha, size = meta.split()
            entries.append(TreeEntry(mode, kind, sha, name, None if size == "-" else int(size)))
        return entries

    async def entry_at(self, commit: str, path: str) -> TreeEntry | None:
        """The tree entry at ``path`` in ``commit`` ("" is the root tree), or None."""
        path = path.strip("/")
        if not path:
            info = await self.read_commit(commit)
            return TreeEntry("040000", "tree", info.tree, "", None)
        found = [e for e in await self.ls_tree(commit, path) if e.path == path]
        return found[0] if found else None

    async def write_tree(self, base_tree: str | None, changes: Sequence[TreeChange]) -> str:
        """Apply ``changes`` on top of ``base_tree`` (or an empty tree) through a throwaway index."""
        with tempfile.TemporaryDirectory(prefix="ferry-index-") as tmp:
            env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
            if base_tree:
                await self.run("read-tree", base_tree, env=env)
            else:
                await self.run("read-tree", "--empty", env=env)
            lines = []
            for change in changes:
                if change.type == "tree" and change.sha:
                    continue
                lines.append(
                    f"0 {ZERO_SHA}\t{change.path}"
                    if change.sha is None
                    else f"{change.mode} {change.sha}\t{change.path}"
                )
            removed_dirs = [c.path for c in changes if c.sha is None]
            if removed_dirs:
                listed = await self._out("ls-files", "-z", "--", *removed_dirs, env=env)
                lines += [f"0 {ZERO_SHA}\t{name}" for name in filter(None, listed.split("\0"))]
            if lines:
                await self.run(
                    "update-index", "--index-info", stdin="\n".join(lines).encode() + b"\n", env=env
                )
            for change in changes:
                if change.type == "tree" and change.sha:
                    listed = await self._out("ls-files", "-z", "--", change.path, env=env)
                    stale = [f"0 {ZERO_SHA}\t{name}" for name in filter(None, listed.split("\0"))]
                    if stale:
                        await self.run(
                            "update-index", "--index-info", stdin="\n".join(stale).encode() + b"\n", env=env
                        )
                    await self.run("read-tree", f"--prefix={change.path.strip('/')}/", change.sha, env=env)
            return (await self._out("write-tree", env=env)).strip()

    async def merge_tree(self, ours: str, theirs: str) -> str | None:
        """The tree of merging ``theirs`` into ``ours``, or None when they conflict."""
        code, out = await self.run(
            "merge-tree", "--write-tree", "--no-messages", ours, theirs, ok_codes=(0, 1)
        )
        return out.decode().split()[0] if code == 0 else None

    # refs ------------------------------------------------------------------------------------
    async def refs(self) -> dict[str, str]:
        if self._refs is not None:
            return dict(self._refs)
        moves = self._ref_moves
        out = await self._out("for-each-ref", "--format=%(refname) %(objectname)")
        refs = dict(line.split(" ", 1) for line in out.splitlines() if line)
        if moves == self._ref_moves:
            self._refs = refs
        return dict(refs)

    def refs_moved_outside(self) -> None:
        """Refs were moved by a git command outside this store (a test's own ``git update-ref``): the
        kept listing is stale, read it again."""
        self._refs = None
        self._ref_moves += 1

    @contextlib.asynccontextmanager
    async def _moving_refs(self) -> AsyncIterator[None]:
        self._refs = None
        self._ref_moves += 1
        try:
            yield
        finally:
            self._refs = None
            self._ref_moves += 1

    async def get_ref(self, ref: str) -> str | None:
        return (await self.refs()).get(ref)

    async def update_ref(self, ref: str, new: str, old: str | None = None) -> None:
        """Set ``ref`` to ``new``; with ``old`` only if it still points there (ZERO_SHA: must not exist)."""
        args = ["update-ref", ref, new]
        if old is not None:
            args.append(old)
        async with self._moving_refs():
            await self.run(*args)
        self.ref_log.append(RefUpdate(ref, new, time.time()))

    async def delete_ref(self, ref: str) -> None:
        async with self._moving_refs():
            await self.run("update-ref", "-d", ref)
        self.ref_log.append(RefUpdate(ref, ZERO_SHA, time.time()))

    # history ---------------------------------------------------------------------------------
    async def rev_list(
        self,
        start: str,
        path: str | None = None,
        *,
        skip: int = 0,
        limit: int | None = None,
        exclude: str | None = None,
    ) -> list[str]:
        args = ["rev-list", f"--skip={skip}"]
        if limit is not None:
            args.append(f"--max-count={limit}")
        args.append(start)
        if exclude:
            args.append(f"^{exclude}")
        if path:
            args += ["--", path]
        return (await self._out(*args)).split()

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        code, _ = await self.run("merge-base", "--is-ancestor", ancestor, descendant, ok_codes=(0, 1))
        return code == 0

    async def merge_base(self, a: str, b: str) -> str | None:
        code, out = await self.run("merge-base", a, b, ok_codes=(0, 1))
        return out.decode().strip() if code == 0 else None

    async def diff(self, old: str | None, new: str) -> list[FileChange]:
        """Files changed from commit/tree ``old`` (None: the empty tree) to ``new``, as GitHub lists them."""
        base = old or EMPTY_TREE
        raw = await self._out("diff-tree", "-r", "-z", "--no-renames", base, new)
        numstat = await self._out("diff-tree", "-r", "-z", "--no-renames", "--numstat", base, new)
        counts: dict[str, tuple[int, int]] = {}
        for record in filter(None, numstat.split("\0")):
            plus, minus, name = record.split("\t", 2)
            # Binary files count "-": GitHub reports 0 lines for them.
            counts[name] = (int(plus) if plus != "-" else 0, int(minus) if minus != "-" else 0)
        fields = raw.split("\0")
        changes = []
        for meta, name in zip(fields[0::2], fields[1::2], strict=False):
            if not meta.startswith(":"):
                continue
            _, _, old_sha, new_sha, status = meta[1:].split()
            added, deleted = counts.get(name, (0, 0))
            sha = old_sha if status == "D" else new_sha
            changes.append(FileChange(name, _STATUS_WORDS.get(status[0], "modified"), added, deleted, sha))
        return changes
