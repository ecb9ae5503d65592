"""Every form of a kustomize ``images:`` entry: read as kustomize renders it, bumped in its own form.

Renovate writes ``newTag: 2.4.0@sha256:…`` and ``newName: …/cart:2.4.0`` (renovatebot/renovate#11153,
kustomize#2234), and kustomize accepts both. Read as a plain tag, the first became ``2.5.0@None``;
with ``newTag`` appended, the second rendered ``cart:2.4.0:2.5.0``. The property test at the end
renders each entry the way kustomize does (``kustomize_render``, ported from kustomize's Go) before
and after a bump: the result is always ``<image>:<new tag>[@<new digest>]`` (``<image>@<new digest>``
for a digest-only entry), or Ferry refuses, saying how to write the entry.
"""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from kustomize_render import matches, render, split, valid
from ruamel.yaml import YAML

from bot.cli import main
from bot.core.images import normalise_name
from bot.core.manifest import ImageUpdate, bump_text, find_images
from bot.core.yaml_scalars import reads_as_non_string
from bot.errors import ManifestError

A = "sha256:" + "a1" * 32
B = "sha256:" + "b2" * 32
CART = "registry.example.com/shop/cart"


def entry_text(fields: str) -> str:
    return f"apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n{fields}"


def bumped(fields: str, tag: str = "2.5.0", digest: str | None = B, image: str = CART) -> str:
    return bump_text(entry_text(fields), [ImageUpdate(image, tag, digest)]).text.split("images:\n", 1)[1]


# --- 2. newTag carrying a digest ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "after"),
    [
        pytest.param(
            f"- name: {CART}\n  newTag: 2.4.0@{A}\n", f"- name: {CART}\n  newTag: 2.5.0@{B}\n", id="block"
        ),
        pytest.param(
            f"- name: {CART}\n  newTag: '2.4.0@{A}'  # pinned\n",
            f"- name: {CART}\n  newTag: '2.5.0@{B}'  # pinned\n",
            id="single-quoted, with a comment",
        ),
        pytest.param(
            f'- {{name: {CART}, newTag: "2.4.0@{A}"}}\n',
            f'- {{name: {CART}, newTag: "2.5.0@{B}"}}\n',
            id="flow",
        ),
        pytest.param(
            f"- name: cart\n  newName: {CART}\n  newTag: v2.4.0@{A}\n",
            f"- name: cart\n  newName: {CART}\n  newTag: 2.5.0@{B}\n",
            id="with newName",
        ),
    ],
)
def test_new_tag_carrying_a_digest_is_read_as_tag_and_digest_and_written_back_in_that_form(
    fields: str, after: str
) -> None:
    [occurrence] = find_images(entry_text(fields))
    tag = "v2.4.0" if "v2.4.0" in fields else "2.4.0"
    assert (occurrence.image, occurrence.tag, occurrence.digest) == (CART, tag, A)
    assert bumped(fields) == after
    assert "None" not in bumped(fields)


def test_new_tag_carrying_a_digest_refuses_a_bump_without_a_digest() -> None:
    with pytest.raises(
        ManifestError, match=rf"<text>:5: {CART} at images\[0\] pins a digest, but the update"
    ):
        bumped(f"- name: {CART}\n  newTag: 2.4.0@{A}\n", digest=None)


def test_new_tag_carrying_a_digest_beside_a_digest_field_is_refused_as_two_digests() -> None:
    with pytest.raises(
        ManifestError, match=r"<text>:5: images\[0\] carries a digest in newTag .* two digests"
    ):
        bumped(f"- name: {CART}\n  newTag: 2.4.0@{A}\n  digest: {A}\n")


# --- 3. newName carrying a tag or digest ----------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "found", "after"),
    [
        pytest.param(
            f"- name: cart\n  newName: {CART}:2.4.0\n",
            ("2.4.0", None),
            f"- name: cart\n  newName: {CART}:2.5.0\n",
            id="tag",
        ),
        pytest.param(
            f"- name: cart\n  newName: {CART}@{A}\n",
            (None, A),
            f"- name: cart\n  newName: {CART}@{B}\n",
            id="digest only stays digest only",
        ),
        pytest.param(
            f"- name: cart\n  newName: {CART}:2.4.0@{A}\n",
            ("2.4.0", A),
            f"- name: cart\n  newName: {CART}:2.5.0@{B}\n",
            id="tag and digest",
        ),
        pytest.param(
            f"- name: cart\n  newName: {CART}:2.4.0\n  digest: {A}\n",
            ("2.4.0", A),
            f"- name: cart\n  newName: {CART}:2.5.0\n  digest: {B}\n",
            id="tag, with a digest field",
        ),
        pytest.param(
            f'- {{name: cart, newName: "{CART}:2.4.0"}}\n',
            ("2.4.0", None),
            f'- {{name: cart, newName: "{CART}:2.5.0"}}\n',
            id="flow",
        ),
    ],
)
def test_new_name_carrying_a_tag_or_digest_is_updated_in_place(
    fields: str, found: tuple[str | None, str | None], after: str
) -> None:
    [occurrence] = find_images(entry_text(fields))
    assert (occurrence.image, occurrence.tag, occurrence.digest) == (CART, *found)
    assert bumped(fields) == after
    assert "newTag" not in after


