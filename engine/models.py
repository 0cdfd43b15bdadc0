"""The database tables (SQLAlchemy 2, typed `Mapped[]`).

A case's live workflow state is one row in `cases` (the spec is kept out of it: it lives
once per definition in `process_definitions`). Everything people and reports ask about
(open tasks, due timers, history, links, outgoing events) sits on rows of its own,
written in the same transaction as the state it mirrors.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    event,
    false,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from engine.status import CaseStatus, DeliveryStatus, TaskState, TimerStatus, WebhookStatus

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; the engine stores UTC only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


# BigInteger ids that are still autoincrementing INTEGER PRIMARY KEY on SQLite.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Group(Base):
    __tablename__ = "groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str | None] = mapped_column(String(255))
    roles: Mapped[list[Any]] = mapped_column(default=list)
    active: Mapped[bool] = mapped_column(default=True)
    # Set when an administrator chose the password (a new user, a reset): the pages let the user
    # do nothing but change it. The user's own change clears it.
    password_change_required: Mapped[bool] = mapped_column(default=False, server_default=false())
    created_at: Mapped[datetime]

    groups: Mapped[list[Group]] = relationship(secondary="user_groups", lazy="selectin", order_by=Group.id)

    @property
    def group_ids(self) -> list[str]:
        return [g.id for g in self.groups]


class UserGroup(Base):
    __tablename__ = "user_groups"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    # Only a SHA-256 of the token is kept: a leaked database yields no usable token.
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime]
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship(lazy="joined")


class ProcessDefinition(Base):
    """One deployed version of a process: its BPMN, the DMN it calls and its forms."""

    __tablename__ = "process_definitions"
    __table_args__ = (
        UniqueConstraint("process_key", "version"),
        UniqueConstraint("process_key", "content_hash", name="uq_process_definitions_key_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    process_key: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(200))
    content_hash: Mapped[str] = mapped_column(String(64))
    # {"bpmn": {file: xml}, "dmn": {file: xml}, "forms": {key: schema}}: all a case needs.
    bundle: Mapped[dict[str, Any]]
    deployed_at: Mapped[datetime]
    # The author: a user's name (API), the OS user (`tsunagu deploy`), or "tsunagu init".
    deployed_by: Mapped[str | None] = mapped_column(String(100))
    comment: Mapped[str | None] = mapped_column(Text)


@event.listens_for(ProcessDefinition, "before_update")
def _deployed_versions_never_change(_mapper: Any, _connection: Any, target: ProcessDefinition) -> None:
    # Cases run on, and the audit trail names, a version by its number: a changed row would
    # silently change what they ran.
    raise ValueError(f"process version {target.process_key} v{target.version} is immutable; deploy a new one")


class FormVersion(Base):
    """One version of a form (a JSON Schema). The newest version of each key is what the next
    deployment uses; a deployed process version keeps the schemas it was deployed with in its
    bundle, so editing a form never changes a running case."""

    __tablename__ = "form_versions"
    __table_args__ = (UniqueConstraint("form_key", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    form_key: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    schema: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(100))


class Counter(Base):
    """Per-year case-number sequences, advanced inside the transaction that uses them."""

    __tablename__ = "counters"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    value: Mapped[int] = mapped_column(default=0)


class Case(Base):
    __tablename__ = "cases"
    __table_args__ = (
        # The statistics count cases by process and period (opened, decided, closed).
        Index("ix_cases_process_created", "process_key", "created_at"),
        Index("ix_cases_process_decided", "process_key", "decided_at", "decision_result", "decision_rule"),
        Index("ix_cases_process_completed", "process_key", "completed_at", "closure_reason"),
        # The stuck report's `idle` and `error` reasons: active (or failed) cases by when their
        # history last moved, read from the index alone with 100,000 cases.
        Index("ix_cases_status_last_event_at", "status", "last_event_at"),
        # The heatmap's and the workload's join of every open task to its case: what they test of
        # the case (its state, for the stuck count; its group and version, for who may see it) is
        # read from this index, never from the case's row and its workflow state (0027).
        Index("ix_cases_report", "id", "status", "last_event_at", "referring_group_id", "definition_id"),
        # The case list, newest first (engine.casework.cases.list_cases): its first page is read off the index.
        Index("ix_cases_created_at_number", "created_at", "number"),
        # The search's matches by id, with what they are filtered (visibility, status, process,
        # referring group), ordered and counted by: a search of thousands of matches orders and
        # counts them from this index alone, and reads only its page's rows.
        Index("ix_cases_search_listing", "id", "status", "referring_group_id", "process_key", "created_at",
              "number"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    number: Mapped[str] = mapped_column(String(32), unique=True)
    process_key: Mapped[str] = mapped_column(String(100), index=True)
    definition_id: Mapped[int] = mapped_column(ForeignKey("process_definitions.id"), index=True)
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.ACTIVE, index=True)
    referring_group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), index=True)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    summary: Mapped[str] = mapped_column(Text, default="")
    consent: Mapped[str | None] = mapped_column(String(16))
    consent_recorded_at: Mapped[datetime | None]
    consent_recorded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    # When the case's newest history row (case_events) was written: what `idle` is measured from.
    last_event_at: Mapped[datetime | None]
    error: Mapped[str | None] = mapped_column(Text)
    # Live workflow state without spec or finished history; see engine.workflow.runtime.
    state: Mapped[str] = mapped_column(Text)
    serializer_version: Mapped[str] = mapped_column(String(16))
    # Optimistic concurrency: every save is UPDATE ... WHERE version = <loaded version>.
    version: Mapped[int] = mapped_column(default=1)
    # The criteria table's (図4) outcome, stored when the decision runs: eligible, not_eligible or
    # consult_only, and the rule (the 図4 column) that gave it. What the statistics count.
    decision_result: Mapped[str | None] = mapped_column(String(16))
    decision_rule: Mapped[str | None] = mapped_column(String(64))
    decided_at: Mapped[datetime | None]
    # Why the case ended (closure form's outcome, returned, handed_over, ...); set when it does.
    closure_reason: Mapped[str | None] = mapped_column(String(32))
    # What the case is found by (number, summary, household names and kana), normalised by
    # engine.casework.search.normalize; kept current by engine.casework.search.reindex on every change to them,
    # with the search's own index of it (case_search, case_search_grams: engine.casework.search.store).
    search_text: Mapped[str] = mapped_column(Text, default="")

    # Loaded only when asked for: the bundle is large and the spec cache usually has it.
    definition: Mapped[ProcessDefinition] = relationship(lazy="select")

    __mapper_args__ = {"version_id_col": version}


class HumanTask(Base):
    """Projection of a case's open (and past) user tasks: the work queue reads this."""

    __tablename__ = "human_tasks"
    __table_args__ = (
        # The work queue (GET /api/tasks, and the staff queue page in engine.casework.queue): it covers every
        # column the page filters and sorts on, so a page is chosen from the index alone, also with
        # 100,000 open tasks in one group (migration 0002 widened it from state, group_id, due_at).
        Index("ix_human_tasks_queue", "state", "group_id", "due_at", "created_at", "id", "assignee_id", "step",
              "process_key", "case_id"),
        # The queue's other part: tasks of other groups assigned to the caller, chosen and sorted
        # from the index alone (it replaced ix_human_tasks_assignee, assignee_id and state, in 0027).
        Index("ix_human_tasks_assignee_queue", "assignee_id", "state", "group_id", "due_at", "created_at", "id",
              "step", "process_key", "case_id"),
        # The statistics: steps entered per period and how long each took.
        Index("ix_human_tasks_statistics", "process_key", "created_at", "step", "completed_at", "case_id", "state"),
        # A case's open tasks, which every step of it reads: with both columns of that test this
        # index is chosen by SQLite's planner also without statistics, where an index on case_id
        # alone ties with those on state (every open task read) and the schema's order decides.
        Index("ix_human_tasks_case_state", "case_id", "state"),
        # The stuck report: open tasks past due (`overdue`), unclaimed since (`unassigned`), and
        # at a step since (`monitoring_overdue`, the heatmap's open counts), each a range scan
        # that also holds the case, so the dashboard's counts never read the table.
        Index("ix_human_tasks_state_due_at", "state", "due_at", "case_id"),
        Index("ix_human_tasks_state_assignee_created", "state", "assignee_id", "created_at", "case_id"),
        Index("ix_human_tasks_state_step_created", "state", "process_key", "step", "created_at", "case_id", "due_at",
              "assignee_id"),
        # Who may see a case through its tasks (engine.security.access.visible_cases_clause's per-case probe),
        # answered from the index: the reports run that probe for every stuck row.
        Index("ix_human_tasks_case_people", "case_id", "assignee_id", "completed_by_id"),
        # The same, the other way round (engine.security.access.visible_cases_bulk_clause): the cases of
        # one person's tasks, held and completed, each read as one set from its index.
        Index("ix_human_tasks_assignee_case", "assignee_id", "case_id"),
        Index("ix_human_tasks_completed_by_case", "completed_by_id", "case_id"),
        # The heatmap's time spent per step over a period, and the workload's month.
        Index("ix_human_tasks_completed", "process_key", "step", "completed_at"),
        # The escalation sweep (engine.casework.escalation): open tasks not yet escalated, by due time (level 1),
        # and those escalated once, by when the second threshold passes (level 2).
        Index("ix_human_tasks_escalation", "escalation_level", "state", "due_at"),
        Index("ix_human_tasks_escalation_second", "escalation_level", "state", "escalate_at"),
    )

    # The SpiffWorkflow task id, stable for the life of the task.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    process_key: Mapped[str] = mapped_column(String(100))
    step: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(200))
    lane: Mapped[str | None] = mapped_column(String(100))
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    form_key: Mapped[str | None] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(16), default=TaskState.OPEN)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    completed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    draft: Mapped[dict[str, Any] | None]
    # How far the task has been escalated (engine.casework.escalation): 0 not yet, 1 to its group's
    # supervisors, 2 to the coordination lead. Moved on only by a conditional UPDATE: the claim.
    escalation_level: Mapped[int] = mapped_column(default=0, server_default="0")
    # When level 2 is due (set by the level-1 claim: the second threshold).
    escalate_at: Mapped[datetime | None]

    case: Mapped[Case] = relationship(lazy="joined")


