"""``ferry doctor``'s reads: gather what GitHub, Argo CD and the registries say about one installation, and
turn it into checks with ``bot.doctor``. Reads only; nothing is written anywhere.

Order matters only where a read needs an earlier one: the App and its installation first (without them
nothing else can be read), then the config from the default branch (the stages, apps and images to check
come from it), then each stage's files, Argo CD applications and warehouse images, and branch protection.
A read that fails becomes a failed check naming what could not be read; the others still run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

from bot.argocd import ArgoCDClient
from bot.core.config import PipelineConfig
from bot.core.config_load import CONFIG_PATH, load_config, update_target_paths
from bot.core.config_targets import target_problems
from bot.core.images import normalise_name
from bot.core.pipeline import warehouse_of
from bot.core.snapshot import Snapshot
from bot.core.stage_view import stage_view
from bot.core.warehouse import image_rules
from bot.doctor import Check, fail
from bot.doctor_argocd import ArgoAppFacts, argocd_check
from bot.doctor_github import (
    AppFacts,
    ProtectionFacts,
    WebhookFacts,
    app_checks,
    protection_check,
    webhook_check,
)
from bot.doctor_pipeline import (
    ConfigFacts,
    RegistryFacts,
    StageFiles,
    config_check,
    config_summary,
    registry_check,
    stage_files_check,
)
from bot.errors import ArgoCDError, ConfigError, ExternalError, FerryError
from bot.github.client import GitHubApp
from bot.github.repo import RepoGitHub
from bot.github.setup import app_info, branch_protection, repo_installation, webhook
from bot.registry import RegistryClient
from bot.settings import Settings
from bot.settings_checks import private_key_pem


@dataclass
class Doctor:
    """Gathers and judges; ``checks`` grows as it goes (``run`` returns it)."""

    github: GitHubApp
    registry: RegistryClient
    argocd: ArgoCDClient
    repo: str

    def __post_init__(self) -> None:
        self.checks: list[Check] = []
        self.settings_url = ""  # the App's settings page, once known

    async def run(self) -> list[Check]:
        installation = await self._app()
        if installation is None:
            return self.checks
        gh = RepoGitHub(self.github.installation(installation), self.repo)
        try:
            branch = await gh.default_branch()
            tree = await gh.tree(await gh.head(branch))
        except ExternalError as exc:
            self.checks.append(fail("repository", str(exc), f"make sure the App can read {self.repo}"))
            return self.checks
        config = await self._config(gh, branch, tree)
        if config is not None:
            await self._stages(gh, config, tree)
            await self._argocd(config, branch)
            await self._registries(config)
        await self._protection(installation, branch)
        return self.checks

    async def _app(self) -> int | None:
        """App checks; the installation's id when the App is installed on the repository."""
        try:
            app = await app_info(self.github)
        except ExternalError as exc:
            self.checks.append(
                fail(
                    "GitHub App",
                    str(exc),
                    "check FERRY_APP_ID, the private key (FERRY_PRIVATE_KEY or FERRY_PRIVATE_KEY_FILE) and "
                    "FERRY_GITHUB_URL; the key is the .pem generated on the App's settings page",
                )
            )
            return None
        try:
            installation = await repo_installation(self.github, self.repo)
        except ExternalError as exc:
            self.checks.append(fail("App installed", str(exc), "try again once GitHub answers"))
            return None
        self.settings_url = app.settings_url
        facts = AppFacts(
            repo=self.repo,
            name=app.name,
            settings_url=app.settings_url,
            install_url=f"{app.html_url.rstrip('/')}/installations/new",
            permissions=app.permissions,
            events=app.events,
            installed=installation is not None,
            accepted=installation.permissions if installation else {},
            installation_url=installation.html_url if installation else "",
        )
        self.checks += app_checks(facts)
        await self._webhook()
        return installation.id if installation else None

    async def _webhook(self) -> None:
        try:
            hook = await webhook(self.github)
        except ExternalError as exc:
            self.checks.append(fail("App webhook", str(exc), "try again once GitHub answers"))
            return
        deliveries = [(d.status_code, d.status, d.event) for d in hook.deliveries]
        self.checks.append(webhook_check(WebhookFacts(hook.url, deliveries, self.settings_url)))

    async def _config(self, gh: RepoGitHub, branch: str, tree: dict[str, str]) -> PipelineConfig | None:
        if CONFIG_PATH not in tree:
            self.checks.append(config_check(ConfigFacts(CONFIG_PATH, branch, found=False)))
            return None
        try:
            text = await gh.blob_text(tree[CONFIG_PATH], CONFIG_PATH)
        except ExternalError as exc:
            self.checks.append(fail(CONFIG_PATH, str(exc), "try again once GitHub answers"))
            return None
        try:
            config = load_config(text)
        except ConfigError as exc:
            self.checks.append(config_check(ConfigFacts(CONFIG_PATH, branch, True, problems=exc.problems)))
            return None
        self.checks.append(
            config_check(ConfigFacts(CONFIG_PATH, branch, True, summary=config_summary(config)))
        )
        return config

    async def _stages(self, gh: RepoGitHub, config: PipelineConfig, tree: dict[str, str]) -> None:
        """Each stage's files exist and hold its warehouse's images (the loader's own file checks)."""
        by_stage = update_target_paths(config, tree.__contains__)
        files: dict[str, str] = {}
        wanted = dict.fromkeys(path for paths in by_stage.values() for path in paths if path in tree)
        try:
            for path in wanted:
                files[path] = await gh.blob_text(tree[path], path)
        except ExternalError as exc:
            self.checks.append(fail("stage files", str(exc), "try again once GitHub answers"))
            return
        problems: dict[str, list[str]] = {}
        for where, _at_key, message in target_problems(config, files):
            problems.setdefault(str(where[1]), []).append(message)
        snapshot = Snapshot(
            repo=self.repo,
            default_branch="",
            head_sha="",
            now=datetime.now(UTC),
            config=config,
            paths=frozenset(tree),
            files=files,
        )
        for name in config.stages:
            warehouse = config.warehouses[warehouse_of(config, name)]
            view = stage_view(snapshot, name)
            self.checks.append(
                stage_files_check(
                    StageFiles(
                        stage=name,
                        paths=by_stage[name],
                        images=[normalise_name(rule.image) for rule in warehouse.images],
                        held=view.tags,
                        problems=problems.get(name, []),
                    )
                )
            )

    async def _argocd(self, config: PipelineConfig, branch: str) -> None:
        """Each stage's apps read as verification reads them (the GitOps repository's source), and the
        sync window that blocks them now."""
        for name, stage in config.stages.items():
            if stage.argocd is None:
                continue
            where = stage.argocd
            for app in where.app_names:
                facts = ArgoAppFacts(name, app, where.server, self.repo, branch, where.project)
                try:
                    state = await self.argocd.get_app(
                        where.server,
                        app,
                        repo=self.repo,
                        app_namespace=where.namespace,
                        project=where.project,
                    )
                    if state.exists and state.source_found:
                        window = await self.argocd.sync_window(
                            where.server,
                            app,
                            automated=state.automated,
                            app_namespace=where.namespace,
                            project=where.project,
                        )
                        state = replace(state, sync_blocked=window)
                except ArgoCDError as exc:
                    facts = replace(facts, error=str(exc))
                else:
                    facts = replace(facts, state=state)
                self.checks.append(argocd_check(facts))

    async def _registries(self, config: PipelineConfig) -> None:
        for name, warehouse in config.warehouses.items():
            for image, rule in image_rules(warehouse):
                try:
                    tags: list[str] | None = await self.registry.list_tags(image)
                    error, temporary = None, False
                except ExternalError as exc:
                    tags, error, temporary = None, str(exc), exc.temporary
                except FerryError as exc:
                    tags, error, temporary = None, str(exc), False
                self.checks.append(registry_check(RegistryFacts(name, image, rule, tags, error, temporary)))

    async def _protection(self, installation: int, branch: str) -> None:
        name = f"branch protection ({branch})"
        try:
            protection = await branch_protection(self.github, installation, self.repo, branch)
        except ExternalError as exc:
            self.checks.append(fail(name, str(exc), "try again once GitHub answers"))
            return
        facts = ProtectionFacts(branch, protection.state, protection.contexts, self.settings_url)
        self.checks.append(protection_check(facts))


async def diagnose(settings: Settings, repo: str) -> list[Check]:
    """Every check of ``repo`` with the App's ``settings`` (GitHub, Argo CD servers, registries)."""
    github = GitHubApp(
        app_id=settings.app_id or 0,
        private_key=private_key_pem(settings),
        base_url=str(settings.github_url),
        timeout=settings.github_timeout,
    )
    # One retry: the doctor reports a registry that does not answer rather than waiting it out.
    registry = RegistryClient(settings.registries, max_retries=1)
    argocd = ArgoCDClient(settings.argocd_servers, max_retries=1)
    try:
        return await Doctor(github, registry, argocd, repo).run()
    finally:
        await github.aclose()
        await registry.aclose()
        await argocd.aclose()
