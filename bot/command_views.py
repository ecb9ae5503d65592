"""What comment commands read and show, pure: the freight ``/promote`` may move, and the ``/status`` page.

Belongs here: choosing a freight (with digests) for ``/promote`` from a snapshot, saying which upstream
stage has not verified it and since when, and rendering every stage as a table and a Mermaid diagram.
The grammar and permission rules are ``bot.commands``; the I/O is ``bot.command_runner``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.commands import Selector, pick, unique
from bot.core.approvals import unapproved
from bot.core.config import StagesSource, WarehouseSource
from bot.core.decide import held_out
from bot.core.dora import TABLE_HEADER, RepoFigures, table_rows
from bot.core.drift import is_drift
from bot.core.freight import Freight
from bot.core.gates import health_context, verification, verified_upstream_freight_id
from bot.core.history import failed_last, known_freight, orphaned_environments, verified_in
from bot.core.pipeline import stage_order, upstream_stages
from bot.core.snapshot import Snapshot
from bot.core.stage_view import StageView, stage_view

NO_WAREHOUSE_FREIGHT = "warehouse `{warehouse}` has no freight yet{why}"
NOTHING_VERIFIED = "no freight is verified in every stage upstream of `{stage}`: {waits}"
NOT_VERIFIED = "{label} (`{id}`) is not verified in every stage upstream of `{stage}`: {waits}"
FAILED_HERE = (
    "{label} (`{id}`) failed verification in `{stage}` at {when}, so Ferry keeps it out; to bring it back "
    "anyway, a promoter comments `/promote {stage} {id} --reason <why>`"
)
NO_SUCH_FREIGHT = "no freight Ferry knows matches {selector}; known: {known}"
WAIT_NOT_RUNNING = "`{stage}` does not run it (it runs {running})"
WAIT_FAILED = "`{stage}` failed to verify it: {why}"
WAIT_PENDING = "`{stage}` is still verifying it, pending since {since}"
ORPHANED = (
    "- History under GitHub environment **{environment}** belongs to no stage now (renamed or removed in "
    "`.github/ferry.yml`): it stays there on GitHub, and gates and rollbacks no longer read it"
)
STATUS_TITLE = "**Ferry status of {repo}** ({branch} at `{head}`)"
STATUS_HEADER = "| stage | freight | images | verdict | since | open PRs |"
DELIVERY_TITLE = (
    "**Delivery** (from the ledger of GitHub Deployments, read {at}; n/a: no data yet; median / p90 lead "
    "time from image pushed to verified)"
)
VERDICT_WORDS = {
    "success": "✅ verified",
    "pending": "⏳ verifying",
    "failure": "❌ failed",
    "none": "— none",
}
# (fill, stroke) per verdict: GitHub's Primer success/attention/danger/neutral colours, so a stage looks
# the same in /status's diagram, on the status page and next to GitHub's own checks.
VERDICT_COLOURS = {
    "success": ("#dafbe1", "#1a7f37"),
    "pending": ("#fff8c5", "#9a6700"),
    "failure": ("#ffebe9", "#cf222e"),
    "none": ("#f6f8fa", "#8c959f"),
}
VERDICT_STYLES = {state: f"fill:{fill},stroke:{stroke}" for state, (fill, stroke) in VERDICT_COLOURS.items()}


def when(moment: datetime | None, now: datetime) -> str:
    """``2026-11-26 14:02 UTC (12 min ago)``; ``an unknown time`` for None."""
    if moment is None:
        return "an unknown time"
    minutes = max(0, int((now - moment).total_seconds() // 60))
    ago = f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"
    return f"{moment:%Y-%m-%d %H:%M} UTC ({ago})"


def _since(view: StageView, now: datetime) -> str:
    if view.deploy is None:
        return "—"
    status = view.deploy.statuses.get(health_context(view.name))
    moment = (status.updated_at or status.created_at) if status else None
    return when(moment or view.deploy.committed_at, now)


def upstream_waits(
    snapshot: Snapshot, views: Mapping[str, StageView], stage: str, freight: Freight
) -> list[str]:
    """Each upstream stage where ``freight`` is not verified, and why; empty when the gate is open."""
    assert snapshot.config is not None
    waits = []
    for upstream in upstream_stages(snapshot.config, stage):
        view = views[upstream]
        if view.freight_id != freight.id and verified_in(snapshot.ledger or (), upstream, freight.id):
            continue  # verified there before upstream moved on (the freight ledger)
        if view.freight_id != freight.id:
            running = view.freight.label if view.freight else "freight Ferry did not promote"
            waits.append(WAIT_NOT_RUNNING.format(stage=upstream, running=running))
            continue
        verdict = verification(view, snapshot.config)
        if verdict.state == "failure":
            waits.append(WAIT_FAILED.format(stage=upstream, why=verdict.description))
        elif verdict.state != "success":
            waits.append(WAIT_PENDING.format(stage=upstream, since=_since(view, snapshot.now)))
    return waits


def promote_freight(
    snapshot: Snapshot, views: Mapping[str, StageView], stage: str, selector: Selector, reason: str = ""
) -> Freight | str:
    """The freight ``/promote`` moves ``stage`` to, with digests, or why there is none it may move.

    Freight whose newest verification in ``stage`` failed is moved back only with a ``reason`` (the
    audited way back in: the reason goes into the promotion's commit)."""
    found = _promote_freight(snapshot, views, stage, selector)
    failed = failed_last(snapshot.ledger or (), stage, found.id) if isinstance(found, Freight) else None
    if failed is not None and not reason.strip() and isinstance(found, Freight):
        return FAILED_HERE.format(
            label=found.label, id=found.id, stage=stage, when=when(failed.decided_at, snapshot.now)
        )
    return found


def _promote_freight(
    snapshot: Snapshot, views: Mapping[str, StageView], stage: str, selector: Selector
) -> Freight | str:
    assert snapshot.config is not None
    source = snapshot.config.stages[stage].source
    newest = snapshot.warehouse_freight.get(views[stage].warehouse)
    if selector.empty:
        if isinstance(source, WarehouseSource):
            if newest is not None:
                return newest
            error = snapshot.warehouse_errors.get(source.warehouse)
            return NO_WAREHOUSE_FREIGHT.format(warehouse=source.warehouse, why=f": {error}" if error else "")
        verified = verified_upstream_freight_id(stage, snapshot.config, views)
        ups = [views[u].freight for u in source.stages]
        chosen = next((f for f in ups if f is not None and f.id == verified), None)
        if chosen is None:
            waits = [w for f in unique(ups) for w in upstream_waits(snapshot, views, stage, f)]
            return NOTHING_VERIFIED.format(stage=stage, waits="; ".join(waits) or "none runs freight yet")
        return chosen
    upstream = [views[u].freight for u in source.stages] if isinstance(source, StagesSource) else []
    warehouse = views[stage].warehouse
    history = [f for f in known_freight(snapshot.ledger or ()) if f.warehouse == warehouse]
    candidates = unique([*upstream, newest, *(v.freight for v in views.values()), *history])
    chosen = pick(selector, candidates)
    if chosen is None:
        known = ", ".join(f"`{f.id}` ({f.label})" for f in candidates) or "none"
        return NO_SUCH_FREIGHT.format(selector=selector.describe(), known=known)
    waits = upstream_waits(snapshot, views, stage, chosen)
    if waits:
        return NOT_VERIFIED.format(label=chosen.label, id=chosen.id, stage=stage, waits="; ".join(waits))
    return chosen


# ---- /status --------------------------------------------------------------------------------------
def _node(name: str) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in name)


