"""Property tests: random documents holding images in the three shapes, bumped byte-exactly.

A document is generated from pieces (text, and tag slots with a quoting style). After a bump, the
result must equal the same document regenerated with the new tag in exactly the matched slots
(quoted as the rules say), so every other byte is unchanged; and re-parsing must read the new
tag, as a string, at exactly those places.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from bot.core.images import normalise_name
from bot.core.manifest import ImageUpdate, bump_text, find_images
from bot.core.yaml_scalars import reads_as_non_string

IMAGES = ["ghcr.io/acme/web", "nginx", "docker.io/library/nginx", "localhost:5000/api", "quay.io/org/worker"]
TRICKY_TAGS = ["1.0.0", "v2", "latest", "1.10", "2024-01-01", "yes", "on", "0123", "08", "1e3", "123", "true"]
TRICKY_TAGS += ["1_000", "0o17", "0x1F", "1.0e-3", "y", "No", "OFF", "Null", "5e3"]
tags = st.one_of(
    st.sampled_from(TRICKY_TAGS), st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,15}", fullmatch=True)
)
styles = st.sampled_from(["", "'", '"'])
comments = st.sampled_from(["", "  # pinned", " #c", "   # Ferry: é"])


@dataclass(frozen=True)
class TagSlot:
    """A tag written in a quoting style; ``prefix`` is the image name for whole references."""

    image: str
    tag: str
    style: str
    prefix: str = ""

    def render(self, tag: str | None = None) -> str:
        if tag == self.tag:
            tag = None  # already there: the scalar is not touched, even if written plain as 1.10
        value = self.prefix + (self.tag if tag is None else tag)
        if self.style == "" and tag is not None and reads_as_non_string(value):
            return f'"{value}"'  # the rule under test: a plain value that would not read as a string
        return f"{self.style}{value}{self.style}"


Line = tuple[str | TagSlot, ...]


def flow_safe(name: str) -> str:
    """libyaml reads `a:b` inside braces as a key; users quote such names there."""
    return f'"{name}"' if ":" in name else name


@st.composite
def tag_slot(draw: st.DrawFn, *, reference: bool = False, flow: bool = False) -> TagSlot:
    image = draw(st.sampled_from(IMAGES))
    style = draw(styles)
    if reference and flow and style == "":
        style = '"'  # libyaml reads a plain `a:b` inside braces as a key; users quote there too
    old = draw(tags)
    if style == "" and reads_as_non_string(old) and reference is False:
        old = draw(st.sampled_from(["1.10", "123", "1.0.0"]))  # plain numbers stay legal old values
    return TagSlot(image, old, style, prefix=f"{image}:" if reference else "")


@st.composite
def helm_block(draw: st.DrawFn, key: str) -> list[Line]:
    slot = draw(tag_slot())
    first, _, rest = slot.image.partition("/")
    registry, repository = (first, rest) if "." in first or ":" in first else ("", slot.image)
    comment = draw(comments)
    if draw(st.booleans()):
        fields = f"registry: {flow_safe(registry)}, " if registry else ""
        return [(f"{key}: {{image: {{{fields}repository: {repository}, tag: ", slot, "}}" + comment)]
    lines: list[Line] = [(f"{key}:",), ("  image:",)]
    if registry:
        lines.append((f"    registry: {registry}",))
    return [
        *lines,
        (f"    repository: {repository}",),
        ("    tag: ", slot, comment),
        ("    pullPolicy: Always",),
    ]


@st.composite
def reference_block(draw: st.DrawFn, key: str) -> list[Line]:
    if draw(st.booleans()):
        slot = draw(tag_slot(reference=True, flow=True))
        return [(f"{key}: [{{name: c, image: ", slot, "}]" + draw(comments))]
    slot = draw(tag_slot(reference=True))
    return [(f"{key}:",), ("  containers:",), ("    - name: c",), ("      image: ", slot, draw(comments))]


@st.composite
def kustomize_block(draw: st.DrawFn) -> list[Line]:
    lines: list[Line] = [("images:",)]
    for number in range(draw(st.integers(1, 3))):
        slot = draw(tag_slot(flow=True))
        renamed = draw(st.booleans())
        name = f"placeholder{number}" if renamed else slot.image
        new_name = f", newName: {flow_safe(slot.image)}" if renamed else ""
        if draw(st.booleans()):
            lines.append((f"  - {{name: {flow_safe(name)}{new_name}, newTag: ", slot, "}" + draw(comments)))
        else:
            lines.append((f"  - name: {name}",))
            lines += [(f"    newName: {slot.image}",)] if renamed else []
            lines.append(("    newTag: ", slot, draw(comments)))
    return lines


@st.composite
def document(draw: st.DrawFn) -> list[Line]:
    pieces: list[Line] = []
    if draw(st.booleans()):
        pieces += draw(kustomize_block())
    for number in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["helm", "reference", "filler", "comment"]))
        key = f"b{number}"
        if kind == "helm":
            pieces += draw(helm_block(key))
        elif kind == "reference":
            pieces += draw(reference_block(key))
        elif kind == "filler":
            pieces += [(f"{key}: {draw(st.sampled_from(['1', 'text', '{a: 1}', '[x, y]', 'ghcr.io']))}",)]
        else:
            pieces += [("# " + draw(st.sampled_from(["note", "image: ghcr.io/acme/web:9.9.9", "ß"])),)]
    return pieces or [("empty: {}",)]


@dataclass(frozen=True)
class File:
    documents: list[list[Line]]
    newline: str
    final_newline: bool

    def render(self, image: str | None = None, new_tag: str = "") -> str:
        def part(piece: str | TagSlot) -> str:
            if isinstance(piece, str):
                return piece
            matched = image is not None and normalise_name(piece.image) == image
            return piece.render(new_tag if matched else None)

        body = "---\n".join(
            "".join("".join(map(part, line)) + "\n" for line in doc) for doc in self.documents
        )
        if not self.final_newline:
            body = body.removesuffix("\n")
        return body.replace("\n", self.newline)

    def slots(self) -> list[TagSlot]:
        return [
            piece for doc in self.documents for line in doc for piece in line if isinstance(piece, TagSlot)
        ]


files = st.builds(
    File,
    documents=st.lists(document(), min_size=1, max_size=3),
    newline=st.sampled_from(["\n", "\r\n"]),
    final_newline=st.booleans(),
)


def load_all(text: str, version: tuple[int, int]) -> list[object]:
    yaml = YAML(typ="safe", pure=True)
    yaml.version = version
    return list(yaml.load_all(io.StringIO(text)))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(file=files, data=st.data(), new_tag=tags)
def test_bump_changes_exactly_the_matched_tags_and_nothing_else(
    file: File, data: st.DataObject, new_tag: str
) -> None:
    slots = file.slots()
    if not slots:
        return
    chosen = normalise_name(data.draw(st.sampled_from([slot.image for slot in slots])))
    text = file.render()
    result = bump_text(text, [ImageUpdate(chosen, new_tag)])

    assert result.text == file.render(chosen, new_tag)

    before, after = find_images(text), find_images(result.text)
    assert [(o.image, o.line, o.kind, o.path) for o in before] == [
        (o.image, o.line, o.kind, o.path) for o in after
    ]
    for old, new in zip(before, after, strict=True):
        assert new.tag == (new_tag if old.image == chosen else old.tag)
    if any(old.image == chosen and old.tag != new_tag for old in before):
        assert result.changes
    else:
        assert result.text == text


@settings(max_examples=300, deadline=None)
@given(tag=tags)
def test_a_tag_written_plain_reads_back_as_a_string_in_yaml_1_1_and_1_2(tag: str) -> None:
    text = bump_text("image: {repository: web, tag: v0}\n", [ImageUpdate("web", tag)]).text
    for version in ((1, 1), (1, 2)):
        (data,) = load_all(text, version)
        assert data == {"image": {"repository": "web", "tag": tag}}, (version, text)
