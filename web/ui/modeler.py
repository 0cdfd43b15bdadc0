"""The process designers' page (/modeler, roles designer and admin) and the JSON it reads and
writes under /modeler/data, signed in with the page session and the CSRF header like every page
(the JSON API itself takes Bearer tokens only).

The page draws everything in the browser (web/assets/modeler.js: bpmn-js, dmn-js, bpmnlint); each
data view here parses the request, calls one domain function (engine.drafts, engine.sandbox,
engine.forms) and answers JSON, with the API's error envelope. The form preview is drawn by the
task page's own renderer (web/ui/forms.py, templates/ui/_form.html).
"""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, Response, g, jsonify, render_template, request, url_for

from engine import drafts, form_store, sandbox, versions
from engine import forms as form_rules
from engine.access import require_designer
from engine.errors import DomainError, Invalid
from engine.limits import MAX_INT
from web.api import error_response
from web.extensions import db, engine_env, now
from web.ui import csrf, errors, forms
from web.ui.auth import load_actor, login_required
from web.ui.i18n import MESSAGES, group_name, lang, t

bp = Blueprint("ui_modeler", __name__, url_prefix="/modeler")
bp.before_request(load_actor)
bp.before_request(csrf.protect)
errors.install(bp)

data = Blueprint("ui_modeler_data", __name__, url_prefix="/modeler/data")
data.before_request(load_actor)
data.before_request(csrf.protect)

