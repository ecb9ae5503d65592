"""The sandbox's closing summary: what a person reads after `ferry sandbox`."""

from __future__ import annotations

from typing import Any

from bot.cli.sandbox import summary_table


def result(**extra: Any) -> dict[str, Any]:
    stage = {
        "images": {"acme/web": "1.5.0"},
        "freight": "f-1a2b3c",
        "health": "success",
        "pr": 4,
        "merge_to_sync_ms": 120,
        "merge_to_verdict_ms": 2300,
    }
    return {"scenario": "quickstart", "ok": True, "stages": {"dev": stage}, "github_requests": 57, **extra}


def test_the_summary_gives_the_wall_time_in_seconds_and_the_result() -> None:
    text = summary_table(result(wall_ms=9184))
    assert "| dev | acme/web 1.5.0 | f-1a2b3c | success | #4 | 120 ms | 2300 ms |" in text
    assert text.splitlines()[-3:] == ["GitHub requests made by Ferry: 57", "Wall time: 9.2 s", "Result: ok"]


def test_a_stopped_run_says_why_and_is_not_ok() -> None:
    text = summary_table(result(ok=False, error="timed out after 60 s waiting for dev verified"))
    assert "Wall time" not in text
    stopped = "Stopped: timed out after 60 s waiting for dev verified"
    assert text.splitlines()[-2:] == [stopped, "Result: NOT ok"]
