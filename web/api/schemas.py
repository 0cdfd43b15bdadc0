"""Marshmallow schemas of the JSON API: they shape responses and the OpenAPI document."""

from __future__ import annotations

from flask_smorest.fields import Upload
from marshmallow import Schema, fields, validate

from engine.casework.cases import CASE_STATUSES, MAX_CASE_PAGE, MAX_QUERY
from engine.workflow.limits import MAX_DEPTH, MAX_INT


class ErrorBody(Schema):
    code = fields.String(required=True, metadata={
        "description": "malformed (400), unauthorized (401), forbidden (403), not_found (404), method_not_allowed "
                       "(405), conflict (409), removed (410), too_large (413), unsupported_type (415), invalid or "
                       "workflow_error (422), unavailable (503)"})
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.String(),
                         metadata={"description": "field path → what is wrong with it"})


class ApiError(Schema):
    error = fields.Nested(ErrorBody, required=True)


class GroupOut(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String()
    kind = fields.String()


class TaskOut(Schema):
    id = fields.String(required=True)
    case_id = fields.String(required=True)
    case_number = fields.String()
    process = fields.String()
    step = fields.String(required=True, metadata={"description": "BPMN element id of the user task"})
    name = fields.String(required=True)
    group = fields.String(allow_none=True)
    assignee = fields.String(allow_none=True, metadata={"description": "user name"})
    form = fields.String(allow_none=True, metadata={"description": "form key (forms/<form>.json)"})
    state = fields.String()
    created_at = fields.DateTime(required=True)
    due_at = fields.DateTime(allow_none=True)
    completed_at = fields.DateTime(allow_none=True)
    completed_by = fields.String(allow_none=True)


class TaskDetailOut(TaskOut):
    schema = fields.Dict(allow_none=True, metadata={"description": "JSON Schema of the task's form"})
    data = fields.Dict(metadata={"description": "draft or values known from earlier steps, to prefill the form"})


class RoleOut(Schema):
    """A role one of the caller's groups holds in a case (支援会議の役割分担)."""

    case_id = fields.String(required=True)
    case_number = fields.String(required=True)
    process = fields.String(required=True)
    status = fields.String(required=True)
    summary = fields.String()
    group = fields.String(required=True, metadata={"description": "the caller's group holding the role"})
    role = fields.String(required=True, metadata={"description": "the role, as the support meeting recorded it"})
    since = fields.DateTime(required=True)
    current_steps = fields.List(fields.String(), metadata={"description": "where the case is now: its open steps' "
                                                                           "names, else the timers it waits for"})
    report_task = fields.Dict(allow_none=True, metadata={"description": "the group's open report of this monitoring "
                                                                        "round: {id, due_at}; null when none is asked"})


class HistoryOut(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    kind = fields.String()
    step = fields.String(allow_none=True)
    step_name = fields.String(allow_none=True)
    task_id = fields.String(allow_none=True)
    actor = fields.String(allow_none=True)
    data = fields.Dict(allow_none=True)


class LinkedCaseOut(Schema):
    id = fields.String()
    number = fields.String()
    process = fields.String()
    status = fields.String()
    relation = fields.String(metadata={"description": "handed_over_to or handed_over_from"})


class TimerOut(Schema):
    step = fields.String()
    name = fields.String()
    due_at = fields.DateTime()


class WaitingOut(Schema):
    kind = fields.String(required=True, metadata={"description": "task, timer, message or signal"})
    name = fields.String(required=True, metadata={"description": "the step's name in the diagram"})
    step = fields.String(required=True, metadata={"description": "BPMN element id"})
    since = fields.DateTime(required=True)
    detail = fields.Dict(allow_none=True, metadata={
        "description": "task: task_id, group; timer: due_at; message: message, correlation (property names); "
                       "signal: signal"})


class DecisionOut(Schema):
    result = fields.String(allow_none=True, metadata={"description": "eligible, not_eligible or consult_only"})
    rule = fields.String(allow_none=True, metadata={
        "description": "the 図4 rule (column) of processes/intake_criteria.dmn that gave it, e.g. Rule_single_no_department"})


class CaseOut(Schema):
    id = fields.String(required=True)
    number = fields.String(required=True)
    process = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active, completed or error"})
    definition_version = fields.Integer()
    version = fields.Integer(metadata={"description": "the version of its process the case runs on"})
    referring_group = fields.String()
    summary = fields.String()
    consent = fields.String(allow_none=True, metadata={"description": "本人同意: given, not_given, unknown"})
    consent_recorded_at = fields.DateTime(allow_none=True)
    consent_recorded_by = fields.String(allow_none=True)
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    completed_at = fields.DateTime(allow_none=True)
    error = fields.String(allow_none=True)
    open_tasks = fields.List(fields.Nested(TaskOut))
    history = fields.List(fields.Nested(HistoryOut), metadata={
        "description": "the newest 50 events, oldest first; older ones are at history_next"})
    history_next = fields.String(allow_none=True, metadata={
        "description": "URL of the events before these (GET /api/cases/<id>/history?before=&limit=); "
                       "null when history holds the case's first event"})
    linked_cases = fields.List(fields.Nested(LinkedCaseOut))
    timers = fields.List(fields.Nested(TimerOut))
    waiting = fields.List(fields.Nested(WaitingOut), metadata={
        "description": "what the case waits for; empty only once it is completed"})
    decision = fields.Nested(DecisionOut, metadata={"description": "the 図4 decision, once it ran"})
    closure_reason = fields.String(allow_none=True, metadata={"description": "why the case ended, once it did"})


class HistoryPageOut(Schema):
    history = fields.List(fields.Nested(HistoryOut), metadata={"description": "oldest first"})
    history_next = fields.String(allow_none=True, metadata={
        "description": "URL of the page before this one; null when this page holds the case's first event"})


class HistoryQuery(Schema):
    before = fields.Integer(validate=validate.Range(1, MAX_INT), metadata={
        "description": "only events with an id below this (default: up to the newest)"})
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 500))


