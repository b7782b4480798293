"""Tenant isolation through every path a name travels: POP3 logins (USER,
APOP, SASL PLAIN with an authzid), LMTP recipients and the admin tool. Two
tenants have users with the same local part and the same password; neither
can ever read, list or delete the other's mail. Names made of SQL
metacharacters, LIKE wildcards, quotes, backslashes and 1,000 octets are
refused cleanly: a plain -ERR, 550 or exit 1, never a match, never a crash.

Behind all of that, PostgreSQL's row-level security (migration 0006): a
session that declared no tenant sees and writes no row of the tenant tables,
one that declared tenant A sees only A's, and popgate's role cannot skip the
rules (RowLevelSecurityTest)."""

import base64
import poplib
import socket
import unittest

from itest import Conversation, Gateway, admin, deliver, dsn, messages_of, new_tenant, psql
from popgate_testlib import AdminError

PASSWORD = "same-password-in-both"
HOSTILE = ["%", "_", "%@%", "*", "' OR '1'='1", "x' OR 1=1 --", "\\", "\\%", "a\\_b", '"quoted"',
           "a;DROP TABLE popgate.messages;--", "x" * 1000, "%' UNION SELECT body FROM popgate.messages --"]


class IsolationTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.a, cls.b = new_tenant(), new_tenant()
        for domain in (cls.a, cls.b):
            admin("user", "add", f"shared@{domain}", "--password-stdin", input=PASSWORD + "\n")
            admin("user", "apop", f"shared@{domain}", "--secret", "apop-" + PASSWORD)
        cls.mail = {d: b"Subject: for %s\r\n\r\nonly for %s\r\n" % (d.encode(), d.encode()) for d in (cls.a, cls.b)}
        for d, m in cls.mail.items():
            deliver(f"shared@{d}", m)
        cls.gateway = Gateway(dsn(), listeners=["name=pop3,address=127.0.0.1:0,apop=true",
                                                "name=lmtp,address=127.0.0.1:0,protocol=lmtp"],
                              auth__mechanisms="USER APOP PLAIN LOGIN SCRAM-SHA-256")

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()

    def pop(self):
        host, port = self.gateway.listeners["pop3"]
        return poplib.POP3(host, port, timeout=30)

    def assert_intact(self):
        for d, m in self.mail.items():
            self.assertEqual(len(messages_of(f"shared@{d}")), 1, d)

    def test_each_login_sees_only_its_own_tenant(self):
        for d in (self.a, self.b):
            c = self.pop()
            c.user(f"shared@{d}")
            c.pass_(PASSWORD)
            self.assertEqual(b"\r\n".join(c.retr(1)[1]) + b"\r\n", self.mail[d])
            self.assertEqual(c.stat()[0], 1)
            c.rset()
            c.quit()
        # Case and surrounding spaces do not cross tenants either.
        c = self.pop()
        c.user(f"SHARED@{self.a.upper()}")
        c.pass_(PASSWORD)
        self.assertEqual(b"\r\n".join(c.retr(1)[1]) + b"\r\n", self.mail[self.a])
        c.quit()

    def test_dele_in_one_tenant_never_touches_the_other(self):
        domain = new_tenant()
        other = new_tenant()
        for d in (domain, other):
            admin("user", "add", f"x@{d}", "--password-stdin", input=PASSWORD + "\n")
            deliver(f"x@{d}", b"Subject: keep\r\n\r\nkeep\r\n")
        c = self.pop()
        c.user(f"x@{domain}")
        c.pass_(PASSWORD)
        c.dele(1)
        c.quit()
        self.assertEqual(len(messages_of(f"x@{domain}")), 0)
        self.assertEqual(len(messages_of(f"x@{other}")), 1)

    def test_hostile_login_names_are_refused_cleanly(self):
        for name in HOSTILE + [f"{h}@{self.a}" for h in HOSTILE] + [f"shared@{h}" for h in HOSTILE]:
            conv = Conversation(self.gateway)
            reply = conv.command("USER " + name)
            if reply.startswith(b"+OK"):
                reply = conv.command("PASS " + PASSWORD)
            self.assertTrue(reply.startswith(b"-ERR"), (name, reply))
            self.assertNotIn(b"SYS/", reply, name)  # a refusal, not a server failure
            conv.command("QUIT")
            conv.close()
        self.assert_intact()
        self.assertEqual(self.gateway.metric("popgate_pg_errors_total", **{"class": "permanent"}), 0)

    def test_sasl_authzid_cannot_name_another_tenant(self):
        for authzid in (f"shared@{self.b}", "%", f"%@{self.b}"):
            msg = base64.b64encode(f"{authzid}\0shared@{self.a}\0{PASSWORD}".encode()).decode()
            conv = Conversation(self.gateway)
            reply = conv.command("AUTH PLAIN " + msg)
            self.assertTrue(reply.startswith(b"-ERR [AUTH]"), reply)
            conv.command("QUIT")
            conv.close()

    def test_apop_with_one_tenants_secret_fails_for_the_other(self):
        c = self.pop()
        with self.assertRaises(poplib.error_proto):
            # B's user with A's secret would only work if the secrets were
            # looked up across tenants; they are equal here on purpose, so
            # use a wrong one to prove the lookup is by exact name.
            c.apop(f"shared@{self.b}", "apop-not-it")
        c.quit()
        c = self.pop()
        c.apop(f"shared@{self.b}", "apop-" + PASSWORD)
        self.assertEqual(b"\r\n".join(c.retr(1)[1]) + b"\r\n", self.mail[self.b])
        c.quit()

    def lmtp(self, rcpts):
        sock = socket.create_connection(self.gateway.listeners["lmtp"], timeout=30)
        f = sock.makefile("rb")

        def reply():
            while True:
                line = f.readline().decode()
                if line[3:4] != "-":
                    return line.strip()

        def cmd(text):
            sock.sendall(text.encode() + b"\r\n")
            return reply()
        reply()
        cmd("LHLO test")
        cmd("MAIL FROM:<s@example.org>")
        answers = [cmd(f"RCPT TO:<{r}>") for r in rcpts]
        cmd("QUIT")
        sock.close()
        return answers

    def test_lmtp_recipients_resolve_exactly(self):
        answers = self.lmtp([f"%@{self.a}", f"_hared@{self.a}", f"shared@%", "' OR 1=1 --@x.test",
                             "x" * 300 + f"@{self.a}", f"shared@{self.b}"])
        for a in answers[:4]:
            self.assertTrue(a.startswith("550") or a.startswith("501") or a.startswith("553"), a)
        self.assertTrue(answers[4][0] == "5", answers[4])
        self.assertTrue(answers[5].startswith("250"), answers[5])
        self.assert_intact()

    def test_admin_commands_follow_exact_names(self):
        for name in [f"%@{self.a}", f"_hared@{self.a}", "shared@%", f"shar%@{self.a}"]:
            with self.assertRaises(AdminError) as e:
                admin("maildrop", "list", name)
            self.assertEqual(e.exception.result.returncode, 1, e.exception.result.stderr)
            with self.assertRaises(AdminError):
                admin("deliver", name, "-", input=b"Subject: x\r\n\r\nx\r\n")
        listing = admin("maildrop", "list", f"shared@{self.a}").stdout
        self.assertNotIn(self.b, listing)
        for name in ['quo"te', "back\\slash", "semi;colon", "x" * 1000]:
            with self.assertRaises(AdminError) as e:
                admin("user", "add", f"{name}@{self.a}", "--password-stdin", input="pw\n")
            self.assertEqual(e.exception.result.returncode, 1)
            self.assertNotIn("database error", e.exception.result.stderr)
        self.assert_intact()
        self.assertEqual(psql(f"SELECT count(*) FROM popgate.users u JOIN popgate.tenants t USING (tenant_id) "
                              f"WHERE t.domain = '{self.a}'"), "1")


