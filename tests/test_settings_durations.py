"""Durations in the App's settings read as the pipeline config's do (``1s``, ``5m``, ``1h30m``), and as
they always did (ISO 8601 ``PT1S``); anything else is refused naming the variable."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import SettingsError
from bot.settings import load_settings


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("FERRY_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("FERRY_WEBHOOK_SECRET", "whsec-0123456789abcdef0123456789abcdef")
    return monkeypatch


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1s", timedelta(seconds=1)),
        ("5m", timedelta(minutes=5)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        (" 2h ", timedelta(hours=2)),
        ("PT1S", timedelta(seconds=1)),
        ("PT1H30M", timedelta(hours=1, minutes=30)),
        ("00:00:05", timedelta(seconds=5)),
    ],
)
def test_poll_intervals_accept_the_pipeline_configs_durations_and_iso_8601(
    environment: pytest.MonkeyPatch, text: str, expected: timedelta
) -> None:
    environment.setenv("FERRY_POLL_FAST", text)
    environment.setenv("FERRY_POLL_IDLE", text)
    settings = load_settings()
    assert (settings.poll_fast, settings.poll_idle) == (expected, expected)


def test_durations_in_a_settings_file_read_the_same(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    file = tmp_path / "ferry.yaml"
    file.write_text("poll_fast: 2s\npoll_idle: 10m\n")
    environment.setenv("FERRY_SETTINGS_FILE", str(file))
    settings = load_settings()
    assert (settings.poll_fast, settings.poll_idle) == (timedelta(seconds=2), timedelta(minutes=10))


@pytest.mark.parametrize("text", ["5 minutes", "1m30", "m5", "-5s", "5", "soon"])
def test_a_malformed_duration_is_refused_naming_the_variable_and_the_forms(
    environment: pytest.MonkeyPatch, text: str
) -> None:
    environment.setenv("FERRY_POLL_IDLE", text)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("FERRY_POLL_IDLE: ")
    assert "30s, 5m or 1h30m" in message and "PT30S" in message


def test_a_zero_poll_interval_is_refused(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("FERRY_POLL_FAST", "0s")
    with pytest.raises(SettingsError, match="FERRY_POLL_FAST"):
        load_settings()
