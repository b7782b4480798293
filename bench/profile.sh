#!/usr/bin/env bash
# bench/profile.sh: where popgate spends its instructions under one scenario.
#
#   bench/profile.sh BUILD_DIR OUT_DIR SCENARIO_ARGS...
#   e.g. bench/profile.sh build-bench /tmp/prof-login --scenario login --connections 8
#
# Needs the environment bench/compare.py --keep leaves behind (its
# PostgreSQL with the dataset and its certificates, under WORK, default
# /tmp/popgate-bench). Starts a second popgate under valgrind's callgrind
# (repeatable instruction counts; hardware counters are not available
# here), runs popgate-bench against it for PROFILE_SECONDS (valgrind makes
# popgate ~50x slower, so keep the load light), stops it with SIGINT and
# writes OUT_DIR/callgrind.out, OUT_DIR/annotate.txt (top functions,
# inclusive and exclusive) and OUT_DIR/bench.json.
set -euo pipefail

build=${1:?build dir}
out=${2:?output dir}
shift 2
work=${POPGATE_BENCH_WORK:-/tmp/popgate-bench}
seconds=${PROFILE_SECONDS:-20}
dataset=${PROFILE_DATASET:-full}
ready_timeout_s=120

dsn=$(cat "$work/pg/dsn")
mkdir -p "$out"
rm -f "$out/ready" "$out/callgrind.out"
valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" \
  "$build/server/popgate" --dsn "$dsn" \
  --listener name=pop3,address=127.0.0.1:0 \
  --listener name=pop3s,address=127.0.0.1:0,tls=implicit \
  --set "tls.certificates=$work/certs/pop-ecdsa.crt:$work/certs/pop-ecdsa.key" \
  --ready-file "$out/ready" --shards 2 \
  --set limits.connections_per_address_max=1000000 \
  --set limits.failure_delay_initial_ms=0 --set limits.failure_delay_max_ms=0 \
  --set limits.sessions_per_tenant_max=100000000 \
  --set limits.logins_per_tenant_per_minute=100000000 \
  --set database.query_timeout_ms=60000 --set database.connect_timeout_ms=60000 \
  >"$out/popgate.log" 2>&1 &
pid=$!
trap 'kill -INT $pid 2>/dev/null || true' EXIT
for _ in $(seq $((ready_timeout_s * 10))); do
  [ -f "$out/ready" ] && break
  kill -0 $pid 2>/dev/null || { cat "$out/popgate.log" >&2; exit 1; }
  sleep 0.1
done
[ -f "$out/ready" ] || { echo "profile: popgate did not start" >&2; exit 1; }
port=$(awk '$1 == "pop3" { split($2, a, ":"); print a[2] }' "$out/ready")
tls_port=$(awk '$1 == "pop3s" { split($2, a, ":"); print a[2] }' "$out/ready")

"$build/bench/popgate-bench" --dataset "$dataset" --port "$port" --tls-port "$tls_port" \
  --target popgate-callgrind --duration-s "$seconds" --command-timeout-ms 120000 \
  --connect-timeout-ms 60000 --quiet "$@" >"$out/bench.json" || true

kill -INT $pid
wait $pid || true
trap - EXIT
callgrind_annotate --inclusive=yes "$out/callgrind.out" >"$out/inclusive.txt" 2>/dev/null
callgrind_annotate "$out/callgrind.out" >"$out/annotate.txt" 2>/dev/null
echo "profile: $out/annotate.txt (exclusive), $out/inclusive.txt; bench: $(head -c 300 "$out/bench.json")"
