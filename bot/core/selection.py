"""Tag selection: which tag of an image repository a warehouse takes. Pure; docs/selection.md has examples.

Belongs here: the rule (``TagRule``), its validation, and the strategies ``semver`` (Masterminds v3
ranges over strict ``[v]X.Y.Z`` versions by default, as Kargo's ``strictSemvers``; lenient on
request), ``numeric`` (integers), ``lexical`` (string order) and ``digest`` (follow one mutable tag).
``allow`` keeps only tags its regex finds; a named group ``version`` makes the strategy compare the
captured part instead of the whole tag, and ``numeric`` compares every named group, in pattern order,
as numbers (calendar versions, ``<version>-dev-<build>``). ``ignore`` regexes drop tags. Registries
list tags in any order, so results never depend on the order given: ties are broken by the tag text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal, Protocol

from bot.core.semver_range import (
    Constraint,
    VersionKey,
    parse_constraint,
    strict_version_key,
    version_key,
)
from bot.errors import SelectionError

Strategy = Literal["semver", "lexical", "numeric", "digest"]
STRATEGIES: tuple[Strategy, ...] = ("semver", "lexical", "numeric", "digest")
VERSION_GROUP = "version"

MSG_BAD_REGEX = '{field} regex "{pattern}": {error} (at position {pos}); fix the pattern'
MSG_NO_DIGEST_TAG = 'the digest strategy needs the tag to follow (e.g. digest: "latest")'
MSG_MANY_STRATEGIES = "choose one of semver, lexical, numeric, digest; this rule sets {names}"
MSG_NO_TAGS = "the repository has no tags"
MSG_FOLLOWED_TAG_MISSING = 'tag "{tag}" to follow is not among the {count} tags of the repository'
MSG_NOTHING_QUALIFIES = "no tag qualifies for {rule} among {count} tags ({drops}){newest}"
MSG_PRERELEASE_HINT = "set prerelease: true, or name one in the range, e.g. >=2.0.0-0"
MSG_NEWEST_REJECTED = "; newest rejected: {tag} ({reason})"
MSG_NOT_STRICT = "not a strict X.Y.Z version; semver_strict: false would read it as {version}"

# Why a tag was rejected, in the order the message counts them.
REASONS = ("allow", "ignore", "prerelease", "not_comparable", "range")
_NOT_COMPARABLE = {"semver": "not versions", "numeric": "not numbers", "lexical": "empty", "digest": ""}
_GO_NAMED_GROUP = re.compile(r"\(\?<(?=[A-Za-z_])")  # Go/PCRE (?<name>...) -> Python (?P<name>...)
_DIGITS = re.compile(r"[0-9]+")
_NUMBERS = re.compile(r"[0-9]+(?:[._-][0-9]+)*")  # one named group under numeric: 2026-1-30, 1.4.0, 12
_NUMBER_SEPARATORS = re.compile(r"[._-]")

# numeric over named groups: one tuple of numbers per group, in pattern order; () for a group that
# took no part in the match, which sorts below any number.
GroupsKey = tuple[tuple[int, ...], ...]
SortKey = VersionKey | int | str | GroupsKey


class ImageRuleLike(Protocol):
    """What a config's image rule offers (bot.core.config.ImageRule); read-only, so any model fits."""

    @property
    def image(self) -> str: ...
    @property
    def semver(self) -> str | None: ...
    @property
    def lexical(self) -> bool: ...
    @property
    def numeric(self) -> bool: ...
    @property
    def digest(self) -> str | None: ...
    @property
    def allow(self) -> str | None: ...
    @property
    def ignore(self) -> Sequence[str]: ...
    @property
    def prerelease(self) -> bool: ...
    @property
    def semver_strict(self) -> bool: ...


