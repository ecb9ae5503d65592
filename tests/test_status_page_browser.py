"""The status page as a person sees it: headless Chromium during a real sandbox run.

A new release has gone through dev and staging by itself and waits in prod's open PR, approved by a
release manager, with an open gate: the moment a release manager opens the page.
``FERRY_UPDATE_SCREENSHOT=1`` also writes the README's picture, docs/status-page.png, from the same page.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from chromium import chromium, chromium_binary

from bot import events
from bot.command_views import VERDICT_COLOURS
from bot.core.gates import health_context
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
SCREENSHOT = Path(__file__).resolve().parent.parent / "docs" / "status-page.png"

# What a person sees, read from the rendered page (innerText, computed colours, layout).
SEEN = """(() => {
  const text = (root, sel) => root.querySelector(sel)?.innerText.trim() ?? null;
  const cards = [...document.querySelectorAll('article.stage')].map(card => {
    const pill = card.querySelector('header .pill');
    const pr = card.querySelector('a.pr');
    const gate = card.querySelector('.open-pr .pill');
    return {
      name: text(card, 'h3'),
      words: pill.innerText.trim(),
      colour: getComputedStyle(pill).backgroundColor,
      freight: text(card, '.freight'),
      tags: [...card.querySelectorAll('.images li')].map(li => li.innerText.trim()),
      pr: pr && {text: pr.innerText.trim(), href: pr.href},
      gate: gate && {words: gate.innerText.trim(), colour: getComputedStyle(gate).backgroundColor},
      apps: [...card.querySelectorAll('a.app')].map(a => a.href),
    };
  });
  const shown = sel => [...document.querySelectorAll(sel)]
    .filter(e => getComputedStyle(e).display !== 'none');
  const graph = shown('figure.graph svg')[0];
  return {
    cards,
    graph: graph ? [...graph.querySelectorAll('.node')].map(n => n.querySelector('text').textContent) : [],
    graphWidth: graph ? graph.getBoundingClientRect().width : 0,
    verdictLinks: [...document.querySelectorAll('.verdicts li')].map(li => ({
      stage: li.dataset.stage,
      commit: li.querySelector('a.commit')?.href ?? null,
      argocd: li.querySelector('a.argocd')?.href ?? null,
    })),
    history: text(document, '.history'),
    refresh: document.querySelector('meta[http-equiv=refresh]')?.content ?? null,
    innerWidth: window.innerWidth,
    scrollWidth: document.documentElement.scrollWidth,
  };
})()"""


def rgb(hex_colour: str) -> str:
    red, green, blue = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgb({red}, {green}, {blue})"


async def _health(world: World, stage: str) -> str | None:
    assert world.runtime is not None
    snapshot = world.runtime.reconciler.observed.get(FULL_NAME)
    deploy = snapshot.deploys.get(stage) if snapshot else None
    status = deploy.statuses.get(health_context(stage)) if deploy else None
    return status.state if status else None


async def _prod_pull_with_open_gate(page_json: Any) -> dict[str, Any] | None:
    """prod's open PR as the page's own JSON shows it, once its gate is open."""
    for repo in page_json.get("pipelines", []):
        for stage in repo["stages"]:
            if stage["name"] == "prod":
                return next((pr for pr in stage["open_prs"] if pr["gate"] == "success"), None)
    return None


async def test_a_release_manager_sees_the_pipeline_verdicts_freight_and_prods_open_pr_on_a_phone() -> None:
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        page_url = f"http://127.0.0.1:{world.ferry_port}/"

        async def verified() -> bool:
            return [await _health(world, s) for s in ("dev", "staging", "prod")] == ["success"] * 3

        await world.wait_for("every stage verified on the starting commit", verified, 60)
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")
        await world.wait_for(
            "staging's verdict on 1.5.0", lambda: world.kinds(events.HEALTH_VERDICT, "staging")[1:], 90
        )
        async with world.person("rita", "write", ["acme/release-managers"]) as rita:

            async def opened() -> dict[str, Any] | None:
                pulls = await world.open_pulls(rita)
                return next((p for p in pulls if p["head"]["ref"].startswith("ferry/prod/")), None)

            # prod has promoters: its gate opens once a release manager approved the pull request.
            await world.approve(rita, await world.wait_for("prod's pull request", opened, 60), "@rita")
        async with httpx.AsyncClient(timeout=10) as client:

            async def prod_pull() -> dict[str, Any] | None:
                return await _prod_pull_with_open_gate((await client.get(f"{page_url}status.json")).json())

            pull = await world.wait_for("prod's PR with an open gate on the page", prod_pull, 60)
        freight_id = pull["freight_id"]

        async with chromium() as browser:
            await browser.viewport(375, 800, mobile=True)
            await browser.goto(f"{page_url}?refresh=600")  # no reload while the page is read
            phone = await browser.evaluate(SEEN)
            if os.environ.get("FERRY_UPDATE_SCREENSHOT") == "1":
                await browser.viewport(1100, 800, mobile=False)
                await browser.goto(page_url)
                height = await browser.evaluate("document.documentElement.scrollHeight")
                await browser.viewport(1100, int(height), mobile=False)
                SCREENSHOT.write_bytes(await browser.screenshot())
    finally:
        await world.stop()

    cards = {card["name"]: card for card in phone["cards"]}
    assert list(cards) == ["dev", "staging", "prod"]
    assert phone["graph"] == ["warehouse shop", "dev", "staging", "prod"]
    green = rgb(VERDICT_COLOURS["success"][0])
    for name in ("dev", "staging"):
        assert (cards[name]["words"], cards[name]["colour"]) == ("verified", green), cards[name]
        assert cards[name]["freight"] == f"{freight_id} web 1.5.0, worker 1.5.0"
        assert cards[name]["tags"] == ["acme/web 1.5.0", "acme/worker 1.5.0"]
        assert cards[name]["apps"] == [f"{world.argocd_url}/applications/shop-{name}"]
    prod = cards["prod"]
    assert (prod["words"], prod["colour"]) == ("verified", green)
    assert prod["tags"] == ["acme/web 1.4.0", "acme/worker 1.4.0"]  # still the old release, verified
    assert prod["pr"]["text"] == f"#{pull['number']} Promote web 1.5.0, worker 1.5.0 to prod"
    assert prod["pr"]["href"] == f"{world.github_url}/{FULL_NAME}/pull/{pull['number']}"
    assert prod["gate"] == {"words": "gate open", "colour": green}
    for verdict in phone["verdictLinks"]:
        assert verdict["commit"].startswith(f"{world.github_url}/{FULL_NAME}/commit/"), verdict
        assert verdict["argocd"].startswith(f"{world.argocd_url}/applications/shop-{verdict['stage']}"), (
            verdict
        )
    assert {v["stage"] for v in phone["verdictLinks"]} == {"dev", "staging", "prod"}
    assert "No history yet" in phone["history"]
    assert phone["refresh"] == "600"
    assert phone["scrollWidth"] <= 375, "the page scrolls sideways on a phone"
    assert phone["innerWidth"] == 375  # mobile Chromium widens the viewport to fit content that overflows
    assert 0 < phone["graphWidth"] <= 375


def test_without_chromium_the_page_test_is_skipped_with_the_reason_but_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("FERRY_CHROMIUM", raising=False)
    monkeypatch.setenv("PATH", "")
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install chromium"):
        chromium_binary()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the page test in a real browser"):
        chromium_binary()


def test_the_readme_shows_the_screenshot_the_page_test_takes() -> None:
    readme = (SCREENSHOT.parent.parent / "README.md").read_text()
    assert "](docs/status-page.png)" in readme
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
