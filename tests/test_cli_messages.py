"""What a newcomer sees on a first try: each command asks only for the settings it uses, a bad private key
or a malformed JSON setting is named as what it is, `ferry validate` says when it checked the config
alone, and `ferry bump` takes a kustomize directory as the pipeline config does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bot.cli import main
from bot.sandbox.world import free_port

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "example"
VALID_MINIMAL = ROOT / "tests" / "fixtures" / "configs" / "valid-minimal.yml"
PYDANTIC_WORDS = (
    "Input should be",
    "EnvSettingsSource",
    "error parsing value",
    "Extra inputs",
    "Value error",
)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("FERRY_"):
            monkeypatch.delenv(name)
    # Whatever a command would ask GitHub, nobody answers here.
    monkeypatch.setenv("FERRY_GITHUB_URL", f"http://127.0.0.1:{free_port()}")
    return monkeypatch


def error_of(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 1
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err and captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ferry: "), captured.err
    return lines[0]


# ---- settings per command ---------------------------------------------------------------------------


def test_plan_does_not_ask_for_the_webhook_secret_but_names_what_it_does_need(
    capsys: pytest.CaptureFixture[str],
) -> None:
    message = error_of(["plan", "acme/gitops"], capsys)
    assert "FERRY_WEBHOOK_SECRET" not in message
    assert "`ferry plan` needs FERRY_APP_ID" in message
    assert "FERRY_PRIVATE_KEY or FERRY_PRIVATE_KEY_FILE" in message and ".pem" in message


def test_serve_names_every_setting_it_needs_at_once(capsys: pytest.CaptureFixture[str]) -> None:
    message = error_of(["serve", "--port", "0"], capsys)
    for variable in ("FERRY_APP_ID", "FERRY_PRIVATE_KEY_FILE", "FERRY_WEBHOOK_SECRET"):
        assert variable in message


# ---- the App's private key --------------------------------------------------------------------------

GARBAGE = "not-a-key-at-all"
ESCAPED = "-----BEGIN RSA PRIVATE KEY-----\\nMIIEowIBAAKCAQEA\\n-----END RSA PRIVATE KEY-----\\n"
PUBLIC = (
    "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----\n"
)
TRUNCATED = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAtest\n-----END RSA PRIVATE KEY-----\n"


@pytest.mark.parametrize(
    ("key", "why"),
    [
        (GARBAGE, "no -----BEGIN"),
        (ESCAPED, "line breaks are written as \\n"),
        (PUBLIC, "it is a public key"),
        (TRUNCATED, "does not decode to a key"),
    ],
    ids=["garbage", "escaped newlines", "public key", "truncated"],
)
@pytest.mark.parametrize("command", [["plan", "acme/gitops"], ["serve", "--port", "0"]])
def test_a_private_key_that_is_not_one_is_named_before_github_is_asked(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: list[str],
    key: str,
    why: str,
) -> None:
    environment.setenv("FERRY_APP_ID", "1")
    environment.setenv("FERRY_PRIVATE_KEY", key)
    environment.setenv("FERRY_WEBHOOK_SECRET", "a-webhook-secret-0123456789")
    message = error_of(command, capsys)
    assert "FERRY_PRIVATE_KEY is not a PEM RSA private key" in message and why in message
    assert "did not answer" not in message
    assert GARBAGE not in message and "MII" not in message  # the value is never echoed


def test_a_key_file_of_another_algorithm_names_the_file_and_the_algorithm(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = tmp_path / "app.pem"
    path.write_bytes(key)
    environment.setenv("FERRY_APP_ID", "1")
    environment.setenv("FERRY_PRIVATE_KEY_FILE", str(path))
    message = error_of(["plan", "acme/gitops"], capsys)
    assert f"FERRY_PRIVATE_KEY_FILE ({path}) holds a EC key, not an RSA one" in message
    assert "RS256" in message


# ---- JSON settings ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        (
            "FERRY_ARGOCD_SERVERS",
            '{"prod": {"url": ',
            "FERRY_ARGOCD_SERVERS is not valid JSON: expecting value at line 1, column 18 (character 18)",
        ),
        (
            "FERRY_REGISTRIES",
            "{'ghcr.io': {}}",
            "FERRY_REGISTRIES is not valid JSON: expecting property name enclosed in double quotes "
            "at line 1, column 2 (character 2)",
        ),
        (
            "FERRY_ARGOCD_SERVERS",
            '["https://argocd.example.com"]',
            "FERRY_ARGOCD_SERVERS: expected a JSON object",
        ),
        (
            "FERRY_ARGOCD_SERVERS",
            '{"prod": "https://argocd.example.com"}',
            "FERRY_ARGOCD_SERVERS: prod: expected a JSON object with keys url, token",
        ),
        (
            "FERRY_ARGOCD_SERVERS",
            '{"prod": {"url": "argocd", "token": "t", "tls": false}}',
            "FERRY_ARGOCD_SERVERS: prod.url: expected an absolute http:// or https:// URL; "
            "FERRY_ARGOCD_SERVERS: prod.tls: not a known key (known: url, token, insecure, ca_file, timeout)",
        ),
    ],
    ids=["truncated", "single quotes", "a list", "an entry not an object", "bad url and unknown key"],
)
def test_a_malformed_json_setting_is_named_with_where_and_the_expected_shape(
    environment: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    expected: str,
) -> None:
    environment.setenv(variable, value)
    message = error_of(["plan", "acme/gitops"], capsys)
    assert expected in message
    assert f"the expected shape is {variable}='{{" in message
    for words in PYDANTIC_WORDS:
        assert words not in message


def test_a_json_setting_that_holds_a_token_is_never_echoed(
    environment: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    environment.setenv("FERRY_ARGOCD_SERVERS", '{"prod": {"url": "x", "token": "tok-do-not-print-42"}')
    assert "tok-do-not-print-42" not in error_of(["plan", "acme/gitops"], capsys)


# ---- ferry validate and ferry bump --------------------------------------------------------------------


def test_validate_of_a_config_outside_a_repository_says_the_stage_files_were_not_checked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["validate", str(VALID_MINIMAL)]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("ok: ")
    assert "the files the stages update were not checked" in captured.err
    assert "run `ferry validate` at the repository root or pass the repository directory" in captured.err


def test_validate_of_a_repository_says_nothing_more_than_ok(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", ["kustomization.yaml", "kustomization.yml", "Kustomization"])
def test_bump_takes_a_kustomize_directory_as_the_config_does(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    overlay = tmp_path / "overlays" / "dev"
    overlay.mkdir(parents=True)
    file = overlay / name
    shutil.copy(EXAMPLE / "overlays" / "dev" / "kustomization.yaml", file)
    before = file.read_text()

    assert main(["bump", str(overlay), "ghcr.io/acme/web=1.5.0"]) == 0

    assert f"{file}:10: ghcr.io/acme/web 1.4.2 -> 1.5.0" in capsys.readouterr().err
    assert file.read_text() == before.replace(
        "newTag: 1.4.2  # set by Ferry", "newTag: 1.5.0  # set by Ferry"
    )
    assert main(["images", str(overlay)]) == 0
    assert "ghcr.io/acme/web     1.5.0" in capsys.readouterr().out


def test_bump_of_a_directory_without_a_kustomization_names_the_files_it_tried(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    message = error_of(["bump", str(tmp_path), "ghcr.io/acme/web=1.5.0"], capsys)
    assert f"{tmp_path}/kustomization.yaml, {tmp_path}/kustomization.yml, {tmp_path}/Kustomization" in message
    assert "pass a YAML file, or a directory holding a kustomization" in message
