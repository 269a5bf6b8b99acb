"""The Slack app manifest is valid and asks for exactly the scopes the code needs."""

from __future__ import annotations

import re
from importlib import resources

import pytest
import yaml
from slack_sdk.web.async_client import AsyncWebClient

from bot.chat import slack
from bot.chat.slack.app import COMMAND, REQUIRED_SCOPES, required_scopes
from tests.helpers import ROOT

MANIFEST = ROOT / "manifests" / "slack-app.yaml"
SCOPE = re.compile(r"^[a-z]+(?:[.:][a-z_]+)*$")


@pytest.fixture(scope="module")
def manifest() -> dict:
    data = yaml.safe_load(MANIFEST.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def test_the_manifest_has_the_sections_slack_requires(manifest: dict) -> None:
    info = manifest["display_information"]
    assert 0 < len(info["name"]) <= 35
    assert 0 < len(info["description"]) <= 140
    assert 175 <= len(info["long_description"]) <= 4000
    assert re.fullmatch(r"#[0-9a-fA-F]{6}", info["background_color"])
    assert 0 < len(manifest["features"]["bot_user"]["display_name"]) <= 80


def test_the_app_home_shows_the_board_and_a_read_only_messages_tab(manifest: dict) -> None:
    home = manifest["features"]["app_home"]
    assert home["home_tab_enabled"] is True
    # The bot writes there (a subscriber told their channel stopped); people cannot write back.
    assert home["messages_tab_enabled"] is True
    assert home["messages_tab_read_only_enabled"] is True
    assert manifest["settings"]["event_subscriptions"]["bot_events"] == ["app_home_opened"]


def test_the_slash_command_is_registered_with_a_usage_hint(manifest: dict) -> None:
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == COMMAND
    assert 0 < len(command["description"]) <= 2000
    assert 0 < len(command["usage_hint"]) <= 1000
    assert "subscribe" in command["usage_hint"]


def test_socket_mode_and_interactivity_are_on(manifest: dict) -> None:
    settings = manifest["settings"]
    assert settings["socket_mode_enabled"] is True
    assert settings["interactivity"]["is_enabled"] is True  # the alert buttons


def test_the_bot_scopes_are_exactly_what_the_code_needs(manifest: dict) -> None:
    scopes = manifest["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes))
    assert all(SCOPE.match(s) for s in scopes)
    assert set(scopes) == required_scopes()
    assert "user" not in manifest["oauth_config"]["scopes"]  # bot-only: no user tokens


def _snake(method: str) -> str:
    return method.replace(".", "_")


def test_every_required_scope_entry_names_a_real_slack_method() -> None:
    for method in REQUIRED_SCOPES:
        assert method == COMMAND or hasattr(AsyncWebClient, _snake(method)), method


def test_every_slack_method_the_code_calls_is_listed_with_its_scopes() -> None:
    package = resources.files(slack.__name__)
    source = "\n".join(f.read_text("utf-8") for f in package.iterdir() if f.name.endswith(".py"))
    called = {
        name.replace("_", ".")
        for name in re.findall(r"\.([a-z]+(?:_[A-Za-z]+)+)\(", source)
        if callable(getattr(AsyncWebClient, name, None))
        and name not in dir(object)
        and not name.startswith("_")
        and name != "api_call"
    }
    assert {"chat.postMessage", "chat.update", "views.publish"} <= called
    assert called <= set(REQUIRED_SCOPES), called - set(REQUIRED_SCOPES)
