"""Incoming messages: what a message may hold, which case waits for it, which process it starts.

A case's waiting message (and signal) catches are mirrored in `message_waits` rows, kept
in line with the workflow by `engine.casework.writes.sync` (through `sync_waits`), so a message is
routed by an index lookup on (kind, name, correlation key) whatever the number of cases.
The correlation key is a hash of the canonical {property: value} the catch expects; values
compare as text, so `123` and `"123"` correlate alike.

Routing (`route`), in order:
1. a waiting message catch of that name whose expected correlation equals the message's
   `correlation` (no correlation: only catches that expect none) receives it;
2. else the latest version of a process with a message start event of that name is started;
3. else nothing matches (`NoMatch`, 404 `no_match`). Messages are not kept for later.
More than one waiting case, or more than one process to start, is refused as ambiguous
(409): a message is for one case, and guessing which would put data in the wrong case.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from engine.env import Env
from engine.errors import Conflict, Malformed, NotFound
from engine.models import Case, MessageWait, ProcessDefinition
from engine.org import Organisation
from engine.status import CaseStatus, WaitKind
from engine.workflow import limits, runtime

MAX_NAME = 200
MAX_DATA_BYTES = 256 * 1024
# The engine's own depth check is 32 levels; a message is refused before it gets there.
MAX_DEPTH = 16
MAX_CORRELATION_PROPERTIES = 10
MAX_CORRELATION_VALUE = 200


class NoMatch(NotFound):
    code = "no_match"


def check_message(name: Any, data: Any, correlation: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """The message's name, data and correlation, or Malformed naming the field at fault."""
    if not isinstance(name, str) or not name.strip() or len(name) > MAX_NAME:
        raise Malformed("メッセージ名が不正です / type must be a message name (1-200 characters)",
                        {"type": "must be a message name"})
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Malformed("data はオブジェクトである必要があります / data must be a JSON object",
                        {"data": "must be an object"})
    bad = next((k for k in data if not isinstance(k, str) or not k.isidentifier() or k.startswith("_")), None)
    if bad is not None:
        raise Malformed(f"data のキー {bad!r} が不正です / data keys must be plain identifiers",
                        {f"data.{bad}": "keys must be identifiers"})
    if limits.depth_exceeding(data, MAX_DEPTH):
        raise Malformed(f"data の入れ子が深すぎます / data is nested deeper than {MAX_DEPTH} levels",
                        {"data": f"nested deeper than {MAX_DEPTH} levels"})
    if len(json.dumps(data, ensure_ascii=False, default=str)) > MAX_DATA_BYTES:
        raise Malformed("data が大きすぎます / data is too large", {"data": "too large"})
    if correlation is None:
        correlation = {}
    if not isinstance(correlation, dict) or len(correlation) > MAX_CORRELATION_PROPERTIES:
        raise Malformed("correlation は {プロパティ: 値} のオブジェクトです / correlation must be an object of "
                        f"at most {MAX_CORRELATION_PROPERTIES} properties", {"correlation": "must be an object"})
    for key, value in correlation.items():
        if not isinstance(value, str | int | float | bool) or len(str(value)) > MAX_CORRELATION_VALUE or not key:
            raise Malformed(f"correlation の {key!r} の値が不正です / correlation values must be short strings or "
                            "numbers", {f"correlation.{key}": "must be a string or number"})
    return name.strip(), data, correlation


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


