"""`ferry app create`: the App manifest flow driven over HTTP as a browser would, against the GitHub stand-in.

The browser's part: fetch the local page, post its form to GitHub (the stand-in's web route, which
confirms at once), follow GitHub's redirect back to the local page with the one-time code.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import httpx
import pytest
from githubkit import AppAuthStrategy, GitHub
from ruamel.yaml import YAML

from bot.app_manifest import build_manifest, default_permissions
from bot.app_outputs import SECRET_KEYS
from bot.app_setup import ManifestFlow
from bot.sandbox.github_standin import GitHubStandIn
from bot.settings import load_settings

ROOT = Path(__file__).resolve().parent.parent
SECRET = "webhook-secret-of-the-new-app"
FERRY_URL = "https://ferry.example.com"
WAIT = 30.0


class Form(HTMLParser):
    """The first form of a page: its method, action and fields."""

    def __init__(self) -> None:
        super().__init__()
        self.method = self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.method, self.action = values.get("method", "get"), values.get("action", "")
        elif tag == "input" and "name" in values:
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and values.get("type") == "submit":
            self.buttons += 1


def parse_form(page: str) -> Form:
    form = Form()
    form.feed(page)
    return form


@pytest.fixture
async def github(tmp_path: Path) -> AsyncIterator[GitHubStandIn]:
    standin = GitHubStandIn(tmp_path / "github", webhook_secret=SECRET)
    await standin.seed({"README.md": b"hello\n"})
    async with standin:
        yield standin


class Command:
    """`ferry app create ...` in a process of its own, as a person runs it."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.stderr = ""

    @classmethod
    async def start(cls, *args: str) -> Command:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "app",
            "create",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={k: v for k, v in os.environ.items() if not k.startswith("FERRY_")},
        )
        return cls(process)

    async def page_url(self) -> str:
        assert self.process.stderr is not None
        async with asyncio.timeout(WAIT):
            while True:
                line = (await self.process.stderr.readline()).decode()
                assert line, f"the command ended before printing its page: {self.stderr}"
                self.stderr += line
                found = re.search(r"Open (http://127\.0\.0\.1:\d+/) in a browser", line)
                if found:
                    return found.group(1)

    async def finish(self) -> tuple[int, str, str]:
        async with asyncio.timeout(WAIT):
            out, err = await self.process.communicate()
        self.stderr += err.decode()
        return int(self.process.returncode or 0), out.decode(), self.stderr


async def click_through(page_url: str, *, expect_form_action: str) -> httpx.Response:
    """Be the browser: load the page, post its form to GitHub, follow the redirect back."""
    async with httpx.AsyncClient(timeout=WAIT) as browser:
        page = await browser.get(page_url)
        assert page.status_code == 200
        form = parse_form(page.text)
        assert form.method == "post" and form.buttons == 1 and "<script" not in page.text
        assert form.action.startswith(expect_form_action + "?state=")
        github_answer = await browser.post(form.action, data=form.fields)
        assert github_answer.status_code == 302, github_answer.text
        back = github_answer.headers["Location"]
        assert back.startswith(page_url.rstrip("/") + "/callback?code=")
        return await browser.get(back)


