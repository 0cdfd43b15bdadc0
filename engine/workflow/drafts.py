"""Designers' drafts: an unfinished change to a process (its BPMN and the DMN edited with it),
kept on the server per designer and process until it is deployed or thrown away.

A draft is work in progress, so it is not checked as a deployment is (that is what validate and
the test run are for); it only has to be well-formed BPMN (and DMN) XML of a bounded size, so that
what is stored can always be opened again in the modeler.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from engine.env import Env
from engine.errors import Conflict, DeployError, Invalid, NotFound
from engine.models import ProcessDefinition, ProcessDraft, User
from engine.ops.db import begin_write, command
from engine.security.access import require_designer
from engine.settings import Settings
from engine.workflow import form_store, specs, versions
from engine.workflow.limits import MAX_INT
from engine.workflow.specs import parse_xml

# A diagram of a few hundred elements is some 200 kB; ten times that is room enough.
MAX_XML_CHARS = 2_000_000
MAX_DMN_FILES = 20
BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
# A process id is an XML NCName (what bpmn-js and the engine accept), bounded like the column.
PROCESS_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")
DMN_FILE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,95}\.dmn")


def check_process_key(process_key: Any) -> str:
    if not isinstance(process_key, str) or not PROCESS_KEY.fullmatch(process_key):
        raise Invalid("プロセスIDが正しくありません / The process id is not valid (letters, digits, _ . -, "
                      "at most 100, not starting with a digit)", {"process_key": "not a valid process id"})
    return process_key


def _xml(field: str, text: Any, root_name: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise Invalid(f"{field} がありません / {field} is required (XML text)", {field: "required"})
    if len(text) > MAX_XML_CHARS:
        raise Invalid(f"{field} が大きすぎます / {field} is longer than {MAX_XML_CHARS} characters",
                      {field: f"longer than {MAX_XML_CHARS} characters"})
    try:
        root = parse_xml(field, text)
    except DeployError as exc:
        raise Invalid(f"{field} が整形式の XML ではありません / {field} is not well-formed XML",
                      {field: exc.message}) from None
    if etree_local(root.tag) != root_name:
        raise Invalid(f"{field} の最上位要素が {root_name} ではありません / {field} must be a <{root_name}> document",
                      {field: f"root element is not {root_name}"})
    return text


def etree_local(tag: Any) -> str:
    return tag.rpartition("}")[2] if isinstance(tag, str) else ""


def check_draft(bpmn: Any, dmn: Any, base_version: Any) -> tuple[str, dict[str, str], int | None]:
    """The draft's parts if they can be stored; Invalid naming the field otherwise."""
    bpmn = _xml("bpmn", bpmn, "definitions")
    if dmn is None:
        dmn = {}
    if not isinstance(dmn, dict):
        raise Invalid("dmn はファイル名から XML への対応で送ってください / dmn must be an object {file name: XML}",
                      {"dmn": "not an object"})
    if len(dmn) > MAX_DMN_FILES:
        raise Invalid(f"dmn のファイルが多すぎます / dmn holds more than {MAX_DMN_FILES} files",
                      {"dmn": f"more than {MAX_DMN_FILES} files"})
    for name, text in dmn.items():
        if not DMN_FILE.fullmatch(name):
            raise Invalid(f"DMN のファイル名が正しくありません / {name!r} is not a DMN file name (name.dmn)",
                          {f"dmn.{name}": "not a file name ending in .dmn"})
        _xml(f"dmn.{name}", text, "definitions")
    if base_version is not None and (isinstance(base_version, bool) or not isinstance(base_version, int)
                                     or not 1 <= base_version <= MAX_INT):
        raise Invalid("base_version は 1 以上の整数です / base_version must be a positive integer",
                      {"base_version": "not a positive integer"})
    return bpmn, dict(dmn), base_version


def _find(session: Session, actor: User, process_key: str) -> ProcessDraft | None:
    return session.scalar(select(ProcessDraft).where(ProcessDraft.user_id == actor.id,
                                                     ProcessDraft.process_key == process_key))


def get_draft(session: Session, actor: User, process_key: str) -> ProcessDraft:
    require_designer(actor)
    draft = _find(session, actor, check_process_key(process_key))
    if draft is None:
        raise NotFound(f"プロセス {process_key} の下書きはありません / No draft of process {process_key}")
    return draft


def list_drafts(session: Session, actor: User) -> list[ProcessDraft]:
    require_designer(actor)
    return list(session.scalars(select(ProcessDraft).where(ProcessDraft.user_id == actor.id)
                                .order_by(ProcessDraft.process_key)))


@command
def save_draft(session: Session, actor: User, process_key: str, bpmn: Any, dmn: Any, base_version: Any,
               now: datetime) -> ProcessDraft:
    """Store (or replace) the actor's draft of a process. Commits."""
    require_designer(actor)
    check_process_key(process_key)
    bpmn, dmn, base_version = check_draft(bpmn, dmn, base_version)
    draft = _find(session, actor, process_key)
    if draft is None:
        draft = ProcessDraft(user_id=actor.id, process_key=process_key)
        session.add(draft)
    draft.bpmn, draft.dmn, draft.base_version, draft.updated_at = bpmn, dmn, base_version, now
    session.commit()
    return draft


@command
def delete_draft(session: Session, actor: User, process_key: str) -> None:
    """Throw the actor's draft of a process away. Commits."""
    draft = get_draft(session, actor, process_key)
    session.delete(draft)
    session.commit()


