"""Tenants routed to several PostgreSQL clusters (database.clusters and
database.tenants) on the real binary with two real PostgreSQL clusters: the
shared test database is the default cluster "default" and a private one,
started here with tests/support/testpg.sh, is cluster "b".

Proves that:
- popgate-admin --config (the gateway's own TOML) creates each tenant, its
  users and their deliveries in the tenant's cluster only, follows the map
  for per-tenant commands and runs cluster-wide ones (migrate --check, who)
  on every cluster;
- LMTP delivers each recipient of one transaction into its own cluster;
- POP3 logins on both clusters list and retrieve their own mail, and psql
  finds every tenant's rows in its cluster and none in the other;
- the PostgreSQL metrics carry a `cluster` label, and readiness covers
  every cluster;
- a tenant certificate stored (by popgate-admin) in cluster b is served by
  SNI: the gateway watches every cluster's certificates;
- with cluster b stopped, b's users get -ERR [SYS/TEMP] while the default
  cluster's users log in and retrieve as before;
- a map naming an unknown cluster stops startup with an error naming the key.
"""
import os
import poplib
import secrets
import socket
import ssl
import subprocess
import tempfile
import unittest

from itest import Gateway, crlf, dsn, psql, wait_until
from popgate_server import POPGATE_BIN
from popgate_testlib import admin_bin

TESTPG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support", "testpg.sh")
PGBIN = os.environ.get("POPGATE_PGBIN", "/usr/lib/postgresql/15/bin")
LISTENERS = ["name=pop3,address=127.0.0.1:0", "name=lmtp,address=127.0.0.1:0,protocol=lmtp",
             "name=pop3s,address=127.0.0.1:0,tls=implicit"]
CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")
# How long the gateway may take to notice a stored certificate: a "no
# stall" bound many times tls.database_poll_ms (200 ms here), not a speed figure.
PICKUP_BOUND_S = 30


