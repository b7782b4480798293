"""popgate-admin tenant cert set|list|del, and the gateway serving what it
stored (schema v5, popgate.tenant_certificates).

What it proves:
- `set` stores a certificate only when the chain parses, the key matches,
  it has not expired and every name it serves is the tenant's domain or
  under it, but not under a more specific tenant's domain; each refusal
  names the problem and stores nothing.
- `list` shows names, key type and expiry and never the private key; `del`
  removes exactly one certificate.
- A running gateway picks up a stored, replaced or deleted certificate by
  itself (tls.database_poll_ms), with no restart and no SIGHUP: SNI then
  selects the tenant's certificate, and the default one again after `del`.

Certificates are made with the openssl CLI and signed by the test CA of
tests/support/make_test_certs.sh."""

import os
import socket
import ssl
import subprocess
import tempfile
import time
import unittest

from popgate_server import Gateway
from popgate_testlib import admin, dsn, new_tenant, psql

CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")


def make_cert(directory, stem, names, cn=None, key_type="ec"):
    """A leaf for `names` (SAN DNS) signed by the test CA; returns (chain, key)."""
    key = os.path.join(directory, stem + ".key")
    csr = os.path.join(directory, stem + ".csr")
    crt = os.path.join(directory, stem + ".crt")
    ext = os.path.join(directory, stem + ".ext")
    if key_type == "ec":
        subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout",
                        "-out", key], check=True, capture_output=True)
    else:
        subprocess.run(["openssl", "genrsa", "-out", key, "2048"], check=True,
                       capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn or names[0]}",
                    "-out", csr], check=True, capture_output=True)
    with open(ext, "w") as f:
        f.write("subjectAltName=" + ",".join("DNS:" + n for n in names) + "\n")
    subprocess.run(["openssl", "x509", "-req", "-in", csr, "-CA", os.path.join(CERTS, "ca.crt"),
                    "-CAkey", os.path.join(CERTS, "ca.key"), "-CAcreateserial",
                    "-CAserial", os.path.join(directory, "ca.srl"), "-days", "30",
                    "-extfile", ext, "-out", crt], check=True, capture_output=True)
    return crt, key


def common_name(port, server_name):
    ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
    ctx.check_hostname = False
    with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:
        with ctx.wrap_socket(raw, server_hostname=server_name) as tls:
            return dict(x[0] for x in tls.getpeercert()["subject"])["commonName"]


# How long the gateway may take to notice a change: a "no stall" bound many
# times tls.database_poll_ms (200 ms here), not a speed figure.
PICKUP_BOUND_S = 30


def wait_until(predicate, what):
    deadline = time.monotonic() + PICKUP_BOUND_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {PICKUP_BOUND_S} s: {what}")
        time.sleep(0.1)


def listed(domain):
    """`tenant cert list DOMAIN` as rows of column dicts."""
    lines = admin("tenant", "cert", "list", domain).stdout.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