class CompleteOut(TaskOut):
    case = fields.Nested(CaseOut, metadata={"description": "the case after the step"})


class CurrentStepOut(Schema):
    kind = fields.String(metadata={"description": "task, timer, message or signal"})
    step = fields.String(metadata={"description": "the BPMN element id"})
    name = fields.String()


class CaseListItem(Schema):
    id = fields.String()
    number = fields.String()
    process = fields.String()
    status = fields.String()
    referring_group = fields.String()
    summary = fields.String()
    created_at = fields.DateTime()
    updated_at = fields.DateTime()
    last_event_at = fields.DateTime(allow_none=True, metadata={"description": "when the case's history last moved"})
    steps = fields.List(fields.Nested(CurrentStepOut), metadata={
        "description": "what the case waits at now: open tasks, pending timers, message catches (empty when closed)"})


class CaseQuery(Schema):
    q = fields.String(validate=validate.Length(max=MAX_QUERY), metadata={
        "description": "words that all occur in the case number, the summary or a household member's name or kana; "
                       "hiragana/katakana and full/half width do not matter"})
    status = fields.String(validate=validate.OneOf(CASE_STATUSES))
    process = fields.String(validate=validate.Length(max=100), metadata={"description": "process key"})
    step = fields.String(validate=validate.Length(max=100), metadata={
        "description": "cases with an open task, pending timer or message catch at this step (element id)"})
    group = fields.String(validate=validate.Length(max=64), metadata={"description": "referring group id"})
    limit = fields.Integer(load_default=MAX_CASE_PAGE, validate=validate.Range(1, MAX_CASE_PAGE))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


DATA_DEPTH = f"nested at most {MAX_DEPTH} levels deep (the object itself counting as the first)"


