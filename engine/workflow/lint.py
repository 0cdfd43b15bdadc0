"""bpmnlint on the server: the same rules (`.bpmnlintrc`) the modeler's bpmn-js-bpmnlint runs, so
the browser and a deployment agree.

`scripts/lint-bpmn.mjs` runs bpmnlint's Linter on one diagram and prints its reports as JSON;
this module runs it with a timeout and turns the reports into problems naming the element.
Without node or bpmnlint the diagram is not linted and a warning says so (never an error).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from engine.settings import ROOT

SCRIPT = ROOT / "scripts" / "lint-bpmn.mjs"
TIMEOUT_SECONDS = float(os.environ.get("TSUNAGU_LINT_TIMEOUT", "20"))


@dataclass(frozen=True)
class Problem:
    element: str | None
    message: str


def _unavailable(why: str) -> tuple[list[Problem], list[Problem]]:
    return [], [Problem(None, f"bpmnlint を実行できないため、図の検査（lint）は行われていません（{why}）/ "
                              f"The diagram was not linted: {why}")]


def lint(xml: str) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) bpmnlint reports on the diagram `xml`."""
    node = shutil.which("node")
    if node is None:
        return _unavailable("node is not installed")
    if not (ROOT / "node_modules" / "bpmnlint").is_dir():
        return _unavailable("bpmnlint is not installed: run make node")
    with tempfile.NamedTemporaryFile("w", suffix=".bpmn", encoding="utf-8", delete=False) as f:
        f.write(xml)
        path = f.name
    try:
        done = subprocess.run([node, str(SCRIPT), path], cwd=ROOT, capture_output=True, text=True,
                              timeout=TIMEOUT_SECONDS, check=False)
    except subprocess.TimeoutExpired:
        return _unavailable(f"it took longer than {TIMEOUT_SECONDS:g}s")
    finally:
        Path(path).unlink(missing_ok=True)
    try:
        reports = json.loads(done.stdout)
    except json.JSONDecodeError:
        return _unavailable((done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1][:300])
    if "fatal" in reports:
        # bpmn-moddle could not read it; the engine's own parser names the fault on its side.
        return [], [Problem(None, f"bpmnlint: {reports['fatal']}")]
    errors, warnings = [], []
    for report in reports.get("reports", []):
        problem = Problem(report.get("id") or None, f"{report.get('message')} (bpmnlint {report.get('rule')})")
        (errors if report.get("category") == "error" else warnings).append(problem)
    return errors, warnings
