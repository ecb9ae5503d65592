"""Manifest generation the way Argo CD's repo-server does it: the whole tree at a commit (kustomize
bases outside the app's path, Helm charts with value files), and what a source that does not render
does to the app (a ComparisonError condition, sync status Unknown, no automated sync).

The earlier stand-in read only YAML files under the app's own path and never failed to render.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from argocd_standin_kit import FakeClock, GitRepo, running, shop_repo

from bot.sandbox.argocd_apps import git_app
from bot.sandbox.argocd_gotemplate import TemplateError, render
from bot.sandbox.argocd_render import RenderError, images_of, render_chart, render_source, yaml_docs
from bot.sandbox.example import EXAMPLE_APPS, example_chart_repository, example_dir

ROOT = "/tmp/_argocd-repo/x"


def example_files() -> dict[str, bytes]:
    root = example_dir()
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize built in)")
@pytest.mark.parametrize("overlay", ["overlays/dev", "overlays/staging"])
def test_example_overlays_render_exactly_as_kustomize_builds_them(overlay: str) -> None:
    built = subprocess.run(
        ["kubectl", "kustomize", str(example_dir() / overlay)], capture_output=True, check=True
    ).stdout
    ours = render_source(example_files(), overlay, root=ROOT, release_name="x", namespace="x")

    def key(doc: dict[str, object]) -> str:
        return f"{doc['kind']}/{doc['metadata']['name']}"  # type: ignore[index]

    assert sorted(ours, key=key) == sorted(yaml_docs(built, "kubectl"), key=key)


TRANSFORMS = {
    "base/kustomization.yaml": "resources: [d.yaml]\ncommonLabels: {team: shop}\n",
    "base/d.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
        - {name: web, image: "ghcr.io/acme/web:1.0@sha256:aaaa"}
        - {name: side, image: busybox}
      initContainers:
        - {name: init, image: ghcr.io/acme/web}
""",
    "ov/kustomization.yaml": """\
resources: [../base]
namePrefix: dev-
namespace: dev
commonAnnotations: {owner: me}
labels:
  - {pairs: {env: dev}, includeTemplates: true}
images:
  - {name: ghcr.io/acme/web, newName: registry.local/web, newTag: "2.0"}
  - {name: busybox, digest: "sha256:bbbb"}
replicas:
  - {name: web, count: 3}
""",
}


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="needs kubectl (kustomize built in)")
def test_every_kustomize_transformer_rendered_agrees_with_kustomize(tmp_path: Path) -> None:
    for name, text in TRANSFORMS.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    built = subprocess.run(["kubectl", "kustomize", str(tmp_path / "ov")], capture_output=True, check=True)
    files = {name: text.encode() for name, text in TRANSFORMS.items()}
    ours = render_source(files, "ov", root=ROOT, release_name="x", namespace="x")
    assert ours == yaml_docs(built.stdout, "kubectl")
    assert ours[0]["spec"]["replicas"] == 3  # matched by the name the base gave it, before the prefix


def test_example_chart_renders_digests_when_set_and_tags_otherwise() -> None:
    files = example_files()
    prod = render_source(
        files, "charts/web", root=ROOT, release_name="shop-prod-eu", namespace="shop-prod-eu",
        value_files=["values-prod.yaml"],
    )  # fmt: skip
    defaults = render_source(files, "charts/web", root=ROOT, release_name="r", namespace="n")
    assert [d["metadata"]["name"] for d in prod] == ["shop-prod-eu-web", "shop-prod-eu-worker"]
    assert images_of(prod[0]) == [
        "ghcr.io/acme/web@sha256:5b0bcabd1ed22e9fb1310cf6c2dec7cdef19f0ad69efa1f392e94a4333501270"
    ]
    assert prod[0]["spec"]["replicas"] == 4
    assert prod[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] == "500m"
    assert images_of(defaults[1]) == ["ghcr.io/acme/worker:1.4.0"]  # tag "" -> the chart's appVersion


def test_go_templates_trim_branch_loop_and_pipe_as_go_does() -> None:
    data = {"Values": {"b": 1, "items": {"z": 1, "a": 2}, "list": ["x", "y"], "obj": {"k": "v"}}}
    text = (
        "{{- if .Values.a }}A{{ else if .Values.b }}B{{ else }}C{{ end -}}\n"
        "{{ range $k, $v := .Values.items }}{{ $k }}={{ $v }};{{ end }}"
        "{{ range .Values.list }}[{{ . }}]{{ else }}none{{ end }}"
        "{{ with .Values.missing }}has{{ else }}without{{ end }}"
        '{{ $x := "q" }}{{ $x | upper | quote }}{{ printf "%s-%d" "a" 3 }}'
        "{{ .Values.obj | toYaml | nindent 2 }}"
        '{{ define "t" }}<{{ . }}>{{ end }}{{ include "t" .Values.b }}'
    )
    assert render("t.yaml", text, data) == 'Ba=2;z=1;[x][y]without"Q"a-3\n  k: v<1>'


def test_go_template_errors_read_as_helm_reports_them() -> None:
    with pytest.raises(TemplateError, match=r'parse error at \(t.yaml:2\): function "lookup" not defined'):
        render("t.yaml", "ok\n{{ lookup .x }}", {})
    with pytest.raises(TemplateError, match=r"t.yaml:1: nil pointer evaluating interface \{\}.tag"):
        render("t.yaml", "{{ .Values.image.tag }}", {"Values": {}})
    with pytest.raises(
        RenderError, match=r"^`helm template \. --name-template r --namespace n --values v.yaml`"
    ):
        render_chart(
            {"Chart.yaml": b"name: c\n", "templates/a.yaml": b"{{ .Values.x.y }}"},
            release_name="r", namespace="n", values=[("v.yaml", b"a: 1\n")],
        )  # fmt: skip


