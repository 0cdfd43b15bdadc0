"""The audit trail: who read or changed which case's data, when, from where.

Records are append-only and chained: each carries the hash of the one before it on its chain
and a hash over its own content. `verify` walks every chain and reports the first record that
was altered, removed or inserted out of order.

Why several chains (AUDIT_CHAINS, 16), not one: a record is written in the transaction of the
read or change it describes, under the lock of its chain's head row (`audit_head`, one row a
chain), and that lock is held until the transaction commits. With one chain every audited
transaction in the system (a case read is one) queues on that single row, so writers of
unrelated cases serialise on it however many workers or cores there are. A record goes on the
chain of its case (`chain_of`: a hash of the case id; for a record without a case, of the
actor's name), so the transactions of one case still form one line in commit order, and
unrelated cases meet on a chain only by chance (1 in 16). The other design considered, writing
records unchained and sealing them into one chain after commit, leaves a window in which
records are unprotected and needs a sealer that knows when a sequence gap is a rollback rather
than a transaction still open; chains per shard keep the protection in the writing transaction.
Each record also has `seq`, the trail's one total order (search, export, CSV), allocated by the
database; within a chain the order is `chain_seq`, gapless, which is what detects a removal.
Chain 1 is the trail as it was before chains (migration 0014 put every earlier record on it,
with `chain_seq` = its old `seq` and its hash unchanged), and its records' hashes keep the
single-chain form; the other chains' hashes also cover the chain's number.

A chain kept in the same database detects tampering by anyone short of rewriting a whole
tail with fresh hashes. Anchors close that gap: an anchor is the heads (sequence, hash) of
every chain and a time, written outside the database as one JSON line appended to a file
(`anchor`, and daily by the sweeper with `anchor_if_due`); `verify(anchors=...)` then also
checks that every anchored record is still there with the anchored hash. An anchor line is
`{"seq", "hash", "at"}` for chain 1 plus `"chains": {"2": [seq, hash], ...}` for the others,
so a line written before chains is read as chain 1's anchor.

Where a request came from is a plain value the caller sets with `origin_scope` (the web
layer: the client address; the CLI: "cli"; the scheduler: "scheduler").
"""

from __future__ import annotations

import contextlib
import contextvars
import csv
import hashlib
import io
import json
import logging
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.orm import Session, sessionmaker

from engine.models import AuditHead, AuditRecord, Case, User
from engine.workflow.limits import check_instant, check_int

GENESIS = "0" * 64
ANCHOR_EVERY = timedelta(days=1)
# After a failed anchor write (the file's disk or share is away), try again this much later,
# not at every sweep.
ANCHOR_RETRY = timedelta(minutes=5)
log = logging.getLogger(__name__)
_HEADS = AuditHead.__table__
_RECORDS = AuditRecord.__table__
_origin: contextvars.ContextVar[str | None] = contextvars.ContextVar("tsunagu_origin", default=None)


