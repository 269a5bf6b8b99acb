"""Loopback peers the tests talk to over real sockets: Slack Web API, Discord REST, a generic
chat server, and their seeded chaos."""
