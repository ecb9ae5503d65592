"""The sandbox's GitOps repository: config/example/, pointed at the local registry and tuned per scenario."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.core.config_load import CONFIG_PATH
from bot.errors import FerryError
from bot.sandbox.argocd_apps import AppSpec, ChartRepository, chart_with_git_values, git_app

EXAMPLE_IMAGE_PREFIX = "ghcr.io/acme/"
EXAMPLE_BRANCH = "main"
EXAMPLE_CHART = "charts/web"
# Where the sandbox's Argo CD pulls the example chart from for the multi-source prod app.
EXAMPLE_CHART_REPOSITORY = "https://charts.acme.example"
# The Argo CD applications config/example/.github/ferry.yml names, set up as most teams run them:
# tracking the default branch with automated sync (self-heal, prune). prod-eu is the one manual app;
# prod-us is multi-source: the chart from a chart repository, its values from this repository.
EXAMPLE_APPS: dict[str, AppSpec] = {
    "shop-dev": git_app("overlays/dev", EXAMPLE_BRANCH, automated=True, self_heal=True, prune=True),
    "shop-staging": git_app("overlays/staging", EXAMPLE_BRANCH, automated=True, self_heal=True, prune=True),
    "shop-prod-eu": git_app(EXAMPLE_CHART, EXAMPLE_BRANCH, value_files=["values-prod.yaml"]),
    "shop-prod-us": chart_with_git_values(
        EXAMPLE_CHART_REPOSITORY, "web", "0.3.0", [f"{EXAMPLE_CHART}/values-prod.yaml"],
        git_revision=EXAMPLE_BRANCH, automated=True, self_heal=True, prune=True,
    ),
}  # fmt: skip

ConfigEdit = Callable[[dict[str, Any]], None]


def example_dir() -> Path:
    """config/example/: in a checkout through the link bot/sandbox/example, in an installed package
    (and so the Docker image) as the package data the link was built into."""
    here = Path(__file__).parent / "example"
    if not (here / CONFIG_PATH).is_file():
        raise FerryError(
            f"the sandbox builds its GitOps repository from {here}, which is missing: "
            "reinstall Ferry (pip install ferry, or pip install -e . in a checkout)"
        )
    return here


def sandbox_files(registry_host: str, edit: ConfigEdit) -> dict[str, bytes]:
    """The example repository's files with images moved to ``registry_host`` and the config edited."""
    root = example_dir()
    files: dict[str, bytes] = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            text = path.read_text().replace(EXAMPLE_IMAGE_PREFIX, f"{registry_host}/acme/")
            files[path.relative_to(root).as_posix()] = text.encode()
    yaml = YAML()
    config = yaml.load(files[CONFIG_PATH].decode())
    edit(config)
    out = io.StringIO()
    yaml.dump(config, out)
    files[CONFIG_PATH] = out.getvalue().encode()
    return files


def example_chart_repository(files: dict[str, bytes]) -> ChartRepository:
    """The chart repository holding the example chart (from the sandbox's ``files``) at its version."""
    repository = ChartRepository(EXAMPLE_CHART_REPOSITORY)
    prefix = EXAMPLE_CHART + "/"
    chart = {name.removeprefix(prefix): data for name, data in files.items() if name.startswith(prefix)}
    version = YAML(typ="safe").load(chart["Chart.yaml"].decode())["version"]
    repository.publish("web", str(version), chart)
    return repository


def quick_pipeline(config: dict[str, Any], *, verify_timeout: str = "60s") -> None:
    """Seconds instead of minutes, and a pipeline that runs by itself up to prod's PR."""
    for warehouse in config["warehouses"].values():
        warehouse["interval"] = "1s"
    for stage in config["stages"].values():
        stage["verify"] = {"timeout": verify_timeout, "soak": "0s"}
    config["stages"]["staging"]["auto_merge"] = True
    config["stages"]["prod"]["auto_promote"] = True
    config["stages"]["prod"]["auto_merge"] = False
