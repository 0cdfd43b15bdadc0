"""The restricted evaluator behind every script, gateway condition, timer expression
and DMN entry of a diagram, and the limits that contain a runaway one.

SpiffWorkflow's own engine runs them with plain `eval`/`exec`, which lets a diagram do
anything the server can. Here code is checked twice: `check_code` refuses, at deploy
time, imports, names and attributes starting with an underscore, and calls of the
dangerous builtins (naming the offending construct); at run time the code is compiled by
RestrictedPython with guarded attribute access, no `__import__` and a small whitelist
of builtins, so even code that slipped past the first check cannot reach the interpreter.

Containment (`Limits`, `contained`): every engine step (one `runtime.start`, `complete`
or `run_engine`) gets a CPU-time budget and a memory bound shared by all the code it
evaluates. The compiler inserts a cheap `_tick_()` at the top of every loop body, every
comprehension and every function body; one tick in `CHECK_EVERY` reads this thread's CPU
clock, the wall clock and the process's resident memory. Operations that can make a huge
object in a single C call (`**`, `*`, `<<`, `+`, `%`, padding string methods, `range`
consumed by a builtin, `sum` of sequences, f-string widths) go through guards that refuse
a result over `MAX_INT_BITS` / `MAX_ITEMS` before computing it. Crossing any limit raises
`ScriptLimitExceeded`, which Spiff wraps with the task it was running; once crossed, the
step stays failed (an `except` in the script re-raises at once), so a diagram cannot
catch its way past the limit.

Chosen by measurement (`python -m bench.bench_engine --only-containment`): in process, the
ticks and guards cost about 1 % of a monitoring engine step (noise level) and ~0.25 µs per
evaluation; a loop-heavy script pays ~0.25 µs per iteration (a 10,000-iteration loop 0.7 →
3.2 ms). A separate evaluation process (which rlimits could bound and a signal could kill)
costs ~24 µs per round trip before the task data is even copied; a monitoring step
evaluates three expressions, so ~70 µs a step against a few µs in process.

The memory bound compares the process's resident memory with its value when the step
began, so a step running beside another that allocates heavily in the same process may be
charged for it (256 MB by default leaves room). Not covered: one C-level call that stays under the size bounds (sorting a 10^6-item list)
runs to its end (milliseconds) before the next check, and a diagram looping through tasks
that evaluate nothing is not counted (every evaluation is).
"""

from __future__ import annotations

import ast
import copy
import operator
import os
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

from RestrictedPython import (
    RestrictingNodeTransformer,
    compile_restricted_eval,
    compile_restricted_exec,
    safe_builtins,
)
from RestrictedPython.Eval import default_guarded_getitem, default_guarded_getiter
from RestrictedPython.Guards import (
    full_write_guard,
    guarded_iter_unpack_sequence,
    guarded_unpack_sequence,
    safer_getattr,
)
from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from engine.settings import Limits

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
# RestrictedPython 9's safe_builtins lacks some of the names above; they are harmless.
for _name, _value in (("dict", dict), ("list", list), ("set", set), ("sum", sum), ("any", any), ("all", all),
                      ("enumerate", enumerate), ("reversed", reversed), ("max", max), ("min", min),
                      ("sorted", sorted), ("tuple", tuple)):
    _BUILTINS[_name] = _value

# Far beyond what a welfare diagram computes (a case's data is at most 256 KB), far below
# what stalls the process: a 10^5-bit integer or a 10^6-item sequence takes milliseconds.
MAX_INT_BITS = 100_000
MAX_ITEMS = 1_000_000
# Ticks between two looks at the clocks and the memory (~1 µs together).
CHECK_EVERY = 100
# A result this large looks at the clocks and memory at once rather than waiting for the next check.
_LARGE = 65_536
# The wall-clock cap, as a multiple of the CPU budget: a step starved of CPU by other
# threads still ends (and releases the database write lock) in bounded time.
WALL_FACTOR = 3.0

TIME_LIMIT_MESSAGE = "スクリプトが制限時間を超えました / script exceeded its time limit"
SIZE_LIMIT_MESSAGE = "スクリプトの計算量が制限を超えました / script exceeded its size limit"
MEMORY_LIMIT_MESSAGE = "スクリプトのメモリ使用量が制限を超えました / script exceeded its memory limit"

