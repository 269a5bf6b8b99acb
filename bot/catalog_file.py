"""Reading the catalog: the YAML shipped in the package and the operator's override file
(AISTATUS_CATALOG), merged and validated by `bot.core.catalog`. IO (package data, the file system).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from bot.core.catalog import Catalog, overlay, parse_catalog
from bot.errors import ConfigError

SHIPPED = "catalog.yaml"
SHIPPED_SOURCE = f"bot/data/{SHIPPED}"


def shipped_data() -> dict[str, Any]:
    """The shipped catalog as data, before validation (tests and benchmarks change it first).

    Raises: ConfigError when the packaged file is not a YAML mapping.
    """
    text = resources.files("bot").joinpath("data", SHIPPED).read_text("utf-8")
    return _read_yaml(text, SHIPPED_SOURCE)


def _read_yaml(text: str, source: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{source}: not valid YAML: {e}", source=source) from e
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping", source=source)
    return data


def load_catalog(override: Path | None = None) -> Catalog:
    """The shipped catalog, with the operator's file merged over it.

    Raises: ConfigError when either file is unreadable or invalid.
    """
    data = shipped_data()
    if override is None:
        return parse_catalog(data, source=SHIPPED_SOURCE)
    try:
        text = override.read_text("utf-8")
    except OSError as e:
        raise ConfigError(
            f"{override}: cannot read the catalog file named by AISTATUS_CATALOG: {e.strerror}",
            source=str(override),
            key="AISTATUS_CATALOG",
        ) from e
    return parse_catalog(overlay(data, _read_yaml(text, str(override))), source=str(override))
