"""`ferry stats OWNER/REPO`: delivery figures read from Deployments a person (or Ferry) created through the
GitHub stand-in's API over the last days, printed as a table and as JSON with the documented keys."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from github_standin_helpers import API, SECRET, SEED, person

from bot.cli import main
from bot.core.freight import Freight, FreightImage
from bot.core.ledger import TASK_BASELINE, TASK_PROMOTE, TASK_ROLLBACK, deployment_payload
from bot.sandbox.github_standin import GitHubStandIn

CONFIG = b"""\
warehouses:
  shop:
    images:
      - image: ghcr.io/acme/web
        semver: ">=1.0.0"
stages:
  dev:
    source: {warehouse: shop}
    update: {path: envs/dev/values.yaml}
  prod:
    source: {stages: [dev]}
    update: {path: envs/prod/values.yaml}
"""


JSON_KEYS = {
    "stage",
    "window_days",
    "deployments",
    "deployment_frequency_per_day",
    "lead_time_median_seconds",
    "lead_time_p90_seconds",
    "lead_time_samples",
    "changes",
    "failed_changes",
    "change_failure_rate",
    "time_to_restore_median_seconds",
    "restores",
}


class Behind:
    """A stand-in clock ``back`` behind the real one: deployments are dated in the past, while App JWTs
    and installation tokens (checked against real time) stay valid."""

    def __init__(self) -> None:
        self.back = timedelta(0)

    def __call__(self) -> float:
        return time.time() - self.back.total_seconds()


@pytest.fixture
async def dated(tmp_path: Path) -> AsyncIterator[tuple[GitHubStandIn, Behind]]:
    clock = Behind()
    github = GitHubStandIn(tmp_path, webhook_secret=SECRET, clock=clock)
    await github.seed({**SEED, ".github/ferry.yml": CONFIG})
    async with github:
        yield github, clock


@pytest.fixture
def app_settings(dated: tuple[GitHubStandIn, Behind], monkeypatch: pytest.MonkeyPatch) -> None:
    github, _ = dated
    for name in ("FERRY_PRIVATE_KEY_FILE", "FERRY_WEBHOOK_SECRET", "FERRY_ARGOCD_SERVERS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FERRY_APP_ID", "1")
    monkeypatch.setenv("FERRY_PRIVATE_KEY", github.app_private_key_pem)
    monkeypatch.setenv("FERRY_GITHUB_URL", github.base_url)


async def deploy(
    gh: httpx.AsyncClient,
    clock: Behind,
    *,
    ago: timedelta,
    stage: str,
    tag: str,
    verdict: str | None,
    task: str = TASK_PROMOTE,
    pushed_before: timedelta = timedelta(hours=2),
    took: timedelta = timedelta(minutes=10),
) -> None:
    """A ledger deployment created ``ago`` before now, with its verdict ``took`` later."""
    clock.back = ago
    head = (await gh.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"]
    pushed = datetime.fromtimestamp(int(clock()), UTC) - pushed_before  # GitHub's times are whole seconds
    freight = Freight("shop", (FreightImage("ghcr.io/acme/web", tag),))
    made = await gh.post(
        f"{API}/deployments",
        json={
            "ref": head,
            "environment": stage,
            "task": task,
            "payload": deployment_payload(freight, pushed_at=pushed),
            "auto_merge": False,
            "required_contexts": [],
        },
    )
    assert made.status_code == 201, made.text
    number = made.json()["id"]
    got = await gh.post(f"{API}/deployments/{number}/statuses", json={"state": "in_progress"})
    assert got.status_code == 201, got.text
    if verdict is not None:
        clock.back = ago - took
        got = await gh.post(f"{API}/deployments/{number}/statuses", json={"state": verdict})
        assert got.status_code == 201, got.text
    clock.back = timedelta(0)


async def a_week_of_deliveries(github: GitHubStandIn, clock: Behind) -> None:
    """dev: a baseline 20 days ago, 1.1.0 verified 12 days ago, then within the week 1.2.0 verified,
    1.3.0 failed and rolled back to 1.2.0 (restored in 15 minutes), 1.4.0 verified, 1.5.0 verifying.
    prod: a baseline only. Another tool's deployment in dev is not Ferry's."""
    days, hours = timedelta(days=1), timedelta(hours=1)
    async with person(github, "rita") as rita:
        await deploy(
            rita, clock, ago=20 * days, stage="dev", tag="1.0.0", verdict="success", task=TASK_BASELINE
        )
        await deploy(
            rita, clock, ago=20 * days, stage="prod", tag="1.0.0", verdict="success", task=TASK_BASELINE
        )
        await deploy(rita, clock, ago=12 * days, stage="dev", tag="1.1.0", verdict="success")
        await deploy(rita, clock, ago=5 * days, stage="dev", tag="1.2.0", verdict="success")
        await deploy(rita, clock, ago=3 * days, stage="dev", tag="1.3.0", verdict="failure")
        await deploy(
            rita,
            clock,
            ago=3 * days - 10 * hours / 60 - 5 * hours / 60,  # asked 5 minutes after the failure
            stage="dev",
            tag="1.2.0",
            verdict="success",
            task=TASK_ROLLBACK,
        )
        await deploy(
            rita, clock, ago=1 * days, stage="dev", tag="1.4.0", verdict="success", pushed_before=4 * hours
        )
        await deploy(rita, clock, ago=hours, stage="dev", tag="1.5.0", verdict=None)
        head = (await rita.get(f"{API}/git/ref/heads/main")).json()["object"]["sha"]
        other = await rita.post(
            f"{API}/deployments", json={"ref": head, "environment": "dev", "task": "deploy"}
        )
        assert other.status_code == 201, other.text


async def test_stats_prints_each_stage_and_window_in_the_configs_order_with_n_a_where_nothing_was_measured(
    dated: tuple[GitHubStandIn, Behind], app_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    github, clock = dated
    await a_week_of_deliveries(github, clock)
    assert await asyncio.to_thread(main, ["stats", "acme/gitops"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("acme/gitops: delivery figures from the ledger (GitHub Deployments) at ")
    rows = [line.split("  ") for line in lines[2:]]
    table = [[cell.strip() for cell in row if cell.strip()] for row in rows]
    assert table[0] == [
        "stage",
        "window",
        "deployment frequency",
        "lead time (median / p90)",
        "change failure rate",
        "time to restore",
    ]
    # dev, 7 days: 1.2.0, the rollback and 1.4.0 verified (3/7 a day); lead times 2h10m and 4h10m; 1.3.0
    # failed and was rolled back: 1 of 4 changes; restored 15 minutes after the failure.
    assert table[1] == ["dev", "7d", "0.43/day (3)", "3h 10m / 4h 10m", "25% (1 of 4)", "15m (1)"]
    # 30 days: the ledger covers 20 of them; 1.1.0 adds a change and a 2h10m lead time.
    assert table[2] == ["dev", "30d", "0.20/day (4)", "2h 10m / 4h 10m", "20% (1 of 5)", "15m (1)"]
    # prod ran the same freight since its baseline: no deployment (a measured 0), the rest n/a.
    assert table[3] == ["prod", "7d", "0.00/day (0)", "n/a", "n/a", "n/a"]
    assert table[4] == ["prod", "30d", "0.00/day (0)", "n/a", "n/a", "n/a"]
    assert len(table) == 5


async def test_stats_json_has_the_documented_keys_with_null_for_no_data_and_honours_days(
    dated: tuple[GitHubStandIn, Behind], app_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    github, clock = dated
    await a_week_of_deliveries(github, clock)
    assert await asyncio.to_thread(main, ["stats", "acme/gitops", "--json", "--days", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report) == {"repo", "generated_at", "windows_days", "figures"}
    assert report["repo"] == "acme/gitops" and report["windows_days"] == [1]
    dev, prod = report["figures"]
    assert set(dev) == JSON_KEYS == set(prod)
    assert (dev["stage"], dev["window_days"], dev["deployments"]) == ("dev", 1, 1)
    assert dev["lead_time_median_seconds"] == pytest.approx(4 * 3600 + 600, abs=5)
    assert dev["change_failure_rate"] == 0.0 and dev["time_to_restore_median_seconds"] is None
    assert prod["change_failure_rate"] is None and prod["lead_time_median_seconds"] is None


async def test_stats_of_a_repository_without_the_app_or_with_bad_windows_says_so_and_fails(
    dated: tuple[GitHubStandIn, Behind], app_settings: None, capsys: pytest.CaptureFixture[str]
) -> None:
    assert await asyncio.to_thread(main, ["stats", "acme/gitops", "--days", "week"]) == 1
    assert "--days: windows 'week': expected whole days from 1 to 3650" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["stats", "acme/elsewhere"]) == 1
    assert "the App is not installed on acme/elsewhere" in capsys.readouterr().err
