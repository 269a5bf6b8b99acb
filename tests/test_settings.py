"""Settings as an operator writes them: .env.example is complete and loads as the defaults."""

from __future__ import annotations

import re

import pytest

from bot.core.model import Platform
from bot.delivery.config import DeliveryConfig
from bot.delivery.pacing import DISCORD, SLACK, UNLIMITED
from bot.errors import ConfigError
from bot.settings import Settings, load_settings
from tests.helpers import ROOT

ALIASES = {f.alias for f in Settings.model_fields.values() if f.alias}


def test_every_setting_is_in_env_example_and_the_readme():
    example = (ROOT / ".env.example").read_text()
    readme = (ROOT / "README.md").read_text()
    listed = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", example, flags=re.M))
    assert listed == ALIASES
    missing = sorted(a for a in ALIASES if a not in readme)
    assert missing == [], f"README does not document {missing}"


def test_env_example_copied_as_is_loads_the_defaults(monkeypatch):
    for alias in ALIASES:
        monkeypatch.delenv(alias, raising=False)
    s = load_settings(ROOT / ".env.example")
    assert s == Settings(_env_file=None)
    assert not s.slack_enabled and not s.discord_enabled and s.redis_url is None


def test_secrets_never_print(monkeypatch):
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-very-secret")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-secret")
    s = load_settings(None)
    assert "very-secret" not in repr(s) and "sk-ant-secret" not in str(s.model_dump())


def test_a_bad_value_names_the_key_and_the_file(tmp_path, monkeypatch):
    monkeypatch.delenv("AISTATUS_SLACK_MODE", raising=False)
    env = tmp_path / "prod.env"
    env.write_text("AISTATUS_SLACK_MODE=carrier-pigeon\n")
    with pytest.raises(ConfigError) as e:
        load_settings(env)
    assert "AISTATUS_SLACK_MODE" in str(e.value) and str(env) in str(e.value)
    assert "carrier-pigeon" in str(e.value)


@pytest.mark.parametrize(
    ("value", "limited"), [("platform", True), ("OFF", False), (None, True)], ids=str
)
def test_delivery_pacing_off_turns_the_platform_limits_off(monkeypatch, value, limited):
    if value is None:
        monkeypatch.delenv("AISTATUS_DELIVERY_PACING", raising=False)
    else:
        monkeypatch.setenv("AISTATUS_DELIVERY_PACING", value)
    pacing = DeliveryConfig.from_settings(load_settings(None)).pacing
    assert (pacing[Platform.SLACK] == SLACK and pacing[Platform.DISCORD] == DISCORD) is limited
    assert limited or all(p == UNLIMITED for p in pacing.values())
