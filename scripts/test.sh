#!/usr/bin/env bash
# The whole suite (`make test`): ruff, then pytest on SQLite and, beside it, pytest on PostgreSQL
# when one is available. Every stage runs; the exit status is non-zero if any failed. See the Makefile.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
read -r -a PYTEST_ARGS <<<"${PYTEST_ARGS:-}"
failed=()

now() { date +%s.%N; }
since() { awk "BEGIN{printf \"%.1f\", $(now) - $1}"; }

stage() {  # stage NAME COMMAND...: run it, time it, remember a failure
    local name=$1 t0 rc=0
    shift
    echo "==> $name" >&2
    t0=$(now)
    "$@" || rc=$?
    if [[ $rc == 5 ]]; then
        echo "==> $name: pytest collected no tests (exit 5): counted as a failure" >&2
    fi
    echo "==> $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)") in $(since "$t0")s" >&2
    [[ $rc == 0 ]] || failed+=("$name")
}

pg_reachable() {
    "$VENV/bin/python" - <<'PY'
import os, sys
from sqlalchemy import create_engine, text
try:
    engine = create_engine(os.environ["TSUNAGU_TEST_DATABASE_URL"], connect_args={"connect_timeout": 5})
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))
except Exception as exc:  # noqa: BLE001
    sys.exit(f"TSUNAGU_TEST_DATABASE_URL is set but unreachable: {exc}")
PY
}

stage "ruff check" "$VENV/bin/ruff" check .

# The SQLite and PostgreSQL passes run side by side (each in its own temporary databases and on
# its own free ports), which halves the wall time on a machine with two cores or more; each pass's
# output is shown whole when it ends. TSUNAGU_TEST_SERIAL=1 runs them one after the other.
logs=$(mktemp -d)
pids=() names=()
start_pass() {  # start_pass NAME COMMAND...
    local name=$1 slot=${#names[@]}
    shift
    names+=("$name")
    if [[ ${TSUNAGU_TEST_SERIAL:-} == 1 ]]; then
        stage "$name" "$@"
        return
    fi
    echo "==> $name (started)" >&2
    ( t0=$(now); rc=0; "$@" >"$logs/$slot.log" 2>&1 || rc=$?; echo "$rc $(since "$t0")" >"$logs/$slot.rc" ) &
    pids+=("$!:$slot")
}
finish_passes() {
    local entry pid slot rc secs name
    for entry in "${pids[@]}"; do
        pid=${entry%%:*} slot=${entry##*:} name=${names[$slot]}
        wait "$pid" || true
        cat "$logs/$slot.log"
        read -r rc secs <"$logs/$slot.rc"
        if [[ $rc == 5 ]]; then
            echo "==> $name: pytest collected no tests (exit 5): counted as a failure" >&2
        fi
        echo "==> $name: $([[ $rc == 0 ]] && echo ok || echo "FAILED (exit $rc)") in ${secs}s" >&2
        [[ $rc == 0 ]] || failed+=("$name")
    done
    rm -rf "$logs"
}

start_pass "pytest on SQLite" env -u TSUNAGU_TEST_DATABASE_URL "$VENV/bin/pytest" "${PYTEST_ARGS[@]}"

started_pg=
if [[ -n ${TSUNAGU_TEST_DATABASE_URL:-} ]]; then
    if pg_reachable; then
        start_pass "pytest on PostgreSQL" "$VENV/bin/pytest" "${PYTEST_ARGS[@]}"
    else
        failed+=("PostgreSQL (unreachable)")
    fi
elif [[ ${TSUNAGU_TEST_PG:-} == 0 ]]; then
    echo "==> pytest on PostgreSQL: skipped (TSUNAGU_TEST_PG=0)" >&2
elif scripts/pg-test.sh available; then
    # A server someone else started on the same port is reused and left running.
    scripts/pg-test.sh status || started_pg=1
    if [[ -n $started_pg ]]; then
        trap 'scripts/pg-test.sh stop' EXIT
    fi
    if setup=$(scripts/pg-test.sh start); then
        eval "$setup"
        start_pass "pytest on PostgreSQL" "$VENV/bin/pytest" "${PYTEST_ARGS[@]}"
    else
        failed+=("PostgreSQL (scripts/pg-test.sh start)")
    fi
else
    echo "==> pytest on PostgreSQL: skipped (no TSUNAGU_TEST_DATABASE_URL and PostgreSQL is not installed;" \
        "scripts/pg-test.sh start installs it as root)" >&2
fi
finish_passes

if ((${#failed[@]})); then
    echo "==> FAILED: $(IFS=,; echo "${failed[*]}")" >&2
    exit 1
fi
echo "==> all passed" >&2
