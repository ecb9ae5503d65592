"""Manifest generation as Argo CD's repo-server does it, over the files of one commit (or one chart).

Argo CD renders the *whole* repository at the revision it compares to, so a source may pull files
from outside its own path: kustomize ``resources: [../../base]``, Helm value files ``$values/...``
from another source. ``render_source`` picks the tool the way repo-server's ``GetAppSourceType``
does (reposerver/repository/repository.go: ``Chart.yaml`` means Helm, a ``kustomization.yaml`` means
Kustomize, anything else is a plain directory, read non-recursively) and returns the manifests.

Kustomize: ``resources`` (files and directories, recursively, including parents such as
``../../base``; ``bases`` too), ``namespace``, ``namePrefix``/``nameSuffix``, ``labels``/
``commonLabels``/``commonAnnotations``, ``images`` (``newName``/``newTag``/``digest``, matched on the
image name as kustomize's image transformer does) and ``replicas``. Valid kustomize fields this
stand-in does not render (patches, generators, components...) fail with a message saying so rather
than render something else; unknown fields fail as kustomize does (``json: unknown field``).

Helm: ``Chart.yaml``, ``values.yaml`` deep-merged with the value files in order, templates executed
by ``argocd_gotemplate`` with ``.Values``, ``.Release``, ``.Chart`` and ``.Capabilities``.

Errors are ``RenderError`` worded as repo-server words them (``util/exec``: "`kustomize build <dir>`
failed exit status 1: Error: ..."), with the working copy under ``/tmp/_argocd-repo/<uuid>``.
Pure: the files come in as a mapping of repository path to bytes.
"""

from __future__ import annotations

import copy
import posixpath
from collections.abc import Mapping, Sequence
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import FerryError
from bot.sandbox.argocd_gotemplate import TemplateError, parse_defines, render

Manifest = dict[str, Any]
Files = Mapping[str, bytes]

KUSTOMIZATION_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job", "Pod")
SCALABLE_KINDS = ("Deployment", "StatefulSet", "ReplicaSet")
CLUSTER_SCOPED = frozenset(
    {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "PersistentVolume",
     "StorageClass", "PriorityClass", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
)  # fmt: skip
_KUSTOMIZE_RENDERED = frozenset(
    {"apiVersion", "kind", "metadata", "resources", "bases", "namespace", "namePrefix", "nameSuffix",
     "labels", "commonLabels", "commonAnnotations", "images", "replicas"}
)  # fmt: skip
_KUSTOMIZE_NOT_RENDERED = frozenset(
    {"patches", "patchesStrategicMerge", "patchesJson6902", "configMapGenerator", "secretGenerator",
     "generatorOptions", "helmCharts", "helmGlobals", "components", "generators", "transformers",
     "validators", "crds", "openapi", "vars", "replacements", "buildMetadata", "sortOptions"}
)  # fmt: skip

MSG_PATH_MISSING = "{root}/{path}: app path does not exist"
MSG_KUSTOMIZE = "`kustomize build {root}/{path}` failed exit status 1: Error: {detail}"
MSG_ACCUMULATE = (
    "accumulating resources: accumulation err='accumulating resources from '{entry}': "
    "evalsymlink failure on '{target}' : lstat {target}: no such file or directory': must build at "
    "directory: not a valid directory: evalsymlink failure on '{target}' : lstat {target}: no such "
    "file or directory"
)
MSG_NO_KUSTOMIZATION = (
    "unable to find one of 'kustomization.yaml', 'kustomization.yml' or 'Kustomization' in directory "
    "'{target}'"
)
MSG_HELM = (
    "`helm template . --name-template {release} --namespace {namespace}{values}` failed exit status 1: "
)
MSG_UNMARSHAL = 'Failed to unmarshal "{name}": {detail}'


class RenderError(FerryError):
    """Manifests that could not be generated; ``str()`` is repo-server's message."""


def yaml_docs(text: str | bytes, where: str) -> list[Manifest]:
    """The mapping documents of one YAML stream (empty documents dropped), or ``RenderError``."""
    try:
        docs = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as exc:
        raise RenderError(f"{where}: {_first_line(exc)}") from None
    found = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict):
            raise RenderError(f"{where}: a document is not a mapping")
        found.append(doc)
    return found


