"""Building blocks of the pipeline config models: user-visible messages, checked field types, errors.

Every message a config error can show is a named constant here, next to the string types whose
checks raise them (``Name``, ``Regex``, ``RepoPath``, ``DottedPath``, ``Promoter``) and
``config_error``, which builds the ``PydanticCustomError`` all of them raise (with the optional
``at`` / ``offset`` context that ``bot.core.config_load`` uses to locate it). The models that use
them are ``bot.core.config``, which re-exports every name here.
"""

from __future__ import annotations

import posixpath
import re
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
LOGIN_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")
TEAM_RE = re.compile(r"^@[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
DOTTED_RE = re.compile(r"^[^.\s]+(?:\.[^.\s]+)*$")

BAD_NAME = (
    'name "{name}" is not allowed: use letters, digits, "-" and "_" '
    "(at most 63, starting with a letter or digit)"
)
BAD_VERSION = "unsupported version {got}; this Ferry reads version {known}"
NO_RULE = (
    "image {image} has no selection rule: "
    "add one of semver: <range>, lexical: true, numeric: true or digest: <tag>"
)
MANY_RULES = "give one selection rule per image, found {found}"
STRICT_WITHOUT_SEMVER = "semver_strict applies to semver rules; this image uses {rule}: remove semver_strict"
DUPLICATE_IMAGE = 'image "{image}" is listed twice in this warehouse'
BAD_REGEX = "invalid regular expression: {error}"
ABSOLUTE_PATH = 'path "{path}" is absolute; give it relative to the repository root'
ESCAPING_PATH = 'path "{path}" leaves the repository ("..")'
EMPTY_PATH = "path is empty; give a file or directory relative to the repository root"
BAD_DOTTED = 'expected a dotted path such as image.tag, got "{path}"'
BAD_PROMOTER = '"{who}" is neither a GitHub login nor a team slug like @acme/release-managers'
FROM_BOTH = "give one source: {warehouse: <name>} or {stages: [<name>, ...]}, not both"
FROM_NEITHER = "expected {warehouse: <name>} or {stages: [<name>, ...]}"
UPDATE_KIND = (
    "expected one update target: {kustomize: <dir>}, {helm: <values file>} "
    "or {yaml: <file>, path: <dotted path>}"
)
ARGOCD_NEITHER = "name the Argo CD application: app: <name> or apps: [<name>, ...]"
ARGOCD_BOTH = "give app or apps, not both"
NOT_POSITIVE = "expected a duration above 0s"


def config_error(kind: str, message: str, **context: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message, context or None)


def _check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise config_error("name", BAD_NAME.format(name=name))
    return name


def _check_regex(pattern: str) -> str:
    try:
        re.compile(pattern)
    except re.error as exc:
        where = f" at position {exc.pos}" if exc.pos is not None else ""
        raise config_error(
            "regex", BAD_REGEX.format(error=f"{exc.msg}{where}"), offset=exc.pos or 0
        ) from None
    return pattern


def _check_repo_path(path: str) -> str:
    if not path.strip():
        raise config_error("path", EMPTY_PATH)
    if path.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:[\\/]", path):
        raise config_error("path", ABSOLUTE_PATH.format(path=path))
    if posixpath.normpath(path.replace("\\", "/")).split("/")[0] == "..":
        raise config_error("path", ESCAPING_PATH.format(path=path))
    return path


def _check_dotted(path: str) -> str:
    if not DOTTED_RE.match(path):
        raise config_error("dotted_path", BAD_DOTTED.format(path=path))
    return path


def _check_promoter(who: str) -> str:
    if not (LOGIN_RE.match(who) or TEAM_RE.match(who)):
        raise config_error("promoter", BAD_PROMOTER.format(who=who))
    return who


Name = Annotated[str, AfterValidator(_check_name)]
Regex = Annotated[str, AfterValidator(_check_regex)]
RepoPath = Annotated[str, AfterValidator(_check_repo_path)]
DottedPath = Annotated[str, AfterValidator(_check_dotted)]
Promoter = Annotated[str, AfterValidator(_check_promoter)]


__all__ = [
    "ABSOLUTE_PATH",
    "ARGOCD_BOTH",
    "ARGOCD_NEITHER",
    "BAD_DOTTED",
    "BAD_NAME",
    "BAD_PROMOTER",
    "BAD_REGEX",
    "BAD_VERSION",
    "DOTTED_RE",
    "DUPLICATE_IMAGE",
    "EMPTY_PATH",
    "ESCAPING_PATH",
    "FROM_BOTH",
    "FROM_NEITHER",
    "LOGIN_RE",
    "MANY_RULES",
    "NAME_RE",
    "NOT_POSITIVE",
    "NO_RULE",
    "STRICT_WITHOUT_SEMVER",
    "TEAM_RE",
    "UPDATE_KIND",
    "DottedPath",
    "Name",
    "Promoter",
    "Regex",
    "RepoPath",
    "config_error",
]
