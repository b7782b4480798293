#!/bin/sh
# A throwaway self-signed ECDSA certificate for trying deploy/docker-compose.yml:
# writes deploy/compose/tls/server.crt and server.key (the paths
# compose/popgate.toml names), readable by the image's popgate user (uid 10001).
# Production: put your real chain and key there (or mount a secret), then
# SIGHUP the gateways; per-tenant certificates go in the database with
# `popgate-admin tenant cert set` or in tls.sni_directory. deploy/README.md,
# "Certificates".
#
#   make-dev-certs.sh [NAME ...]      DNS names, default pop.example.test
set -eu
dir=$(dirname "$0")/tls
mkdir -p "$dir"
[ $# -gt 0 ] || set -- pop.example.test
san=""
for name in "$@"; do san="${san:+$san,}DNS:$name"; done
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=$1" -addext "subjectAltName=$san" \
  -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null
chmod 0644 "$dir/server.crt"
# The container's popgate user (uid 10001) must read the key; nobody else.
chmod 0640 "$dir/server.key"
chown 0:10001 "$dir/server.key" 2>/dev/null || chmod 0644 "$dir/server.key"
echo "wrote $dir/server.crt and $dir/server.key for: $*"
