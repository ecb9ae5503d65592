"""Logging: JSON lines with structured fields, and secrets never reaching the output."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.errors import SettingsError
from bot.logs import REDACTED, configure_logging, get_logger, settings_secrets
from bot.settings import ArgoCDServer, Settings

WEBHOOK_SECRET = "whsec-Tr0ub4dor&3-horse"
ARGOCD_TOKEN = "argocd-token-value-1234"
GITHUB_TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
PAT = "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiIxMjM0NSJ9.c2lnbmF0dXJlLWJ5dGVz"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgOEePzNm0tRgeLezV6ffAt0gun\n"
    "VTLw7onLRnrq0/IzW7yWR7QkrmBL7jTKEn5u+qKhbwKfBstIs+bMY2Zkp18gnTxK\n"
    "-----END RSA PRIVATE KEY-----"
)
EVERY_SECRET = [WEBHOOK_SECRET, ARGOCD_TOKEN, GITHUB_TOKEN, PAT, JWT, PEM, *PEM.splitlines()[1:3]]


@pytest.fixture
def output() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    configure_logging("WARNING", "text")  # leave the root logger as a plain stderr handler


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_log_line_is_json_with_time_level_logger_message_and_fields(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)

    get_logger("ferry.reconciler").info("pass done", extra={"repo": "acme/gitops", "actions": 3})

    [entry] = lines(output)
    assert entry["level"] == "info"
    assert entry["logger"] == "ferry.reconciler"
    assert entry["msg"] == "pass done"
    assert entry["repo"] == "acme/gitops"
    assert entry["actions"] == 3
    assert str(entry["ts"]).endswith("Z")


def test_records_below_the_level_are_dropped(output: io.StringIO) -> None:
    configure_logging("warning", "json", stream=output)

    get_logger("ferry").info("chatty")
    get_logger("ferry").warning("worth saying")

    assert [entry["msg"] for entry in lines(output)] == ["worth saying"]


def test_an_unknown_level_names_the_setting() -> None:
    with pytest.raises(SettingsError, match="FERRY_LOG_LEVEL"):
        configure_logging("LOUD", "json")


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_never_reach_the_logs(output: io.StringIO, fmt: str) -> None:
    settings = Settings(
        webhook_secret=SecretStr(WEBHOOK_SECRET),
        private_key=SecretStr(PEM),
        argocd_servers={"main": ArgoCDServer(url="https://argocd.example", token=SecretStr(ARGOCD_TOKEN))},
    )
    configure_logging("DEBUG", fmt, secrets=settings_secrets(settings), stream=output)  # type: ignore[arg-type]
    log = get_logger("ferry.github")

    log.info(f"signing with {WEBHOOK_SECRET} and token {GITHUB_TOKEN}")
    log.info("key follows\n%s\nend", PEM)
    log.warning(
        "request failed",
        extra={
            "headers": {"Authorization": f"Bearer {JWT}", "X-Token": ARGOCD_TOKEN},
            "attempts": [GITHUB_TOKEN, PAT],
            "url": f"https://x-access-token:{GITHUB_TOKEN}@github.com/acme/gitops.git",
        },
    )
    log.info("argocd says Authorization: Bearer %s", "opaque-session-value-42")
    log.info("registry sent authorization: Basic %s", "dXNlcjpwYXNzd29yZA==")
    log.info("github sent Authorization: token %s", "0123456789abcdef0123")
    refusals: dict[str, str] = {}
    try:
        refusals[f"GitHub refused {GITHUB_TOKEN}"]
    except KeyError:
        log.exception("with a traceback")

    text = output.getvalue()
    for secret in [*EVERY_SECRET, "opaque-session-value-42", "dXNlcjpwYXNzd29yZA==", "0123456789abcdef0123"]:
        assert secret not in text
        assert json.dumps(secret)[1:-1] not in text  # nor in its JSON-escaped form
    assert "BEGIN RSA PRIVATE KEY" not in text
    assert text.count(REDACTED) >= 9
    assert "Bearer [redacted]" in text
    assert "signing with" in text  # the rest of the message survives


def test_secrets_in_library_loggers_are_scrubbed_too(output: io.StringIO) -> None:
    configure_logging("INFO", "json", secrets=[WEBHOOK_SECRET], stream=output)

    logging.getLogger("aiohttp.access").info("GET /?secret=%s", WEBHOOK_SECRET)

    assert WEBHOOK_SECRET not in output.getvalue()


def test_configuring_twice_does_not_duplicate_lines(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)
    configure_logging("INFO", "json", stream=output)

    get_logger("ferry").info("once")

    assert len(lines(output)) == 1


def test_ordinary_words_are_not_redacted(output: io.StringIO) -> None:
    configure_logging("INFO", "json", stream=output)

    message = "token refreshed; basic configuration loaded; authorization refused for acme/gitops at 1a2b3c4d"

    get_logger("ferry").info(message)

    assert lines(output)[0]["msg"] == message