class Escalation(Base):
    """要対応: an open task that passed a time limit, told once per level to its audience:
    level 1 the active supervisors of the task's group (the coordination lead when the group
    has none), level 2 the coordination lead. Acknowledged once, by one of the audience."""

    __tablename__ = "escalations"
    __table_args__ = (UniqueConstraint("task_id", "level"),
                      Index("ix_escalations_audience", "audience", "acknowledged_at", "group_id"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("human_tasks.id"))
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    level: Mapped[int]
    # Role.SUPERVISOR (of group_id) or Role.COORDINATION_LEAD
    audience: Mapped[str] = mapped_column(String(32))
    group_id: Mapped[str | None] = mapped_column(String(64))
    due_at: Mapped[datetime]
    created_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(String(500))

    task: Mapped[HumanTask] = relationship(lazy="joined")


class CaseEvent(Base):
    """Append-only history of a case: who did what, when, with what data."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    kind: Mapped[str] = mapped_column(String(32))
    step: Mapped[str | None] = mapped_column(String(100))
    step_name: Mapped[str | None] = mapped_column(String(200))
    task_id: Mapped[str | None] = mapped_column(String(36))
    data: Mapped[dict[str, Any] | None]

    actor: Mapped[User | None] = relationship(lazy="joined")


class Timer(Base):
    """A waiting timer of a case; the sweep claims rows whose due time has passed."""

    __tablename__ = "timers"
    __table_args__ = (
        Index("ix_timers_due", "status", "due_at"),
        # A case's pending timers, which every step of it reads (and its page, soonest first):
        # with both columns of that test, and the order, this index is chosen over ix_timers_due
        # by SQLite's planner also without statistics (that one reads every pending timer), and
        # it holds the task id the step's read answers.
        Index("ix_timers_case_status", "case_id", "status", "due_at", "task_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    task_id: Mapped[str] = mapped_column(String(36), unique=True)
    step: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default=TimerStatus.PENDING)
    created_at: Mapped[datetime]
    fired_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)


class CaseLink(Base):
    """Emergency case → the multi-agency case it handed over to."""

    __tablename__ = "case_links"
    __table_args__ = (UniqueConstraint("from_case_id", "to_case_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    from_case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    to_case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime]


class CaseMember(Base):
    """Groups that joined a case's support meeting (支援会議) and may see its data, with the role
    the meeting gave each."""

    __tablename__ = "case_members"
    # The cases a group joined, as one set (engine.security.access.visible_cases_bulk_clause).
    __table_args__ = (Index("ix_case_members_group_case", "group_id", "case_id"),)

    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    since: Mapped[datetime]
    # The role the support meeting gave the group (支援会議の役割分担), None if it holds none:
    # a role holder reports on it at each monitoring (the diagram's role_report).
    role: Mapped[str | None] = mapped_column(Text)


class CaseSearchText(Base):
    """The case search's copy of each case's search text (cases.search_text), in a narrow row of
    its own under a small number (`doc`), so that a search tests the text of the cases its
    pieces found without reading their workflow state (kilobytes a case, stored before the text
    in the cases row). Kept by engine.casework.search.store; a case whose text was never set has none."""

    __tablename__ = "case_search"

    doc: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), unique=True)
    text: Mapped[str] = mapped_column(Text)


class CaseSearchGram(Base):
    """The case search's index (engine.casework.search.grams): the pieces of each case's search text a
    query is looked up by (pairs of adjacent characters, and for a run of digits its pieces of
    three to six digits), so that a query word is answered from the cases holding its rarest
    piece rather than by reading every case's text. Under the text's `doc` number, not the
    case id: millions of rows of a few bytes each."""

    __tablename__ = "case_search_grams"
    # On SQLite the primary key is the table (no rowid): a piece's cases are one range of it.
    __table_args__ = {"sqlite_with_rowid": False}

    gram: Mapped[str] = mapped_column(String(8), primary_key=True)
    doc: Mapped[int] = mapped_column(ForeignKey("case_search.doc"), primary_key=True)


class HouseholdMember(Base):
    """A person of a case's household (世帯): the person concerned and those living with them.
    Personal data: read and written under the case's access rules."""

    __tablename__ = "household_members"
    __table_args__ = (Index("ix_household_members_case_position", "case_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    position: Mapped[int] = mapped_column(default=0)  # order on the page: 本人 first, as entered
    name: Mapped[str] = mapped_column(String(200))
    kana: Mapped[str] = mapped_column(String(200), default="")
    birth_date: Mapped[date | None]
    sex: Mapped[str | None] = mapped_column(String(16))
    relation: Mapped[str | None] = mapped_column(String(32))  # 本人, 母, 子 ...
    address: Mapped[str | None] = mapped_column(String(400))
    phone: Mapped[str | None] = mapped_column(String(40))
    # 高齢, 障害, 子ども, 生活困窮 as codes (elderly, disability, child, poverty); empty: none of these
    attributes: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The department responsible for this person (a group id), if one is.
    department_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    updated_at: Mapped[datetime]


class CaseNote(Base):
    """A support record (支援経過記録): what happened on a case between its steps, written by a
    caseworker at any time. Personal data: read and written under the case's access rules.
    Its author may change the text for 24 hours; each change keeps the earlier text
    (CaseNoteRevision)."""

    __tablename__ = "case_notes"
    # The case's records newest first (the list, and the case page's timeline window).
    __table_args__ = (Index("ix_case_notes_case_occurred", "case_id", "occurred_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    kind: Mapped[str] = mapped_column(String(16))  # engine.status.NoteKind
    text: Mapped[str] = mapped_column(Text)
    # When it happened (the visit, the call), as the author says; `recorded_at` is when it was written.
    occurred_at: Mapped[datetime]
    recorded_at: Mapped[datetime]
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    edited_at: Mapped[datetime | None]

    author: Mapped[User] = relationship(lazy="joined")


class CaseNoteRevision(Base):
    """The text a support record had before one edit: who changed it and when."""

    __tablename__ = "case_note_revisions"
    __table_args__ = (Index("ix_case_note_revisions_note", "note_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    note_id: Mapped[int] = mapped_column(ForeignKey("case_notes.id"))
    text: Mapped[str] = mapped_column(Text)  # the text before the edit
    edited_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    edited_at: Mapped[datetime]

    edited_by: Mapped[User] = relationship(lazy="joined")


class CaseAttachment(Base):
    """A document attached to a case. The bytes live outside the database, in the attachments
    directory (settings) under `id`, never under the client's file name, which is kept here as
    metadata. Removal is recorded (who, when, why) and the row stays; the bytes go."""

    __tablename__ = "case_attachments"
    __table_args__ = (Index("ix_case_attachments_case_uploaded", "case_id", "uploaded_at", "id"),)

    # A random id: also the stored file's name.
    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"))
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    # The type found in the content (engine.casework.sniff), never the client's claim.
    content_type: Mapped[str] = mapped_column(String(100))
    sha256: Mapped[str] = mapped_column(String(64))
    uploaded_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    uploaded_at: Mapped[datetime]
    removed_at: Mapped[datetime | None]
    removed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    removal_reason: Mapped[str | None] = mapped_column(Text)

    uploaded_by: Mapped[User] = relationship(lazy="joined", foreign_keys=[uploaded_by_id])
    removed_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[removed_by_id])


class OutboxEvent(Base):
    """Outgoing events, written with the state change; delivered later (webhooks).

    `delivered_at` is when the delivery sweep fanned the event out to the subscriptions that
    asked for it (one `webhook_deliveries` row each); NULL while it has not yet."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_pending", "delivered_at", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(50))
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    # Minimal payload: ids, case number, step; never personal data.
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(default=0)


class WebhookSubscription(Base):
    """Another system's endpoint and the event types it wants (outgoing webhooks)."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    events: Mapped[list[Any]]
    description: Mapped[str] = mapped_column(String(500), default="")
    # whsec_ secrets sign every message; after a rotation the previous one signs too until
    # `previous_valid_until`, so receivers can switch without losing a message.
    secret: Mapped[str] = mapped_column(String(200))
    previous_secret: Mapped[str | None] = mapped_column(String(200))
    previous_valid_until: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=WebhookStatus.ACTIVE)
    status_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    # Since when every attempt has failed (NULL after a success): five days of it disable the subscription.
    failing_since: Mapped[datetime | None]


class WebhookDelivery(Base):
    """One outbox event for one subscription: retried until delivered or dead.

    A sweeper claims a row by setting `claimed_by`/`claimed_until` (a lease) and commits before it
    sends, so no transaction is held during HTTP; a sweeper killed mid-send leaves the row to be
    claimed again once the lease ends (at least once)."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("subscription_id", "event_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # In order per case and subscription: the oldest pending event of a pair goes first.
        Index("ix_webhook_deliveries_order", "subscription_id", "case_id", "status", "event_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(ForeignKey("outbox.id"), index=True)
    case_id: Mapped[str | None] = mapped_column(String(36))
    kind: Mapped[str] = mapped_column(String(50))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None]
    created_at: Mapped[datetime]
    delivered_at: Mapped[datetime | None]

    event: Mapped[OutboxEvent] = relationship(lazy="joined")


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt (time, status, latency, error)."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index("ix_webhook_attempts_subscription", "subscription_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("webhook_deliveries.id", ondelete="CASCADE"), index=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"))
    event_id: Mapped[int] = mapped_column(BigId)
    kind: Mapped[str] = mapped_column(String(50))
    attempt: Mapped[int]
    at: Mapped[datetime]
    status_code: Mapped[int | None]
    latency_ms: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)


class AuditHead(Base):
    """The end of one audit chain (`id` is the chain's number): locked by every append to that
    chain, so each chain stays a line; unrelated cases append to different chains (engine.security.audit)."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(BigId, default=0)
    hash: Mapped[str] = mapped_column(String(64))
    # When the sweeper next writes the heads to the anchor file (TSUNAGU_AUDIT_ANCHOR_FILE), on
    # chain 1's row; the conditional UPDATE that moves it on is the claim, so one sweeper anchors per day.
    anchor_due_at: Mapped[datetime | None]


class AuditRecord(Base):
    """Append-only, hash-chained record of every read of case data and every change."""

    __tablename__ = "audit_records"
    __table_args__ = (Index("ix_audit_records_case_at", "case_id", "at"), Index("ix_audit_records_actor_at", "actor_name", "at"),
                      Index("ix_audit_records_at", "at"),
                      UniqueConstraint("chain", "chain_seq"))

    # The trail's one total order (search, export): allocated by the database, not gapless.
    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    # Which chain the record is on, and its gapless place in it (taken under that chain's head
    # lock): a deleted record leaves a visible hole in its chain.
    chain: Mapped[int] = mapped_column(Integer)
    chain_seq: Mapped[int] = mapped_column(BigId)
    at: Mapped[datetime]
    actor_id: Mapped[int | None] = mapped_column(Integer)
    actor_name: Mapped[str | None] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    case_id: Mapped[str | None] = mapped_column(String(36))
    case_number: Mapped[str | None] = mapped_column(String(32))
    origin: Mapped[str | None] = mapped_column(String(100))
    detail: Mapped[dict[str, Any] | None]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class LoginAttempt(Base):
    """Sign-in attempts, for rate limiting by user name and by address."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_name_at", "name", "at"), Index("ix_login_attempts_origin_at", "origin", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(100))
    origin: Mapped[str | None] = mapped_column(String(100))
    at: Mapped[datetime]
    success: Mapped[bool]


class WebSession(Base):
    """A staff page session. The browser's cookie holds a random key; only its SHA-256 is kept
    here, so a copy of this table opens no session. A row without a user is a visitor's
    session before sign-in (language, the sign-in form's CSRF token, messages)."""

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_id_ended_at", "user_id", "ended_at"),
                      Index("ix_web_sessions_expires_at", "expires_at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    # Absolute end (a working day after sign-in), whatever the activity.
    expires_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    end_reason: Mapped[str | None] = mapped_column(String(32))
    user_agent: Mapped[str] = mapped_column(String(200), default="")
    address: Mapped[str | None] = mapped_column(String(100))
    csrf_token: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class MessageWait(Base):
    """A message (or signal) catch a case's workflow waits at, so an incoming message finds
    its case by an index lookup instead of loading every workflow. Kept in line by `_sync`;
    a row exists only while the catch waits."""

    __tablename__ = "message_waits"
    __table_args__ = (Index("ix_message_waits_route", "kind", "name", "correlation_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(100))
    # The SpiffWorkflow task id of the waiting catch event or receive task.
    task_id: Mapped[str] = mapped_column(String(36), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))
    step: Mapped[str] = mapped_column(String(100))
    step_name: Mapped[str] = mapped_column(String(200))
    # {property: value} the catch expects; None when the diagram's values are not known yet.
    correlation: Mapped[dict[str, Any] | None]
    # SHA-256 of the canonical JSON of `correlation`: what the route index looks up.
    correlation_key: Mapped[str | None] = mapped_column(String(64))
    # Indexed for the stuck report's `waiting` reason (waits older than N days).
    since: Mapped[datetime] = mapped_column(index=True)


class Source(Base):
    """A registered sender of signed incoming messages (POST /webhooks/<name>)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    # Standard Webhooks secret (whsec_<base64>). Kept as is: verifying an HMAC needs the key itself.
    secret: Mapped[str] = mapped_column(String(200))
    # When set, messages from this source may only start or move cases of this process.
    process_key: Mapped[str | None] = mapped_column(String(100))
    # The referring group of cases its messages start.
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]


class InboundMessage(Base):
    """Webhook ids already accepted from a source (replay protection), kept at least 24 h."""

    __tablename__ = "inbound_messages"
    __table_args__ = (UniqueConstraint("source_id", "webhook_id", name="uq_inbound_messages_source_webhook"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    source_id: Mapped[int] = mapped_column(ForeignKey("sources.id", ondelete="CASCADE"))
    webhook_id: Mapped[str] = mapped_column(String(200))
    message: Mapped[str] = mapped_column(String(200))
    case_id: Mapped[str | None] = mapped_column(String(36))
    received_at: Mapped[datetime] = mapped_column(index=True)


class ConsultationEvent(Base):
    """A consultation day (総合相談会): date, place, the agencies and professionals there."""

    __tablename__ = "consultation_events"
    __table_args__ = (Index("ix_consultation_events_held_on", "held_on"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    held_on: Mapped[date] = mapped_column(Date)
    place: Mapped[str] = mapped_column(String(200))
    # Group ids of the participating agencies; any of them records walk-ins.
    groups: Mapped[list[Any]]
    # Professionals present (弁護士, ファイナンシャルプランナー, ...): codes of config/consultations.yaml.
    professionals: Mapped[list[Any]]
    note: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class Consultation(Base):
    """One consultation at any window (包括的相談支援), recorded whether or not a case opens.
    At a consultation day it is a walk-in (`event_id`), with its content kinds and 複合課題."""

    __tablename__ = "consultations"
    __table_args__ = (
        # The statistics' one GROUP BY (month, window, channel, content, response) reads this index in
        # its own order: no sort, no table row; received_on last for periods that cut a month.
        Index("ix_consultations_statistics", "received_month", "group_id", "channel", "content", "response",
              "received_on"),
        Index("ix_consultations_group_received", "group_id", "received_on", "id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    received_on: Mapped[date] = mapped_column(Date)
    # YYYY-MM of received_on, kept beside it for the statistics' index.
    received_month: Mapped[str] = mapped_column(String(7))
    group_id: Mapped[str] = mapped_column(ForeignKey("groups.id"))
    channel: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(String(64))
    response: Mapped[str] = mapped_column(String(64))
    # The person, only with their consent (recorded with when and by whom).
    person_name: Mapped[str | None] = mapped_column(String(200))
    person_contact: Mapped[str | None] = mapped_column(String(200))
    consent: Mapped[str | None] = mapped_column(String(16))
    consent_recorded_at: Mapped[datetime | None]
    note: Mapped[str] = mapped_column(Text, default="")
    case_id: Mapped[str | None] = mapped_column(ForeignKey("cases.id"), index=True)
    event_id: Mapped[int | None] = mapped_column(ForeignKey("consultation_events.id"), index=True)
    # At a consultation day: several content kinds per walk-in, and whether the issues are 複合課題.
    kinds: Mapped[list[Any] | None]
    complex_issues: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime]


class Place(Base):
    """The register of participation places (参加支援): activities, workplaces, community places."""

    __tablename__ = "places"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(32))
    description: Mapped[str] = mapped_column(Text, default="")
    group_id: Mapped[str | None] = mapped_column(ForeignKey("groups.id"))
    capacity: Mapped[int | None]
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime]


class Placement(Base):
    """A person of a participation case tried at a place: trial, then settled, rematched or ended."""

    __tablename__ = "placements"
    __table_args__ = (Index("ix_placements_started", "started_at", "status"),
                      Index("ix_placements_ended", "ended_at", "status"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    place_id: Mapped[int] = mapped_column(ForeignKey("places.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]


class MeetingReview(Base):
    """A 重層的支援会議 review of a case: of the plan at approval, or the evaluation at closure."""

    __tablename__ = "meeting_reviews"
    __table_args__ = (Index("ix_meeting_reviews_recorded", "recorded_at", "stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))
    held_on: Mapped[date | None] = mapped_column(Date)
    result: Mapped[str] = mapped_column(String(32))
    comments: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime]


class ResourceGap(Base):
    """社会資源の不足 found at closure: what was needed and not available, by kind."""

    __tablename__ = "resource_gaps"
    __table_args__ = (Index("ix_resource_gaps_recorded", "recorded_at", "kind"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    need: Mapped[str] = mapped_column(Text, default="")
    recorded_at: Mapped[datetime]
class ProcessDraft(Base):
    """A designer's unfinished change to a process, kept on the server between sittings: one per
    designer and process. `base_version` is the version the draft was opened from (None for a new
    process), so deploying over a process the designer did not open can be noticed."""

    __tablename__ = "process_drafts"
    __table_args__ = (UniqueConstraint("user_id", "process_key", name="uq_process_drafts_user_process"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    process_key: Mapped[str] = mapped_column(String(100))
    bpmn: Mapped[str] = mapped_column(Text)
    # {file name: DMN XML} of the decision tables edited with the diagram
    dmn: Mapped[dict[str, Any]]
    base_version: Mapped[int | None]
    updated_at: Mapped[datetime]
