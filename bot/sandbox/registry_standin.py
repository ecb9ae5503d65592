"""A registry stand-in: the slice of the OCI distribution API Ferry reads (ping, tag list, manifest HEAD).

The sandbox pushes "releases" with ``push``; the digest is the sha256 of a real OCI image manifest,
so digests look and behave like a registry's. Tests of the registry client itself run against the
real ``docker-registry``; this stand-in keeps ``ferry sandbox`` free of installs.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

from aiohttp import web

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


class RegistryStandIn:
    def __init__(self) -> None:
        self.manifests: dict[str, dict[str, bytes]] = {}  # repository -> tag -> manifest bytes
        self.requests: Counter[str] = Counter()
        self._runner: web.AppRunner | None = None
        self.host = ""

    def push(self, repository: str, tag: str) -> str:
        """Publish ``repository:tag``; returns its digest."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "ferry-sandbox": f"{repository}:{tag}"})
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": "sha256:" + hashlib.sha256(config.encode()).hexdigest(),
                    "size": len(config),
                },
                "layers": [],
            },
            sort_keys=True,
        ).encode()
        self.manifests.setdefault(repository, {})[tag] = manifest
        return "sha256:" + hashlib.sha256(manifest).hexdigest()

    def digest(self, repository: str, tag: str) -> str:
        return "sha256:" + hashlib.sha256(self.manifests[repository][tag]).hexdigest()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        app = web.Application()
        app.router.add_get("/v2/", self._ping)
        app.router.add_get(r"/v2/{name:.+}/tags/list", self._tags)
        app.router.add_route("*", r"/v2/{name:.+}/manifests/{reference}", self._manifest)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        bound = self._runner.addresses[0][1]
        self.host = f"{host}:{bound}"
        return f"http://{self.host}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _ping(self, request: web.Request) -> web.Response:
        self.requests["GET /v2/"] += 1
        return web.json_response({})

    async def _tags(self, request: web.Request) -> web.Response:
        self.requests["GET tags"] += 1
        name = request.match_info["name"]
        if name not in self.manifests:
            return _unknown(name)
        return web.json_response({"name": name, "tags": sorted(self.manifests[name])})

    async def _manifest(self, request: web.Request) -> web.Response:
        self.requests[f"{request.method} manifest"] += 1
        name, reference = request.match_info["name"], request.match_info["reference"]
        body = self.manifests.get(name, {}).get(reference)
        if body is None:
            return web.json_response(
                {
                    "errors": [
                        {"code": "MANIFEST_UNKNOWN", "message": "manifest unknown", "detail": reference}
                    ]
                },
                status=404,
            )
        headers = {
            "Docker-Content-Digest": "sha256:" + hashlib.sha256(body).hexdigest(),
            "Content-Type": OCI_MANIFEST,
            "Content-Length": str(len(body)),
        }
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.Response(body=body, headers=headers)


def _unknown(name: str) -> web.Response:
    return web.json_response(
        {
            "errors": [
                {
                    "code": "NAME_UNKNOWN",
                    "message": "repository name not known to registry",
                    "detail": {"name": name},
                }
            ]
        },
        status=404,
    )
