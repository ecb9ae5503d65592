"""The App's own settings: one typed object, built once at start-up and passed down.

Read from ``FERRY_*`` environment variables, and from the JSON or YAML file named by
``FERRY_SETTINGS_FILE`` when set (environment variables win). Never from the GitOps repository.
Secrets are ``SecretStr``: they print as ``**********`` and never reach logs or PR text.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.core.durations import DurationError, format_duration, parse_duration
from bot.errors import SettingsError
from bot.settings_checks import ENV_PREFIX, describe_decode_error, describe_validation_error

DEFAULT_GITHUB_URL = "https://api.github.com"
# With an empty or short secret anyone can sign a delivery (a forged merge event would make Ferry sync
# the commit it names). GitHub's docs ask for "a random string with high entropy"; 16 bytes is 128 bits.
MIN_WEBHOOK_SECRET_BYTES = 16
SHORT_WEBHOOK_SECRET = (
    "is {length} bytes long; use at least {minimum} random bytes (e.g. `openssl rand -hex 32`), and the same "
    "value as the App's webhook secret on GitHub"
)


MSG_DURATION = (
    "expected a duration such as 30s, 5m or 1h30m (as in the pipeline config) or ISO 8601 such as PT30S; "
    'got "{got}"'
)
_TIMEDELTA = TypeAdapter(timedelta)


def _setting_duration(value: Any) -> timedelta:
    """A duration setting in the pipeline config's form (``1s``, ``5m``, ``1h30m``, see
    ``bot.core.durations``) or as pydantic has always read them (ISO 8601 ``PT1S``, ``00:00:05``)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, str):
        try:
            return parse_duration(value)
        except DurationError:
            pass
    try:
        return _TIMEDELTA.validate_python(value.strip() if isinstance(value, str) else value)
    except ValidationError:
        raise ValueError(MSG_DURATION.format(got=value)) from None


SettingDuration = Annotated[timedelta, BeforeValidator(_setting_duration)]


class ArgoCDServer(BaseModel):
    """One Argo CD API server, named in the pipeline config by ``argocd.server``."""

    model_config = ConfigDict(extra="forbid")

    url: AnyHttpUrl
    token: SecretStr
    insecure: bool = Field(False, description="skip TLS verification (self-signed test servers only)")
    ca_file: Path | None = None
    timeout: float = Field(10.0, gt=0, description="seconds per request")


class RegistryAccess(BaseModel):
    """Credentials and transport for one registry host (``ghcr.io``, ``docker.io``, ``127.0.0.1:5000``)."""

    model_config = ConfigDict(extra="forbid")

    username: str | None = None
    password: SecretStr | None = None
    insecure: bool = Field(False, description="plain HTTP; always allowed for loopback hosts")
    requests_per_second: float = Field(10.0, gt=0)


