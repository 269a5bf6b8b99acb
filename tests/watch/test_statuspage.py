"""parse_summary / parse_incidents / parse_time on the real fixtures, real-shape variants and
untrusted input."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.core.model import Status
from bot.watch.statuspage import (
    normalise_body,
    parse_incidents,
    parse_summary,
    parse_time,
)
from tests.helpers import fixture_json, fixture_text

NOW = datetime(2026, 9, 22, 1, 1, tzinfo=UTC)
CLAUDE_AFFECTED = {"rwppv331jlwc", "k8w3r06qmzrp", "yyzkbfz2thpt", "bpp5gb3hpjcl"}
VALID = {s.value for s in Status if s is not Status.UNKNOWN}


def read(payload: bytes | str | dict[str, Any], provider: str = "claude"):
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    return parse_summary(payload, provider=provider, observed_at=NOW)


def investigating() -> dict[str, Any]:
    return copy.deepcopy(fixture_json("claude/summary_incident_investigating.json"))


# -- the shipped fixtures ------------------------------------------------------------------------


def test_all_operational_page_reads_six_operational_components_and_no_incident():
    reading = read(fixture_text("claude/summary_all_operational.json"))
    assert reading.ok and reading.error is None
    assert len(reading.components) == 6
    assert {c.status for c in reading.components.values()} == {Status.OPERATIONAL}
    assert reading.incidents == () and reading.maintenances == ()
    assert reading.indicator == "none"
    assert reading.page_url == "https://status.claude.com"
    assert reading.observed_at == NOW and reading.provider == "claude"


def test_investigating_page_reads_four_partial_outages_and_the_major_incident():
    reading = read(fixture_text("claude/summary_incident_investigating.json"))
    assert reading.ok
    partial = {cid for cid, c in reading.components.items() if c.status is Status.PARTIAL_OUTAGE}
    assert partial == CLAUDE_AFFECTED
    assert reading.components["0qbwn08sd68x"].status is Status.OPERATIONAL
    assert reading.indicator == "minor"  # milder than the incident's impact (fact 1)
    (incident,) = reading.incidents
    assert incident.id == "7g1qpkyz5gxh"
    assert incident.name == "Elevated errors for multiple models"
    assert incident.status == "investigating" and incident.impact == "major"
    assert incident.url == "https://stspg.io/90s4l9yywzbk"
    assert set(incident.components) == CLAUDE_AFFECTED
    assert incident.update_id == "wc6fvw33hdr3"
    assert incident.update_status == "investigating"
    assert incident.update_body is not None
    assert incident.update_body.startswith("We are investigating elevated errors")
    assert incident.update_at == datetime(2026, 9, 22, 0, 57, 26, 256000, tzinfo=UTC)
    assert incident.started_at == datetime(2026, 9, 22, 0, 57, 26, 117000, tzinfo=UTC)
    assert not incident.is_maintenance


def test_recovered_page_has_no_incident_because_resolved_ones_vanish():
    reading = read(fixture_text("claude/summary_recovered.json"))
    assert reading.ok and reading.incidents == ()
    assert {c.status for c in reading.components.values()} == {Status.OPERATIONAL}


def test_incident_io_page_reads_two_incidents_without_components_or_maintenances():
    reading = read(fixture_text("openai/summary_two_incidents_degraded.json"), "openai")
    assert reading.ok and reading.problems == ()
    assert reading.maintenances == ()  # the key is absent on incident.io pages
    assert Status.DEGRADED in {c.status for c in reading.components.values()}
    assert all(len(cid) == 26 for cid in reading.components)  # ULIDs
    by_id = {i.id: i for i in reading.incidents}
    assert set(by_id) == {"01M3Q4RK1SM4EMK445GGPG7C0N", "01M3Q4HMNP8SZ27DTZKW6F5BJ4"}
    support = by_id["01M3Q4HMNP8SZ27DTZKW6F5BJ4"]
    assert support.impact == "none"
    assert support.components == ()
    # shortlink is absent: the link is built from the page URL (its trailing slash dropped)
    assert support.url == "https://status.openai.com/incidents/01M3Q4HMNP8SZ27DTZKW6F5BJ4"
    main = by_id["01M3Q4RK1SM4EMK445GGPG7C0N"]
    assert main.update_id == "01M3Q6J3T2220NEB407NX63SS9"  # the newer of the two updates
    assert main.update_at == datetime(2026, 9, 29, 18, 24, 17, tzinfo=UTC)
    assert "We\u2019re investigating" in (main.update_body or "")  # curly quote kept
    assert "\n\nSome users" in (main.update_body or "")  # paragraph break kept


def test_completed_maintenances_are_not_in_progress():
    reading = read(fixture_text("claude/scheduled_maintenances_completed.json"))
    assert reading.maintenances == ()
    assert not reading.ok and reading.error == "missing 'components'"


def test_an_in_progress_maintenance_keeps_link_text_and_drops_html_tags():
    maintenance = copy.deepcopy(fixture_json("github/maintenance_html_body.json"))
    maintenance["status"] = "in_progress"
    maintenance["incident_updates"] = maintenance["incident_updates"][-1:]  # the HTML one
    page = {"components": maintenance["components"], "scheduled_maintenances": [maintenance]}
    reading = read(page, "github")
    (m,) = reading.maintenances
    assert m.is_maintenance and m.impact == "maintenance" and m.status == "in_progress"
    assert m.components == ("brv1bkgrwx7q",)
    assert m.update_body == (
        "We will be removing API Authentication via Query Parameters and OAuth Application API "
        "during these hours as part of a planned deprecation cycle. For more information, please "
        "read our blog post."
    )


# -- real-shape variants -------------------------------------------------------------------------


def test_local_offset_timestamps_become_utc():
    page = investigating()
    inc = page["incidents"][0]
    inc["started_at"] = "2026-09-21T17:57:26.117-08:00"
    inc["incident_updates"][0]["display_at"] = "2026-09-21T17:57:26-08:00"
    (incident,) = read(page).incidents
    assert incident.started_at == datetime(2026, 9, 22, 1, 57, 26, 117000, tzinfo=UTC)
    assert incident.update_at == datetime(2026, 9, 22, 1, 57, 26, tzinfo=UTC)


def test_a_renamed_component_is_the_same_component():
    page = investigating()
    page["components"][1]["name"] = "console.anthropic.com"
    reading = read(page)
    assert reading.component("0qbwn08sd68x") == reading.components["0qbwn08sd68x"]
    assert reading.components["0qbwn08sd68x"].name == "console.anthropic.com"
    assert reading.component(None, "CONSOLE.anthropic.com") is not None  # name fallback


def test_an_unknown_component_status_is_unknown_and_keeps_the_raw_value():
    page = investigating()
    page["components"][0]["status"] = "partially_melted"
    reading = read(page)
    comp = reading.components["rwppv331jlwc"]
    assert comp.status is Status.UNKNOWN and comp.raw_status == "partially_melted"
    assert reading.ok
    assert any("partially_melted" in p for p in reading.problems)


def test_an_incident_with_no_components_still_counts():
    page = investigating()
    page["incidents"][0]["components"] = []
    for update in page["incidents"][0]["incident_updates"]:
        update["affected_components"] = None
    (incident,) = read(page).incidents
    assert incident.components == ()
    assert incident.id == "7g1qpkyz5gxh"


@pytest.mark.parametrize("status", ["resolved", "postmortem", "Resolved"])
def test_an_incident_posted_already_resolved_is_dropped(status: str):
    page = investigating()
    page["incidents"][0]["status"] = status
    assert read(page).incidents == ()


def test_the_newest_update_is_chosen_by_time_not_list_position():
    page = investigating()
    inc = page["incidents"][0]
    first = inc["incident_updates"][0]
    newer = {
        **first,
        "id": "newer",
        "status": "identified",
        "body": "Fix rolling out.",
        "created_at": "2026-09-22T01:30:00.000Z",
        "display_at": "2026-09-22T01:30:00.000Z",
        "affected_components": [{"code": "0qbwn08sd68x", "new_status": "degraded_performance"}],
    }
    inc["incident_updates"] = [first, newer]  # out of order: the newest listed last
    (incident,) = read(page).incidents
    assert incident.update_id == "newer"
    assert incident.update_status == "identified"
    assert incident.components[-1] == "0qbwn08sd68x"  # added mid-way (fact 6)


def test_a_back_dated_display_at_does_not_hide_the_latest_posted_update():
    page = investigating()
    inc = page["incidents"][0]
    first = inc["incident_updates"][0]
    late = {
        **first,
        "id": "posted-later",
        "created_at": "2026-09-22T02:00:00Z",
        "display_at": "2026-09-22T00:50:00Z",  # back-dated before the first update
    }
    inc["incident_updates"] = [first, late]
    (incident,) = read(page).incidents
    assert incident.update_id == "posted-later"
    assert incident.update_at == datetime(2026, 9, 22, 0, 50, tzinfo=UTC)  # as the page shows it


def test_a_malformed_incident_is_skipped_and_the_rest_is_read():
    page = investigating()
    page["incidents"].insert(0, {"name": "no id"})
    page["incidents"].append("nonsense")
    page["components"].append({"name": "no id either"})
    reading = read(page)
    assert reading.ok
    assert [i.id for i in reading.incidents] == ["7g1qpkyz5gxh"]
    assert len(reading.components) == 6
    assert len(reading.problems) == 3


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        pytest.param(
            b"<html><body>502 Bad Gateway</body></html>",
            "not JSON (HTML error page?)",
            id="html-page",
        ),
        pytest.param(
            b'{"components": [{"id": "a", "status": "oper', "truncated JSON", id="truncated"
        ),
        pytest.param(b"", "empty body", id="empty"),
        pytest.param(b"\xff\xfe\x00garbage", "not UTF-8 text", id="binary"),
        pytest.param(b"[1, 2]", "not a JSON object", id="array"),
        pytest.param(b'{"page": {}}', "missing 'components'", id="no-components"),
        pytest.param(b'{"components": {}}', "'components' is not a list", id="components-dict"),
        pytest.param(b'{"components": [7]}', "no usable components", id="components-junk"),
        pytest.param(b"[" * 100_000 + b"]" * 100_000, "not JSON", id="absurd-nesting"),
    ],
)
def test_an_unusable_payload_is_not_ok_and_says_why(payload: bytes, error: str):
    reading = read(payload)
    assert not reading.ok
    assert reading.error == error
    assert reading.components == {}


def test_incidents_json_keeps_resolved_incidents_for_their_resolution_text():
    resolved = investigating()["incidents"][0]
    resolved["status"] = "resolved"
    resolved["incident_updates"].insert(
        0,
        {
            "id": "fixed",
            "status": "resolved",
            "body": "This incident has been resolved.\r\n",
            "created_at": "2026-09-22T02:11:43.000Z",
        },
    )
    payload = json.dumps({"page": {"url": "https://status.claude.com"}, "incidents": [resolved]})
    (incident,) = parse_incidents(payload, provider="claude", observed_at=NOW)
    assert incident.status == "resolved"
    assert incident.update_body == "This incident has been resolved."
    assert parse_incidents(b"<html>", provider="claude", observed_at=NOW) == ()


# -- bodies and timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        pytest.param("line one\r\nline two", "line one\nline two", id="crlf"),
        pytest.param("a\n\n\n\n b   c", "a\n\nb c", id="whitespace"),
        pytest.param(
            "ratio 2\u22361 \u201cok\u201d \U0001f389",
            "ratio 2\u22361 \u201cok\u201d \U0001f389",
            id="unicode-kept",
        ),
        pytest.param(
            'see <a href="https://x.y">the post</a> &amp; more',
            "see the post & more",
            id="html-link",
        ),
        pytest.param("<p>one</p><p>two<br>three</p>", "one\ntwo\nthree", id="html-blocks"),
        pytest.param(
            "**bold** and [link](https://x.y) <https://x.y>",
            "**bold** and [link](https://x.y) <https://x.y>",
            id="markdown-kept",
        ),
        pytest.param("latency < 5 s and > 2 s", "latency < 5 s and > 2 s", id="angle-brackets"),
    ],
)
def test_bodies_are_normalised_to_plain_text(raw: str, text: str):
    assert normalise_body(raw) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("2026-09-22T00:57:26.117Z", datetime(2026, 9, 22, 0, 57, 26, 117000, tzinfo=UTC)),
        ("2026-09-22T00:57:26Z", datetime(2026, 9, 22, 0, 57, 26, tzinfo=UTC)),
        ("2026-09-21T16:57:26-08:00", datetime(2026, 9, 22, 0, 57, 26, tzinfo=UTC)),
        ("2026-09-22T00:57:26.1234567+00:00", datetime(2026, 9, 22, 0, 57, 26, 123456, tzinfo=UTC)),
        ("yesterday", None),
        (None, None),
    ],
)
def test_timestamps_with_any_offset_become_aware_utc(raw: str | None, expected: datetime | None):
    assert parse_time(raw) == expected


# -- untrusted input never crashes and never invents an outage ----------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
status_strings = st.sampled_from([*sorted(VALID), "unknown", "", "Major_Outage", "melted"])
components = st.lists(
    st.fixed_dictionaries(
        {"id": st.text(max_size=6), "name": st.text(max_size=6)},
        optional={"status": status_strings | json_values},
    )
    | json_values,
    max_size=6,
)
pages = st.fixed_dictionaries(
    {},
    optional={
        "components": components,
        "incidents": json_values,
        "scheduled_maintenances": json_values,
        "page": json_values,
        "status": json_values,
    },
)


def assert_no_invented_status(payload: Any, reading) -> None:
    raw = {}
    if isinstance(payload, dict) and isinstance(payload.get("components"), list):
        for c in payload["components"]:
            if isinstance(c, dict) and isinstance(c.get("id"), str):
                raw.setdefault(c["id"].strip(), c.get("status"))
    for cid, comp in reading.components.items():
        said = raw[cid]
        if comp.status is Status.UNKNOWN:
            continue
        assert isinstance(said, str) and said.strip().lower() == comp.status.value


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pages | json_values)
def test_arbitrary_json_never_raises_or_invents_a_status(payload: Any):
    reading = read(json.dumps(payload))
    assert reading.ok == bool(reading.components)
    assert reading.ok or reading.error
    assert_no_invented_status(payload, reading)
    for incident in reading.incidents:
        assert incident.status not in {"resolved", "postmortem"}


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_arbitrary_bytes_never_raise(payload: bytes | str):
    reading = read(payload)
    assert reading.ok or reading.error
    assert all(
        c.raw_status in VALID or c.status is Status.UNKNOWN for c in reading.components.values()
    )
    parse_incidents(payload, provider="x", observed_at=NOW)
