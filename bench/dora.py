"""Benchmark: delivery figures (``bot.core.dora``) over a large ledger, and what reading a ledger costs.

Run: ``.venv/bin/python bench/dora.py``. Prints Markdown tables: the time to compute every stage's figures
over 7 and 30 days from 1,000 to 20,000 ledger entries (three stages, a year of history: what a busy
repository's Deployments hold), and the GitHub requests one reading of the ledger makes against the GitHub
stand-in (a list per ledger task and page, plus the statuses of each deployment whose verdict is not in;
decided entries are kept and not read again).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import asyncio
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta

import httpx

from bot.core.dora import figures
from bot.core.freight import Freight, FreightImage
from bot.core.ledger import TASK_PROMOTE, TASK_ROLLBACK, LedgerEntry, deployment_payload
from bot.github import deployments
from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.sandbox.github_standin import GitHubStandIn

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
STAGES = ("dev", "staging", "prod")
RUNS = 15


def ledger(count: int) -> list[LedgerEntry]:
    rnd = random.Random(count)
    entries = []
    for n in range(count):
        at = NOW - timedelta(minutes=rnd.randrange(60 * 24 * 365))
        outcome = rnd.choices(["verified", "failed", "in_progress"], [90, 8, 2])[0]
        entries.append(
            LedgerEntry(
                deployment_id=n,
                stage=rnd.choice(STAGES),
                sha=f"{n:040x}",
                task=TASK_ROLLBACK if rnd.random() < 0.03 else TASK_PROMOTE,
                freight=Freight("shop", (FreightImage("ghcr.io/acme/web", f"1.{n}.0"),)),
                created_at=at,
                outcome=outcome,  # type: ignore[arg-type]
                decided_at=at + timedelta(minutes=rnd.randrange(1, 30)) if outcome != "in_progress" else None,
                pushed_at=at - timedelta(minutes=rnd.randrange(5, 600)),
            )
        )
    return entries


def compute_table() -> list[str]:
    rows = [
        "| ledger entries | figures (stages × windows) | median ms | max ms |",
        "| --- | --- | --- | --- |",
    ]
    for count in (1_000, 5_000, 20_000):
        entries = ledger(count)
        samples = []
        for _ in range(RUNS):
            started = time.perf_counter()
            found = figures(entries, now=NOW, stages=STAGES)
            samples.append((time.perf_counter() - started) * 1000)
        rows.append(f"| {count:,} | {len(found)} | {statistics.median(samples):.1f} | {max(samples):.1f} |")
    return rows


async def read_cost() -> list[str]:
    rows = [
        "| deployments | undecided | requests, first read | requests, next read |",
        "| --- | --- | --- | --- |",
    ]
    for count, undecided in ((10, 1), (250, 2)):
        deployments._decided.clear()
        with tempfile.TemporaryDirectory() as tmp:
            github = GitHubStandIn(tmp, webhook_secret="bench-secret-0123456789")
            await github.seed({"README.md": b"hello\n"})
            async with github:
                token = github.add_user("rita", "write")
                async with httpx.AsyncClient(
                    base_url=github.base_url, headers={"Authorization": f"token {token}"}, timeout=30
                ) as rita:
                    api = "/repos/acme/gitops"
                    head = (await rita.get(f"{api}/git/ref/heads/main")).json()["object"]["sha"]
                    for n in range(count):
                        freight = Freight("shop", (FreightImage("ghcr.io/acme/web", f"1.{n}.0"),))
                        made = await rita.post(
                            f"{api}/deployments",
                            json={
                                "ref": head,
                                "environment": STAGES[n % 3],
                                "task": TASK_PROMOTE,
                                "payload": deployment_payload(freight),
                                "auto_merge": False,
                                "required_contexts": [],
                            },
                        )
                        if n < count - undecided:
                            await rita.post(
                                f"{api}/deployments/{made.json()['id']}/statuses", json={"state": "success"}
                            )
                app = GitHubApp(app_id=1, private_key=github.app_private_key_pem, base_url=github.base_url)
                try:
                    repo = RepoGitHub(app.installation(1), "acme/gitops")
                    counts = []
                    for _ in range(2):
                        before = sum(github.requests.values())
                        await repo.read_ledger()
                        counts.append(sum(github.requests.values()) - before)
                finally:
                    await app.aclose()
        rows.append(f"| {count} | {undecided} | {counts[0]} | {counts[1]} |")
    return rows


def main() -> None:
    print("Delivery figures over a year of ledger (3 stages, windows 7 and 30 days)\n")
    print("\n".join(compute_table()))
    print("\nGitHub requests of one ledger reading (`RepoGitHub.read_ledger`, every stage)\n")
    print("\n".join(asyncio.run(read_cost())))


if __name__ == "__main__":
    main()
