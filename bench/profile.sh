#!/usr/bin/env bash
# bench/profile.sh: where popgate spends its CPU under one scenario.
#
#   bench/profile.sh BUILD_DIR OUT_DIR SCENARIO_ARGS...
#   e.g. bench/profile.sh build-bench /tmp/prof-login --scenario login --connections 8
#
# Needs the environment bench/compare.py --keep leaves behind (its
# PostgreSQL with the dataset and its certificates, under WORK, default
# /tmp/popgate-bench). Starts a second popgate, runs popgate-bench against
# it for PROFILE_SECONDS, stops it with SIGINT and writes OUT_DIR/report.txt
# (top functions) and OUT_DIR/bench.json.
#
# PROFILE_TOOL=perf (default): popgate runs at full speed and `perf record`
# samples it on the kernel's cpu-clock (a software event: hardware counters
# are not available on this machine), with call graphs.
# PROFILE_TOOL=callgrind: valgrind's callgrind, repeatable instruction
# counts, but popgate runs ~50x slower (here, with io_uring and its
# threads, far slower still: keep the load light); also writes
# OUT_DIR/callgrind.out and OUT_DIR/inclusive.txt.
set -euo pipefail

build=${1:?build dir}
out=${2:?output dir}
shift 2
work=${POPGATE_BENCH_WORK:-/tmp/popgate-bench}
seconds=${PROFILE_SECONDS:-20}
dataset=${PROFILE_DATASET:-full}
tool=${PROFILE_TOOL:-perf}
ready_timeout_s=120

dsn=$(cat "$work/pg/dsn")
mkdir -p "$out"
rm -f "$out/ready" "$out/callgrind.out" "$out/perf.data"
popgate=("$build/server/popgate" --dsn "$dsn"
  --listener name=pop3,address=127.0.0.1:0
  --listener name=pop3s,address=127.0.0.1:0,tls=implicit
  --set "tls.certificates=$work/certs/pop-ecdsa.crt:$work/certs/pop-ecdsa.key"
  --ready-file "$out/ready" --shards 2
  --set limits.connections_per_address_max=1000000
  --set limits.failure_delay_initial_ms=0 --set limits.failure_delay_max_ms=0
  --set limits.sessions_per_tenant_max=100000000
  --set limits.logins_per_tenant_per_minute=100000000
  --set database.query_timeout_ms=60000 --set database.connect_timeout_ms=60000)
case "$tool" in
  callgrind)
    valgrind --tool=callgrind --callgrind-out-file="$out/callgrind.out" "${popgate[@]}" \
      >"$out/popgate.log" 2>&1 &
    ;;
  perf)
    "${popgate[@]}" >"$out/popgate.log" 2>&1 &
    ;;
  *)
    echo "profile: PROFILE_TOOL is perf or callgrind, not '$tool'" >&2
    exit 2
    ;;
esac
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

perf_pid=
if [ "$tool" = perf ]; then
  perf record -e cpu-clock -F 999 -g -p "$pid" -o "$out/perf.data" >"$out/perf.log" 2>&1 &
  perf_pid=$!
fi
"$build/bench/popgate-bench" --dataset "$dataset" --port "$port" --tls-port "$tls_port" \
  --target "popgate-$tool" --duration-s "$seconds" --command-timeout-ms 120000 \
  --connect-timeout-ms 60000 --quiet "$@" >"$out/bench.json" || true
if [ -n "$perf_pid" ]; then
  kill -INT "$perf_pid"
  wait "$perf_pid" || true
fi

kill -INT $pid
wait $pid || true
trap - EXIT
if [ "$tool" = perf ]; then
  perf report -i "$out/perf.data" --stdio --no-children --sort dso,symbol --percent-limit 0.5 \
    >"$out/report.txt" 2>/dev/null
else
  callgrind_annotate --inclusive=yes "$out/callgrind.out" >"$out/inclusive.txt" 2>/dev/null
  callgrind_annotate "$out/callgrind.out" >"$out/report.txt" 2>/dev/null
fi
echo "profile: $out/report.txt; bench: $(head -c 300 "$out/bench.json")"
