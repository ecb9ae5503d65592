"""The sandbox's GitOps repository: config/example/, pointed at the local registry and tuned per scenario."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from bot.core.config_load import CONFIG_PATH
from bot.errors import FerryError

EXAMPLE_IMAGE_PREFIX = "ghcr.io/acme/"
# Argo CD application -> the path it deploys, as config/example/.github/ferry.yml names them.
EXAMPLE_APPS = {
    "shop-dev": "overlays/dev",
    "shop-staging": "overlays/staging",
    "shop-prod-eu": "charts/web",
    "shop-prod-us": "charts/web",
}

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


def quick_pipeline(config: dict[str, Any], *, verify_timeout: str = "60s") -> None:
    """Seconds instead of minutes, and a pipeline that runs by itself up to prod's PR."""
    for warehouse in config["warehouses"].values():
        warehouse["interval"] = "1s"
    for stage in config["stages"].values():
        stage["verify"] = {"timeout": verify_timeout, "soak": "0s"}
    config["stages"]["staging"]["auto_merge"] = True
    config["stages"]["prod"]["auto_promote"] = True
    config["stages"]["prod"]["auto_merge"] = False
