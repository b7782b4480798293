#!/usr/bin/env bash
# make_test_certs.sh OUTDIR: a throwaway PKI for the TLS unit tests and the
# integration tests. Idempotent (a finished OUTDIR is left alone), silent on
# success, and it prints the openssl output only when a step fails.
#
# Files in OUTDIR (PEM; every leaf is signed by ca.crt and valid for 10 years
# unless said otherwise; keys are mode 0600):
#
#   ca.crt, ca.key              test CA, ECDSA P-256. Clients trust ca.crt.
#   pop-ecdsa.crt, .key         default certificate, ECDSA P-256. SAN DNS
#                               pop.example.test and localhost, IP 127.0.0.1.
#   pop-rsa.crt, .key           default certificate, RSA 2048, same names.
#   sni/tenant-a.test.pem       SNI certificate, ECDSA P-256, SAN tenant-a.test;
#                               one file: private key, leaf, then ca.crt.
#   sni/wildcard.tenant-b.test.crt, .key
#                               SNI certificate, RSA 2048, SAN *.tenant-b.test
#                               (the .crt/.key pair layout).
#   expired.crt, expired.key    ECDSA P-256, pop.example.test, valid only from
#                               2000-01-01 to 2001-01-01 (UTC).
#   mismatch.crt, mismatch.key  pop-ecdsa.crt and an unrelated ECDSA key.
#   ticket.key                  80 random bytes, a binary ticket key file.
#   ticket.b64                  80 other random bytes, base64 (a ticket key
#                               file in the text form).
#
# sni/ is laid out as a TlsConfig::sni_directory. Bump `version` when the set
# changes, so existing OUTDIRs are regenerated.
set -euo pipefail

version=1
out=${1:?usage: make_test_certs.sh OUTDIR}
stamp="$out/.complete-v$version"
[[ -f $stamp ]] && exit 0

mkdir -p "$out/sni"
work=$(mktemp -d "$out/.tmp.XXXXXX")
trap 'rm -rf "$work"' EXIT
log="$work/log"

run() {
  if ! "$@" >>"$log" 2>&1; then
    echo "make_test_certs.sh: failed: $*" >&2
    cat "$log" >&2
    exit 1
  fi
}

cd "$work"
# Our own config, so the system openssl.cnf cannot change what we make.
cat >openssl.cnf <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf_ext]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = ${ENV::SAN}
[ca]
default_ca = testca
[testca]
dir = .
database = ./index.txt
new_certs_dir = ./issued
serial = ./serial
default_md = sha256
policy = policy_any
unique_subject = no
email_in_dn = no
[policy_any]
commonName = supplied
EOF
export OPENSSL_CONF="$work/openssl.cnf" SAN=DNS:unused

ec_key() { run openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
rsa_key() { run openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$1"; }

# leaf KEY OUT CN SAN
leaf() {
  SAN=$4 run openssl req -new -key "$1" -subj "/CN=$3" -out "$2" -days 3650 -sha256 \
    -CA ca.crt -CAkey ca.key -extensions leaf_ext -config openssl.cnf
}

ec_key ca.key
run openssl req -x509 -new -key ca.key -subj "/CN=popgate test CA" -out ca.crt -days 3650 \
  -sha256 -extensions ca_ext -config openssl.cnf

pop_san="DNS:pop.example.test,DNS:localhost,IP:127.0.0.1"
ec_key pop-ecdsa.key
leaf pop-ecdsa.key pop-ecdsa.crt pop.example.test "$pop_san"
rsa_key pop-rsa.key
leaf pop-rsa.key pop-rsa.crt pop.example.test "$pop_san"

ec_key tenant-a.key
leaf tenant-a.key tenant-a.crt tenant-a.test DNS:tenant-a.test
cat tenant-a.key tenant-a.crt ca.crt >tenant-a.test.pem

rsa_key wildcard.tenant-b.test.key
leaf wildcard.tenant-b.test.key wildcard.tenant-b.test.crt '*.tenant-b.test' 'DNS:*.tenant-b.test'

# `openssl ca` is the one command in OpenSSL 3.0 that takes explicit dates.
ec_key expired.key
mkdir issued
: >index.txt
echo 1000 >serial
run openssl req -new -key expired.key -subj /CN=pop.example.test -out expired.csr -config openssl.cnf
SAN="DNS:pop.example.test" run openssl ca -batch -config openssl.cnf -cert ca.crt -keyfile ca.key \
  -in expired.csr -out expired.crt -notext -extensions leaf_ext \
  -startdate 20000101000000Z -enddate 20010101000000Z

cp pop-ecdsa.crt mismatch.crt
ec_key mismatch.key

run openssl rand -out ticket.key 80
run openssl rand -base64 -out ticket.b64 80

chmod 600 ./*.key ./*.pem ticket.key ticket.b64
mv ca.crt ca.key pop-ecdsa.crt pop-ecdsa.key pop-rsa.crt pop-rsa.key expired.crt expired.key \
  mismatch.crt mismatch.key ticket.key ticket.b64 "$out/"
mv tenant-a.test.pem wildcard.tenant-b.test.crt wildcard.tenant-b.test.key "$out/sni/"
: >"$stamp"