TENANT_TABLES = ("users", "messages", "maildrop_locks", "tenant_certificates")


class RowLevelSecurityTest(unittest.TestCase):
    """Defence in depth: the database itself keeps tenants apart, whatever a
    statement forgets to say."""

    @classmethod
    def setUpClass(cls):
        cls.a, cls.b = new_tenant(), new_tenant()
        for d in (cls.a, cls.b):
            admin("user", "add", f"rls@{d}", "--password-stdin", input=PASSWORD + "\n")
            deliver(f"rls@{d}", b"Subject: rls\r\n\r\nfor " + d.encode() + b"\r\n")
        cls.ids = {d: psql(f"SELECT tenant_id FROM popgate.tenants WHERE domain = '{d}'")
                   for d in (cls.a, cls.b)}

    def as_tenant(self, domain, sql):
        """`sql` in a session that declared `domain`'s tenant only."""
        return psql(sql, all_tenants=False, tenant_id=self.ids[domain])

    def test_the_rules_bind_popgates_own_role(self):
        self.assertEqual(psql("SELECT rolsuper OR rolbypassrls FROM pg_roles"
                              " WHERE rolname = current_user"), "f")
        flags = psql("SELECT string_agg(relname || ':' || relrowsecurity || relforcerowsecurity,"
                     " ' ' ORDER BY relname) FROM pg_class WHERE relnamespace = 'popgate'::regnamespace"
                     " AND relname IN ('users', 'messages', 'maildrop_locks', 'tenant_certificates')")
        self.assertEqual(flags, "maildrop_locks:truetrue messages:truetrue "
                                "tenant_certificates:truetrue users:truetrue")

    def test_a_query_without_the_tenant_setting_returns_nothing(self):
        # The rows are there for an operator who says "all tenants" ...
        self.assertGreaterEqual(int(psql("SELECT count(*) FROM popgate.messages")), 2)
        self.assertGreaterEqual(int(psql("SELECT count(*) FROM popgate.users")), 2)
        # ... and invisible to a session that says nothing, even when it
        # names the tenant in its WHERE.
        for table in TENANT_TABLES:
            with self.subTest(table=table):
                self.assertEqual(psql(f"SELECT count(*) FROM popgate.{table}", all_tenants=False),
                                 "0")
                self.assertEqual(psql(f"SELECT count(*) FROM popgate.{table}"
                                      f" WHERE tenant_id = {self.ids[self.a]}", all_tenants=False),
                                 "0")
        # Nor can it change or remove any.
        self.assertEqual(psql("WITH d AS (DELETE FROM popgate.messages RETURNING 1)"
                              " SELECT count(*) FROM d", all_tenants=False), "0")
        self.assertEqual(psql("WITH u AS (UPDATE popgate.users SET enabled = false RETURNING 1)"
                              " SELECT count(*) FROM u", all_tenants=False), "0")
        self.assertEqual(psql("SELECT count(*) FROM popgate.users u JOIN popgate.tenants t"
                              f" USING (tenant_id) WHERE t.domain IN ('{self.a}', '{self.b}')"
                              " AND u.enabled"), "2")

    def test_a_tenants_transaction_sees_only_its_own_rows(self):
        rows = self.as_tenant(self.a, "SELECT string_agg(DISTINCT tenant_id::text, ',')"
                                      " FROM popgate.messages")
        self.assertEqual(rows, self.ids[self.a])
        body = self.as_tenant(self.a, "SELECT convert_from(body, 'UTF8') FROM popgate.messages"
                                      f" WHERE tenant_id = {self.ids[self.b]}")
        self.assertEqual(body, "")
        gone = self.as_tenant(self.a, "WITH d AS (DELETE FROM popgate.messages"
                                      f" WHERE tenant_id = {self.ids[self.b]} RETURNING 1)"
                                      " SELECT count(*) FROM d")
        self.assertEqual(gone, "0")

    def test_writing_into_another_tenant_is_refused(self):
        user_b = psql(f"SELECT user_id FROM popgate.users WHERE tenant_id = {self.ids[self.b]}")
        with self.assertRaises(AssertionError) as raised:
            self.as_tenant(self.a, "INSERT INTO popgate.messages (tenant_id, user_id, uidl,"
                                   " size_bytes, body) VALUES"
                                   f" ({self.ids[self.b]}, {user_b}, 'rls-x', 1, 'x')")
        self.assertIn("row-level security", str(raised.exception))
        self.assertEqual(psql("SELECT count(*) FROM popgate.messages WHERE uidl = 'rls-x'"), "0")

    def test_the_gateway_serves_each_tenant_under_the_rules(self):
        gateway = Gateway(dsn())
        try:
            for d in (self.a, self.b):
                client = poplib.POP3(gateway.host, gateway.port, timeout=20)
                client.user(f"rls@{d}")
                client.pass_(PASSWORD)
                self.assertEqual(client.stat()[0], 1)
                lines = client.retr(1)[1]
                self.assertEqual(lines[-1], b"for " + d.encode())
                client.quit()
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
