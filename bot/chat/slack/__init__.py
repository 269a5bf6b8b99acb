"""Slack: the Bolt app and runners, the sender (IO), and the Block Kit renderer (pure)."""