def test_new_name_with_a_registry_port_and_a_tag_keeps_the_port() -> None:
    fields = "- name: cart\n  newName: registry.example.com:5000/shop/team/cart:2.4.0\n"
    after = bumped(fields, image="registry.example.com:5000/shop/team/cart", digest=None)
    assert after == "- name: cart\n  newName: registry.example.com:5000/shop/team/cart:2.5.0\n"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        pytest.param(
            f"- name: cart\n  newName: {CART}:2.4.0\n  newTag: 2.4.1\n",
            rf"<text>:6: images\[0\] carries a tag in newName .* renders '{CART}:2.4.0:2.4.1', which is "
            rf"not an image reference. Write the name alone in newName \('{CART}'\) and the tag in newTag$",
            id="tag in newName and newTag",
        ),
        pytest.param(
            f"- name: cart\n  newName: {CART}@{A}\n  newTag: 2.4.1\n",
            rf"carries a digest in newName .* renders '{CART}@{A}:2.4.1'.* \(and the digest in digest\)$",
            id="digest in newName and newTag",
        ),
        pytest.param(
            f"- name: cart\n  newName: {CART}@{A}\n  digest: {A}\n",
            rf"sets digest too; kustomize renders '{CART}@{A}@{A}'",
            id="digest in newName and a digest field",
        ),
        pytest.param(
            f"- name: cart:1.0\n  newName: {CART}:2.4.0\n",
            rf"matches 'cart:1.0' .* renders '{CART}:2.4.0:1.0'",
            id="a tag in both name and newName",
        ),
    ],
)
def test_new_name_whose_tag_kustomize_would_join_to_another_is_refused_saying_how_to_write_it(
    fields: str, message: str
) -> None:
    for action in (find_images, lambda text: bumped(fields)):
        with pytest.raises(ManifestError, match=message):
            action(entry_text(fields))


def test_ferry_images_reports_a_tag_and_digest_held_in_new_name(
    tmp_path: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "kustomization.yaml"  # type: ignore[operator]
    path.write_text(
        entry_text(f"- name: cart\n  newName: {CART}:2.4.0@{A}\n- name: web\n  newTag: 1.0@{B}\n")
    )
    assert main(["images", "--json", str(path)]) == 0
    listed = [(o["image"], o["tag"], o["digest"], o["line"]) for o in json.loads(capsys.readouterr().out)]
    assert listed == [(CART, "2.4.0", A, 5), ("docker.io/library/web", "1.0", B, 7)]


@pytest.mark.parametrize(
    ("name", "found", "after"),
    [
        pytest.param(f"{CART}:1.0", ("1.0", None), "  newTag: 2.5.0\n", id="tag"),
        pytest.param(f"{CART}@{A}", (None, A), f"  digest: {B}\n", id="digest"),
        pytest.param(f"{CART}:1.0@{A}", ("1.0", A), f"  newTag: 2.5.0@{B}\n", id="tag and digest"),
    ],
)
def test_a_name_carrying_a_tag_or_digest_is_what_kustomize_keeps_until_the_entry_sets_one(
    name: str, found: tuple[str | None, str | None], after: str
) -> None:
    fields = f"- name: {name}\n"
    [occurrence] = find_images(entry_text(fields))
    assert (occurrence.image, occurrence.tag, occurrence.digest) == (CART, *found)
    assert bumped(fields) == fields + after


# --- 4. every form, rendered as kustomize renders it ----------------------------------------------

NAMES = [
    "cart",
    "acme/cart",
    "registry.example.com/shop/cart",
    "registry.example.com:5000/shop/team/cart",
    "localhost:5000/cart",
    "ghcr.io/acme/cart-api",
]
tags = st.one_of(
    st.sampled_from(["1.0", "2.4.0", "v2.4.0", "1.10", "2024-01-01", "latest", "123", "on"]),
    st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}", fullmatch=True),
)
digests = st.from_regex(r"sha256:[0-9a-f]{64}", fullmatch=True)
suffixes = st.sampled_from(["", "tag", "digest", "tag+digest"])


