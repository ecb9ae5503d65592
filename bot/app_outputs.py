"""Where ``ferry app create`` puts a new App's credentials: a settings file, or a Kubernetes Secret.

- **Settings file**: the format ``FERRY_SETTINGS_FILE`` reads (``bot.settings``: YAML when the name ends in
  ``.yml``/``.yaml``, JSON otherwise; keys are the settings' names), created with mode 0600 and never over
  an existing file (it may hold another App's key).
- **Kubernetes Secret**: the Secret deploy/ mounts and reads (deploy/base/statefulset.yaml: the keys
  ``app-id``, ``private-key.pem`` and ``webhook-secret`` of Secret ``ferry-github-app``), as YAML for
  ``kubectl apply -f -``.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Final

from ruamel.yaml import YAML
from ruamel.yaml.scalarstring import LiteralScalarString

from bot.app_setup import CreatedApp
from bot.errors import FerryError

DEFAULT_SECRET: Final = "ferry-github-app"
DEFAULT_NAMESPACE: Final = "ferry"
# The keys deploy/base/statefulset.yaml reads from the Secret (tests/test_app_create.py checks them).
SECRET_KEYS: Final = {
    "app_id": "app-id",
    "private_key": "private-key.pem",
    "webhook_secret": "webhook-secret",
}
FILE_MODE: Final = 0o600
MSG_EXISTS: Final = (
    "{path} already exists; it may hold another App's key: choose another --out, or move it away first"
)


def is_yaml(path: Path) -> bool:
    return path.suffix in (".yml", ".yaml")


def check_writable(path: Path) -> None:
    """Refuse before the App is created, not after: an existing file, or a directory that is not there."""
    if path.exists():
        raise FerryError(MSG_EXISTS.format(path=path))
    if not path.parent.is_dir():
        raise FerryError(f"{path.parent} is not a directory; create it first or choose another --out")


def settings_values(app: CreatedApp, github_url: str | None) -> dict[str, Any]:
    """The settings ``ferry serve`` needs from the App, by their names in ``bot.settings.Settings``."""
    values: dict[str, Any] = {"app_id": app.id, "private_key": app.pem.get_secret_value()}
    if app.webhook_secret is not None:
        values["webhook_secret"] = app.webhook_secret.get_secret_value()
    if github_url is not None:
        values["github_url"] = github_url
    return values


def render_settings(values: dict[str, Any], *, yaml: bool) -> str:
    if not yaml:
        return json.dumps(values, indent=2) + "\n"
    block = {k: LiteralScalarString(v) if isinstance(v, str) and "\n" in v else v for k, v in values.items()}
    out = io.StringIO()
    YAML(typ="rt").dump(block, out)
    return out.getvalue()


def write_settings(path: Path, values: dict[str, Any]) -> None:
    """Create ``path`` with mode 0600 holding ``values``; FerryError if it exists meanwhile."""
    text = render_settings(values, yaml=is_yaml(path))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        raise FerryError(MSG_EXISTS.format(path=path)) from None
    except OSError as exc:
        raise FerryError(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), FILE_MODE)  # whatever the umask allowed
        handle.write(text)


def kubernetes_secret(app: CreatedApp, *, name: str, namespace: str) -> str:
    """A ``v1/Secret`` manifest (YAML, ``stringData``) with the App's credentials under deploy/'s keys."""
    data: dict[str, Any] = {
        SECRET_KEYS["app_id"]: str(app.id),
        SECRET_KEYS["private_key"]: LiteralScalarString(app.pem.get_secret_value()),
    }
    if app.webhook_secret is not None:
        data[SECRET_KEYS["webhook_secret"]] = app.webhook_secret.get_secret_value()
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/name": "ferry", "app.kubernetes.io/part-of": "ferry"},
        },
        "type": "Opaque",
        "stringData": data,
    }
    out = io.StringIO()
    YAML(typ="rt").dump(secret, out)
    return out.getvalue()
