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
from typing import Any, Literal

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as PydanticSettingsError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from bot.errors import SettingsError

ENV_PREFIX = "FERRY_"
DEFAULT_GITHUB_URL = "https://api.github.com"
# With an empty or short secret anyone can sign a delivery (a forged merge event would make Ferry sync
# the commit it names). GitHub's docs ask for "a random string with high entropy"; 16 bytes is 128 bits.
MIN_WEBHOOK_SECRET_BYTES = 16
SHORT_WEBHOOK_SECRET = (
    "is {length} bytes long; use at least {minimum} random bytes (e.g. `openssl rand -hex 32`), and the same "
    "value as the App's webhook secret on GitHub"
)


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
    webhook_secret: SecretStr = Field(description="the secret GitHub signs webhook deliveries with")
    github_url: AnyHttpUrl = Field(
        AnyHttpUrl(DEFAULT_GITHUB_URL), description="REST API root; GitHub Enterprise Server or the sandbox"
    )
    argocd_servers: dict[str, ArgoCDServer] = Field(default_factory=dict)
    registries: dict[str, RegistryAccess] = Field(default_factory=dict)
    poll_fast: timedelta = Field(timedelta(seconds=5), description="reconcile interval while a stage syncs")
    poll_idle: timedelta = Field(timedelta(minutes=5), description="reconcile interval when all is quiet")
    github_timeout: float = Field(10.0, gt=0, description="seconds per GitHub request")
    shard: str = Field("0/1", description="i/n: reconcile the repositories whose stable hash mod n is i")
    log_level: str = "INFO"
    log_format: Literal["json", "text"] = "json"
    settings_file: Path | None = Field(None, description="JSON or YAML file with any of these settings")

    @field_validator("webhook_secret")
    @classmethod
    def _secret_is_long_enough(cls, value: SecretStr) -> SecretStr:
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
        raise SettingsError(f"{_variable_in(str(exc))}: {exc}") from None
    except ValidationError as exc:
        messages = []
        for error in exc.errors():
            # The variable is the top-level field; deeper parts are a path inside its value (JSON).
            variable = ENV_PREFIX + str(error["loc"][0]).upper()
            inside = ".".join(str(part) for part in error["loc"][1:])
            subject = f"{variable}: {inside}" if inside else variable
            if error["type"] == "missing":
                messages.append(f"{subject} is required but not set")
            elif error["loc"] == ("webhook_secret",):
                messages.append(f"{subject} {str(error['msg']).removeprefix('Value error, ')}")
            else:
                messages.append(f"{subject}: {error['msg']}")
        raise SettingsError("; ".join(messages)) from None


def _variable_in(message: str) -> str:
    """The FERRY_* variable a pydantic-settings error is about, as it names the field."""
    for name in Settings.model_fields:
        if f'"{name}"' in message:
            return ENV_PREFIX + name.upper()
    return "a FERRY_* setting"