# The benchmark's switch (bench/bench_engine.py measures the cost of containment with it
# off); never turned off in the program.
CONTAINMENT = True


class UnsafeCode(ValueError):
    """Code that a diagram may not run."""


class ScriptLimitExceeded(Exception):  # noqa: N818 - reads as what happened
    """A diagram's code went over its step's time, memory or size limit."""

    def __init__(self, message: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail


def limit_exceeded(exc: BaseException | None) -> ScriptLimitExceeded | None:
    """The ScriptLimitExceeded behind `exc` (as Spiff wraps it), if any."""
    seen = 0
    while exc is not None and seen < 20:
        if isinstance(exc, ScriptLimitExceeded):
            return exc
        exc = getattr(exc, "exception", None) or exc.__cause__ or exc.__context__
        seen += 1
    return None


# ---------------------------------------------------------------- memory


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_statm: list[int] = [-1, -1]  # [fd, pid that opened it]


def resident_bytes() -> int:
    """This process's resident memory (Linux /proc; 0 where it cannot be read)."""
    fd, pid = _statm
    if pid != os.getpid():  # a forked child must not read its parent's numbers
        try:
            fd = os.open("/proc/self/statm", os.O_RDONLY)
        except OSError:
            fd = -2
        _statm[:] = [fd, os.getpid()]
    if fd < 0:
        return 0
    try:
        return int(os.pread(fd, 64, 0).split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


# ---------------------------------------------------------------- the budget


class Budget:
    """The limits of one engine step, shared by every evaluation in it."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.cpu_deadline = time.thread_time() + limits.cpu_seconds
        self.wall_deadline = time.perf_counter() + limits.cpu_seconds * WALL_FACTOR
        self.memory_limit = int(limits.memory_mb * 1024 * 1024)
        self.rss_start = resident_bytes() if self.memory_limit > 0 else 0
        self.exceeded: ScriptLimitExceeded | None = None

    def fail(self, message: str, detail: str = "") -> None:
        if self.exceeded is None:
            self.exceeded = ScriptLimitExceeded(message, detail)
        raise ScriptLimitExceeded(self.exceeded.message, self.exceeded.detail)

    def check(self) -> None:
        if self.exceeded is not None:
            self.fail(self.exceeded.message)
        if time.thread_time() > self.cpu_deadline or time.perf_counter() > self.wall_deadline:
            self.fail(TIME_LIMIT_MESSAGE, f"over {self.limits.cpu_seconds:g} s")
        if self.memory_limit > 0 and resident_bytes() - self.rss_start > self.memory_limit:
            self.fail(MEMORY_LIMIT_MESSAGE, f"grew by more than {self.limits.memory_mb:g} MB")


_active = threading.local()


@contextmanager
def contained(limits: Limits | None = None) -> Iterator[Budget]:
    """Run one engine step under `limits` (read from the environment when None)."""
    previous = getattr(_active, "budget", None)
    budget = Budget(limits or Limits.from_environ())
    _active.budget = budget
    try:
        yield budget
    finally:
        _active.budget = previous


def _thread_scope() -> dict[str, Any]:
    """This thread's guards: made once, shared by its steps (each step's budget is `_active.budget`)."""
    scope = getattr(_active, "scope", None)
    if scope is None:
        scope = _active.scope = _guarded_globals()
    return scope


# ---------------------------------------------------------------- guards

_INTS = (int,)  # bool is an int too
_NUMBERS = frozenset({int, float, bool})
_SEQS = (str, bytes, bytearray, list, tuple)
_SPEC_NUMBER = re.compile(r"\d+")
_PADDING = frozenset({"ljust", "rjust", "center", "zfill"})
_SIZED_METHODS = _PADDING | {"expandtabs", "replace", "join", "extend"}


_CONTAINERS = (list, tuple, set, frozenset)
_SCALARS = frozenset({int, float, bool, type(None)})


def too_large(value: Any, limit: int = MAX_ITEMS) -> bool:
    """Whether `value`, written out (as text, as JSON), would exceed `limit` items or characters.
    Counts shared parts every time they occur, as writing them out would (`[[0] * 1000] * 1000`
    is small in memory, a million items as text), but stops as soon as the count passes
    `limit`: at most `limit` steps, whatever the value."""
    count = 0
    stack = [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind in _SCALARS:
            continue  # counted with its container
        if isinstance(item, str | bytes | bytearray):
            count += len(item)
        elif isinstance(item, _CONTAINERS):
            count += len(item)
            if count <= limit:
                stack.extend(item)
        elif isinstance(item, dict):
            count += 2 * len(item)
            if count <= limit:
                stack.extend(item.keys())
                stack.extend(item.values())
        else:
            count += 1
        if count > limit:
            return True
    return False


class _StrMeta(type):
    """`str` as scripts see it: `isinstance(x, str)` and `str.upper` work as on the real one."""

    def __instancecheck__(cls, obj: object) -> bool:
        return isinstance(obj, str)

    def __subclasscheck__(cls, sub: type) -> bool:
        return issubclass(sub, str)

    def __getattr__(cls, name: str) -> Any:
        return _thread_scope()["_getattr_"](str, name)


def _guarded_globals() -> dict[str, Any]:
    """The guard functions of one thread (closures: as cheap to call as plain functions). Only
    their slow paths look up the step's budget."""

    def fail(message: str, detail: str = "") -> None:
        _active.budget.fail(message, detail)

    def check() -> None:
        _active.budget.check()

    def recheck() -> None:
        """At the top of every `except` block: a limit, once crossed, cannot be caught."""
        budget = _active.budget
        if budget.exceeded is not None:
            budget.fail(budget.exceeded.message)

    def too_big(what: str) -> None:
        fail(SIZE_LIMIT_MESSAGE, what)

    def sized(n: int) -> None:
        if n > MAX_ITEMS:
            too_big(f"a sequence of {n} items (limit {MAX_ITEMS})")
        if n > _LARGE:
            check()

    left = CHECK_EVERY

    def tick() -> bool:
        nonlocal left
        left -= 1
        if left <= 0:
            check()
            # Only once the check passed: after a limit is crossed every tick raises again.
            left = CHECK_EVERY
        return True

    def pow_(a: Any, b: Any) -> Any:
        if isinstance(a, _INTS) and isinstance(b, _INTS) and b > 1 and (a > 1 or a < -1):
            bits = (a.bit_length() - 1) * b
            if bits > MAX_INT_BITS:
                too_big(f"an integer of about {bits} bits (limit {MAX_INT_BITS})")
        return a ** b

    def check_mul(a: Any, b: Any) -> None:
        if isinstance(a, _INTS):
            if isinstance(b, _INTS):
                bits = a.bit_length() + b.bit_length()
                if bits > MAX_INT_BITS:
                    too_big(f"an integer of about {bits} bits (limit {MAX_INT_BITS})")
            elif isinstance(b, _SEQS):
                sized(len(b) * a)
        elif isinstance(b, _INTS) and isinstance(a, _SEQS):
            sized(len(a) * b)

    # Builtins and bounds bound as defaults: a local is the cheapest lookup on these hot paths.
    def mul(a: Any, b: Any, type: Any = type, int: Any = int, float: Any = float,  # noqa: A002
            limit: int = MAX_INT_BITS) -> Any:
        ta = type(a)
        if ta is int:
            if type(b) is int and a.bit_length() + b.bit_length() <= limit:
                return a * b
        elif ta is float:
            return a * b
        check_mul(a, b)
        return a * b

    def add(a: Any, b: Any, type: Any = type, numbers: frozenset = _NUMBERS) -> Any:  # noqa: A002
        if type(a) in numbers:
            return a + b
        if isinstance(a, _SEQS) and isinstance(b, _SEQS):
            sized(len(a) + len(b))
        return a + b

    def lshift(a: Any, b: Any) -> Any:
        if isinstance(a, _INTS) and isinstance(b, _INTS) and a.bit_length() + b > MAX_INT_BITS:
            too_big(f"an integer of about {a.bit_length() + b} bits (limit {MAX_INT_BITS})")
        return a << b

    def mod(a: Any, b: Any) -> Any:
        if isinstance(a, str | bytes):
            _check_printf(a, b)
            written(b)
        return a % b

    def _check_printf(fmt: str | bytes, args: Any) -> None:
        text = fmt if isinstance(fmt, str) else fmt.decode("latin-1")
        widths = [int(n) for n in _SPEC_NUMBER.findall(text) if len(n) > 6]
        if "*" in text:
            widths += [a for a in (args if isinstance(args, tuple) else (args,)) if isinstance(a, _INTS)]
        for width in widths:
            sized(width)

    def written(value: Any) -> None:
        if not isinstance(value, int | float | str | bool) and too_large(value):
            too_big(f"a value of more than {MAX_ITEMS} items once written out")

    class str_(metaclass=_StrMeta):
        def __new__(cls, *args: Any) -> str:  # noqa: PYI034 - hands out a real str
            if args:
                written(args[0])
            return str(*args)

    def format_value(value: Any, conversion: int, spec: str) -> str:
        written(value)
        for number in _SPEC_NUMBER.findall(spec):
            if len(number) > 6:
                sized(int(number))
        if conversion == ord("r"):
            value = repr(value)
        elif conversion == ord("s"):
            value = str(value)
        elif conversion == ord("a"):
            value = ascii(value)
        return format(value, spec)

    def iadd(x: Any, y: Any) -> Any:
        if type(x) not in _NUMBERS and isinstance(x, _SEQS) and isinstance(y, _SEQS):
            sized(len(x) + len(y))
        return operator.iadd(x, y)

    def imul(x: Any, y: Any) -> Any:
        check_mul(x, y)
        return operator.imul(x, y)

    # In place, as Python does it: `items += more` changes the list others may hold too.
    guarded_inplace = {**_INPLACE, "+=": iadd, "*=": imul, "**=": pow_, "<<=": lshift, "%=": mod}

    def inplace(op: str, x: Any, y: Any, ops: dict = guarded_inplace) -> Any:
        return ops[op](x, y)

    def getattr_(obj: Any, name: str, *default: Any) -> Any:
        value = safer_getattr(obj, name, *default)
        if name in _SIZED_METHODS:
            if isinstance(obj, _SEQS):
                return _sized_method(obj, name, value, sized)
            if isinstance(obj, type) and obj in _SEQS:
                # Called on the type (`list.extend(items, items)`): guarded as on the instance.
                return lambda self, *args, **kwargs: getattr_(self, name)(*args, **kwargs)
        return value

    def range_(*args: Any) -> Any:
        r = range(*args)
        try:
            small = len(r) <= MAX_ITEMS
        except OverflowError:
            small = False
        # A long range is lazy and harmless in a `for` loop (which ticks); consumed by a
        # builtin in one C call (`sum`, `list`, `sorted`) it would run unchecked, so it
        # is handed out as an iterator that ticks.
        return r if small else _TickingRange(r, tick)

    def sum_(iterable: Any, start: Any = 0) -> Any:
        if not isinstance(start, _SEQS):
            return sum(iterable, start)
        total = start
        for item in iterable:
            tick()
            total = add(total, item)
        return total

    builtins = dict(_BUILTINS, range=range_, sum=sum_, str=str_)
    return {
        "__builtins__": builtins,
        "_getattr_": getattr_,
        "_getitem_": default_guarded_getitem,
        "_getiter_": default_guarded_getiter,
        "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
        "_unpack_sequence_": guarded_unpack_sequence,
        "_write_": full_write_guard,
        "_inplacevar_": inplace,
        "_tick_": tick,
        "_recheck_": recheck,
        "_pow_": pow_,
        "_mul_": mul,
        "_add_": add,
        "_lshift_": lshift,
        "_mod_": mod,
        "_format_": format_value,
        "_written_": written,
    }


_INPLACE = {
    "+=": operator.iadd, "-=": operator.isub, "*=": operator.imul, "/=": operator.itruediv,
    "//=": operator.ifloordiv, "%=": operator.imod, "**=": operator.ipow, "<<=": operator.ilshift,
    ">>=": operator.irshift, "|=": operator.ior, "^=": operator.ixor, "&=": operator.iand,
}


def _sized_method(obj: Any, name: str, method: Any, sized: Any) -> Any:
    """`method` of `obj`, refusing calls whose result would be over the size limit."""

    def call(*args: Any, **kwargs: Any) -> Any:
        if name in _PADDING:
            width = args[0] if args else kwargs.get("width", 0)
            if isinstance(width, int):
                sized(width)
        elif name == "expandtabs":
            size = args[0] if args else kwargs.get("tabsize", 8)
            if isinstance(size, int):
                sized(len(obj) + obj.count("\t" if isinstance(obj, str) else b"\t") * size)
        elif name == "replace" and len(args) >= 2 and isinstance(args[0], str | bytes):
            old, new = args[0], args[1]
            count = obj.count(old) if old else len(obj) + 1
            if len(args) > 2 and isinstance(args[2], int) and args[2] >= 0:
                count = min(count, args[2])
            sized(len(obj) + count * max(0, len(new) - len(old)))
        elif name == "join" and args:
            items = list(args[0])
            sized(len(obj) * max(0, len(items) - 1) + sum(len(i) for i in items if isinstance(i, _SEQS)))
            return method(items)
        elif name == "extend" and args and hasattr(args[0], "__len__"):
            sized(len(obj) + len(args[0]))
        return method(*args, **kwargs)

    return call


class _TickingRange:
    """A range too long to hand to a builtin as is: iterating it ticks."""

    def __init__(self, r: range, tick: Any) -> None:
        self._range, self._tick = r, tick

    def __iter__(self) -> Iterator[int]:
        tick = self._tick
        for i in self._range:
            tick()
            yield i

    def __reversed__(self) -> Iterator[int]:
        return iter(_TickingRange(self._range[::-1], self._tick))

    def __contains__(self, value: object) -> bool:
        return value in self._range

    def __getitem__(self, index: Any) -> Any:
        item = self._range[index]
        return _TickingRange(item, self._tick) if isinstance(item, range) else item


# ---------------------------------------------------------------- compiling

_BINOP_GUARDS: dict[type[ast.operator], str] = {
    ast.Pow: "_pow_", ast.Mult: "_mul_", ast.Add: "_add_", ast.LShift: "_lshift_", ast.Mod: "_mod_",
}


def _call(name: str, args: list[ast.expr], like: ast.AST) -> ast.Call:
    node = ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])
    return ast.fix_missing_locations(ast.copy_location(node, like))