def source_type(files: Files, path: str) -> str:
    """``Helm``, ``Kustomize`` or ``Directory``: what repo-server's ``GetAppSourceType`` finds at ``path``."""
    path = posixpath.normpath(path.strip("/") or ".")
    prefix = "" if path == "." else path + "/"
    if prefix + "Chart.yaml" in files:
        return "Helm"
    if any(prefix + name in files for name in KUSTOMIZATION_NAMES):
        return "Kustomize"
    return "Directory"


def render_source(
    files: Files,
    path: str,
    *,
    root: str,
    release_name: str,
    namespace: str,
    value_files: Sequence[str] = (),
    refs: Mapping[str, Files] | None = None,
) -> list[Manifest]:
    """The manifests of the source at ``path`` in ``files`` (one commit); ``root`` names the checkout."""
    path = posixpath.normpath(path.strip("/") or ".")
    prefix = "" if path == "." else path + "/"
    if path != "." and not any(name.startswith(prefix) for name in files):
        raise RenderError(MSG_PATH_MISSING.format(root=root, path=path))
    if prefix + "Chart.yaml" in files:
        chart = {name.removeprefix(prefix): data for name, data in files.items() if name.startswith(prefix)}
        values = [_value_file(v, files, refs or {}, path, root) for v in value_files]
        return render_chart(chart, release_name=release_name, namespace=namespace, values=values)
    if any(prefix + name in files for name in KUSTOMIZATION_NAMES):
        try:
            return _Kustomize(files, root).build(path)
        except RenderError as exc:
            raise RenderError(MSG_KUSTOMIZE.format(root=root, path=path, detail=exc)) from None
    manifests: list[Manifest] = []
    for name in sorted(files):
        if name.startswith(prefix) and "/" not in name[len(prefix) :] and name.endswith(MANIFEST_SUFFIXES):
            detail = f"{root}/{name}"
            try:
                manifests += yaml_docs(files[name], detail)
            except RenderError as exc:
                raise RenderError(MSG_UNMARSHAL.format(name=name, detail=exc)) from None
    return manifests


def _value_file(
    name: str, files: Files, refs: Mapping[str, Files], path: str, root: str
) -> tuple[str, bytes | None]:
    """A ``valueFiles`` entry: relative to the chart, or ``$ref/path`` in another source's commit."""
    if name.startswith("$"):
        ref, _, rest = name[1:].partition("/")
        source = refs.get(ref)
        if source is None:
            raise RenderError(f"source referenced '${ref}' does not exist")
        return name, source.get(posixpath.normpath(rest))
    return name, files.get(posixpath.normpath(posixpath.join(path, name)))


def render_chart(
    chart: Files, *, release_name: str, namespace: str, values: Sequence[tuple[str, bytes | None]] = ()
) -> list[Manifest]:
    """``helm template`` of one chart (paths relative to the chart's root) with ``values`` files in order."""
    shown = "".join(f" --values {name}" for name, _ in values)
    prefix = MSG_HELM.format(release=release_name, namespace=namespace, values=shown)
    try:
        meta = _chart_meta(chart)
        merged: dict[str, Any] = _one_doc(chart.get("values.yaml", b""), "values.yaml")
        for name, text in values:
            merged = _merge(merged, _one_doc(_value_text(name, text), name))
        chart_name = str(meta.get("name", ""))
        data: dict[str, Any] = {
            "Values": merged,
            "Release": {"Name": release_name, "Namespace": namespace, "Service": "Helm",
                        "IsInstall": True, "IsUpgrade": False, "Revision": 1},
            "Chart": {key[:1].upper() + key[1:]: value for key, value in meta.items()},
            "Capabilities": {"KubeVersion": {"Version": "v1.32.0", "Major": "1", "Minor": "32"}},
        }  # fmt: skip
        templates = sorted(n for n in chart if n.startswith("templates/"))
        defines: dict[str, Any] = {}
        for name in templates:
            defines.update(parse_defines(f"{chart_name}/{name}", chart[name].decode()))
        manifests: list[Manifest] = []
        for name in templates:
            base = posixpath.basename(name)
            if base.startswith("_") or not base.endswith((".yaml", ".yml")):
                continue
            where = f"{chart_name}/{name}"
            data["Template"] = {"Name": where, "BasePath": f"{chart_name}/templates"}
            rendered = render(where, chart[name].decode(), data, defines)
            manifests += yaml_docs(rendered, f"YAML parse error on {where}")
    except TemplateError as exc:
        raise RenderError(prefix + f"Error: {exc}") from None
    except RenderError as exc:
        said = str(exc)
        raise RenderError(prefix + (said if said.startswith("Error: ") else f"Error: {said}")) from None
    return manifests


