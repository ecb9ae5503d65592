"""Masterminds/semver v3 ranges: the rules users bring from Kargo, Flux and Argo CD Image Updater.

The constraint/version tables follow Masterminds' own test tables (constraints_test.go), so a range
that works there works here unchanged.
"""

from __future__ import annotations

import pytest

from bot.core.semver_range import parse_constraint, parse_version
from bot.errors import SelectionError

MASTERMINDS_CASES = [
    ("=2.0.0", "1.2.3", False),
    ("=2.0.0", "2.0.0", True),
    ("=2.0", "2.0.1", True),
    ("4.1", "4.1.0", True),
    ("!=4.1.0", "4.1.0", False),
    ("!=4.1.0", "4.1.1", True),
    ("!=4.1", "4.1.1", False),
    ("!=4.1", "5.1.0-alpha.1", False),
    ("!=4.1-alpha", "4.1.0", True),
    ("!=4.1", "5.1.0", True),
    ("!=4.1-alpha", "4.1.0-alpha", False),
    ("!=4.1-alpha", "4.1.1-alpha", False),
    ("!=4.x", "5.1.0", True),
    ("!=4.x", "4.1.0", False),
    ("!=4.1.x", "4.2.0", True),
    ("!=4.2.x", "4.2.3", False),
    ("<11", "0.1.0", True),
    ("<11", "11.1.0", False),
    ("<1.1", "1.1.1", False),
    ("<1.x", "1.1.1", False),
    ("<1.x", "0.1.1", True),
    ("<1.1.x", "1.1.500", False),
    ("<1.2.x", "1.1.1", True),
    ("<=11", "11.2.3", True),
    ("<=11", "12.2.3", False),
    ("<=1.1", "1.1.1", True),
    ("<=1.1", "1.2.3", False),
    ("<=1.1", "0.1.0-alpha", False),
    ("<=1.1-a", "0.1.0-alpha", True),
    ("<=2.x", "3.0.0", False),
    ("<=1.1.x", "1.2.500", False),
    ("<=4.5", "4.6.3", False),
    (">1.1", "4.1.0", True),
    (">1.1", "1.1.0", False),
    (">0", "0", False),
    (">0", "1", True),
    (">0", "0.0.1-alpha", False),
    (">0-0", "0.0.1-alpha", False),
    (">0.0.0-0", "0.0.0-alpha", True),
    (">1.2.3-alpha.1", "1.2.3-alpha.2", True),
    (">1.2.3-alpha.1", "1.3.3-alpha.2", True),
    (">11", "11.1.0", False),
    (">11.1", "11.1.1", False),
    (">11.1", "11.2.1", True),
    (">=11", "11.1.2", True),
    (">=11.1", "11.0.2", False),
    (">=1.1", "4.1.0-beta", False),
    (">=0", "0.0.1-alpha", False),
    (">=0-0", "0.0.1-alpha", True),
    (">=0.0.0-0", "3.4.5-beta.1", True),
    ("<0", "0.0.0-alpha", False),
    ("<0-z", "0.0.0-alpha", True),
    ("=0", "1", False),
    ("*", "4.5.6", True),
    ("*", "1.2.3-alpha.1", False),
    ("*-0", "1.2.3-alpha.1", True),
    ("2.*", "3.4.5", False),
    ("2.*", "2.1.1", True),
    ("2.1.*", "2.2.1", False),
    ("", "4.5.6", True),
    ("", "1.2.3-alpha.1", False),
    ("2", "2.1.1", True),
    ("2.1", "2.2.1", False),
    ("~1.2.3", "1.2.4", True),
    ("~1.2.3", "1.3.4", False),
    ("~1.2", "1.3.4", False),
    ("~1", "1.2.4", True),
    ("~1", "2.3.4", False),
    ("~0.2.3", "0.3.5", False),
    ("~1.2.3-beta.2", "1.2.3-beta.4", True),
    ("~1.2.3-beta.2", "1.2.4-beta.2", True),
    ("~1.2.3-beta.2", "1.3.4-beta.2", False),
    ("~*", "2.1.1", True),
    ("~0.0.0", "1.2.3", True),
    ("~1.x", "1.3.5-beta", False),
    ("~1.1.1-beta", "1.1.1", True),
    ("^1.2.3", "1.8.9", True),
    ("^1.2.3", "2.8.9", False),
    ("^1.2.3", "1.2.1", False),
    ("^1.2.0", "1.2.1-alpha.1", False),
    ("^1.2.0-alpha.0", "1.2.1-alpha.1", True),
    ("^1.2.0-alpha.2", "1.2.0-alpha.1", False),
    ("^1", "2.8.9", False),
    ("^0.2.3", "0.2.5", True),
    ("^0.2.3", "0.5.6", False),
    ("^0.2", "0.5.6", False),
    ("^0.0.3", "0.0.3", True),
    ("^0.0.3", "0.0.4", False),
    ("^0.0", "0.0.3", True),
    ("^0.0", "0.1.4", False),
    ("^0", "0.2.3", True),
    ("^0", "1.1.4", False),
    ("^0.2.3-beta.2", "0.2.4-beta.2", True),
    ("^0.2.3-beta.2", "0.3.4-beta.2", False),
    ("^0.0.0", "1.2.3", False),
    ("^1.x", "1.1.1-beta1", False),
    ("^1.1.2-alpha", "1.2.1-beta1", True),
    ("^1.2.x-alpha", "1.1.1-beta1", False),
    ("0.x.x", "1.2.3", False),
    ("0.0.0", "1.2.3", False),
    (">1.1, <2", "1.1.1", False),
    (">1.1 <2", "1.2.1", True),
    (">1.1    <3", "4.3.2", False),
    (">=1.1, <2, !=1.2.3", "1.2.3", False),
    (">=1.1, <2, !=1.2.3 || > 3", "4.1.2", True),
    (">=1.1 <2 !=1.2.3 || > 3", "3.1.2", False),
    (">= 1.1 <2 != 1.2.3 || >= 3", "3.0.0", True),
    ("> 1.1, <     2", "1.1.1", False),
    ("=> 1.2", "1.2.0", True),
    ("=< 1.2", "1.2.9", True),
    ("~> 1.2", "1.2.9", True),
    ("v1.2", "1.2.5", True),
    ("1.1 - 2", "1.1.1", True),
    ("1.5.0 - 4.5", "3.7.0", True),
    ("1.5.0 - 4.5", "4.5.9", True),
    ("1.5.0 - 4.5", "4.6.0", False),
    ("1.1-3", "4.3.2", False),
    ("1.0.0 - 2.0.0 <=2.0.0", "1.5.0", True),
    ("1.0.0 - 2.0.0, <=2.0.0", "1.5.0", True),
]