async def test_one_click_creates_the_app_and_writes_a_private_settings_file(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ferry-settings.yaml"
    command = await Command.start(
        "--url", FERRY_URL, "--org", "acme", "--github-url", github.base_url, "--out", str(out)
    )
    page_url = await command.page_url()
    done = await click_through(
        page_url, expect_form_action=f"{github.base_url}/organizations/acme/settings/apps/new"
    )
    assert done.status_code == 200
    assert f"{github.base_url}/apps/ferry/installations/new" in done.text
    code, stdout, stderr = await command.finish()
    assert code == 0, stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    monkeypatch.setenv("FERRY_SETTINGS_FILE", str(out))
    settings = load_settings()
    assert settings.app_id == github.state.site.app_id
    assert settings.app_private_key() == github.app_private_key_pem
    assert settings.webhook_secret is not None and settings.webhook_secret.get_secret_value() == SECRET
    assert str(settings.github_url).rstrip("/") == github.base_url
    key_body = github.app_private_key_pem.splitlines()[1]
    for text in (stdout, stderr):
        assert key_body not in text and SECRET not in text
    assert "Next: install the App on your GitOps repository" in stderr
    # The credentials work, and the App GitHub created holds exactly the manifest's permissions and events.
    async with GitHub(
        AppAuthStrategy(settings.app_id, settings.app_private_key()), base_url=github.base_url
    ) as gh:
        app = (await gh.rest("2022-11-28").apps.async_get_authenticated()).json()
    assert app["permissions"] == default_permissions()
    assert app["events"] == build_manifest(FERRY_URL)["default_events"]


async def test_the_secret_for_kubernetes_has_the_names_deploy_reads(github: GitHubStandIn) -> None:
    command = await Command.start(
        "--url", FERRY_URL, "--github-url", github.base_url, "--kubernetes-secret", "ferry-github-app"
    )
    page_url = await command.page_url()
    done = await click_through(page_url, expect_form_action=f"{github.base_url}/settings/apps/new")
    assert done.status_code == 200
    code, stdout, stderr = await command.finish()
    assert code == 0, stderr
    secret = YAML(typ="safe").load(stdout)
    assert (secret["kind"], secret["metadata"]["name"], secret["metadata"]["namespace"]) == (
        "Secret",
        "ferry-github-app",
        "ferry",
    )
    data = secret["stringData"]
    assert data == {
        "app-id": str(github.state.site.app_id),
        "private-key.pem": github.app_private_key_pem,
        "webhook-secret": SECRET,
    }
    assert github.app_private_key_pem.splitlines()[1] not in stderr
    assert set(data) == deploy_secret_keys("ferry-github-app")


def deploy_secret_keys(name: str) -> set[str]:
    """The keys deploy/base/statefulset.yaml reads from Secret ``name`` (env and volume items)."""
    statefulset = YAML(typ="safe").load((ROOT / "deploy" / "base" / "statefulset.yaml").read_text())
    pod = statefulset["spec"]["template"]["spec"]
    keys = {
        env["valueFrom"]["secretKeyRef"]["key"]
        for container in pod["containers"]
        for env in container.get("env", [])
        if env.get("valueFrom", {}).get("secretKeyRef", {}).get("name") == name
    }
    for volume in pod.get("volumes", []):
        if volume.get("secret", {}).get("secretName") == name:
            keys |= {item["key"] for item in volume["secret"]["items"]}
    assert keys, f"deploy/ reads nothing from Secret {name}"
    assert keys == set(SECRET_KEYS.values())
    return keys


async def test_a_callback_whose_state_is_not_the_pages_is_refused_and_exchanges_nothing(
    github: GitHubStandIn,
) -> None:
    flow = ManifestFlow(
        lambda redirect: build_manifest(FERRY_URL, redirect_url=redirect), api_url=github.base_url
    )
    async with flow:
        page_url = await flow.start()
        code = github.register_manifest(build_manifest(FERRY_URL))
        async with httpx.AsyncClient(timeout=WAIT) as browser:
            forged = await browser.get(f"{page_url}callback", params={"code": code, "state": "guessed"})
        assert forged.status_code == 403 and "nothing was exchanged" in forged.text
        assert not github.state.manifests[code].used
        done = await click_through(page_url, expect_form_action=f"{github.base_url}/settings/apps/new")
        assert done.status_code == 200
        created = await flow.wait(WAIT)
        assert created.id == github.state.site.app_id
        async with httpx.AsyncClient(timeout=WAIT) as browser:
            again = await browser.get(f"{page_url}callback", params={"code": code, "state": flow.state})
        assert again.status_code == 410  # one App per run; the code was not spent either
        assert not github.state.manifests[code].used


async def test_a_spent_code_fails_with_what_to_do_about_the_app_github_created(github: GitHubStandIn) -> None:
    flow = ManifestFlow(
        lambda redirect: build_manifest(FERRY_URL, redirect_url=redirect), api_url=github.base_url
    )
    async with flow:
        page_url = await flow.start()
        code = github.register_manifest(build_manifest(FERRY_URL))
        github.state.manifests[code].used = True
        async with httpx.AsyncClient(timeout=WAIT) as browser:
            answer = await browser.get(f"{page_url}callback", params={"code": code, "state": flow.state})
        assert answer.status_code == 502
        with pytest.raises(Exception, match="generate a private key") as failed:
            await flow.wait(WAIT)
        assert "404" in str(failed.value)


def run_cli(*args: str) -> tuple[int, str, str]:
    result = subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    return result.returncode, result.stdout, result.stderr


def test_an_existing_settings_file_is_refused_before_anything_is_served(tmp_path: Path) -> None:
    out = tmp_path / "settings.json"
    out.write_text('{"app_id": 7}')
    code, _, stderr = run_cli("app", "create", "--url", FERRY_URL, "--out", str(out))
    assert code == 1
    assert f"{out} already exists" in stderr and "Open http" not in stderr
    assert out.read_text() == '{"app_id": 7}'


def test_a_url_github_cannot_call_is_refused(tmp_path: Path) -> None:
    code, _, stderr = run_cli(
        "app", "create", "--url", "ferry.example.com", "--out", str(tmp_path / "s.yaml")
    )
    assert code == 1 and "expected an absolute http(s) URL" in stderr


def test_minimal_leaves_out_the_optional_administration_permission() -> None:
    code, stdout, _ = run_cli("app", "manifest", "--url", FERRY_URL, "--minimal")
    assert code == 0
    manifest: dict[str, Any] = json.loads(stdout)
    assert "administration" not in manifest["default_permissions"]
    assert manifest["default_permissions"]["contents"] == "write"


async def test_githubs_form_page_refuses_a_manifest_without_a_homepage(github: GitHubStandIn) -> None:
    async with httpx.AsyncClient(base_url=github.base_url, timeout=WAIT) as browser:
        answer = await browser.post(
            "/settings/apps/new?state=s", data={"manifest": json.dumps({"name": "x"})}
        )
        other_org = await browser.post(
            "/organizations/someone-else/settings/apps/new",
            data={"manifest": json.dumps(build_manifest(FERRY_URL))},
        )
    assert answer.status_code == 422 and "url (the App&#x27;s homepage) is required" in answer.text
    assert other_org.status_code == 404
    assert github.state.manifests == {}