class CaseIn(Schema):
    process = fields.String(required=True, metadata={"description": "multi_agency or emergency",
                                                     "example": "multi_agency"})
    group = fields.String(allow_none=True, load_default=None,
                          metadata={"description": "referring group id; default: the caller's only group",
                                    "example": "hokatsu-center"})
    data = fields.Dict(load_default=dict, metadata={
        "description": f"initial case data, e.g. summary; {DATA_DEPTH}", "example": {"summary": "高齢の母と無職の息子の世帯"}})


class CompleteIn(Schema):
    data = fields.Dict(required=True, metadata={"description": f"the form's values; {DATA_DEPTH}"})


class DraftIn(Schema):
    data = fields.Dict(required=True, metadata={"description": f"what was typed so far; {DATA_DEPTH}"})


class AssignIn(Schema):
    assignee = fields.String(required=True, metadata={"description": "user name of a member of the task's group"})


class MeOut(Schema):
    name = fields.String()
    display_name = fields.String()
    groups = fields.List(fields.String())
    roles = fields.List(fields.String())


class TaskQuery(Schema):
    process = fields.String()
    step = fields.String()
    group = fields.String()
    limit = fields.Integer(load_default=500, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


class ProcessDraftIn(Schema):
    bpmn = fields.String(required=True, metadata={"description": "the draft's BPMN XML (bpmn:definitions)"})
    dmn = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict,
                      metadata={"description": "{file name (name.dmn): DMN XML} edited with the diagram"})
    base_version = fields.Integer(allow_none=True, load_default=None, validate=validate.Range(1, MAX_INT),
                                  metadata={"description": "the version the draft was opened from; null for a "
                                                           "new process"})


class ProcessDraftOut(Schema):
    process_key = fields.String(required=True)
    bpmn = fields.String(required=True)
    dmn = fields.Dict(keys=fields.String(), values=fields.String())
    base_version = fields.Integer(allow_none=True)
    updated_at = fields.DateTime(required=True)


class SandboxRunIn(Schema):
    bpmn = fields.String(required=True, metadata={"description": "BPMN XML to run (its first executable process)"})
    answers = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict, metadata={
        "description": "{step id: form data} completing each user task; the start event's id for start data"})
    dmn = fields.Dict(keys=fields.String(), values=fields.String(), load_default=dict, metadata={
        "description": "{file name: DMN XML} over the deployed decision tables"})
    forms = fields.Dict(keys=fields.String(), values=fields.Dict(), load_default=dict, metadata={
        "description": "{form key: JSON Schema} over the deployed forms"})


class SandboxWaiting(Schema):
    element = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "task, timer, message, signal or event"})


class SandboxError(Schema):
    element = fields.String(allow_none=True)
    message = fields.String(required=True)
    fields = fields.Dict(keys=fields.String(), values=fields.String())


class SandboxRunOut(Schema):
    process_key = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "completed, waiting, error or step_limit"})
    path = fields.List(fields.String(), required=True, metadata={"description": "element ids in the order run"})
    waiting = fields.List(fields.Nested(SandboxWaiting), required=True)
    error = fields.Nested(SandboxError, allow_none=True)
    data = fields.Dict(metadata={"description": "the case data where the run ended"})


class AsSent(Schema):
    """A body the domain validates itself, naming each bad field in both languages (as a form's
    data is): its fields document it, and loading hands it on as it was sent, after the API's
    parser refused what is too deep or unstorable."""

    def load(self, data, *, many=None, partial=None, unknown=None):  # noqa: ANN001, ANN201, ARG002
        return data


HOUSEHOLD_ATTRIBUTES = "elderly (高齢), disability (障害), child (子ども), poverty (生活困窮); empty: none of these"