def test_kustomize_failures_read_as_kustomize_reports_them() -> None:
    files = {**example_files(), "overlays/dev/kustomization.yaml": b"resources: [../../base, nope.yaml]\n"}
    with pytest.raises(RenderError) as missing:
        render_source(files, "overlays/dev", root=ROOT, release_name="x", namespace="x")
    assert str(missing.value).startswith(
        f"`kustomize build {ROOT}/overlays/dev` failed exit status 1: Error: accumulating resources: "
        f"accumulation err='accumulating resources from 'nope.yaml': evalsymlink failure on "
        f"'{ROOT}/overlays/dev/nope.yaml' : lstat {ROOT}/overlays/dev/nope.yaml: no such file or directory'"
    )
    files["overlays/dev/kustomization.yaml"] = b"resourcez: [../../base]\n"
    with pytest.raises(RenderError, match='invalid Kustomization: json: unknown field "resourcez"'):
        render_source(files, "overlays/dev", root=ROOT, release_name="x", namespace="x")
    files["overlays/dev/kustomization.yaml"] = b"resources: [../../base]\npatches: []\n"
    with pytest.raises(RenderError, match="does not render kustomize's `patches`"):
        render_source(files, "overlays/dev", root=ROOT, release_name="x", namespace="x")
    with pytest.raises(RenderError, match=f"^{ROOT}/overlays/prod: app path does not exist$"):
        render_source(files, "overlays/prod", root=ROOT, release_name="x", namespace="x")


def test_a_plain_directory_is_read_without_its_subdirectories() -> None:
    files = {"apps/a.yaml": b"kind: ConfigMap\nmetadata: {name: a}\n", "apps/sub/b.yaml": b"kind: X\n"}
    docs = render_source(files, "apps", root=ROOT, release_name="x", namespace="x")
    assert [d["metadata"]["name"] for d in docs] == ["a"]


async def test_a_kustomization_that_does_not_build_is_a_comparison_error(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path / "gitops")
    apps = {"web-dev": git_app("overlays/dev", "main", automated=True)}
    async with running(repo, FakeClock(), apps) as sandbox:
        repo.commit({"overlays/dev/kustomization.yaml": "resources: [../../bases]\n"}, "typo")
        body = await sandbox.get("web-dev", refresh="normal")
        (condition,) = body["status"]["conditions"]
        assert condition["type"] == "ComparisonError"
        assert condition["message"].startswith(
            "Failed to load target state: failed to generate manifest for source 1 of 1: rpc error: "
            "code = Unknown desc = `kustomize build /tmp/_argocd-repo/"
        )
        assert "accumulating resources from '../../bases'" in condition["message"]
        assert body["status"]["sync"] | {"comparedTo": None} == {
            "status": "Unknown", "revision": "main", "comparedTo": None,  # not resolved: as Argo CD shows it
        }  # fmt: skip
        assert {r["status"] for r in body["status"]["resources"]} == {"Unknown"}
        assert "operation" not in body and body["status"]["health"]["status"] == "Healthy"
        fixed = repo.release("1.1.0")
        recovered = await sandbox.get("web-dev", refresh="normal")
        assert "conditions" not in recovered["status"]
        assert recovered["operation"]["sync"]["revision"] == fixed


async def test_a_repository_the_project_does_not_permit_is_an_invalid_spec(tmp_path: Path) -> None:
    repo = shop_repo(tmp_path / "gitops")
    async with running(repo, FakeClock(), {"web-dev": git_app("overlays/dev", "main")}) as sandbox:
        sandbox.standin.restrict_source_repos(["https://github.com/acme/*"])
        body = await sandbox.get("web-dev", refresh="normal")
    (condition,) = body["status"]["conditions"]
    url = repo.path.as_uri()
    assert condition == {
        "type": "InvalidSpecError",
        "message": f"application repo {url} is not permitted in project 'default'",
        "lastTransitionTime": "2025-03-01T10:00:00Z",
    }
    assert (body["status"]["sync"]["status"], body["status"]["health"]["status"]) == ("Unknown", "Unknown")


async def test_the_example_apps_track_main_and_sync_by_themselves_but_prod_eu(tmp_path: Path) -> None:
    repo = GitRepo(tmp_path / "gitops")
    files = example_files()
    repo.commit({name: data.decode() for name, data in files.items()}, "example")
    charts = [example_chart_repository(files)]
    async with running(repo, FakeClock(), EXAMPLE_APPS, chart_repositories=charts) as sandbox:
        start = {name: await sandbox.get(name) for name in EXAMPLE_APPS}
        values = files["charts/web/values-prod.yaml"].decode().replace("replicaCount: 4", "replicaCount: 6")
        change = repo.commit({"charts/web/values-prod.yaml": values}, "prod: more web replicas")
        after = {name: await sandbox.get(name, refresh="normal") for name in EXAMPLE_APPS}
    for name, body in start.items():
        assert (body["status"]["sync"]["status"], body["status"]["health"]["status"]) == ("Synced", "Healthy")
        assert "automated" in body["spec"]["syncPolicy"] or name == "shop-prod-eu"
    assert after["shop-prod-us"]["status"]["sync"]["revisions"] == ["0.3.0", change]
    assert "operation" in after["shop-prod-us"]  # automated: syncs the values change itself
    assert after["shop-prod-eu"]["status"]["sync"]["status"] == "OutOfSync"  # manual: waits for a sync
    assert "operation" not in after["shop-prod-eu"]
    assert after["shop-dev"]["status"]["sync"] == after["shop-dev"]["status"]["sync"] | {"status": "Synced"}