class Action:
    CASE_READ = "case.read"
    CASE_LIST = "case.list"
    TASK_READ = "task.read"
    QUEUE_READ = "queue.read"
    CASE_START = "case.start"
    TASK_COMPLETE = "task.complete"
    TASK_CLAIM = "task.claim"
    TASK_RELEASE = "task.release"
    TASK_ASSIGN = "task.assign"
    TASK_DRAFT = "task.draft"
    TIMER_FIRE = "timer.fire"
    MESSAGE_RECEIVE = "message.receive"
    SOURCE_ADD = "source.add"
    SOURCE_REMOVE = "source.remove"
    CONSENT_RECORD = "consent.record"
    CASE_SHARE = "case.share"
    DEFINITION_DEPLOY = "definition.deploy"
    CASE_MIGRATE = "case.migrate"
    FORM_CHANGE = "form.change"
    USER_CHANGE = "user.change"
    USER_CREATE = "user.create"
    TOKEN_ISSUE = "token.issue"
    TOKEN_REVOKE = "token.revoke"
    SIGNIN_OK = "signin.ok"
    SIGNIN_FAIL = "signin.fail"
    SIGNOUT = "signout"
    SESSION_END = "session.end"
    AUDIT_SEARCH = "audit.search"
    AUDIT_EXPORT = "audit.export"
    ACCESS_DENIED = "access.denied"
    WEBHOOK_CREATE = "webhook.create"
    WEBHOOK_CHANGE = "webhook.change"
    WEBHOOK_DELETE = "webhook.delete"
    WEBHOOK_ROTATE = "webhook.rotate"
    WEBHOOK_PING = "webhook.ping"
    WEBHOOK_RESEND = "webhook.resend"
    WEBHOOK_DISABLE = "webhook.disable"
    CONSULTATION_RECORD = "consultation.record"
    CONSULTATION_LIST = "consultation.list"
    EVENT_CREATE = "event.create"
    PLACE_CHANGE = "place.change"
    STATISTICS_READ = "statistics.read"
    REPORT_READ = "report.read"
    REPORT_EXPORT = "report.export"
    TASK_ESCALATE = "task.escalate"
    ESCALATION_ACKNOWLEDGE = "escalation.acknowledge"
    CASE_RETRY = "case.retry"
    CASE_MOVE = "case.move"
    HOUSEHOLD_READ = "household.read"
    HOUSEHOLD_CHANGE = "household.change"
    NOTE_CREATE = "note.create"
    NOTE_EDIT = "note.edit"
    NOTE_LIST = "note.list"
    ATTACHMENT_UPLOAD = "attachment.upload"
    ATTACHMENT_LIST = "attachment.list"
    ATTACHMENT_DOWNLOAD = "attachment.download"
    ATTACHMENT_REMOVE = "attachment.remove"


