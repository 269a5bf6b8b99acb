"""tests/chat/slack/test_slack_replay.py on a Sentinel-managed master (fixtures in this folder's
conftest)."""

from tests.chat.slack.test_slack_replay import *  # noqa: F403