class Settings(BaseSettings):
    """Everything Ferry needs that is not in the GitOps repository."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", populate_by_name=True)

    app_id: int | None = Field(None, description="the GitHub App's id")
    private_key: SecretStr | None = Field(None, description="the App's PEM private key")
    private_key_file: Path | None = Field(None, description="file holding the App's PEM private key")
    webhook_secret: SecretStr | None = Field(
        None, description="the secret GitHub signs webhook deliveries with (`ferry serve` requires it)"
    )
    github_url: AnyHttpUrl = Field(
        AnyHttpUrl(DEFAULT_GITHUB_URL), description="REST API root; GitHub Enterprise Server or the sandbox"
    )
    argocd_servers: dict[str, ArgoCDServer] = Field(default_factory=dict)
    registries: dict[str, RegistryAccess] = Field(default_factory=dict)
    poll_fast: SettingDuration = Field(
        timedelta(seconds=5), gt=timedelta(0), description="reconcile interval while a stage syncs (5s, PT5S)"
    )
    poll_idle: SettingDuration = Field(
        timedelta(minutes=5), gt=timedelta(0), description="reconcile interval when all is quiet (5m, PT5M)"
    )
    github_timeout: float = Field(10.0, gt=0, description="seconds per GitHub request")
    drain_timeout: SettingDuration = Field(
        timedelta(seconds=20),
        gt=timedelta(0),
        description="on SIGTERM, how long in-flight deliveries and passes may take to finish (20s)",
    )
    command_max_age: SettingDuration = Field(
        timedelta(hours=1),
        gt=timedelta(0),
        description="a /promote or /rollback Ferry could not answer within this is answered as expired (1h)",
    )
    command_lookback: SettingDuration = Field(
        timedelta(hours=24),
        gt=timedelta(0),
        description="after a start-up, how far back Ferry looks for comment commands nobody answered (24h)",
    )
    command_claim_timeout: SettingDuration = Field(
        timedelta(minutes=2),
        gt=timedelta(0),
        description="how long a command another replica claimed (its 👀) may stay unanswered before "
        "any replica answers it (2m)",
    )
    shard: str = Field("0/1", description="i/n: reconcile the repositories whose stable hash mod n is i")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    settings_file: Path | None = Field(None, description="JSON or YAML file with any of these settings")

    @field_validator("webhook_secret")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None  # only `ferry serve` needs it (bot.settings_checks.require names it there)
        length = len(value.get_secret_value().encode())
        if length < MIN_WEBHOOK_SECRET_BYTES:
            raise ValueError(SHORT_WEBHOOK_SECRET.format(length=length, minimum=MIN_WEBHOOK_SECRET_BYTES))
        return value

    @field_validator("shard")
    @classmethod
    def _shard_is_i_of_n(cls, value: str) -> str:
        index, _, count = value.partition("/")
        if not (index.isdigit() and count.isdigit() and 0 <= int(index) < int(count)):
            raise ValueError(f'expected "i/n" with 0 <= i < n, e.g. "0/3"; got "{value}"')
        return value

    @field_validator("command_lookback")
    @classmethod
    def _lookback_covers_max_age(cls, value: timedelta, info: ValidationInfo) -> timedelta:
        max_age = info.data.get("command_max_age")
        if isinstance(max_age, timedelta) and value < max_age:
            raise ValueError(
                f"{format_duration(value)} is shorter than {ENV_PREFIX}COMMAND_MAX_AGE "
                f"({format_duration(max_age)}); a command Ferry may still run must be one it looks for"
            )
        return value

    @property
    def shard_index_count(self) -> tuple[int, int]:
        index, _, count = self.shard.partition("/")
        return int(index), int(count)

    def app_private_key(self) -> str:
        """The PEM private key, from the setting or its file."""
        if self.private_key is not None:
            return self.private_key.get_secret_value()
        if self.private_key_file is not None:
            try:
                return self.private_key_file.read_text()
            except OSError as exc:
                raise SettingsError(
                    f"{ENV_PREFIX}PRIVATE_KEY_FILE: cannot read {self.private_key_file}: {exc.strerror}"
                ) from exc
        raise SettingsError(
            f"set {ENV_PREFIX}PRIVATE_KEY or {ENV_PREFIX}PRIVATE_KEY_FILE to the App's PEM key"
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _SettingsFileSource(settings_cls))


class _SettingsFileSource(PydanticBaseSettingsSource):
    """Values from ``FERRY_SETTINGS_FILE`` (JSON, or YAML when the name ends in .yml/.yaml)."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = os.environ.get(f"{ENV_PREFIX}SETTINGS_FILE")
        if not path:
            return {}
        try:
            text = Path(path).read_text()
        except OSError as exc:
            raise SettingsError(f"{ENV_PREFIX}SETTINGS_FILE: cannot read {path}: {exc.strerror}") from exc
        kind = "YAML" if path.endswith((".yml", ".yaml")) else "JSON"
        try:
            data = YAML(typ="safe").load(text) if kind == "YAML" else json.loads(text)
        except (ValueError, YAMLError) as exc:
            raise SettingsError(f"{ENV_PREFIX}SETTINGS_FILE: {path} is not valid {kind}: {exc}") from None
        if not isinstance(data, dict):
            raise SettingsError(f"{ENV_PREFIX}SETTINGS_FILE: {path} must hold a mapping of settings")
        return data


def load_settings(**overrides: Any) -> Settings:
    """Build the settings, or raise SettingsError naming the variable that is missing or malformed."""
    try:
        return Settings(**overrides)
    except PydanticSettingsError as exc:
        # pydantic-settings could not decode a variable (malformed JSON in a mapping setting).
        raise SettingsError(describe_decode_error(exc)) from None
    except ValidationError as exc:
        raise SettingsError(describe_validation_error(exc, _JSON_SETTINGS)) from None


# The settings whose value is JSON, with the keys each entry of theirs takes (for error messages).
_JSON_SETTINGS = {
    "argocd_servers": tuple(ArgoCDServer.model_fields),
    "registries": tuple(RegistryAccess.model_fields),
}
