"""Outgoing webhooks, the third delivery platform: `target` (what a webhook is), `render` (its
payloads and signature, pure) and `sender` (the POST, IO)."""
