"""Demo data: a user per organisation role and a few cases at different steps.

Every case is moved through the real domain functions, as staff would move it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.casework import cases, household
from engine.env import Env
from engine.models import HumanTask, User
from engine.security import users
from engine.status import TaskState

DEMO_PASSWORD = "tsunagu-demo"

# name, display name, groups, roles
DEMO_USERS = [
    ("hokatsu", "佐藤 花子（地域包括支援センター）", ["hokatsu-center"], ["staff"]),
    ("jimukyoku", "田中 一郎（地域共生課・事務局）", ["secretariat", "chiiki-kyosei"], ["secretariat"]),
    ("jicho", "山田 太郎（福祉部次長・連携責任者）", ["coordination-lead"], ["coordination_lead"]),
    ("kacho", "木村 恵子（地域共生課長・スーパーバイザー）", ["secretariat", "chiiki-kyosei"], ["secretariat", "supervisor"]),
    ("choju", "鈴木 誠（長寿安心課）", ["choju-anshin"], ["staff"]),
    ("kurashi", "高橋 由美（くらし支援課）", ["kurashi-shien"], ["staff"]),
    ("minsei", "伊藤 修（民生・児童委員）", ["minsei-iin"], ["staff"]),
    ("nozei", "小林 進（納税課）", ["nozei"], ["staff"]),
    ("outreach", "森 彩（地域共生課・アウトリーチ担当）", ["chiiki-kyosei"], ["staff"]),
    ("designer", "中村 亮（プロセス設計）", ["chiiki-kyosei"], ["designer"]),
    ("admin", "システム管理者", ["chiiki-kyosei"], ["admin"]),
]

INTAKE_ELIGIBLE = {
    "multiple_targets": True, "all_targets_have_lead_department": False,
    "lead_department_can_handle_alone": False, "coordination_problem": True,
    "summary": "30歳女性（精神疾患の疑い、受診なし）、認知症の親、不登校がちの小学生の子と同居。家はごみ屋敷で支援を拒否。",
    "consent": "unknown",
}


def _task(session: Session, case_id: str) -> HumanTask:
    return session.scalars(select(HumanTask).where(HumanTask.case_id == case_id,
                                                   HumanTask.state == TaskState.OPEN)).first()


def seed(session: Session, env: Env, now: datetime) -> dict[str, str]:
    """Create demo users (password DEMO_PASSWORD) and cases. Returns name → API token."""
    tokens: dict[str, str] = {}
    made: dict[str, User] = {}
    for name, display, groups, roles in DEMO_USERS:
        existing = session.scalar(select(User).where(User.name == name))
        user = existing or users.add_user(session, name, groups, roles, now, display, DEMO_PASSWORD)
        made[name] = user
        tokens[name] = users.issue_token(session, user, now, label="demo")
    session.commit()
    if session.scalar(select(HumanTask.id).limit(1)) is not None:
        return tokens  # cases were seeded before

    ref, sec = made["hokatsu"], made["jimukyoku"]
    # 1) a fresh consultation waiting for intake at the referring agency
    c1 = cases.start_case(session, env, ref, "multi_agency",
                          {"summary": "50歳男性、親の他界後ひとり暮らし。公共料金の滞納あり、ひきこもりがち。"}, None, now)
    # ... with its household, which answers two of the intake's 図4 inputs (one target, no department)
    born = now.date().replace(year=now.year - 50, month=6, day=1).isoformat()
    household.replace(session, env, ref, c1.id, {"members": [
        {"name": "豊中 一郎", "kana": "とよなか いちろう", "birth_date": born, "sex": "male", "relation": "本人",
         "attributes": [], "address": "豊中市岡上の町2-1-1"}]}, now)
    # 2) a case in assessment at the secretariat
    c2 = cases.start_case(session, env, ref, "multi_agency",
                          {"summary": "70代の母と40代の長男の二人暮らし。長男は無職で、母の年金で生活。"}, None, now)
    cases.complete_task(session, env, ref, _task(session, c2.id).id, INTAKE_ELIGIBLE, now)
    # 3) a case under monitoring, its timer pending
    c3 = cases.start_case(session, env, ref, "multi_agency", {"summary": "高齢者宅に平日昼間、孫らしき小学生が在宅。"},
                          None, now)
    cases.complete_task(session, env, ref, _task(session, c3.id).id,
                        {**INTAKE_ELIGIBLE, "summary": "高齢者宅に平日昼間、孫らしき小学生が在宅。", "consent": "given"}, now)
    steps = [
        {"members": ["choju-anshin", "kodomo-sodan"], "assessment": "祖母の介護と孫の不登校が重なっている。"},
        {"issues": "介護負担・不登校・親の所在", "policy": "長寿安心課とこども相談課が連携して見守る。",
         "monitoring_interval": "P14D"},
        {"held_on": now.date().isoformat(), "participants": ["choju-anshin", "kodomo-sodan"],
         "roles": [{"group": "choju-anshin", "role": "介護サービスの調整"},
                   {"group": "kodomo-sodan", "role": "学校との連絡・家庭訪問"}]},
    ]
    for data in steps:
        cases.complete_task(session, env, sec, _task(session, c3.id).id, data, now)
    # 4) an emergency reported by a community volunteer
    cases.start_case(session, env, made["minsei"], "emergency",
                     {"summary": "独居高齢者宅から異臭、応答なし。"}, None, now)
    # 5) an arrears referral for outreach: accepted, its first contact attempt assigned
    c5 = cases.start_case(session, env, made["nozei"], "outreach",
                          {"source": "tax", "household_ref": "H-0412", "amount_yen": 186000,
                           "months_in_arrears": 7}, None, now)
    cases.complete_task(session, env, made["kacho"], _task(session, c5.id).id,
                        {"summary": "市税の滞納 7か月・186,000円（世帯番号 H-0412）", "attempt_interval": "P7D",
                         "max_attempts": 3, "priority": "normal",
                         "notes": "市民税の滞納が7か月。督促状に応答なし。"}, now)
    cases.assign_task(session, env, made["kacho"], _task(session, c5.id).id, "outreach", now)
    return tokens
