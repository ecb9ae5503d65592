"""The installed package, not the checkout: its wheel carries the sandbox's example repository, and
`ferry sandbox` runs from a fresh virtual environment in a directory outside the repository (as in the
Docker image, which installs the same wheel)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example"
IN_WHEEL = "bot/sandbox/example/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel built from what the Dockerfile copies, in a clean directory (an in-tree build would
    reuse whatever an earlier build left in build/)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    for name in ("bot", "config"):
        ignore = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / name, source / name, symlinks=True, ignore=ignore)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "--wheel-dir", str(out), str(source)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (built,) = out.glob("ferry-*.whl")
    return built


def test_the_wheel_carries_every_file_of_the_example_repository(wheel: Path) -> None:
    expected = {p.relative_to(EXAMPLE).as_posix() for p in EXAMPLE.rglob("*") if p.is_file()}
    with zipfile.ZipFile(wheel) as archive:
        packed = {n.removeprefix(IN_WHEEL) for n in archive.namelist() if n.startswith(IN_WHEEL)}
        for name in expected:
            assert archive.read(IN_WHEEL + name) == (EXAMPLE / name).read_bytes(), name
    assert ".github/ferry.yml" in expected
    assert packed == expected


def test_the_installed_package_runs_the_sandbox_from_outside_the_repository(
    wheel: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--quiet", str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    # Ferry's dependencies come from this environment (the fresh one has no index to install from):
    # a .pth line adds its site-packages after the fresh one's, where Ferry itself is found first.
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FERRY_", "PYTHON"))}

    where = subprocess.run(
        [str(python), "-c", "import bot.sandbox.example as e; print(e.example_dir())"],
        cwd=outside,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    assert where.startswith(str(site)), where  # the installed copy, not the checkout

    result = subprocess.run(
        [str(venv / "bin" / "ferry"), "sandbox", "--json"],
        cwd=outside,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    summary = json.loads(result.stdout)
    assert summary["ok"] is True
    assert {name: stage["health"] for name, stage in summary["stages"].items()} == {
        "dev": "success",
        "staging": "success",
        "prod": "success",
    }
