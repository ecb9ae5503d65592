"""Benchmark: CPU per GitHub request and requests per second through the adapter, before and after one pool.

The GitHub stand-in runs in a child process, so the CPU measured here is the adapter's alone (githubkit,
httpx, hishel's ETag cache, JWT and token handling, model parsing). Both paths make the reads of an idle
reconcile pass through ``RepoGitHub`` (the default branch's head, its combined status, the open pull
requests), answered 304 Not Modified from the second round on, as GitHub answers an unchanged repository:

- **before**: githubkit's ``GitHub`` as the adapter used to build it, never opened as a context, so
  every request builds a new httpx client, TLS context and connection;
- **after**: ``GitHubApp`` (one connection pool per process, one httpx client per installation).

Measured sequentially (one request at a time, as a pass's reads were) and with ``--concurrency`` tasks.
Prints a Markdown table; CPU is process time (user + system) divided by the requests counted.

``--idle-pass`` adds a second table: the CPU of a whole idle reconcile pass in the sandbox (every stage
verified, nothing to do), with the repository's client swapped between the two adapters. The sandbox's
stand-ins run in the same process there, so that CPU includes theirs (the same for both rows).

    .venv/bin/python bench/github_client.py [--rounds 60] [--concurrency 8] [--idle-pass]
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse
import asyncio
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from githubkit import AppAuthStrategy, GitHub
from githubkit.cache import MemCacheStrategy

from bot.github.client import USER_AGENT, GitHubApp, RequestCounter
from bot.github.repo import RepoGitHub
from bot.sandbox.example import quick_pipeline
from bot.sandbox.github_standin import GitHubStandIn
from bot.sandbox.world import World

FULL_NAME = "acme/gitops"
INSTALLATION = 1
IDLE_PASSES = 10
SETTLE_SECONDS = 120.0
RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
FILES = {
    ".github/ferry.yml": b"warehouses: {}\nstages: {}\n",
    "overlays/dev/kustomization.yaml": b"images:\n- name: web\n  newTag: 1.4.2\n",
}


# ---- the stand-in, in a child process ------------------------------------------------------------


async def serve(key_pem: str) -> None:
    with tempfile.TemporaryDirectory(prefix="ferry-bench-") as workdir:
        github = GitHubStandIn(Path(workdir), webhook_secret="bench", app_key_pem=key_pem)
        url = await github.start()
        await github.seed(FILES)
        print(url, flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes it
        await github.stop()


def start_standin(key_pem: str) -> tuple[subprocess.Popen[str], str]:
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert child.stdin is not None and child.stdout is not None
    child.stdin.write(key_pem + "\n\0\n")
    child.stdin.flush()
    url = child.stdout.readline().strip()
    if not url.startswith("http"):
        child.kill()
        raise SystemExit("bench: the GitHub stand-in did not start")
    return child, url


def new_key() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return pem.decode()


# ---- the two adapters -----------------------------------------------------------------------------


def shipped_client(key_pem: str, url: str, counter: RequestCounter) -> GitHub[Any]:
    """The installation client exactly as the adapter built it before the shared pool."""
    app = GitHub(
        AppAuthStrategy(1, key_pem),
        base_url=url,
        timeout=10.0,
        user_agent=USER_AGENT,
        auto_retry=False,
        http_cache=True,
        async_event_hooks={"response": [counter.on_response]},
        # githubkit's default cache is process-wide and keyed by App id: tokens from another stand-in
        # in this process would be sent here. A cache of its own changes nothing else.
        cache_strategy=MemCacheStrategy(),
    )
    auth = app.auth
    assert isinstance(auth, AppAuthStrategy)
    return app.with_auth(auth.as_installation(INSTALLATION))


async def idle_reads(repo: RepoGitHub) -> None:
    head = await repo.head("main")
    await repo.statuses(head)
    await repo.open_promotions()


async def measure(
    repo: RepoGitHub, counter: RequestCounter, rounds: int, concurrency: int
) -> tuple[float, float, int]:
    """(CPU ms per request, requests per second, requests) over ``rounds`` idle reads."""
    await idle_reads(repo)  # tokens, the ETag cache and (after) the connection: warm
    before_cpu, before_wall, before_count = time.process_time(), time.perf_counter(), counter.total

    async def worker(share: int) -> None:
        for _ in range(share):
            await idle_reads(repo)

    shares = [rounds // concurrency + (1 if i < rounds % concurrency else 0) for i in range(concurrency)]
    await asyncio.gather(*(worker(share) for share in shares))
    requests = counter.total - before_count
    cpu = time.process_time() - before_cpu
    wall = time.perf_counter() - before_wall
    return cpu * 1000 / requests, requests / wall, requests


async def run(rounds: int, concurrency: int) -> list[tuple[str, str, float, float, int]]:
    key_pem = new_key()
    child, url = start_standin(key_pem)
    rows: list[tuple[str, str, float, float, int]] = []
    try:
        for label, parallel in (("sequential", 1), (f"{concurrency} concurrent", concurrency)):
            counter = RequestCounter()
            before = RepoGitHub(shipped_client(key_pem, url, counter), FULL_NAME)
            cpu, rate, count = await measure(before, counter, rounds, parallel)
            rows.append(("before: a client per request", label, cpu, rate, count))

            app = GitHubApp(app_id=1, private_key=key_pem, base_url=url)
            after = RepoGitHub(app.installation(INSTALLATION), FULL_NAME)
            cpu, rate, count = await measure(after, app.counter, rounds, parallel)
            await app.aclose()
            rows.append(("after: one pool per process", label, cpu, rate, count))
    finally:
        assert child.stdin is not None
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
    return rows


async def idle_pass_cpu(passes: int) -> list[tuple[str, float, float]]:
    """(adapter, CPU ms per idle pass, GitHub requests per pass) in the sandbox, both adapters."""
    world = World(progress_seconds=0.2)
    await world.start(quick_pipeline, RELEASES)
    try:
        assert world.runtime is not None
        for task in world.runtime.tasks:
            task.cancel()  # only the passes below run
        reconciler = world.runtime.reconciler
        deadline = time.monotonic() + SETTLE_SECONDS
        while await reconciler.reconcile(FULL_NAME) or reconciler.verifying:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: the sandbox did not settle within {SETTLE_SECONDS:.0f}s")
            await asyncio.sleep(0.2)
        counter = RequestCounter()
        before = RepoGitHub(
            shipped_client(world.github.app_private_key_pem, world.github_url, counter), FULL_NAME
        )
        rows = []
        for label, repo in (("before: a client per request", before), ("after: one pool per process", None)):
            if repo is not None:
                reconciler._repo_clients[FULL_NAME] = repo
            else:
                reconciler._repo_clients.pop(FULL_NAME, None)
            await reconciler.reconcile(FULL_NAME)  # warm
            requests = sum(world.github.requests.values())
            started = time.process_time()
            for _ in range(passes):
                await reconciler.reconcile(FULL_NAME)
            cpu = (time.process_time() - started) * 1000 / passes
            rows.append((label, cpu, (sum(world.github.requests.values()) - requests) / passes))
        return rows
    finally:
        await world.stop()


def idle_table(rows: list[tuple[str, float, float]]) -> str:
    lines = ["| adapter | CPU ms / idle pass | GitHub requests / pass |", "|---|---:|---:|"]
    lines += [f"| {label} | {cpu:.0f} | {requests:.0f} |" for label, cpu, requests in rows]
    return "\n".join(lines)


def table(rows: list[tuple[str, str, float, float, int]]) -> str:
    lines = [
        "| adapter | requests | CPU ms / request | requests / s | n |",
        "|---|---|---:|---:|---:|",
    ]
    lines += [f"| {a} | {mode} | {cpu:.2f} | {rate:.0f} | {n} |" for a, mode, cpu, rate, n in rows]
    by_mode: dict[str, list[tuple[float, float]]] = {}
    for _, mode, cpu, rate, _ in rows:
        by_mode.setdefault(mode, []).append((cpu, rate))
    for mode, ((cpu_before, rate_before), (cpu_after, rate_after)) in by_mode.items():
        lines.append(
            f"| after / before | {mode} | {cpu_after / cpu_before:.2f}x | {rate_after / rate_before:.2f}x | |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--rounds", type=int, default=60, help="idle-pass reads per measurement (3 requests each)"
    )
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument(
        "--idle-pass", action="store_true", help="also time idle reconcile passes in the sandbox"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        key_lines = []
        for line in sys.stdin:
            if line.strip() == "\0":
                break
            key_lines.append(line)
        asyncio.run(serve("".join(key_lines)))
        return 0
    rows = asyncio.run(run(args.rounds, args.concurrency))
    print(
        f"GitHub requests through the adapter against the stand-in (load average {os.getloadavg()[0]:.1f})\n"
    )
    print(table(rows))
    if args.idle_pass:
        idle = asyncio.run(idle_pass_cpu(IDLE_PASSES))
        print(f"\nIdle reconcile pass in the sandbox, stand-ins in-process (load {os.getloadavg()[0]:.1f})\n")
        print(idle_table(idle))
    return 0


if __name__ == "__main__":
    sys.exit(main())