@dataclass(frozen=True)
class TagRule:
    """How to choose a tag. ``semver=None`` with the semver strategy accepts any version.

    ``strict`` (semver only): a tag is a version only as ``[v]X.Y.Z[-pre][+build]`` with no leading
    zeros (Masterminds' StrictNewVersion, Kargo's default ``strictSemvers: true``); lenient parsing
    also reads ``v1.2`` as 1.2.0 and ``40213377`` as 40213377.0.0.
    """

    strategy: Strategy
    semver: str | None = None
    allow: str | None = None
    ignore: tuple[str, ...] = ()
    prerelease: bool = False
    digest_tag: str | None = None
    strict: bool = True

    @classmethod
    def from_image_rule(cls, rule: ImageRuleLike) -> TagRule:
        chosen = [
            name
            for name, on in (
                ("semver", rule.semver is not None),
                ("lexical", rule.lexical),
                ("numeric", rule.numeric),
                ("digest", rule.digest is not None),
            )
            if on
        ]
        if len(chosen) > 1:
            names = ", ".join(chosen)
            raise SelectionError(f'image "{rule.image}": ' + MSG_MANY_STRATEGIES.format(names=names))
        strategy: Strategy = "semver"
        if rule.digest is not None:
            strategy = "digest"
        elif rule.lexical:
            strategy = "lexical"
        elif rule.numeric:
            strategy = "numeric"
        return cls(
            strategy=strategy,
            semver=rule.semver,
            allow=rule.allow,
            ignore=tuple(rule.ignore),
            prerelease=rule.prerelease,
            digest_tag=rule.digest,
            strict=rule.semver_strict,
        )

    def describe(self) -> str:
        """The rule as people read it in messages: ``semver ">=1.0.0 <2.0.0"``, ``digest of "latest"``."""
        if self.strategy == "digest":
            return f'digest of "{self.digest_tag}"'
        text = f'semver "{self.semver}"' if self.strategy == "semver" and self.semver else self.strategy
        if self.strategy == "semver" and not self.strict:
            text += " (lenient)"
        if self.allow:
            text += f' allow "{self.allow}"'
        return text


@dataclass(frozen=True)
class _Compiled:
    rule: TagRule
    allow: re.Pattern[str] | None
    ignore: tuple[re.Pattern[str], ...]
    constraint: Constraint | None
    extracts: bool
    groups: tuple[str, ...]  # numeric: the named groups of allow compared, in pattern order

    @property
    def version_key(self) -> Callable[[str], VersionKey | None]:
        return strict_version_key if self.rule.strict else version_key

    def classify(self, tag: str) -> tuple[SortKey | None, str | None]:
        """(sort key, None) for a qualifying tag; (key or None, reason) for a rejected one."""
        for pattern in self.ignore:
            if pattern.search(tag):
                return None, "ignore"
        text = tag
        if self.allow is not None:
            m = self.allow.search(tag)
            if m is None:
                return None, "allow"
            if self.groups:
                grouped = _groups_key(m, self.groups)
                return (grouped, None) if grouped is not None else (None, "not_comparable")
            if self.extracts:
                text = m.group(VERSION_GROUP) or ""
        strategy = self.rule.strategy
        if strategy == "lexical":
            return (text, None) if text else (None, "not_comparable")
        if strategy == "numeric":
            return (int(text), None) if _DIGITS.fullmatch(text) else (None, "not_comparable")
        key = self.version_key(text)
        if key is None:
            return None, "not_comparable"
        constraint, include = self.constraint, self.rule.prerelease
        if key[3] == 0 and not include and not (constraint and constraint.names_prerelease):
            return key, "prerelease"
        if constraint is not None and not constraint.allows_key(key, include_prerelease=include):
            return key, "range"
        return key, None

    def fallback_key(self, tag: str) -> SortKey | None:
        """A key for a tag dropped before it was compared, so the message can name the newest one."""
        strategy = self.rule.strategy
        if strategy == "lexical":
            return tag
        if strategy == "numeric":
            if self.groups:
                m = self.allow.search(tag) if self.allow is not None else None
                return _groups_key(m, self.groups) if m is not None else None
            return int(tag) if _DIGITS.fullmatch(tag) else None
        return version_key(tag)  # lenient, to name the newest even when it is not strict