def _chart_meta(chart: Files) -> dict[str, Any]:
    meta = _one_doc(chart.get("Chart.yaml", b""), "Chart.yaml")
    if meta.get("dependencies"):
        raise RenderError("Error: the Argo CD stand-in does not render chart dependencies")
    return meta


def _value_text(name: str, text: bytes | None) -> bytes:
    if text is None:
        raise RenderError(f"Error: open {name}: no such file or directory")
    return text


def _one_doc(data: bytes, name: str) -> dict[str, Any]:
    docs = yaml_docs(data, name) if data.strip() else []
    return docs[0] if docs else {}


def _merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of value files: maps merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


class _Kustomize:
    def __init__(self, files: Files, root: str) -> None:
        self.files = files
        self.root = root
        self.origins: dict[int, str] = {}
        self.directories = {posixpath.dirname(name) for name in files}
        for directory in list(self.directories):
            parent = directory
            while parent:
                parent = posixpath.dirname(parent)
                self.directories.add(parent)

    def build(self, path: str, seen: tuple[str, ...] = ()) -> list[Manifest]:
        here = "" if path == "." else path
        target = f"{self.root}/{here}".rstrip("/")
        if here in seen:
            raise RenderError(f"cycle detected: '{target}' is included twice")
        found = next((posixpath.join(here, n) for n in KUSTOMIZATION_NAMES
                      if posixpath.join(here, n) in self.files), None)  # fmt: skip
        if found is None:
            raise RenderError(MSG_NO_KUSTOMIZATION.format(target=target))
        try:
            spec = _one_doc(self.files[found], found)
        except RenderError as exc:
            raise RenderError(f"invalid Kustomization: {str(exc).partition(': ')[2]}") from None
        for key in spec:
            if key in _KUSTOMIZE_NOT_RENDERED:
                raise RenderError(f"{found}: the Argo CD stand-in does not render kustomize's `{key}`")
            if key not in _KUSTOMIZE_RENDERED:
                raise RenderError(f'invalid Kustomization: json: unknown field "{key}"')
        manifests: list[Manifest] = []
        for entry in [*(spec.get("resources") or ()), *(spec.get("bases") or ())]:
            manifests += self._resource(str(entry), here, (*seen, here))
        return _transform(manifests, spec, self.origins)

    def _resource(self, entry: str, here: str, seen: tuple[str, ...]) -> list[Manifest]:
        if "://" in entry or entry.startswith(("github.com/", "git@")):
            raise RenderError(f"the Argo CD stand-in does not fetch remote resources ('{entry}')")
        joined = posixpath.normpath(posixpath.join(here, entry))
        if joined.startswith(".."):
            raise RenderError(f"security; file '{self.root}/{joined}' is not in or below '{self.root}'")
        if joined in self.files:
            docs = [copy.deepcopy(doc) for doc in yaml_docs(self.files[joined], joined)]
            for doc in docs:  # kustomize keeps each object's original name for later transformers
                self.origins[id(doc)] = str((doc.get("metadata") or {}).get("name", ""))
            return docs
        if joined in self.directories or joined == ".":
            return self.build(joined, seen)
        target = f"{self.root}/{joined}"
        raise RenderError(MSG_ACCUMULATE.format(entry=entry, target=target))