def _images(view: StageView) -> str:
    return ", ".join(f"{image.rsplit('/', 1)[-1]} `{tag}`" for image, tag in sorted(view.tags.items())) or "—"


def render_delivery(delivery: RepoFigures, now: datetime) -> list[str]:
    """The delivery figures (``bot.core.dora``) as a Markdown table: one row per stage and window."""
    rows = [
        DELIVERY_TITLE.format(at=when(delivery.computed_at, now)),
        "",
        "| " + " | ".join(TABLE_HEADER) + " |",
        "| --- " * len(TABLE_HEADER) + "|",
    ]
    rows += ["| " + " | ".join(row) + " |" for row in table_rows(delivery.figures)]
    return rows


@dataclass(frozen=True)
class Declined:
    """A promotion Ferry would open but does not: a person closed its pull request unmerged."""

    stage: str
    freight: Freight
    number: int
    url: str


HELD_TITLE = "**Held out of auto-promotion** (its newest verification there failed):"
HELD_LINE = (
    "- **{stage}**: {label} (`{id}`) failed at {when} on `{sha}`; comment `/promote {stage} {id} --reason …` "
    "to try it again"
)
DECLINED_TITLE = "**Declined** (closed unmerged by a person; Ferry does not open them again):"
DECLINED_LINE = (
    "- **{stage}**: [#{number}]({url}) {label} (`{id}`); comment `/promote {stage}` to ask for the newest "
    "freight that may go there, or `/promote {stage} {id}` for this one"
)