MESSAGES.update({
    "nav_modeler": ("プロセス設計", "Process design"),
    "md_title": ("プロセス設計（モデラー）", "Process modeler"),
    "md_lead": ("業務の流れ（BPMN）、判定表（DMN）、入力フォームを編集し、検証・テスト実行してから配置します。"
                "配置すると新しい版になり、進行中の案件はそれまでの版のまま進みます。",
                "Edit the flow (BPMN), decision tables (DMN) and forms; validate and test-run them, then deploy. "
                "A deploy makes a new version; running cases stay on theirs."),
    "md_processes": ("プロセス一覧", "Processes"),
    "md_col_name": ("名前", "Name"),
    "md_col_key": ("プロセスID", "Process id"),
    "md_col_latest": ("最新版", "Latest"),
    "md_col_actions": ("操作", "Actions"),
    "md_new": ("新しいプロセス", "New process"),
    "md_new_key": ("新しいプロセスのID（英数字と _ . -）", "Id of the new process (letters, digits, _ . -)"),
    "md_new_create": ("作成", "Create"),
    "md_editor": ("編集", "Editor"),
    "md_no_open": ("上の一覧からプロセスを開くか、新しいプロセスを作成してください。",
                   "Open a process from the list above, or create a new one."),
    "md_save_draft": ("下書きを保存", "Save draft"),
    "md_discard_draft": ("下書きを破棄", "Discard draft"),
    "md_validate": ("検証", "Validate"),
    "md_test_run": ("テスト実行", "Test run"),
    "md_deploy": ("配置", "Deploy"),
    "md_deploy_comment": ("配置のコメント（変更点）", "Deploy comment (what changed)"),
    "md_download_current": (".bpmn をダウンロード", "Download .bpmn"),
    "md_findings_title": ("検証と lint の結果", "Validation and lint"),
    "md_canvas_help": ("要素を選ぶと右側に設定が出ます。Delete で削除、Ctrl+Z で元に戻します。",
                       "Select an element to see its settings on the right. Delete removes it; Ctrl+Z undoes."),
    "md_properties": ("要素の設定", "Element settings"),
    "md_readonly_title": ("読み取り専用の表示", "Read-only view"),
    "md_dmn_title": ("判定表（DMN）", "Decision table (DMN)"),
    "md_dmn_python": ("注意：判定表の各欄は FEEL ではなく Python の式として評価されます（例：== True、\"eligible\"）。"
                      "保存時（検証・配置）にサーバーが式を確認します。",
                      "Note: entries are evaluated as Python expressions, not FEEL (e.g. == True, \"eligible\"). "
                      "The server checks them on validate and deploy."),
    "md_run_title": ("テスト実行（サンドボックス）", "Test run (sandbox)"),
    "md_run_lead": ("実際の案件には一切触れずに、下書きをメモリ上で実行します。ステップIDごとの回答例を JSON で入力してください。",
                    "Runs the draft in memory, touching no real case. Give sample answers per step id as JSON."),
    "md_answers": ("回答例（JSON：{\"ステップID\": {項目: 値}}）", "Sample answers (JSON: {\"step id\": {field: value}})"),
    "md_run_path": ("通った要素（順番）", "Elements passed (in order)"),
    "md_diff_title": ("版の比較", "Compare versions"),
    "md_diff_process": ("プロセス", "Process"),
    "md_diff_from_label": ("比較元の版", "From version"),
    "md_diff_to_label": ("比較先の版", "To version"),
    "md_diff_show": ("差分を表示", "Show differences"),
    "md_legend": ("凡例", "Legend"),
    "md_legend_added": ("追加（緑・実線の太枠）：比較先にだけある要素", "Added (green, thick solid outline): only in the newer"),
    "md_legend_removed": ("削除（赤・破線の枠）：比較元にだけある要素", "Removed (red, dashed outline): only in the older"),
    "md_legend_changed": ("変更（橙・点線の枠）：両方にあり内容か配置が違う要素",
                          "Changed (orange, dotted outline): in both, content or layout differs"),
    "md_added": ("追加", "Added"),
    "md_removed": ("削除", "Removed"),
    "md_changed": ("変更", "Changed"),
    "md_forms_title": ("入力フォーム（JSON Schema）", "Forms (JSON Schema)"),
    "md_forms_lead": ("左で JSON Schema を編集すると、右に作業画面と同じ表示でプレビューします。",
                      "Edit the JSON Schema on the left; the preview on the right is drawn as on the task page."),
    "md_form_key_label": ("フォーム", "Form"),
    "md_form_new_key": ("新しいフォームのキー（小文字英数字と _）", "Key of a new form (lower-case letters, digits, _)"),
    "md_form_schema": ("JSON Schema", "JSON Schema"),
    "md_form_preview": ("プレビュー", "Preview"),
    "md_form_use": ("このフォームを下書きで使う", "Use this form in the draft"),
    "md_form_download": (".json をダウンロード", "Download .json"),
    "md_form_save": ("フォームを保存", "Save form"),
    "md_form_saved": ("フォーム {key} を保存しました（版 {version}）。次に配置する版から使われます。",
                      "Form {key} saved (version {version}); it takes effect with the next deployed version."),
    "md_form_unchanged": ("フォーム {key} は変わっていません（版 {version}）。", "Form {key} is unchanged (version {version})."),
    "md_migrate_title": ("進行中の案件の移行", "Moving running cases"),
    "md_migrate_lead": ("上の「版の比較」で選んだ二つの版について、比較元の版で進行中の案件を比較先の版へ移せるか確認し、まとめて移行します。",
                        "For the two versions chosen under Compare versions: check which running cases of the older can "
                        "move to the newer, then move them all at once."),
    "md_migrate_preview": ("移行できる案件を確認", "Check which cases can move"),
    "md_migrate_run": ("移行できる案件をすべて移行", "Move every movable case"),
    "md_movable": ("移行できる案件", "Cases that can move"),
    "md_blocked": ("移行できない案件（理由）", "Cases that cannot move (why)"),
    "md_migrate_summary": ("版 {from} → 版 {to}：移行できる {movable} 件、できない {blocked} 件。",
                           "Version {from} → {to}: {movable} can move, {blocked} cannot."),
    "md_migrated": ("{migrated} 件を移行しました。失敗 {failed} 件。", "{migrated} moved; {failed} failed."),
    # --- texts the browser code shows (passed to it in the page's language)
    "md_referring": ("つなぎ元の機関（案件ごと）", "The referring agency (per case)"),
    "md_working": ("処理しています…", "Working…"),
    "md_choose": ("（選択してください）", "(choose)"),
    "md_engine_group": ("つなぐの設定", "Tsunagu settings"),
    "md_form": ("入力フォーム", "Form"),
    "md_due_in": ("期限（ISO 8601 の期間、例：P14D）", "Time limit (ISO 8601 duration, e.g. P14D)"),
    "md_due_help": ("作業が作られてからの期限。P14D は 14日、PT4H は 4時間。", "From when the task is created. P14D is 14 days; PT4H is 4 hours."),
    "md_due_preview": ("期限：{text}", "Time limit: {text}"),
    "md_due_invalid": ("期間の形式ではありません（例：P3D、P2W、PT4H）", "Not an ISO 8601 duration (e.g. P3D, P2W, PT4H)"),
    "md_instructions": ("担当者への説明", "Instructions for the assignee"),
    "md_lane_group": ("担当グループ（レーン）", "Group (lane)"),
    "md_lane_help": ("レーンの名前で担当グループが決まります（config/organisation.yaml）。",
                     "The lane's name decides the group (config/organisation.yaml)."),
    "md_lane_unknown": ("{name}（どのグループにも割り当てられていません）", "{name} (held by no group)"),
    "md_timer_kind": ("タイマーの種類", "Timer type"),
    "md_timer_timeDuration": ("待ち時間（timeDuration）", "Duration (timeDuration)"),
    "md_timer_timeCycle": ("繰り返し（timeCycle）", "Cycle (timeCycle)"),
    "md_timer_timeDate": ("日時（timeDate）", "Date (timeDate)"),
    "md_timer_expression": ("タイマーの式（Python の式、例：\"R/P14D\"）", "Timer expression (Python, e.g. \"R/P14D\")"),
    "md_timer_help": ("文字列は引用符で囲みます。変数名なら実行時の値で決まります。",
                      "Quote literal strings; a variable name takes its value at run time."),
    "md_timer_every": ("{text}ごと", "every {text}"),
    "md_timer_after": ("{text}後", "after {text}"),
    "md_timer_times": ("（{n}回）", "({n} times)"),
    "md_timer_at": ("{text} に", "at {text}"),
    "md_timer_dynamic": ("式 {expression} の値で決まります（実行時）", "decided by the value of {expression} at run time"),
    "md_timer_unreadable": ("「{text}」は期間・日時として読めません", "\"{text}\" is not a duration or date"),
    "md_timer_required": ("式を入力してください", "Enter an expression"),
    "md_timer_quote": ("{text} は引用符で囲んでください（例：\"{text}\"）", "Quote {text} (e.g. \"{text}\")"),
    "md_condition": ("条件式（Python）", "Condition (Python)"),
    "md_condition_help": ("例：decision == \"eligible\"。既定の流れには不要です。",
                          "e.g. decision == \"eligible\". Not needed on the default flow."),
    "md_condition_required": ("既定の流れ以外には条件式が必要です", "A flow that is not the default needs a condition"),
    "md_condition_assign": ("比較は == を使います（= は代入です）", "Compare with == (= assigns)"),
    "md_condition_parens": ("括弧の対応が取れていません", "Unbalanced parentheses"),
    "md_decision": ("判定表の ID（calledDecisionId）", "Decision id (calledDecisionId)"),
    "md_decision_help": ("既知の判定表：{ids}", "Known decisions: {ids}"),
    "md_decision_required": ("判定表の ID を入力してください", "Enter a decision id"),
    "md_decision_unknown": ("判定表 {id} はありません", "There is no decision {id}"),
    "md_error": ("エラー", "Error"),
    "md_warning": ("警告", "Warning"),
    "md_findings": ("{n} 件の指摘があります。要素 ID を押すとその要素を選びます。",
                    "{n} findings. Press an element id to select that element."),
    "md_no_findings": ("指摘はありません。", "No findings."),
    "md_opened": ("{key} の版 {version} を編集中です。", "Editing {key}, version {version}."),
    "md_opened_readonly": ("{key} の版 {version} を読み取り専用で表示しています。",
                           "Showing {key}, version {version}, read-only."),
    "md_opened_draft": ("{key} の下書き（元の版 {version}）を編集中です。", "Editing the draft of {key} (from version {version})."),
    "md_opened_new": ("新しいプロセス {key} を編集中です。", "Editing the new process {key}."),
    "md_open_failed": ("開けませんでした：{message}", "Could not open it: {message}"),
    "md_no_draft": ("このプロセスの下書きはありません。", "There is no draft of this process."),
    "md_new_name": ("新しいプロセス", "New process"),
    "md_new_start": ("開始", "Start"),
    "md_new_key_invalid": ("プロセスIDは英字か _ で始め、英数字と _ . - で 100 文字までです。",
                           "A process id starts with a letter or _, then letters, digits, _ . -, up to 100."),
    "md_new_key_taken": ("{key} はすでにあります。一覧から開いてください。", "{key} exists already: open it from the list."),
    "md_draft_saved": ("{key} の下書きを保存しました。", "Draft of {key} saved."),
    "md_draft_discarded": ("下書きを破棄しました。", "Draft discarded."),
    "md_failed": ("失敗しました：{message}", "Failed: {message}"),
    "md_validate_ok": ("検証しました：配置できます。", "Validated: it can be deployed."),
    "md_validate_errors": ("検証しました：このままでは配置できません。下の指摘を確認してください。",
                           "Validated: it cannot be deployed yet; see the findings below."),
    "md_answers_invalid": ("回答例が JSON として読めません：{message}", "The sample answers are not JSON: {message}"),
    "md_run_completed": ("終了まで進みました。", "It ran to the end."),
    "md_run_waiting": ("回答例のないステップか、外部からのメッセージで止まりました。", "It stopped at a step without answers, or at a message."),
    "md_run_error": ("要素 {element} でエラー：{message}", "Error at element {element}: {message}"),
    "md_run_step_limit": ("同じ流れを繰り返し続けたため止めました（回答例を見直してください）。",
                          "Stopped: it kept going round the same loop (check the answers)."),
    "md_run_at": ("止まった要素：{ids}", "Stopped at: {ids}"),
    "md_run_refused": ("実行できません（要素 {element}）：{message}", "Cannot run it (element {element}): {message}"),
    "md_confirm_overwrite": ("このダイアグラムのプロセスID {key} は、開いたものとは別の既存のプロセスです。"
                             "{key} の新しい版として配置しますか？",
                             "This diagram's process id {key} is an existing process you did not open. "
                             "Deploy it as a new version of {key}?"),
    "md_deployed": ("{key} の版 {version} を配置しました。", "Deployed {key} version {version}."),
    "md_deployed_same": ("変更がないため、{key} は版 {version} のままです。", "Nothing changed: {key} stays at version {version}."),
    "md_deploy_failed": ("配置できませんでした：{message}", "Not deployed: {message}"),
    "md_version_of": ("{name} の版", "Version of {name}"),
    "md_download_of": (".bpmn (v{version})（{name}）", ".bpmn (v{version}) ({name})"),
    "md_open_latest": ("最新版を編集", "Edit latest"),
    "md_open_latest_of": ("最新版を編集（{name}）", "Edit latest ({name})"),
    "md_open_draft": ("下書きを開く", "Open draft"),
    "md_open_draft_of": ("下書きを開く（{name}）", "Open draft ({name})"),
    "md_open_readonly": ("この版を表示", "View version"),
    "md_open_readonly_of": ("この版を表示（{name}、読み取り専用）", "View version ({name}, read-only)"),
    "md_none": ("なし", "None"),
    "md_diff_summary": ("版 {from} → 版 {to}：追加 {added}、削除 {removed}、変更 {changed}。",
                        "Version {from} → {to}: {added} added, {removed} removed, {changed} changed."),
    "md_diff_from": ("比較元の版の図", "Diagram of the older version"),
    "md_diff_to": ("比較先の版の図", "Diagram of the newer version"),
    "md_canvas": ("編集中のプロセス図", "Process diagram being edited"),
    "md_canvas_readonly": ("読み取り専用のプロセス図", "Read-only process diagram"),
    "md_dmn": ("判定表の編集", "Decision table editor"),
    "md_schema_not_json": ("JSON として読めません：{message}", "Not JSON: {message}"),
    "md_preview_ok": ("プレビューを更新しました。", "Preview updated."),
    "md_form_key_invalid": ("フォームのキーは小文字英字で始め、小文字英数字と _ で 64 文字までです。",
                            "A form key starts with a lower-case letter, then lower-case letters, digits, _, up to 64."),
    "md_form_used": ("フォーム {key} を下書きの検証・テスト実行・配置に使います。", "Form {key} is used by the draft's validate, test run and deploy."),
})

