"""The scheme's code lists from `config/scheme.yaml`: consultation categories per window
(group) and channels, consultation days' content kinds and professionals, participation
places' kinds and social-resource gap kinds. Read once per config directory."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class Code:
    code: str
    name: str
    name_en: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "name": self.name, "name_en": self.name_en}


@dataclass(frozen=True)
class Categories:
    content: tuple[Code, ...]
    response: tuple[Code, ...]

    def as_dict(self) -> dict[str, list[dict[str, str]]]:
        return {"content": [c.as_dict() for c in self.content], "response": [c.as_dict() for c in self.response]}


@dataclass(frozen=True)
class Vocabulary:
    default: Categories
    windows: dict[str, Categories]
    channels: tuple[Code, ...]
    event_kinds: tuple[Code, ...]
    professionals: tuple[Code, ...]
    place_kinds: tuple[Code, ...]
    gap_kinds: tuple[Code, ...]

    def categories(self, group: str | None) -> Categories:
        """The window's own list if it has one, else the default set."""
        return self.windows.get(group or "", self.default)

    def all_content(self) -> dict[str, str]:
        """Every content code any window uses → its name (the statistics' column names)."""
        return _names([self.default.content, *(c.content for c in self.windows.values())])

    def all_response(self) -> dict[str, str]:
        return _names([self.default.response, *(c.response for c in self.windows.values())])


def _names(lists: list[tuple[Code, ...]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for codes in lists:
        for c in codes:
            out.setdefault(c.code, c.name)
    return out


def codes(values: tuple[Code, ...]) -> set[str]:
    return {c.code for c in values}


def _codes(raw: Any, where: str) -> tuple[Code, ...]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"config/scheme.yaml: {where} must be a non-empty list")
    out = tuple(Code(str(c["code"]), str(c["name"]), str(c.get("name_en", c["name"]))) for c in raw)
    if len({c.code for c in out}) != len(out):
        raise ValueError(f"config/scheme.yaml: {where} repeats a code")
    return out


def _categories(raw: dict[str, Any], where: str) -> Categories:
    return Categories(_codes(raw.get("content"), f"{where}.content"), _codes(raw.get("response"), f"{where}.response"))


@lru_cache(maxsize=8)
def load_vocabulary(config_dir: Path) -> Vocabulary:
    raw = yaml.safe_load((Path(config_dir) / "scheme.yaml").read_text(encoding="utf-8"))
    consultations = raw["consultations"]
    return Vocabulary(
        default=_categories(consultations["default"], "consultations.default"),
        windows={g: _categories(v, f"consultations.windows.{g}") for g, v in (consultations.get("windows") or {}).items()},
        channels=_codes(consultations.get("channels"), "consultations.channels"),
        event_kinds=_codes(raw["events"]["kinds"], "events.kinds"),
        professionals=_codes(raw["events"]["professionals"], "events.professionals"),
        place_kinds=_codes(raw["places"]["kinds"], "places.kinds"),
        gap_kinds=_codes(raw["resource_gaps"]["kinds"], "resource_gaps.kinds"),
    )
