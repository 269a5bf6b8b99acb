"""The webhook payloads as golden JSON (tests/chat/webhook/golden/<format>/<kind>.json), the
signature, which URLs may be webhooks, and how an answer maps to a DeliveryError. Pure.
After an intended change: `AISTATUS_UPDATE_GOLDEN=1 scripts/test tests/chat/webhook`."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bot.chat.webhook.render import sign, to_webhook_request
from bot.chat.webhook.sender import webhook_error
from bot.chat.webhook.target import Webhook, WebhookFormat, shown_url, url_problem
from bot.core.model import AlertKind
from bot.errors import ErrorKind
from tests.helpers import make_alert
from tests.peers.webhook_receiver import verified

GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("AISTATUS_UPDATE_GOLDEN") == "1"
KINDS = {
    "start": make_alert(),
    "update": make_alert(kind=AlertKind.UPDATE, update_text="We have identified the cause."),
    "recovery": make_alert(
        kind=AlertKind.RECOVERY, title="Resolved: claude.ai", duration_text="resolved after 5 h"
    ),
}


@pytest.mark.parametrize("fmt", list(WebhookFormat), ids=str)
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_format_and_kind_matches_its_golden_payload(fmt: WebhookFormat, kind: str) -> None:
    hook = Webhook("wh0123456789", "https://hooks.example/x", "whsec_test", fmt)
    body = json.loads(to_webhook_request(hook, KINDS[kind], timestamp=1790000000).body)
    path = GOLDEN / str(fmt) / f"{kind}.json"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    assert body == json.loads(path.read_text())


def test_the_signature_covers_the_timestamp_and_the_body() -> None:
    hook = Webhook("wh1", "https://hooks.example/x", "whsec_test")
    request = to_webhook_request(hook, make_alert(), timestamp=1790000000)
    assert request.headers["X-Aistatus-Signature"] == sign("whsec_test", 1790000000, request.body)
    assert verified("whsec_test", request.headers, request.body)
    later = {**request.headers, "X-Aistatus-Timestamp": "1790000001"}
    assert not verified("whsec_test", later, request.body)


def test_a_webhook_repr_never_shows_its_url_or_secret() -> None:
    hook = Webhook("wh1", "https://hooks.slack.com/services/T/B/sekrit", "whsec_sekrit")
    assert "sekrit" not in repr(hook)
    assert shown_url(hook.url) == "https://hooks.slack.com/…"


@pytest.mark.parametrize(
    ("url", "addresses", "allowed"),
    [
        ("https://hooks.example/x", ["93.184.216.34"], True),
        ("ftp://hooks.example/x", [], False),
        ("https://user:pw@hooks.example/x", ["93.184.216.34"], False),
        ("http://127.0.0.1:8080/x", [], False),
        ("http://localhost/x", [], False),
        ("http://[::ffff:10.0.0.1]/x", [], False),
        ("https://intranet.example/x", ["10.1.2.3"], False),
        ("http://169.254.169.254/latest", [], False),
    ],
    ids=["public", "ftp", "userinfo", "loopback", "localhost", "mapped-private", "dns-private",
         "metadata"],
)  # fmt: skip
def test_only_public_http_urls_are_webhooks_unless_private_is_allowed(
    url: str, addresses: list[str], allowed: bool
) -> None:
    assert (url_problem(url, addresses, allow_private=False) is None) is allowed
    if url.startswith("http") and "@" not in url:
        assert url_problem(url, addresses, allow_private=True) is None


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, ErrorKind.RATE_LIMITED), (500, ErrorKind.TRANSIENT), (503, ErrorKind.TRANSIENT),
     (408, ErrorKind.TRANSIENT), (410, ErrorKind.PERMANENT), (404, ErrorKind.PERMANENT),
     (301, ErrorKind.PERMANENT)],
    ids=str,
)  # fmt: skip
def test_an_answer_maps_to_what_the_engine_does_next(status: int, kind: ErrorKind) -> None:
    error = webhook_error(status, "7" if status == 429 else None, now=0.0)
    assert error.kind is kind
    assert error.retry_after == (7.0 if status == 429 else None)
