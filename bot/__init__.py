"""aistatus: is Claude down, or is it just me? A self-hosted status bot for Slack and Discord."""

__version__ = "0.1.0"
