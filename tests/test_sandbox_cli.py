"""`ferry sandbox` as a newcomer runs it: narrated as it happens, `--keep` usable at once, nothing left over.

The command runs in a real child process (``python -m bot sandbox``) so its output is read as a terminal
would show it, line by line while it runs, and Ctrl-C and SIGTERM are real signals.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from bot.sandbox import run
from bot.sandbox.example import quick_pipeline
from bot.sandbox.scenarios import SCENARIOS, Scenario
from bot.sandbox.world import World

EVENT_LINE = re.compile(r"^\s+\d+\.\d\ds  [a-z_]+ ")
ROOT = Path(__file__).resolve().parent.parent


class Child:
    """A running ``ferry`` process whose stdout is read line by line, every read bounded."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[str] = []

    async def until(self, what: str, matches: Any, within: float = 90.0) -> str:
        deadline = time.monotonic() + within
        assert self.process.stdout is not None
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line {what} within {within:.0f}s; got:\n" + "\n".join(self.lines))
            try:
                raw = await asyncio.wait_for(self.process.stdout.readline(), left)
            except TimeoutError:
                continue
            if not raw:
                raise AssertionError(f"ferry exited before printing {what}; got:\n" + "\n".join(self.lines))
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            if matches(line):
                return line

    async def stop(self, signum: int, within: float = 60.0) -> int:
        self.process.send_signal(signum)
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()
            raise AssertionError(f"ferry did not stop within {within:.0f}s of signal {signum}") from None


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a test runner started in the background ignores it


@asynccontextmanager
async def ferry(tmp: Path, *args: str, env: dict[str, str] | None = None) -> AsyncIterator[Child]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=ROOT,
        env={**os.environ, "TMPDIR": str(tmp), **(env or {})},
        preexec_fn=_default_sigint,
    )
    try:
        yield Child(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def _shell(command: str, env_file: Path, within: float = 60.0) -> str:
    """Run ``command`` in bash after sourcing ``env_file``, as a person would in another terminal."""
    process = await asyncio.create_subprocess_exec(
        "bash",
        "-c",
        f'. "{env_file}" && {command}',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
        env={key: value for key, value in os.environ.items() if not key.startswith("FERRY_")},
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), within)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{command!r} did not finish within {within:.0f}s") from None
    assert process.returncode == 0, f"{command!r} exited with {process.returncode}: {err.decode()}"
    return out.decode()


def _leftovers(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.iterdir() if p.name.startswith("ferry-sandbox-"))


async def test_the_sandbox_narrates_while_it_runs_and_sigterm_removes_its_directory(tmp_path: Path) -> None:
    async with ferry(tmp_path, "sandbox") as child:
        await child.until("narrating an event", EVENT_LINE.match)
        assert _leftovers(tmp_path), "the sandbox works in a temporary directory under TMPDIR"
        assert not any(line.startswith("| stage |") for line in child.lines)  # the story is not over yet

        assert await child.stop(signal.SIGTERM) == 130
    assert _leftovers(tmp_path) == []


async def test_a_kept_sandbox_prints_urls_and_an_env_file_that_ferry_plan_and_curl_use(
    tmp_path: Path,
) -> None:
    async with ferry(tmp_path, "sandbox", "--keep") as child:
        line = await child.until("naming the env file", lambda text: "sandbox.env" in text and ": /" in text)
        env_file = Path(line.rsplit(": ", 1)[1])
        assert not any(EVENT_LINE.match(text) for text in child.lines), "URLs come before the story"
        assert any("Ferry status page  http://127.0.0.1:" in text for text in child.lines)
        mode = os.stat(env_file).st_mode & 0o777
        assert mode == 0o600, f"{oct(mode)}: the env file holds the webhook secret and a token"
        await child.until("the first promotion PR", lambda text: "pr_opened" in text and "[dev]" in text)
        discovered = [text for text in child.lines if "freight_discovered" in text and "1.5.0" in text]
        freight = discovered[-1].rsplit("(", 1)[1].rstrip(")")

        planned = json.loads(await _shell(f"{sys.executable} -m bot plan acme/gitops --json", env_file))
        assert isinstance(planned, list)  # it read the stand-ins and decided (maybe nothing to do)
        auth = '-H "Authorization: token $SANDBOX_GITHUB_TOKEN"'
        pulls = await _shell(
            f'curl -sf {auth} "$FERRY_GITHUB_URL/repos/$SANDBOX_REPO/pulls?state=all"', env_file
        )
        assert f"ferry/dev/{freight}" in [p["head"]["ref"] for p in json.loads(pulls)]
        body = """-d '{"body": "/status"}'"""
        posted = await _shell(
            f'curl -sf {auth} {body} "$FERRY_GITHUB_URL/repos/$SANDBOX_REPO/issues/1/comments"', env_file
        )
        assert json.loads(posted)["user"]["login"] == "you"
        await child.until("Ferry answering /status", lambda text: "/status by @you" in text)

        assert await child.stop(signal.SIGINT) == 130  # Ctrl-C
    assert _leftovers(tmp_path) == []


async def test_a_story_that_fails_still_removes_the_temporary_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(world: World) -> bool:
        raise RuntimeError("the story broke")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setitem(SCENARIOS, "broken", Scenario("broken", "breaks", broken, quick_pipeline))

    with pytest.raises(RuntimeError, match="the story broke"):
        await run.run_scenario("broken")

    assert _leftovers(tmp_path) == []
