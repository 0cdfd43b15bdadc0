"""What every part of `python -m bench` returns: figures measured against a baseline taken in the
same run, so that ratios hold on a noisy machine.

A part is a module under bench/ with `def figures(ctx: Context) -> list[Figure]`; `bench/__main__.py`
lists the parts, runs them and prints the table (figure, value, unit, baseline, ratio, target, met).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

COMPARE: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt,
}


@dataclass
class Figure:
    """One measured figure. `value` is compared with `target` by `op`; `baseline` is what the value
    was measured against in the same run (None where the target is absolute, e.g. a p95 in ms)."""

    name: str
    value: float
    unit: str
    target: float | None = None
    op: str = "<="
    baseline: float | None = None
    baseline_unit: str | None = None
    note: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return COMPARE[self.op](self.value, self.target)

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["met"] = self.met
        return out


@dataclass
class Context:
    """What a part is given: `quick` asks for the reduced set (the whole quick run stays under two
    minutes); `database_url` a PostgreSQL server for the parts that need one (None: skip them and say so)."""

    quick: bool = False
    database_url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
