"""The `tsunagu` command: init, serve, groups, user add, deploy, sweep.

Every command honours DATABASE_URL. Errors go to stderr with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from engine import specs, users
from engine.clock import Clock
from engine.db import make_engine, make_session_factory, upgrade_database
from engine.env import Env
from engine.errors import DomainError
from engine.settings import Settings


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
            from engine.demo import DEMO_PASSWORD, seed

            tokens = seed(session, env, now)
            print(f"demo users (password: {DEMO_PASSWORD}):")
            for name, token in tokens.items():
                print(f"  {name}\t{token}")
    print(f"database ready: {settings.database_url}")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from werkzeug.serving import make_server

    from engine.worker import start_scheduler
    from web import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per sweep is noise
    upgrade_database(settings.database_url)
    app = create_app(settings)
    scheduler = start_scheduler(app.extensions["tsunagu.session_factory"], app.extensions["tsunagu.env"],
                                app.extensions["tsunagu.clock"], settings.sweep_interval)
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


def cmd_deploy(args: argparse.Namespace, settings: Settings) -> int:
    env = Env.from_settings(settings)
    with _session(settings)() as session:
        results = specs.deploy(session, specs.read_sources(Path(args.path), settings.forms_dir), env.org,
                               Clock().now(), actor="tsunagu deploy")
    for r in results:
        print(f"{r.process_key} v{r.version} {'deployed' if r.created else 'unchanged'}")
    return 0


def cmd_sweep(args: argparse.Namespace, settings: Settings) -> int:
    from engine.worker import sweep

    print(sweep(_session(settings), Env.from_settings(settings), Clock()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tsunagu", description="Tsunagu (つなぐ): multi-agency welfare support as BPMN")
    sub = p.add_subparsers(dest="command", required=True)
    init = sub.add_parser("init", help="create or upgrade the database and deploy processes/")
    init.add_argument("--demo", action="store_true", help="also create demo users and cases")
    init.set_defaults(func=cmd_init)
    serve = sub.add_parser("serve", help="serve the API and run the timer scheduler")
    serve.add_argument("--port", type=int, default=5000)
    serve.add_argument("--host", default="127.0.0.1")
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
    deploy.set_defaults(func=cmd_deploy)
    sweep = sub.add_parser("sweep", help="fire due timers once and print how many fired")
    sweep.set_defaults(func=cmd_sweep)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = Settings()
    try:
        return args.func(args, settings)
    except DomainError as exc:
        print(f"tsunagu: {exc.message}", file=sys.stderr)
        for field, problem in (exc.fields or {}).items():
            print(f"  {field}: {problem}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
