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
    CASE_MIGRATED = "case_migrated"
    # A supervisor's repair and escalation (engine.casework.escalation, engine.casework.repair).
    TASK_ESCALATED = "task_escalated"
    ESCALATION_ACKNOWLEDGED = "escalation_acknowledged"
    CASE_RETRIED = "case_retried"
    CASE_MOVED = "case_moved"
    HOUSEHOLD_CHANGED = "household_changed"
    # A document attached to the case, and its recorded removal (engine.casework.attachments).
    DOCUMENT_ATTACHED = "document_attached"
    DOCUMENT_REMOVED = "document_removed"


class NoteKind(StrEnum):
    """What a support record (支援経過記録, engine.casework.notes) records: 訪問, 電話, 来所, 会議, その他."""

    VISIT = "visit"
    PHONE = "phone"
    OFFICE_VISIT = "office_visit"
    MEETING = "meeting"
    OTHER = "other"


# What the workflow does of itself once a step, a timer or a message moved it: a task comes up
# or goes, a timer is set, the case ends. History credits these to the system (no actor),
# never to whoever moved it, and shows rows written before that rule the same way.
SYSTEM_EVENTS = frozenset({EventKind.TASK_CREATED, EventKind.TASK_CANCELLED, EventKind.TIMER_SCHEDULED,
                           EventKind.CASE_COMPLETED})


class OutboxKind(StrEnum):
    """Outgoing events (outbox rows, delivered later as webhooks). Payloads carry ids, the case
    number, process, step and times only: never a summary, a name or a form answer."""

    CASE_CREATED = "case.created"
    CASE_COMPLETED = "case.completed"
    CASE_ERROR = "case.error"
    CASE_LINKED = "case.linked"
    # A case moved to another version of its process (engine.workflow.versions).
    CASE_MIGRATED = "case.migrated"
    # A task passed a time limit (engine.casework.escalation): level 1 its group's supervisors, 2 the coordination lead.
    CASE_ESCALATED = "case.escalated"
    TASK_CREATED = "task.created"
    TASK_CLAIMED = "task.claimed"
    TASK_COMPLETED = "task.completed"
    TIMER_FIRED = "timer.fired"
    MESSAGE_RECEIVED = "message.received"
    # A subscription's test message (POST /api/webhooks/<id>/ping): sent to that subscription only.
    WEBHOOK_PING = "webhook.ping"


# What a webhook subscription may ask for.
SUBSCRIBABLE_EVENTS: tuple[str, ...] = tuple(k.value for k in OutboxKind if k != OutboxKind.WEBHOOK_PING)


class WebhookStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"
    DISABLED = "disabled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    DEAD = "dead"


class SessionEnd(StrEnum):
    """Why a page session (web_sessions row) was ended before it ran out."""

    SIGN_OUT = "sign_out"
    ENDED_BY_USER = "ended_by_user"
    ENDED_BY_ADMIN = "ended_by_admin"
    PASSWORD_CHANGED = "password_changed"
    USER_DISABLED = "user_disabled"


class WaitKind(StrEnum):
    """What an active case waits for (`waiting` on the case; message_waits rows hold the last two)."""

    TASK = "task"
    TIMER = "timer"
    MESSAGE = "message"
    SIGNAL = "signal"


class PlacementStatus(StrEnum):
    """A participation placement (参加支援): on trial, then settled, rematched elsewhere or ended."""

    TRIAL = "trial"
    SETTLED = "settled"
    REMATCHED = "rematched"
    ENDED = "ended"


class Audience(StrEnum):
    """Who an escalation (要対応) goes to."""

    SUPERVISOR = "supervisor"  # the active supervisors of the task's group
    COORDINATION_LEAD = "coordination_lead"


class HouseholdAttribute(StrEnum):
    """What makes a household member someone a department supports (図4); none: an empty list."""

    ELDERLY = "elderly"  # 高齢
    DISABILITY = "disability"  # 障害
    CHILD = "child"  # 子ども
    POVERTY = "poverty"  # 生活困窮


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"
    OTHER = "other"


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
