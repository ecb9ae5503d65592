"""Settings checks that pydantic does not make, and settings errors worded for a person.

- **What each command needs** (``require``): ``ferry serve`` receives webhooks, so it needs the webhook
  secret; ``ferry plan`` only reads GitHub, so it does not.
- **The App's private key is a PEM RSA key** (``private_key_pem``): GitHub signs App JWTs with RS256
  (https://docs.github.com/en/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app),
  so any other text is named as what it is before a request is made, never reported later as
  "GitHub did not answer".
- **Errors in a value** name the variable, where inside the value (JSON position or key path), what was
  expected and, for the JSON settings, an example of the expected shape; never pydantic's own words.

No message repeats a setting's value: it may be a secret.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from bot.errors import SettingsError

if TYPE_CHECKING:
    from pydantic import ValidationError

    from bot.settings import Settings

ENV_PREFIX: Final = "FERRY_"

# An example value of each setting that holds JSON, shown when its value has the wrong shape.
JSON_EXAMPLES: Final = {
    "argocd_servers": '{"default": {"url": "https://argocd.example.com", "token": "<Argo CD API token>"}}',
    "registries": '{"ghcr.io": {"username": "<user>", "password": "<token>"}}',
}

# What each command needs beyond what has a default: field -> (variables, what it is).
NEEDS: Final[Mapping[str, Sequence[str]]] = {
    "serve": ("app_id", "private_key", "webhook_secret"),
    "plan": ("app_id", "private_key"),
    "doctor": ("app_id", "private_key"),
    "stats": ("app_id", "private_key"),
}
WHAT: Final = {
    "app_id": ("FERRY_APP_ID", "the App's numeric id, shown as App ID on its settings page"),
    "private_key": (
        "FERRY_PRIVATE_KEY or FERRY_PRIVATE_KEY_FILE",
        "the App's private key, a .pem file generated on its settings page",
    ),
    "webhook_secret": (
        "FERRY_WEBHOOK_SECRET",
        "the webhook secret set on the App's settings page; GitHub signs every delivery with it",
    ),
}
MSG_NEEDS: Final = "`ferry {command}` needs {missing}"
MSG_NOT_SET: Final = "{variables}, which is not set: {what}"

MSG_NOT_A_KEY: Final = (
    "{variable} is not a PEM RSA private key ({reason}): set it to the whole .pem file GitHub generated "
    "for the App, from -----BEGIN RSA PRIVATE KEY----- to -----END RSA PRIVATE KEY-----"
)
MSG_NOT_RSA: Final = (
    "{variable} holds a {kind} key, not an RSA one: GitHub signs App JWTs with RS256; "
    "generate a private key on the App's settings page"
)
WHY_NO_PEM: Final = "it has no -----BEGIN ... PRIVATE KEY----- line"
WHY_ESCAPED: Final = (
    "its line breaks are written as \\n: give the file's real line breaks, or use FERRY_PRIVATE_KEY_FILE"
)
WHY_PUBLIC: Final = "it is a public key; the App signs with its private key"
WHY_ENCRYPTED: Final = "it is encrypted with a passphrase; GitHub's keys are not"
WHY_UNREADABLE: Final = "its base64 body does not decode to a key"

MSG_NOT_JSON: Final = "{variable} is not valid JSON: {what} at line {line}, column {column} (character {pos})"
MSG_SHAPE: Final = "; the expected shape is {variable}='{example}'"


def require(settings: Settings, command: str) -> Settings:
    """``settings`` when every setting ``command`` needs is set; else SettingsError naming each one."""
    missing = []
    for name in NEEDS.get(command, ()):
        value = getattr(settings, name)
        if name == "private_key":
            value = value if value is not None else settings.private_key_file
        if value is None:
            variables, what = WHAT[name]
            missing.append(MSG_NOT_SET.format(variables=variables, what=what))
    if missing:
        raise SettingsError(MSG_NEEDS.format(command=command, missing="; and ".join(missing)))
    return settings


def private_key_pem(settings: Settings) -> str:
    """The App's private key as PEM text, checked to be an RSA private key; SettingsError naming the
    variable it came from and what is wrong with it otherwise."""
    # Loaded here, not at import: only the commands that talk to GitHub pay for the crypto library.
    from cryptography.exceptions import UnsupportedAlgorithm  # noqa: PLC0415
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    text = settings.app_private_key()
    if settings.private_key is not None:
        variable = f"{ENV_PREFIX}PRIVATE_KEY"
    else:
        variable = f"{ENV_PREFIX}PRIVATE_KEY_FILE ({settings.private_key_file})"
    try:
        key = serialization.load_pem_private_key(text.encode("utf-8", "replace"), password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        reason = _why_not_a_key(text, exc)
        raise SettingsError(MSG_NOT_A_KEY.format(variable=variable, reason=reason)) from None
    if not isinstance(key, rsa.RSAPrivateKey):
        kind = type(key).__name__.removeprefix("_").replace("PrivateKey", "") or "non-RSA"
        raise SettingsError(MSG_NOT_RSA.format(variable=variable, kind=kind))
    return text


def _why_not_a_key(text: str, error: Exception) -> str:
    if "PUBLIC KEY-----" in text:
        return WHY_PUBLIC
    if "-----BEGIN" not in text:
        return WHY_NO_PEM
    if "\\n" in text and "\n" not in text.strip():
        return WHY_ESCAPED
    if isinstance(error, TypeError) or "ENCRYPTED" in text:
        return WHY_ENCRYPTED
    return WHY_UNREADABLE


def describe_decode_error(error: Exception) -> str:
    """A pydantic-settings decoding error (malformed JSON in a ``FERRY_*`` variable), for a person."""
    found = re.search(r'field "(\w+)"', str(error))
    name = found.group(1) if found else ""
    variable = ENV_PREFIX + name.upper() if name else "a FERRY_* setting"
    cause = error.__cause__
    if isinstance(cause, json.JSONDecodeError):
        message = MSG_NOT_JSON.format(
            variable=variable,
            what=cause.msg[:1].lower() + cause.msg[1:],
            line=cause.lineno,
            column=cause.colno,
            pos=cause.pos + 1,
        )
    else:
        message = f"{variable} could not be read: {cause.__class__.__name__ if cause else error}"
    if name in JSON_EXAMPLES:
        message += MSG_SHAPE.format(variable=variable, example=JSON_EXAMPLES[name])
    return message


def describe_validation_error(error: ValidationError, json_settings: Mapping[str, Sequence[str]]) -> str:
    """Every problem of a settings ValidationError, one clause each, naming the ``FERRY_*`` variable.

    ``json_settings`` maps each setting whose value is JSON to the keys an entry of it takes.
    """
    messages: list[str] = []
    examples: dict[str, str] = {}  # variable -> its example, once each, after every problem
    for problem in error.errors():
        name = str(problem["loc"][0])
        variable = ENV_PREFIX + name.upper()
        inside = ".".join(str(part) for part in problem["loc"][1:])
        text = _problem(problem, inside, json_settings.get(name, ()))
        if name == "webhook_secret" and problem["type"] == "value_error":
            text = " " + text.removeprefix(": ")  # "FERRY_WEBHOOK_SECRET is 5 bytes long; …"
        messages.append(f"{variable}: {inside}: {text}" if inside else f"{variable}{text}")
        if name in JSON_EXAMPLES:
            examples[variable] = JSON_EXAMPLES[name]
    shapes = "".join(MSG_SHAPE.format(variable=v, example=e) for v, e in examples.items())
    return "; ".join(messages) + shapes


def _problem(problem: Mapping[str, Any], inside: str, keys: Sequence[str]) -> str:
    """What is wrong, worded to follow ``VARIABLE`` (top level) or ``VARIABLE: path:`` (inside)."""
    kind = str(problem["type"])
    context = problem.get("ctx") or {}
    lead = "" if inside else ": "
    if kind == "missing":
        return "required but missing" if inside else " is required but not set"
    if kind in ("dict_type", "model_type", "model_attributes_type", "mapping_type"):
        shape = f" with keys {', '.join(keys)}" if inside and keys else ""
        return f"{lead}expected a JSON object{shape}"
    if kind == "extra_forbidden":
        return f"{lead}not a known key" + (f" (known: {', '.join(keys)})" if keys else "")
    if kind.startswith("url_"):
        return f"{lead}expected an absolute http:// or https:// URL"
    if kind in ("bool_parsing", "bool_type"):
        return f"{lead}expected true or false"
    if kind.startswith(("int_", "float_")):
        return f"{lead}expected a number"
    if kind == "string_type":
        return f"{lead}expected a string"
    if kind == "greater_than":
        bound = context.get("gt")
        zero = bound in (0, timedelta(0))
        return f"{lead}must be greater than {'zero' if zero else bound}"
    if kind == "literal_error":
        return f"{lead}expected {context.get('expected', 'one of the listed values')}"
    return lead + str(problem["msg"]).removeprefix("Value error, ")
