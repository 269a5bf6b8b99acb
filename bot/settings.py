"""Typed settings from the environment and `.env`. Built once by the composition root
(`bot.__main__`), never at import time. Secrets are `SecretStr`: they never print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.errors import ConfigError


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        env_ignore_empty=True,  # `KEY=` in .env (as copied from .env.example) means unset
        extra="ignore",
        populate_by_name=True,
    )

    # -- state ------------------------------------------------------------------------------------
    redis_url: str | None = Field(default=None, alias="REDIS_URL")
    data_dir: Path = Field(default=Path(".aistatus"), alias="AISTATUS_DATA_DIR")
    redis_server_bin: str = Field(default="redis-server", alias="AISTATUS_REDIS_SERVER")
    # `aistatus demo` with REDIS_URL set replays into this db of that server, never REDIS_URL's own.
    demo_redis_db: int = Field(default=15, ge=0, le=65535, alias="AISTATUS_DEMO_REDIS_DB")

    # -- what to watch and how often --------------------------------------------------------------
    catalog_path: Path | None = Field(default=None, alias="AISTATUS_CATALOG")
    poll_interval: float = Field(default=15.0, gt=0, alias="AISTATUS_POLL_INTERVAL")
    probe_interval: float = Field(default=20.0, gt=0, alias="AISTATUS_PROBE_INTERVAL")
    # The fast path: a failing (or recovering) surface is re-probed this often until it reaches
    # the failure (success) threshold or passes; nothing extra while every probe agrees.
    probe_recheck_interval: float = Field(
        default=5.0, gt=0, alias="AISTATUS_PROBE_RECHECK_INTERVAL"
    )
    probes_enabled: bool = Field(default=True, alias="AISTATUS_PROBES")
    failure_threshold: int = Field(default=3, ge=1, le=100, alias="AISTATUS_FAILURE_THRESHOLD")
    success_threshold: int = Field(default=2, ge=1, le=100, alias="AISTATUS_SUCCESS_THRESHOLD")
    connect_timeout: float = Field(default=5.0, gt=0, alias="AISTATUS_CONNECT_TIMEOUT")
    read_timeout: float = Field(default=10.0, gt=0, alias="AISTATUS_READ_TIMEOUT")
    max_response_bytes: int = Field(default=2_000_000, gt=1024, alias="AISTATUS_MAX_RESPONSE_BYTES")
    history_length: int = Field(default=1000, ge=10, alias="AISTATUS_HISTORY_LENGTH")
    anthropic_api_key: SecretStr | None = Field(default=None, alias="ANTHROPIC_API_KEY")

    # -- crowd reports ----------------------------------------------------------------------------
    crowd_window: float = Field(default=600.0, gt=0, alias="AISTATUS_CROWD_WINDOW")
    # Crowd suspicion reaches every team only when it is spread (see README "Crowd reports").
    crowd_users: int = Field(default=6, ge=1, alias="AISTATUS_CROWD_USERS")
    crowd_workspaces: int = Field(default=3, ge=1, alias="AISTATUS_CROWD_WORKSPACES")
    crowd_users_one_workspace: int = Field(
        default=3, ge=1, alias="AISTATUS_CROWD_USERS_ONE_WORKSPACE"
    )

    # -- operators --------------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        default="INFO", alias="AISTATUS_LOG_LEVEL"
    )
    # Operators' endpoints (/healthz, /readyz, /metrics) listen on their own host, loopback unless
    # set: exposing Slack's HTTP mode (AISTATUS_HTTP_HOST) no longer exposes them. Their port is
    # AISTATUS_OPS_PORT, or AISTATUS_HTTP_PORT when unset (the older setting, kept working).
    ops_host: str = Field(default="127.0.0.1", alias="AISTATUS_OPS_HOST")
    ops_port: int | None = Field(default=None, ge=0, le=65535, alias="AISTATUS_OPS_PORT")
    http_host: str = Field(default="127.0.0.1", alias="AISTATUS_HTTP_HOST")  # Slack HTTP mode
    http_port: int = Field(default=8080, ge=0, le=65535, alias="AISTATUS_HTTP_PORT")
    # Every inbound server (operators' endpoints, Slack HTTP mode): connections held at once per
    # server (lowered to leave descriptors for outbound sockets), and seconds a client may take
    # to send a request's headers, then its body, before it gets 408 and is closed.
    inbound_max_connections: int = Field(
        default=256, ge=8, le=100_000, alias="AISTATUS_INBOUND_MAX_CONNECTIONS"
    )
    inbound_header_timeout: float = Field(
        default=10.0, gt=0, alias="AISTATUS_INBOUND_HEADER_TIMEOUT"
    )
    inbound_body_timeout: float = Field(default=10.0, gt=0, alias="AISTATUS_INBOUND_BODY_TIMEOUT")
    # When set, the JSON API and the web board need `Authorization: Bearer <token>`.
    api_token: SecretStr | None = Field(default=None, alias="AISTATUS_API_TOKEN")

    # -- status-page webhook receiver (off unless the secret is set) ----------------------------
    hook_secret: SecretStr | None = Field(default=None, alias="AISTATUS_HOOK_SECRET")
    hook_host: str = Field(default="127.0.0.1", alias="AISTATUS_HOOK_HOST")
    hook_port: int = Field(default=8081, ge=0, le=65535, alias="AISTATUS_HOOK_PORT")

    # -- Slack ------------------------------------------------------------------------------------
    slack_bot_token: SecretStr | None = Field(default=None, alias="SLACK_BOT_TOKEN")
    slack_app_token: SecretStr | None = Field(default=None, alias="SLACK_APP_TOKEN")
    slack_signing_secret: SecretStr | None = Field(default=None, alias="SLACK_SIGNING_SECRET")
    slack_api_url: str = Field(default="https://slack.com/api/", alias="SLACK_API_URL")
    slack_mode: Literal["socket", "http"] = Field(default="socket", alias="AISTATUS_SLACK_MODE")
    slack_port: int = Field(default=3000, ge=0, le=65535, alias="AISTATUS_SLACK_PORT")
    # Multi-workspace (OAuth install flow, installations in Redis) when both are set:
    slack_client_id: str | None = Field(default=None, alias="SLACK_CLIENT_ID")
    slack_client_secret: SecretStr | None = Field(default=None, alias="SLACK_CLIENT_SECRET")
    slack_redirect_uri: str | None = Field(default=None, alias="AISTATUS_SLACK_REDIRECT_URI")
    # Fernet key(s) encrypting installation tokens in Redis; required with OAuth. A comma-separated
    # list rotates: the first encrypts, all decrypt.
    encryption_key: SecretStr | None = Field(default=None, alias="AISTATUS_ENCRYPTION_KEY")

    # -- Discord ----------------------------------------------------------------------------------
    discord_token: SecretStr | None = Field(default=None, alias="DISCORD_TOKEN")
    discord_api_url: str = Field(default="https://discord.com/api/v10", alias="DISCORD_API_URL")
    discord_dev_guild_id: int | None = Field(default=None, alias="DISCORD_DEV_GUILD_ID")

    # -- delivery ---------------------------------------------------------------------------------
    delivery_workers: int = Field(default=32, ge=1, le=256, alias="AISTATUS_DELIVERY_WORKERS")
    delivery_max_attempts: int = Field(
        default=8, ge=1, le=100, alias="AISTATUS_DELIVERY_MAX_ATTEMPTS"
    )

    @property
    def slack_oauth_enabled(self) -> bool:
        """Multi-workspace Slack: installs via OAuth, tokens from the installation store."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    @property
    def operator_port(self) -> int:
        """Port of /healthz, /readyz, /metrics: AISTATUS_OPS_PORT, else AISTATUS_HTTP_PORT."""
        return self.ops_port if self.ops_port is not None else self.http_port

    def secret_values(self) -> list[str]:
        """Every configured secret, for the log redaction filter."""
        values = [getattr(self, name) for name in type(self).model_fields]
        return [v.get_secret_value() for v in values if isinstance(v, SecretStr)]

    @property
    def slack_enabled(self) -> bool:
        return self.slack_bot_token is not None or self.slack_oauth_enabled

    @property
    def discord_enabled(self) -> bool:
        return self.discord_token is not None


def load_settings(env_file: str | Path | None = ".env", **overrides: object) -> Settings:
    """Settings from the environment and `env_file`. Raises: ConfigError naming key and file."""
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as e:
        err = e.errors()[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        where = f"the environment or {env_file}" if env_file else "the environment"
        value = err.get("input")
        raise ConfigError(
            f"{key} (from {where}): {err['msg']} (value {value!r})",
            source=str(env_file or "environment"),
            key=key,
        ) from e