DECISION_ID = re.compile(r"<(?:\w+:)?decision\b[^>]*\bid=\"([^\"]+)\"")
# The texts modeler.js shows, by key, handed to it in the page's language.
BROWSER_TEXTS = tuple(k for k in MESSAGES if k.startswith("md_"))


def _designer() -> Any:
    require_designer(g.actor)
    return g.actor


@bp.route("")
@login_required
def page() -> Any:
    actor = _designer()
    env = engine_env()
    known_dmn, known_forms = drafts.known_parts(db.session, env.settings)
    groups = {info.id: info for info in env.org.groups}
    lanes = [{"lane": lane, "group": target,
              "group_name": t("md_referring") if target.startswith("$") else group_name(groups[target])}
             for lane, target in env.org.lanes.items()]
    decisions = sorted({d for xml in known_dmn.values() for d in DECISION_ID.findall(xml)})
    payload = {
        "lang": lang(),
        "csrf": csrf.token(),
        "processes": _catalogue(actor),
        "forms": {key: {"schema": schema} for key, schema in sorted(known_forms.items())},
        "lanes": lanes,
        "decisions": decisions,
        "messages": {k: t(k) for k in BROWSER_TEXTS},
        "urls": {
            "processes": url_for("ui_modeler_data.processes"),
            "bpmn": "/modeler/data/processes/{key}/versions/{version}/bpmn",
            "dmn": "/modeler/data/processes/{key}/versions/{version}/dmn/{name}",
            "draft": "/modeler/data/processes/{key}/draft",
            "validate": url_for("ui_modeler_data.validate"),
            "testRun": url_for("ui_modeler_data.test_run"),
            "deploy": url_for("ui_modeler_data.deploy"),
            "preview": url_for("ui_modeler_data.form_preview"),
            "form": "/modeler/data/forms/{key}",
            "migration": "/modeler/data/processes/{key}/migration",
        },
    }
    # `</` cannot end the data island early: JSON allows the slash to be escaped.
    island = json.dumps(payload, ensure_ascii=False, default=str).replace("</", "<\\/")
    return render_template("ui/modeler.html", island=island, active="modeler")


