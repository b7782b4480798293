#!/usr/bin/env bash
# popgate developer entry points, for Debian 12.
#
#   ops/dev.sh test      install missing packages, then run the test stages
#                        (below): build, run every test with ctest, again
#                        under sanitizers, and fuzz for a bounded time
#   ops/dev.sh run       install missing packages, build, start a local
#                        PostgreSQL 15 under var/pg, seed a demo user and
#                        messages, then run the gateway in the foreground
#   ops/dev.sh stop-db   stop the PostgreSQL that `run` started
#   ops/dev.sh deps      only install missing packages
#
# Environment:
#   BUILD_DIR           build directory, relative to the checkout or absolute
#                       (default build); the stages below add -asan, -tsan, -fuzz
#   POPGATE_TEST_STAGES comma-separated stages of `test`, run in this order
#                       (default: default,asan,tsan,fuzz):
#     default  $BUILD_DIR: RelWithDebInfo, -Werror; every target; every test
#              (ctest -j2)
#     asan     $BUILD_DIR-asan: g++ with AddressSanitizer + UndefinedBehavior-
#              Sanitizer (and LeakSanitizer), -O1; every target; every test
#     tsan     $BUILD_DIR-tsan: g++ with ThreadSanitizer, -O1; only the
#              targets of the suites labelled `tsan` (the multi-shard server
#              tests and the suites with threads; tests/CMakeLists.txt);
#              ctest -L tsan
#     fuzz     $BUILD_DIR-fuzz: clang 14, libFuzzer + ASan + UBSan; each fuzz
#              target for POPGATE_FUZZ_SECONDS (default 60) s (tests/fuzz/run.sh)
#              A sanitizer report from any process (tests, or the popgate a
#              Python test runs) fails its stage; reports are kept under
#              <stage build dir>/sanitizer-logs/. Suppressions (third-party
#              code only): tests/sanitizers/*.supp.
#   POPGATE_FUZZ_SECONDS fuzzing time per fuzz target, seconds
#   POPGATE_DEV_PGPORT  port of the local PostgreSQL (default 55432)
#   POPGATE_DEV_PGDIR   where its cluster lives (default var/pg)
#
# As root, packages come from apt-get and PostgreSQL runs as the unprivileged
# `postgres` user. As a normal user, apt-get is used through `sudo -n` when
# that works, and otherwise skipped; PostgreSQL then runs as you.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
pgbin=${POPGATE_PGBIN:-/usr/lib/postgresql/15/bin}
pgport=${POPGATE_DEV_PGPORT:-55432}
pgdir=${POPGATE_DEV_PGDIR:-$repo/var/pg}
pgdata=$pgdir/data
demo_domain=example.test
demo_login=demo@$demo_domain
demo_password_file=$repo/var/demo-password
listen=127.0.0.1:1110

