#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suite.
#
#   scripts/pg-test.sh start      start (or reuse) the server; prints `export TSUNAGU_TEST_DATABASE_URL=...`
#                                 on stdout, so: eval "$(scripts/pg-test.sh start)"
#   scripts/pg-test.sh stop       stop it and delete its data (no-op if it is not there)
#   scripts/pg-test.sh status     exit 0 if it is running
#   scripts/pg-test.sh url        print the URL of the running server
#   scripts/pg-test.sh available  exit 0 if `start` can work without installing anything
#
# PostgreSQL comes from Debian's packages (/usr/lib/postgresql/*/bin); when missing, `start`
# installs them if run as root, and fails otherwise. As root the cluster runs as the `postgres`
# user (initdb refuses root). Data, socket, log and password live in $TSUNAGU_PG_DIR
# (default /tmp/tsunagu-pg-$PORT); port $TSUNAGU_PG_PORT (default 54329), 127.0.0.1 only.
# Durability is switched off (fsync, synchronous_commit, full_page_writes): test data only.
set -euo pipefail

PORT=${TSUNAGU_PG_PORT:-54329}
BASE=${TSUNAGU_PG_DIR:-/tmp/tsunagu-pg-$PORT}
DATA=$BASE/data
ROLE=tsunagu
LOCK=/tmp/tsunagu-pg-$PORT.lock

log() { echo "pg-test: $*" >&2; }
die() { log "$*"; exit 1; }

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

install_postgresql() {
    [[ $(id -u) == 0 ]] || die "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb) and I am not root: install the 'postgresql' package"
    command -v apt-get >/dev/null || die "PostgreSQL is not installed and there is no apt-get"
    log "installing PostgreSQL from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
}

# The user the server runs as: ourselves, or `postgres` when we are root.
run_as() {
    if [[ $(id -u) == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

owner() { if [[ $(id -u) == 0 ]]; then echo postgres; else id -un; fi; }

url() {
    [[ -r $BASE/password ]] || return 1
    echo "postgresql+psycopg://$ROLE:$(cat "$BASE/password")@127.0.0.1:$PORT/postgres"
}

running() {
    local bindir
    bindir=$(find_bindir) || return 1
    [[ -f $DATA/PG_VERSION ]] || return 1
    run_as "$bindir/pg_ctl" -D "$DATA" status >/dev/null 2>&1
}

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

check_connect() {
    local bindir=$1
    PGPASSWORD=$(cat "$BASE/password") PGCONNECT_TIMEOUT=5 \
        "$bindir/psql" -X -q -h 127.0.0.1 -p "$PORT" -U "$ROLE" -d postgres -tAc 'SELECT 1' >/dev/null
}

start() {
    local bindir
    if ! bindir=$(find_bindir); then
        install_postgresql
        bindir=$(find_bindir) || die "PostgreSQL installed, but no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    fi
    if [[ $(id -u) == 0 ]] && ! id postgres >/dev/null 2>&1; then
        die "running as root but there is no 'postgres' user to own the cluster"
    fi

    if running && [[ -r $BASE/password ]] && check_connect "$bindir" 2>/dev/null; then
        log "reusing the server in $BASE (port $PORT)"
    else
        # Whatever is left (a crashed or half-made cluster) is thrown away: this is test data.
        if [[ -f $DATA/PG_VERSION ]]; then
            run_as "$bindir/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
        fi
        rm -rf "$BASE"
        port_taken && die "port $PORT is taken by another program; set TSUNAGU_PG_PORT"

        local t0
        t0=$(date +%s.%N)
        mkdir -p "$BASE"
        head -c 18 /dev/urandom | base64 | tr '+/' 'Ab' >"$BASE/password"
        chmod 600 "$BASE/password"
        chown -R "$(owner)" "$BASE"
        chmod 700 "$BASE"
        run_as test -w "$BASE" || die "$BASE is not writable by $(owner) (a parent directory closed to it?)"

        run_as "$bindir/initdb" -D "$DATA" -U "$ROLE" --pwfile="$BASE/password" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C --no-sync >"$BASE/initdb.log" 2>&1 \
            || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
        cat >>"$DATA/postgresql.conf" <<CONF

# scripts/pg-test.sh: a throwaway server for tests
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$BASE'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
        # 9>&-: the server must not inherit (and hold forever) the lock of this script.
        if ! run_as "$bindir/pg_ctl" -D "$DATA" -l "$BASE/server.log" -w -t 60 start >/dev/null 9>&-; then
            tail -n 30 "$BASE/server.log" >&2 || true
            die "the server did not start"
        fi
        check_connect "$bindir" || { tail -n 30 "$BASE/server.log" >&2; die "cannot connect to the new server"; }
        log "started PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') in $BASE on 127.0.0.1:$PORT in $(awk "BEGIN{printf \"%.1f\", $(date +%s.%N) - $t0}")s"
    fi
    echo "$(url)" >"$BASE/url"
    echo "export TSUNAGU_TEST_DATABASE_URL='$(url)'"
}

stop() {
    local bindir
    if [[ -f $DATA/PG_VERSION ]] && bindir=$(find_bindir); then
        run_as "$bindir/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null 2>&1 \
            || run_as "$bindir/pg_ctl" -D "$DATA" -m immediate stop >/dev/null 2>&1 || true
        log "stopped the server in $BASE"
    fi
    rm -rf "$BASE"
}

available() {
    find_bindir >/dev/null || return 1
    if [[ $(id -u) == 0 ]]; then
        id postgres >/dev/null 2>&1 || return 1
    fi
    return 0
}

cmd=${1:-}
case $cmd in
    start | stop)
        # One start/stop at a time per port.
        # Opened read-only: a lock file another user made in /tmp can still be locked.
        [[ -e $LOCK ]] || { : >"$LOCK" && chmod 644 "$LOCK"; } 2>/dev/null || true
        exec 9<"$LOCK"
        flock -w 120 9 || die "timed out waiting for $LOCK"
        "$cmd"
        ;;
    status) running ;;
    url) running && url ;;
    available) available ;;
    *) die "usage: $0 start|stop|status|url|available" ;;
esac
