"""Versions and version ranges as Kargo, Flux and Argo CD Image Updater read them (Masterminds/semver v3).

Belongs here: strict version parsing of tags (``[v]X.Y.Z``, Kargo's default) and lenient parsing
(``v`` prefix, one to three numeric parts, leading zeros), semver 2.0 precedence, and the
Masterminds v3 constraint language: ``= != > < >= <= ~ ~> ^``, ``,`` or space for AND, ``||`` for
OR, ``x``/``X``/``*`` wildcards, hyphen ranges (``1.2.3 - 1.9.9``) and partial versions (``>=1.2``
is ``>=1.2.0``, ``<=1.2`` is ``<1.3.0``, ``~1.2`` is ``>=1.2.0 <1.3.0``, ``^0.2.3`` is
``>=0.2.3 <0.3.0``). A prerelease satisfies an AND group only when a version in that group names a
prerelease (``>=2.0.0-0``) or the caller includes prereleases, as Masterminds 3.4 does.

Pure: no I/O. Hot paths (thousands of tags per poll) compare plain tuples, not objects.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import semver

from bot.errors import SelectionError

RANGE_EXAMPLES = '">=1.2.0 <2.0.0", "~1.4", "^2", "1.2.x", "1.2.3 - 1.9.9", ">=1.0.0 || ^0.9"'
MSG_BAD_PART = 'semver range "{text}": "{part}" is not a version constraint (expected e.g. {examples})'
MSG_EMPTY_OR = 'semver range "{text}": an empty alternative around "||" (write e.g. "^1 || ^2")'

_IDENT = r"[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*"
_VERSION_RE = re.compile(rf"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-({_IDENT}))?(?:\+({_IDENT}))?$")
# Masterminds' StrictNewVersion: exactly three numbers without leading zeros (version.go); Kargo
# accepts one leading "v" before it (pkg/controller/semver/parser.go, Parse with strict=true).
_NUMBER = r"(0|[1-9]\d*)"
_STRICT_RE = re.compile(rf"^v?{_NUMBER}\.{_NUMBER}\.{_NUMBER}(?:-({_IDENT}))?(?:\+({_IDENT}))?$")
_PART = r"(?:\d+|[xX*])"
_CV = rf"v?({_PART})(?:\.({_PART}))?(?:\.({_PART}))?(?:-({_IDENT}))?(?:\+{_IDENT})?"
_OPS = r"!=|>=|=>|<=|=<|~>|>|<|=|~|\^|"
# One constraint, anchored where the scanner stands; it must end at a separator or the end.
_CONSTRAINT_RE = re.compile(rf"({_OPS})\s*{_CV}(?=$|[\s,])")
_HYPHEN_RE = re.compile(
    rf"(?:^|(?<=[\s,]))(v?{_PART}(?:\.{_PART}){{0,2}}(?:-{_IDENT})?(?:\+{_IDENT})?)"
    rf"\s+-\s+(v?{_PART}(?:\.{_PART}){{0,2}}(?:-{_IDENT})?(?:\+{_IDENT})?)(?=$|[\s,])"
)
_SEPARATOR_RE = re.compile(r"[\s,]*")
_WILDCARDS = frozenset("xX*")
VERSION_CACHE_SIZE = 1 << 16  # distinct tags remembered; ~10 MB at most

# (major, minor, patch, release flag, prerelease identifiers): tuple order is semver 2.0 precedence.
# A release (flag 1) outranks its prereleases (flag 0); numeric identifiers (0, n, "") sort below
# alphanumeric ones (1, 0, s); a shorter identifier list that is a prefix of a longer one sorts first.
PreIdent = tuple[int, int, str]
VersionKey = tuple[int, int, int, int, tuple[PreIdent, ...]]


def _pre_key(prerelease: str | None) -> tuple[PreIdent, ...] | None:
    """Identifiers as sortable tuples; None when malformed (a numeric identifier with a leading zero)."""
    if not prerelease:
        return ()
    idents: list[PreIdent] = []
    for ident in prerelease.split("."):
        if ident.isdigit():
            if len(ident) > 1 and ident[0] == "0":
                return None
            idents.append((0, int(ident), ""))
        else:
            idents.append((1, 0, ident))
    return tuple(idents)


@lru_cache(maxsize=VERSION_CACHE_SIZE)
def version_key(text: str) -> VersionKey | None:
    """The precedence key of a tag read leniently as a version, or None when it is not one.

    Cached: each poll lists the same tags again, so a warehouse's second poll parses nothing new.
    """
    m = _VERSION_RE.match(text)
    if m is None:
        return None
    major, minor, patch, pre, _build = m.groups()
    if pre is None:  # the common case, kept short: selection reads thousands of tags per poll
        return (int(major), int(minor or 0), int(patch or 0), 1, ())
    pre_key = _pre_key(pre)
    if pre_key is None:
        return None
    return (int(major), int(minor or 0), int(patch or 0), 0, pre_key)


@lru_cache(maxsize=VERSION_CACHE_SIZE)
def strict_version_key(text: str) -> VersionKey | None:
    """The precedence key of a tag read as a strict version (``[v]X.Y.Z[-pre][+build]``), or None.

    A short commit sha made of digits (``40213377``) or a build number is not a strict version, so
    it cannot outrank ``2.3.0`` as ``40213377.0.0`` would (akuity/kargo#2438).
    """
    m = _STRICT_RE.match(text)
    if m is None:
        return None
    major, minor, patch, pre, _build = m.groups()
    pre_key = _pre_key(pre)
    if pre_key is None:
        return None
    return (int(major), int(minor), int(patch), 0 if pre else 1, pre_key)


def parse_version(text: str) -> semver.Version | None:
    """A tag read leniently as a version (``v1.2`` is 1.2.0), or None when it is not one."""
    m = _VERSION_RE.match(text.strip())
    if m is None or _pre_key(m.group(4)) is None:
        return None
    major, minor, patch, pre, build = m.groups()
    return semver.Version(int(major), int(minor or 0), int(patch or 0), prerelease=pre, build=build)


def key_of(version: semver.Version) -> VersionKey:
    pre = version.prerelease
    pre_key = _pre_key(pre) or ()
    return (version.major, version.minor, version.patch, 0 if pre else 1, pre_key)


Test = Callable[[VersionKey], bool]


def _compile_test(op: str, c: VersionKey, any_major: bool, minor_dirty: bool, patch_dirty: bool) -> Test:
    """One ``<op><version>`` as a predicate, with Masterminds' rules for partial versions.

    ``1.x`` and ``1`` are minor-dirty, ``1.2`` and ``1.2.x`` patch-dirty, ``*`` any-major.
    """
    major, minor, patch = c[0], c[1], c[2]
    dirty = any_major or minor_dirty or patch_dirty
    if any_major:
        return {"!=": lambda v: False, "<": lambda v: v < c, ">": lambda v: v > c}.get(op, lambda v: True)
    if op in ("", "=") and not dirty:
        return lambda v: v == c
    if op in ("", "=", "~"):
        if op == "~" and c[:3] == (0, 0, 0) and not dirty:
            return lambda v: True  # ~0.0.0 is any version, as in Masterminds
        if minor_dirty:
            return lambda v: v >= c and v[0] == major
        return lambda v: v >= c and v[0] == major and v[1] == minor
    if op == "^":
        if major > 0 or minor_dirty:
            return lambda v: v >= c and v[0] == major
        if minor > 0 or patch_dirty:
            return lambda v: v >= c and v[0] == 0 and v[1] == minor
        return lambda v: v >= c and v[0] == 0 and v[1] == 0 and v[2] == patch
    if op == ">=":
        return lambda v: v >= c
    if op == "<":
        return lambda v: v < c
    if op == ">":  # ">1" needs 2 or later, ">1.2" needs 1.3 or later
        if minor_dirty:
            return lambda v: v[0] > major
        if patch_dirty:
            return lambda v: v[0] > major or (v[0] == major and v[1] > minor)
        return lambda v: v > c
    if op == "<=":  # "<=1" allows all of 1.x, "<=1.2" all of 1.2.x
        if minor_dirty:
            return lambda v: v[0] <= major
        if patch_dirty:
            return lambda v: v[0] < major or (v[0] == major and v[1] <= minor)
        return lambda v: v <= c
    # "!=": "!=1.x" excludes all of 1.x, "!=1.2" all of 1.2.x with the same prerelease
    if minor_dirty:
        return lambda v: v[0] != major
    if patch_dirty:
        return lambda v: v[0] != major or v[1] != minor or v[4] != c[4]
    return lambda v: v != c


@dataclass(frozen=True, slots=True)
class _Group:
    """Constraints joined by AND. ``names_prerelease``: a version in the group carries a prerelease."""

    tests: tuple[Test, ...]
    names_prerelease: bool

    def check(self, v: VersionKey, include_prerelease: bool) -> bool:
        if v[3] == 0 and not (self.names_prerelease or include_prerelease):
            return False
        return all(test(v) for test in self.tests)


@dataclass(frozen=True)
class Constraint:
    """A parsed range. ``allows`` answers for one version; ``names_prerelease`` if any part names one."""

    text: str
    names_prerelease: bool
    groups: tuple[_Group, ...] = field(repr=False, compare=False, default=())

    def allows(self, v: semver.Version, *, include_prerelease: bool = False) -> bool:
        return self.allows_key(key_of(v), include_prerelease=include_prerelease)

    def allows_key(self, key: VersionKey, *, include_prerelease: bool = False) -> bool:
        return any(group.check(key, include_prerelease) for group in self.groups)

    def predicate(self, *, include_prerelease: bool = False) -> Test:
        """``allows_key`` as one flat callable: the hot loop of selection calls it for every tag."""
        tests = [_group_predicate(group, include_prerelease) for group in self.groups]
        if len(tests) == 1:
            return tests[0]
        if len(tests) == 2:
            first, second = tests
            return lambda v: first(v) or second(v)
        return lambda v: any(test(v) for test in tests)


def _group_predicate(group: _Group, include_prerelease: bool) -> Test:
    gate = not (group.names_prerelease or include_prerelease)
    tests = group.tests
    if len(tests) > 2:
        return lambda v: group.check(v, include_prerelease)
    first, second = (*tests, *tests)[:2]  # a lone test is checked twice: cheaper than a branch
    if gate:
        return lambda v: v[3] == 1 and first(v) and second(v)
    return lambda v: first(v) and second(v)


def _primitive(m: re.Match[str]) -> tuple[Test, bool] | None:
    """The matched constraint's test and whether it names a prerelease; None for a malformed prerelease."""
    op, major, minor, patch, pre = m.groups()
    op = {"=>": ">=", "=<": "<=", "~>": "~"}.get(op, op)
    pre_key = _pre_key(pre)
    if pre_key is None:
        return None
    any_major = major in _WILDCARDS
    minor_dirty = not any_major and (minor is None or minor in _WILDCARDS)
    patch_dirty = not (any_major or minor_dirty) and (patch is None or patch in _WILDCARDS)

    def number(part: str | None) -> int:
        return int(part) if part and part not in _WILDCARDS else 0

    key: VersionKey = (number(major), number(minor), number(patch), 0 if pre else 1, pre_key)
    return _compile_test(op, key, any_major, minor_dirty, patch_dirty), bool(pre)


def _rewrite_hyphens(text: str) -> str:
    return _HYPHEN_RE.sub(lambda m: f">={m.group(1)}, <={m.group(2)}", text)


def _offending_part(rest: str) -> str:
    tokens = rest.replace(",", " ").split() or [rest]
    part = tokens[0]
    if re.fullmatch(_OPS, part) and len(tokens) > 1:
        part = f"{part} {tokens[1]}"  # ">= bar": show the operator with what follows it
    return part


def _parse_group(text: str, alternative: str) -> _Group:
    body = _rewrite_hyphens(alternative).strip()
    if not body:
        # An empty range means "any version" in Masterminds; an empty alternative is a typo.
        if text.strip():
            raise SelectionError(MSG_EMPTY_OR.format(text=text))
        body = "*"
    parts: list[tuple[Test, bool]] = []
    pos = 0
    while pos < len(body):
        # The lookahead in _CONSTRAINT_RE makes every constraint end at a separator or the end.
        m = _CONSTRAINT_RE.match(body, pos)
        primitive = _primitive(m) if m is not None else None
        if m is None or primitive is None:
            part = _offending_part(body[pos:])
            raise SelectionError(MSG_BAD_PART.format(text=text, part=part, examples=RANGE_EXAMPLES))
        parts.append(primitive)
        pos = m.end() + len(_SEPARATOR_RE.match(body, m.end()).group())  # type: ignore[union-attr]
    return _Group(tuple(test for test, _ in parts), any(names for _, names in parts))


def parse_constraint(text: str) -> Constraint:
    """Parse a Masterminds v3 range; raise SelectionError naming the part that is not understood."""
    groups = tuple(_parse_group(text, alternative) for alternative in text.split("||"))
    return Constraint(text=text, names_prerelease=any(g.names_prerelease for g in groups), groups=groups)
