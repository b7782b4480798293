#!/usr/bin/env bash
# Checks deploy/ against the tools that read it and the binary it deploys
# (ctest runs it as deploy_check, with a test database and the binaries):
#
#   deploy/ci/check.sh [--popgate BIN] [--admin BIN] [--dsn-file FILE] [--certs DIR] [--update-metrics]
#
# - promtool check rules / test rules / check config on deploy/prometheus/;
# - haproxy -c on deploy/haproxy/haproxy.cfg;
# - `docker compose config` on deploy/docker-compose.yml where the compose
#   plugin exists; the JSON-schema validation in check_deploy.py always;
# - check_deploy.py: metric names and label values, ports, health paths,
#   drain and grace periods, `popgate --check-config`, the image's libraries.
# Without --popgate and --dsn-file the metric reference is
# deploy/ci/exported-metrics.txt alone.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
deploy=$(dirname "$here")
py_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --popgate|--admin|--certs) py_args+=("$1" "$2"); shift 2 ;;
    --dsn-file) py_args+=(--dsn "$(cat "$2")"); shift 2 ;;
    --update-metrics) py_args+=("$1"); shift ;;
    *) echo "check.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

work=$(mktemp -d /tmp/popgate-deploy-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
failed=0
step() { echo "== $*"; }

need() {
  command -v "$1" >/dev/null || { echo "check.sh: $1 is not installed (ops/packages.txt: $2)" >&2; exit 1; }
}
need promtool prometheus
need haproxy haproxy
need python3 python3

step "promtool check rules"
promtool check rules "$deploy/prometheus/alerts.yml" || failed=1
step "promtool test rules"
(cd "$deploy/prometheus" && promtool test rules alerts_test.yml) || failed=1
step "promtool check config"
promtool check config "$deploy/prometheus/prometheus.yml" || failed=1

step "haproxy -c"
# The stats socket's directory exists only in the container.
sed "s#stats socket /var/lib/haproxy/admin.sock#stats socket $work/admin.sock#" \
  "$deploy/haproxy/haproxy.cfg" > "$work/haproxy.cfg"
# The servers' names resolve only on the compose network: those warnings are expected.
if ! haproxy -c -f "$work/haproxy.cfg" > "$work/haproxy.out" 2>&1; then
  cat "$work/haproxy.out"; failed=1
else
  grep -v -e "could not resolve address" -e "^\[NOTICE\]" "$work/haproxy.out" || true
fi

if docker compose version >/dev/null 2>&1; then
  step "docker compose config"
  docker compose -f "$deploy/docker-compose.yml" config -q || failed=1
else
  step "docker compose: no compose plugin here; the schema check below validates the file"
fi

step "check_deploy.py"
python3 -W error::DeprecationWarning "$here/check_deploy.py" "${py_args[@]}" || failed=1

if [ "$failed" != 0 ]; then
  echo "deploy check: FAILED"
  exit 1
fi
echo "deploy check: all passed"
