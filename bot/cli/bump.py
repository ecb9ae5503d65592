"""``ferry bump`` (set image tags in a YAML file, byte-exact) and ``ferry images`` (list what Ferry sees).

The editing itself is ``bot.core.manifest``; this module reads the file, writes it back atomically
(a temporary file in the same directory, then ``os.replace``, keeping the file's mode) and reports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bot.cli import command_help
from bot.core.manifest import (
    BumpResult,
    HelmPaths,
    ImageOccurrence,
    ImageUpdate,
    bump_text,
    find_images,
    resolve_kustomization,
)
from bot.errors import InvalidReferenceError, ManifestError

BUMP_HELP = command_help("bump")
BUMP_DESCRIPTION = (
    "Set the tag (and, where one is pinned, the digest) of images in FILE. Only the changed values "
    "differ afterwards: comments, quoting, anchors, flow style and line endings are kept. The file is "
    "written atomically; on any error it is left untouched. FILE may be a kustomize directory, as in the "
    "pipeline config's `kustomize:` entries: its kustomization.yaml, kustomization.yml or Kustomization."
)
FILE_HELP = "a YAML file, or a kustomize directory (its kustomization file)"
IMAGES_HELP = command_help("images")
UPDATE_METAVAR = "IMAGE=TAG[@sha256:DIGEST]"
STDOUT_HELP = "print the result instead of writing FILE"
JSON_HELP = "print the references as JSON"
HELM_REPOSITORY_HELP = "dotted path of the Helm values repository (e.g. image.repository)"
HELM_TAG_HELP = "dotted path of the Helm values tag (e.g. image.tag)"
HELM_DIGEST_HELP = "dotted path of the Helm values digest (e.g. image.digest)"
PATH_HELP = "dotted path of a whole image reference (e.g. spec.template.spec.containers[0].image)"

BAD_UPDATE = '"{text}" is not IMAGE=TAG[@sha256:DIGEST] (e.g. ghcr.io/acme/web=1.4.2)'
BOTH_FORMS = "give either the --helm-* paths or --path, not both"
CANNOT_READ = "{file}: cannot read it: {reason}"
NOT_UTF8 = "{file}: is not UTF-8 text ({reason})"
CANNOT_WRITE = "{file}: cannot write it: {reason}; the file is unchanged"
CHANGED = "{file}:{line}: {image} {old} -> {new}"
UNCHANGED = "{file}: {image} is already at {tag}; nothing to change"
NO_IMAGES = "{file}: no image references found"
TOP_LEVEL = "top level"
TMP_SUFFIX = ".ferry"


def register(subparsers: Any) -> None:
    bump = subparsers.add_parser("bump", help=BUMP_HELP, description=BUMP_DESCRIPTION)
    bump.add_argument("file", metavar="FILE", help=FILE_HELP)
    bump.add_argument("updates", nargs="+", metavar=UPDATE_METAVAR)
    bump.add_argument("--stdout", action="store_true", help=STDOUT_HELP)
    _add_path_flags(bump)
    bump.set_defaults(handler=run_bump)

    images = subparsers.add_parser("images", help=IMAGES_HELP, description=IMAGES_HELP)
    images.add_argument("file", metavar="FILE", help=FILE_HELP)
    images.add_argument("--json", action="store_true", help=JSON_HELP)
    _add_path_flags(images)
    images.set_defaults(handler=run_images)


def _add_path_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--helm-repository", metavar="PATH", help=HELM_REPOSITORY_HELP)
    parser.add_argument("--helm-tag", metavar="PATH", help=HELM_TAG_HELP)
    parser.add_argument("--helm-digest", metavar="PATH", help=HELM_DIGEST_HELP)
    parser.add_argument("--path", metavar="PATH", help=PATH_HELP)


def parse_update(text: str) -> ImageUpdate:
    """``IMAGE=TAG[@DIGEST]``, split on the last ``=`` so ``localhost:5000/web=1.2`` works."""
    image, equals, value = text.rpartition("=")
    tag, at, digest = value.partition("@")
    if not equals or not image.strip() or not tag or (at and not digest):
        raise InvalidReferenceError(BAD_UPDATE.format(text=text))
    return ImageUpdate(image.strip(), tag, digest or None)


def _paths(args: argparse.Namespace) -> tuple[HelmPaths | None, str | None]:
    helm = None
    if args.helm_repository or args.helm_tag or args.helm_digest:
        helm = HelmPaths(args.helm_repository, args.helm_tag, args.helm_digest)
    if helm is not None and args.path:
        raise ManifestError(BOTH_FORMS)
    return helm, args.path


def target_file(path: str) -> str:
    """``path`` itself, or for a directory its kustomization file, resolved as the pipeline config's
    ``kustomize:`` update entries are (``bot.core.manifest.resolve_kustomization``)."""
    if not os.path.isdir(path):
        return path
    try:
        return resolve_kustomization(path, os.path.isfile)
    except ManifestError as exc:
        raise ManifestError(f"{exc}; pass a YAML file, or a directory holding a kustomization") from None


def read_text(file: str) -> str:
    try:
        data = Path(file).read_bytes()
    except OSError as exc:
        raise ManifestError(CANNOT_READ.format(file=file, reason=exc.strerror or exc)) from None
    try:
        # Decoding bytes (not text mode) keeps CRLF and a byte-order mark exactly as they are.
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ManifestError(NOT_UTF8.format(file=file, reason=exc.reason)) from None


def write_atomically(file: str, text: str) -> None:
    """Replace ``file`` in one step: readers see the old or the new content, never a mix."""
    target = Path(os.path.realpath(file))
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
        prefix = f".{target.name}."
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=TMP_SUFFIX)
    except OSError as exc:
        raise ManifestError(CANNOT_WRITE.format(file=file, reason=exc.strerror or exc)) from None
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise ManifestError(CANNOT_WRITE.format(file=file, reason=exc.strerror or exc)) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def run_bump(args: argparse.Namespace) -> int:
    updates = [parse_update(text) for text in args.updates]
    helm_paths, reference_path = _paths(args)
    args.file = target_file(args.file)
    text = read_text(args.file)
    result: BumpResult = bump_text(
        text, updates, source=args.file, helm_paths=helm_paths, reference_path=reference_path
    )
    if args.stdout:
        sys.stdout.write(result.text)
        sys.stdout.flush()
    elif result.changes:
        write_atomically(args.file, result.text)
    for change in result.changes:
        print(CHANGED.format(file=args.file, **asdict(change)), file=sys.stderr)
    if not result.changes:
        for update in updates:
            tag = update.tag + (f"@{update.digest}" if update.digest else "")
            print(UNCHANGED.format(file=args.file, image=update.image, tag=tag), file=sys.stderr)
    return 0


def format_occurrence(occurrence: ImageOccurrence, image_width: int = 0, line_width: int = 0) -> str:
    value = (occurrence.tag or "") + (f"@{occurrence.digest}" if occurrence.digest else "") or "-"
    where = f"{occurrence.kind} {occurrence.path or TOP_LEVEL}"
    if occurrence.document:
        where += f", document {occurrence.document + 1}"
    return f"{occurrence.line:>{line_width}}  {occurrence.image:<{image_width}}  {value}  ({where})"


def run_images(args: argparse.Namespace) -> int:
    helm_paths, reference_path = _paths(args)
    args.file = target_file(args.file)
    occurrences = find_images(
        read_text(args.file), source=args.file, helm_paths=helm_paths, reference_path=reference_path
    )
    if args.json:
        print(json.dumps([asdict(o) for o in occurrences], indent=2))
        return 0
    if not occurrences:
        print(NO_IMAGES.format(file=args.file), file=sys.stderr)
        return 0
    image_width = max(len(o.image) for o in occurrences)
    line_width = max(len(str(o.line)) for o in occurrences)
    for occurrence in occurrences:
        print(format_occurrence(occurrence, image_width, line_width).rstrip())
    return 0
