"""``bot.doctor``'s judgements over plain facts: the cases the sandbox cannot stage (an installation that has
not accepted new permissions, an App not installed), and how the report reads."""

from __future__ import annotations

import json
from dataclasses import replace

from bot.app_manifest import default_events, default_permissions
from bot.core.argo_app import AppState
from bot.core.selection import TagRule
from bot.doctor import Check, render_json, render_table
from bot.doctor_argocd import ArgoAppFacts, argocd_check
from bot.doctor_github import (
    AppFacts,
    ProtectionFacts,
    WebhookFacts,
    app_checks,
    protection_check,
    webhook_check,
)
from bot.doctor_pipeline import RegistryFacts, registry_check

SETTINGS = "https://github.com/organizations/acme/settings/apps/ferry"


def app_facts(**changes: object) -> AppFacts:
    base = AppFacts(
        repo="acme/gitops",
        name="Ferry",
        settings_url=SETTINGS,
        install_url="https://github.com/apps/ferry/installations/new",
        permissions=default_permissions(),
        events=default_events(),
        installed=True,
        accepted=default_permissions(),
        installation_url="https://github.com/organizations/acme/settings/installations/7",
    )
    return AppFacts(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_an_installation_that_has_not_accepted_new_permissions_fails_with_its_page() -> None:
    accepted = {k: v for k, v in default_permissions().items() if k != "deployments"}
    checks = by_name(app_checks(app_facts(accepted=accepted)))
    check = checks["installation permissions"]
    assert (check.state, check.detail) == ("fail", "the installation has not accepted deployments: write")
    assert check.fix.endswith("https://github.com/organizations/acme/settings/installations/7")
    assert checks["App permissions"].state == "ok"


def test_an_app_not_installed_on_the_repository_fails_with_the_install_link() -> None:
    checks = by_name(app_checks(app_facts(installed=False, accepted={})))
    check = checks["App installed"]
    assert check.state == "fail" and check.fix == (
        "install it on acme/gitops: https://github.com/apps/ferry/installations/new"
    )
    assert "installation permissions" not in checks


def test_a_lower_level_than_ferry_needs_is_missing() -> None:
    check = by_name(app_checks(app_facts(permissions=default_permissions() | {"contents": "read"})))[
        "App permissions"
    ]
    assert (check.state, check.detail) == ("fail", "missing contents: write")
    assert check.fix.startswith("grant Contents: Read and write on the App's Permissions & events page")


def test_branch_protection_requiring_the_gate_and_config_reads_so() -> None:
    check = protection_check(ProtectionFacts("main", "protected", ("ci", "ferry/gate", "ferry/config")))
    assert (check.state, check.detail) == ("ok", "main requires ferry/gate, ferry/config too")


def test_an_image_with_tags_but_none_the_rule_accepts_is_a_warning() -> None:
    rule = TagRule(strategy="semver", semver=">=2.0.0")
    check = registry_check(RegistryFacts("shop", "ghcr.io/acme/web", rule, ["1.0.0", "1.4.2"]))
    assert check.state == "warn" and check.detail.startswith(
        "2 tags; none is chosen by warehouse shop's rule"
    )
    denied = registry_check(
        RegistryFacts(
            "shop", "ghcr.io/acme/web", rule, None, "registry ghcr.io denied access", temporary=False
        )
    )
    assert denied.state == "fail" and denied.fix.startswith("set credentials for ghcr.io in FERRY_REGISTRIES")


def test_the_table_puts_each_fix_under_its_check_and_counts_them() -> None:
    checks = [
        Check("App installed", "ok", "installed"),
        Check("branch protection (main)", "fail", "main is not protected", "protect it"),
        Check("App permissions", "warn", "more than needed", "lower them"),
    ]
    table = render_table("acme/gitops", checks)
    assert table.splitlines() == [
        "ferry doctor acme/gitops",
        "✔ App installed             installed",
        "✘ branch protection (main)  main is not protected",
        "                            fix: protect it",
        "! App permissions           more than needed",
        "                            fix: lower them",
        "1 ok, 1 warnings, 1 failed",
    ]
    report = json.loads(render_json("acme/gitops", checks))
    assert report["ok"] is False and report["counts"] == {"ok": 1, "warn": 1, "fail": 1}
    assert report["checks"][1] == {
        "name": "branch protection (main)",
        "state": "fail",
        "detail": "main is not protected",
        "fix": "protect it",
    }


def test_deliveries_refused_for_their_signature_point_at_the_webhook_secret() -> None:
    hook = WebhookFacts(
        "https://ferry.example.com/webhooks/github",
        [(401, "Invalid HTTP Response: 401", "push"), (200, "OK", "push")],
        SETTINGS,
    )
    check = webhook_check(hook)
    assert check.state == "fail"
    assert check.detail.endswith("failed: Invalid HTTP Response: 401 (push); 1 of the last 2 failed")
    assert check.fix.startswith("FERRY_WEBHOOK_SECRET differs from the App's webhook secret")
    recovered = webhook_check(WebhookFacts(hook.url, list(reversed(hook.deliveries)), SETTINGS))
    assert recovered.state == "ok" and "1 of the last 2 failed" in recovered.detail


def argo(**changes: object) -> ArgoAppFacts:
    """shop-prod, a manual app tracking main, as the token reads it; ``changes`` apply to its state."""
    state = replace(AppState("shop-prod", target_revision="main", project="shop"), **changes)
    return ArgoAppFacts("prod", "shop-prod", "default", "acme/gitops", "main", project=None, state=state)


def test_an_app_pinned_to_a_tag_fails_because_a_merge_cannot_deploy_it() -> None:
    check = argocd_check(argo(target_revision="v1.4.0"))
    assert check.state == "fail"
    assert check.detail.startswith("pinned to targetRevision v1.4.0, which a merge to main cannot move")
    assert check.fix == "set targetRevision to main (or HEAD) in the Application"
    assert argocd_check(argo(target_revision="refs/heads/main")).state == "ok"
    assert argocd_check(argo(target_revision="")).state == "ok"  # HEAD of the repository's default branch


def test_an_app_being_deleted_or_deploying_nothing_from_the_repository_fails() -> None:
    assert argocd_check(argo(deleting=True)).detail.startswith("is being deleted in Argo CD")
    away = argocd_check(argo(source_found=False))
    assert away.state == "fail" and away.detail.startswith("deploys from no source in acme/gitops")


def test_a_manual_app_names_the_sync_rule_its_token_needs_with_the_apps_own_project() -> None:
    check = argocd_check(argo())
    assert check.state == "ok"
    assert check.detail == (
        "readable; manual sync: after a merge Ferry syncs it to main "
        "(argocd-rbac-cm: p, role:ferry, applications, sync, shop/shop-prod, allow)"
    )


def test_an_app_argo_cd_cannot_judge_warns_with_its_condition() -> None:
    check = argocd_check(argo(conditions=(("ComparisonError", "repository not accessible"),)))
    assert check.state == "warn"
    assert check.detail.endswith(
        "but Argo CD cannot judge it now (ComparisonError: repository not accessible)"
    )


def test_an_argo_cd_server_that_cannot_be_read_fails_with_its_classified_error() -> None:
    error = 'Argo CD server "default" is not configured (configured: none); add it to FERRY_ARGOCD_SERVERS'
    facts = ArgoAppFacts("prod", "shop-prod", "default", "acme/gitops", "main", error=error)
    check = argocd_check(facts)
    assert (check.state, check.detail) == ("fail", error)
