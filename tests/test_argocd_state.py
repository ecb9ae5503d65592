"""Reading Argo CD's Application objects: the GitOps repository's source in multi-source apps, automated
sync, conditions, deletion, and the sync window that blocks an app."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bot.argocd_state import (
    app_state_from_application,
    blocking_window,
    pod_problems,
    repo_path,
    same_repository,
    target_revisions,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "argocd"
GIT = "9f8e7d6c5b4a39281706f5e4d3c2b1a0f9e8d7c6"


def fixture(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return data


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/acme/gitops",
        "https://github.com/acme/gitops.git",
        "https://github.com/Acme/GitOps.git/",
        "git@github.com:acme/gitops.git",
        "ssh://git@github.com/acme/gitops.git",
        "https://ghe.example.com/acme/gitops.git",
    ],
)
def test_every_way_people_write_the_repository_url_names_it(url: str) -> None:
    assert same_repository(url, "acme/gitops")


def test_other_repositories_and_chart_repositories_do_not_match() -> None:
    assert not same_repository("https://github.com/acme/gitops-infra.git", "acme/gitops")
    assert not same_repository("https://charts.acme.example", "acme/gitops")
    assert repo_path("git@github.com:acme/gitops.git") == "acme/gitops"


def test_a_multi_source_app_reads_the_git_source_even_when_it_comes_second() -> None:
    state = app_state_from_application(fixture("application-multisource-git-second.json"), repo="acme/gitops")
    assert state.source_position == 2
    assert state.sync_revision == GIT  # not "0.3.0", the chart's version in the first position
    assert state.operation_revision == GIT
    assert state.target_revision == "main"
    assert state.automated and state.operation_automated
    assert state.source_found


def test_a_started_sync_names_every_sources_target_revision_in_source_order() -> None:
    assert target_revisions(fixture("application-multisource-git-second.json")) == "0.3.0,main"
    assert target_revisions({"spec": {"source": {"targetRevision": ""}}}) == "HEAD"


def test_a_multi_source_app_without_this_repository_says_so() -> None:
    data = fixture("application-multisource-git-second.json")
    data["spec"]["sources"][1]["repoURL"] = "https://github.com/acme/other.git"
    data["spec"]["sources"].append({"repoURL": "https://github.com/acme/third.git", "path": "x"})
    state = app_state_from_application(data, repo="acme/gitops")
    assert not state.source_found


def test_a_single_helm_chart_source_is_not_this_repository() -> None:
    data = {
        "spec": {
            "source": {"repoURL": "https://charts.acme.example", "chart": "web", "targetRevision": "1.0"}
        }
    }
    assert not app_state_from_application(data, repo="acme/gitops").source_found


def test_automated_sync_explicitly_disabled_is_manual() -> None:
    data = {"spec": {"source": {}, "syncPolicy": {"automated": {"enabled": False}}}}
    assert not app_state_from_application(data).automated
    assert app_state_from_application({"spec": {"syncPolicy": {"automated": {}}}}).automated


def test_conditions_and_deletion_are_read() -> None:
    data = {
        "metadata": {"name": "web", "deletionTimestamp": "2025-03-01T10:00:00Z"},
        "status": {
            "conditions": [
                {"type": "ComparisonError", "message": "rpc error: kustomize build failed"},
                {"type": "SyncError", "message": "x"},
            ]
        },
    }
    state = app_state_from_application(data)
    assert state.deleting
    assert state.judging_conditions == (("ComparisonError", "rpc error: kustomize build failed"),)


def test_the_requested_operation_of_a_sync_in_flight_is_read() -> None:
    # SetAppOperation sets .operation and clears status.operationState until the controller starts it.
    data = {"operation": {"sync": {"revision": GIT}, "info": [{"name": "ferry.promotion", "value": "p"}]}}
    state = app_state_from_application(data)
    assert state.operating and state.requested_infos == {"ferry.promotion": "p"}


WINDOW = {"kind": "deny", "schedule": "0 22 * * *", "duration": "1h", "manualSync": True}


def test_an_active_deny_window_blocks_auto_sync_even_when_manual_syncs_pass() -> None:
    # SyncWindows.CanSync(false) for auto-sync: any active deny window blocks; manualSync only lets
    # manual syncs through, which the endpoint's canSync (computed for a manual sync) reports.
    response = {"activeWindows": [WINDOW], "assignedWindows": [WINDOW], "canSync": True}
    assert blocking_window(response, automated=True) == "deny '0 22 * * *' for 1h"
    assert blocking_window(response, automated=False) is None


def test_outside_every_allow_window_auto_sync_is_blocked() -> None:
    allow = {"kind": "allow", "schedule": "0 9 * * 1-5", "duration": "8h"}
    response = {"activeWindows": [], "assignedWindows": [allow], "canSync": False}
    assert "outside every allow window" in (blocking_window(response, automated=True) or "")
    assert blocking_window({"canSync": True}, automated=True) is None


def test_the_resource_tree_names_why_pods_are_unhealthy_once_per_message() -> None:
    # A v1alpha1ApplicationTree: the Deployment only "exceeded its progress deadline"; its pods say why.
    pod = {
        "kind": "Pod",
        "name": "web-7d9f-abcde",
        "health": {"status": "Degraded", "message": 'Back-off pulling image "ghcr.io/acme/web:1.5.1"'},
        "info": [{"name": "Status Reason", "value": "ImagePullBackOff"}],
    }
    tree = {
        "nodes": [
            {"kind": "Deployment", "name": "web", "health": {"status": "Degraded"}},
            pod,
            {**pod, "name": "web-7d9f-fghij"},
            {"kind": "Pod", "name": "ok", "health": {"status": "Healthy"}},
        ]
    }
    assert pod_problems(tree) == (
        'Pod/web-7d9f-abcde: Back-off pulling image "ghcr.io/acme/web:1.5.1" (ImagePullBackOff)',
    )
