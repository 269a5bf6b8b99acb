"""Typed settings from the environment and `.env`. Built once by the composition root
(`bot.__main__`), never at import time. Secrets are `SecretStr`: they never print.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from bot.core.catalog import Catalog
from bot.errors import ConfigError, ConfigProblem

if TYPE_CHECKING:
    from bot.store.crypto import TokenCipher


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
    # text: one readable line per record; json: one JSON object per line with its context
    # (surface, provider, outage, channel, attempt) for Loki, journald or Cloud Logging.
    log_format: Literal["text", "json"] = Field(default="text", alias="AISTATUS_LOG_FORMAT")
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
    # `platform`: pace to Slack's and Discord's published limits; `off`: no client-side pacing
    # (a staging chat server without those limits, benchmarks); 429s are honoured either way.
    delivery_pacing: Literal["platform", "off"] = Field(
        default="platform", alias="AISTATUS_DELIVERY_PACING"
    )

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, v: Any) -> Any:  # AISTATUS_LOG_LEVEL=info is as good as INFO
        return v.strip().upper() if isinstance(v, str) else v

    @field_validator("log_format", "slack_mode", "delivery_pacing", mode="before")
    @classmethod
    def _lower(cls, v: Any) -> Any:  # AISTATUS_SLACK_MODE=HTTP is as good as http
        return v.strip().lower() if isinstance(v, str) else v

    @property
    def slack_oauth_enabled(self) -> bool:
        """Multi-workspace Slack: installs via OAuth, tokens from the installation store."""
        return self.slack_client_id is not None and self.slack_client_secret is not None

    def cipher(self) -> TokenCipher | None:
        """The TokenCipher over AISTATUS_ENCRYPTION_KEY, or None when it is unset.
        Raises: ConfigError for a key that is not a Fernet key."""
        from bot.store.crypto import TokenCipher

        if self.encryption_key is None:
            return None
        return TokenCipher.from_setting(self.encryption_key.get_secret_value())

    def required_cipher(self, needed_for: str) -> TokenCipher:
        """The cipher, for `needed_for` (what keeps secrets in Redis). Raises: ConfigError
        naming AISTATUS_ENCRYPTION_KEY and how to make one when it is unset."""
        from bot.store.crypto import HOW_TO_GENERATE, KEY_SETTING

        cipher = self.cipher()
        if cipher is None:
            raise ConfigError(
                f"{needed_for} need {KEY_SETTING} to encrypt the secrets kept in Redis; make "
                f"one with {HOW_TO_GENERATE} and set it in the environment or .env",
                key=KEY_SETTING,
            )
        return cipher

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


def load_settings(
    env_file: str | Path | None = ".env", *, require_file: bool = False, **overrides: object
) -> Settings:
    """Settings from the environment and `env_file` (`require_file`: a missing file is an error,
    as when the operator named it). Raises: ConfigError with every bad value at once, each
    naming the key, where it came from and the fix."""
    if require_file and env_file is not None and not Path(env_file).exists():
        raise ConfigError.of(
            [
                ConfigProblem(
                    "--env-file",
                    str(env_file),
                    "no such file",
                    "check the path, or leave --env-file out to read ./.env when present",
                )
            ]
        )
    try:
        return Settings(_env_file=env_file, **overrides)  # type: ignore[call-arg]
    except ValidationError as e:
        file_keys = {k.upper() for k in _file_values(env_file)}
        env_keys = {k.upper() for k in os.environ}
        fields = {f.alias: f for f in Settings.model_fields.values() if f.alias}
        problems = []
        for err in e.errors():
            key = str(err["loc"][0]) if err["loc"] else "?"
            if key.upper() in env_keys or env_file is None:
                where = "the environment"
            elif key.upper() in file_keys:
                where = str(env_file)
            else:
                where = f"the environment or {env_file}"
            field = fields.get(key)
            default = "" if field is None or field.default is None else f" ({field.default})"
            problems.append(
                ConfigProblem(
                    key,
                    where,
                    f"{err['msg']} (value {err.get('input')!r})",
                    f"correct it, or remove it to use the default{default}",
                )
            )
        raise ConfigError.of(problems) from e


# Read by our scripts, not by the bot: known, so never reported as misspelled.
SCRIPT_KEYS = frozenset({"AISTATUS_VENV"})
PREFIXES = ("AISTATUS_", "SLACK_", "DISCORD_")


def known_keys() -> frozenset[str]:
    """Every environment key the bot or its scripts read."""
    aliases = {f.alias for f in Settings.model_fields.values() if f.alias}
    return frozenset(aliases) | SCRIPT_KEYS


def unknown_keys(
    env_file: str | Path | None, environ: Mapping[str, str] | None = None
) -> list[ConfigProblem]:
    """`AISTATUS_*`, `SLACK_*` and `DISCORD_*` keys (in the environment and `env_file`) that no
    setting reads: usually a typo, named with the closest known key."""
    known = known_keys()
    env = os.environ if environ is None else environ
    sources = [("the environment", list(env)), (str(env_file), list(_file_values(env_file)))]
    problems = []
    for where, keys in sources:
        for key in sorted({k.upper() for k in keys}):
            if not key.startswith(PREFIXES) or key in known:
                continue
            close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            fix = f"did you mean {close[0]}?" if close else "remove it (see .env.example)"
            problems.append(ConfigProblem(key, where, "no setting has this name", fix))
    return problems


def _file_values(env_file: str | Path | None) -> Mapping[str, str | None]:
    if env_file is None or not Path(env_file).is_file():
        return {}
    return dotenv_values(env_file)


POLL_REFUSED = 1.0  # seconds: faster than this is a flood of the status page, refused
POLL_WARNED = 10.0  # seconds: faster than this works, but is worth a line


def rules(settings: Settings, catalog: Catalog) -> list[ConfigProblem]:
    """The cross-field rules and bounds, the same for `run` and `check-config`:
    1) Slack in Socket Mode needs SLACK_APP_TOKEN; in HTTP mode SLACK_SIGNING_SECRET;
    2) OAuth (many workspaces) needs SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and
       AISTATUS_SLACK_REDIRECT_URI together, and HTTP mode for its install pages;
       and AISTATUS_ENCRYPTION_KEY (a Fernet key, or a comma-separated list) to encrypt the
       installation tokens it keeps in Redis;
    3) a poll interval under POLL_REFUSED s is refused, under POLL_WARNED s warned — unless every
       status page polled at that rate is on loopback (a demo, a test, a local mirror)."""
    where = "the settings"
    out: list[ConfigProblem] = []
    if settings.slack_enabled and settings.slack_mode == "socket" and not settings.slack_app_token:
        out.append(ConfigProblem(
            "SLACK_APP_TOKEN", where, "Slack's Socket Mode (the default) needs an app token",
            "set SLACK_APP_TOKEN=xapp-… (scope connections:write), or AISTATUS_SLACK_MODE=http",
        ))  # fmt: skip
    http = settings.slack_mode == "http"
    if settings.slack_enabled and http and not settings.slack_signing_secret:
        out.append(ConfigProblem(
            "SLACK_SIGNING_SECRET", where, "AISTATUS_SLACK_MODE=http verifies every request",
            "set SLACK_SIGNING_SECRET (Slack app > Basic Information > Signing Secret)",
        ))  # fmt: skip
    trio = {
        "SLACK_CLIENT_ID": settings.slack_client_id,
        "SLACK_CLIENT_SECRET": settings.slack_client_secret,
        "AISTATUS_SLACK_REDIRECT_URI": settings.slack_redirect_uri,
    }
    if any(trio.values()):
        for key in (k for k, v in trio.items() if not v):
            out.append(ConfigProblem(
                key, where, "Slack OAuth (many workspaces) needs all of " + ", ".join(trio),
                f"set {key}, or unset the others for a single workspace (SLACK_BOT_TOKEN)",
            ))  # fmt: skip
        if settings.slack_mode != "http":
            out.append(ConfigProblem(
                "AISTATUS_SLACK_MODE", where, "the OAuth install pages need HTTP mode",
                "set AISTATUS_SLACK_MODE=http (and SLACK_SIGNING_SECRET)",
            ))  # fmt: skip
    if settings.slack_oauth_enabled or settings.encryption_key is not None:
        out.extend(_encryption_rule(settings))
    fast: dict[tuple[str, float], list[str]] = {}  # (key, seconds) -> the pages polled so
    for pid in catalog.watched_providers():
        provider = catalog.providers[pid]
        every = provider.poll_interval or settings.poll_interval
        if every >= POLL_WARNED or _loopback(provider.statuspage or ""):
            continue
        key = "AISTATUS_POLL_INTERVAL" if provider.poll_interval is None else f"{pid}.poll_interval"
        fast.setdefault((key, every), []).append(pid)
    for (key, every), pages in fast.items():
        rate = f"polls {', '.join(pages)} every {every:g} s"
        if every < POLL_REFUSED:
            out.append(ConfigProblem(
                key, where, f"{rate}: a flood of someone else's status page",
                f"use {POLL_WARNED:g} s or more (the default is 15)",
            ))  # fmt: skip
        else:
            out.append(ConfigProblem(
                key, where, f"{rate}: faster than a status page changes",
                f"use {POLL_WARNED:g} s or more unless you own the page", warning=True,
            ))  # fmt: skip
    return out


def _encryption_rule(settings: Settings) -> list[ConfigProblem]:
    """OAuth keeps installation tokens in Redis, encrypted: AISTATUS_ENCRYPTION_KEY must be set
    then, and when set it must hold Fernet keys."""
    from bot.store.crypto import HOW_TO_GENERATE, KEY_SETTING, TokenCipher

    if settings.encryption_key is None:
        return [ConfigProblem(
            KEY_SETTING, "the settings",
            "Slack OAuth (SLACK_CLIENT_ID/SLACK_CLIENT_SECRET) keeps installation tokens in Redis, "
            "encrypted with this key",
            f"make one with {HOW_TO_GENERATE} and set it in the environment or .env",
        )]  # fmt: skip
    try:
        TokenCipher.from_setting(settings.encryption_key.get_secret_value())
    except ConfigError:
        return [ConfigProblem(
            KEY_SETTING, "the settings",
            "not a Fernet key (32 url-safe base64 bytes; a comma-separated list rotates)",
            f"make one with {HOW_TO_GENERATE}",
        )]  # fmt: skip
    return []


def _loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")