def _catalogue(actor: Any) -> list[dict[str, Any]]:
    return [{**p, "versions": [{**v, "created_at": v["created_at"].isoformat()} for v in p["versions"]]}
            for p in drafts.catalogue(db.session, actor)]


# ---------------------------------------------------------------- JSON for the page


@data.errorhandler(DomainError)
def _domain_error(exc: DomainError) -> Response:
    db.session.rollback()
    return error_response(exc.status, exc.message, exc.fields, exc.code)


@data.before_request
def _signed_in() -> Any:
    if g.get("actor") is None:
        return error_response(401, "サインインしてください / Sign in first")
    return None


def _body() -> dict[str, Any]:
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise Invalid("JSON オブジェクトを送ってください / Send a JSON object", {"body": "not a JSON object"})
    return body


def _xml(text: str, name: str) -> Response:
    response = Response(text, mimetype="application/xml")
    if request.args.get("download") == "1":
        response.headers["Content-Disposition"] = f"attachment; filename=\"{name}\""
    return response


@data.route("/processes")
def processes() -> Any:
    return jsonify(_catalogue(g.actor))


@data.route("/processes/<process_key>/versions/<id:number>/bpmn")
def version_bpmn(process_key: str, number: int) -> Response:
    row = drafts.version(db.session, g.actor, process_key, number)
    return _xml(next(iter(row.bundle["bpmn"].values())), f"{process_key}-v{number}.bpmn")