# What each action is called on the audit page (Japanese, English) and in the CSV export's
# label column; the codes themselves stay the machine-readable vocabulary.
LABELS: dict[str, tuple[str, str]] = {
    Action.CASE_READ: ("案件の閲覧", "Case viewed"),
    Action.CONSULTATION_RECORD: ("相談の記録", "Consultation recorded"),
    Action.CONSULTATION_LIST: ("相談一覧の閲覧", "Consultation list viewed"),
    Action.EVENT_CREATE: ("相談会の登録", "Consultation day set up"),
    Action.PLACE_CHANGE: ("参加先の登録・変更", "Participation place changed"),
    Action.STATISTICS_READ: ("統計の閲覧", "Statistics viewed"),
    Action.CASE_LIST: ("案件一覧の閲覧", "Case list viewed"),
    Action.TASK_READ: ("作業の閲覧", "Task viewed"),
    Action.QUEUE_READ: ("作業一覧の閲覧", "Work queue viewed"),
    Action.CASE_START: ("案件の登録", "Case opened"),
    Action.TASK_COMPLETE: ("作業の完了", "Task completed"),
    Action.TASK_CLAIM: ("作業の担当", "Task claimed"),
    Action.TASK_RELEASE: ("作業の担当を外す", "Task released"),
    Action.TASK_ASSIGN: ("作業の割り当て", "Task assigned"),
    Action.TASK_DRAFT: ("作業の一時保存", "Draft saved"),
    Action.TIMER_FIRE: ("予定日の到来", "Scheduled date reached"),
    Action.CONSENT_RECORD: ("本人同意の記録", "Consent recorded"),
    Action.CASE_SHARE: ("案件の共有", "Case shared"),
    Action.DEFINITION_DEPLOY: ("プロセス定義の登録", "Process definitions deployed"),
    Action.CASE_MIGRATE: ("案件の版の移行", "Case moved to another process version"),
    Action.FORM_CHANGE: ("フォームの変更", "Form changed"),
    Action.USER_CHANGE: ("ユーザー情報の変更", "User changed"),
    Action.USER_CREATE: ("ユーザーの追加", "User added"),
    Action.TOKEN_ISSUE: ("APIトークンの発行", "API token issued"),
    Action.TOKEN_REVOKE: ("APIトークンの無効化", "API token revoked"),
    Action.SIGNIN_OK: ("ログイン", "Signed in"),
    Action.SIGNIN_FAIL: ("ログインの失敗", "Sign-in failed"),
    Action.SIGNOUT: ("ログアウト", "Signed out"),
    Action.SESSION_END: ("セッションの終了", "Session ended"),
    Action.AUDIT_SEARCH: ("アクセス記録の検索", "Audit trail searched"),
    Action.AUDIT_EXPORT: ("アクセス記録の出力", "Audit trail exported"),
    Action.ACCESS_DENIED: ("アクセスの拒否", "Access denied"),
    Action.MESSAGE_RECEIVE: ("メッセージの受信", "Message received"),
    Action.SOURCE_ADD: ("送信元の登録", "Message source added"),
    Action.SOURCE_REMOVE: ("送信元の削除", "Message source removed"),
    Action.TASK_ESCALATE: ("作業の期限超過の通知（要対応）", "Overdue task escalated"),
    Action.ESCALATION_ACKNOWLEDGE: ("要対応の確認", "Escalation acknowledged"),
    Action.CASE_RETRY: ("エラー案件の再実行", "Case in error retried"),
    Action.CASE_MOVE: ("案件の工程の移動", "Case moved to another step"),
    Action.HOUSEHOLD_READ: ("世帯の閲覧", "Household viewed"),
    Action.HOUSEHOLD_CHANGE: ("世帯の変更", "Household changed"),
    Action.NOTE_CREATE: ("支援経過記録の登録", "Support record added"),
    Action.NOTE_EDIT: ("支援経過記録の修正", "Support record edited"),
    Action.NOTE_LIST: ("支援経過記録の閲覧", "Support records viewed"),
    Action.ATTACHMENT_UPLOAD: ("添付書類の登録", "Document attached"),
    Action.ATTACHMENT_LIST: ("添付書類一覧の閲覧", "Document list viewed"),
    Action.ATTACHMENT_DOWNLOAD: ("添付書類のダウンロード", "Document downloaded"),
    Action.ATTACHMENT_REMOVE: ("添付書類の削除", "Document removed"),
    Action.WEBHOOK_CREATE: ("Webhook の登録", "Webhook created"),
    Action.WEBHOOK_CHANGE: ("Webhook の変更", "Webhook changed"),
    Action.WEBHOOK_DELETE: ("Webhook の削除", "Webhook deleted"),
    Action.WEBHOOK_ROTATE: ("Webhook の秘密鍵の更新", "Webhook secret rotated"),
    Action.WEBHOOK_PING: ("Webhook のテスト送信", "Webhook test ping"),
    Action.WEBHOOK_RESEND: ("Webhook の再送", "Webhook event re-sent"),
    Action.WEBHOOK_DISABLE: ("Webhook の停止（送信失敗）", "Webhook disabled after failures"),
    Action.REPORT_READ: ("滞留案件一覧の閲覧", "Stuck-case report viewed"),
    Action.REPORT_EXPORT: ("滞留案件一覧の出力", "Stuck-case report exported"),
}


def actions() -> list[str]:
    """Every action code."""
    return [v for k, v in vars(Action).items() if k.isupper()]


@contextlib.contextmanager
def origin_scope(origin: str | None) -> Iterator[None]:
    token = _origin.set(origin)
    try:
        yield
    finally:
        _origin.reset(token)


def set_origin(origin: str | None) -> None:
    """For callers whose unit of work is not a with-block (a web request, a CLI run)."""
    _origin.set(origin)


def current_origin() -> str | None:
    return _origin.get()


AUDIT_CHAINS = 16
# The head's lock is taken by moving it on: the UPDATE hands back the new place in the chain
# and the hash to chain to.
_MOVE_HEAD = (update(_HEADS).where(_HEADS.c.id == bindparam("chain")).values(seq=_HEADS.c.seq + 1)
              .returning(_HEADS.c.seq, _HEADS.c.hash))
