"""``ferry doctor``'s judgement: plain facts about one installation in, one ``Check`` per line out. Pure.

The facts are gathered by ``bot.doctor_facts`` (GitHub, Argo CD, registries); what each check compares
them with comes from the code Ferry runs: the App manifest's table (``bot.app_manifest``), the config
loader and its checks of the stages' files (``bot.core.config_load``, as ``ferry validate``), the
stage view (``bot.core.stage_view``), tag selection (``bot.core.selection``) and the gate's status
context (``bot.core.gates``). Each failing check says what to do about it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Final, Literal

from bot.app_manifest import grants, missing_events, missing_permissions, unused_permissions
from bot.core.config import PipelineConfig, StagesSource
from bot.core.gates import STATUS_CONFIG, STATUS_GATE
from bot.core.pipeline import stage_order
from bot.core.selection import TagRule, select_tag
from bot.errors import FerryError, Problem

State = Literal["ok", "warn", "fail"]
SYMBOLS: Final[Mapping[str, str]] = {"ok": "✔", "warn": "!", "fail": "✘"}


@dataclass(frozen=True)
class Check:
    """One line of the report: ``name`` what was checked, ``detail`` what was found, ``fix`` what to do."""

    name: str
    state: State
    detail: str
    fix: str = ""


def ok(name: str, detail: str) -> Check:
    return Check(name, "ok", detail)


def warn(name: str, detail: str, fix: str) -> Check:
    return Check(name, "warn", detail, fix)


def fail(name: str, detail: str, fix: str) -> Check:
    return Check(name, "fail", detail, fix)


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


# ---- the pipeline config and the stages' files -----------------------------------------------------
@dataclass(frozen=True)
class ConfigFacts:
    """``found``: ``.github/ferry.yml`` exists on ``branch``; ``problems``: what the loader reports (the
    config alone); ``summary``: its warehouses and stages, when valid."""

    path: str
    branch: str
    found: bool
    problems: Sequence[Problem] = ()
    summary: str = ""


def config_summary(config: PipelineConfig) -> str:
    """``1 warehouse, 3 stages (dev <- shop, staging <- dev, prod <- staging)``."""
    order = []
    for name in stage_order(config):
        source = config.stages[name].source
        order.append(
            f"{name} <- {'+'.join(source.stages) if isinstance(source, StagesSource) else source.warehouse}"
        )
    warehouses, stages = len(config.warehouses), len(config.stages)
    return (
        f"{warehouses} warehouse{'s' if warehouses != 1 else ''}, {stages} stage{'s' if stages != 1 else ''} "
        f"({', '.join(order)})"
    )


def config_check(config: ConfigFacts) -> Check:
    name = config.path
    if not config.found:
        return fail(
            name,
            f"not found on {config.branch}",
            f"add {config.path} on {config.branch} (docs/config.md); `ferry validate` checks it locally",
        )
    if config.problems:
        count = len(config.problems)
        shown = "; ".join(str(p) for p in config.problems[:3]) + ("; …" if count > 3 else "")
        return fail(
            name,
            f"{count} problem{'s' if count != 1 else ''}: {shown}",
            "fix each one (`ferry validate` in a checkout lists them with line and column); until then Ferry "
            "promotes nothing",
        )
    return ok(name, f"valid on {config.branch}: {config.summary}")


@dataclass(frozen=True)
class StageFiles:
    """One stage's update targets: ``problems`` from the loader's file checks for this stage, ``held``
    the tags its files hold per image (``StageView.tags``), ``images`` its warehouse's images."""

    stage: str
    paths: Sequence[str]
    images: Sequence[str]
    held: Mapping[str, str | None]
    problems: Sequence[str] = ()


def stage_files_check(files: StageFiles) -> Check:
    name = f"stage {files.stage}: files"
    if files.problems:
        return fail(
            name,
            "; ".join(files.problems),
            "make the files hold the warehouse's images (`ferry bump FILE IMAGE=TAG` sets a tag) or point "
            f"stages.{files.stage}.update at the files that do; `ferry validate` in a checkout checks it",
        )
    held = ", ".join(f"{image} {files.held.get(image) or '(no tag)'}" for image in files.images)
    return ok(name, f"{', '.join(files.paths)}: {held}")


# ---- Argo CD ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ArgoAppFacts:
    """One application of a stage. ``error``: why it could not be read (unknown server, unreachable, token
    refused); ``exists``: Argo CD shows it to the token; ``can_get``/``can_sync``: Argo CD's answers to
    ``can-i`` (None: could not ask, ``can_i_error`` says why); ``automated``: ``spec.syncPolicy.automated``
    is set."""

    stage: str
    app: str
    server: str
    project: str
    error: str | None = None
    exists: bool = True
    can_get: bool | None = None
    can_sync: bool | None = None
    can_i_error: str | None = None
    automated: bool | None = None
    target_revision: str | None = None


