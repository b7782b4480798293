"""Abuse limits and tenant policy on the real binary, each answered with its
code: connections per address, the growing delay after failed logins and
the cut-off of an address that keeps failing, sessions per user and per
tenant, logins per tenant per minute, LOGIN-DELAY, require-TLS, allowed
login methods, and EXPIRE in CAPA. Delays are checked as lower bounds
only (the server waited at least this long), never as upper bounds."""

import os
import poplib
import socket
import ssl
import time
import unittest

from itest import Conversation, Gateway, admin, deliver, dsn, new_tenant, new_user

CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")
BODY = b"Subject: limits\r\n\r\nbody\r\n"


def connect_from(source_ip, port, timeout=30):
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


class Line:
    def __init__(self, sock):
        self.sock, self.f = sock, sock.makefile("rb")

    def read(self):
        return self.f.readline().rstrip(b"\r\n")

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.read()


class AddressLimitsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.domain = new_tenant()
        cls.login, cls.password = new_user(cls.domain)
        cls.gateway = Gateway(dsn(),
                              limits__connections_per_address_max=3,
                              limits__failure_delay_initial_ms=400,
                              limits__failure_delay_max_ms=1600,
                              limits__failures_per_address_max=4)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()

    def test_connections_per_address(self):
        held = [Line(connect_from("127.0.1.1", self.gateway.port)) for _ in range(3)]
        for h in held:
            self.assertTrue(h.read().startswith(b"+OK"))
        extra = Line(connect_from("127.0.1.1", self.gateway.port))
        self.assertEqual(extra.read(), b"-ERR [SYS/TEMP] too many connections from your address")
        self.assertEqual(extra.read(), b"")  # and closed
        self.assertTrue(Line(connect_from("127.0.1.2", self.gateway.port)).read().startswith(b"+OK"))
        for h in held:
            h.sock.close()

    def test_failure_delay_grows_then_the_address_is_cut_off(self):
        line = Line(connect_from("127.0.1.3", self.gateway.port))
        line.read()
        waited = []
        for attempt in range(3):  # 3 failures end a session
            line.cmd(f"USER {self.login}")
            start = time.monotonic()
            reply = line.cmd("PASS wrong")
            waited.append(time.monotonic() - start)
            self.assertTrue(reply.startswith(b"-ERR [AUTH] invalid user name or password"), reply)
        # 400, 800, 1600 ms: each at least as long as the table said.
        for got, want in zip(waited, (0.4, 0.8, 1.6)):
            self.assertGreaterEqual(got, want * 0.95)
        # The fourth failure from this address (a new connection) cuts it off.
        line = Line(connect_from("127.0.1.3", self.gateway.port))
        line.read()
        line.cmd(f"USER {self.login}")
        self.assertEqual(line.cmd("PASS wrong"),
                         b"-ERR [AUTH] invalid user name or password; closing connection")
        self.assertEqual(line.read(), b"")
        # Another address is unaffected: no delay, and it logs in.
        other = poplib.POP3(*("127.0.0.1", self.gateway.port), timeout=30)
        other.user(self.login)
        self.assertTrue(other.pass_(self.password).startswith(b"+OK"))
        other.quit()


class SessionLimitsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.gateway = Gateway(dsn(), limits__sessions_per_user_max=1)

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()

    def pop(self, login, password):
        client = poplib.POP3("127.0.0.1", self.gateway.port, timeout=30)
        client.user(login)
        client.pass_(password)
        return client

    def refused(self, login, password):
        client = poplib.POP3("127.0.0.1", self.gateway.port, timeout=30)
        client.user(login)
        with self.assertRaises(poplib.error_proto) as err:
            client.pass_(password)
        client.quit()
        return err.exception.args[0]

    def test_sessions_per_user(self):
        domain = new_tenant()
        login, password = new_user(domain)
        first = self.pop(login, password)
        self.assertEqual(self.refused(login, password), b"-ERR [IN-USE] too many sessions for this user")
        first.quit()
        self.pop(login, password).quit()

    def test_sessions_per_tenant_from_its_policy(self):
        domain = new_tenant()
        admin("tenant", "set", domain, "--sessions-max", "1")
        a, pa = new_user(domain)
        b, pb = new_user(domain)
        first = self.pop(a, pa)
        self.assertEqual(self.refused(b, pb), b"-ERR [SYS/TEMP] too many sessions for this domain; try again later")
        first.quit()
        self.pop(b, pb).quit()

    def test_logins_per_tenant_per_minute(self):
        domain = new_tenant()
        admin("tenant", "set", domain, "--logins-per-minute", "6")  # a burst of 1
        login, password = new_user(domain)
        self.pop(login, password).quit()
        self.assertEqual(self.refused(login, password),
                         b"-ERR [SYS/TEMP] too many logins for this domain; try again later")

    def test_login_delay(self):
        domain = new_tenant()
        admin("tenant", "set", domain, "--login-delay", "60", "--expire-days", "30")
        login, password = new_user(domain)
        client = self.pop(login, password)
        capa = client.capa()
        self.assertEqual(capa["LOGIN-DELAY"], ["60"])
        self.assertEqual(capa["EXPIRE"], ["30"])
        client.quit()
        self.assertEqual(self.refused(login, password),
                         b"-ERR [LOGIN-DELAY] minimum time between logins is 60 seconds")

    def test_allowed_login_methods(self):
        domain = new_tenant()
        admin("tenant", "set", domain, "--mechanisms", "SCRAM-SHA-256")
        login, password = new_user(domain)
        self.assertEqual(self.refused(login, password),
                         b"-ERR [AUTH] this login method is not allowed for this domain")

    def test_require_tls(self):
        if not CERTS:
            raise unittest.SkipTest("POPGATE_TEST_CERT_DIR is not set (run through ctest)")
        domain = new_tenant()
        admin("tenant", "set", domain, "--require-tls", "yes")
        login, password = new_user(domain)
        gateway = Gateway(dsn(), listeners=["name=pop3,address=127.0.0.1:0"],
                          tls__certificates=f"{CERTS}/pop-ecdsa.crt:{CERTS}/pop-ecdsa.key")
        try:
            client = poplib.POP3("127.0.0.1", gateway.port, timeout=30)
            client.user(login)
            with self.assertRaises(poplib.error_proto) as err:
                client.pass_(password)
            self.assertEqual(err.exception.args[0],
                             b"-ERR [AUTH] this domain requires TLS; use STLS or the TLS port")
            ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
            ctx.check_hostname = False
            client.stls(context=ctx)
            client.user(login)
            self.assertTrue(client.pass_(password).startswith(b"+OK"))
            client.quit()
        finally:
            gateway.stop()


class ResponseCodesTest(unittest.TestCase):
    """RESP-CODES is advertised: the codes are really sent."""

    def test_codes(self):
        gateway = Gateway(dsn())
        try:
            domain = new_tenant()
            login, password = new_user(domain)
            conv = Conversation(gateway)
            conv.command(f"USER {login}")
            self.assertEqual(conv.command("PASS nope"), b"-ERR [AUTH] invalid user name or password")
            self.assertEqual(conv.command("USER jürgen@example.test"),
                             b"-ERR [UTF8] UTF-8 user names need the UTF8 command first")
            conv.command(f"USER {login}")
            self.assertTrue(conv.command(f"PASS {password}").startswith(b"+OK"))
            other = Conversation(gateway)
            other.command(f"USER {login}")
            self.assertEqual(other.command(f"PASS {password}"),
                             b"-ERR [IN-USE] maildrop is locked by another session")
            conv.command("QUIT")
            other.command("QUIT")
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
