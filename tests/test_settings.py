"""Settings from FERRY_* variables and FERRY_SETTINGS_FILE: one message naming the variable when wrong,
secrets that never print, and `ferry serve` refusing to start without its webhook secret, or with one
shorter than 16 bytes (an empty key signs forged deliveries as well as real ones)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.cli import main
from bot.errors import SettingsError
from bot.settings import load_settings
from bot.settings_checks import require

SECRET = "whsec-0123456789abcdef"
ARGOCD_TOKEN = "argocd-token-do-not-print-4f1e"
KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\n-----END RSA PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("FERRY_"):
            monkeypatch.delenv(name)
    return monkeypatch


def with_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FERRY_WEBHOOK_SECRET", SECRET)


def test_a_missing_webhook_secret_is_named_for_serve(clean_environment: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="FERRY_WEBHOOK_SECRET"):
        require(load_settings(), "serve")


@pytest.mark.parametrize("shard", ["3/2", "x", "1/0", "-1/2", "0/"])
def test_a_malformed_shard_is_named(clean_environment: pytest.MonkeyPatch, shard: str) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_SHARD", shard)
    with pytest.raises(SettingsError, match="FERRY_SHARD") as caught:
        load_settings()
    assert shard in str(caught.value)


def test_a_well_formed_shard_is_read_as_index_and_count(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_SHARD", "2/3")
    assert load_settings().shard_index_count == (2, 3)


def test_command_ages_read_as_the_pipeline_config_does(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_COMMAND_MAX_AGE", "30m")
    clean_environment.setenv("FERRY_COMMAND_LOOKBACK", "PT2H")
    settings = load_settings()
    assert (settings.command_max_age, settings.command_lookback) == (
        timedelta(minutes=30),
        timedelta(hours=2),
    )


def test_a_lookback_shorter_than_the_max_age_is_named(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_COMMAND_LOOKBACK", "30m")
    with pytest.raises(
        SettingsError, match="FERRY_COMMAND_LOOKBACK: 30m is shorter than FERRY_COMMAND_MAX_AGE"
    ):
        load_settings()


def test_a_non_numeric_app_id_is_named(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_APP_ID", "my-app")
    with pytest.raises(SettingsError, match="FERRY_APP_ID"):
        load_settings()


def argocd_servers() -> str:
    return json.dumps({"prod": {"url": "https://argocd.example.com", "token": ARGOCD_TOKEN, "timeout": 5}})


def test_argocd_servers_are_read_from_json_with_the_token_kept_secret(
    clean_environment: pytest.MonkeyPatch,
) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_ARGOCD_SERVERS", argocd_servers())
    settings = load_settings()
    server = settings.argocd_servers["prod"]
    assert str(server.url).startswith("https://argocd.example.com")
    assert server.timeout == 5
    assert isinstance(server.token, SecretStr)
    assert server.token.get_secret_value() == ARGOCD_TOKEN
    for shown in (str(settings), repr(settings), settings.model_dump_json()):
        assert ARGOCD_TOKEN not in shown
        assert SECRET not in shown


def test_malformed_argocd_servers_json_is_named(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_ARGOCD_SERVERS", '{"prod": {"url": ')
    with pytest.raises(SettingsError, match="FERRY_ARGOCD_SERVERS"):
        load_settings()


def test_an_argocd_server_without_a_token_is_named(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_ARGOCD_SERVERS", json.dumps({"prod": {"url": "https://a.example"}}))
    with pytest.raises(SettingsError, match="FERRY_ARGOCD_SERVERS") as caught:
        load_settings()
    message = str(caught.value)
    assert "FERRY_ARGOCD_SERVERS_PROD_TOKEN" not in message  # no such variable: the JSON is the setting
    assert "prod" in message and "token" in message


@pytest.mark.parametrize("suffix", [".yaml", ".yml", ".json"])
def test_the_settings_file_is_read_and_environment_variables_win(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path, suffix: str
) -> None:
    values = {
        "webhook_secret": SECRET,
        "app_id": 42,
        "shard": "1/4",
        "github_url": "https://github.example.com/api/v3",
        "argocd_servers": {"prod": {"url": "https://argocd.example.com", "token": ARGOCD_TOKEN}},
    }
    path = tmp_path / f"ferry{suffix}"
    if suffix == ".json":
        path.write_text(json.dumps(values))
    else:
        path.write_text(
            "webhook_secret: " + SECRET + "\n"
            "app_id: 42\n"
            'shard: "1/4"\n'
            "github_url: https://github.example.com/api/v3\n"
            "argocd_servers:\n"
            "  prod:\n"
            "    url: https://argocd.example.com\n"
            "    token: " + ARGOCD_TOKEN + "\n"
        )
    clean_environment.setenv("FERRY_SETTINGS_FILE", str(path))
    clean_environment.setenv("FERRY_APP_ID", "7")
    settings = load_settings()
    assert settings.app_id == 7  # the environment wins
    assert settings.webhook_secret.get_secret_value() == SECRET
    assert settings.shard_index_count == (1, 4)
    assert str(settings.github_url) == "https://github.example.com/api/v3"
    assert settings.argocd_servers["prod"].token.get_secret_value() == ARGOCD_TOKEN


def test_an_unreadable_settings_file_is_named(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_SETTINGS_FILE", str(tmp_path / "missing.yaml"))
    with pytest.raises(SettingsError, match="FERRY_SETTINGS_FILE"):
        load_settings()


def test_a_settings_file_that_is_not_a_mapping_is_named(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ferry.yaml"
    path.write_text("- just\n- a list\n")
    clean_environment.setenv("FERRY_SETTINGS_FILE", str(path))
    with pytest.raises(SettingsError, match="FERRY_SETTINGS_FILE"):
        load_settings()


def test_a_settings_file_with_broken_json_is_named(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "ferry.json"
    path.write_text('{"webhook_secret": ')
    clean_environment.setenv("FERRY_SETTINGS_FILE", str(path))
    with pytest.raises(SettingsError, match="FERRY_SETTINGS_FILE"):
        load_settings()


def test_the_private_key_is_read_from_its_file(clean_environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "app.pem"
    path.write_text(KEY)
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_PRIVATE_KEY_FILE", str(path))
    assert load_settings().app_private_key() == KEY


def test_the_private_key_setting_is_used_and_never_printed(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_PRIVATE_KEY", KEY)
    settings = load_settings()
    assert settings.app_private_key() == KEY
    assert "MIIEowIBAAKCAQEAtest" not in str(settings) + repr(settings)


def test_an_unreadable_private_key_file_is_named(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with_secret(clean_environment)
    clean_environment.setenv("FERRY_PRIVATE_KEY_FILE", str(tmp_path / "absent.pem"))
    with pytest.raises(SettingsError, match="FERRY_PRIVATE_KEY_FILE"):
        load_settings().app_private_key()


def test_no_private_key_at_all_names_both_variables(clean_environment: pytest.MonkeyPatch) -> None:
    with_secret(clean_environment)
    with pytest.raises(SettingsError, match="FERRY_PRIVATE_KEY") as caught:
        load_settings().app_private_key()
    assert "FERRY_PRIVATE_KEY_FILE" in str(caught.value)


def test_serve_without_a_webhook_secret_exits_1_with_one_line_naming_it(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment.setenv("FERRY_APP_ID", "1")
    clean_environment.setenv("FERRY_PRIVATE_KEY", KEY)
    assert main(["serve", "--port", "0"]) == 1
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert lines[0].startswith("ferry: ") and "FERRY_WEBHOOK_SECRET" in lines[0]
    assert "Traceback" not in captured.err and captured.out == ""


@pytest.mark.parametrize(
    ("secret", "length"),
    [("", 0), ("s", 1), ("not-a-secret", 12), ("0123456789abcde", 15), ("ééééééé", 14)],
)
def test_a_webhook_secret_shorter_than_16_bytes_is_refused_naming_the_variable(
    clean_environment: pytest.MonkeyPatch, secret: str, length: int
) -> None:
    clean_environment.setenv("FERRY_WEBHOOK_SECRET", secret)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith(f"FERRY_WEBHOOK_SECRET is {length} bytes long; use at least 16 random bytes")
    assert len(secret) < 4 or secret not in message  # the secret itself is never shown


@pytest.mark.parametrize("secret", ["0123456789abcdef", "éééééééé", "It's a Secret to Everybody"])
def test_a_webhook_secret_of_16_bytes_or_more_is_accepted(
    clean_environment: pytest.MonkeyPatch, secret: str
) -> None:
    clean_environment.setenv("FERRY_WEBHOOK_SECRET", secret)
    assert load_settings().webhook_secret.get_secret_value() == secret


def test_a_short_webhook_secret_in_the_settings_file_is_refused_too(
    clean_environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"webhook_secret": "short"}))
    clean_environment.setenv("FERRY_SETTINGS_FILE", str(path))
    with pytest.raises(SettingsError, match=r"^FERRY_WEBHOOK_SECRET is 5 bytes long"):
        load_settings()


def test_serve_with_an_empty_webhook_secret_refuses_to_start(
    clean_environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    clean_environment.setenv("FERRY_APP_ID", "1")
    clean_environment.setenv("FERRY_PRIVATE_KEY", KEY)
    clean_environment.setenv("FERRY_WEBHOOK_SECRET", "")
    assert main(["serve", "--port", "0"]) == 1
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "ferry: FERRY_WEBHOOK_SECRET is 0 bytes long; use at least 16 random bytes (e.g. `openssl rand -hex "
        "32`), and the same value as the App's webhook secret on GitHub"
    )
