"""The catalog as an operator changes it: the shipped file, an override merged over it, and
errors that name the file, the key and the value."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.catalog_file import load_catalog
from bot.errors import ConfigError

# status.claude.com's components, by id (docs/DESIGN.md): names change, ids do not.
CLAUDE_COMPONENTS = {
    "claude.ai": "rwppv331jlwc",
    "console": "0qbwn08sd68x",
    "api": "k8w3r06qmzrp",
    "code": "yyzkbfz2thpt",
    "cowork": "bpp5gb3hpjcl",
}


def override(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "catalog.yaml"
    path.write_text(text)
    return path


def test_the_shipped_catalog_watches_every_claude_surface_by_component_id():
    catalog = load_catalog()
    for surface, component in CLAUDE_COMPONENTS.items():
        official = catalog.surfaces[surface].official
        assert official is not None and official.component == component
    mobile = catalog.surfaces["mobile"]
    assert (
        mobile.official is not None and mobile.official.component == CLAUDE_COMPONENTS["claude.ai"]
    )
    assert mobile.probes, "no official component for the apps: our own probe too"
    assert catalog.providers["claude"].statuspage == "https://status.claude.com"
    assert set(catalog.claude_surfaces()) == {*CLAUDE_COMPONENTS, "mobile"}


def test_every_claude_surface_has_a_same_model_route_first():
    catalog = load_catalog()
    for sid in catalog.claude_surfaces():
        first = catalog.surfaces[sid].alternatives[0].surface
        assert catalog.surfaces[first].claude, f"{sid}: {first} is not a route to Claude"


def test_an_override_changes_one_key_and_keeps_the_rest(tmp_path):
    path = override(
        tmp_path,
        "providers:\n  claude: {statuspage: 'https://mirror.example/'}\n"
        "surfaces:\n  api:\n    probes: [{url: 'https://gw.example/healthz', expect: [200]}]\n",
    )
    catalog = load_catalog(path)
    assert catalog.providers["claude"].statuspage == "https://mirror.example"
    assert catalog.providers["claude"].name == "Anthropic"
    assert [p.url for p in catalog.surfaces["api"].probes] == ["https://gw.example/healthz"]
    assert catalog.surfaces["api"].official is not None  # untouched keys stay


def test_removing_a_surface_also_removes_it_as_an_alternative(tmp_path):
    catalog = load_catalog(override(tmp_path, "surfaces:\n  perplexity: null\n"))
    assert "perplexity" not in catalog.surfaces
    assert all(a.surface != "perplexity" for s in catalog.surfaces.values() for a in s.alternatives)


BAD = {
    "typo-in-alternative": (
        "surfaces:\n  api:\n    alternatives: [chatgtp]\n",
        "surfaces.api.alternatives.0",
        "chatgtp",
    ),
    "unknown-provider": (
        "surfaces:\n  api:\n    provider: anthropic\n",
        "surfaces.api.provider",
        "anthropic",
    ),
    "url-without-scheme": (
        "providers:\n  claude: {statuspage: 'status.claude.com'}\n",
        "providers.claude.statuspage",
        "status.claude.com",
    ),
    "negative": (
        "surfaces:\n  api:\n    probes: [{url: 'https://x', degraded_ms: -1}]\n",
        "surfaces.api.probes.0.degraded_ms",
        "-1",
    ),
    "unknown-key": ("surfaces:\n  api:\n    colour: blue\n", "surfaces.api.colour", "blue"),
}


@pytest.mark.parametrize(("text", "key", "value"), list(BAD.values()), ids=list(BAD))
def test_a_bad_override_names_the_file_the_key_and_the_value(tmp_path, text, key, value):
    path = override(tmp_path, text)
    with pytest.raises(ConfigError) as e:
        load_catalog(path)
    message = str(e.value)
    assert str(path) in message and key in message and value in message
    assert "\n" not in message


def test_unreadable_or_malformed_files_say_which_and_why(tmp_path):
    with pytest.raises(ConfigError, match="AISTATUS_CATALOG"):
        load_catalog(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_catalog(override(tmp_path, "surfaces: [\n"))
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_catalog(override(tmp_path, "- a\n- b\n"))


def test_local_ollama_ships_off_and_is_no_ones_backup():
    catalog = load_catalog()
    assert "local-ollama" not in catalog.surfaces
    for sid, spec in catalog.surfaces.items():
        assert "local-ollama" not in [a.surface for a in spec.alternatives], sid


def test_one_override_line_turns_local_ollama_on(tmp_path: Path):
    path = override(tmp_path, "surfaces: {local-ollama: {enabled: true}}\n")
    catalog = load_catalog(path)
    assert catalog.surfaces["local-ollama"].probes[0].url == "http://127.0.0.1:11434/api/version"
    assert "local-ollama" in [a.surface for a in catalog.surfaces["api"].alternatives]


def test_deepl_is_a_probe_only_surface_with_backups():
    catalog = load_catalog()
    deepl = catalog.surfaces["deepl"]
    assert deepl.official is None, "no Statuspage API we could confirm: probes only"
    assert deepl.probes[0].url == "https://api.deepl.com/v2/usage"
    assert [a.surface for a in deepl.alternatives][:1] == ["claude.ai"]
