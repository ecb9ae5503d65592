"""Multi-source apps: a Helm chart from a chart repository with ``$values`` files from Git.

``status.sync.revisions``, ``operationState.syncResult.revisions`` and ``history[].revisions`` list one
revision per source in source order (a chart version, a commit); sync requests name revisions by
``sourcePositions`` (1-based). The earlier stand-in had no multi-source apps at all.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from argocd_standin_kit import FakeClock, GitRepo, Sandbox, running

from bot.sandbox.argocd_apps import ChartRepository, chart_with_git_values

CHARTS = "https://charts.acme.example"
CHART_YAML = "apiVersion: v2\nname: web\nversion: {version}\nappVersion: 1.0.0\n"
TEMPLATE = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: {{ .Values.replicas | default 1 }}
  template:
    spec:
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"
"""
VALUES = "image:\n  repository: ghcr.io/acme/web\n  tag: {tag}\n"


def chart(version: str, template: str = TEMPLATE) -> dict[str, bytes]:
    return {
        "Chart.yaml": CHART_YAML.format(version=version).encode(),
        "values.yaml": b"image: {repository: ghcr.io/acme/web, tag: ''}\n",
        "templates/deployment.yaml": template.encode(),
    }


@pytest.fixture
def charts() -> ChartRepository:
    repository = ChartRepository(CHARTS)
    repository.publish("web", "1.2.3", chart("1.2.3"))
    return repository


@pytest.fixture
async def sandbox(tmp_path: Path, charts: ChartRepository) -> AsyncIterator[Sandbox]:
    repo = GitRepo(tmp_path / "gitops")
    repo.commit({"env/prod/values.yaml": VALUES.format(tag="1.0.0")}, "prod values")
    values = ["env/prod/values.yaml"]
    apps = {
        "prod-auto": chart_with_git_values(
            CHARTS, "web", "1.2.*", values, git_revision="main", automated=True
        ),
        "prod-manual": chart_with_git_values(CHARTS, "web", "1.2.3", values, git_revision="main"),
        "prod-git-first": chart_with_git_values(CHARTS, "web", "1.2.3", values, git_first=True),
    }
    async with running(repo, FakeClock(), apps, chart_repositories=[charts]) as sandbox:
        yield sandbox


async def test_revisions_are_listed_per_source_in_source_order(sandbox: Sandbox) -> None:
    head = sandbox.repo.head()
    manual = await sandbox.get("prod-manual")
    flipped = await sandbox.get("prod-git-first")
    assert manual["status"]["sync"]["revisions"] == ["1.2.3", head]
    assert "revision" not in manual["status"]["sync"]
    assert flipped["status"]["sync"]["revisions"] == [head, "1.2.3"]
    assert manual["status"]["history"][-1]["revisions"] == ["1.2.3", head]
    assert [s.get("chart") or s.get("ref") for s in manual["status"]["history"][-1]["sources"]] == [
        "web",
        "values",
    ]
    assert manual["status"]["sourceTypes"] == ["Helm", "Directory"]
    assert manual["status"]["summary"]["images"] == ["ghcr.io/acme/web:1.0.0"]


async def test_a_sync_names_revisions_by_source_position(sandbox: Sandbox) -> None:
    older = sandbox.repo.head()
    sandbox.repo.commit({"env/prod/values.yaml": VALUES.format(tag="1.1.0")}, "prod 1.1.0")
    response = await sandbox.sync("prod-manual", {"revisions": [older], "sourcePositions": ["2"]})
    assert response.status_code == 200
    assert response.json()["operation"]["sync"]["revisions"] == ["1.2.3", older]
    sandbox.clock.advance(2)
    body = await sandbox.get("prod-manual")
    assert body["status"]["operationState"]["syncResult"]["revisions"] == ["1.2.3", older]
    assert body["status"]["sync"]["status"] == "OutOfSync"  # main has moved on to 1.1.0


async def test_a_source_position_out_of_range_is_refused(sandbox: Sandbox) -> None:
    response = await sandbox.sync("prod-manual", {"revisions": ["main"], "sourcePositions": ["3"]})
    assert (response.status_code, response.json()["code"]) == (500, 2)
    assert response.json()["message"] == "source position is out of range"


async def test_an_automated_multi_source_app_refuses_revision_overrides_per_source(sandbox: Sandbox) -> None:
    older = sandbox.repo.head()
    sandbox.repo.commit({"README.md": "x\n"}, "docs")
    response = await sandbox.sync("prod-auto", {"revisions": [older], "sourcePositions": [2]})
    message = f"Cannot sync source {sandbox.repo.path.as_uri()} to {older}: auto-sync currently set to main"
    assert (response.status_code, response.json()) == (400, {"error": message, "code": 9, "message": message})


async def test_a_values_change_in_git_is_synced_by_an_automated_app(sandbox: Sandbox) -> None:
    change = sandbox.repo.commit({"env/prod/values.yaml": VALUES.format(tag="1.1.0")}, "prod 1.1.0")
    body = await sandbox.get("prod-auto", refresh="normal")
    assert body["operation"]["sync"]["revisions"] == ["1.2.3", change]
    assert body["operation"]["initiatedBy"] == {"automated": True}
    sandbox.clock.advance(2)
    done = await sandbox.get("prod-auto")
    assert done["status"]["operationState"]["syncResult"]["revisions"] == ["1.2.3", change]
    assert done["status"]["summary"]["images"] == ["ghcr.io/acme/web:1.1.0"]


async def test_a_new_chart_version_in_range_is_picked_up(sandbox: Sandbox, charts: ChartRepository) -> None:
    charts.publish("web", "1.2.4", chart("1.2.4"))
    charts.publish("web", "1.3.0", chart("1.3.0"))
    body = await sandbox.get("prod-auto", refresh="normal")
    assert body["status"]["sync"]["revisions"][0] == "1.2.4"  # "1.2.*": the newest 1.2 release


async def test_a_republished_chart_version_is_seen_only_after_a_hard_refresh(
    sandbox: Sandbox, charts: ChartRepository
) -> None:
    charts.publish("web", "1.2.3", chart("1.2.3", TEMPLATE.replace("default 1", "default 2")))
    normal = await sandbox.get("prod-manual", refresh="normal")
    hard = await sandbox.get("prod-manual", refresh="hard")
    assert normal["status"]["sync"]["status"] == "Synced"  # manifests cached for version 1.2.3
    assert hard["status"]["sync"]["status"] == "OutOfSync"
    assert sandbox.standin.refreshes[-2:] == [
        ("prod-manual", "normal", sandbox.clock.now),
        ("prod-manual", "hard", sandbox.clock.now),
    ]


async def test_a_missing_values_file_is_a_comparison_error(sandbox: Sandbox) -> None:
    sandbox.repo.git("rm", "-q", "env/prod/values.yaml")
    sandbox.repo.commit({}, "drop prod values")
    body = await sandbox.get("prod-manual", refresh="normal")
    (condition,) = body["status"]["conditions"]
    assert condition["type"] == "ComparisonError"
    assert condition["message"].endswith(
        "Error: open $values/env/prod/values.yaml: no such file or directory"
    )
    assert body["status"]["sync"]["revisions"] == ["1.2.3", sandbox.repo.head()]