def _policy(app: ArgoAppFacts, action: str) -> str:
    return f"p, role:ferry, applications, {action}, {app.project}/{app.app}, allow"


def argocd_check(app: ArgoAppFacts) -> Check:
    name = f"stage {app.stage}: Argo CD app {app.app}"
    if app.error is not None:
        return fail(
            name,
            app.error,
            f'make server "{app.server}" of FERRY_ARGOCD_SERVERS reachable with a valid token',
        )
    if not app.exists:
        return fail(
            name,
            f'not found on server "{app.server}", or the token may not see it',
            f"create the app, correct stages.{app.stage}.argocd in the config, or let the token read it "
            f"(argocd-rbac-cm: {_policy(app, 'get')})",
        )
    denied = [
        action for action, allowed in (("get", app.can_get), ("sync", app.can_sync)) if allowed is False
    ]
    if denied:
        lines = "; ".join(_policy(app, action) for action in denied)
        return fail(
            name,
            "the token may not " + " or ".join(denied) + " it",
            f"add to argocd-rbac-cm's policy.csv: {lines} (docs/install.md, step 3)",
        )
    mode = _sync_mode(app)
    if app.can_get is None or app.can_sync is None:
        return warn(
            name,
            f"readable; {mode}; could not ask whether the token may sync it ({app.can_i_error})",
            "check argocd-rbac-cm by hand: " + _policy(app, "sync"),
        )
    return ok(name, f"the token may get and sync it; {mode}")


def _sync_mode(app: ArgoAppFacts) -> str:
    revision = app.target_revision or "HEAD"
    if app.automated:
        return f"automated sync of {revision}: Ferry asks for a refresh after a merge"
    if app.automated is False:
        return f"manual sync: Ferry syncs it to {revision} after a merge"
    return "sync policy unknown"


# ---- registries ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RegistryFacts:
    """One warehouse image: its tags (None when listing failed: ``error``, ``temporary``)."""

    warehouse: str
    image: str
    rule: TagRule
    tags: Sequence[str] | None
    error: str | None = None
    temporary: bool = False


def registry_check(facts: RegistryFacts) -> Check:
    name = f"registry: {facts.image}"
    host = facts.image.split("/", 1)[0]
    if facts.tags is None:
        fix = (
            f"check that {host} is reachable from where Ferry runs (network policy, proxy, address)"
            if facts.temporary
            else f"set credentials for {host} in FERRY_REGISTRIES, or correct the image in the config"
        )
        return fail(name, facts.error or "the tags could not be listed", fix)
    try:
        chosen = select_tag(facts.tags, facts.rule)
    except FerryError as exc:
        return warn(
            name,
            f"{len(facts.tags)} tags; none is chosen by warehouse {facts.warehouse}'s rule: {exc}",
            "push a tag the rule accepts, or change the rule in the config",
        )
    return ok(name, f"{len(facts.tags)} tags; warehouse {facts.warehouse} picks {chosen}")


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


# ---- the report ------------------------------------------------------------------------------------
def failed(checks: Sequence[Check]) -> bool:
    return any(check.state == "fail" for check in checks)


def counts(checks: Sequence[Check]) -> dict[str, int]:
    return {state: sum(1 for c in checks if c.state == state) for state in ("ok", "warn", "fail")}


def render_table(repo: str, checks: Sequence[Check]) -> str:
    """One line per check (symbol, name, what was found), the fix under each failure or warning."""
    width = max((len(c.name) for c in checks), default=0)
    lines = [f"ferry doctor {repo}"]
    for check in checks:
        lines.append(f"{SYMBOLS[check.state]} {check.name.ljust(width)}  {check.detail}")
        if check.fix:
            lines.append(f"  {' ' * width}  fix: {check.fix}")
    tally = counts(checks)
    lines.append(f"{tally['ok']} ok, {tally['warn']} warnings, {tally['fail']} failed")
    return "\n".join(lines) + "\n"


def render_json(repo: str, checks: Sequence[Check]) -> str:
    """``{"repository", "ok", "counts": {ok, warn, fail}, "checks": [{name, state, detail, fix}]}``."""
    report = {
        "repository": repo,
        "ok": not failed(checks),
        "counts": counts(checks),
        "checks": [asdict(check) for check in checks],
    }
    return json.dumps(report, indent=2, ensure_ascii=False) + "\n"
