"""tests/chat/slack/test_slack_replay.py on a 3-master Redis Cluster."""

from tests.chat.slack.test_slack_replay import *  # noqa: F403
