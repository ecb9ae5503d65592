"""The status page's HTML, pure: a ``StatusView`` in, one self-contained document out.

No JavaScript: the pipeline is inline SVG (a wide left-to-right drawing, and a top-to-bottom one for
phones, switched by a media query), the page reloads itself with ``<meta http-equiv="refresh">``, and
every value from GitHub, Argo CD or the config goes through ``html.escape``. Links are kept only when
they are http(s): a commit status's target_url is written by anyone with write access to the repository.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import datetime
from typing import Final
from urllib.parse import urlsplit

from bot.command_views import VERDICT_COLOURS, when
from bot.core.dora import TABLE_HEADER
from bot.status_model import (
    Graph,
    GraphNode,
    ImageTag,
    Link,
    OpenPromotionView,
    Pipeline,
    StageCard,
    StatusView,
    Verdict,
    WarehouseCard,
)
from bot.status_view import NO_FREIGHT, WORDS

TITLE: Final = "Ferry status"
HISTORY_EMPTY: Final = (
    "No history yet: freight verified per stage over time will be listed here once Ferry records each "
    "verification as a GitHub Deployment."
)
DELIVERY_EMPTY: Final = "Delivery figures appear once Ferry has read this repository's ledger."
DELIVERY_NOTE: Final = (
    "From the ledger of GitHub Deployments; n/a: no data yet. Lead time: image pushed to verified in the "
    "stage (median / p90). Change failure rate: failed or rolled-back verifications / all."
)
NO_REPOSITORIES: Final = "The App is not installed on any repository yet."
NO_RECONCILER: Final = (
    "No reconciler is attached to this server: only webhooks, health and metrics are served."
)
WAREHOUSE_COLOURS: Final = ("#ddf4ff", "#0969da")  # Primer accent: a source, not a verdict

# Drawing sizes (SVG user units). Wide: left to right, one column per layer. Narrow: top to bottom.
_WIDE = {"w": 196, "h": 76, "gap_x": 44, "gap_y": 16}
_NARROW = {"w": 300, "h": 76, "gap_x": 16, "gap_y": 28}
_PAD = 8
_CHAR = 7.2  # average glyph width at 12px, to cut captions that would overflow their box


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def safe_url(url: str | None) -> str | None:
    """``url`` when it is an absolute http(s) address, else None (never a ``javascript:`` link)."""
    if not url:
        return None
    scheme = urlsplit(url.strip()).scheme.lower()
    return url if scheme in ("http", "https") else None


def link(item: Link | None, *, cls: str = "") -> str:
    if item is None:
        return "—"
    href = safe_url(item.url)
    attr = f' class="{cls}"' if cls else ""
    if href is None:
        return f"<span{attr}>{esc(item.text)}</span>"
    return f'<a{attr} href="{esc(href)}">{esc(item.text)}</a>'


def _time(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return "—"
    return f'<time datetime="{esc(moment.isoformat())}">{esc(when(moment, now))}</time>'


def _pill(state: str, words: str, *, title: str = "") -> str:
    attr = f' title="{esc(title)}"' if title else ""
    return f'<span class="pill st-{esc(state)}"{attr}>{esc(words)}</span>'


def _css() -> str:
    states = "".join(
        f".st-{state}{{--fill:{fill};--stroke:{stroke}}}" for state, (fill, stroke) in VERDICT_COLOURS.items()
    )
    fill, stroke = WAREHOUSE_COLOURS
    return (
        ":root{color-scheme:light;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0}"
        "*{box-sizing:border-box}"
        "body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;color:var(--fg);margin:0 auto;"
        "max-width:76rem;padding:1rem;overflow-wrap:anywhere}"
        "a{color:#0969da}h1{font-size:1.4rem;margin:0}h2{font-size:1.2rem;margin:0}h3{margin:0;font-size:1rem}"
        "header.top{display:flex;flex-wrap:wrap;gap:.25rem 1rem;align-items:baseline;margin-bottom:1rem}"
        ".muted{color:var(--muted);font-size:.875rem}"
        "section.repo{border-top:1px solid var(--line);padding-top:1rem;margin-top:1rem}"
        "code{font:.85em ui-monospace,SFMono-Regular,Menlo,monospace}"
        f"{states}.wh{{--fill:{fill};--stroke:{stroke}}}"
        ".pill{display:inline-block;padding:0 .5rem;border-radius:1rem;border:1px solid var(--stroke);"
        "background:var(--fill);font-size:.8rem;white-space:nowrap}"
        ".pill::before{content:'';display:inline-block;width:.55rem;height:.55rem;border-radius:50%;"
        "background:var(--stroke);margin-right:.3rem}"
        ".flag{font-size:.75rem;color:var(--muted);border:1px solid var(--line);border-radius:.25rem;"
        "padding:0 .3rem}"
        "figure.graph{margin:1rem 0}figure.graph svg{width:100%;height:auto;display:block}"
        "svg .node rect{fill:var(--fill);stroke:var(--stroke);stroke-width:2}"
        "svg text{font:600 14px system-ui,sans-serif;fill:var(--fg)}"
        "svg text.sub{font-weight:400;font-size:12px}"
        "svg path.edge{fill:none;stroke:#818b98;stroke-width:1.5}"
        "figure.graph svg.narrow{display:none;max-width:28rem;margin:0 auto}"
        "@media (max-width:40rem){figure.graph svg.wide{display:none}figure.graph svg.narrow{display:block}}"
        ".stages{display:grid;grid-template-columns:repeat(auto-fill,minmax(min(100%,20rem),1fr));gap:.75rem}"
        "article.stage{border:1px solid var(--line);border-top:6px solid var(--stroke);border-radius:.5rem;"
        "padding:.75rem;min-width:0}"
        "article.stage>header{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center;margin-bottom:.25rem}"
        "dl{display:grid;grid-template-columns:auto 1fr;gap:.2rem .75rem;margin:.5rem 0 0}"
        "dt{color:var(--muted);font-size:.85rem}dd{margin:0;min-width:0}"
        "ul.plain{list-style:none;padding:0;margin:0}ul.plain li{margin:.15rem 0}"
        "li.open-pr{background:#f6f8fa;border-radius:.375rem;padding:.25rem .5rem}"
        ".problems{background:#ffebe9;border:1px solid #cf222e;border-radius:.5rem;padding:.5rem 1rem}"
        "section.more{margin-top:1rem}section.more h3{margin-bottom:.25rem}"
        ".scroll{overflow-x:auto}table.delivery{border-collapse:collapse;font-size:.875rem}"
        "table.delivery th,table.delivery td{text-align:left;padding:.2rem .6rem;white-space:nowrap;"
        "border-bottom:1px solid var(--line)}"
        "footer{margin-top:2rem}"
    )


# ---- the graph --------------------------------------------------------------------------------------
def _cut(text: str, width: float) -> str:
    room = max(4, int((width - 16) / _CHAR))
    return text if len(text) <= room else text[: room - 1] + "…"


def _svg(graph: Graph, repo: str, *, narrow: bool) -> str:
    size = _NARROW if narrow else _WIDE
    w, h, gap_x, gap_y = size["w"], size["h"], size["gap_x"], size["gap_y"]
    spots: dict[str, tuple[float, float]] = {}
    for node in graph.nodes:
        # Narrow: layers go down the page, rows across; wide: layers across, rows down.
        col, line = (node.row, node.layer) if narrow else (node.layer, node.row)
        spots[node.id] = (_PAD + col * (w + gap_x), _PAD + line * (h + gap_y))
    cols, lines = (graph.rows, graph.layers) if narrow else (graph.layers, graph.rows)
    width = 2 * _PAD + cols * w + (cols - 1) * gap_x
    height = 2 * _PAD + lines * h + (lines - 1) * gap_y
    marker = f"arrow-{_slug(repo)}-{'n' if narrow else 'w'}"
    parts = [
        f'<svg class="{"narrow" if narrow else "wide"}" viewBox="0 0 {width:g} {height:g}" '
        f'style="max-width:{width:g}px" role="img" aria-label="{esc(_describe(graph))}">',
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse">'
        '<path d="M0 0L10 5L0 10z" fill="#818b98"/></marker></defs>',
    ]
    for source, target in graph.edges:
        if source not in spots or target not in spots:
            continue
        (x1, y1), (x2, y2) = spots[source], spots[target]
        if narrow:
            a, b = (x1 + w / 2, y1 + h), (x2 + w / 2, y2 - 2)
            mid = (a[1] + b[1]) / 2
            d = f"M{a[0]:g} {a[1]:g}C{a[0]:g} {mid:g} {b[0]:g} {mid:g} {b[0]:g} {b[1]:g}"
        else:
            a, b = (x1 + w, y1 + h / 2), (x2 - 2, y2 + h / 2)
            mid = (a[0] + b[0]) / 2
            d = f"M{a[0]:g} {a[1]:g}C{mid:g} {a[1]:g} {mid:g} {b[1]:g} {b[0]:g} {b[1]:g}"
        parts.append(f'<path class="edge" d="{d}" marker-end="url(#{marker})"/>')
    for node in graph.nodes:
        x, y = spots[node.id]
        parts.append(_svg_node(node, repo, (x, y, w, h)))
    parts.append("</svg>")
    return "".join(parts)


def _svg_node(node: GraphNode, repo: str, box: tuple[float, float, float, float]) -> str:
    x, y, w, h = box
    cls = "wh" if node.kind == "warehouse" else f"st-{node.state}"
    if node.kind == "warehouse":
        title, lines = f"warehouse {node.name}", ("newest", node.caption)
    else:
        title, lines = node.name, (" · ".join(filter(None, (WORDS[node.state], node.note))), node.caption)
    anchor = _anchor(repo, node.kind, node.name)
    return (
        f'<a href="#{esc(anchor)}"><g class="node {cls}" data-node="{esc(node.id)}">'
        f"<title>{esc(title)}: {esc(' · '.join(lines))}</title>"
        f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="8"/>'
        f'<text x="{x + 10:g}" y="{y + 22:g}">{esc(_cut(title, w))}</text>'
        f'<text class="sub" x="{x + 10:g}" y="{y + 43:g}">{esc(_cut(lines[0], w))}</text>'
        f'<text class="sub" x="{x + 10:g}" y="{y + 62:g}">{esc(_cut(lines[1], w))}</text></g></a>'
    )


def _describe(graph: Graph) -> str:
    return "pipeline: " + "; ".join(f"{a.split(':', 1)[1]} → {b.split(':', 1)[1]}" for a, b in graph.edges)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text)


def _anchor(repo: str, kind: str, name: str) -> str:
    return f"{_slug(repo)}--{kind}-{_slug(name)}"


# ---- stages -----------------------------------------------------------------------------------------
def _images(images: Iterable[ImageTag]) -> str:
    rows = [
        f'<li><span title="{esc(i.image)}">{esc(i.name)}</span> '
        f'<code class="tag"{_digest_title(i)}>{esc(i.tag or "no tag")}</code></li>'
        for i in images
    ]
    return f'<ul class="plain images">{"".join(rows)}</ul>' if rows else "—"


def _digest_title(image: ImageTag) -> str:
    return f' title="{esc(image.digest)}"' if image.digest else ""


def _open_pr(pr: OpenPromotionView) -> str:
    href = safe_url(pr.url)
    text = f"#{pr.number} {pr.title}"
    anchor = (
        f'<a class="pr" href="{esc(href)}">{esc(text)}</a>'
        if href
        else f'<span class="pr">{esc(text)}</span>'
    )
    gate = _pill(pr.gate, pr.gate_words, title=pr.gate_description)
    why = f'<div class="muted">{esc(pr.gate_description)}</div>' if pr.gate_description else ""
    return f'<li class="open-pr" data-gate="{esc(pr.gate)}">{anchor} {gate}{why}</li>'


def _verdict_line(verdict: Verdict, now: datetime) -> str:
    argocd = safe_url(verdict.argocd)
    argo = f' · <a class="argocd" href="{esc(argocd)}">Argo CD</a>' if argocd else ""
    return (
        f'<li data-stage="{esc(verdict.stage)}">{_pill(verdict.state, verdict.words)} '
        f"<b>{esc(verdict.stage)}</b> {_time(verdict.at, now)} on {link(verdict.commit, cls='commit')}{argo}"
        f'<div class="muted">{esc(verdict.description)}</div></li>'
    )


def _stage(card: StageCard, repo: str, now: datetime) -> str:
    verdict = card.verdict
    flags = [
        word for word, on in (("auto-promote", card.auto_promote), ("auto-merge", card.auto_merge)) if on
    ]
    freight = (
        f'<code class="freight-id">{esc(card.freight_id)}</code> {esc(card.freight_label)}'
        if card.freight_id
        else f'<span class="muted">{esc(NO_FREIGHT)}</span>'
    )
    via = f" via {link(card.promotion, cls='promotion')}" if card.promotion else ""
    since = (
        f"{_time(card.since, now)}<br>commit {link(card.deploy, cls='commit')}{via}" if card.deploy else "—"
    )
    apps = ", ".join(link(app, cls="app") for app in card.apps) or "—"
    prs = (
        f'<ul class="plain">{"".join(_open_pr(pr) for pr in card.open_prs)}</ul>' if card.open_prs else "none"
    )
    return (
        f'<article class="stage st-{esc(verdict.state)}" id="{esc(_anchor(repo, "stage", card.name))}" '
        f'data-stage="{esc(card.name)}" data-state="{esc(verdict.state)}">'
        f"<header><h3>{esc(card.name)}</h3>{_pill(verdict.state, verdict.words)}"
        f"{''.join(f' <span class=flag>{esc(f)}</span>' for f in flags)}</header>"
        f'<div class="muted verdict">{esc(verdict.description)}</div>'
        f"<dl><dt>Freight</dt><dd class=freight>{freight}</dd>"
        f"<dt>Images</dt><dd>{_images(card.images)}</dd>"
        f"<dt>Since</dt><dd>{since}</dd>"
        f"<dt>Argo CD</dt><dd>{apps}</dd>"
        f"<dt>Open PR</dt><dd>{prs}</dd></dl></article>"
    )


def _warehouse(house: WarehouseCard) -> str:
    freight = f"<code>{esc(house.freight_id)}</code> " if house.freight_id else ""
    error = f'<div class="muted">{esc(house.error)}</div>' if house.error else ""
    return f"<li><b>{esc(house.name)}</b>: newest {freight}{esc(house.freight_label)}{error}</li>"


def _history(pipeline: Pipeline, now: datetime) -> str:
    if not pipeline.history:
        return f'<p class="muted history-empty">{esc(HISTORY_EMPTY)}</p>'
    rows = "".join(
        f"<li>{_pill(e.state, WORDS[e.state])} <b>{esc(e.stage)}</b> "
        f"<code>{esc(e.freight_id)}</code> {esc(e.freight_label)} {_time(e.at, now)} "
        f"{link(e.commit, cls='commit')}</li>"
        for e in pipeline.history
    )
    return f'<ul class="plain">{rows}</ul>'


def _delivery(pipeline: Pipeline, now: datetime) -> str:
    if not pipeline.delivery:
        return f'<p class="muted delivery-empty">{esc(DELIVERY_EMPTY)}</p>'
    head = "".join(f"<th>{esc(h)}</th>" for h in TABLE_HEADER)
    rows = "".join(
        f'<tr data-stage="{esc(f.stage)}" data-window="{f.window_days}">'
        + "".join(f"<td>{esc(cell)}</td>" for cell in (f.stage, f"{f.window_days}d", *f.words))
        + "</tr>"
        for f in pipeline.delivery
    )
    read = f" Read {_time(pipeline.delivery_at, now)}." if pipeline.delivery_at else ""
    return (
        f'<div class="scroll"><table class="delivery"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody>'
        f'</table></div><p class="muted">{esc(DELIVERY_NOTE)}{read}</p>'
    )


def _pipeline(pipeline: Pipeline, now: datetime) -> str:
    repo = pipeline.repo
    head = f"{esc(pipeline.default_branch)} at {link(pipeline.head, cls='head')}" if pipeline.head else ""
    observed = f" · observed {_time(pipeline.observed_at, now)}" if pipeline.observed_at else ""
    busy = " · <b>verifying</b>" if pipeline.verifying else ""
    parts = [
        f'<section class="repo" id="{esc(_slug(repo))}" data-repo="{esc(repo)}">',
        f'<h2>{link(Link(repo, pipeline.url))}</h2><p class="muted">{head}{observed}{busy}</p>',
    ]
    if pipeline.note:
        parts.append(f'<p class="note">{esc(pipeline.note)}</p>')
    if pipeline.problems:
        items = "".join(f"<li><code>{esc(p)}</code></li>" for p in pipeline.problems)
        parts.append(f'<div class="problems"><ul class="plain">{items}</ul></div>')
    if pipeline.stages:
        legend = " ".join(_pill(state, words) for state, words in WORDS.items())
        parts += [
            '<figure class="graph">',
            _svg(pipeline.graph, repo, narrow=False),
            _svg(pipeline.graph, repo, narrow=True),
            f'<figcaption class="muted">{legend}</figcaption></figure>',
            f'<div class="stages">{"".join(_stage(card, repo, now) for card in pipeline.stages)}</div>',
        ]
        verdicts = "".join(_verdict_line(v, now) for v in pipeline.verdicts) or "<li>none yet</li>"
        houses = "".join(_warehouse(h) for h in pipeline.warehouses)
        parts += [
            '<section class="more verdicts"><h3>Last verdicts</h3>'
            f'<ul class="plain">{verdicts}</ul></section>',
            f'<section class="more"><h3>Warehouses</h3><ul class="plain">{houses}</ul></section>',
            f'<section class="more delivery"><h3>Delivery</h3>{_delivery(pipeline, now)}</section>',
            f'<section class="more history"><h3>History</h3>{_history(pipeline, now)}</section>',
        ]
    parts.append("</section>")
    return "".join(parts)


def render_page(
    view: StatusView | None,
    *,
    version: str,
    refresh: int,
    links: Iterable[tuple[str, str]] = (),
) -> str:
    """The status page: one section per repository (pipeline graph, stage cards, verdicts, history).

    ``view`` None means no reconciler is attached (a bare server); ``links`` are (text, path) pairs for
    the footer (``/status.json``, ``/healthz``, ``/metrics``).
    """
    if view is None:
        body = f"<p>{esc(NO_RECONCILER)}</p>"
        stamp = ""
    else:
        now = view.generated_at
        body = "".join(_pipeline(p, now) for p in view.pipelines) or f"<p>{esc(NO_REPOSITORIES)}</p>"
        stamp = (
            f'<span class="muted">updated <time datetime="{esc(now.isoformat())}">'
            f"{esc(f'{now:%H:%M:%S} UTC')}</time> · refreshes every {refresh} s</span>"
        )
    footer = " · ".join(f'<a href="{esc(path)}">{esc(text)}</a>' for text, path in links)
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta http-equiv="refresh" content="{int(refresh)}">'
        f"<title>{esc(TITLE)}</title><style>{_css()}</style></head><body>"
        f'<header class="top"><h1>Ferry <small class="muted">{esc(version)}</small></h1>{stamp}</header>'
        f'<main>{body}</main><footer class="muted">{footer}</footer></body></html>\n'
    )
