"""Tag choices peers got wrong, each kind fixed as a kind: numbers that are not versions (strict semver
by default, as Kargo's strictSemvers), calendar versions without zero padding (numeric over named
groups), and prereleases with a number inside one identifier (1.4.0-dev-9 vs 1.4.0-dev-12).
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.core.config_load import load_config
from bot.core.selection import TagRule, compile_rule, rank_tags, select_tag
from bot.core.semver_range import strict_version_key, version_key
from bot.core.warehouse import image_rules
from bot.errors import ConfigError, SelectionError

# --- 5. numbers that are not versions -------------------------------------------------------------

NOT_STRICT = [
    "40213377",
    "1203",
    "7",
    "v2",
    "1.2",
    "v1.2",
    "2024.01.15",
    "01.2.3",
    "1.02.3",
    "1.2.03",
    "1.2.3.4",
    "1.2.3-",
    "1.2.3+",
    "1.2.3-rc.01",
    "vv1.2.3",
    "V1.2.3",
    " 1.2.3",
    "1.2.3-rc..1",
]
STRICT = [
    "0.0.0",
    "1.2.3",
    "v1.2.3",
    "2.3.0-rc.1",
    "1.4.0+build.7",
    "1.4.0-dev-12+sha.3f2a",
    "10.20.30",
    "1.0.0-0A.is.legal",
    "2024.1.15",
]


@pytest.mark.parametrize("tag", NOT_STRICT)
def test_a_tag_without_exactly_three_plain_numbers_is_not_a_strict_version(tag: str) -> None:
    assert strict_version_key(tag) is None


@pytest.mark.parametrize("tag", STRICT)
def test_a_three_number_tag_with_an_optional_v_is_a_strict_version(tag: str) -> None:
    assert strict_version_key(tag) == version_key(tag)


@pytest.mark.parametrize("range_", [None, ">=1.0.0", "*", ">=0.0.0", "^2 || >=100", "<3 || >=3", "!=1.0.0"])
@pytest.mark.parametrize("impostor", ["40213377", "1203", "99", "v100", "2024.01.15", "3.1"])
def test_a_number_that_is_not_a_version_never_beats_a_release_by_default(
    range_: str | None, impostor: str
) -> None:
    tags = ["2.2.0", "2.3.0", impostor, "2.4.0-rc.1"]
    assert select_tag(tags, TagRule("semver", semver=range_)) == "2.3.0"


def test_lenient_parsing_is_an_opt_in_that_reads_a_numeric_sha_as_a_major_version() -> None:
    lenient = TagRule("semver", semver=">=1.0.0", strict=False)
    assert select_tag(["2.3.0", "40213377"], lenient) == "40213377"
    assert select_tag(["1.2", "1.10", "2024.01.15"], TagRule("semver", strict=False)) == "2024.01.15"


def test_when_nothing_qualifies_the_message_says_a_tag_is_a_version_only_leniently() -> None:
    with pytest.raises(SelectionError) as caught:
        select_tag(["40213377", "latest", "1.2"], TagRule("semver"), subject='image "acme/web"')
    assert str(caught.value) == (
        'image "acme/web": no tag qualifies for semver among 3 tags (3 not versions); newest rejected: '
        "40213377 (not a strict X.Y.Z version; semver_strict: false would read it as 40213377.0.0)"
    )


def masterminds_strict(text: str) -> bool:
    """Masterminds/semver v3 StrictNewVersion (version.go) accepting ``text``, after Kargo trims one
    leading ``v`` (pkg/controller/semver/parser.go): a port, clause by clause."""
    text = text.removeprefix("v")
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-0123456789")
    parts = text.split(".", 2)
    if not text or len(parts) != 3:
        return False
    if "+" in parts[2]:
        parts[2], metadata = parts[2].split("+", 1)
        if any(not p or not set(p) <= allowed for p in metadata.split(".")):
            return False
    if "-" in parts[2]:
        parts[2], pre = parts[2].split("-", 1)
        for p in pre.split("."):
            if not p or not set(p) <= allowed or (p.isdigit() and len(p) > 1 and p[0] == "0"):
                return False
    return all(p.isdigit() and p.isascii() and not (len(p) > 1 and p[0] == "0") for p in parts)


@given(st.from_regex(r"v?[0-9a.+-]{0,14}", fullmatch=True) | st.sampled_from(NOT_STRICT + STRICT))
def test_strict_versions_are_exactly_those_kargo_and_masterminds_accept(tag: str) -> None:
    assert (strict_version_key(tag) is not None) == masterminds_strict(tag)


@given(
    releases=st.lists(st.from_regex(r"[1-9]?[0-9]\.[1-9]?[0-9]\.[1-9]?[0-9]", fullmatch=True), min_size=1),
    numbers=st.lists(st.from_regex(r"[0-9]{1,9}", fullmatch=True)),
    range_=st.sampled_from([None, "*", ">=0.0.0", ">=1.0.0 || <1.0.0"]),
)
def test_digits_alone_never_win_under_any_open_range(
    releases: list[str], numbers: list[str], range_: str | None
) -> None:
    chosen = select_tag(releases + numbers, TagRule("semver", semver=range_))
    assert chosen in releases


def test_the_config_defaults_to_strict_and_semver_strict_false_opts_out() -> None:
    text = """\