def _transform(
    manifests: list[Manifest], spec: Mapping[str, Any], origins: Mapping[int, str]
) -> list[Manifest]:
    """Apply one kustomization's transformers; ``replicas`` match an object's current or original name."""
    namespace = spec.get("namespace")
    for doc in manifests:
        meta = doc.setdefault("metadata", {})
        if namespace and doc.get("kind") not in CLUSTER_SCOPED:
            meta["namespace"] = namespace
        if spec.get("namePrefix") or spec.get("nameSuffix"):
            prefix, suffix = spec.get("namePrefix") or "", spec.get("nameSuffix") or ""
            meta["name"] = f"{prefix}{meta.get('name', '')}{suffix}"
        for group in spec.get("labels") or ():
            pairs = group.get("pairs") or {}
            _label(doc, pairs, group.get("includeSelectors"), group.get("includeTemplates"))
        if spec.get("commonLabels"):
            _label(doc, spec["commonLabels"], True, True)
        if spec.get("commonAnnotations"):
            meta.setdefault("annotations", {}).update(spec["commonAnnotations"])
            template = (doc.get("spec") or {}).get("template")
            if doc.get("kind") in WORKLOAD_KINDS and isinstance(template, dict):
                template.setdefault("metadata", {}).setdefault("annotations", {}).update(
                    spec["commonAnnotations"]
                )
        for override in spec.get("images") or ():
            for container in _containers(doc):
                container["image"] = _override_image(str(container.get("image", "")), override)
        for replica in spec.get("replicas") or ():
            named = replica.get("name") in (meta.get("name"), origins.get(id(doc)))
            if doc.get("kind") in SCALABLE_KINDS and named:
                doc.setdefault("spec", {})["replicas"] = replica.get("count")
    return manifests


def _label(doc: Manifest, pairs: Mapping[str, Any], selectors: Any, templates: Any) -> None:
    doc["metadata"].setdefault("labels", {}).update(pairs)
    spec = doc.get("spec")
    if not isinstance(spec, dict) or doc.get("kind") not in WORKLOAD_KINDS:
        return
    if selectors:
        spec.setdefault("selector", {}).setdefault("matchLabels", {}).update(pairs)
    if selectors or templates:
        spec.setdefault("template", {}).setdefault("metadata", {}).setdefault("labels", {}).update(pairs)


def _containers(doc: Manifest) -> list[dict[str, Any]]:
    """The containers and init containers of a workload's pod spec (CronJobs included)."""
    spec = doc.get("spec") or {}
    if doc.get("kind") == "CronJob":
        spec = ((spec.get("jobTemplate") or {}).get("spec")) or {}
    pod = spec if doc.get("kind") == "Pod" else ((spec.get("template") or {}).get("spec") or {})
    found = [*(pod.get("containers") or ()), *(pod.get("initContainers") or ())]
    return [c for c in found if isinstance(c, dict)]


def split_image(image: str) -> tuple[str, str | None, str | None]:
    """``name``, ``tag``, ``digest`` of an image reference, as kustomize's image.Split does."""
    name, _, digest = image.partition("@")
    repo, sep, tag = name.rpartition(":")
    if sep and "/" not in tag:
        return repo, tag, digest or None
    return name, None, digest or None


def _override_image(image: str, override: Mapping[str, Any]) -> str:
    name, tag, digest = split_image(image)
    if name != override.get("name"):
        return image
    name = str(override.get("newName") or name)
    if override.get("digest"):
        return f"{name}@{override['digest']}"
    if override.get("newTag") is not None:
        return f"{name}:{override['newTag']}"
    return name + (f":{tag}" if tag else "") + (f"@{digest}" if digest else "")


def images_of(manifest: Manifest) -> list[str]:
    """The container images a workload manifest runs, in order."""
    return [str(c["image"]) for c in _containers(manifest) if c.get("image")]


def _first_line(exc: Exception) -> str:
    return " ".join(str(exc).split())
