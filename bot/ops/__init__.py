"""Operating the bot: health and metrics endpoints, the private redis-server, the demo and its
loopback status server, the terminal table."""
