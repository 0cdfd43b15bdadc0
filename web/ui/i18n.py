"""The staff pages' messages, Japanese first, English switchable.

`t("key", **kw)` looks a message up in the language of the request (the session's choice,
Japanese by default). Step names and form titles are not translated: they come from the
BPMN diagrams and the forms' JSON Schemas, in Japanese.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import session
from markupsafe import Markup, escape

from engine.audit import LABELS as AUDIT_LABELS

LANGUAGES = ("ja", "en")
DEFAULT = "ja"
JST = timezone(timedelta(hours=9), "JST")

# key: (Japanese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # layout
    "app_name": ("つなぐ", "Tsunagu"),
    "app_tagline": ("豊中市 多機関協働事業", "Toyonaka multi-agency support"),
    "skip_to_content": ("本文へスキップ", "Skip to main content"),
    "nav_main": ("メインメニュー", "Main menu"),
    "breadcrumbs": ("現在位置", "Breadcrumb"),
    "nav_queue": ("作業一覧", "Work queue"),
    "nav_new_consultation": ("新規相談", "New consultation"),
    "nav_new_emergency": ("緊急対応の報告", "Report an emergency"),
    "sign_in": ("ログイン", "Sign in"),
    "sign_out": ("ログアウト", "Sign out"),
    "display_language": ("表示言語", "Language"),
    "signed_in_as": ("ログイン中: {name}", "Signed in as {name}"),
    "footer": ("誰一人取り残さない — 豊中市 重層的支援体制整備事業", "Leave no one behind — Toyonaka City"),
    # sign-in
    "sign_in_title": ("職員ログイン", "Staff sign-in"),
    "sign_in_lead": ("職員のユーザー名とパスワードを入力してください。",
                     "Enter your staff user name and password."),
    "username": ("ユーザー名", "User name"),
    "password": ("パスワード", "Password"),
    "sign_in_failed": ("ユーザー名またはパスワードが正しくありません。",
                       "The user name or password is not correct."),
    "sign_in_locked": ("ログインの失敗が続いたため、{seconds} 秒後まで試せません。",
                       "Too many failed sign-ins: try again in {seconds} seconds."),
    "session_ended": ("このセッションは終了されました。もう一度ログインしてください。",
                      "This session was ended. Please sign in again."),
    "session_expired": ("一定時間操作がなかったため、ログアウトしました。", "You were signed out after a period of inactivity."),
    "signed_out": ("ログアウトしました。", "You have signed out."),
    "sign_in_required": ("ログインしてください。", "Please sign in."),
    # queue
    "queue_title": ("作業一覧", "Work queue"),
    "queue_lead": ("所属グループの未完了の作業と、あなたが担当する作業です。",
                   "Open tasks of your groups and tasks assigned to you."),
    "filters": ("絞り込み", "Filters"),
    "filter_process": ("プロセス", "Process"),
    "filter_step": ("ステップ", "Step"),
    "filter_group": ("グループ", "Group"),
    "filter_assignee": ("担当者", "Assignee"),
    "assignee_any": ("すべて", "Anyone"),
    "assignee_me": ("自分", "Me"),
    "assignee_unassigned": ("未割当", "Unassigned"),
    "filter_overdue": ("期限超過のみ", "Overdue only"),
    "search": ("検索", "Search"),
    "search_label": ("案件番号・概要で検索", "Search case number or summary"),
    "sort": ("並び順", "Sort by"),
    "sort_due": ("期限日順", "Due date"),
    "sort_age": ("経過日数順（古い順）", "Age (oldest first)"),
    "sort_case": ("案件番号順", "Case number"),
    "apply": ("適用", "Apply"),
    "reset": ("条件をクリア", "Clear filters"),
    "all": ("すべて", "All"),
    "col_case": ("案件番号", "Case"),
    "col_step": ("ステップ", "Step"),
    "col_summary": ("案件の概要", "Case summary"),
    "col_group": ("グループ", "Group"),
    "col_assignee": ("担当者", "Assignee"),
    "col_age": ("経過", "Age"),
    "col_due": ("期限", "Due"),
    "col_actions": ("操作", "Actions"),
    "queue_caption": ("作業一覧（{total}件中 {first}〜{last}件目）", "Work queue ({first}–{last} of {total})"),
    "queue_empty": ("該当する作業はありません。", "No tasks match."),
    "overdue": ("期限超過", "Overdue"),
    "unassigned": ("未割当", "Unassigned"),
    "claim": ("担当する", "Claim"),
    "release": ("担当を外す", "Release"),
    "assign": ("割り当て", "Assign"),
    "assign_to": ("割り当て先", "Assign to"),
    "open_task": ("開く", "Open"),
    "pagination": ("ページ送り", "Pagination"),
    "previous_page": ("前へ", "Previous"),
    "next_page": ("次へ", "Next"),
    "page_of": ("{page} / {pages} ページ", "Page {page} of {pages}"),
    "claimed": ("「{step}」を担当しました。", "You claimed “{step}”."),
    "released": ("「{step}」の担当を外しました。", "You released “{step}”."),
    "assigned": ("「{step}」を {name} さんに割り当てました。", "“{step}” is now assigned to {name}."),
    "no_summary": ("（概要なし）", "(no summary)"),
    # ages
    "age_minutes": ("{n}分", "{n} min"),
    "age_hours": ("{n}時間", "{n} h"),
    "age_days": ("{n}日", "{n} d"),
    # task page
    "task_title": ("{step}", "{step}"),
    "case_label": ("案件", "Case"),
    "required": ("必須", "Required"),
    "save_draft": ("一時保存", "Save draft"),
    "complete": ("完了して次へ進む", "Complete"),
    "confirm": ("確認", "Confirm"),
    "draft_saved": ("一時保存しました。後で続きを入力できます。", "Draft saved. You can come back to it later."),
    "completed_step": ("「{step}」を完了しました。", "“{step}” is complete."),
    "errors_title": ("入力内容を確認してください（{n}件）", "Please check your answers ({n})"),
    "task_not_open": ("この作業は既に完了または取り消されています。", "This task is already completed or cancelled."),
    "task_not_yours": ("この作業はあなたのグループの担当ではないため、閲覧のみできます。",
                       "This task belongs to another group: you can read it but not act on it."),
    "task_claimed_by": ("この作業は {name} さんが担当しています。", "{name} is working on this task."),
    "task_mine": ("あなたが担当しています。", "You are working on this task."),
    "earlier_steps": ("これまでの経過", "Earlier steps"),
    "held_roles_title": ("担当している役割", "Roles you hold"),
    "held_roles_lead": ("支援会議で役割を決めた案件です。モニタリングのたびに役割の報告をお願いします。",
                        "Cases where a support meeting gave your agency a role; report on it at each monitoring."),
    "held_roles_caption": ("担当している役割 {count} 件", "{count} roles held"),
    "held_role": ("役割", "Role"),
    "held_role_now": ("案件の現在", "Where the case is"),
    "held_role_report": ("役割の報告", "Report"),
    "held_role_report_due": ("報告する", "Report now"),
    "held_role_no_report": ("依頼はありません", "None asked"),
    "held_role_yours": ("この機関の役割", "Your agency's role"),
    "round_reports_title": ("役割の報告", "Role holders' reports"),
    "round_reports_awaited": ("報告待ち", "Awaiting reports from"),
    "round_reports_may_decide": ("報告がそろわなくても判断できます。", "You may decide without them."),
    "round_report_pending": ("報告待ち", "Awaited"),
    "round_report_received": ("報告あり", "Received"),
    "round_report_withdrawn": ("取り下げ", "Withdrawn"),
    "previous_round": ("前回の記録", "The previous round"),
    "previous_round_note": ("前回この作業で記録した内容です。今回の内容は新たに入力してください。",
                            "What was recorded the last time this step was done; enter this round's afresh."),
    "no_earlier_steps": ("まだ完了したステップはありません。", "No step has been completed yet."),
    "yes": ("はい", "Yes"),
    "no": ("いいえ", "No"),
    "choose": ("選択してください", "Choose…"),
    "add_row": ("行を追加", "Add a row"),
    "remove_row": ("この行を削除", "Remove this row"),
    "row_n": ("{n}行目", "Row {n}"),
    "duration_amount": ("数", "Number"),
    "duration_unit": ("単位", "Unit"),
    "duration_text": ("文字で入力（例: 2週間、1か月、半月）", "Or type the period (e.g. 2週間, 1か月, P1M2W)"),
    "unit_D": ("日", "days"),
    "unit_W": ("週間", "weeks"),
    "unit_M": ("か月", "months"),
    "unit_Y": ("年", "years"),
    "due": ("期限", "Due"),
    "back_to_queue": ("作業一覧に戻る", "Back to the work queue"),
    "view_case": ("案件を表示", "View case"),
    # case page
    "case_title": ("案件 {number}", "Case {number}"),
    "status": ("状態", "Status"),
    "status_active": ("対応中", "Active"),
    "status_completed": ("終了", "Completed"),
    "status_error": ("エラー", "Error"),
    "process": ("プロセス", "Process"),
    "referring_group": ("つなぎ元", "Referring agency"),
    "started_at": ("開始日時", "Opened"),
    "consent": ("本人同意", "Consent"),
    "consent_given": ("同意あり", "Given"),
    "consent_not_given": ("同意なし", "Not given"),
    "consent_unknown": ("未確認", "Unknown"),
    "summary": ("概要", "Summary"),
    "diagram": ("プロセス図", "Process diagram"),
    "diagram_legend_done": ("完了したステップ", "Completed step"),
    "diagram_legend_current": ("現在のステップ", "Current step"),
    "diagram_unavailable": ("プロセス図を表示できませんでした。下の一覧で進捗を確認できます。",
                            "The diagram could not be shown; the list below gives the progress."),
    "progress": ("進捗", "Progress"),
    "step_done": ("完了", "Done"),
    "step_current": ("対応中", "Current"),
    "open_tasks": ("未完了の作業", "Open tasks"),
    "no_open_tasks": ("未完了の作業はありません。", "No open tasks."),
    "work_on_task": ("作業する", "Work on it"),
    "timeline": ("経過記録", "History"),
    "history_pages": ("経過記録のページ", "History pages"),
    "history_older": ("以前の記録", "Older events"),
    "history_newest": ("最新の記録", "Newest events"),
    "linked_cases": ("関連する案件", "Linked cases"),
    "no_linked_cases": ("関連する案件はありません。", "No linked cases."),
    "handed_over_to": ("引継ぎ先", "Handed over to"),
    "handed_over_from": ("引継ぎ元", "Handed over from"),
    "monitoring_schedule": ("モニタリング予定", "Monitoring schedule"),
    "no_timers": ("予定されているモニタリングはありません。", "Nothing is scheduled."),
    "waiting_title": ("待っているもの", "Waiting for"),
    "waiting_task": ("作業待ち", "Task"),
    "waiting_timer": ("タイマー待ち", "Timer"),
    "waiting_message": ("メッセージ待ち", "Message"),
    "waiting_signal": ("シグナル待ち", "Signal"),
    "waiting_since": ("から", "since"),
    "waiting_nothing": ("待っているものはありません。", "Waiting for nothing."),
    "next_due": ("次回予定日", "Next due"),
    "show_form": ("入力内容を表示", "Show the submitted form"),
    "by_system": ("システム", "System"),
    "ev_case_started": ("案件を開始", "Case opened"),
    "ev_task_created": ("作業が発生", "Task created"),
    "ev_task_claimed": ("担当", "Claimed"),
    "ev_task_released": ("担当を外す", "Released"),
    "ev_task_assigned": ("割り当て", "Assigned"),
    "ev_task_completed": ("完了", "Completed"),
    "ev_task_cancelled": ("取消", "Cancelled"),
    "ev_timer_scheduled": ("予定を登録", "Scheduled"),
    "ev_timer_fired": ("予定日が到来", "Due date reached"),
    "ev_case_linked": ("案件を連携", "Cases linked"),
    "ev_message_received": ("メッセージを受信", "Message received"),
    "message_from": ("{message}（送信元: {source}）", "{message} (from {source})"),
    "ev_case_completed": ("案件を終了", "Case closed"),
    "ev_case_error": ("エラー", "Error"),
    "ev_consent_recorded": ("本人同意を記録", "Consent recorded"),
    "ev_case_shared": ("案件を共有", "Case shared"),
    "ev_case_migrated": ("プロセスの版を移行", "Moved to another process version"),
    "ev_task_escalated": ("期限超過の通知（要対応）", "Escalated: overdue"),
    "ev_escalation_acknowledged": ("要対応を確認", "Escalation acknowledged"),
    "ev_case_retried": ("再実行", "Retried"),
    "ev_case_moved": ("工程を移動", "Moved to another step"),
    "escalated_to_supervisor": ("期限を過ぎたため、グループの管理職に通知しました。",
                                "Past its time limit: the group's supervisors were told."),
    "escalated_to_lead": ("期限を大きく過ぎたため、連携責任者に通知しました。",
                          "Far past its time limit: the coordination lead was told."),
    "escalated_no_supervisor": ("期限を過ぎました。グループに管理職がいないため、連携責任者に通知しました。",
                                "Past its time limit; the group has no supervisor, so the coordination lead was told."),
    "moved_note": ("「{frm}」から「{to}」へ。理由: {reason}", "From “{frm}” to “{to}”. Reason: {reason}"),
    # supervision: 要対応, bulk reassignment, repair
    "escalations_title": ("要対応", "Needs attention"),
    "escalations_lead": ("期限を過ぎた作業です。状況を確認し、対応したら「確認済みにする」を押してください。",
                         "Tasks past their time limit. Look into each, then mark it as handled."),
    "escalations_caption": ("要対応の作業（{count}件）", "Tasks needing attention ({count})"),
    "escalations_empty": ("要対応の作業はありません。", "Nothing needs attention."),
    "col_level": ("段階", "Level"),
    "level_1": ("期限超過", "Past limit"),
    "level_2": ("長期超過", "Long overdue"),
    "acknowledge": ("確認済みにする", "Mark as handled"),
    "acknowledge_note": ("対応メモ", "Note"),
    "escalation_acknowledged": ("{number}「{step}」を確認済みにしました。", "{number} “{step}” is marked as handled."),
    "col_select": ("選択", "Select"),
    "select_task": ("選択: {number} {step}", "Select: {number} {step}"),
    "bulk_title": ("選択した作業の一括割り当て", "Assign the selected tasks"),
    "bulk_assign": ("選択した作業を割り当てる", "Assign selected tasks"),
    "bulk_assigned": ("{count}件の作業を {name} さんに割り当てました。", "{count} task(s) assigned to {name}."),
    "bulk_refused": ("{count}件は割り当てられませんでした: {reasons}", "{count} task(s) could not be assigned: {reasons}"),
    "bulk_none_ticked": ("割り当てる作業を選んでください。", "Select the tasks to assign."),
    "bulk_no_assignee": ("割り当て先を選んでください。", "Choose whom to assign them to."),
    "repair_title": ("修復（管理職）", "Repair (supervisors)"),
    "case_error_text": ("エラーの内容", "The error"),
    "retry_lead": ("原因（データや修正版のプロセス）を直したあと、失敗した工程をもう一度実行します。",
                   "Once the cause (the data, or a fixed process version) is corrected, run the failed step again."),
    "retry": ("失敗した工程を再実行", "Retry the failed step"),
    "retried": ("失敗した工程を再実行しました。", "The failed step ran again."),
    "retry_failed": ("再実行しましたが、まだ失敗します: {detail}", "Retried, but it still fails: {detail}"),
    "move_title": ("工程の移動", "Move to another step"),
    "move_to": ("移動先の工程", "Move to step"),
    "move_reason": ("理由（必須）", "Reason (required)"),
    "move": ("この工程へ移動", "Move the case"),
    "moved": ("案件を移動しました。", "The case was moved."),
    "key_previous": ("変更前", "Previous"),
    "key_group": ("機関", "Group"),
    "key_purpose": ("目的", "Purpose"),
    "due_on": ("予定日: {when}", "due {when}"),
    "assigned_to": ("担当: {name}", "assigned to {name}"),
    "key_summary": ("相談の概要", "Summary"),
    "key_origin_case": ("引継ぎ元の案件", "Origin case"),
    "key_emergency": ("緊急対応の記録", "Emergency record"),
    "key_consent": ("本人同意", "Consent"),
    "key_urgency": ("緊急度", "Urgency"),
    "key_danger_to": ("危険が及ぶもの", "Danger to"),
    "key_situation": ("状況", "Situation"),
    "key_response": ("対応内容", "Response"),
    "key_outcome": ("対応結果", "Outcome"),
    "key_number": ("案件番号", "Case number"),
    "key_process": ("プロセス", "Process"),
    "key_error": ("エラー", "Error"),
    "key_assignee": ("担当者", "Assignee"),
    # start pages
    "start_consultation_title": ("新規相談（多機関協働事業）", "New consultation (multi-agency)"),
    "start_consultation_lead": (
        "つなぎ元の機関として、多機関協働事業事務局に相談する案件を登録します。登録後、「1. 相談・調整」の入力に進みます。",
        "Register a case to consult the multi-agency secretariat about, as the referring agency. "
        "You then fill in step 1."),
    "start_emergency_title": ("緊急対応の報告", "Report an emergency"),
    "start_emergency_lead": (
        "生命・財産・人権に危険が及ぶおそれのある事案を発見した機関として登録します。登録後、危険度・緊急度の判断に進みます。",
        "Register a case your agency discovered where life, property or rights may be in danger. "
        "You then judge its urgency."),
    "start_summary": ("概要", "Summary"),
    "start_summary_help": ("世帯の状況や課題を簡潔に記入してください（後のステップで追記できます）。",
                           "Briefly describe the household and its problems (you can add more later)."),
    "start_group": ("つなぎ元の機関", "Referring agency"),
    "start_group_help": ("複数のグループに所属している場合は、案件を登録する機関を選んでください。",
                         "You belong to several groups: choose the one that refers the case."),
    "start_group_required": ("案件を登録する機関を選んでください。", "Choose the agency that refers the case."),
    "start_group_not_yours": ("選んだ機関はあなたの所属ではありません。", "You are not a member of that agency."),
    "start_submit": ("登録する", "Register"),
    "case_started": ("案件 {number} を登録しました。", "Case {number} is registered."),
    # errors
    "error_title": ("エラー", "Error"),
    "not_found_title": ("ページが見つかりません", "Page not found"),
    "not_found_body": ("お探しの案件・作業は存在しないか、閲覧する権限がありません。",
                       "The case or task does not exist, or you may not see it."),
    "conflict": ("他の職員が先に処理しました。最新の状態を確認してください。",
                 "Someone else got there first. Please check the latest state."),
    "forbidden": ("この操作を行う権限がありません。", "You may not do this."),
    "invalid": ("入力内容に誤りがあります。", "Some answers are not valid."),
    "workflow_error": ("ワークフローの実行に失敗しました。事務局に連絡してください。",
                       "The workflow failed. Please contact the secretariat."),
    "csrf_failed": ("フォームの有効期限が切れました。ページを再読み込みして、もう一度お試しください。",
                    "The form has expired. Reload the page and try again."),
    "bad_request_title": ("リクエストを処理できません", "The request could not be processed"),
    "method_not_allowed": ("このページはこの方法では開けません。メニューから開き直してください。",
                           "This page cannot be opened this way. Open it again from the menu."),
    "too_large": ("送信された内容が大きすぎます。", "What was sent is too large."),
    "error_body": ("処理できませんでした。しばらくしてから、もう一度お試しください。",
                   "This could not be done. Please try again shortly."),
    "to_queue": ("作業一覧へ", "To the work queue"),
}


def lang() -> str:
    value = session.get("lang") if _has_request() else None
    return value if value in LANGUAGES else DEFAULT


def ja(text: Any) -> Markup:
    """Text of the BPMN diagrams or the forms' JSON Schemas (Japanese only), marked as Japanese on a
    page that is not (WCAG 3.1.2, language of parts); unchanged on a Japanese page."""
    if lang() == "ja":
        return escape(text)
    return Markup('<span lang="ja">{}</span>').format(text)


def ja_attr() -> Markup:
    """` lang="ja"` on a page that is not Japanese, for elements that cannot hold a span (option)."""
    return Markup("") if lang() == "ja" else Markup(' lang="ja"')


def _has_request() -> bool:
    from flask import has_request_context

    return has_request_context()


def t(key: str, **kw: Any) -> str:
    pair = MESSAGES.get(key)
    if pair is None:
        return key
    text = pair[1] if lang() == "en" else pair[0]
    return text.format(**kw) if kw else text


def action_label(code: str) -> str:
    """An audit action in the page's language; a code without a label (one a later version
    dropped) is shown as it is."""
    pair = AUDIT_LABELS.get(code)
    if pair is None:
        return code
    return pair[1] if lang() == "en" else pair[0]


def pick(message: str | None) -> str:
    """Engine messages read "日本語 / English": keep the part in the page's language."""
    if not message:
        return ""
    ja, sep, en = message.partition(" / ")
    if not sep:
        return message
    return en.strip() if lang() == "en" else ja.strip()


def group_name(group: Any) -> str:
    if group is None:
        return ""
    return (getattr(group, "name_en", None) or group.name) if lang() == "en" else group.name


def jst(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    if value is None:
        return ""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JST).strftime(fmt)


def age(since: datetime | None, now: datetime) -> str:
    if since is None:
        return ""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 3600:
        return t("age_minutes", n=seconds // 60)
    if seconds < 86400:
        return t("age_hours", n=seconds // 3600)
    return t("age_days", n=seconds // 86400)
