"""A real OCI registry for the tests: Debian's ``docker-registry`` (CNCF distribution 2.8) on 127.0.0.1.

The ``registry`` fixture starts one per test session with a config of its own (filesystem storage in
a temporary directory, no auth, deletes enabled; the packaged config binds every interface and turns
on auth, so it is never used) and stops it afterwards. Test images are pushed with the registry's own
HTTP API: a monolithic blob upload (POST, then PUT with the digest) for a config and a layer, then a
manifest PUT. Import the fixture into a test module with ``from tests.registry_server import registry``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import httpx
import pytest

BINARY = "docker-registry"
START_TIMEOUT = 20.0
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MISSING = f"the {BINARY} binary is not installed (apt-get install docker-registry; .ci/run does it)"

CONFIG_TEMPLATE = """\
version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: {root}
  delete:
    enabled: true
http:
  addr: 127.0.0.1:{port}
  secret: ferry-tests-only
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class LocalRegistry:
    """A running registry: ``host`` is ``127.0.0.1:PORT``, as an image reference names it."""

    host: str

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    def _upload_blob(self, client: httpx.Client, repository: str, data: bytes) -> str:
        digest = _digest(data)
        started = client.post(f"{self.url}/v2/{repository}/blobs/uploads/")
        started.raise_for_status()
        location = urljoin(self.url, started.headers["Location"])
        joiner = "&" if "?" in location else "?"
        done = client.put(
            f"{location}{joiner}digest={digest}",
            content=data,
            headers={"Content-Type": "application/octet-stream"},
        )
        done.raise_for_status()
        return digest

    def push(self, repository: str, tag: str, *, docker: bool = False, salt: str = "") -> str:
        """Push a tiny image as ``repository:tag``; return the digest the registry answered with."""
        media = (
            (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER)
            if docker
            else (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER)
        )
        layer = f"layer of {repository}:{tag}{salt}".encode()
        config = json.dumps(
            {
                "architecture": "amd64",
                "os": "linux",
                "rootfs": {"type": "layers", "diff_ids": [_digest(layer)]},
            }
        ).encode()
        with httpx.Client(timeout=10.0) as client:
            config_digest = self._upload_blob(client, repository, config)
            layer_digest = self._upload_blob(client, repository, layer)
            manifest = json.dumps(
                {
                    "schemaVersion": 2,
                    "mediaType": media[0],
                    "config": {"mediaType": media[1], "digest": config_digest, "size": len(config)},
                    "layers": [{"mediaType": media[2], "digest": layer_digest, "size": len(layer)}],
                }
            ).encode()
            answer = client.put(
                f"{self.url}/v2/{repository}/manifests/{tag}",
                content=manifest,
                headers={"Content-Type": media[0]},
            )
            answer.raise_for_status()
            return str(answer.headers["Docker-Content-Digest"])


@contextmanager
def running_registry(workdir: Path) -> Iterator[LocalRegistry]:
    """Start ``docker-registry serve`` on a free loopback port; raise FileNotFoundError if not installed."""
    binary = shutil.which(BINARY)
    if binary is None:
        raise FileNotFoundError(MISSING)
    port = _free_port()
    config = workdir / "registry.yml"
    config.write_text(CONFIG_TEMPLATE.format(root=workdir / "data", port=port))
    log = (workdir / "registry.log").open("wb")
    process = subprocess.Popen([binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    registry = LocalRegistry(f"127.0.0.1:{port}")
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise RuntimeError(
                    f"{BINARY} exited with {process.returncode}: {(workdir / 'registry.log').read_text()}"
                )
            try:
                if httpx.get(f"{registry.url}/v2/", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{BINARY} did not answer on {registry.url}/v2/ within {START_TIMEOUT:g}s")
            time.sleep(0.05)  # polling a real process that is starting up, not a fake clock
        yield registry
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    """A real registry for the session; skipped when the binary is missing, unless CI is set."""
    if shutil.which(BINARY) is None:
        if os.environ.get("CI"):
            pytest.fail(f"{MISSING}; CI must run the tests against the real registry")
        pytest.skip(MISSING)
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running
