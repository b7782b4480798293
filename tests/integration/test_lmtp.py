"""LMTP delivery (RFC 2033) on the real binary: swaks delivers, POP3 gives
back the same bytes; per-recipient replies; quotas answered with the right
codes; sizes and UIDLs fixed at ingest; a drop mid-DATA stores nothing; the
limits; and the counters Prometheus sees."""

import hashlib
import os
import poplib
import shutil
import socket
import subprocess
import tempfile
import unittest

from itest import Gateway, admin, dsn, new_tenant, new_user, psql, wait_until

SWAKS = shutil.which("swaks")
LISTENERS = ["name=pop3,address=127.0.0.1:0", "name=lmtp,address=127.0.0.1:0,protocol=lmtp"]


def swaks(gateway, to, body_file, sender="sender@example.org", extra=()):
    """swaks ends the data with CRLF "." CRLF itself: give it a file
    without the message's last CRLF (see write_for_swaks)."""
    host, port = gateway.listeners["lmtp"]
    run = subprocess.run([SWAKS, "--protocol", "LMTP", "--server", host, "--port", str(port),
                          "--from", sender, "--to", ",".join(to), "--data", f"@{body_file}",
                          "--suppress-data", *extra],
                         capture_output=True, timeout=120)
    return run.returncode, run.stdout.decode("utf-8", "replace")


def retrieve_all(gateway, login, password):
    host, port = gateway.listeners["pop3"]
    c = poplib.POP3(host, port, timeout=60)
    c.user(login)
    c.pass_(password)
    uidls = [line.split(b" ", 1)[1].decode() for line in c.uidl()[1]]
    sizes = [int(line.split(b" ")[1]) for line in c.list()[1]]
    bodies = []
    for i in range(1, len(uidls) + 1):
        lines = c.retr(i)[1]
        bodies.append(b"".join(line + b"\r\n" for line in lines))
    c.quit()
    return uidls, sizes, bodies


class Lmtp:
    """A raw LMTP conversation, for what swaks does not show."""

    def __init__(self, gateway):
        self.sock = socket.create_connection(gateway.listeners["lmtp"], timeout=30)
        self.f = self.sock.makefile("rb")
        self.greeting = self.reply()

    def reply(self):
        lines = []
        while True:
            line = self.f.readline()
            if not line:
                raise EOFError("closed")
            lines.append(line.rstrip(b"\r\n").decode())
            if len(line) < 4 or line[3:4] != b"-":
                return lines

    def cmd(self, text):
        self.sock.sendall(text.encode() + b"\r\n")
        return self.reply()[-1]

    def close(self):
        self.f.close()
        self.sock.close()


class LmtpDeliveryTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.domain = new_tenant()
        cls.gateway = Gateway(dsn(), listeners=LISTENERS, lmtp__return_path=False)
        cls.work = tempfile.mkdtemp(prefix="popgate-lmtp-")

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def write(self, name, data):
        """A file for swaks: the message without its final CRLF, which
        swaks adds before the terminating dot."""
        assert data.endswith(b"\r\n")
        path = os.path.join(self.work, name)
        with open(path, "wb") as f:
            f.write(data[:-2])
        return path

    @unittest.skipIf(SWAKS is None, "swaks is not installed (apt-get install swaks)")
    def test_swaks_delivery_then_pop3_gives_back_the_same_bytes(self):
        login, password = new_user(self.domain)
        # Lines that need dot-stuffing, 8-bit text, a long line, and a body of
        # about 3 MB: what goes in over LMTP is what comes out over POP3.
        lines = [b"From: sender@example.org", b"To: " + login.encode(), b"Subject: bytes",
                 "Content-Type: text/plain; charset=utf-8".encode(), b"",
                 b".starts with a dot", b"..two dots", b".", "Grüße, ünïcödé".encode(),
                 b"x" * 998]
        lines += [b"line %06d " % i + b"y" * 60 for i in range(40_000)]
        message = b"\r\n".join(lines) + b"\r\n"
        code, out = swaks(self.gateway, [login], self.write("big.eml", message))
        self.assertEqual(code, 0, out)
        self.assertRegex(out, r"<-  250 2\.0\.0 \S+ delivered")
        uidls, sizes, bodies = retrieve_all(self.gateway, login, password)
        self.assertEqual(len(bodies), 1)
        self.assertEqual(hashlib.sha256(bodies[0]).hexdigest(), hashlib.sha256(message).hexdigest())
        self.assertEqual(sizes[0], len(message), "LIST size is the stored size, fixed at ingest")
        stored = psql(f"SELECT m.uidl, m.size_bytes FROM popgate.messages m JOIN popgate.users u "
                      f"ON u.user_id = m.user_id AND u.tenant_id = m.tenant_id "
                      f"JOIN popgate.tenants t ON t.tenant_id = u.tenant_id "
                      f"WHERE t.domain = '{self.domain}' AND u.local_part = '{login.split('@')[0]}'")
        self.assertEqual(stored, f"{uidls[0]}|{len(message)}")
        self.assertIn(uidls[0], out, "the 250 reply names the UIDL")

    @unittest.skipIf(SWAKS is None, "swaks is not installed (apt-get install swaks)")
    def test_per_recipient_replies(self):
        a, pa = new_user(self.domain)
        b, pb = new_user(self.domain)
        missing = f"nobody-{os.getpid()}@{self.domain}"
        message = b"Subject: fan-out\r\n\r\nto two users\r\n"
        code, out = swaks(self.gateway, [a, missing, b], self.write("fan.eml", message))
        self.assertIn(f"550 5.1.1 <{missing}>", out)
        # One 250 per accepted recipient after the dot (RFC 2033 4.2).
        self.assertEqual(len([l for l in out.splitlines() if l.startswith("<-  250 2.0.0")]), 2, out)
        for login, password in ((a, pa), (b, pb)):
            _, _, bodies = retrieve_all(self.gateway, login, password)
            self.assertEqual(bodies, [message])

    def test_quota_is_enforced_per_recipient(self):
        full, pfull = new_user(self.domain)
        roomy, proomy = new_user(self.domain)
        admin("user", "quota", full, "1K")
        l = Lmtp(self.gateway)
        try:
            self.assertTrue(l.cmd("LHLO test").startswith("250"))
            self.assertTrue(l.cmd("MAIL FROM:<s@example.org>").startswith("250"))
            self.assertTrue(l.cmd(f"RCPT TO:<{full}>").startswith("250"))
            self.assertTrue(l.cmd(f"RCPT TO:<{roomy}>").startswith("250"))
            self.assertTrue(l.cmd("DATA").startswith("354"))
            l.sock.sendall(b"Subject: big\r\n\r\n" + (b"z" * 70 + b"\r\n") * 60 + b".\r\n")
            first, second = l.reply()[-1], l.reply()[-1]
            self.assertTrue(first.startswith("552 5.2.2"), first)
            self.assertTrue(second.startswith("250 2.0.0"), second)
            self.assertTrue(l.cmd("QUIT").startswith("221"))
        finally:
            l.close()
        self.assertEqual(retrieve_all(self.gateway, full, pfull)[2], [])
        self.assertEqual(len(retrieve_all(self.gateway, roomy, proomy)[2]), 1)

    def test_a_drop_mid_data_stores_nothing(self):
        login, password = new_user(self.domain)
        l = Lmtp(self.gateway)
        l.cmd("LHLO test")
        l.cmd("MAIL FROM:<s@example.org>")
        l.cmd(f"RCPT TO:<{login}>")
        self.assertTrue(l.cmd("DATA").startswith("354"))
        l.sock.sendall(b"Subject: cut\r\n\r\nhalf a message")
        l.close()
        wait_until(lambda: self.gateway.metric("popgate_connections", state="lmtp") == 0,
                   "the LMTP connection to be gone")
        self.assertEqual(retrieve_all(self.gateway, login, password)[2], [])

    def test_errors_are_answered_with_codes(self):
        l = Lmtp(self.gateway)
        try:
            self.assertTrue(l.greeting[-1].startswith("220 "))
            self.assertTrue(l.cmd("HELO x").startswith("500 5.5.1"))
            self.assertTrue(l.cmd("MAIL FROM:<s@example.org>").startswith("503"))
            l.cmd("LHLO test")
            self.assertTrue(l.cmd("RCPT TO:<a@b>").startswith("503"))
            self.assertTrue(l.cmd("MAIL FROM:<s@example.org> SIZE=99999999999").startswith("552 5.3.4"))
            self.assertTrue(l.cmd("MAIL FROM:<s@example.org>").startswith("250"))
            self.assertTrue(l.cmd("RCPT TO:<not an address>").startswith("501"))
            self.assertTrue(l.cmd("DATA").startswith("503"))  # no recipient yet
            self.assertTrue(l.cmd("X" * 600).startswith("500 5.5.2"))
            self.assertTrue(l.cmd("QUIT").startswith("221"))
        finally:
            l.close()

    def test_counters(self):
        login, _ = new_user(self.domain)
        before = self.gateway.metric("popgate_lmtp_deliveries_total", result="delivered")
        l = Lmtp(self.gateway)
        l.cmd("LHLO test")
        l.cmd("MAIL FROM:<>")
        l.cmd(f"RCPT TO:<{login}>")
        l.cmd("DATA")
        l.sock.sendall(b"Subject: count\r\n\r\nx\r\n.\r\n")
        self.assertTrue(l.reply()[-1].startswith("250"))
        l.cmd("QUIT")
        l.close()
        self.assertEqual(self.gateway.metric("popgate_lmtp_deliveries_total", result="delivered"), before + 1)
        ends = [x for x in self.gateway.log_lines() if x.get("msg") == "lmtp_session_end"]
        self.assertTrue(any(e["delivered"] == 1 and e["end"] == "quit" for e in ends))


class ReturnPathTest(unittest.TestCase):

    def test_return_path_is_prepended(self):
        domain = new_tenant()
        login, password = new_user(domain)
        gateway = Gateway(dsn(), listeners=LISTENERS)  # lmtp.return_path defaults to true
        try:
            l = Lmtp(gateway)
            l.cmd("LHLO test")
            l.cmd("MAIL FROM:<bounce@example.org>")
            l.cmd(f"RCPT TO:<{login}>")
            l.cmd("DATA")
            l.sock.sendall(b"Subject: rp\r\n\r\nbody\r\n.\r\n")
            self.assertTrue(l.reply()[-1].startswith("250"))
            l.cmd("QUIT")
            l.close()
            _, _, bodies = retrieve_all(gateway, login, password)
            self.assertEqual(bodies, [b"Return-Path: <bounce@example.org>\r\nSubject: rp\r\n\r\nbody\r\n"])
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