@data.route("/processes/<process_key>/versions/<id:number>/dmn/<name>")
def version_dmn(process_key: str, number: int, name: str) -> Response:
    row = drafts.version(db.session, g.actor, process_key, number)
    text = row.bundle.get("dmn", {}).get(name)
    if text is None:
        return error_response(404, f"版 {number} に {name} はありません / Version {number} has no {name}")
    return _xml(text, name)


@data.route("/processes/<process_key>/draft", methods=["GET"])
def get_draft(process_key: str) -> Any:
    row = drafts.get_draft(db.session, g.actor, process_key)
    return jsonify({"process_key": row.process_key, "bpmn": row.bpmn, "dmn": row.dmn,
                    "base_version": row.base_version, "updated_at": row.updated_at.isoformat()})


@data.route("/processes/<process_key>/draft", methods=["PUT"])
def put_draft(process_key: str) -> Any:
    body = _body()
    row = drafts.save_draft(db.session, g.actor, process_key, body.get("bpmn"), body.get("dmn"),
                            body.get("base_version"), now())
    return jsonify({"process_key": row.process_key, "base_version": row.base_version,
                    "updated_at": row.updated_at.isoformat()})


@data.route("/processes/<process_key>/draft", methods=["DELETE"])
def delete_draft(process_key: str) -> Any:
    drafts.delete_draft(db.session, g.actor, process_key)
    return "", 204


