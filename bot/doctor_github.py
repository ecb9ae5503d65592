"""``ferry doctor``'s checks of the GitHub side: the App (permissions, events), its installation on the
repository, its webhook's deliveries, and the default branch's protection. Pure (``bot.doctor``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from bot.app_manifest import grants, missing_events, missing_permissions, unused_permissions
from bot.core.gates import STATUS_CONFIG, STATUS_GATE
from bot.doctor import Check, fail, ok, warn


# ---- the App and its installation ----------------------------------------------------------------
@dataclass(frozen=True)
class AppFacts:
    """``permissions``/``events``: ``GET /app``; ``installed``: whether ``GET /repos/{o}/{r}/installation``
    found one; ``accepted``: that installation's permissions."""

    repo: str
    name: str
    settings_url: str
    install_url: str
    permissions: Mapping[str, str]
    events: Sequence[str]
    installed: bool
    accepted: Mapping[str, str]
    installation_url: str = ""


def _access(level: str) -> str:
    return "Read and write" if level == "write" else "Read-only"


def _levels(pairs: Mapping[str, str]) -> str:
    return ", ".join(f"{name}: {level}" for name, level in pairs.items())


def app_checks(app: AppFacts) -> list[Check]:
    checks = []
    if app.installed:
        checks.append(ok("App installed", f'"{app.name}" is installed on {app.repo}'))
    else:
        checks.append(
            fail(
                "App installed",
                f'"{app.name}" is not installed on {app.repo}',
                f"install it on {app.repo}: {app.install_url}",
            )
        )
    lacking = missing_permissions(app.permissions, optional=False)
    optional = missing_permissions(app.permissions, optional=True)
    extra = unused_permissions(app.permissions)
    page = f"the App's Permissions & events page ({app.settings_url}/permissions)"
    if lacking:
        wanted = ", ".join(f"{p.title}: {_access(p.level)}" for p in lacking)
        checks.append(
            fail(
                "App permissions",
                "missing " + ", ".join(f"{p.name}: {p.level}" for p in lacking),
                f"grant {wanted} on {page}; then accept the new permissions on the installation",
            )
        )
    elif optional or extra:
        found, fixes = [], []
        if optional:
            found.append("without the optional administration: read (branch protection is unreadable)")
            fixes.append(
                "grant Administration: Read-only to let `ferry doctor` check branch protection, or check it "
                "by hand (docs/install.md, step 5)"
            )
        if extra:
            found.append(f"more than Ferry uses: {_levels(extra)}")
            fixes.append(
                "lower the permissions Ferry does not use (docs/install.md says what each one is for)"
            )
        checks.append(warn("App permissions", "; ".join(found), "; ".join(fixes) + f", on {page}"))
    else:
        checks.append(ok("App permissions", f"{len(app.permissions)} permissions, as Ferry's manifest asks"))
    unsubscribed = missing_events(tuple(app.events))
    if unsubscribed:
        names = ", ".join(e.name for e in unsubscribed)
        checks.append(
            fail(
                "App events",
                f"not subscribed to {names}",
                f"tick them under Subscribe to events on {page}",
            )
        )
    else:
        checks.append(ok("App events", f"subscribed to the {len(app.events)} events Ferry acts on"))
    if app.installed:
        pending = {
            name: level for name, level in app.permissions.items() if not grants(app.accepted, name, level)
        }
        if pending:
            checks.append(
                fail(
                    "installation permissions",
                    f"the installation has not accepted {_levels(pending)}",
                    "an owner of the account accepts the App's new permissions on the installation's page: "
                    + (app.installation_url or app.install_url),
                )
            )
        else:
            checks.append(
                ok("installation permissions", "the installation accepted every permission the App asks")
            )
    return checks


@dataclass(frozen=True)
class WebhookFacts:
    """The App's webhook URL and its recent deliveries, newest first: (status code, GitHub's status text,
    event); code 0 means GitHub could not reach the URL."""

    url: str
    deliveries: Sequence[tuple[int, str, str]]
    settings_url: str


def webhook_check(hook: WebhookFacts) -> Check:
    name = "App webhook"
    page = f"the App's General settings ({hook.settings_url})"
    if not hook.url:
        return fail(
            name, "the App has no webhook URL", f"set it to https://<Ferry's host>/webhooks/github on {page}"
        )
    if not hook.deliveries:
        return warn(
            name,
            f"no delivery to {hook.url} yet",
            "GitHub sends one on the next event; run `ferry doctor` again after a push to the repository",
        )
    code, status, event = hook.deliveries[0]
    failures = sum(1 for c, _, _ in hook.deliveries if not 200 <= c < 300)
    tally = f"{failures} of the last {len(hook.deliveries)} failed"
    if 200 <= code < 300:
        return ok(name, f"GitHub delivers to {hook.url} (last: {event}, {code}; {tally})")
    if code == 401:
        fix = (
            "FERRY_WEBHOOK_SECRET differs from the App's webhook secret: set the same value in both "
            f"({page}), then redeliver the failed deliveries from its Advanced tab"
        )
    else:
        fix = (
            f"make {hook.url} reach Ferry's Service (Ingress or Gateway, TLS, NetworkPolicy; "
            "deploy/README.md), then redeliver the failed deliveries from the App's Advanced tab"
        )
    return fail(name, f"the last delivery to {hook.url} failed: {status} ({event}); {tally}", fix)


# ---- branch protection -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ProtectionFacts:
    """``state`` as ``bot.github.setup.Protection``; ``app_id``: Ferry's App, to tell pinned checks."""

    branch: str
    state: Literal["protected", "unprotected", "forbidden"]
    contexts: Sequence[str] = ()
    settings_url: str = ""


def protection_check(facts: ProtectionFacts) -> Check:
    name = f"branch protection ({facts.branch})"
    how = (
        f"in the repository's Settings → Branches, protect {facts.branch} and require the status check "
        f"{STATUS_GATE} (docs/install.md, step 5)"
    )
    if facts.state == "forbidden":
        return warn(
            name,
            "the App may not read it (administration: read, which is optional)",
            f"check by hand that {facts.branch} requires {STATUS_GATE}, or grant Administration: Read-only "
            f"in the App's settings: {facts.settings_url}/permissions",
        )
    if facts.state == "unprotected":
        return fail(
            name, f"{facts.branch} is not protected: anyone with write access merges any promotion", how
        )
    if STATUS_GATE not in facts.contexts:
        required = ", ".join(facts.contexts) or "no status check"
        return fail(name, f"{STATUS_GATE} is not required (required: {required})", how)
    also = f", {STATUS_CONFIG} too" if STATUS_CONFIG in facts.contexts else ""
    return ok(name, f"{facts.branch} requires {STATUS_GATE}{also}")
