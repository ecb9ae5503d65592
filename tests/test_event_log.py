"""Ferry's decisions in its log: one structured INFO line per domain event, naming the webhook behind it."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot import events
from bot.event_log import log_event
from bot.logs import configure_logging
from bot.sandbox.example import quick_pipeline
from bot.sandbox.world import FULL_NAME, World

RELEASES = {"web": ["1.4.0", "1.4.1", "1.4.2"], "worker": ["1.4.0", "1.4.1", "1.4.2"]}
FIELDS = {"kind", "repository", "stage", "freight", "delivery", "detail"}


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("INFO", "json", stream=stream)
    yield stream
    configure_logging("WARNING", "text")  # leave the root logger as a plain stderr handler


def decisions(stream: io.StringIO) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    return [line for line in lines if line["logger"] == "ferry.events"]


def test_an_event_is_one_json_line_with_every_field_even_the_unknown_ones(output: io.StringIO) -> None:
    token = events.DELIVERY.set("72d3162e-cc78-11e3-81ab-4c9367dc0958")
    try:
        log_event(events.Event(events.COMMAND_REFUSED, "acme/gitops", "prod", "/promote prod by @watcher"))
    finally:
        events.DELIVERY.reset(token)

    [line] = decisions(output)
    assert line["level"] == "info" and line["msg"] == "command refused"
    assert set(line) >= FIELDS
    assert line["delivery"] == "72d3162e-cc78-11e3-81ab-4c9367dc0958"
    assert (line["repository"], line["stage"], line["freight"]) == ("acme/gitops", "prod", None)


async def test_each_decision_is_logged_with_its_repository_stage_freight_and_delivery(
    output: io.StringIO,
) -> None:
    world = World()
    try:
        await world.start(quick_pipeline, RELEASES)
        await world.wait_for(
            "prod verified on the starting commit", lambda: world.kinds(events.HEALTH_VERDICT, "prod"), 60
        )
        world.registry.push("acme/web", "1.5.0")
        world.registry.push("acme/worker", "1.5.0")

        def gate_open() -> list[events.Event]:
            return [e for e in world.kinds(events.GATE_SET, "prod") if e.detail.startswith("success")]

        async with (
            world.person("rita", "write", ["acme/release-managers"]) as rita,
            world.person("watcher", "read") as watcher,
        ):

            async def prod_pull() -> list[dict[str, Any]]:
                return [p for p in await world.open_pulls(rita) if p["head"]["ref"].startswith("ferry/prod/")]

            [pull] = await world.wait_for("prod's pull request", prod_pull, 90)
            await world.approve(rita, pull, "@rita")  # prod has promoters: its gate waits for an approval
            await world.wait_for("prod's gate open", gate_open, 60)
            await watcher.post(
                f"/repos/{FULL_NAME}/issues/{pull['number']}/comments", json={"body": "/promote prod"}
            )
            await world.wait_for("the refusal", lambda: world.kinds(events.COMMAND_REFUSED), 30)
            await world.merge(rita, pull, "@rita")

            def verdict() -> list[events.Event]:
                opened_at = gate_open()[0].at
                return [e for e in world.kinds(events.HEALTH_VERDICT, "prod") if e.at > opened_at]

            await world.wait_for("prod's verdict on 1.5.0", verdict, 60)
        deliveries = {d.delivery_id: d for d in world.github.deliveries}
    finally:
        await world.stop()

    logged = decisions(output)
    freight = pull["head"]["ref"].rsplit("/", 1)[1]
    assert logged and all(line["level"] == "info" and set(line) >= FIELDS for line in logged)
    assert {line["repository"] for line in logged} == {FULL_NAME}

    opened = [line for line in logged if line["kind"] == events.PR_OPENED]
    assert [(line["stage"], line["freight"]) for line in opened] == [
        (s, freight) for s in ("dev", "staging", "prod")
    ]
    assert all(line["delivery"] in deliveries for line in opened if line["delivery"])

    [refused] = [line for line in logged if line["kind"] == events.COMMAND_REFUSED]
    assert refused["stage"] == "prod"
    assert (deliveries[refused["delivery"]].event, deliveries[refused["delivery"]].action) == (
        "issue_comment",
        "created",
    )

    # The person's merge: the router names who merged; the sync it asks for names the same delivery.
    [merged] = [line for line in logged if line["kind"] == events.PR_MERGED and line["stage"] == "prod"]
    assert merged["detail"] == f"#{pull['number']} merged by @rita" and merged["freight"] == freight
    assert (deliveries[merged["delivery"]].event, deliveries[merged["delivery"]].action) == (
        "pull_request",
        "closed",
    )
    syncs = [
        line
        for line in logged
        if line["kind"] == events.SYNC_REQUESTED and line["delivery"] == merged["delivery"]
    ]
    assert {line["stage"] for line in syncs} == {"prod"} and len(syncs) == 2  # shop-prod-eu and shop-prod-us

    verdicts = [
        line for line in logged if line["kind"] == events.HEALTH_VERDICT and line["freight"] == freight
    ]
    assert [line["stage"] for line in verdicts] == ["dev", "staging", "prod"]