@st.composite
def reference(draw: st.DrawFn, name: str) -> str:
    """``name`` with a tag and/or digest, as a field of the entry may carry them."""
    kind = draw(suffixes)
    text = name
    if "tag" in kind:
        text += f":{draw(tags)}"
    if "digest" in kind:
        text += f"@{draw(digests)}"
    return text


@st.composite
def entries(draw: st.DrawFn) -> dict[str, str]:
    entry = {"name": draw(reference(draw(st.sampled_from(NAMES))))}
    if draw(st.booleans()):
        entry["newName"] = draw(reference(draw(st.sampled_from(NAMES))))
    new_tag = draw(st.sampled_from(["none", "tag", "tag@digest", "empty"]))
    if new_tag == "tag":
        entry["newTag"] = draw(tags)
    elif new_tag == "tag@digest":
        entry["newTag"] = f"{draw(tags)}@{draw(digests)}"
    elif new_tag == "empty":
        entry["newTag"] = ""
    if draw(st.booleans()):
        entry["digest"] = draw(digests)
    return entry


def scalar(value: str, style: str, *, flow: bool) -> str:
    if style == "" and (reads_as_non_string(value) or (flow and ":" in value) or value.startswith("@")):
        style = '"'
    return f"{style}{value}{style}"


@st.composite
def kustomizations(draw: st.DrawFn) -> tuple[str, dict[str, str]]:
    entry = draw(entries())
    flow = draw(st.booleans())
    style = draw(st.sampled_from(["", "'", '"']))
    pairs = [(key, scalar(value, style, flow=flow)) for key, value in entry.items()]
    if flow:
        body = "- {" + ", ".join(f"{key}: {value}" for key, value in pairs) + "}\n"
    else:
        body = "".join(f"{'- ' if n == 0 else '  '}{key}: {value}\n" for n, (key, value) in enumerate(pairs))
    other = "- name: unrelated/side-car\n  newTag: '9'\n"
    return entry_text(other + body if draw(st.booleans()) else body + other), entry


def the_entry(text: str, name: str) -> dict[str, str]:
    """The entry as kustomize reads it (types.Image: every field a string)."""
    document = YAML(typ="safe", pure=True).load(io.StringIO(text))
    [entry] = [e for e in document["images"] if e["name"] == name]
    assert all(isinstance(value, str) for value in entry.values()), entry
    return {key: value for key, value in entry.items() if value}


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=kustomizations(), new_tag=tags, new_digest=st.one_of(st.none(), digests))
@example(file=(entry_text(f"- name: cart\n  newTag: 2.4.0@{A}\n"), {"name": "cart", "newTag": f"2.4.0@{A}"}),
         new_tag="2.5.0", new_digest=None)  # fmt: skip
def test_after_a_bump_kustomize_renders_exactly_the_new_tag_and_digest(
    file: tuple[str, dict[str, str]], new_tag: str, new_digest: str | None
) -> None:
    text, entry = file
    resource = entry["name"]  # resources spell the image as the entry's name: that is what it matches
    assert matches(resource, entry["name"])
    before = render(entry, resource)
    name, tag, digest = split(before)
    if not valid(before):  # an entry whose parts kustomize joins wrongly: refused, saying how to write it
        event("refused: kustomize would render an invalid reference")
        with pytest.raises(ManifestError, match=r"images\[\d\] .*(Write|Keep one)"):
            find_images(text)
        return
    image = normalise_name(name)
    [occurrence] = [o for o in find_images(text) if o.image == image]
    assert (occurrence.tag, occurrence.digest) == (tag or None, digest or None), before
    update = ImageUpdate(image, new_tag, new_digest)
    if digest and new_digest is None:
        event("refused: a pinned digest and an update without one")
        with pytest.raises(ManifestError, match="pins a digest, but the update for it has none"):
            bump_text(text, [update])
        return
    after = render(the_entry(bump_text(text, [update]).text, entry["name"]), resource)
    tag_kept = bool(tag) or not digest  # a digest-only entry stays digest-only
    event("bumped: " + ("tag and digest" if tag and digest else "digest only" if digest else "tag"))
    assert after == name + (f":{new_tag}" if tag_kept else "") + (f"@{new_digest}" if digest else ""), before
    assert valid(after)