def _compile_regex(field: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(_GO_NAMED_GROUP.sub("(?P<", pattern))
    except re.error as exc:
        raise SelectionError(
            MSG_BAD_REGEX.format(field=field, pattern=pattern, error=exc.msg, pos=exc.pos or 0)
        ) from None


@lru_cache(maxsize=512)
def compile_rule(rule: TagRule) -> _Compiled:
    """Validate a rule once; raise SelectionError naming the malformed range or regex."""
    if rule.strategy not in STRATEGIES:
        raise SelectionError(f'unknown strategy "{rule.strategy}" (expected one of {", ".join(STRATEGIES)})')
    if rule.strategy == "digest" and not rule.digest_tag:
        raise SelectionError(MSG_NO_DIGEST_TAG)
    allow = _compile_regex("allow", rule.allow) if rule.allow else None
    ignore = tuple(_compile_regex("ignore", p) for p in rule.ignore)
    constraint = None
    if rule.strategy == "semver" and rule.semver is not None and rule.semver.strip():
        constraint = parse_constraint(rule.semver)
    extracts = allow is not None and VERSION_GROUP in allow.groupindex
    groups: tuple[str, ...] = ()
    if rule.strategy == "numeric" and allow is not None:
        groups = tuple(sorted(allow.groupindex, key=allow.groupindex.__getitem__))
    return _Compiled(rule, allow, ignore, constraint, extracts, groups)


def check_rule(rule: TagRule) -> None:
    """Raise SelectionError when the rule is malformed (for config validation)."""
    compile_rule(rule)


def _ranked(tags: Iterable[str], compiled: _Compiled) -> list[tuple[SortKey, str]]:
    """(key, tag) of every qualifying tag. The same decisions as ``classify``, inlined: this loop
    runs over every tag of every image at every poll."""
    rule = compiled.rule
    ignore = _any_of(compiled.ignore)
    allow = compiled.allow.search if compiled.allow is not None else None
    extracts = compiled.extracts
    groups = compiled.groups
    keyer = compiled.version_key if rule.strategy == "semver" else _KEYERS[rule.strategy]
    accept: Callable[[Any], bool] | None = None
    if rule.strategy == "semver":
        if compiled.constraint is not None:
            accept = compiled.constraint.predicate(include_prerelease=rule.prerelease)
        elif not rule.prerelease:
            accept = _is_release
    found: list[tuple[SortKey, str]] = []
    append = found.append
    for tag in dict.fromkeys(tags):
        if ignore is not None and ignore(tag):
            continue
        text = tag
        if allow is not None:
            m = allow(tag)
            if m is None:
                continue
            if groups:
                grouped = _groups_key(m, groups)
                if grouped is not None:
                    append((grouped, tag))
                continue
            if extracts:
                text = m.group(VERSION_GROUP) or ""
        key = keyer(text)
        if key is None or (accept is not None and not accept(key)):
            continue
        append((key, tag))
    return found


def _any_of(patterns: tuple[re.Pattern[str], ...]) -> Callable[[str], object] | None:
    """One search for several patterns: a single regex when they combine, else a loop."""
    if not patterns:
        return None
    if len(patterns) == 1:
        return patterns[0].search
    try:
        return re.compile("|".join(f"(?:{p.pattern})" for p in patterns)).search
    except re.error:  # e.g. two patterns naming the same group
        return lambda tag: any(p.search(tag) for p in patterns)


def _groups_key(m: re.Match[str], groups: tuple[str, ...]) -> GroupsKey | None:
    """Each named group read as numbers split on ``.``, ``-`` or ``_``; None if one holds anything else."""
    key: list[tuple[int, ...]] = []
    for name in groups:
        text = m.group(name)
        if not text:
            key.append(())
        elif _DIGITS.fullmatch(text):  # the common case (a build number), without the split
            key.append((int(text),))
        elif _NUMBERS.fullmatch(text):
            key.append(tuple(int(part) for part in _NUMBER_SEPARATORS.split(text)))
        else:
            return None
    return tuple(key)


def _is_release(key: VersionKey) -> bool:
    return key[3] == 1


def _number(text: str) -> int | None:
    return int(text) if _DIGITS.fullmatch(text) else None


def _text(text: str) -> str | None:
    return text or None


_KEYERS: dict[str, Callable[[str], SortKey | None]] = {
    "semver": strict_version_key,
    "numeric": _number,
    "lexical": _text,
    "digest": _text,
}


def rank_tags(tags: Iterable[str], rule: TagRule) -> list[str]:
    """The qualifying tags, best first (for ``digest``: the followed tag if present)."""
    compiled = compile_rule(rule)
    if rule.strategy == "digest":
        return [t for t in dict.fromkeys(tags) if t == rule.digest_tag]
    return [tag for _key, tag in sorted(_ranked(tags, compiled), reverse=True)]


def select_tag(tags: Iterable[str], rule: TagRule, *, subject: str = "") -> str:
    """The best qualifying tag; SelectionError saying what was seen and why nothing qualified."""
    compiled = compile_rule(rule)
    unique = list(dict.fromkeys(tags))
    prefix = f"{subject}: " if subject else ""
    if not unique:
        raise SelectionError(prefix + MSG_NO_TAGS)
    if rule.strategy == "digest":
        if rule.digest_tag in unique:
            return rule.digest_tag
        raise SelectionError(prefix + MSG_FOLLOWED_TAG_MISSING.format(tag=rule.digest_tag, count=len(unique)))
    found = _ranked(unique, compiled)
    if found:
        return max(found)[1]
    raise SelectionError(prefix + _explain(unique, compiled))


def _not_comparable_reason(tag: str, compiled: _Compiled) -> str:
    rule = compiled.rule
    if rule.strategy == "semver" and rule.strict:
        lenient = version_key(tag)
        if lenient is not None:
            return MSG_NOT_STRICT.format(version=".".join(map(str, lenient[:3])))
    return _NOT_COMPARABLE[rule.strategy].removesuffix("s")


def _explain(tags: list[str], compiled: _Compiled) -> str:
    """Why nothing qualified: counts per reason and the newest rejected tag."""
    counts = dict.fromkeys(REASONS, 0)
    newest: tuple[SortKey, str, str] | None = None
    for tag in tags:
        key, reason = compiled.classify(tag)
        reason = reason or "range"
        counts[reason] += 1
        key = key if key is not None else compiled.fallback_key(tag)
        if key is not None and (newest is None or (key, tag) > newest[:2]):
            newest = (key, tag, reason)
    rule = compiled.rule
    labels = {
        "allow": "dropped by allow",
        "ignore": "by ignore",
        "prerelease": "prereleases",
        "not_comparable": _NOT_COMPARABLE[rule.strategy],
        "range": f'outside "{rule.semver}"' if rule.semver else "outside the range",
    }
    drops = ", ".join(f"{n} {labels[r]}" for r, n in counts.items() if n)
    newest_text = ""
    if newest is not None:
        why = {
            "allow": f'does not match allow "{rule.allow}"',
            "ignore": "matches an ignore pattern",
            "prerelease": "a prerelease: " + MSG_PRERELEASE_HINT,
            "range": f'outside "{rule.semver}"',
            "not_comparable": _not_comparable_reason(newest[1], compiled),
        }[newest[2]]
        newest_text = MSG_NEWEST_REJECTED.format(tag=newest[1], reason=why)
    return MSG_NOTHING_QUALIFIES.format(
        rule=rule.describe(), count=len(tags), drops=drops, newest=newest_text
    )
