"""The Argo CD stand-in's repo-server side of Git: resolve a revision, read every file of a commit.

Resolution follows util/git/client.go ``LsRemote``: a full commit SHA is taken as given, branches,
tags and ``HEAD`` (the default branch) resolve to the commit they point at now, a truncated SHA is
accepted as a commit. Files are read once per commit (``git ls-tree`` + ``git cat-file --batch``)
and kept, as repo-server keeps manifests per revision; ``drop_cache`` is what ``refresh=hard`` does.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

FULL_SHA_RE = re.compile(r"^[0-9a-f]{40}$")
SHORT_SHA_RE = re.compile(r"^[0-9a-f]{7,39}$")
MAX_FILE_BYTES = 1 << 20
CACHED_COMMITS = 32


class GitReader:
    """Reads one repository on disk (bare or not) through the ``git`` command line."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._files: dict[str, dict[str, bytes]] = {}
        self.reads = 0  # commits read from git (not from the cache), for tests

    def drop_cache(self) -> None:
        self._files.clear()

    async def resolve(self, revision: str) -> str | None:
        """The commit ``revision`` names now, or None when it names none."""
        out = await self._run("rev-parse", "--verify", "--quiet", f"{revision or 'HEAD'}^{{commit}}")
        sha = out.decode().strip() if out else ""
        return sha or None

    async def files(self, sha: str) -> dict[str, bytes]:
        """Every file of commit ``sha`` up to 1 MiB, by repository path."""
        cached = self._files.get(sha)
        if cached is not None:
            return cached
        listing = await self._run("ls-tree", "-r", "-z", "--long", sha)
        entries = []
        for record in (listing or b"").split(b"\0"):
            if not record:
                continue
            meta, _, name = record.partition(b"\t")
            _, kind, oid, size = meta.split()
            if kind == b"blob" and size.isdigit() and int(size) <= MAX_FILE_BYTES:
                entries.append((name.decode(), oid.decode()))
        files = await self._blobs(entries)
        self.reads += 1
        if len(self._files) >= CACHED_COMMITS:
            self._files.pop(next(iter(self._files)))
        self._files[sha] = files
        return files

    async def _blobs(self, entries: list[tuple[str, str]]) -> dict[str, bytes]:
        if not entries:
            return {}
        request = "".join(f"{oid}\n" for _, oid in entries).encode()
        out = await self._run("cat-file", "--batch", stdin=request) or b""
        files: dict[str, bytes] = {}
        pos = 0
        for name, _ in entries:
            header_end = out.index(b"\n", pos)
            size = int(out[pos:header_end].split()[2])
            start = header_end + 1
            files[name] = out[start : start + size]
            pos = start + size + 1
        return files

    async def _run(self, *args: str, stdin: bytes | None = None) -> bytes | None:
        process = await asyncio.create_subprocess_exec(
            "git", "-C", str(self.path), *args,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        out, _ = await process.communicate(stdin)
        return out if process.returncode == 0 else None