def _stmt(name: str, like: ast.AST) -> ast.Expr:
    return ast.fix_missing_locations(ast.copy_location(ast.Expr(_call(name, [], like)), like))


def _is_number(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and type(node.value) in (int, float)


class ContainingTransformer(RestrictingNodeTransformer):
    """RestrictedPython's checks, then ticks and size guards. The names it adds start with
    an underscore, which the checks refuse in a diagram's own code: so only these exist."""

    def visit_While(self, node: ast.While) -> Any:
        node = super().visit_While(node)
        node.body.insert(0, _stmt("_tick_", node))
        return node

    def visit_For(self, node: ast.For) -> Any:
        node = super().visit_For(node)
        node.body.insert(0, _stmt("_tick_", node))
        return node

    def visit_FunctionDef(self, node: ast.FunctionDef) -> Any:
        node = super().visit_FunctionDef(node)
        node.body.insert(0, _stmt("_tick_", node))
        return node

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> Any:
        node = super().visit_ExceptHandler(node)
        node.body.insert(0, _stmt("_recheck_", node))
        return node

    def visit_comprehension(self, node: ast.comprehension) -> Any:
        node = super().visit_comprehension(node)
        node.ifs.insert(0, _call("_tick_", [], node.iter))
        return node

    def visit_BinOp(self, node: ast.BinOp) -> Any:
        node = super().visit_BinOp(node)
        guard = _BINOP_GUARDS.get(type(node.op))
        if guard is None:
            return node
        # `i + 1` is never a sequence concatenation, `x * 0.5` never a repetition: left as is.
        if isinstance(node.op, ast.Add) and (_is_number(node.left) or _is_number(node.right)):
            return node
        if isinstance(node.op, ast.Mult) and any(isinstance(n, ast.Constant) and type(n.value) is float
                                                 for n in (node.left, node.right)):
            return node
        if isinstance(node.op, ast.Mod) and _is_number(node.left):
            return node
        return _call(guard, [node.left, node.right], node)

    def visit_FormattedValue(self, node: ast.FormattedValue) -> Any:
        node = super().visit_FormattedValue(node)
        spec = node.format_spec if node.format_spec is not None else ast.Constant("")
        value = _call("_format_", [node.value, ast.Constant(node.conversion), spec], node)
        new = ast.FormattedValue(value=value, conversion=-1, format_spec=None)
        return ast.fix_missing_locations(ast.copy_location(new, node))


def _restricted(source: str, mode: str) -> Any:
    compile_fn = compile_restricted_eval if mode == "eval" else compile_restricted_exec
    if CONTAINMENT:
        return compile_fn(source, policy=ContainingTransformer)
    return compile_fn(source)


def check_code(source: str, mode: str = "eval") -> None:
    """Refuse code that reaches outside task data. Raises UnsafeCode naming the problem."""
    _checked(source, mode)


def _checked(source: str, mode: str) -> Any:
    """`source` compiled by RestrictedPython once it passed both checks; else UnsafeCode."""
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
    compiled = _restricted(source, mode)
    if compiled.errors:
        raise UnsafeCode("; ".join(compiled.errors))
    return compiled


@lru_cache(maxsize=2048)
def _compile(source: str, mode: str, containment: bool):  # noqa: ANN202 - `containment` is part of the key
    return _checked(source, mode).code


_PLAIN_GLOBALS: dict[str, Any] = {
    "__builtins__": _BUILTINS,
    "_getattr_": safer_getattr,
    "_getitem_": default_guarded_getitem,
    "_getiter_": default_guarded_getiter,
    "_iter_unpack_sequence_": guarded_iter_unpack_sequence,
    "_unpack_sequence_": guarded_unpack_sequence,
    "_write_": full_write_guard,
    "_inplacevar_": lambda op, x, y: _INPLACE[op](x, y),
}


def _run(fn: Any, code: Any, scope: dict[str, Any]) -> Any:
    if not CONTAINMENT:
        return fn(code, scope)
    if getattr(_active, "budget", None) is None:
        # Code evaluated outside an engine step (a tool, a test) gets a budget of its own.
        with contained():
            return _run(fn, code, scope)
    # Counted like a loop turn, so a diagram that loops through its own tasks is stopped too.
    scope["_tick_"]()
    try:
        return fn(code, scope)
    except RecursionError:
        _active.budget.fail(SIZE_LIMIT_MESSAGE, "recursion too deep")
    except MemoryError:
        _active.budget.fail(MEMORY_LIMIT_MESSAGE, "out of memory")


def _scope(extra: dict[str, Any] | None) -> dict[str, Any]:
    scope = dict(_thread_scope() if CONTAINMENT else _PLAIN_GLOBALS)
    if extra:
        scope.update(extra)
    return scope


def evaluate(expression: str, data: dict[str, Any], extra: dict[str, Any] | None = None) -> Any:
    code = _compile(expression.strip(), "eval", CONTAINMENT)
    scope = _scope(extra)
    scope.update(data)
    return _run(eval, code, scope)


def execute(script: str, data: dict[str, Any], extra: dict[str, Any] | None = None) -> None:
    """Run a script over task data; variables it assigns are written back to `data`."""
    code = _compile(script, "exec", CONTAINMENT)
    scope = _scope(extra)
    internal = set(scope)
    scope.update(copy.deepcopy(data))
    _run(exec, code, scope)
    out = {key: value for key, value in scope.items()
           if not (key in internal or key.startswith("_") or callable(value))}
    if CONTAINMENT:
        # Task data is written out as JSON after the step, beyond the budget's reach: a value
        # too large to write out fails here, inside it.
        scope["_written_"](out)
    data.update(out)


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