class HouseholdMemberIn(Schema):
    name = fields.String(required=True, validate=validate.Length(1, 200), metadata={"description": "氏名"})
    kana = fields.String(validate=validate.Length(0, 200), metadata={"description": "ふりがな"})
    birth_date = fields.Date(allow_none=True, metadata={"description": "生年月日 (YYYY-MM-DD)"})
    sex = fields.String(allow_none=True, validate=validate.OneOf(["female", "male", "other"]),
                        metadata={"description": "性別"})
    relation = fields.String(allow_none=True, validate=validate.Length(0, 32),
                             metadata={"description": "続柄: 本人, 母, 子 ... (本人 is the person concerned)"})
    attributes = fields.List(fields.String(validate=validate.OneOf(["elderly", "disability", "child", "poverty"])),
                             metadata={"description": HOUSEHOLD_ATTRIBUTES})
    address = fields.String(allow_none=True, validate=validate.Length(0, 400), metadata={"description": "住所"})
    phone = fields.String(allow_none=True, validate=validate.Length(0, 40), metadata={"description": "電話番号"})
    department = fields.String(allow_none=True, metadata={"description": "the responsible department (a group id)"})


class HouseholdIn(AsSent):
    members = fields.List(fields.Nested(HouseholdMemberIn), required=True, validate=validate.Length(0, 30),
                          metadata={"description": "the whole household, in order (本人 first); replaces the one "
                                                   "stored"})


class HouseholdMemberOut(HouseholdMemberIn):
    age = fields.Integer(allow_none=True, metadata={"description": "full years on today's date in Japan"})


class HouseholdOut(Schema):
    members = fields.List(fields.Nested(HouseholdMemberOut), required=True)
# ---------------------------------------------------------------- the case file: notes, documents


class NoteIn(Schema):
    kind = fields.String(required=True, metadata={
        "description": "visit (訪問), phone (電話), office_visit (来所), meeting (会議) or other (その他)"})
    text = fields.String(required=True, metadata={"description": "the record, at most 10,000 characters"})
    occurred_at = fields.AwareDateTime(allow_none=True, metadata={
        "description": "when it happened (default: now); not in the future, at most a year back"})


class NoteEditIn(Schema):
    text = fields.String(required=True)


class NoteRevisionOut(Schema):
    text = fields.String(required=True, metadata={"description": "the text before this edit"})
    edited_by = fields.String(required=True, metadata={"description": "user name"})
    edited_at = fields.DateTime(required=True)


class NoteOut(Schema):
    id = fields.Integer(required=True)
    kind = fields.String(required=True)
    kind_label = fields.String(metadata={"description": "the kind in Japanese (訪問, 電話, 来所, 会議, その他)"})
    text = fields.String(required=True)
    author = fields.String(required=True, metadata={"description": "user name"})
    author_name = fields.String(metadata={"description": "display name"})
    at = fields.DateTime(required=True, metadata={"description": "when it happened (occurred_at)"})
    recorded_at = fields.DateTime(required=True)
    edited_at = fields.DateTime(allow_none=True)
    editable_until = fields.DateTime(metadata={"description": "until when its author may edit it"})
    revisions = fields.List(fields.Nested(NoteRevisionOut), metadata={"description": "earlier texts, oldest first"})


class PageQuery(Schema):
    limit = fields.Integer(load_default=50, validate=validate.Range(1, 200))
    offset = fields.Integer(load_default=0, validate=validate.Range(0, MAX_INT))


class AttachmentIn(Schema):
    file = Upload(required=True, metadata={
        "description": "PDF, PNG, JPEG, docx, xlsx, pptx or OpenDocument, recognised by its content"})


class AttachmentOut(Schema):
    id = fields.String(required=True)
    name = fields.String(required=True, metadata={"description": "the file name as uploaded (cleaned)"})
    size = fields.Integer(required=True, metadata={"description": "bytes"})
    type = fields.String(required=True, metadata={"description": "media type, found from the content"})
    sha256 = fields.String(required=True)
    uploaded_by = fields.String(required=True, metadata={"description": "user name"})
    at = fields.DateTime(required=True, metadata={"description": "when it was attached"})
    removed = fields.Boolean()
    removed_at = fields.DateTime(allow_none=True)
    removed_by = fields.String(allow_none=True)
    removal_reason = fields.String(allow_none=True)


class AttachmentRemoveIn(Schema):
    reason = fields.String(required=True, metadata={"description": "why it is removed, at most 1,000 characters"})
