"""The in-process cache of deserialized workflows: a step on a case whose stored state this
process wrote last skips Spiff's deserialization (most of a load's cost).

An entry is the workflow object as it stood when its state was stored, with that state's text,
serializer version and the loaded definition (spec) it ran on. It is trusted only while all
three still match what the case row holds: a step reads the row first (it must, to lock or
version-check it), so another process's write, a rolled-back write or a migration to another
definition all show up as a mismatch and the entry is dropped, never used.

The entry lives in at most one place at a time, so no two steps ever share a workflow object:
`take` removes it before the step runs on it (the run mutates it); the write path `hold`s the
new one on the transaction's connection, and it enters the cache only when that connection
commits; a rollback (of the transaction or of any savepoint in it) drops what it held.
`TSUNAGU_WORKFLOW_CACHE` bounds it (least recently used cases leave first; 0 turns it off).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from threading import Lock
from typing import Any

from sqlalchemy import Connection, Engine, event

from engine.workflow.specs import LoadedDefinition

DEFAULT_SIZE = 256
# Where a transaction's connection keeps the entries it will add to a cache when it commits.
HELD = "tsunagu.workflows.held"


@dataclass(frozen=True)
class Entry:
    case_id: str
    state: str
    version: str
    defn: LoadedDefinition
    workflow: Any


class WorkflowCache:
    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        self.size = size
        self._items: OrderedDict[str, Entry] = OrderedDict()
        self._lock = Lock()

    def __len__(self) -> int:
        return len(self._items)

    def take(self, case_id: str, state: str, version: str, defn: LoadedDefinition) -> Any | None:
        """The cached workflow of the case if it is the one `state` stores (on `defn`), removed
        from the cache; else None (and whatever stale entry there was is gone)."""
        if self.size <= 0:
            return None
        with self._lock:
            entry = self._items.pop(case_id, None)
        if entry is None or entry.defn is not defn or entry.version != version or entry.state != state:
            return None
        return entry.workflow

    def hold(self, connection: Connection, case_id: str, state: str, version: str, defn: LoadedDefinition,
             workflow: Any) -> None:
        """Cache `workflow` (whose stored form is `state`) once `connection`'s transaction commits."""
        if self.size <= 0:
            return
        held: dict[str, tuple[WorkflowCache, Entry]] = connection.info.setdefault(HELD, {})
        held[case_id] = (self, Entry(case_id, state, version, defn, workflow))

    def put(self, entry: Entry) -> None:
        with self._lock:
            self._items[entry.case_id] = entry
            self._items.move_to_end(entry.case_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def cached_state(self, case_id: str) -> str | None:
        """The stored state the cached workflow of the case stands for; None if none is cached."""
        with self._lock:
            entry = self._items.get(case_id)
        return entry.state if entry is not None else None

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


def release(connection: Connection, case_id: str) -> None:
    """Forget what this transaction holds for the case (its workflow is not one to reuse)."""
    connection.info.get(HELD, {}).pop(case_id, None)


@event.listens_for(Engine, "commit")
def _committed(connection: Connection) -> None:
    for cache, entry in connection.info.pop(HELD, {}).values():
        cache.put(entry)


@event.listens_for(Engine, "rollback")
@event.listens_for(Engine, "rollback_savepoint")
def _rolled_back(connection: Connection, *_args: Any) -> None:
    # A savepoint's rollback drops what the whole transaction holds: simpler than tracking
    # which savepoint held what, and it costs only cache hits, never correctness.
    connection.info.pop(HELD, None)
