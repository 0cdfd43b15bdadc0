"""The layering the folder tree promises: cli → web → engine, and no module reaching into
another's underscore names. Read from the source with `ast`, so a violation names its file and
line rather than surfacing as an import cycle at run time."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# What each layer must never import (the first dotted component of the imported module).
FORBIDDEN = {
    "engine": {"flask", "flask_smorest", "flask_babel", "werkzeug", "web", "cli", "webhooks"},
    "web": {"cli"},
}


def _sources(top: str) -> list[Path]:
    # Migration scripts are frozen history; they import only Alembic and SQLAlchemy.
    return sorted(p for p in (ROOT / top).rglob("*.py") if "versions" not in p.parts)


def _imports(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, module, names) for each import; relative imports resolved against the file's package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, module] if module else base)
            out.append((node.lineno, module, [alias.name for alias in node.names]))
    return out


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_a_layer_never_imports_the_layers_above_it(layer):
    wrong = [f"{p.relative_to(ROOT)}:{line} imports {module}"
             for p in _sources(layer) for line, module, _names in _imports(p)
             if module.split(".")[0] in FORBIDDEN[layer]]
    assert not wrong, "\n".join(wrong)


def test_no_module_imports_another_modules_underscore_names():
    wrong = []
    for top in ("engine", "web", "cli", "webhooks", "forms", "bench"):
        if not (ROOT / top).exists():
            continue
        for p in _sources(top):
            this = ".".join(p.relative_to(ROOT).with_suffix("").parts)
            for line, module, names in _imports(p):
                if module.split(".")[0] not in ("engine", "web", "cli", "webhooks", "forms", "bench"):
                    continue
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                if private and module != this:
                    wrong.append(f"{p.relative_to(ROOT)}:{line} from {module} import {', '.join(private)}")
    assert not wrong, "\n".join(wrong)


def test_the_engine_top_level_holds_only_the_shared_kernel_and_its_packages():
    """New engine modules go into the package that owns their concern (workflow, casework,
    security, ops, reports); the top level keeps what all of them share."""
    kernel = {"__init__", "clock", "env", "errors", "models", "org", "settings", "status"}
    top = {p.stem for p in (ROOT / "engine").glob("*.py")}
    assert top <= kernel, f"modules to move into a package: {sorted(top - kernel)}"
    packages = {p.name for p in (ROOT / "engine").iterdir() if (p / "__init__.py").exists()}
    assert {"workflow", "casework", "security", "ops", "reports"} <= packages