def known_parts(session: Session, settings: Settings) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    """(DMN by file name, forms by key) a draft may call: what a deployment would use, the DMN
    of the latest versions (`versions.current_dmn`) and the stored forms (`form_store`), with the
    forms folder under them (forms not stored yet, as in a fresh install's files)."""
    folder = specs.read_forms(settings.forms_dir) if settings.forms_dir.is_dir() else {}
    return versions.current_dmn(session), {**folder, **form_store.latest_forms(session)}


def known_sources(session: Session, settings: Settings, bpmn: str, dmn: dict[str, str] | None = None,
                  forms: dict[str, dict[str, Any]] | None = None) -> specs.Sources:
    """A draft's BPMN with what it may call (`known_parts`), overlaid by the DMN and forms sent
    with the draft."""
    all_dmn, all_forms = known_parts(session, settings)
    return specs.Sources({f"{process_key_of(bpmn) or 'draft'}.bpmn": bpmn}, {**all_dmn, **(dmn or {})},
                         {**all_forms, **(forms or {})})


def process_key_of(bpmn: str) -> str | None:
    """The id of the diagram's first executable process (else its first process): what deploying
    it makes a version of."""
    try:
        root = parse_xml("bpmn", bpmn)
    except DeployError:
        return None
    processes = list(root.iter(f"{{{BPMN_NS}}}process"))
    chosen = next((p for p in processes if p.get("isExecutable", "false").lower() == "true"),
                  processes[0] if processes else None)
    return chosen.get("id") if chosen is not None else None


def _latest(session: Session, process_key: str) -> int | None:
    return session.scalar(select(func.max(ProcessDefinition.version))
                          .where(ProcessDefinition.process_key == process_key))


def validate_draft(session: Session, env: Env, actor: User, bpmn: Any, dmn: Any = None,
                   forms: dict[str, dict[str, Any]] | None = None) -> dict[str, list[dict[str, Any]]]:
    """What deploying the draft would say (`versions.check_diagram`: the engine's checks and
    bpmnlint's rules): {"errors": [{"element", "message"}], "warnings": [...]}."""
    require_designer(actor)
    bpmn, dmn, _ = check_draft(bpmn, dmn, None)
    errors, warnings = versions.check_diagram(known_sources(session, env.settings, bpmn, dmn, forms), env)
    return {"errors": [{"element": p.element, "message": p.message} for p in errors],
            "warnings": [{"element": p.element, "message": p.message} for p in warnings]}


@dataclass
class Deployed:
    process_key: str
    version: int
    created: bool


def deploy_draft(session: Session, env: Env, actor: User, bpmn: Any, dmn: Any, opened: str | None,
                 overwrite: bool, now: datetime, forms: dict[str, dict[str, Any]] | None = None,
                 comment: Any = None) -> Deployed:
    """Deploy a draft (with the DMN edited with it) as the next version of the process it names,
    with a comment, and drop the designer's draft of it. A draft naming an existing process other
    than the one the designer opened (`opened`; None for a new diagram) is refused with Conflict
    unless `overwrite`: unrelated diagrams that share an id (tools default to Process_1) must not
    silently become versions of each other. Refused like `versions.deploy_diagram` otherwise."""
    require_designer(actor)
    bpmn, dmn, _ = check_draft(bpmn, dmn, None)
    if comment is not None and (not isinstance(comment, str) or len(comment) > versions.MAX_COMMENT):
        raise Invalid(f"コメントは {versions.MAX_COMMENT} 文字以内です / comment must be at most "
                      f"{versions.MAX_COMMENT} characters", {"comment": f"at most {versions.MAX_COMMENT} characters"})
    key = process_key_of(bpmn)
    if key is not None and key != opened and _latest(session, key) is not None and not overwrite:
        raise Conflict(f"プロセス {key} は開いたものとは別の既存のプロセスです。新しい版として配置するには確認してください / "
                       f"{key} is an existing process you did not open; confirm to deploy over it",
                       {"process_key": "an existing process that was not opened"})
    sources = known_sources(session, env.settings, bpmn, dmn, forms)
    errors, _warnings = versions.check_diagram(sources, env)
    if errors:
        raise versions.refusal(errors)
    result = specs.deploy(session, sources, env.org, now, actor=actor.name, comment=(comment or "").strip() or None,
                          new_version=True)[0]
    begin_write(session)
    session.execute(delete(ProcessDraft).where(ProcessDraft.user_id == actor.id,
                                               ProcessDraft.process_key.in_({result.process_key, opened or ""})))
    session.commit()
    return Deployed(result.process_key, result.version, result.created)


def catalogue(session: Session, actor: User) -> list[dict[str, Any]]:
    """Every process with its versions (`versions.list_processes`), newest first, each version with
    the DMN files it holds: what the modeler lists."""
    listed = versions.list_processes(session, actor)
    dmn = {(row.process_key, row.version): sorted(row.bundle.get("dmn", {}))
           for row in session.scalars(select(ProcessDefinition))}
    return [{**p, "versions": [{**v, "dmn": dmn.get((p["key"], v["version"]), [])}
                               for v in reversed(p["versions"])]} for p in listed]


def version(session: Session, actor: User, process_key: str, number: int) -> ProcessDefinition:
    """One deployed version (read-only), for opening and downloading."""
    return versions.get_version(session, actor, process_key, number)