def make_cert(directory, names, cn):
    """An EC leaf for `names` (SAN DNS) signed by the test CA; returns (chain, key)."""
    key, csr, crt, ext = (os.path.join(directory, "leaf." + x) for x in ("key", "csr", "crt", "ext"))
    subprocess.run(["openssl", "ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key],
                   check=True, capture_output=True)
    subprocess.run(["openssl", "req", "-new", "-key", key, "-subj", f"/CN={cn}", "-out", csr],
                   check=True, capture_output=True)
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


def run_admin(config, *args, input=None, check=True):
    """popgate-admin --config CONFIG ARGS (no --dsn: the file says it all)."""
    result = subprocess.run([admin_bin(), "--config", config, *args],
                            input=(input or "").encode(), capture_output=True, timeout=300, check=False)
    out = result.stdout.decode("utf-8", "replace")
    err = result.stderr.decode("utf-8", "replace")
    if check and result.returncode != 0:
        raise AssertionError(f"popgate-admin {' '.join(args)} exited {result.returncode}\n{out}\n{err}")
    return result.returncode, out, err


def lmtp_deliver(gateway, recipients, message):
    """One LMTP transaction to every recipient; returns (RCPT replies, the
    replies after the final dot: RFC 2033 gives one to each accepted
    recipient, in RCPT order)."""
    sock = socket.create_connection(gateway.listeners["lmtp"], timeout=60)
    f = sock.makefile("rb")

    def reply():
        while True:
            line = f.readline().decode()
            if not line:
                raise EOFError("LMTP connection closed")
            if line[3:4] != "-":
                return line.rstrip("\r\n")

    try:
        reply()  # greeting
        for command in ["LHLO test", "MAIL FROM:<sender@example.org>"]:
            sock.sendall(command.encode() + b"\r\n")
            answer = reply()
            assert answer.startswith("250"), f"{command}: {answer}"
        rcpt = []
        for r in recipients:
            sock.sendall(f"RCPT TO:<{r}>\r\n".encode())
            rcpt.append(reply())
        accepted = sum(1 for a in rcpt if a.startswith("250"))
        sock.sendall(b"DATA\r\n")
        assert reply().startswith("354")
        sock.sendall(message + b".\r\n")
        replies = [reply() for _ in range(accepted)]
        sock.sendall(b"QUIT\r\n")
        return rcpt, replies
    finally:
        f.close()
        sock.close()


def count(database, sql):
    return int(psql(sql, database=database))


class ClusterRoutingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not CERTS:
            raise unittest.SkipTest("POPGATE_TEST_CERT_DIR is not set (run through ctest)")
        cls.dsn_a = dsn()
        cls.work = tempfile.mkdtemp(prefix="popgate-clusters-")
        cls.state_b = os.path.join(cls.work, "pg-b")
        subprocess.run(["bash", TESTPG, "start", cls.state_b, admin_bin()], check=True,
                       capture_output=True, timeout=180)
        with open(os.path.join(cls.state_b, "dsn")) as f:
            cls.dsn_b = f.read().strip()
        with open(os.path.join(cls.state_b, "datadir")) as f:
            cls.datadir_b = f.read().strip() + "/data"
        tag = secrets.token_hex(5)
        cls.dom_a = f"a{tag}.test"         # not listed: the default cluster
        cls.dom_a2 = f"d{tag}.test"        # listed as "default" explicitly
        cls.dom_b = f"b{tag}.test"         # cluster b
        cls.config = os.path.join(cls.work, "popgate.toml")
        with open(cls.config, "w") as f:
            f.write(f'[database]\ndsn = "{cls.dsn_a}"\n\n'
                    f'[database.clusters.b]\ndsn = "{cls.dsn_b}"\n\n'
                    f'[database.tenants]\n"{cls.dom_b.upper()}" = "b"\n"{cls.dom_a2}" = "default"\n')
        cls.users = {}
        for domain in (cls.dom_a, cls.dom_a2, cls.dom_b):
            run_admin(cls.config, "tenant", "add", domain)
            login, password = f"u{tag}@{domain}", secrets.token_urlsafe(12)
            run_admin(cls.config, "user", "add", login, "--password-stdin", input=password + "\n")
            cls.users[domain] = (login, password)
        cls.gateway = Gateway(cls.dsn_a, listeners=LISTENERS, config_file=cls.config,
                              tls__certificates=f"{CERTS}/pop-ecdsa.crt:{CERTS}/pop-ecdsa.key",
                              tls__database_poll_ms=200)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        subprocess.run(["bash", TESTPG, "stop", cls.state_b], check=False, capture_output=True, timeout=120)

    def where(self, domain):
        """(rows in the default cluster, rows in b) for the tenant, its users, its messages."""
        return self.rows_in(self.dsn_a, domain), self.rows_in(self.dsn_b, domain)

    @staticmethod
    def rows_in(database, domain):
        sql = (f"SELECT (SELECT count(*) FROM popgate.tenants WHERE domain = '{domain}') + "
               f"(SELECT count(*) FROM popgate.users u JOIN popgate.tenants t USING (tenant_id) "
               f" WHERE t.domain = '{domain}') + "
               f"(SELECT count(*) FROM popgate.messages m JOIN popgate.tenants t USING (tenant_id) "
               f" WHERE t.domain = '{domain}')")
        return count(database, sql)

    def pop(self, domain):
        login, password = self.users[domain]
        host, port = self.gateway.listeners["pop3"]
        client = poplib.POP3(host, port, timeout=30)
        client.user(login)
        client.pass_(password)
        return client

    def test_1_admin_lmtp_and_pop3_each_in_its_cluster(self):
        # One message each through popgate-admin, one through LMTP in a
        # single transaction to all three tenants.
        for domain in self.users:
            login, _ = self.users[domain]
            run_admin(self.config, "deliver", login, "-", input=f"Subject: admin {domain}\n\nvia admin\n")
        rcpt, replies = lmtp_deliver(self.gateway, [self.users[d][0] for d in self.users],
                                     b"Subject: lmtp\r\n\r\nvia lmtp\r\n")
        self.assertTrue(all(r.startswith("250") for r in rcpt), rcpt)
        self.assertEqual(len(replies), 3)
        for reply in replies:
            self.assertTrue(reply.startswith("250 2.0.0 "), reply)

        # psql: every row of a tenant lives in its cluster only (tenant 1,
        # user 1, messages 2), and b's ids say nothing about the default's.
        self.assertEqual(self.where(self.dom_a), (4, 0))
        self.assertEqual(self.where(self.dom_a2), (4, 0))
        self.assertEqual(self.where(self.dom_b), (0, 4))

        for domain in self.users:
            client = self.pop(domain)
            try:
                self.assertEqual(client.stat()[0], 2, domain)
                first = b"\r\n".join(client.retr(1)[1]) + b"\r\n"
                second = b"\r\n".join(client.retr(2)[1]) + b"\r\n"
                self.assertEqual(first, crlf(f"Subject: admin {domain}\n\nvia admin\n"))
                self.assertIn(b"via lmtp", second)
            finally:
                client.quit()

    def test_2_admin_follows_the_map(self):
        login_b, _ = self.users[self.dom_b]
        _, out, _ = run_admin(self.config, "user", "list", self.dom_b)
        self.assertIn(login_b.split("@")[0], out)
        self.assertNotIn("== cluster", out)  # one tenant, one cluster
        run_admin(self.config, "maildrop", "stats", login_b)
        # The same command against the default cluster alone does not know b's tenant.
        rc = subprocess.run([admin_bin(), "--dsn", self.dsn_a, "user", "list", self.dom_b],
                            capture_output=True, timeout=60).returncode
        self.assertNotEqual(rc, 0)
        # Cluster-wide commands visit every cluster.
        rc, out, _ = run_admin(self.config, "migrate", "--check")
        self.assertEqual(rc, 0)
        self.assertIn("== cluster default ==", out)
        self.assertIn("== cluster b ==", out)
        # who: a session held on each cluster shows under that cluster.
        a, b = self.pop(self.dom_a), self.pop(self.dom_b)
        try:
            a.stat()
            b.stat()
            _, out, _ = run_admin(self.config, "who")
            part_a, part_b = out.split("== cluster b ==")
            self.assertIn(self.users[self.dom_a][0], part_a)
            self.assertIn(self.users[self.dom_b][0], part_b)
            self.assertNotIn(self.users[self.dom_b][0], part_a)
            self.assertNotIn(self.users[self.dom_a][0], part_b)
        finally:
            a.quit()
            b.quit()

    def test_3_metrics_and_readiness_name_the_clusters(self):
        wait_until(lambda: self.gateway.metric("popgate_pg_connections_up", cluster="b") > 0,
                   "connections to cluster b")
        self.assertGreater(self.gateway.metric("popgate_pg_connections_up", cluster="default"), 0)
        self.assertGreater(self.gateway.metric("popgate_pg_requests_total", cluster="b"), 0)
        self.assertEqual(self.gateway.http("/healthz/ready")[0], 200)

    def test_3b_tenant_certificate_in_cluster_b_is_served(self):
        port = self.gateway.port_of("pop3s")
        name = "pop." + self.dom_b
        self.assertEqual(common_name(port, name), "pop.example.test")  # the default
        chain, key = make_cert(self.work, [name], "b's own " + self.dom_b)
        run_admin(self.config, "tenant", "cert", "set", self.dom_b, "pop", "--chain", chain, "--key", key)
        self.assertEqual(count(self.dsn_b, "SELECT count(*) FROM popgate.tenant_certificates"), 1)
        self.assertEqual(count(self.dsn_a, "SELECT count(*) FROM popgate.tenant_certificates c "
                                           "JOIN popgate.tenants t USING (tenant_id) "
                                           f"WHERE t.domain = '{self.dom_b}'"), 0)
        wait_until(lambda: common_name(port, name) == "b's own " + self.dom_b,
                   "the certificate stored in cluster b served", bound=PICKUP_BOUND_S)

    def test_4_cluster_b_down_fails_only_its_tenants(self):
        subprocess.run(["runuser", "-u", "postgres", "--", f"{PGBIN}/pg_ctl", "-D", self.datadir_b,
                        "-m", "fast", "-w", "stop"] if os.geteuid() == 0 else
                       [f"{PGBIN}/pg_ctl", "-D", self.datadir_b, "-m", "fast", "-w", "stop"],
                       check=True, capture_output=True, timeout=120)
        login_b, password_b = self.users[self.dom_b]
        host, port = self.gateway.listeners["pop3"]
        client = poplib.POP3(host, port, timeout=60)
        try:
            client.user(login_b)
            with self.assertRaises(poplib.error_proto) as e:
                client.pass_(password_b)
            self.assertIn(b"[SYS/TEMP]", e.exception.args[0])
        finally:
            client.close()
        for domain in (self.dom_a, self.dom_a2):
            c = self.pop(domain)
            try:
                self.assertGreaterEqual(c.stat()[0], 1)
                self.assertIn(b"Subject:", b"\r\n".join(c.retr(1)[1]))
            finally:
                c.quit()
        # LMTP: b's recipient is deferred (4xx, the MTA retries), a's is
        # delivered in the same transaction.
        before = self.rows_in(self.dsn_a, self.dom_a)
        rcpt, replies = lmtp_deliver(self.gateway, [self.users[self.dom_b][0], self.users[self.dom_a][0]],
                                     b"Subject: while b is down\r\n\r\nstill here\r\n")
        self.assertTrue(rcpt[0].startswith("4"), rcpt)
        self.assertTrue(rcpt[1].startswith("250"), rcpt)
        self.assertEqual(len(replies), 1)
        self.assertTrue(replies[0].startswith("250 2.0.0 "), replies)
        self.assertEqual(self.rows_in(self.dsn_a, self.dom_a), before + 1)
        wait_until(lambda: "cluster b" in self.gateway.http("/healthz/ready")[1],
                   "readiness names cluster b")


class ClusterConfigTest(unittest.TestCase):
    def test_unknown_cluster_stops_startup_naming_the_key(self):
        with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
            f.write('[database]\ndsn = "host=x"\n[database.clusters.eu2]\ndsn = "host=y"\n'
                    '[database.tenants]\n"example.org" = "eu3"\n')
        run = subprocess.run([POPGATE_BIN, "--config", f.name, "--check-config"],
                             capture_output=True, text=True, timeout=60)
        os.unlink(f.name)
        self.assertEqual(run.returncode, 2)
        self.assertIn('database.tenants."example.org" = "eu3": no cluster of that name', run.stderr)


if __name__ == "__main__":
    unittest.main()
