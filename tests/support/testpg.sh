#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for the test suite, on a free loopback
# port, run by an unprivileged user (PostgreSQL refuses root).
#
#   testpg.sh start STATE_DIR [ADMIN_BIN]   create + start; writes STATE_DIR/dsn
#   testpg.sh stop  STATE_DIR               stop and delete the cluster
#
# The data directory lives in a fresh mktemp dir under /tmp (owned by the
# unprivileged user), so it works whatever the permissions of the checkout.
# With ADMIN_BIN, the schema is applied with `ADMIN_BIN migrate`.
# TESTPG_EXTRA_CONF, if set, is appended to postgresql.conf (the benchmark's
# profiling runs load pg_stat_statements with it). PostgreSQL runs with the
# allocator settings of deploy/postgres/malloc.env, as deployed
# (TESTPG_MALLOC_ENV=none starts it without them, for A/B runs).
set -euo pipefail

cmd=${1:?start|stop}
state=${2:?state dir}
admin=${3:-}
pgbin=${POPGATE_PGBIN:-/usr/lib/postgresql/15/bin}
malloc_env=$(dirname "$0")/../../deploy/postgres/malloc.env
[ "${TESTPG_MALLOC_ENV:-}" = none ] && malloc_env=/dev/null

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 - <<'PY'
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

stop() {
  [ -f "$state/datadir" ] || return 0
  local dir; dir=$(cat "$state/datadir")
  if [ -d "$dir/data" ]; then
    as_pg "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  rm -f "$state/datadir" "$state/dsn"
}

case "$cmd" in
  start)
    mkdir -p "$state"
    stop
    [ -x "$pgbin/initdb" ] || { echo "testpg: $pgbin/initdb not found (install postgresql-15)" >&2; exit 1; }
    dir=$(mktemp -d /tmp/popgate-testpg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    echo "$dir" > "$state/datadir"
    port=$(free_port)
    as_pg "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    cat >>"$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 128MB
${TESTPG_EXTRA_CONF:-}
CONF
    # shellcheck disable=SC2046 # one NAME=VALUE word per line, no spaces
    as_pg env $(grep -v '^#' "$malloc_env") "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$pgbin/psql" -h 127.0.0.1 -p "$port" -U postgres -v ON_ERROR_STOP=1 -q \
      -c "CREATE ROLE popgate LOGIN" -c "CREATE DATABASE popgate OWNER popgate" >/dev/null
    dsn="host=127.0.0.1 port=$port dbname=popgate user=popgate"
    echo "$dsn" > "$state/dsn"
    echo "$port" > "$state/port"
    if [ -n "$admin" ]; then
      "$admin" --dsn "$dsn" migrate >/dev/null
    fi
    echo "testpg: PostgreSQL on 127.0.0.1:$port (data $dir)"
    ;;
  stop)
    stop
    ;;
  *)
    echo "usage: $0 start|stop STATE_DIR [ADMIN_BIN]" >&2; exit 2;;
esac