_MOVE_HEAD_BY = (update(_HEADS).where(_HEADS.c.id == bindparam("chain")).values(seq=_HEADS.c.seq + bindparam("n"))
                 .returning(_HEADS.c.seq, _HEADS.c.hash))
_INSERT_RECORD = _RECORDS.insert()
_SET_HEAD_HASH = update(_HEADS).where(_HEADS.c.id == bindparam("chain")).values(hash=bindparam("digest"))


def chain_of(case_id: str | None, actor_name: str | None) -> int:
    """The chain a record goes on: its case's, else its actor's (1..AUDIT_CHAINS)."""
    key = f"case:{case_id}" if case_id else f"actor:{actor_name or ''}"
    return 1 + zlib.crc32(key.encode()) % AUDIT_CHAINS


def _digest(chain: int, seq: int, at: datetime, actor_id: int | None, actor_name: str | None, action: str,
            case_id: str | None, case_number: str | None, origin: str | None, detail: Any, prev: str) -> str:
    fields = [seq, at.isoformat(), actor_id, actor_name, action, case_id, case_number, origin, detail, prev]
    # Chain 1 keeps the form of the records written before chains, whose hashes it carries on.
    body = json.dumps(fields if chain == 1 else [chain, *fields],
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def expected_hash(r: AuditRecord) -> str:
    """The hash a record carries if nothing in it was changed since it was written."""
    return _digest(r.chain, r.chain_seq, r.at, r.actor_id, r.actor_name, r.action, r.case_id, r.case_number,
                   r.origin, r.detail, r.prev_hash)


def _ensure_head(conn: Any, chain: int) -> None:
    """Create a chain's head row if it is missing (the first record on it); a concurrent
    creator wins quietly."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    conn.execute(insert(_HEADS).values(id=chain, seq=0, hash=GENESIS).on_conflict_do_nothing(index_elements=["id"]))


def record(session: Session, actor: User | None, action: str, now: datetime, case: Case | None = None,
           detail: dict[str, Any] | None = None, actor_name: str | None = None) -> AuditRecord:
    """Append one record in the caller's transaction (committed with it), on its chain: three
    Core statements (move the head, insert, give the head the hash), no ORM objects."""
    name = actor.name if actor is not None else actor_name
    case_id = case.id if case else None
    chain = chain_of(case_id, name)
    conn = session.connection()
    moved = conn.execute(_MOVE_HEAD, {"chain": chain}).first()
    if moved is None:
        _ensure_head(conn, chain)
        moved = conn.execute(_MOVE_HEAD, {"chain": chain}).first()
    chain_seq, prev = moved
    origin = current_origin()
    detail = json.loads(json.dumps(detail, default=str, ensure_ascii=False)) if detail else None
    values = {"chain": chain, "chain_seq": chain_seq, "at": now, "actor_id": actor.id if actor else None,
              "actor_name": name, "action": action, "case_id": case_id,
              "case_number": case.number if case else None, "origin": origin, "detail": detail, "prev_hash": prev}
    values["hash"] = digest = _digest(chain, chain_seq, now, values["actor_id"], name, action, case_id,
                                      values["case_number"], origin, detail, prev)
    inserted = conn.execute(_INSERT_RECORD, values)
    conn.execute(_SET_HEAD_HASH, {"chain": chain, "digest": digest})
    return AuditRecord(seq=inserted.inserted_primary_key[0], **values)


@dataclass(frozen=True)
class Entry:
    """One record to append with `record_many`: what `record` takes, as plain values."""
    action: str
    at: datetime
    actor_name: str | None
    case_id: str | None = None
    case_number: str | None = None
    detail: dict[str, Any] | None = None
    actor_id: int | None = None


def record_many(session: Session, entries: Iterable[Entry]) -> int:
    """Append `entries` in the caller's transaction, as `record` would one by one in this order,
    with three statements a chain rather than three a record. The chains' heads are taken in
    ascending order, so two transactions appending batches (timer sweepers) never wait for each
    other in a cycle. Returns how many were appended."""
    by_chain: dict[int, list[Entry]] = {}
    for entry in entries:
        by_chain.setdefault(chain_of(entry.case_id, entry.actor_name), []).append(entry)
    conn = session.connection()
    origin = current_origin()
    for chain in sorted(by_chain):
        batch = by_chain[chain]
        moved = conn.execute(_MOVE_HEAD_BY, {"chain": chain, "n": len(batch)}).first()
        if moved is None:
            _ensure_head(conn, chain)
            moved = conn.execute(_MOVE_HEAD_BY, {"chain": chain, "n": len(batch)}).first()
        last, prev = moved
        rows = []
        for chain_seq, e in enumerate(batch, start=last - len(batch) + 1):
            detail = json.loads(json.dumps(e.detail, default=str, ensure_ascii=False)) if e.detail else None
            digest = _digest(chain, chain_seq, e.at, e.actor_id, e.actor_name, e.action, e.case_id, e.case_number,
                             origin, detail, prev)
            rows.append({"chain": chain, "chain_seq": chain_seq, "at": e.at, "actor_id": e.actor_id,
                         "actor_name": e.actor_name, "action": e.action, "case_id": e.case_id,
                         "case_number": e.case_number, "origin": origin, "detail": detail, "prev_hash": prev,
                         "hash": digest})
            prev = digest
        conn.execute(_INSERT_RECORD, rows)
        conn.execute(_SET_HEAD_HASH, {"chain": chain, "digest": prev})
    return sum(len(b) for b in by_chain.values())


@dataclass
class Verification:
    ok: bool
    records: int
    head_hash: str
    problem: str | None = None
    seq: int | None = None


def verify(session: Session, batch: int = 5000, anchors: list[Anchor] | None = None) -> Verification:
    """Walk the whole chain; stop at the first fault. With `anchors`, then check that each
    anchored record is still in the chain with the anchored hash: a tail rewritten with
    fresh hashes passes the walk, but not the anchors taken before the rewrite."""
    result = _walk(session, batch)
    if not result.ok or not anchors:
        return result
    return _check_anchors(session, anchors, result, batch)


def _walk(session: Session, batch: int) -> Verification:
    """Every chain from its first record to its head, in batches (by chain, then place on it)."""
    heads = {h.id: (h.seq, h.hash) for h in session.execute(select(_HEADS.c.id, _HEADS.c.seq, _HEADS.c.hash))}
    ends: dict[int, tuple[int, str]] = {}
    count = 0
    chain, prev, expected = 0, GENESIS, 1
    after = (0, 0)
    while True:
        rows = list(session.scalars(
            select(AuditRecord).where(tuple_(AuditRecord.chain, AuditRecord.chain_seq) > tuple_(*after))
            .order_by(AuditRecord.chain, AuditRecord.chain_seq).limit(batch)))
        if not rows:
            break
        for r in rows:
            if r.chain != chain:
                chain, prev, expected = r.chain, GENESIS, 1
            where = f"record {r.seq} (chain {r.chain}, place {r.chain_seq})"
            if r.chain_seq != expected:
                return Verification(False, count, prev, f"chain {r.chain}: record {expected} of the chain is missing "
                                                        f"(next is {where})", r.seq)
            if r.prev_hash != prev:
                return Verification(False, count, prev, f"{where} does not follow the record before it", r.seq)
            if expected_hash(r) != r.hash:
                return Verification(False, count, prev, f"{where} was altered", r.seq)
            prev, expected, count = r.hash, expected + 1, count + 1
            ends[chain] = (r.chain_seq, r.hash)
            after = (r.chain, r.chain_seq)
        session.expunge_all()  # a long trail is walked in constant memory
    for c in sorted(set(heads) | set(ends)):
        end = ends.get(c, (0, GENESIS))
        head = heads.get(c)
        if head is None or head != end:
            said = head[0] if head is not None else "nothing"
            return Verification(False, count, _heads_hash(heads), f"chain {c} ends at its record {end[0]} but its head "
                                                                  f"says {said}: records at the end were removed or "
                                                                  f"the head was altered", None)
    return Verification(True, count, _heads_hash(heads))


def _heads_hash(heads: dict[int, tuple[int, str]]) -> str:
    """One hash for the trail's state: chain 1's head hash while it is the only chain (as before
    chains), else a SHA-256 over every chain's head."""
    live = {c: h for c, h in heads.items() if h[0] > 0}
    if not live:
        return GENESIS
    if set(live) == {1}:
        return live[1][1]
    body = json.dumps(sorted([c, seq, digest] for c, (seq, digest) in live.items()), separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


# ---------------------------------------------------------------- anchors


@dataclass(frozen=True)
class Anchor:
    """The heads of the chains at a moment: chain 1's as `seq`/`hash` (all an anchor of a
    one-chain trail had), the others' in `chains` as (chain, seq, hash)."""

    seq: int
    hash: str
    at: str
    line: int = 0  # where it was read from, to name it in a report
    chains: tuple[tuple[int, int, str], ...] = ()

    def heads(self) -> list[tuple[int, int, str]]:
        return [(1, self.seq, self.hash), *self.chains]

    def to_json(self) -> str:
        value: dict[str, Any] = {"seq": self.seq, "hash": self.hash, "at": self.at}
        if self.chains:
            value["chains"] = {str(c): [seq, digest] for c, seq, digest in self.chains}
        return json.dumps(value, separators=(",", ":"))

    def describe(self) -> str:
        return f"the anchor of {self.at} (line {self.line}: record {self.seq}, hash {self.hash[:12]}…)"


class AnchorFileError(ValueError):
    """The anchor file cannot be read as anchors."""


def _anchor_of(heads: dict[int, tuple[int, str]], now: datetime) -> Anchor:
    seq, digest = heads.get(1, (0, GENESIS))
    others = tuple((c, h[0], h[1]) for c, h in sorted(heads.items()) if c != 1 and h[0] > 0)
    return Anchor(seq, digest, now.isoformat(), chains=others)


def _read_heads(session: Session) -> dict[int, tuple[int, str]]:
    return {h.id: (h.seq, h.hash) for h in session.execute(select(_HEADS.c.id, _HEADS.c.seq, _HEADS.c.hash))}


def head_anchor(session: Session, now: datetime) -> Anchor:
    """Every chain's head as an anchor (record 0 and the genesis hash for an empty chain 1)."""
    heads = _read_heads(session)
    session.commit()
    return _anchor_of(heads, now)


def append_anchor(path: Path, anchor: Anchor) -> None:
    """Append one line to `path` (created if missing) and fsync it. O_APPEND: each write
    lands at the end whatever else writes there, and nothing before it is touched."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (anchor.to_json() + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def anchor_if_due(session_factory: sessionmaker[Session], path: Path, now: datetime) -> Anchor | None:
    """The sweeper's daily anchor: claim → write. The claim is a conditional UPDATE of chain
    1's head row (its next due time moved a day on) that one transaction wins however many
    sweepers run, and that transaction reads every chain's head as committed at that moment. The line is
    written after the claim commits, so a slow or hung anchor disk never holds the head
    row that every audited request needs; a failed write moves the next try to
    ANCHOR_RETRY from now. The anchor if this call wrote one."""
    from engine.ops.db import begin_write

    with session_factory() as session:
        due = session.scalar(select(AuditHead.anchor_due_at).where(AuditHead.id == 1))
        session.commit()
        if due is not None and due > now:
            return None  # the common case, decided without taking a write lock
        begin_write(session)
        claim = (update(AuditHead).where(AuditHead.id == 1)
                 .where((AuditHead.anchor_due_at.is_(None)) | (AuditHead.anchor_due_at <= now))
                 .values(anchor_due_at=now + ANCHOR_EVERY).returning(AuditHead.id))
        won = session.execute(claim).one_or_none()
        if won is None and due is None and session.scalar(select(func.count()).select_from(AuditHead)):
            # Records so far went only on other chains: chain 1's row (which carries the
            # due time) is made, empty, so that the claim has a row to win.
            _ensure_head(session.connection(), 1)
            won = session.execute(claim).one_or_none()
        # The heads in the claiming transaction: as committed when it won.
        heads = _read_heads(session) if won is not None else {}
        session.commit()
        if won is None:  # another sweeper was first, or the trail is still empty
            return None
        anchor = _anchor_of(heads, now)
        try:
            append_anchor(path, anchor)
        except OSError as exc:
            log.warning("could not write the audit anchor to %s (trying again in %s): %s", path, ANCHOR_RETRY, exc)
            begin_write(session)
            session.execute(update(AuditHead).where(AuditHead.id == 1, AuditHead.anchor_due_at == now + ANCHOR_EVERY)
                            .values(anchor_due_at=now + ANCHOR_RETRY))
            session.commit()
            return None
        log.info("anchored the audit trail at record %d in %s", anchor.seq, path)
        return anchor


def read_anchors(lines: Iterable[str]) -> list[Anchor]:
    """Anchors from the lines of an anchor file; blank lines are skipped. A line without
    `chains` (written before the trail had chains) anchors chain 1 alone."""
    out = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
            seq, digest, at = value["seq"], value["hash"], value["at"]
            chains = value.get("chains", {})
            others = tuple(sorted((int(c), h[0], h[1]) for c, h in chains.items()))
        except (ValueError, TypeError, KeyError, AttributeError, IndexError):
            raise AnchorFileError(f"line {n} is not an anchor (a JSON object with seq, hash and at)") from None
        if not all(_is_head(s_, d_) for s_, d_ in [(seq, digest), *((s_, d_) for _, s_, d_ in others)]) \
                or not isinstance(at, str) or any(c < 2 or c > 10_000 for c, _, _ in others):
            raise AnchorFileError(f"line {n} is not an anchor (seq must be a whole number, hash 64 hex digits)")
        out.append(Anchor(seq, digest, at, n, others))
    return out


def _is_head(seq: Any, digest: Any) -> bool:
    return isinstance(seq, int) and not isinstance(seq, bool) and seq >= 0 and isinstance(digest, str) \
        and len(digest) == 64


def _check_anchors(session: Session, anchors: list[Anchor], walked: Verification, batch: int) -> Verification:
    def broken(anchor: Anchor, problem: str) -> Verification:
        return Verification(False, walked.records, walked.head_hash, f"{anchor.describe()} {problem}", anchor.seq)

    wanted: dict[int, set[int]] = {}
    for anchor in anchors:
        for chain, seq, _ in anchor.heads():
            if seq > 0:
                wanted.setdefault(chain, set()).add(seq)
    hashes: dict[tuple[int, int], str] = {}
    step = min(batch, 500)  # bound parameters per query
    for chain, places in wanted.items():
        places_list = sorted(places)
        for i in range(0, len(places_list), step):
            rows = session.execute(select(AuditRecord.chain_seq, AuditRecord.hash)
                                   .where(AuditRecord.chain == chain, AuditRecord.chain_seq.in_(places_list[i:i + step])))
            hashes.update({(chain, seq): digest for seq, digest in rows})
    session.commit()
    for anchor in anchors:
        for chain, seq, digest in anchor.heads():
            name = f"record {seq}" if chain == 1 else f"record {seq} of chain {chain}"
            if seq == 0:
                if digest != GENESIS:
                    return broken(anchor, "is of an empty trail but does not carry the genesis hash")
                continue
            have = hashes.get((chain, seq))
            if have is None:
                return broken(anchor, f"names {name}, which the trail no longer has: records "
                                      f"anchored before were removed")
            if have != digest:
                return broken(anchor, f"does not match {name}: the trail was rewritten from that "
                                      f"record or an earlier one after it was anchored")
    return walked


def search(session: Session, *, user: str | None = None, case_number: str | None = None,
           since: datetime | None = None, until: datetime | None = None, action: str | None = None,
           limit: int = 1000, offset: int = 0) -> list[AuditRecord]:
    check_int(limit, "limit", 1)
    check_int(offset, "offset")
    check_instant(since, "since")
    check_instant(until, "until")
    stmt = select(AuditRecord)
    if user:
        stmt = stmt.where(AuditRecord.actor_name == user)
    if case_number:
        stmt = stmt.where(AuditRecord.case_number == case_number)
    if since:
        stmt = stmt.where(AuditRecord.at >= since)
    if until:
        stmt = stmt.where(AuditRecord.at < until)
    if action:
        stmt = stmt.where(AuditRecord.action == action)
    return list(session.scalars(stmt.order_by(AuditRecord.seq.desc()).limit(limit).offset(offset)))


CSV_COLUMNS = ["seq", "at", "actor_name", "action", "case_number", "origin", "detail", "hash", "action_label"]


def to_csv(rows: list[AuditRecord]) -> str:
    """The records as CSV: raw codes and JSON details for machines, the action's Japanese
    label last for people; it starts with a byte order mark so Excel reads it as UTF-8."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for r in rows:
        writer.writerow([r.seq, r.at.isoformat(), r.actor_name or "", r.action, r.case_number or "", r.origin or "",
                         json.dumps(r.detail, ensure_ascii=False) if r.detail else "", r.hash,
                         LABELS.get(r.action, (r.action,))[0]])
    return out.getvalue()


@dataclass
class Names:
    """What the ids in a page of records stand for, to show them in words."""

    steps: dict[str, str]  # task id → step name
    timers: dict[int, str]  # timer id → step name
    users: dict[str, str]  # user name → display name
    processes: dict[str, str]  # process key → process name


def names_for(session: Session, rows: list[AuditRecord]) -> Names:
    from engine.models import HumanTask, ProcessDefinition, Timer

    def values(key: str) -> set[Any]:
        return {r.detail[key] for r in rows if r.detail and isinstance(r.detail.get(key), str | int)}

    task_ids = values("task_id")
    timer_ids = {i for i in values("timer_id") if isinstance(i, int)}
    people = {r.actor_name for r in rows if r.actor_name} | values("user") | values("assignee") | values("name")
    def pairs(stmt: Any) -> dict[Any, Any]:
        return {key: value for key, value in session.execute(stmt)}

    steps = pairs(select(HumanTask.id, HumanTask.name).where(HumanTask.id.in_(task_ids))) if task_ids else {}
    timers = pairs(select(Timer.id, Timer.step_name).where(Timer.id.in_(timer_ids))) if timer_ids else {}
    users = pairs(select(User.name, User.display_name).where(User.name.in_(people))) if people else {}
    processes = pairs(select(ProcessDefinition.process_key, ProcessDefinition.name).order_by(ProcessDefinition.version))
    session.commit()
    return Names(steps, timers, users, processes)


def _require_auditor(actor: User) -> None:
    from engine.errors import Forbidden
    from engine.status import Role

    if not {Role.ADMIN, Role.COORDINATION_LEAD} & set(actor.roles):
        raise Forbidden("この操作を行う権限がありません / Only administrators and the coordination lead may "
                        "search the audit trail")


def search_as(session: Session, actor: User, now: datetime, *, export: bool = False, **filters: Any) -> list[AuditRecord]:
    """Search the trail as `actor` (administrator or coordination lead); the search itself
    is recorded, with its filters, and committed."""
    from engine.ops.db import begin_write

    _require_auditor(actor)
    begin_write(session)
    try:
        rows = search(session, **filters)
        shown = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in filters.items() if v is not None}
        record(session, actor, Action.AUDIT_EXPORT if export else Action.AUDIT_SEARCH, now,
               detail={"filters": shown, "results": len(rows)})
        session.commit()
        return rows
    except BaseException:
        session.rollback()
        raise


def search_page(session: Session, actor: User, now: datetime, **filters: Any) -> tuple[list[AuditRecord], Names]:
    """`search_as`, with the names the records' ids stand for (the audit page)."""
    rows = search_as(session, actor, now, **filters)
    return rows, names_for(session, rows)
