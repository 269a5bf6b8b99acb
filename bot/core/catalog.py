"""The catalog: providers, surfaces, signals and alternatives, validated at start-up, and the
operator's override merged over the shipped data. Pure: data in, a Catalog out (the files are read
by `bot.catalog_file`).

Errors name the file, the key path and the bad value, e.g.
`catalog.yaml: surfaces.api.probes.0.expect: 'x' is not a valid integer`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import ConfigError


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Provider(_Strict):
    name: str
    statuspage: str | None = None  # base URL of a Statuspage v2 (or compatible) page
    poll_interval: float | None = Field(default=None, gt=0)  # seconds; default from settings
    page_id: str | None = None  # the Statuspage page id: routes a webhook hint to this page

    @field_validator("statuspage")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v.rstrip("/") if v else v


class Official(_Strict):
    component: str | None = None  # Statuspage component id (stable)
    component_name: str | None = None  # fallback when we do not know the id

    @model_validator(mode="after")
    def _one(self) -> Official:
        if not (self.component or self.component_name):
            raise ValueError("needs `component` (an id) or `component_name`")
        return self


class ProbeSpec(_Strict):
    url: str
    method: Literal["GET", "HEAD", "POST"] = "GET"
    expect: tuple[int, ...] = (200,)
    degraded_ms: float = Field(default=3000, gt=0)
    auth: Literal["anthropic"] | None = None  # enables the authenticated check when a key is set

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return v


class Alternative(_Strict):
    surface: str
    note: str = ""


class Surface(_Strict):
    id: str = ""  # filled from the mapping key
    # false: left out of the catalog (and of every alternatives list) until an operator opts in
    # with `surfaces: {<id>: {enabled: true}}`; local-ollama ships off.
    enabled: bool = True
    name: str
    provider: str
    claude: bool = False  # a route to Claude itself (same-model backups rank first)
    url: str | None = None
    official: Official | None = None
    probes: tuple[ProbeSpec, ...] = ()
    keywords: tuple[str, ...] = ()  # match incidents that name no component (fact 1)
    alternatives: tuple[Alternative, ...] = ()

    @field_validator("alternatives", mode="before")
    @classmethod
    def _alts(cls, v: Any) -> Any:
        if isinstance(v, list):
            return [{"surface": a} if isinstance(a, str) else a for a in v]
        return v


class Catalog(_Strict):
    providers: dict[str, Provider]
    surfaces: dict[str, Surface]
    canaries: tuple[str, ...] = ()

    @model_validator(mode="before")
    @classmethod
    def _ids(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("surfaces"), dict):
            data = dict(data)
            off = {k for k, v in data["surfaces"].items() if v is None or _disabled(v)}
            data = _without_alternatives(data, off)
            data["surfaces"] = {
                k: ({**v, "id": k} if isinstance(v, dict) else v)
                for k, v in data["surfaces"].items()
                if k not in off
            }
            if isinstance(data.get("providers"), dict):
                data["providers"] = {k: v for k, v in data["providers"].items() if v is not None}
        return data

    @model_validator(mode="after")
    def _references(self) -> Catalog:
        for sid, s in self.surfaces.items():
            if s.provider not in self.providers:
                raise ValueError(f"surfaces.{sid}.provider: unknown provider {s.provider!r}")
            if s.official and not self.providers[s.provider].statuspage:
                raise ValueError(
                    f"surfaces.{sid}.official: provider {s.provider!r} has no statuspage"
                )
            for i, alt in enumerate(s.alternatives):
                if alt.surface not in self.surfaces:
                    raise ValueError(
                        f"surfaces.{sid}.alternatives.{i}: unknown surface {alt.surface!r}"
                    )
                if alt.surface == sid:
                    raise ValueError(
                        f"surfaces.{sid}.alternatives.{i}: a surface cannot back itself up"
                    )
        return self

    # -- queries ---------------------------------------------------------------------------------

    def claude_surfaces(self) -> list[str]:
        return [sid for sid, s in self.surfaces.items() if s.claude and s.provider == "claude"]

    def surfaces_of(self, provider: str) -> list[Surface]:
        return [s for s in self.surfaces.values() if s.provider == provider]

    def name_of(self, surface: str) -> str:
        """The surface's display name (its id when the catalog no longer knows it)."""
        spec = self.surfaces.get(surface)
        return spec.name if spec is not None else surface

    def surfaces_by_provider(self) -> dict[str, list[str]]:
        """Surface ids per provider, in catalog order (providers without surfaces left out):
        the shape `SurfaceStore.read_all` reads."""
        out: dict[str, list[str]] = {}
        for s in self.surfaces.values():
            out.setdefault(s.provider, []).append(s.id)
        return out

    def probe_specs(self) -> dict[str, tuple[ProbeSpec, ...]]:
        """The synthetic checks of every surface that has any."""
        return {s.id: s.probes for s in self.surfaces.values() if s.probes}

    def providers_for_page(self, page_id: str | None) -> list[str]:
        """The watched providers a status-page webhook hint should poll. Rules:
        1. A watched provider whose `page_id` is the hint's: that one.
        2. Otherwise (no id, or one we do not know) every watched provider: a forged or
           unknown hint costs one extra poll of each, never a belief."""
        watched = self.watched_providers()
        named = [p for p in watched if page_id and self.providers[p].page_id == page_id]
        return named or watched

    def watched_providers(self) -> list[str]:
        """Providers with a status page that at least one surface reads."""
        return [
            pid
            for pid, p in self.providers.items()
            if p.statuspage and any(s.official for s in self.surfaces_of(pid))
        ]


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge `over` into `base`: mappings merge key by key, anything else replaces; a None
    value in `over` removes the key."""
    out: dict[str, Any] = dict(base)
    for k, v in over.items():
        if v is None:
            out.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(out.get(k), Mapping):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


def overlay(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """The operator's catalog data over the shipped data: merged key by key (`merge`), and every
    surface the operator removed dropped from the other surfaces' alternatives."""
    return _without_alternatives(merge(base, over), _removed_surfaces(over))


