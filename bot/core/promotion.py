"""Promotion naming and text: branch names, labels, commit trailers, PR titles and bodies.

These are Ferry's markers on GitHub: a later pass (or another replica) finds its earlier work by
them instead of duplicating it, and people read history with plain ``git log``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.core.freight import Freight, FreightImage

BRANCH_PREFIX = "ferry/"
LABEL_FERRY = "ferry"
LABEL_STAGE_PREFIX = "stage:"
LABEL_ROLLBACK = "rollback"
MARKER_REQUESTED_BY = "by"  # marker field: the login of the person whose command opened the PR
MARKER_ROLLBACK = (
    "rollback"  # marker field: "1" on rollback PRs (a label could be added by anyone with triage)
)
TRAILER_STAGE = "Ferry-Stage"
TRAILER_FREIGHT = "Ferry-Freight"
TRAILER_IMAGE = "Ferry-Image"
TRAILER_WAREHOUSE = "Ferry-Warehouse"
MARKER_RE = re.compile(r"<!--\s*ferry:promotion\s+(?P<fields>[^>]*?)\s*-->")
_TRAILER_RE = re.compile(r"^(?P<key>[A-Za-z][A-Za-z0-9-]*):\s*(?P<value>.+?)\s*$")
_BRANCH_RE = re.compile(r"^ferry/(?P<stage>[A-Za-z0-9_.-]+)/(?P<freight>[0-9a-f]{12})$")


def branch_name(stage: str, freight_id: str) -> str:
    return f"{BRANCH_PREFIX}{stage}/{freight_id}"


def parse_branch(name: str) -> tuple[str, str] | None:
    """``ferry/prod/0123456789ab`` -> (``prod``, ``0123456789ab``); None for other branches."""
    match = _BRANCH_RE.match(name)
    return (match["stage"], match["freight"]) if match else None


def stage_label(stage: str) -> str:
    return f"{LABEL_STAGE_PREFIX}{stage}"


def promotion_title(stage: str, freight: Freight) -> str:
    return f"Promote {freight.label} to {stage}"


def rollback_title(stage: str, freight: Freight) -> str:
    return f"Roll back {stage} to {freight.label}"


def declined_comment(stage: str, freight: Freight) -> str:
    """Ferry's word under a promotion a person closed unmerged: the refusal stands; how to ask again."""
    return (
        f"Closed without merging, so Ferry will not open this promotion of {freight.label} to `{stage}` "
        f"again. To ask for it after all, comment `/promote {stage} {freight.id}`; `/promote {stage}` asks "
        "for the newest freight that may go there."
    )


def declined_marker(branch: str) -> str:
    return f"<!-- ferry:declined:{branch} -->"


def image_trailer(image: FreightImage) -> str:
    return str(image.ref)


def commit_message(stage: str, freight: Freight, *, reason: str = "") -> str:
    lines = [promotion_title(stage, freight), ""]
    if reason:
        lines += [reason, ""]
    lines.append(f"{TRAILER_STAGE}: {stage}")
    lines.append(f"{TRAILER_WAREHOUSE}: {freight.warehouse}")
    lines.append(f"{TRAILER_FREIGHT}: {freight.id}")
    lines += [f"{TRAILER_IMAGE}: {image_trailer(i)}" for i in freight.images]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Trailers:
    stage: str | None
    freight_id: str | None
    warehouse: str | None
    images: tuple[str, ...]


def parse_trailers(message: str) -> Trailers:
    """Read Ferry's trailers from the last paragraph of a commit message (squash merges keep them)."""
    values: dict[str, list[str]] = {}
    for line in message.splitlines():
        match = _TRAILER_RE.match(line.strip())
        if match and match["key"].startswith("Ferry-"):
            values.setdefault(match["key"], []).append(match["value"])

    def first(key: str) -> str | None:
        found = values.get(key)
        return found[-1] if found else None

    return Trailers(
        stage=first(TRAILER_STAGE),
        freight_id=first(TRAILER_FREIGHT),
        warehouse=first(TRAILER_WAREHOUSE),
        images=tuple(values.get(TRAILER_IMAGE, ())),
    )


def render_marker(fields: Mapping[str, str]) -> str:
    """A hidden marker in a PR body; values must not contain spaces or ``>``."""
    body = " ".join(f"{key}={value}" for key, value in sorted(fields.items()))
    return f"<!-- ferry:promotion {body} -->"


def parse_marker(body: str | None) -> dict[str, str]:
    if not body:
        return {}
    match = MARKER_RE.search(body)
    if not match:
        return {}
    fields: dict[str, str] = {}
    for pair in match["fields"].split():
        key, sep, value = pair.partition("=")
        if sep:
            fields[key] = value
    return fields


def _short_digest(digest: str | None) -> str:
    return f"`{digest[:19]}…`" if digest else "—"


@dataclass(frozen=True)
class BodyParts:
    """What a promotion PR body says, as plain values."""

    stage: str
    freight: Freight
    previous_tags: Mapping[str, str | None]  # normalised image -> tag the stage runs now
    verified_in: Sequence[str]  # upstream stages where this freight is verified ("" for a warehouse)
    source: str  # "warehouse web" or "stage staging"
    gate: str  # the gate in words
    requested_by: str = ""  # "@alice in <link>" when a person asked for it
    marker: Mapping[str, str] | None = None


def promotion_body(parts: BodyParts) -> str:
    rows = []
    for image in parts.freight.images:
        before = parts.previous_tags.get(image.image) or "(none)"
        after = image.tag
        change = f"`{before}` → `{after}`" if before != after else f"`{after}` (unchanged)"
        rows.append(f"| `{image.ref.familiar}` | {change} | {_short_digest(image.digest)} |")
    verified = ", ".join(f"`{s}`" for s in parts.verified_in) if parts.verified_in else "—"
    lines = [
        f"Ferry promotes freight `{parts.freight.id}` from {parts.source} to **{parts.stage}**.",
        "",
        "| image | from → to | digest |",
        "| --- | --- | --- |",
        *rows,
        "",
        f"**Verified upstream in:** {verified}",
        f"**Gate:** {parts.gate}",
    ]
    if parts.requested_by:
        lines += ["", f"Requested by {parts.requested_by}."]
    lines += [
        "",
        "Merging this pull request is the approval: Ferry then syncs "
        f"`{parts.stage}` to the merge commit and reports its health as the "
        f"`ferry/health/{parts.stage}` status.",
        "",
        "<details><summary>How to roll back</summary>",
        "",
        f"Comment `/rollback {parts.stage}` on any issue or pull request to return `{parts.stage}` to the "
        "freight it ran before, or revert the merge commit of this pull request.",
        "</details>",
    ]
    if parts.marker:
        lines += ["", render_marker(parts.marker)]
    return "\n".join(lines) + "\n"
