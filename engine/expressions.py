"""The restricted evaluator behind every script, gateway condition, timer expression
and DMN entry of a diagram.

SpiffWorkflow's own engine runs them with plain `eval`/`exec`, which lets a diagram do
anything the server can. Here code is checked twice: `check_code` refuses, at deploy
time, imports, names and attributes starting with an underscore, and calls of the
dangerous builtins (naming the offending construct); at run time the code is compiled by
RestrictedPython with guarded attribute access, no `__import__` and a small whitelist
of builtins, so even code that slipped past the first check cannot reach the interpreter.
"""

from __future__ import annotations

import ast
import copy
from functools import lru_cache
from typing import Any

from RestrictedPython import compile_restricted_eval, compile_restricted_exec, safe_builtins
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

FORBIDDEN_CALLS = frozenset({
    "open", "exec", "eval", "compile", "__import__", "getattr", "setattr", "delattr", "globals",
    "locals", "vars", "dir", "breakpoint", "input", "help", "memoryview", "type", "object", "super",
})

_BUILTINS: dict[str, Any] = {
    name: safe_builtins[name]
    for name in (
        "None", "True", "False", "abs", "bool", "dict", "float", "int", "len", "list", "max",
        "min", "range", "round", "sorted", "str", "tuple", "zip", "sum", "any", "all", "isinstance",
        "enumerate", "set", "frozenset", "reversed",
    )
    if name in safe_builtins
}
for _name, _value in (("dict", dict), ("list", list), ("set", set), ("sum", sum), ("any", any), ("all", all),
                      ("enumerate", enumerate), ("reversed", reversed), ("max", max), ("min", min)):
    _BUILTINS[_name] = _value


class UnsafeCode(ValueError):
    """Code that a diagram may not run."""


def check_code(source: str, mode: str = "eval") -> None:
    """Refuse code that reaches outside task data. Raises UnsafeCode naming the problem."""
    try:
        tree = ast.parse(source, mode=mode)
    except SyntaxError as exc:
        raise UnsafeCode(f"syntax error: {exc.msg} (line {exc.lineno})") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            raise UnsafeCode("imports are not allowed")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise UnsafeCode(f"attribute {node.attr!r} is not allowed (names starting with _ are private)")
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            raise UnsafeCode(f"name {node.id!r} is not allowed (names starting with _ are private)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            raise UnsafeCode(f"calling {node.func.id}() is not allowed")
        if isinstance(node, ast.Global | ast.Nonlocal | ast.AsyncFunctionDef | ast.Await | ast.Lambda):
            raise UnsafeCode(f"{type(node).__name__} is not allowed")
    compiled = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
    if compiled.errors:
        raise UnsafeCode("; ".join(compiled.errors))


@lru_cache(maxsize=2048)
def _compile(source: str, mode: str):  # noqa: ANN202
    check_code(source, mode)
    result = (compile_restricted_eval if mode == "eval" else compile_restricted_exec)(source)
    return result.code


def _globals(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    g: dict[str, Any] = {
        "__builtins__": _BUILTINS,
        "_getattr_": safer_getattr,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
    }
    if extra:
        g.update(extra)
    return g


def evaluate(expression: str, data: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    code = _compile(expression.strip(), "eval")
    scope = _globals(extra)
    scope.update(data)
    return eval(code, scope)  # noqa: S307 - compiled by RestrictedPython with guards


def execute(script: str, data: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Run a script over task data; variables it assigns are written back to `data`."""
    code = _compile(script, "exec")
    scope = _globals(extra)
    scope.update(copy.deepcopy(data))
    exec(code, scope)  # noqa: S102 - compiled by RestrictedPython with guards
    internal = set(_globals(extra))
    for key, value in scope.items():
        if key in internal or key.startswith("_") or callable(value):
            continue
        data[key] = value


class RestrictedEnvironment(BasePythonScriptEngineEnvironment):
    def __init__(self) -> None:
        super().__init__({})

    def evaluate(self, expression, context, external_context=None):  # noqa: ANN001, ANN201
        return evaluate(expression, context, external_context)

    def execute(self, script, context, external_context=None):  # noqa: ANN001, ANN201
        execute(script, context, external_context)
        return True

    def call_service(self, context, **kwargs):  # noqa: ANN001, ANN201, ANN003
        raise UnsafeCode("service tasks are not supported")


def make_script_engine() -> PythonScriptEngine:
    return PythonScriptEngine(environment=RestrictedEnvironment())