version: 1
warehouses:
  shop:
    images:
      - {image: ghcr.io/acme/web, semver: ">=1.0.0"}
      - {image: ghcr.io/acme/api, semver: ">=1.0.0", semver_strict: false}
stages:
  dev: {from: {warehouse: shop}, update: [{kustomize: overlays/dev}]}
"""
    rules = dict(image_rules(load_config(text).warehouses["shop"]))
    assert rules["ghcr.io/acme/web"].strict is True
    assert rules["ghcr.io/acme/api"].strict is False
    assert select_tag(["2.3.0", "40213377"], rules["ghcr.io/acme/web"]) == "2.3.0"


def test_semver_strict_on_a_rule_that_is_not_semver_is_refused_where_it_is_written() -> None:
    text = """\
version: 1
warehouses:
  shop:
    images:
      - image: ghcr.io/acme/web
        numeric: true
        semver_strict: false
stages:
  dev: {from: {warehouse: shop}, update: [{kustomize: overlays/dev}]}
"""
    with pytest.raises(ConfigError) as caught:
        load_config(text)
    [problem] = caught.value.problems
    assert (problem.line, problem.field) == (7, "warehouses.shop.images[0].semver_strict")
    assert (
        problem.message
        == "semver_strict applies to semver rules; this image uses numeric: remove semver_strict"
    )


# --- 6. calendar versions without zero padding ----------------------------------------------------

CALVER = r"^v(?P<date>\d+-\d+-\d+)(?:-(?P<build>\d+))?$"
CALVER_TAGS = [
    "v2026-1-30",
    "v2026-9-01",
    "v2026-12-25",
    "v2026-12-25-2",
    "v2026-12-25-10",
    "v2025-12-31-99",
    "v2026-10-03",
    "latest",
    "sha-3f2a1b",
]


@pytest.mark.parametrize(
    ("tags", "chosen"),
    [
        (["v2026-1-30", "v2026-09-01"], "v2026-09-01"),
        (["v2026-01-30-2", "v2026-01-30-10"], "v2026-01-30-10"),
        (["v2026-9-01", "v2026-10-03", "v2026-11-04", "v2026-12-25"], "v2026-12-25"),
        (["v2026-1-30", "v2026-1-30-2"], "v2026-1-30-2"),
        (["v2025-12-31-99", "v2026-1-1"], "v2026-1-1"),
        (CALVER_TAGS, "v2026-12-25-10"),
    ],
)
def test_calendar_versions_are_compared_field_by_field_as_numbers(tags: list[str], chosen: str) -> None:
    assert select_tag(tags, TagRule("numeric", allow=CALVER)) == chosen


def test_calendar_fields_may_also_be_groups_of_their_own() -> None:
    rule = TagRule("numeric", allow=r"^v(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:-(?P<n>\d+))?$")
    assert rank_tags(CALVER_TAGS, rule)[:4] == [
        "v2026-12-25-10",
        "v2026-12-25-2",
        "v2026-12-25",
        "v2026-10-03",
    ]


def test_lexical_order_fails_on_calendar_versions_as_the_docs_say() -> None:
    assert select_tag(["v2026-9-01", "v2026-12-25"], TagRule("lexical")) == "v2026-9-01"
    assert select_tag(["v2026-12-25-2", "v2026-12-25-10"], TagRule("lexical")) == "v2026-12-25-2"
    with pytest.raises(SelectionError, match="3 not versions"):
        select_tag(["v2026-9-01", "v2026-12-25", "v2026-1-30"], TagRule("semver"))


def test_a_group_holding_something_other_than_numbers_drops_the_tag() -> None:
    rule = TagRule("numeric", allow=r"^(?P<version>[^-]+)-(?P<build>\w+)$")
    assert rank_tags(["1.2.3-7", "1.2.3-x7", "1.10.0-1", "a.b-1"], rule) == ["1.10.0-1", "1.2.3-7"]


@given(
    dates=st.lists(
        st.tuples(
            st.integers(2000, 2100),
            st.integers(1, 12),
            st.integers(1, 31),
            st.one_of(st.none(), st.integers(0, 200)),
        ),
        min_size=1,
        unique=True,
    ),
    padded=st.booleans(),
)
def test_calendar_selection_agrees_with_comparing_the_dates(
    dates: list[tuple[int, int, int, int | None]], padded: bool
) -> None:
    def tag(y: int, m: int, d: int, n: int | None) -> str:
        text = f"v{y}-{m:02d}-{d:02d}" if padded else f"v{y}-{m}-{d}"
        return text + (f"-{n}" if n is not None else "")

    newest = max(dates, key=lambda date: (*date[:3], -1 if date[3] is None else date[3]))
    assert select_tag([tag(*date) for date in dates], TagRule("numeric", allow=CALVER)) == tag(*newest)


# --- 7. prereleases with a number inside one identifier -------------------------------------------

DEV = ["1.4.0", "1.4.0-dev-9", "1.4.0-dev-12", "1.3.9-dev-40"]
DEV_WORKAROUND = TagRule("numeric", allow=r"^(?P<version>\d+\.\d+\.\d+)-dev-(?P<build>\d+)$")


def test_semver_orders_dev_9_above_dev_12_as_the_docs_warn() -> None:
    assert rank_tags(DEV, TagRule("semver", prerelease=True)) == [
        "1.4.0",
        "1.4.0-dev-9",
        "1.4.0-dev-12",
        "1.3.9-dev-40",
    ]
    assert select_tag(["1.4.0-dev-9", "1.4.0-dev-12"], TagRule("semver", prerelease=True)) == "1.4.0-dev-9"


def test_the_documented_workaround_orders_builds_by_number() -> None:
    assert select_tag(DEV, DEV_WORKAROUND) == "1.4.0-dev-12"


def test_the_documented_workaround_moves_on_when_a_newer_base_version_exists() -> None:
    assert select_tag([*DEV, "1.5.0-dev-3"], DEV_WORKAROUND) == "1.5.0-dev-3"
    assert select_tag([*DEV, "1.10.0-dev-1", "1.9.0-dev-99"], DEV_WORKAROUND) == "1.10.0-dev-1"
    pinned = TagRule("numeric", allow=r"^1\.4\.0-dev-(?P<version>\d+)$")  # the narrower form the docs warn of
    assert select_tag([*DEV, "1.5.0-dev-3"], pinned) == "1.4.0-dev-12"


def test_the_rc_workaround_of_the_docs_moves_on_to_the_next_release_candidate() -> None:
    rule = TagRule("numeric", allow=r"^v(?P<version>\d+\.\d+\.\d+)-rc(?P<rc>\d+)$")
    assert select_tag(["v2.10.0-rc9", "v2.10.0-rc10"], rule) == "v2.10.0-rc10"
    assert select_tag(["v2.10.0-rc9", "v2.10.0-rc10", "v2.11.0-rc1"], rule) == "v2.11.0-rc1"


@given(
    builds=st.lists(
        st.tuples(st.integers(0, 3), st.integers(0, 12), st.integers(0, 3), st.integers(0, 300)),
        min_size=1,
        unique=True,
    ),
)
def test_the_workaround_always_picks_the_highest_base_then_the_highest_build(
    builds: list[tuple[int, int, int, int]],
) -> None:
    tags = [f"{a}.{b}.{c}-dev-{n}" for a, b, c, n in builds]
    a, b, c, n = max(builds)
    assert select_tag(tags, DEV_WORKAROUND) == f"{a}.{b}.{c}-dev-{n}"


def test_the_fast_path_and_the_explanation_agree_for_grouped_rules() -> None:
    tags = [*CALVER_TAGS, *DEV, "1.5.0-dev-3", "v2026-x-1"]
    for rule in (TagRule("numeric", allow=CALVER), DEV_WORKAROUND, TagRule("semver", strict=False)):
        classify = compile_rule(rule).classify
        assert set(rank_tags(tags, rule)) == {tag for tag in tags if classify(tag)[1] is None}


def test_numeric_groups_keep_go_style_named_groups_from_kargo() -> None:
    rule = TagRule("numeric", allow=r"^v(?<date>\d+-\d+-\d+)(?:-(?<build>\d+))?$")
    assert select_tag(CALVER_TAGS, rule) == "v2026-12-25-10"
    assert re.compile(compile_rule(rule).allow.pattern).groupindex == {"date": 1, "build": 2}  # type: ignore[union-attr]