say() { printf 'dev.sh: %s\n' "$*" >&2; }
die() {
  say "$*"
  exit 1
}
is_root() { [ "$(id -u)" = 0 ]; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# ---------------------------------------------------------------- packages

wanted_packages() {
  sed -e 's/#.*//' -e 's/[[:space:]]//g' "$repo/ops/packages.txt" | grep -v '^$'
}

missing_packages() {
  local pkg
  for pkg in $(wanted_packages); do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' ||
      echo "$pkg"
  done
}

ensure_packages() {
  if ! command -v dpkg-query >/dev/null; then
    say "no dpkg-query: assuming the packages in ops/packages.txt are installed"
    return 0
  fi
  local missing
  missing=$(missing_packages | paste -sd ' ')
  [ -n "$missing" ] || return 0
  local -a sudo=()
  if ! is_root; then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      say "missing Debian packages (not root, no sudo: not installing): $missing"
      say "if the build fails, install them as root: apt-get install $missing"
      return 0
    fi
  fi
  say "installing missing packages: $missing"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  # shellcheck disable=SC2086  # one word per package
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q --no-install-recommends $missing
}

# ---------------------------------------------------------------- build

build_dir() {
  local dir=${BUILD_DIR:-build}
  case $dir in
    /*) echo "$dir" ;;
    *) echo "$repo/$dir" ;;
  esac
}

# configure DIR [CMAKE_ARG...]: RelWithDebInfo, warnings as errors, Ninja for
# a new dir (an existing one keeps the generator it was made with); the
# extra arguments come last, so they win.
configure() {
  local dir=$1
  shift
  local -a generator=(-G Ninja)
  [ -f "$dir/CMakeCache.txt" ] && generator=()
  cmake -S "$repo" -B "$dir" "${generator[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPOPGATE_WERROR=ON "$@"
}

# binary DIR NAME: where the build put executable NAME.
binary() {
  local dir=$1 name=$2 candidate
  for candidate in "$dir/$name" "$dir/server/$name" "$dir/ops/admin/$name"; do
    [ -x "$candidate" ] && [ -f "$candidate" ] && { echo "$candidate"; return 0; }
  done
  die "built $name not found under $dir"
}

# ---------------------------------------------------------------- test

readonly all_stages=default,asan,tsan,fuzz
# What the sanitizer stages build with: -O1 keeps the instrumented suite
# fast enough for CI (Debug's -O0 is slower to run), -g1 (line tables) is
# enough for symbolized reports and compiles faster than -g.
readonly sanitizer_flags="-O1 -g1"
sanitizer_cmake_args=(-DCMAKE_CXX_FLAGS_RELWITHDEBINFO="$sanitizer_flags"
  -DCMAKE_C_FLAGS_RELWITHDEBINFO="$sanitizer_flags")

# run_ctest DIR [CTEST_ARG...]: the suite, two at a time. Tests that fail
# are run once more on their own: if they pass then, the stage passes, but
# they are named as flaky at the end of the run, with the output of their
# failed run (kept in DIR/Testing/Temporary/LastTest.first.log), so that a
# flaky test is seen and fixed rather than hidden or blocking everything.
run_ctest() {
  local dir=$1
  shift
  local tmp=$dir/Testing/Temporary
  rm -f "$tmp/LastTestsFailed.first.log" "$tmp/flaky"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 "$@" && return 0
  [ -s "$tmp/LastTestsFailed.log" ] || return 1
  cp "$tmp/LastTest.log" "$tmp/LastTest.first.log"
  cp "$tmp/LastTestsFailed.log" "$tmp/LastTestsFailed.first.log"
  say "running the failed tests once more, to tell a flaky test from a broken one"
  ctest --test-dir "$dir" --output-on-failure --no-tests=error --rerun-failed "$@" || return 1
  : >"$tmp/flaky"
}

# Points the sanitizer runtimes at log files under DIR/sanitizer-logs, so a
# report from a process whose exit status no test looks at (the popgate a
# Python test runs, a child of a child) is still seen by check_sanitizer_logs.
sanitizer_env() {
  local logs=$1/sanitizer-logs supp=$repo/tests/sanitizers
  rm -rf "$logs"
  mkdir -p "$logs"
  # A 16 MiB quarantine (default 256) and no fake stacks: the integration
  # tests bound the server's RSS growth to 8 MiB while a client stalls a
  # large RETR, and freed body chunks held in quarantine (or fake stack
  # frames) would count; use-after-free is still caught within 16 MiB.
  export ASAN_OPTIONS="log_path=$logs/asan:detect_leaks=1:strict_string_checks=1:check_initialization_order=1:quarantine_size_mb=16:thread_local_quarantine_size_kb=256"
  export UBSAN_OPTIONS="log_path=$logs/ubsan:print_stacktrace=1:halt_on_error=1:suppressions=$supp/ubsan.supp"
  export LSAN_OPTIONS="suppressions=$supp/lsan.supp:print_suppressions=0"
  export TSAN_OPTIONS="log_path=$logs/tsan:second_deadlock_stack=1:suppressions=$supp/tsan.supp"
}

# Fails (printing them) when any process wrote a sanitizer report.
check_sanitizer_logs() {
  local logs=$1/sanitizer-logs
  local -a reports
  mapfile -t reports < <(find "$logs" -type f -size +0 2>/dev/null | sort)
  [ ${#reports[@]} -eq 0 ] && return 0
  local report
  for report in "${reports[@]}"; do
    say "sanitizer report $report:"
    head -n 80 "$report" >&2
  done
  say "${#reports[@]} sanitizer report(s) under $logs"
  return 1
}

stage_default() {
  local dir
  dir=$(build_dir)
  stage_dir=$dir
  configure "$dir" && cmake --build "$dir" && run_ctest "$dir"
}

stage_asan() {
  local dir
  dir=$(build_dir)-asan
  stage_dir=$dir
  configure "$dir" -DPOPGATE_SANITIZE=address,undefined "${sanitizer_cmake_args[@]}" &&
    cmake --build "$dir" || return
  (
    sanitizer_env "$dir"
    local status=0
    run_ctest "$dir" || status=$?
    check_sanitizer_logs "$dir" || status=1
    exit "$status"
  )
}

stage_tsan() {
  local dir
  dir=$(build_dir)-tsan
  stage_dir=$dir
  configure "$dir" -DPOPGATE_SANITIZE=thread "${sanitizer_cmake_args[@]}" &&
    cmake --build "$dir" --target popgate_tsan_tests || return
  # TSan maps its shadow at fixed addresses; with more than 28 bits of mmap
  # randomness (newer kernels) that can collide. Without ASLR it cannot.
  local -a norandom=()
  local bits
  bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)
  if [ "$bits" -gt 28 ]; then
    norandom=(setarch "$(uname -m)" -R)
    say "vm.mmap_rnd_bits=$bits: running TSan without ASLR (setarch -R)"
  fi
  (
    sanitizer_env "$dir"
    local status=0
    "${norandom[@]}" ctest --test-dir "$dir" --output-on-failure --no-tests=error -j2 -L tsan ||
      status=$?
    check_sanitizer_logs "$dir" || status=1
    exit "$status"
  )
}

stage_fuzz() {
  POPGATE_FUZZ_BUILD_DIR="$(build_dir)-fuzz" bash "$repo/tests/fuzz/run.sh"
}

# report_failed_tests DIR [SUFFIX WHAT]: names the tests the last ctest run in
# DIR failed (SUFFIX .first: its first run, before the rerun) and repeats the
# end of each one's output. CI keeps only the tail of what the
# test command prints, and --output-on-failure buries a failure mid-run.
report_failed_tests() {
  local dir=$1 suffix=${2:-} what=${3:-failed}
  local failed_log=$1/Testing/Temporary/LastTestsFailed$suffix.log
  local all_log=$1/Testing/Temporary/LastTest$suffix.log name
  [ -s "$failed_log" ] || return 0
  while IFS=: read -r _ name; do
    say "$what in $dir: $name; the end of its output:"
    # LastTest.log holds each test's output between its "Testing: NAME"
    # header and the next test's header.
    awk -v t="$name" '
      / Testing: / { on = (substr($0, index($0, " Testing: ") + 10) == t) }
      on { print }' "$all_log" 2>/dev/null | tail -n 60 >&2
  done <"$failed_log"
}

cmd_test() {
  local stages=${POPGATE_TEST_STAGES:-$all_stages} stage
  local -a selected
  IFS=, read -r -a selected <<<"$stages"
  [ ${#selected[@]} -gt 0 ] || die "POPGATE_TEST_STAGES is empty (stages: $all_stages)"
  for stage in "${selected[@]}"; do
    case ",$all_stages," in
      *",$stage,"*) ;;
      *) die "unknown stage '$stage' in POPGATE_TEST_STAGES (stages: $all_stages)" ;;
    esac
  done
  ensure_packages
  local -a summary=() failed_dirs=() ran_dirs=()
  local passed=0 failed=0 start status stage_dir dir
  for stage in "${selected[@]}"; do
    say "stage $stage"
    start=$SECONDS
    status=0
    stage_dir=
    # (set -e does not reach into a function called before ||: each stage
    # chains its steps with && / || return.)
    "stage_$stage" || status=$?
    [ -n "$stage_dir" ] && ran_dirs+=("$stage_dir")
    if [ "$status" = 0 ]; then
      passed=$((passed + 1))
      summary+=("$stage: passed in $((SECONDS - start)) s")
    else
      failed=$((failed + 1))
      summary+=("$stage: FAILED (exit $status) after $((SECONDS - start)) s")
      [ -n "$stage_dir" ] && failed_dirs+=("$stage_dir")
    fi
  done
  for dir in "${ran_dirs[@]}"; do
    [ -e "$dir/Testing/Temporary/flaky" ] || continue
    report_failed_tests "$dir" .first "FLAKY (failed, then passed when run again)"
  done
  for dir in "${failed_dirs[@]}"; do
    report_failed_tests "$dir"
  done
  printf 'dev.sh: %s\n' "${summary[@]}" >&2
  printf 'stages: %d passed, %d failed\n' "$passed" "$failed"
  [ "$failed" = 0 ]
}

# ---------------------------------------------------------------- database

as_pg() {
  if is_root; then runuser -u postgres -- "$@"; else "$@"; fi
}

# The directories on the way to $1 that `postgres` may not search.
unsearchable_parents() {
  local path=$1 dir="" part
  local -a parts
  IFS=/ read -r -a parts <<<"${path#/}"
  for part in "${parts[@]}"; do
    dir="$dir/$part"
    [ -d "$dir" ] || break
    runuser -u postgres -- test -x "$dir" || echo "$dir"
  done
}

# Makes $pgdir, owned by whoever runs PostgreSQL, or explains what to do.
prepare_pgdir() {
  mkdir -p "$pgdir"
  is_root || return 0
  id postgres >/dev/null 2>&1 || die "no 'postgres' user: install postgresql-15 (it creates it)"
  chown postgres: "$pgdir"
  chmod 700 "$pgdir"
  runuser -u postgres -- test -w "$pgdir" && return 0
  local blocked
  blocked=$(unsearchable_parents "$(dirname "$pgdir")" | paste -sd ' ')
  die "PostgreSQL runs as the unprivileged 'postgres' user, which cannot reach $pgdir" \
    "(not searchable by others: ${blocked:-a parent directory})." \
    "Either allow it, e.g. chmod o+x ${blocked:-<that directory>}," \
    "or keep the cluster elsewhere: POPGATE_DEV_PGDIR=/var/tmp/popgate-pg ops/dev.sh run"
}

init_cluster() {
  [ -f "$pgdata/PG_VERSION" ] && return 0
  [ -x "$pgbin/initdb" ] || die "$pgbin/initdb not found: install postgresql-15"
  say "creating a PostgreSQL 15 cluster in $pgdata"
  # Loopback TCP only, no Unix socket (its path length is limited), and trust:
  # a development database, reachable only from this machine.
  as_pg "$pgbin/initdb" -D "$pgdata" -U postgres -A trust -E UTF8 --no-locale \
    >"$pgdir/initdb.log" 2>&1 || {
    cat "$pgdir/initdb.log" >&2
    die "initdb failed"
  }
  as_pg tee -a "$pgdata/postgresql.conf" >/dev/null <<CONF

# popgate dev (ops/dev.sh)
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = ''
CONF
}

db_running() { as_pg "$pgbin/pg_ctl" -D "$pgdata" status >/dev/null 2>&1; }

# Starts the cluster unless it runs; sets pgport to the port it listens on.
start_cluster() {
  if db_running; then
    local running
    running=$(sed -n 4p "$pgdata/postmaster.pid")
    [ "$running" = "$pgport" ] ||
      say "PostgreSQL already runs on port $running (not $pgport); using $running"
    pgport=$running
    return 0
  fi
  say "starting PostgreSQL on 127.0.0.1:$pgport"
  # With the allocator settings popgate's deployments give PostgreSQL (the
  # file says why).
  # shellcheck disable=SC2046 # one NAME=VALUE word per line, no spaces
  as_pg env $(grep -v '^#' "$repo/deploy/postgres/malloc.env") \
    "$pgbin/pg_ctl" -D "$pgdata" -l "$pgdir/server.log" -o "-p $pgport" -w -t 60 start \
    >/dev/null || {
    tail -n 20 "$pgdir/server.log" >&2 || true
    die "PostgreSQL did not start (log: $pgdir/server.log)"
  }
}

psql_as() {
  local user=$1 db=$2
  shift 2
  # An operator's session: every tenant's rows under row-level security.
  PGOPTIONS="-c popgate.all_tenants=on" \
    "$pgbin/psql" -X -q -v ON_ERROR_STOP=1 -tA -h 127.0.0.1 -p "$pgport" -U "$user" -d "$db" "$@"
}

ensure_role_and_database() {
  if [ "$(psql_as postgres postgres -c "SELECT 1 FROM pg_roles WHERE rolname = 'popgate'")" != 1 ]
  then
    say "creating role popgate"
    psql_as postgres postgres -c "CREATE ROLE popgate LOGIN"
  fi
  if [ "$(psql_as postgres postgres -c "SELECT 1 FROM pg_database WHERE datname = 'popgate'")" \
    != 1 ]; then
    say "creating database popgate"
    psql_as postgres postgres -c "CREATE DATABASE popgate OWNER popgate"
  fi
}

cmd_stop_db() {
  if [ ! -f "$pgdata/PG_VERSION" ]; then
    say "no cluster in $pgdata"
    return 0
  fi
  if db_running; then
    as_pg "$pgbin/pg_ctl" -D "$pgdata" -m fast -w stop >/dev/null
    say "stopped PostgreSQL ($pgdata)"
  else
    say "PostgreSQL ($pgdata) is not running"
  fi
}

# ---------------------------------------------------------------- demo data

# The demo password: reused from var/demo-password, or made and saved.
# Sets demo_password and demo_password_new (1 when just made).
load_demo_password() {
  demo_password_new=0
  if [ -s "$demo_password_file" ]; then
    demo_password=$(cat "$demo_password_file")
    return 0
  fi
  mkdir -p "$(dirname "$demo_password_file")"
  demo_password=$(openssl rand -base64 12 | tr '+/' '-_')
  (umask 077 && printf '%s\n' "$demo_password" >"$demo_password_file")
  demo_password_new=1
}

seed_demo() {
  local admin=$1
  local -a run_admin=("$admin" --dsn "$dsn")
  if [ -z "$(psql_as popgate popgate -c \
    "SELECT 1 FROM popgate.tenants WHERE domain = '$demo_domain'")" ]; then
    "${run_admin[@]}" tenant add "$demo_domain"
  fi
  load_demo_password
  local user_id
  user_id=$(psql_as popgate popgate -c "SELECT u.user_id FROM popgate.users u
    JOIN popgate.tenants t USING (tenant_id)
    WHERE t.domain = '$demo_domain' AND u.local_part = 'demo'")
  if [ -z "$user_id" ]; then
    "${run_admin[@]}" user add "$demo_login" --password-stdin <<<"$demo_password"
  elif [ "$demo_password_new" = 1 ]; then
    "${run_admin[@]}" user passwd "$demo_login" --password-stdin <<<"$demo_password"
  fi
  local messages
  messages=$(psql_as popgate popgate -c "SELECT count(*) FROM popgate.messages m
    JOIN popgate.users u USING (tenant_id, user_id) JOIN popgate.tenants t USING (tenant_id)
    WHERE t.domain = '$demo_domain' AND u.local_part = 'demo'")
  if [ "$messages" = 0 ]; then
    local eml
    for eml in "$repo"/ops/demo/*.eml; do
      "${run_admin[@]}" deliver "$demo_login" "$eml"
    done
  fi
}

banner() {
  cat <<TEXT

popgate dev is ready.
  PostgreSQL  127.0.0.1:$pgport  (data $pgdata, log $pgdir/server.log)
  database    $dsn
  login       $demo_login
  password    $demo_password   (kept in ${demo_password_file#"$repo"/})

From another terminal:
  curl -s --user '$demo_login:$demo_password' pop3://$listen/     # list
  curl -s --user '$demo_login:$demo_password' pop3://$listen/1    # fetch message 1

Ctrl-C stops the gateway. PostgreSQL keeps running; stop it with: ops/dev.sh stop-db

TEXT
}

cmd_run() {
  ensure_packages
  local dir="$repo/build"
  configure "$dir"
  cmake --build "$dir" --target popgate popgate-admin
  local admin gateway
  admin=$(binary "$dir" popgate-admin)
  gateway=$(binary "$dir" popgate)
  prepare_pgdir
  init_cluster
  start_cluster
  ensure_role_and_database
  dsn="host=127.0.0.1 port=$pgport dbname=popgate user=popgate"
  "$admin" --dsn "$dsn" migrate
  seed_demo "$admin"
  banner
  say "exec ${gateway#"$repo"/} --dsn \"$dsn\" --listen $listen --log-level info"
  exec "$gateway" --dsn "$dsn" --listen "$listen" --log-level info
}

main() {
  [ $# -ge 1 ] || usage
  case $1 in
    test) cmd_test ;;
    run) cmd_run ;;
    stop-db) cmd_stop_db ;;
    deps) ensure_packages ;;
    -h | --help | help) usage ;;
    *)
      say "unknown command '$1'"
      usage
      ;;
  esac
}

main "$@"