def correlation_key(correlation: dict[str, Any]) -> str:
    canonical = json.dumps({k: _text(v) for k, v in correlation.items()}, sort_keys=True, ensure_ascii=False,
                           separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


_WAITS = MessageWait.__table__
_WAITS_OF_CASE = (select(_WAITS.c.id, _WAITS.c.task_id, _WAITS.c.correlation, _WAITS.c.correlation_key)
                  .where(_WAITS.c.case_id == bindparam("case_id")))
# Core statements on the session's connection: a monitoring round adds and removes waits (the
# role reports' boundary signals) at every step, and an ORM delete or add would cost a
# synchronisation of the session or a flush each time. Nothing reads these rows back as objects
# in the transaction that writes them.
_DROP_WAITS = _WAITS.delete().where(_WAITS.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_WAIT = _WAITS.insert()
_SET_EXPECTED = (update(_WAITS).where(_WAITS.c.id == bindparam("wait_id"))
                 .values(correlation=bindparam("correlation"), correlation_key=bindparam("key")))


def sync_waits(session: Session, case: Case, wf: Any, now: datetime,
               catches: list[tuple[Any, str, str, dict[str, Any] | None]] | None = None) -> None:
    """Bring the case's message_waits rows in line with the catches its workflow waits at
    (`catches`: `runtime.waiting_catches(wf)`, when the caller has it already)."""
    if catches is None:
        catches = runtime.waiting_catches(wf)
    waiting = {str(task.id): (task, kind, name, expected) for task, kind, name, expected in catches}
    conn = session.connection()
    rows = {r.task_id: r for r in conn.execute(_WAITS_OF_CASE, {"case_id": case.id})}
    gone = [r.id for task_id, r in rows.items() if task_id not in waiting]
    if gone:
        conn.execute(_DROP_WAITS, {"ids": gone})
    added = []
    for task_id, (task, kind, name, expected) in waiting.items():
        plain = json.loads(json.dumps(expected, default=str)) if expected is not None else None
        key = correlation_key(expected) if expected is not None else None
        row = rows.get(task_id)
        if row is not None:
            # A catch's expectation can change while it waits (an earlier message set the key).
            if (row.correlation, row.correlation_key) != (plain, key):
                conn.execute(_SET_EXPECTED, {"wait_id": row.id, "correlation": plain, "key": key})
            continue
        added.append({"case_id": case.id, "process_key": case.process_key, "task_id": task_id, "kind": kind,
                      "name": name, "step": task.task_spec.bpmn_id,
                      "step_name": task.task_spec.bpmn_name or task.task_spec.bpmn_id,
                      "correlation": plain, "correlation_key": key, "since": now})
    if added:
        conn.execute(_INSERT_WAIT, added)


def find_wait(session: Session, name: str, correlation: dict[str, Any], process_key: str | None) -> MessageWait | None:
    """The one active case's catch waiting for this message; None if none; Conflict if several."""
    stmt = (select(MessageWait).join(Case, Case.id == MessageWait.case_id)
            .where(MessageWait.kind == WaitKind.MESSAGE, MessageWait.name == name,
                   MessageWait.correlation_key == correlation_key(correlation), Case.status == CaseStatus.ACTIVE)
            .order_by(MessageWait.since, MessageWait.id).limit(10))
    if process_key is not None:
        stmt = stmt.where(MessageWait.process_key == process_key)
    rows = list(session.scalars(stmt))
    if len({r.case_id for r in rows}) > 1:
        raise Conflict(f"メッセージ {name!r} を待つ案件が複数あります / several cases wait for message {name!r} with "
                       "this correlation; send the correlation that names one", {"correlation": "ambiguous"})
    return rows[0] if rows else None


def starting_process(session: Session, env: Env, name: str, process_key: str | None) -> str | None:
    """The process whose latest version starts with message `name`; None if none; Conflict if several."""
    latest = (select(ProcessDefinition.process_key, func.max(ProcessDefinition.version).label("version"))
              .group_by(ProcessDefinition.process_key))
    if process_key is not None:
        latest = latest.where(ProcessDefinition.process_key == process_key)
    latest = latest.subquery()
    rows = session.execute(
        select(ProcessDefinition.process_key, ProcessDefinition.id)
        .join(latest, (ProcessDefinition.process_key == latest.c.process_key)
              & (ProcessDefinition.version == latest.c.version))
        .order_by(ProcessDefinition.process_key)).all()
    found = [key for key, definition_id in rows
             if name in env.specs.for_case(_DefinitionRef(session, definition_id)).message_starts]
    if len(found) > 1:
        raise Conflict(f"メッセージ {name!r} で開始するプロセスが複数あります / several processes start with "
                       f"message {name!r} ({', '.join(found)}); register a source per process", {"type": "ambiguous"})
    return found[0] if found else None


class _DefinitionRef:
    """What the spec cache asks of a case: the definition's id, and its row only on a miss."""

    def __init__(self, session: Session, definition_id: int) -> None:
        self.definition_id = definition_id
        self._session = session

    @property
    def definition(self) -> ProcessDefinition:
        return self._session.get(ProcessDefinition, self.definition_id)


def default_group(org: Organisation) -> str:
    """The referring group of cases a message starts when its sender names none: the secretariat."""
    preferred = sorted(org.case_wide_groups, key=lambda g: (g != "secretariat", g))
    return preferred[0] if preferred else sorted(org.group_ids())[0]