@pytest.mark.parametrize(("constraint", "version", "expected"), MASTERMINDS_CASES)
def test_range_answers_as_masterminds_does(constraint: str, version: str, expected: bool) -> None:
    parsed = parse_version(version)
    assert parsed is not None
    assert parse_constraint(constraint).allows(parsed) is expected


@pytest.mark.parametrize(
    ("constraint", "version", "expected"),
    [
        ("^0.2.3", "0.2.9", True),
        ("^0.2.3", "0.3.0", False),
        ("~1.2", "1.2.0", True),
        ("~1.2", "1.2.99", True),
        ("~1.2", "1.3.0", False),
        (">=1.2", "1.2.0", True),
        (">=1.2", "1.1.9", False),
        ("1.2.3 - 1.9.9", "1.9.9", True),
        ("1.2.3 - 1.9.9", "1.2.2", False),
        ("1.2.3 - 1.9.9", "2.0.0", False),
    ],
)
def test_partial_versions_and_shorthands_mean_what_the_readme_says(
    constraint: str, version: str, expected: bool
) -> None:
    parsed = parse_version(version)
    assert parsed is not None
    assert parse_constraint(constraint).allows(parsed) is expected


def test_a_prerelease_named_anywhere_in_an_and_group_admits_prereleases_to_that_group_only() -> None:
    constraint = parse_constraint(">= 1.2.3 < 2.0.0-beta || > 3")
    assert constraint.names_prerelease
    assert constraint.allows(parse_version("1.5.0-alpha"))  # type: ignore[arg-type]
    assert not constraint.allows(parse_version("4.5.0-alpha"))  # type: ignore[arg-type]
    assert constraint.allows(parse_version("4.5.0"))  # type: ignore[arg-type]
    assert not constraint.allows(parse_version("3.5.0"))  # type: ignore[arg-type]  # ">3" means 4 or later


def test_prereleases_pass_a_plain_range_when_the_caller_includes_them() -> None:
    constraint = parse_constraint(">=2.0.0 <3.0.0")
    beta = parse_version("2.1.0-beta.1")
    assert beta is not None
    assert not constraint.names_prerelease
    assert not constraint.allows(beta)
    assert constraint.allows(beta, include_prerelease=True)


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("v1.2.3", "1.2.3"),
        ("1.2", "1.2.0"),
        ("7", "7.0.0"),
        ("v2.0.0-rc.1+build.5", "2.0.0-rc.1+build.5"),
        ("2024.01.15", "2024.1.15"),
    ],
)
def test_tags_are_read_leniently_as_versions(tag: str, expected: str) -> None:
    assert str(parse_version(tag)) == expected


@pytest.mark.parametrize("tag", ["latest", "1.2.3.4", "sha-3f2a1b", "1.0.0-rc.01", "V1.2.3", ""])
def test_tags_that_are_not_versions_are_none(tag: str) -> None:
    assert parse_version(tag) is None


def test_prerelease_precedence_compares_numeric_identifiers_as_numbers() -> None:
    ladder = ["2.0.0-alpha", "2.0.0-alpha.1", "2.0.0-beta.2", "2.0.0-beta.11", "2.0.0-rc.1", "2.0.0"]
    versions = [parse_version(t) for t in ladder]
    assert all(v is not None for v in versions)
    assert sorted(versions, key=str) != versions  # plain text order would get it wrong
    assert sorted(versions) == versions  # type: ignore[type-var]


@pytest.mark.parametrize(
    ("text", "named_part"),
    [
        (">= bar", ">= bar"),
        ("12.3.4.1234", "12.3.4.1234"),
        ("12.3.34~ 1.2.3", "12.3.34~"),
        (">=1.0 <2.0 junk", "junk"),
        (">=1.0.0-rc.01", ">=1.0.0-rc.01"),
    ],
)
def test_malformed_range_is_refused_naming_the_bad_part(text: str, named_part: str) -> None:
    with pytest.raises(SelectionError) as caught:
        parse_constraint(text)
    assert f'"{named_part}" is not a version constraint' in str(caught.value)
    assert f'semver range "{text}"' in str(caught.value)


def test_an_empty_alternative_is_a_typo_not_a_wildcard() -> None:
    with pytest.raises(SelectionError, match=r'empty alternative around "\|\|"'):
        parse_constraint("^1 ||")
