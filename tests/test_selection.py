"""Tag selection on realistic tag lists: the tag Ferry picks is the one a person would pick."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from bot.core.selection import TagRule, check_rule, compile_rule, rank_tags, select_tag
from bot.errors import SelectionError

TAGS = Path(__file__).parent / "fixtures" / "tags"


def tags_of(name: str) -> list[str]:
    lines = (TAGS / f"{name}.txt").read_text().splitlines()
    return [line for line in lines if line and not line.startswith("#")]


def semver(range_: str | None = None, **kw: object) -> TagRule:
    return TagRule(strategy="semver", semver=range_, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fixture", "rule", "expected"),
    [
        ("nginx", semver("^1"), "1.27.1"),
        ("nginx", semver(), "1.27.1"),
        ("nginx", semver("~1.26"), "1.26.2"),
        ("nginx", semver(">=1.20 <1.25"), "1.24.0"),
        ("nginx", semver(allow=r"^(?P<version>\d+\.\d+\.\d+)-alpine$"), "1.27.1-alpine"),
        ("nginx", semver("~1.26", allow=r"^(?P<version>\d+\.\d+\.\d+)-alpine-slim$"), "1.26.2-alpine-slim"),
        ("nginx", semver("^1", prerelease=True), "1.27.1"),
        ("argocd", semver(">=2.0.0"), "v2.10.12"),
        ("argocd", semver("~2.9"), "v2.9.12"),
        ("argocd", semver(">=2.11.0-0"), "v2.11.0-rc4"),
        ("argocd", semver(prerelease=True), "v2.11.0-rc4"),
        ("ladder", semver(), "1.4.0"),
        ("ladder", semver(prerelease=True), "2.0.0-rc.2"),
        ("ladder", semver(">=2.0.0-beta <2.0.0-rc"), "2.0.0-beta.11"),
        ("ladder", semver("^1", ignore=(r"^1\.4\.",)), "1.3.1"),
        ("calver", semver(), "2024.10.15"),
        ("calver", semver("<2024"), "2023.12.15"),
        ("calver", TagRule("lexical", allow=r"^\d{4}\.\d{2}\.\d{2}$"), "2024.10.15"),
        ("builds", TagRule("numeric", allow=r"^build-(?P<version>\d+)$"), "build-1203"),
        ("busy", semver("^5"), "v5.29.11"),
        ("busy", semver("<3", allow=r"^v"), "v2.29.11"),
        ("busy", semver("~4.12", allow=r"^(?P<version>[\d.]+)-alpine$"), "4.12.9-alpine"),
        ("busy", semver("^5", prerelease=True), "v5.30.0-rc.1"),
    ],
)
def test_selection_picks_what_a_person_would_pick(fixture: str, rule: TagRule, expected: str) -> None:
    assert select_tag(tags_of(fixture), rule) == expected


def test_the_registrys_order_never_changes_the_choice() -> None:
    tags = tags_of("busy")
    rule = semver("^4", ignore=("-alpine$",))
    expected = select_tag(tags, rule)
    for seed in range(5):
        shuffled = tags[:]
        random.Random(seed).shuffle(shuffled)
        assert select_tag(shuffled, rule) == expected
    assert select_tag(sorted(tags), rule) == select_tag(sorted(tags, reverse=True), rule) == expected


def test_the_same_version_written_twice_is_decided_by_the_tag_text_not_the_order() -> None:
    assert select_tag(["1.2.3", "v1.2.3"], semver()) == select_tag(["v1.2.3", "1.2.3"], semver())


def test_lexical_order_puts_rc9_above_rc10_as_docs_warn() -> None:
    rule = TagRule("lexical", allow=r"^v2\.10\.0-rc\d+$")
    assert select_tag(tags_of("argocd"), rule) == "v2.10.0-rc9"


def test_semver_also_puts_rc9_above_rc10_because_rc10_is_one_alphanumeric_identifier() -> None:
    rule = semver(">=2.10.0-0 <2.10.0")
    assert select_tag(tags_of("argocd"), rule) == "v2.10.0-rc9"


def test_an_allow_group_with_numeric_puts_rc10_above_rc9() -> None:
    rule = TagRule("numeric", allow=r"^v2\.10\.0-rc(?P<version>\d+)$")
    assert select_tag(tags_of("argocd"), rule) == "v2.10.0-rc10"


def test_lexical_order_puts_build_999_above_build_1203_and_numeric_does_not() -> None:
    allow = r"^build-(?P<version>\d+)$"
    assert select_tag(tags_of("builds"), TagRule("lexical", allow=r"^build-\d+$")) == "build-999"
    assert select_tag(tags_of("builds"), TagRule("numeric", allow=allow)) == "build-1203"


def test_go_style_named_group_is_accepted_as_users_copy_it_from_kargo() -> None:
    rule = semver(allow=r"^(?<version>\d+\.\d+\.\d+)-alpine$")
    assert select_tag(tags_of("nginx"), rule) == "1.27.1-alpine"


def test_rank_tags_lists_qualifying_tags_best_first() -> None:
    ranked = rank_tags(tags_of("ladder"), semver(">=2.0.0-rc <3"))
    assert ranked == ["2.0.0-rc.2", "2.0.0-rc.1"]
    assert rank_tags(tags_of("ladder"), semver("^1.3"))[:3] == ["1.4.0", "1.3.1", "1.3.0"]


def test_nothing_qualifying_says_how_many_tags_were_seen_and_the_newest_rejected() -> None:
    with pytest.raises(SelectionError) as caught:
        select_tag(tags_of("ladder"), semver(">=2.0.0"), subject='image "ghcr.io/acme/web"')
    message = str(caught.value)
    assert message.startswith('image "ghcr.io/acme/web": no tag qualifies for semver ">=2.0.0" among 27 tags')
    assert "17 prereleases" in message
    assert "3 not versions" in message
    assert (
        "newest rejected: 2.0.0-rc.2 (a prerelease: set prerelease: true, or name one in the range" in message
    )


def test_nothing_qualifying_counts_tags_dropped_by_allow_and_ignore() -> None:
    rule = semver("^2", allow=r"^1\.", ignore=(r"-rc",))
    with pytest.raises(SelectionError) as caught:
        select_tag(tags_of("ladder"), rule)
    message = str(caught.value)
    assert "17 dropped by allow" in message  # 27 tags: 3 ignored, 7 of the other 24 start with "1."
    assert "3 by ignore" in message
    assert '7 outside "^2"' in message
    assert "newest rejected: 2.0.0-rc.2 (matches an ignore pattern)" in message


def test_numeric_without_an_allow_group_on_non_numeric_tags_explains_itself() -> None:
    with pytest.raises(SelectionError, match=r"among 1656 tags \(1656 not numbers\)$"):
        select_tag(tags_of("builds"), TagRule("numeric"))


def test_an_empty_repository_is_reported_as_such() -> None:
    with pytest.raises(SelectionError, match='image "x": the repository has no tags'):
        select_tag([], semver(), subject='image "x"')


def test_digest_strategy_follows_the_named_tag() -> None:
    rule = TagRule("digest", digest_tag="stable")
    assert select_tag(tags_of("nginx"), rule) == "stable"
    assert rank_tags(["latest", "stable"], rule) == ["stable"]


def test_digest_strategy_fails_when_the_followed_tag_is_gone() -> None:
    with pytest.raises(SelectionError, match='tag "edge" to follow is not among the 457 tags'):
        select_tag(tags_of("nginx"), TagRule("digest", digest_tag="edge"))


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (semver(allow="(unclosed"), re.escape('allow regex "(unclosed": missing ), unterminated subpattern')),
        (semver(ignore=("ok", "[z-a]")), 'ignore regex "\\[z-a\\]": bad character range z-a'),
        (semver(">=1.0 <<2"), 'semver range ">=1.0 <<2": "<<2" is not a version constraint'),
        (TagRule("digest"), "the digest strategy needs the tag to follow"),
    ],
)
def test_malformed_rules_fail_before_any_tag_is_looked_at(rule: TagRule, message: str) -> None:
    with pytest.raises(SelectionError, match=message):
        check_rule(rule)
    with pytest.raises(SelectionError, match=message):
        select_tag(["1.0.0"], rule)


@dataclass
class FakeImageRule:
    image: str = "ghcr.io/acme/web"
    semver: str | None = None
    lexical: bool = False
    numeric: bool = False
    digest: str | None = None
    allow: str | None = None
    ignore: list[str] = field(default_factory=list)
    prerelease: bool = False
    semver_strict: bool = True


def test_rule_from_config_takes_the_strategy_the_config_names() -> None:
    assert TagRule.from_image_rule(FakeImageRule(semver="^1", ignore=["-rc"])) == TagRule(
        "semver", semver="^1", ignore=("-rc",)
    )
    assert TagRule.from_image_rule(FakeImageRule(numeric=True)).strategy == "numeric"
    assert TagRule.from_image_rule(FakeImageRule(lexical=True)).strategy == "lexical"
    assert TagRule.from_image_rule(FakeImageRule(digest="latest")) == TagRule("digest", digest_tag="latest")
    assert TagRule.from_image_rule(FakeImageRule()) == TagRule("semver")


def test_rule_from_config_with_two_strategies_is_refused_naming_both() -> None:
    with pytest.raises(
        SelectionError, match=r'image "ghcr\.io/acme/web": choose one of .* sets semver, numeric'
    ):
        TagRule.from_image_rule(FakeImageRule(semver="^1", numeric=True))


@pytest.mark.parametrize("fixture", ["nginx", "argocd", "ladder", "calver", "builds", "busy"])
@pytest.mark.parametrize(
    "rule",
    [
        semver(),
        semver(prerelease=True),
        semver(">=1.0 <2 || ^5 || ~2.9", ignore=("-alpine", "^v0")),
        semver(">=2.0.0-0"),
        semver("~1.2", allow=r"^(?P<version>[\d.]+)(-alpine)?$", prerelease=True),
        TagRule("numeric", allow=r"(?P<version>\d+)$", ignore=("(?i)RC",)),
        TagRule("lexical", ignore=("^sha-", "^pr-")),
    ],
)
def test_the_fast_path_and_the_explanation_agree_on_every_tag(fixture: str, rule: TagRule) -> None:
    tags = tags_of(fixture)
    classify = compile_rule(rule).classify
    assert set(rank_tags(tags, rule)) == {tag for tag in tags if classify(tag)[1] is None}