def _disabled(surface: Any) -> bool:
    """`enabled: false` (YAML's false, or the strings an operator might write for it)."""
    if not isinstance(surface, Mapping):
        return False
    flag = surface.get("enabled", True)
    off = {"false", "no", "off"}
    return flag is False or (isinstance(flag, str) and flag.strip().lower() in off)


def _removed_surfaces(over: Mapping[str, Any]) -> set[str]:
    surfaces = over.get("surfaces")
    if not isinstance(surfaces, Mapping):
        return set()
    return {str(k) for k, v in surfaces.items() if v is None}


def _without_alternatives(data: dict[str, Any], removed: set[str]) -> dict[str, Any]:
    """A surface the operator removed is no one's alternative any more (a typo in an
    alternative still fails validation: only removed surfaces are dropped)."""
    surfaces = data.get("surfaces")
    if not removed or not isinstance(surfaces, dict):
        return data
    out = dict(surfaces)
    for sid, surface in surfaces.items():
        if isinstance(surface, dict) and isinstance(surface.get("alternatives"), list):
            kept = [
                a
                for a in surface["alternatives"]
                if (a.get("surface") if isinstance(a, dict) else a) not in removed
            ]
            out[sid] = {**surface, "alternatives": kept}
    return {**data, "surfaces": out}


def parse_catalog(data: Mapping[str, Any], *, source: str) -> Catalog:
    """Validate catalog data. Raises: ConfigError naming the source, key path and value."""
    try:
        return Catalog.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        loc = ".".join(str(p) for p in err["loc"])
        value = err.get("input")
        shown = "" if isinstance(value, dict | list) else f" (value {value!r})"
        msg = err["msg"].removeprefix("Value error, ")
        where = f"{loc}: " if loc else ""
        raise ConfigError(f"{source}: {where}{msg}{shown}", source=source, key=loc) from e
