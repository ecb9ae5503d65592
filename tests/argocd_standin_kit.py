"""Shared pieces of the Argo CD stand-in tests: a fake clock, a real git repository with a small
kustomize tree (a shared ``base`` and per-stage overlays), the stand-in on loopback HTTP, and the
swagger.json shape check (Argo CD's API description, carried in tests/fixtures/argocd/)."""

from __future__ import annotations

import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from bot.argocd import ArgoCDClient
from bot.sandbox.argocd_apps import AppSpec
from bot.sandbox.argocd_standin import ArgoCDStandIn
from bot.settings import ArgoCDServer

TOKEN = "sandbox-token"
START = 1_740_823_200.0  # 2025-03-01T10:00:00Z
SWAGGER = Path(__file__).resolve().parent / "fixtures" / "argocd" / "swagger.json"

BASE = {
    "base/kustomization.yaml": "resources: [web.yaml, service.yaml]\n",
    "base/web.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  template:
    spec:
      containers:
        - name: web
          image: ghcr.io/acme/web:0.0.1
""",
    "base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [port: 80]}\n",
}
OVERLAY = """\
resources: [../../base]
images:
  - name: ghcr.io/acme/web
    newTag: "{tag}"
"""


class FakeClock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class GitRepo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")
        self.git("config", "user.email", "ferry@example.com")
        self.git("config", "user.name", "Ferry Test")

    def git(self, *args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(self.path), *args], check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    def commit(self, files: Mapping[str, str], message: str = "change") -> str:
        for name, text in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD")

    def release(self, tag: str, stage: str = "dev") -> str:
        """Set the stage overlay's web tag; returns the new commit."""
        overlay = {f"overlays/{stage}/kustomization.yaml": OVERLAY.format(tag=tag)}
        return self.commit(overlay, f"{stage} {tag}")

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")


def shop_repo(path: Path, tags: Mapping[str, str] | None = None) -> GitRepo:
    """A repository with ``base/`` and one overlay per stage in ``tags`` (default: dev at 1.0.0)."""
    repo = GitRepo(path)
    files = dict(BASE)
    for stage, tag in (tags or {"dev": "1.0.0"}).items():
        files[f"overlays/{stage}/kustomization.yaml"] = OVERLAY.format(tag=tag)
    repo.commit(files, "shop")
    return repo


@dataclass
class Sandbox:
    repo: GitRepo
    clock: FakeClock
    standin: ArgoCDStandIn
    client: ArgoCDClient
    base_url: str

    def raw(self, token: str = TOKEN) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.base_url, headers={"Authorization": f"Bearer {token}"})

    async def get(self, app: str, **params: str) -> dict[str, Any]:
        async with self.raw() as http:
            response = await http.get(f"/api/v1/applications/{app}", params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def sync(self, app: str, body: Mapping[str, Any], token: str = TOKEN) -> httpx.Response:
        async with self.raw(token) as http:
            return await http.post(f"/api/v1/applications/{app}/sync", json=dict(body))


@contextlib.asynccontextmanager
async def running(
    repo: GitRepo, clock: FakeClock, apps: Mapping[str, str | AppSpec], **options: Any
) -> AsyncIterator[Sandbox]:
    """The stand-in serving ``apps`` from ``repo`` on loopback, and Ferry's client pointed at it."""
    options.setdefault("progress_seconds", 2.0)
    options.setdefault("progress_deadline_seconds", 10.0)
    standin = ArgoCDStandIn(repo.path, token=TOKEN, apps=apps, clock=clock, **options)
    base_url = await standin.start()
    server = ArgoCDServer(url=base_url, token=SecretStr(TOKEN), timeout=5.0)

    async def no_sleep(_: float) -> None:
        return None

    client = ArgoCDClient({"sandbox": server}, sleep=no_sleep)
    try:
        yield Sandbox(repo, clock, standin, client, base_url)
    finally:
        await client.aclose()
        await standin.stop()


# --- swagger.json ---------------------------------------------------------------------------------


@cache
def swagger() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(SWAGGER.read_text())
    return data


def schema_problems(
    value: Any, schema: dict[str, Any], definitions: dict[str, Any], where: str = "$"
) -> Iterator[str]:
    """Where ``value`` strays from a Swagger 2.0 schema: unknown keys, wrong types, missing required."""
    if "$ref" in schema:
        schema = definitions[schema["$ref"].rsplit("/", 1)[-1]]
    if "allOf" in schema:  # v1alpha1ResourceNode: its own properties and ResourceRef's
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        properties = dict(merged.get("properties", {}))
        for part in schema["allOf"]:
            found = definitions[part["$ref"].rsplit("/", 1)[-1]] if "$ref" in part else part
            properties.update(found.get("properties", {}))
        schema = {**merged, "properties": properties}
    kind = schema.get("type", "object" if "properties" in schema else None)
    checks = {
        "string": lambda v: isinstance(v, str),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "boolean": lambda v: isinstance(v, bool),
        "array": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind in checks and not checks[kind](value):
        yield f"{where}: expected {kind}, got {type(value).__name__}"
        return
    if kind == "string" and schema.get("format") == "date-time":
        try:
            datetime.fromisoformat(value)
        except ValueError:
            yield f"{where}: {value!r} is not a date-time"
    if kind == "array":
        for index, item in enumerate(value):
            yield from schema_problems(item, schema.get("items", {}), definitions, f"{where}[{index}]")
    if kind == "object":
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for name in schema.get("required", []):
            if name not in value:
                yield f"{where}: required {name!r} missing"
        for key, item in value.items():
            if key in properties:
                yield from schema_problems(item, properties[key], definitions, f"{where}.{key}")
            elif isinstance(extra, dict):
                yield from schema_problems(item, extra, definitions, f"{where}.{key}")
            else:
                yield f"{where}: {key!r} is not in the schema"


def assert_shape(value: Any, definition: str) -> None:
    definitions = swagger()["definitions"]
    problems = list(schema_problems(value, definitions[definition], definitions))
    assert problems == [], "\n".join(problems)
