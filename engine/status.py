"""Every status and event kind the engine stores, and the allowed transitions."""

from __future__ import annotations

from enum import StrEnum


class CaseStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ERROR = "error"


class TaskState(StrEnum):
    OPEN = "open"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class TimerStatus(StrEnum):
    PENDING = "pending"
    FIRED = "fired"
    CANCELLED = "cancelled"
    FAILED = "failed"


class EventKind(StrEnum):
    """History entries of a case (append-only)."""

    CASE_STARTED = "case_started"
    TASK_CREATED = "task_created"
    TASK_CLAIMED = "task_claimed"
    TASK_RELEASED = "task_released"
    TASK_ASSIGNED = "task_assigned"
    TASK_COMPLETED = "task_completed"
    TASK_CANCELLED = "task_cancelled"
    TIMER_SCHEDULED = "timer_scheduled"
    TIMER_FIRED = "timer_fired"
    CASE_LINKED = "case_linked"
    CASE_COMPLETED = "case_completed"
    CASE_ERROR = "case_error"
    CONSENT_RECORDED = "consent_recorded"
    CASE_SHARED = "case_shared"
    MESSAGE_RECEIVED = "message_received"


class OutboxKind(StrEnum):
    """Outgoing events (outbox rows, delivered later as webhooks)."""

    CASE_STARTED = "case.started"
    CASE_COMPLETED = "case.completed"
    CASE_LINKED = "case.linked"
    TASK_CREATED = "task.created"
    TASK_COMPLETED = "task.completed"
    TASK_ASSIGNED = "task.assigned"
    TIMER_FIRED = "timer.fired"
    MESSAGE_RECEIVED = "message.received"


class WaitKind(StrEnum):
    """What an active case waits for (`waiting` on the case; message_waits rows hold the last two)."""

    TASK = "task"
    TIMER = "timer"
    MESSAGE = "message"
    SIGNAL = "signal"


class Role(StrEnum):
    STAFF = "staff"
    SECRETARIAT = "secretariat"
    COORDINATION_LEAD = "coordination_lead"
    SUPERVISOR = "supervisor"
    DESIGNER = "designer"
    ADMIN = "admin"


CASE_TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.ACTIVE: frozenset({CaseStatus.COMPLETED, CaseStatus.ERROR}),
    CaseStatus.ERROR: frozenset({CaseStatus.ACTIVE}),
    CaseStatus.COMPLETED: frozenset(),
}

TASK_TRANSITIONS: dict[TaskState, frozenset[TaskState]] = {
    TaskState.OPEN: frozenset({TaskState.COMPLETED, TaskState.CANCELLED}),
    TaskState.COMPLETED: frozenset(),
    TaskState.CANCELLED: frozenset(),
}

TIMER_TRANSITIONS: dict[TimerStatus, frozenset[TimerStatus]] = {
    TimerStatus.PENDING: frozenset({TimerStatus.FIRED, TimerStatus.CANCELLED, TimerStatus.FAILED}),
    TimerStatus.FAILED: frozenset({TimerStatus.PENDING}),
    TimerStatus.FIRED: frozenset(),
    TimerStatus.CANCELLED: frozenset(),
}


def check_transition(table: dict, old: StrEnum, new: StrEnum) -> None:
    if new != old and new not in table[old]:
        raise ValueError(f"transition {old} -> {new} is not allowed")