def _forms(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    value = body.get("forms") or {}
    if not isinstance(value, dict):
        raise Invalid("forms はキーから JSON Schema への対応です / forms must be {key: JSON Schema}", {"forms": "not an object"})
    for key, schema in value.items():
        problems = form_rules.check_schema(schema)
        if problems:
            raise Invalid(f"フォーム {key} の JSON Schema に誤りがあります / The JSON Schema of form {key} is not valid",
                          {f"forms.{key}.{path}": what for path, what in problems.items()})
    return value


@data.route("/validate", methods=["POST"])
def validate() -> Any:
    body = _body()
    return jsonify(drafts.validate_draft(db.session, engine_env(), g.actor, body.get("bpmn"), body.get("dmn"),
                                         _forms(body)))


@data.route("/test-run", methods=["POST"])
def test_run() -> Any:
    body = _body()
    result = sandbox.run_draft(db.session, engine_env(), g.actor, body.get("bpmn"), body.get("answers"), now(),
                               body.get("dmn"), _forms(body))
    return jsonify(result.as_dict())


@data.route("/deploy", methods=["POST"])
def deploy() -> Any:
    body = _body()
    opened = body.get("opened")
    result = drafts.deploy_draft(db.session, engine_env(), g.actor, body.get("bpmn"), body.get("dmn"),
                                 opened if isinstance(opened, str) else None, body.get("overwrite") is True, now(),
                                 _forms(body), body.get("comment"))
    return jsonify({"process_key": result.process_key, "version": result.version, "created": result.created})


@data.route("/forms/preview", methods=["POST"])
def form_preview() -> Any:
    _designer()
    schema = _body().get("schema")
    problems = form_rules.check_schema(schema)
    if problems:
        raise Invalid("JSON Schema に誤りがあります / The JSON Schema is not valid",
                      {"schema" if path == "schema" else f"schema.{path}": what for path, what in problems.items()})
    groups = list(engine_env().org.groups)
    fields = forms.build(schema, {}, {}, groups)
    return jsonify({"html": render_template("ui/_form_preview.html", fields=fields)})


@data.route("/forms/<key>", methods=["PUT"])
def save_form(key: str) -> Any:
    row, created = form_store.put_form(db.session, g.actor, key, _body().get("schema"), now())
    return jsonify({"key": row.form_key, "version": row.version, "created": created})


def _version_arg(name: str) -> int:
    raw = request.args.get(name, "")
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_INT:
        raise Invalid(f"{name} は版番号です / {name} must be a version number", {name: "a version number"})
    return int(raw)


@data.route("/processes/<process_key>/migration", methods=["GET"])
def migration_preview(process_key: str) -> Any:
    movable, blocked = versions.preview(db.session, engine_env(), g.actor, process_key, _version_arg("from"),
                                        _version_arg("to"))
    return jsonify({"movable": movable, "blocked": blocked})


@data.route("/processes/<process_key>/migration", methods=["POST"])
def migrate(process_key: str) -> Any:
    body = _body()
    result = versions.migrate(db.session, engine_env(), g.actor, process_key, body.get("from"), body.get("to"),
                              body.get("cases"), now())
    return jsonify({"migrated": result.migrated, "failed": result.failed})
