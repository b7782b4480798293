"""The log an operator reads: one session_end summary per session with the
fields the runbook names, the UIDL-change detector, and no secret anywhere
(passwords, SASL responses, APOP digests, message text), even at debug."""

import base64
import hashlib
import poplib
import socket
import unittest

from itest import Conversation, Gateway, admin, deliver, dsn, new_tenant, new_user, psql, wait_until


class SecretsTest(unittest.TestCase):

    def test_no_secret_reaches_the_log(self):
        domain = new_tenant()
        password = "Pw-SECRET-7f3a9c"
        login, _ = new_user(domain, password=password)
        apop_secret = "Apop-SECRET-51d2e8"
        admin("user", "apop", login, "--secret", apop_secret)
        body_marker = b"BODY-SECRET-0c4e77"
        deliver(login, b"Subject: private\r\n\r\n" + body_marker + b"\r\n")
        wrong = "Wrong-SECRET-93b1aa"
        gateway = Gateway(dsn(), log_level="debug",
                          listeners=["name=pop3,address=127.0.0.1:0,apop=true"],
                          auth__mechanisms="USER APOP PLAIN LOGIN SCRAM-SHA-256")
        try:
            host, port = gateway.host, gateway.port
            # USER/PASS, wrong then right.
            c = poplib.POP3(host, port, timeout=30)
            c.user(login)
            with self.assertRaises(poplib.error_proto):
                c.pass_(wrong)
            c.user(login)
            c.pass_(password)
            self.assertIn(body_marker, b"\r\n".join(c.retr(1)[1]))
            c.quit()
            # AUTH PLAIN with an initial response, and AUTH LOGIN.
            plain = base64.b64encode(b"\0" + login.encode() + b"\0" + password.encode()).decode()
            conv = Conversation(gateway)
            self.assertTrue(conv.command(f"AUTH PLAIN {plain}").startswith(b"+OK"))
            conv.command("QUIT")
            conv.close()
            conv = Conversation(gateway)
            conv.command("AUTH LOGIN")
            conv.command(base64.b64encode(login.encode()).decode())
            self.assertTrue(conv.command(base64.b64encode(password.encode()).decode()).startswith(b"+OK"))
            conv.command("QUIT")
            conv.close()
            # APOP: the digest is as good as the secret for a replay.
            c = poplib.POP3(host, port, timeout=30)
            digest = hashlib.md5(c.timestamp.search(c.getwelcome()).group(1) + apop_secret.encode()).hexdigest()
            c.apop(login, apop_secret)
            c.quit()
            gateway.stop()
            text = gateway.log_text()
            for secret in (password, wrong, apop_secret, digest, plain,
                           base64.b64encode(password.encode()).decode(), body_marker.decode()):
                self.assertNotIn(secret, text)
            self.assertIn('"level":"debug"', text)  # the debug level was really on
            self.assertIn(login, text)  # the user is logged; only secrets are not
        finally:
            gateway.kill()


class SummaryTest(unittest.TestCase):

    def test_session_end_has_the_summary_fields(self):
        domain = new_tenant()
        login, password = new_user(domain)
        for i in range(3):
            deliver(login, b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))
        gateway = Gateway(dsn())
        try:
            sock = socket.create_connection((gateway.host, gateway.port), timeout=30)
            local_port = sock.getsockname()[1]
            sock.close()  # a connection that only says hello: ends as peer_closed
            c = poplib.POP3(gateway.host, gateway.port, timeout=30)
            client_port = c.sock.getsockname()[1]
            c.user(login)
            c.pass_(password)
            c.retr(1)
            c.top(2, 0)
            c.dele(3)
            c.quit()

            def ends():
                return [l for l in gateway.log_lines() if l.get("msg") == "session_end"]
            wait_until(lambda: len(ends()) == 2, "two session_end lines")
            by_peer = {e["peer"]: e for e in ends()}
            s = by_peer[f"127.0.0.1:{client_port}"]
            self.assertEqual(s["domain"], domain)
            self.assertEqual(s["user"], login)
            self.assertEqual(s["tls"], "none")
            self.assertEqual(s["mechanism"], "USER")
            self.assertEqual(s["end"], "quit")
            self.assertEqual((s["retr"], s["top"], s["dele"]), (1, 1, 1))
            self.assertEqual(s["retr_bytes"], len(b"Subject: 0\r\n\r\nbody 0\r\n"))
            self.assertEqual(s["commands"], 6)  # USER PASS RETR TOP DELE QUIT
            self.assertGreaterEqual(s["duration_ms"], 0)
            self.assertGreater(s["bytes_out"], 0)
            self.assertEqual(by_peer[f"127.0.0.1:{local_port}"]["end"], "peer_closed")
        finally:
            gateway.stop()


class UidlChangeTest(unittest.TestCase):

    def test_a_maildrop_whose_uidls_all_changed_is_reported(self):
        domain = new_tenant()
        login, password = new_user(domain)
        for i in range(3):
            deliver(login, b"Subject: %d\r\n\r\nx\r\n" % i)
        gateway = Gateway(dsn())
        try:
            def session():
                c = poplib.POP3(gateway.host, gateway.port, timeout=30)
                c.user(login)
                c.pass_(password)
                c.uidl()
                c.quit()
            session()  # leaves its newest UIDLs behind
            new_mail = deliver(login, b"Subject: new\r\n\r\nnew\r\n")
            session()  # new mail on top of the old: not a change of UIDL set
            self.assertEqual(gateway.metric("popgate_uidl_set_changed_total"), 0)
            # A botched restore: every message comes back under a new UIDL.
            local = login.split("@")[0]
            psql("UPDATE popgate.messages m SET uidl = 'restored-' || m.message_id FROM popgate.users u "
                 "JOIN popgate.tenants t USING (tenant_id) WHERE m.tenant_id = u.tenant_id AND "
                 f"m.user_id = u.user_id AND t.domain = '{domain}' AND u.local_part = '{local}'")
            session()
            self.assertEqual(gateway.metric("popgate_uidl_set_changed_total"), 1)
            warned = [l for l in gateway.log_lines() if l.get("msg") == "uidl_set_changed"]
            self.assertEqual(len(warned), 1)
            self.assertEqual(warned[0]["user"], login)
            self.assertEqual(warned[0]["messages"], 4)
            self.assertTrue(new_mail["uidl"])
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