class TenantCertAdminTest(unittest.TestCase):
    def setUp(self):
        if not CERTS:
            self.skipTest("POPGATE_TEST_CERT_DIR is not set (run through ctest)")
        self.dir = tempfile.mkdtemp(prefix="popgate-certs-")
        self.domain = new_tenant()

    def rows(self):
        return psql("SELECT count(*) FROM popgate.tenant_certificates c"
                    " JOIN popgate.tenants t USING (tenant_id)"
                    f" WHERE t.domain = '{self.domain}'")

    def test_set_list_replace_del(self):
        chain, key = make_cert(self.dir, "pop", [f"pop.{self.domain}", self.domain])
        r = admin("tenant", "cert", "set", self.domain, "pop", "--chain", chain, "--key", key)
        self.assertRegex(r.stdout, rf"^stored certificate pop of tenant {self.domain}: "
                                   rf"pop\.{self.domain}, {self.domain} \(.*\), expires ")
        rows = listed(self.domain)
        self.assertEqual(len(rows), 1)
        self.assertEqual(rows[0]["NAME"], "pop")
        self.assertEqual(rows[0]["NAMES"], f"pop.{self.domain},{self.domain}")
        out = admin("tenant", "cert", "list", self.domain).stdout
        self.assertNotIn("PRIVATE KEY", out)
        # The key is stored unencrypted and canonical; the chain holds no key.
        self.assertEqual(psql("SELECT key_pem LIKE '-----BEGIN PRIVATE KEY-----%',"
                              " chain_pem NOT LIKE '%PRIVATE KEY%'"
                              " FROM popgate.tenant_certificates c JOIN popgate.tenants t"
                              f" USING (tenant_id) WHERE t.domain = '{self.domain}'"), "t|t")

        # One file holding key and chain works too, and replaces.
        rsa_chain, rsa_key = make_cert(self.dir, "rsa", [f"pop.{self.domain}"], key_type="rsa")
        both = os.path.join(self.dir, "both.pem")
        with open(both, "w") as f:
            f.write(open(rsa_key).read() + open(rsa_chain).read())
        r = admin("tenant", "cert", "set", self.domain.upper(), "POP", "--chain", both)
        self.assertTrue(r.stdout.startswith(f"replaced certificate pop of tenant {self.domain}"),
                        r.stdout)
        self.assertEqual(listed(self.domain)[0]["KEY"].split("-")[0], "RSA")
        self.assertEqual(self.rows(), "1")

        r = admin("tenant", "cert", "del", self.domain, "pop")
        self.assertEqual(r.stdout, f"deleted certificate pop of tenant {self.domain}\n")
        self.assertEqual(self.rows(), "0")
        r = admin("tenant", "cert", "del", self.domain, "pop", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"tenant {self.domain} has no certificate 'pop'", r.stderr)

    def test_refusals_store_nothing(self):
        other_chain, other_key = make_cert(self.dir, "foreign", ["pop.elsewhere.test"])
        sub = "mail." + self.domain
        admin("tenant", "add", sub)
        wild_chain, wild_key = make_cert(self.dir, "wild", ["*." + self.domain])
        sub_chain, sub_key = make_cert(self.dir, "sub", ["pop." + sub])
        cases = [
            ("a name outside the tenant", [other_chain, other_key],
             "name 'pop.elsewhere.test' is neither"),
            ("a name of a more specific tenant", [sub_chain, sub_key],
             f"belongs to tenant {sub}"),
            ("a wildcard over a more specific tenant", [wild_chain, wild_key],
             f"belongs to tenant {sub}"),
            ("a key that does not match", [os.path.join(CERTS, "mismatch.crt"),
                                           os.path.join(CERTS, "mismatch.key")], "key"),
            ("an expired certificate", [os.path.join(CERTS, "expired.crt"),
                                        os.path.join(CERTS, "expired.key")], "expired"),
            ("no key at all", [other_chain, None], "key"),
            ("a file that is not PEM", ["/etc/hostname", None], "/etc/hostname"),
            ("a missing file", [os.path.join(self.dir, "nothing.pem"), None], "cannot open"),
        ]
        for what, (chain, key), message in cases:
            with self.subTest(what):
                args = ["tenant", "cert", "set", self.domain, "pop", "--chain", chain]
                if key:
                    args += ["--key", key]
                r = admin(*args, check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn(message, r.stderr)
                self.assertEqual(self.rows(), "0")
        # The more specific tenant may store its own name.
        admin("tenant", "cert", "set", sub, "pop", "--chain", sub_chain, "--key", sub_key)

    def test_bad_names_and_tenants(self):
        chain, key = make_cert(self.dir, "pop", [f"pop.{self.domain}"])
        for name in ("", ".x", "a/b", "x" * 65, "Ünï"):
            with self.subTest(name=name):
                r = admin("tenant", "cert", "set", self.domain, name, "--chain", chain, "--key",
                          key, check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("certificate name", r.stderr)
        r = admin("tenant", "cert", "set", "nowhere.test", "pop", "--chain", chain, "--key", key,
                  check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'nowhere.test'", r.stderr)
        r = admin("tenant", "cert", "list", "nowhere.test", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(self.rows(), "0")


class TenantCertGatewayTest(unittest.TestCase):
    """A running gateway follows the table without restart or SIGHUP."""

    def test_stored_replaced_and_deleted_certificates_are_picked_up(self):
        if not CERTS:
            self.skipTest("POPGATE_TEST_CERT_DIR is not set (run through ctest)")
        directory = tempfile.mkdtemp(prefix="popgate-certs-")
        domain = new_tenant()
        name = "pop." + domain
        gateway = Gateway(
            dsn(), listeners=["name=pop3s,address=127.0.0.1:0,tls=implicit"],
            tls__certificates=f"{CERTS}/pop-ecdsa.crt:{CERTS}/pop-ecdsa.key",
            tls__database_poll_ms=200)
        try:
            port = gateway.port_of("pop3s")
            self.assertEqual(common_name(port, name), "pop.example.test")  # the default
            chain, key = make_cert(directory, "one", [name], cn="first " + domain)
            admin("tenant", "cert", "set", domain, "pop", "--chain", chain, "--key", key)
            wait_until(lambda: common_name(port, name) == "first " + domain, "stored")
            # Names outside the certificate still get the default.
            self.assertEqual(common_name(port, "other." + domain), "pop.example.test")
            chain, key = make_cert(directory, "two", [name], cn="second " + domain,
                                   key_type="rsa")
            admin("tenant", "cert", "set", domain, "pop", "--chain", chain, "--key", key)
            wait_until(lambda: common_name(port, name) == "second " + domain, "replaced")
            admin("tenant", "cert", "del", domain, "pop")
            wait_until(lambda: common_name(port, name) == "pop.example.test", "deleted")
            self.assertIsNone(gateway.proc.poll())
            self.assertNotIn("PRIVATE KEY", open(gateway.log_path).read())
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
