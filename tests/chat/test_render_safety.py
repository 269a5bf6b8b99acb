"""Page-controlled text and links in alerts, on both platforms: markdown from a status page is
literal text in Discord embeds, and only http(s) URLs become links or buttons."""

from __future__ import annotations

import json
import re

import pytest

from bot.chat.discord.render import escape_markdown, to_discord_message
from bot.chat.slack.render import to_slack_blocks
from bot.core.model import Backup, Status
from tests.helpers import make_alert

EVIL = "javascript:alert(document.cookie)"


def test_a_masked_link_in_page_text_is_not_live_in_discord():
    alert = make_alert(
        incident_title="Login [click here](https://evil.example/phish) **now**",
        update_text="Reset at [this link](https://evil.example) `code` <t:1:R>",
    )
    description = to_discord_message(alert)["embeds"][0]["description"]
    # One escaping, discord.py's own (tested against it in test_discord_render): a masked link's
    # `[` gets a backslash, so Discord shows it as text; emphasis and code are literal too.
    assert not re.search(r"(?<!\\)\[[^\]]*\]\(", description), "a live masked link"
    assert "\\[click here](https://evil.example/phish) \\*\\*now\\*\\*" in description
    assert "\\[this link](https://evil.example) \\`code\\`" in description


@pytest.mark.parametrize("url", [EVIL, "data:text/html,hi", "https://ok.example/ x", "ftp://x"])
def test_only_http_urls_become_the_embed_link_and_button(url: str):
    alert = make_alert(
        url=url, backups=(Backup("chatgpt", "ChatGPT", url, Status.OPERATIONAL, False),)
    )
    message = to_discord_message(alert)
    text = json.dumps(message)
    assert url not in text
    assert "url" not in message["embeds"][0]
    slack = json.dumps(to_slack_blocks(alert))
    assert url not in slack


def test_escaping_keeps_ordinary_text_readable():
    assert escape_markdown("Elevated errors (API) on claude.ai.") == (
        "Elevated errors (API) on claude.ai."
    )
