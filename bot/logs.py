"""Logging for Ferry: one call at start-up, JSON lines (or plain text) on stderr, secrets scrubbed.

``configure_logging`` installs a single handler on the root logger, so records from Ferry and from the
libraries it uses (aiohttp, httpx, githubkit) all pass through the same formatter. The formatter replaces
every known secret value, and anything shaped like a credential (GitHub tokens, JWTs, PEM blocks,
``Bearer``/``token`` authorization values), with ``[redacted]`` in the message, in every ``extra=`` field
and in tracebacks. Scrubbing happens before JSON encoding, so a secret is caught even when it contains
characters JSON would escape (a PEM key's newlines).

Usage::

    log = get_logger(__name__)
    log.info("pass done", extra={"repo": "acme/gitops", "actions": 3})
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TextIO

from bot.errors import SettingsError

if TYPE_CHECKING:
    from bot.settings import Settings

REDACTED: Final = "[redacted]"
MSG_BAD_LEVEL: Final = 'FERRY_LOG_LEVEL: "{level}" is not one of DEBUG, INFO, WARNING, ERROR, CRITICAL'

# Shapes of credentials that must never be logged even when nobody told us their value.
_CREDENTIAL_PATTERNS: Final = (
    # PEM blocks (private keys above all); an unterminated block is scrubbed to the end of the text.
    re.compile(r"-----BEGIN [A-Z0-9 ]+-----[\s\S]*?(?:-----END [A-Z0-9 ]+-----|\Z)"),
    # GitHub tokens: personal ghp_, OAuth gho_, user-to-server ghu_, installation ghs_, refresh ghr_.
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"\bgithub_pat_[A-Za-z0-9_]{20,}"),
    # JSON Web Tokens (the App's own JWT): base64url header "{"... dot payload dot signature.
    re.compile(r"\beyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),
)
# "Bearer x" anywhere, and whatever follows an Authorization header ("token x", "Basic x", a bare value);
# the scheme is kept so the log still says what kind of credential was sent.
_AUTH_VALUES: Final = (
    re.compile(r"(?i)\b(bearer\s+)(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}"),
    re.compile(
        r"(?i)(\bauthorization[\"']?\s*[:=]\s*[\"']?(?:(?:token|basic|bearer)\s+)?)"
        r"(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}"
    ),
)


# Every pattern above needs one of these (lower-cased) substrings: text with none of them is skipped fast.
def _may_hold_credential(value: str) -> bool:
    lowered = value.lower()
    return (
        "gh" in lowered
        or "eyj" in lowered
        or "-----begin" in lowered
        or "bearer" in lowered
        or "authorization" in lowered
    )


# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName"}
)
_HANDLER_NAME: Final = "ferry"


class Redactor:
    """Replaces secret values and credential-shaped strings with ``[redacted]``."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        # Longest first, so a secret that contains another is replaced whole.
        self._secrets = sorted({value for value in secrets if value}, key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        if not _may_hold_credential(value):
            return value
        for pattern in _CREDENTIAL_PATTERNS:
            value = pattern.sub(REDACTED, value)
        for pattern in _AUTH_VALUES:
            value = pattern.sub(rf"\1{REDACTED}", value)
        return value

    def value(self, value: Any) -> Any:
        """Scrub a field value of any shape; what JSON cannot hold is turned into text first."""
        if isinstance(value, str):
            return self.text(value)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, Mapping):
            return {str(key): self.value(item) for key, item in value.items()}
        if isinstance(value, list | tuple | set | frozenset):
            return [self.value(item) for item in value]
        return self.text(str(value))


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra=`` fields attached to a record."""
    return {key: value for key, value in vars(record).items() if key not in _RECORD_ATTRIBUTES}


class _JsonFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor
        self._cached_second = (-1, "")

    def _second(self, epoch: int) -> str:
        # Busy servers log many lines per second; format each second's UTC time once.
        if self._cached_second[0] != epoch:
            self._cached_second = (epoch, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)))
        return self._cached_second[1]

    def format(self, record: logging.LogRecord) -> str:
        scrub = self._redactor
        entry: dict[str, Any] = {
            "ts": f"{self._second(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": scrub.text(record.getMessage()),
        }
        for key, value in extra_fields(record).items():
            entry.setdefault(key, scrub.value(value))
        if record.exc_info:
            entry["exc"] = scrub.text(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub.text(self.formatStack(record.stack_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


class _TextFormatter(logging.Formatter):
    def __init__(self, redactor: Redactor) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        line = self._redactor.text(super().format(record))
        fields = extra_fields(record)
        if not fields:
            return line
        rendered = " ".join(
            f"{key}={json.dumps(self._redactor.value(value), ensure_ascii=False, default=str)}"
            for key, value in fields.items()
        )
        return f"{line} {rendered}"


def configure_logging(
    level: str,
    fmt: Literal["json", "text"],
    *,
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> None:
    """Send every log record to stderr (or ``stream``) as JSON lines or text, with secrets scrubbed.

    Calling it again replaces the handler it installed before, so tests and ``ferry serve`` can both call it.
    """
    numeric_level = logging.getLevelName(level.upper())
    if not isinstance(numeric_level, int):
        raise SettingsError(MSG_BAD_LEVEL.format(level=level))
    redactor = Redactor(secrets)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(_JsonFormatter(redactor) if fmt == "json" else _TextFormatter(redactor))
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)


def settings_secrets(settings: Settings) -> list[str]:
    """Every secret value held in the settings, for ``configure_logging(secrets=...)``."""
    values = []
    if settings.webhook_secret is not None:
        values.append(settings.webhook_secret.get_secret_value())
    if settings.private_key is not None:
        values.append(settings.private_key.get_secret_value())
    values.extend(server.token.get_secret_value() for server in settings.argocd_servers.values())
    values.extend(
        access.password.get_secret_value()
        for access in settings.registries.values()
        if access.password is not None
    )
    return values


def get_logger(name: str) -> logging.Logger:
    """A standard logger; pass structured fields with ``extra={...}``."""
    return logging.getLogger(name)
