"""The city's organisations (groups) and which group holds each BPMN lane.

The data lives in `config/organisation.yaml`; this module reads it once and offers
lookups. Group rows in the database mirror it (see `engine.security.users.sync_groups`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

REFERRING = "$referring"


@dataclass(frozen=True)
class GroupInfo:
    id: str
    name: str
    name_en: str
    kind: str


@dataclass(frozen=True)
class Organisation:
    groups: tuple[GroupInfo, ...]
    lanes: dict[str, str]
    case_wide_groups: frozenset[str]

    def group_ids(self) -> set[str]:
        return {g.id for g in self.groups}

    def group(self, group_id: str) -> GroupInfo | None:
        return next((g for g in self.groups if g.id == group_id), None)

    def lane_group(self, lane: str | None, referring_group: str) -> str | None:
        """The group holding a lane's tasks in one case; None for an unknown lane. A task in
        no lane (a diagram without lanes) is the referring group's, like the referring lane."""
        if lane is None:
            return referring_group
        target = self.lanes.get(lane)
        if target == REFERRING:
            return referring_group
        return target


@lru_cache(maxsize=8)
def load_organisation(config_dir: Path) -> Organisation:
    raw = yaml.safe_load((Path(config_dir) / "organisation.yaml").read_text(encoding="utf-8"))
    groups = tuple(GroupInfo(g["id"], g["name"], g.get("name_en", g["name"]), g.get("kind", "referring"))
                   for g in raw["groups"])
    ids = {g.id for g in groups}
    lanes = dict(raw.get("lanes", {}))
    for lane, target in lanes.items():
        if target != REFERRING and target not in ids:
            raise ValueError(f"lane {lane!r} maps to unknown group {target!r}")
    return Organisation(groups, lanes, frozenset(raw.get("case_wide_groups", [])))