def render_status(
    snapshot: Snapshot, delivery: RepoFigures | None = None, declined: Sequence[Declined] = ()
) -> str:
    """Every stage as a table row, the promotions people declined and how to ask again, then the pipeline
    as a Mermaid diagram coloured by verdict, then the delivery figures when the ledger was read."""
    config = snapshot.config
    assert config is not None
    rows = [STATUS_HEADER, "| --- " * 6 + "|"]
    diagram = ["```mermaid", "graph LR"]
    for warehouse in config.warehouses:
        diagram.append(f'  {_node("w_" + warehouse)}[("{warehouse}")]')
    states: dict[str, list[str]] = {}
    drifts: list[str] = []  # verified stages whose apps no longer run their deploy commit
    views = {name: stage_view(snapshot, name) for name in stage_order(config)}
    held: list[str] = []  # freight auto-promotion keeps out of a stage where it failed
    for name, view in views.items():
        kept = held_out(snapshot, views, name)
        if kept is not None:
            kept_out, failed = kept
            moment = when(failed.decided_at or failed.created_at, snapshot.now)
            line = HELD_LINE.format(
                stage=name, label=kept_out.label, id=kept_out.id, when=moment, sha=failed.sha[:7]
            )
            held.append(line)
        state: str = verification(view, config).state
        health = view.deploy.statuses.get(health_context(name)) if view.deploy else None
        unheard = health is not None and unapproved(health.description)  # merged without approval
        if health is not None and health.state == "failure" and (is_drift(health.description) or unheard):
            drifts.append(f"- **{name}** {health.description}")
        states.setdefault(state, []).append(_node(name))
        prs = ", ".join(f"[#{pr.number}]({pr.url})" for pr in snapshot.open_prs if pr.stage == name) or "—"
        freight = f"`{view.freight_id}`" if view.freight_id else "—"
        rows.append(
            f"| {name} | {freight} | {_images(view)} | {VERDICT_WORDS[state]} | {_since(view, snapshot.now)} "
            f"| {prs} |"
        )
        source = config.stages[name].source
        feeds: Sequence[str] = (
            [_node("w_" + source.warehouse)]
            if isinstance(source, WarehouseSource)
            else [_node(s) for s in source.stages]
        )
        label = view.freight.label if view.freight else _images(view).replace("`", "")
        diagram.append(f'  {_node(name)}["{name}<br/>{label}"]')
        diagram += [f"  {feed} --> {_node(name)}" for feed in feeds]
    for state, nodes in states.items():
        diagram.append(f"  classDef {state} {VERDICT_STYLES[state]}")
        diagram.append(f"  class {','.join(nodes)} {state}")
    diagram.append("```")
    title = STATUS_TITLE.format(
        repo=snapshot.repo, branch=snapshot.default_branch, head=snapshot.head_sha[:7]
    )
    orphans = [
        ORPHANED.format(environment=name)
        for name in orphaned_environments(snapshot.ledger or (), config.stages)
    ]
    refused = [
        DECLINED_LINE.format(
            stage=d.stage, number=d.number, url=d.url, label=d.freight.label, id=d.freight.id
        )
        for d in declined
    ]
    notes = [*drifts, *orphans]
    blocks = [
        *([*notes, ""] if notes else []),
        *([HELD_TITLE, *held, ""] if held else []),
        *([DECLINED_TITLE, *refused, ""] if refused else []),
    ]
    figures = ["", *render_delivery(delivery, snapshot.now)] if delivery is not None else []
    return "\n".join([title, "", *rows, "", *blocks, *diagram, *figures])
