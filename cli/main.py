"""The `tsunagu` command: init, serve, worker, groups, user, token, deploy, export, sweep, deliver, check, backup,
restore, audit, source.

Every command honours DATABASE_URL. Errors go to stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engine.clock import Clock
from engine.env import Env
from engine.errors import DomainError
from engine.ops.db import make_engine, make_session_factory, upgrade_database
from engine.security import audit, users
from engine.settings import Settings
from engine.workflow import specs


def _session(settings: Settings):  # noqa: ANN202
    return make_session_factory(make_engine(settings.database_url))


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    upgrade_database(settings.database_url)
    env = Env.from_settings(settings)
    now = Clock().now()
    with _session(settings)() as session:
        users.sync_groups(session, env.org)
        for r in specs.deploy(session, specs.read_sources(settings.processes_dir, settings.forms_dir), env.org, now,
                              actor="tsunagu init"):
            print(f"{r.process_key} v{r.version} {'deployed' if r.created else 'unchanged'}")
        if args.demo:
            from engine.ops.demo import DEMO_PASSWORD, seed

            tokens = seed(session, env, now)
            print(f"demo users (password: {DEMO_PASSWORD}):")
            for name, token in tokens.items():
                print(f"  {name}\t{token}")
    from sqlalchemy.engine import make_url

    print(f"database ready: {make_url(settings.database_url).render_as_string(hide_password=True)}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from werkzeug.serving import make_server

    from engine.ops.worker import start_scheduler
    from web import create_app
    from webhooks import worker as webhook_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per sweep is noise
    upgrade_database(settings.database_url)
    if args.workers:
        from cli.serve import serve_production

        return serve_production(settings, args.host, args.port, args.workers)
    app = create_app(settings)
    scheduler = start_scheduler(app.extensions["tsunagu.session_factory"], app.extensions["tsunagu.env"],
                                app.extensions["tsunagu.clock"], settings.sweep_interval)
    webhook_worker.add_job(scheduler, app.extensions["tsunagu.session_factory"], settings,
                           app.extensions["tsunagu.clock"])
    server = make_server(args.host, args.port, app, threaded=True)
    print(f"Tsunagu serving on http://{args.host}:{server.server_port}/ (timer sweep every {settings.sweep_interval}s)",
          flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        scheduler.shutdown(wait=False)
    return 0


def cmd_groups(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings)() as session:
        rows = users.list_groups(session)
        if not rows:  # not initialised yet: read the organisation file itself
            rows = list(Env.from_settings(settings).org.groups)
        for g in rows:
            print(f"{g.id}\t{g.name}")
    return 0


def cmd_user_add(args: argparse.Namespace, settings: Settings) -> int:
    now = Clock().now()
    with _session(settings)() as session:
        user = users.add_user(session, args.name, args.group, args.role or ["staff"], now,
                              args.display_name, args.password)
        token = users.issue_token(session, user, now, label="cli")
        session.commit()
        print(f"user {user.name} groups={','.join(user.group_ids)} roles={','.join(user.roles)}")
        print(token)
    return 0


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container): still the command line
        return "cli"


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    from engine.workflow import lint

    env = Env.from_settings(settings)
    sources = specs.read_sources(Path(args.path), settings.forms_dir)
    failed = False
    for name, xml in sources.bpmn.items():
        errors, warnings = lint.lint(xml)
        for problem in errors + warnings:
            kind = "error" if problem in errors else "warning"
            print(f"{name}: {kind}: {problem.element or '-'}: {problem.message}", file=sys.stderr)
        failed = failed or bool(errors)
    if failed:
        print("tsunagu: bpmnlint found errors; nothing deployed", file=sys.stderr)
        return 1
    with _session(settings)() as session:
        results = specs.deploy(session, sources, env.org, Clock().now(), actor=_os_user(),
                               comment=args.comment, new_version=args.new_version)
    for r in results:
        print(f"{r.process_key} v{r.version} {'deployed' if r.created else 'unchanged'}")
    return 0


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    from engine.workflow import versions

    with _session(settings)() as session:
        written = versions.export(session, Path(args.path))
    for path in written:
        print(path)
    return 0


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ops.worker import sweep, sweep_until_done

    run = sweep_until_done if args.until_done else sweep
    print(run(_session(settings), Env.from_settings(settings), Clock()))
    return 0


def cmd_deliver(args: argparse.Namespace, settings: Settings) -> int:
    from webhooks import worker as webhook_worker

    print(webhook_worker.sweep(_session(settings), settings, Clock()))
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from cli.serve import run_worker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return run_worker(settings, args.parent_pid)


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ops.check import check_all

    with _session(settings)() as session:
        report = check_all(session, Env.from_settings(settings))
    for problem in report.problems:
        print(problem)
    cases = len({p.case_id for p in report.problems})
    print(f"checked {report.cases} case(s): "
          + (f"{len(report.problems)} problem(s) in {cases} case(s)" if report.problems else "no problems"))
    return 0 if report.clean else 1


def cmd_backup(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ops.backup import BackupError, backup

    try:
        files = backup(settings.database_url, Path(args.path), settings.attachments_dir)
    except (BackupError, OSError) as exc:
        print(f"tsunagu: {exc}", file=sys.stderr)
        return 1
    print(f"backed up to {args.path} (and {files} attached document(s) to {args.path}.attachments)")
    return 0


def cmd_restore(args: argparse.Namespace, settings: Settings) -> int:
    from engine.ops.backup import BackupError, restore

    try:
        files = restore(settings.database_url, Path(args.path), force=args.force,
                        attachments_dir=settings.attachments_dir)
    except (BackupError, OSError) as exc:
        print(f"tsunagu: {exc}", file=sys.stderr)
        return 1
    print(f"restored {args.path} and {files} attached document(s); run `tsunagu init` to bring it to this version's schema")
    return 0


def cmd_user_list(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings)() as session:
        for u in users.list_users(session):
            state = "" if u.active else "\tdisabled"
            print(f"{u.name}\t{','.join(u.group_ids)}\t{','.join(u.roles)}{state}")
    return 0


def cmd_user_change(args: argparse.Namespace, settings: Settings) -> int:
    password = None
    if getattr(args, "password_stdin", False):
        password = sys.stdin.readline().rstrip("\r\n")
    active = {"disable": False, "enable": True}.get(args.user_command)
    with _session(settings)() as session:
        u = users.change_user(session, None, args.name, Clock().now(),
                              add_groups=getattr(args, "add_group", None) or [],
                              remove_groups=getattr(args, "remove_group", None) or [],
                              add_roles=getattr(args, "add_role", None) or [],
                              remove_roles=getattr(args, "remove_role", None) or [],
                              active=active, password=password)
        print(f"user {u.name} groups={','.join(u.group_ids)} roles={','.join(u.roles)} active={u.active}")
    return 0


def cmd_user_signout(args: argparse.Namespace, settings: Settings) -> int:
    from engine.security import sessions

    with _session(settings)() as session:
        ended = sessions.end_user_sessions(session, None, args.name, Clock().now())
        print(f"user {args.name}: {len(ended)} page session(s) ended")
    return 0


def cmd_token_list(args: argparse.Namespace, settings: Settings) -> int:
    from sqlalchemy import select

    from engine.models import ApiToken, User

    with _session(settings)() as session:
        stmt = select(ApiToken).join(User).order_by(ApiToken.id)
        if args.user:
            stmt = stmt.where(User.name == args.user)
        for t in session.scalars(stmt):
            state = f"revoked {t.revoked_at.isoformat()}" if t.revoked_at else "active"
            print(f"{t.id}\t{t.user.name}\t{t.label}\t{t.created_at.isoformat()}\t{state}")
    return 0


def cmd_token_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings)() as session:
        t = users.revoke(session, None, args.id, Clock().now())
        print(f"token {t.id} of {t.user.name} revoked")
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    anchors = None
    if args.anchors:
        try:
            with open(args.anchors, encoding="utf-8") as f:
                anchors = audit.read_anchors(f)
        except (OSError, UnicodeDecodeError, audit.AnchorFileError) as exc:
            print(f"tsunagu: cannot read the anchor file {args.anchors}: {exc}", file=sys.stderr)
            return 1
    with _session(settings)() as session:
        result = audit.verify(session, anchors=anchors)
    if result.ok:
        checked = f"; {len(anchors)} anchor(s) match" if anchors is not None else ""
        print(f"audit trail intact: {result.records} records, head {result.head_hash}{checked}")
        return 0
    print(f"audit trail BROKEN at record {result.seq}: {result.problem} "
          f"({result.records} records verified before it)", file=sys.stderr)
    return 1


def cmd_audit_anchor(args: argparse.Namespace, settings: Settings) -> int:
    with _session(settings)() as session:
        anchor = audit.head_anchor(session, Clock().now())
    if args.path == "-":
        print(anchor.to_json())
        return 0
    try:
        audit.append_anchor(Path(args.path), anchor)
    except OSError as exc:
        print(f"tsunagu: cannot append to {args.path}: {exc}", file=sys.stderr)
        return 1
    print(f"anchored record {anchor.seq} ({anchor.hash}) in {args.path}")
    return 0


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import datetime

    def when(text: str | None):  # noqa: ANN202
        if not text:
            return None
        value = datetime.fromisoformat(text)
        return value if value.tzinfo else value.astimezone()

    with _session(settings)() as session:
        rows = audit.search(session, user=args.user, case_number=args.case, since=when(args.since),
                            until=when(args.until), limit=10**9)
        audit.record(session, None, audit.Action.AUDIT_EXPORT, Clock().now(), actor_name="cli",
                     detail={"user": args.user, "case": args.case, "since": args.since, "until": args.until,
                             "results": len(rows)})
        session.commit()
    sys.stdout.flush()
    sys.stdout.buffer.write(audit.to_csv(rows).encode("utf-8"))  # UTF-8 whatever the locale says
    sys.stdout.buffer.flush()
    return 0


def cmd_source_add(args: argparse.Namespace, settings: Settings) -> int:
    from engine.security import sources

    with _session(settings)() as session:
        s = sources.add_source(session, Env.from_settings(settings), None, args.name, Clock().now(), args.process,
                               args.group)
        print(f"source {s.name} process={s.process_key or '*'} group={s.group_id} url=/webhooks/{s.name}")
        print(s.secret)
    return 0


def cmd_source_list(args: argparse.Namespace, settings: Settings) -> int:
    from engine.security import sources

    with _session(settings)() as session:
        for s in sources.list_sources(session, None):
            print(f"{s.name}\t{s.process_key or '*'}\t{s.group_id}\t{s.created_at.isoformat()}")
    return 0


def cmd_source_remove(args: argparse.Namespace, settings: Settings) -> int:
    from engine.security import sources

    with _session(settings)() as session:
        sources.remove_source(session, None, args.name, Clock().now())
        print(f"source {args.name} removed")
    return 0


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsunagu", description="Tsunagu (つなぐ): multi-agency welfare support as BPMN")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create or upgrade the database and deploy processes/")
    init.add_argument("--demo", action="store_true", help="also create demo users and cases")
    init.set_defaults(func=cmd_init)
    serve = sub.add_parser("serve", help="serve the API and run the timer scheduler")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--workers", type=_positive, default=0,
                       help="serve with gunicorn and N worker processes, plus one timer sweeper process")
    serve.set_defaults(func=cmd_serve)
    groups = sub.add_parser("groups", help="list groups: id, then name")
    groups.set_defaults(func=cmd_groups)
    user = sub.add_parser("user", help="manage users").add_subparsers(dest="user_command", required=True)
    add = user.add_parser("add", help="add a user; prints an API token on its last line")
    add.add_argument("name")
    add.add_argument("--group", action="append", required=True, help="group id (repeatable)")
    add.add_argument("--role", action="append", help="role (repeatable): staff, secretariat, coordination_lead, "
                                                     "supervisor, designer, admin")
    add.add_argument("--display-name")
    add.add_argument("--password")
    add.set_defaults(func=cmd_user_add)
    deploy = sub.add_parser("deploy", help="deploy BPMN/DMN from a folder or a .bpmn file")
    deploy.add_argument("path")
    deploy.add_argument("--comment", help="what changed (kept with the version)")
    deploy.add_argument("--new-version", action="store_true",
                        help="deploy even over a process whose latest version came from another diagram "
                             "(another <definitions id>): this diagram becomes its next version")
    deploy.set_defaults(func=cmd_deploy)
    export = sub.add_parser("export", help="write the latest versions (BPMN, DMN, forms/) into a folder, the layout "
                                           "init and deploy read")
    export.add_argument("path")
    export.set_defaults(func=cmd_export)
    sweep = sub.add_parser("sweep", help="fire due timers once and print how many fired")
    sweep.add_argument("--until-done", action="store_true", help="sweep again until no timer is due")
    sweep.set_defaults(func=cmd_sweep)
    deliver = sub.add_parser("deliver", help="send due webhook deliveries once and print how many attempts were made")
    deliver.set_defaults(func=cmd_deliver)
    worker = sub.add_parser("worker", help="run the timer and webhook sweeps only (any number may run, on any machine)")
    worker.add_argument("--parent-pid", type=int, help=argparse.SUPPRESS)
    worker.set_defaults(func=cmd_worker)
    check = sub.add_parser("check", help="compare every case's workflow state with its tasks, timers, history "
                                         "and outbox; report differences (exit 1), never repair them")
    check.set_defaults(func=cmd_check)
    backup = sub.add_parser("backup", help="back up the database to PATH and the attached documents to "
                                           "PATH.attachments/ (safe while running)")
    backup.add_argument("path")
    backup.set_defaults(func=cmd_backup)
    restore = sub.add_parser("restore", help="restore a backup (and its PATH.attachments/) into an empty database")
    restore.add_argument("path")
    restore.add_argument("--force", action="store_true", help="replace the contents of a non-empty database")
    restore.set_defaults(func=cmd_restore)

    ul = user.add_parser("list", help="list users: name, groups, roles")
    ul.set_defaults(func=cmd_user_list)
    for verb, helptext in (("role", "add or remove roles"), ("group", "add or remove groups")):
        cmd = user.add_parser(verb, help=helptext)
        cmd.add_argument("name")
        cmd.add_argument("--add", action="append", dest=f"add_{verb}", default=[])
        cmd.add_argument("--remove", action="append", dest=f"remove_{verb}", default=[])
        cmd.set_defaults(func=cmd_user_change)
    pw = user.add_parser("password", help="set a password, read from standard input (one line; ends the "
                                          "user's page sessions)")
    pw.add_argument("name")
    pw.set_defaults(func=cmd_user_change, password_stdin=True)
    so = user.add_parser("signout", help="end every page session of a user at once (e.g. a lost device)")
    so.add_argument("name")
    so.set_defaults(func=cmd_user_signout)
    for verb in ("disable", "enable"):
        cmd = user.add_parser(verb, help=f"{verb} a user (a disabled user's tokens stop working)")
        cmd.add_argument("name")
        cmd.set_defaults(func=cmd_user_change)

    token = sub.add_parser("token", help="API tokens").add_subparsers(dest="token_command", required=True)
    tl = token.add_parser("list", help="list tokens: id, user, label, created, state")
    tl.add_argument("--user")
    tl.set_defaults(func=cmd_token_list)
    tr = token.add_parser("revoke", help="revoke a token by id (effective on the next request)")
    tr.add_argument("id", type=int)
    tr.set_defaults(func=cmd_token_revoke)

    aud = sub.add_parser("audit", help="the audit trail").add_subparsers(dest="audit_command", required=True)
    av = aud.add_parser("verify", help="check the hash chain; exit 1 if a record was altered or removed")
    av.add_argument("--anchors", metavar="PATH", help="also check every anchor in this file (from `audit anchor`): "
                                                      "exit 1 if the trail was rewritten after one was taken")
    av.set_defaults(func=cmd_audit_verify)
    an = aud.add_parser("anchor", help="append the chain's head (seq, hash, time) as a JSON line to PATH, or "
                                       "print it with -; keep PATH off this machine or on write-once storage")
    an.add_argument("path", metavar="PATH|-")
    an.set_defaults(func=cmd_audit_anchor)
    ae = aud.add_parser("export", help="write records as CSV to standard output")
    ae.add_argument("--user")
    ae.add_argument("--case", help="case number")
    ae.add_argument("--since", help="ISO date or time")
    ae.add_argument("--until", help="ISO date or time")
    ae.set_defaults(func=cmd_audit_export)

    src = sub.add_parser("source", help="sources of signed incoming messages (POST /webhooks/NAME)").add_subparsers(
        dest="source_command", required=True)
    sa = src.add_parser("add", help="register a source; prints its secret (whsec_...) on its last line")
    sa.add_argument("name")
    sa.add_argument("--process", help="messages from it may only start or move cases of this process")
    sa.add_argument("--group", help="referring group of the cases its messages start (default: secretariat)")
    sa.set_defaults(func=cmd_source_add)
    sl = src.add_parser("list", help="list sources: name, process (* for any), group, created")
    sl.set_defaults(func=cmd_source_list)
    sr = src.add_parser("remove", help="remove a source; its messages are refused from then on")
    sr.add_argument("name")
    sr.set_defaults(func=cmd_source_remove)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    audit.set_origin("cli")
    try:
        return args.func(args, settings)
    except DomainError as exc:
        print(f"tsunagu: {exc.message}", file=sys.stderr)
        for field, problem in (exc.fields or {}).items():
            print(f"  {field}: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
