"""What ``ferry sandbox --keep`` hands a person: where everything runs, and an env file to talk to it.

The env file (``sandbox.env`` in the sandbox's temporary directory, mode 0600, removed with it) holds the
``FERRY_*`` settings of the sandbox's Ferry, so ``ferry plan acme/gitops`` run in another shell reads the
same stand-ins, and ``SANDBOX_GITHUB_TOKEN``, a token of a writer in the release team, for ``curl`` and for
comment commands (``/status``, ``/promote prod``) posted to the GitHub stand-in. Not ``GITHUB_TOKEN``:
sourcing the file must not point a shell's ``gh`` at the stand-in.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from bot.sandbox.scenarios import RELEASE_TEAM
from bot.sandbox.world import ARGOCD_SERVER, FULL_NAME, World

ENV_FILE = "sandbox.env"
KEY_FILE = "app-private-key.pem"
USER = "you"


def _private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def env_values(world: World, token: str, key_file: Path) -> dict[str, str]:
    """The variables of the env file: Ferry's settings pointing at the stand-ins, and the token."""
    servers = {ARGOCD_SERVER: {"url": world.argocd_url, "token": world.argocd_token}}
    return {
        "FERRY_APP_ID": str(world.settings().app_id),
        "FERRY_PRIVATE_KEY_FILE": str(key_file),
        "FERRY_WEBHOOK_SECRET": world.webhook_secret,
        "FERRY_GITHUB_URL": world.github_url,
        "FERRY_ARGOCD_SERVERS": json.dumps(servers, separators=(",", ":")),
        "FERRY_LOG_FORMAT": "text",
        "SANDBOX_GITHUB_TOKEN": token,
        "SANDBOX_REPO": FULL_NAME,
    }


def write_env_file(world: World) -> Path:
    """Write ``sandbox.env`` (and the App's key beside it) into the world's directory; return its path."""
    key_file = world.workdir / KEY_FILE
    _private(key_file, world.github.app_private_key_pem)
    token = world.github.add_user(USER, "write", [RELEASE_TEAM])
    lines = [
        "# The kept Ferry sandbox: `. sandbox.env`, then `ferry plan acme/gitops`, or curl with the token.",
        *(
            f"export {name}={shlex.quote(value)}"
            for name, value in env_values(world, token, key_file).items()
        ),
    ]
    path = world.workdir / ENV_FILE
    _private(path, "\n".join(lines) + "\n")
    return path


def kept_lines(world: World, env_file: Path) -> list[str]:
    """What to print once the world runs: addresses, then how to use the env file."""
    auth = '-H "Authorization: token $SANDBOX_GITHUB_TOKEN"'
    comments = f'"$FERRY_GITHUB_URL/repos/{FULL_NAME}/issues/1/comments"'
    return [
        f"Kept running until Ctrl-C, which stops everything and removes {world.workdir}",
        f"  Ferry status page  http://127.0.0.1:{world.ferry_port}/  (/status.json, /metrics, /healthz)",
        f"  GitHub stand-in    {world.github_url}  (git clone {world.github.repo_path})",
        f"  Argo CD stand-in   {world.argocd_url}",
        f"  registry           http://{world.registry.host}",
        f"  settings and a GitHub token for @{USER} (writer, {RELEASE_TEAM}): {env_file}",
        f"    . {shlex.quote(str(env_file))}",
        f"    ferry plan {FULL_NAME}",
        f'    curl -s {auth} "$FERRY_GITHUB_URL/repos/{FULL_NAME}/pulls"',
        f'    curl -s {auth} -d \'{{"body": "/status"}}\' {comments}',
    ]
