"""Hostile input against the real binary and the real PostgreSQL (issue 6,
item 4). Every test ends with the same proof (HostileInputTest.assert_healthy):
a health login succeeds and every maildrop of the class is byte-for-byte
what was delivered, both in the database and through RETR. In between,
each test proves that the input got the right -ERR (with its response code
where one fits), that the counter on /metrics for it went up, and that
abuse (floods, the tenth bad command, an address that keeps failing, a
broken PROXY header) ends with the connection closed.

- 1 MiB without a line end, before login, after login and inside a SASL
  exchange: -ERR line too long, closed, input_flood counted, no UPDATE.
- NUL octets in commands, arguments and SASL responses; ten of them close.
- Invalid UTF-8 in user names and passwords, with and without UTF8 ([UTF8]),
  and inside AUTH PLAIN.
- 10,000-octet arguments to every command, in both states, and in SASL.
- 1,000 wrong passwords from one address (given by PROXY headers from a
  trusted 127.0.0.1): the per-address delay and cut-off engage and count,
  while another address behind the same proxy logs in undelayed; and
  failed logins on more connections than sessions_per_user_max (or the
  tenant's --sessions-max), kept open, do not lock the user (or the tenant's
  users) out.
- Malformed SASL: bad base64, oversized lines, wrong PLAIN field counts,
  SCRAM garbage at both steps.
- Malformed PROXY v1 and v2 headers, one per parser error: closed without a
  greeting, each counted under its own error label.

test_robustness.py (garbage of every kind, 1 MiB reply text), test_proxy.py
(four malformed headers, untrusted peers, timeouts) and test_limits.py (the
delay schedule and cut-off with 4 failures) cover the basics; this file adds
the counters, the intact-maildrop proof and the scale."""

import base64
import hashlib
import secrets
import socket
import struct
import threading
import time
import unittest

from itest import Gateway, admin, dsn, lock_count, new_tenant, wait_until
from private_pg import LineClient, Maildrop, connect_from

# What the maildrops hold: stuffing, 8-bit text, a message larger than one
# body chunk (session.body_chunk_bytes, 256 KiB), several messages.
BODIES = [
    [b"Subject: one\r\n\r\n.starts with a dot\r\n..two dots\r\nend\r\n"],
    [b"Subject: =?utf-8?q?8bit?=\r\n\r\n" + "Grüße, ñ, 日本語\r\n".encode() + bytes(range(0x80, 0x100)) + b"\r\n",
     b"Subject: second\r\n\r\nsecond\r\n"],
    [b"Subject: large\r\n\r\n" + b"".join(b"%06d " % i + b"y" * 90 + b"\r\n" for i in range(4000))],
]
PROXY_SIG = b"\r\n\r\n\x00\r\nQUIT\n"
# The throttle, configured small so 1,000 failures fit in CI time.
DELAY_INITIAL_MS, DELAY_MAX_MS, FAILURES_PER_ADDRESS_MAX = 20, 80, 20
# Above the 32 attacking connections of the 1,000-password test, whose
# checks in flight each hold one of the user's session slots for a moment.
SESSIONS_PER_USER_MAX = 40
# A normal login must finish within this while an address is being
# throttled: a generous "no stall" bound, not a speed figure.
NO_STALL_S = 5.0


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def proxy_v1(source, port=40000):
    return f"PROXY TCP4 {source} 192.0.2.1 {port} 110\r\n".encode()


def proxy_v2(family_protocol=0x11, command=0x21, body=None):
    if body is None:
        body = socket.inet_aton("192.0.2.10") + socket.inet_aton("192.0.2.1") + struct.pack("!HH", 4000, 110)
    return PROXY_SIG + bytes([command, family_protocol]) + struct.pack("!H", len(body)) + body


def v2_with_tlvs(tlvs):
    addresses = socket.inet_aton("192.0.2.10") + socket.inet_aton("192.0.2.1") + struct.pack("!HH", 4000, 110)
    return proxy_v2(body=addresses + tlvs)


def tlv(kind, value):
    return bytes([kind]) + struct.pack("!H", len(value)) + value


class HostileInputTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.domain = new_tenant()
        cls.maildrops = [Maildrop(cls.domain, bodies) for bodies in BODIES]
        # The target of the 1,000 wrong passwords has an imported {SSHA256}
        # hash (a Dovecot scheme popgate verifies as is): cheap to check, so
        # the test measures the throttle, not 1,000 argon2id runs.
        password = secrets.token_urlsafe(12)
        salt = secrets.token_bytes(8)
        ssha = "{SSHA256}" + b64(hashlib.sha256(password.encode() + salt).digest() + salt)
        cls.victim = Maildrop(cls.domain, [b"Subject: target\r\n\r\nstill here\r\n"], password=password,
                              hash_=ssha)
        cls.maildrops.append(cls.victim)
        cls.gateway = Gateway(
            dsn(),
            listeners=["name=pop3,address=127.0.0.1:0",
                       "name=lb,address=127.0.0.1:0,proxy_protocol=true,trusted_proxies=127.0.0.1"],
            limits__failure_delay_initial_ms=DELAY_INITIAL_MS,
            limits__failure_delay_max_ms=DELAY_MAX_MS,
            limits__failures_per_address_max=FAILURES_PER_ADDRESS_MAX,
            limits__connections_per_address_max=100,
            limits__sessions_per_user_max=SESSIONS_PER_USER_MAX)
        cls.next_source = 1

    @classmethod
    def tearDownClass(cls):
        rc = cls.gateway.stop()
        if rc != 0:
            raise AssertionError(f"popgate exited {rc} on SIGINT:\n{cls.gateway.log_text()[-4000:]}")

    # ---- helpers ----------------------------------------------------------------------

    def tearDown(self):
        self.assert_healthy()

    def assert_healthy(self):
        """The server runs, a health login works, and every maildrop is
        byte-for-byte intact, in the database and through RETR."""
        self.assertIsNone(self.gateway.proc.poll(), "popgate died")
        for md in self.maildrops:
            wait_until(lambda: lock_count(md.login) == 0, f"the lock of {md.login} to be free")
            md.assert_intact(self)
            md.assert_served_intact(self, self.gateway)

    def source(self):
        """A client address of its own for each connection group, so no
        test's failures count against another's (127.0.8.x)."""
        cls = type(self)
        cls.next_source += 1
        return f"127.0.8.{cls.next_source}"

    def client(self, source=None):
        return LineClient.to(self.gateway, source_ip=source or self.source(), listener="pop3")

    def metric(self, name, **labels):
        return self.gateway.metric(name, **labels)

    def counting(self, name, **labels):
        """A callable returning how much the series grew since now."""
        start = self.metric(name, **labels)
        return lambda: self.metric(name, **labels) - start

    def send_tolerant(self, c, data):
        try:
            c.send(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before everything is written

    @staticmethod
    def cmd(c, data):
        """A command given as bytes (LineClient.cmd takes text)."""
        c.send(data + b"\r\n")
        return c.read()

    def logged_in(self, md, source=None):
        c = self.client(source)
        c.cmd(f"USER {md.login}")
        self.assertTrue(c.cmd(f"PASS {md.password}").startswith(b"+OK"))
        return c

    # ---- 1 MiB without a line end ------------------------------------------------------

    def test_megabyte_without_newline(self):
        flood = self.counting("popgate_limit_hits_total", limit="input_flood")
        ended = self.counting("popgate_sessions_ended_total", reason="flood")
        md = self.maildrops[1]
        for where in ("authorization", "transaction", "sasl"):
            with self.subTest(where):
                if where == "transaction":
                    c = self.logged_in(md)
                    self.assertTrue(c.cmd("DELE 1").startswith(b"+OK"))  # must not be committed
                else:
                    c = self.client()
                if where == "sasl":
                    self.assertEqual(c.cmd("AUTH PLAIN"), b"+ ")
                self.send_tolerant(c, b"A" * (1024 * 1024))
                replies = c.replies_until_close()
                self.assertTrue(replies, where)
                self.assertTrue(all(r.startswith(b"-ERR") for r in replies), replies)
                self.assertEqual(replies[-1], b"-ERR line too long; closing connection")
                c.close()
        wait_until(lambda: flood() >= 3, "three input_flood hits")
        wait_until(lambda: ended() >= 3, "three sessions ended by flood")

    # ---- NUL octets ---------------------------------------------------------------------

    def test_nul_octets(self):
        nul = self.counting("popgate_limit_hits_total", limit="nul_in_line")
        bad = self.counting("popgate_bad_commands_total")
        md = self.maildrops[0]
        c = self.client()
        self.assertEqual(c.cmd("NO\0OP"), b"-ERR NUL octet in command")
        self.assertEqual(c.cmd(f"USER {md.login}"), b"+OK send PASS")
        self.assertEqual(c.cmd(f"PASS {md.password}\0"), b"-ERR NUL octet in command")
        self.assertEqual(c.cmd("\0"), b"-ERR NUL octet in command")
        # Inside SASL the NUL ends the exchange (PLAIN's NULs are inside base64).
        self.assertEqual(c.cmd("AUTH PLAIN"), b"+ ")
        self.assertEqual(c.cmd("AG\0Fi"), b"-ERR malformed authentication response")
        # The session still works: a login after all that.
        c.cmd(f"USER {md.login}")
        self.assertTrue(c.cmd(f"PASS {md.password}").startswith(b"+OK"))
        self.assertEqual(c.cmd("RETR \x001"), b"-ERR NUL octet in command")
        self.assertTrue(c.cmd("QUIT").startswith(b"+OK"))
        c.close()
        # Ten in a row are abuse: closed.
        c = self.client()
        for _ in range(9):
            self.assertEqual(c.cmd("\0\0\0"), b"-ERR NUL octet in command")
        self.assertEqual(c.cmd("\0\0\0"), b"-ERR too many bad commands; closing connection")
        self.assertEqual(c.replies_until_close(), [])
        c.close()
        self.assertEqual(nul(), 14)
        self.assertGreaterEqual(bad(), 15)

    # ---- invalid UTF-8 -------------------------------------------------------------------

    def test_invalid_utf8(self):
        user_errors = self.counting("popgate_commands_total", command="USER", result="err")
        pass_errors = self.counting("popgate_commands_total", command="PASS", result="err")
        malformed = self.counting("popgate_auth_total", mechanism="PLAIN", outcome="malformed")
        md = self.maildrops[1]
        local, domain = md.login.split("@")
        bad_names = [b"\xff\xfe", b"\xc3\x28", b"\xc0\xaf", b"\xed\xa0\x80", b"\xe2\x82", b"\xf8\x88\x80\x80\x80"]
        c = self.client()
        for junk in bad_names:
            self.assertEqual(self.cmd(c, b"USER " + junk + b"@" + domain.encode()),
                             b"-ERR [UTF8] UTF-8 user names need the UTF8 command first")
        c.cmd(f"USER {md.login}")
        self.assertEqual(self.cmd(c, b"PASS \xff\xfe"), b"-ERR [UTF8] UTF-8 passwords need the UTF8 command first")
        self.assertEqual(c.cmd("UTF8"), b"+OK UTF8 enabled")
        for junk in bad_names:
            self.assertEqual(self.cmd(c, b"USER " + local.encode() + junk + b"@" + domain.encode()),
                             b"-ERR [UTF8] user name is not valid UTF-8")
        c.cmd(f"USER {md.login}")
        self.assertEqual(self.cmd(c, b"PASS \xc3\x28"), b"-ERR [UTF8] password is not valid UTF-8")
        # Valid UTF-8 that is simply wrong is an ordinary failed login.
        c.cmd(f"USER {md.login}")
        self.assertEqual(c.cmd("PASS grüße"), b"-ERR [AUTH] invalid user name or password")
        # Inside AUTH PLAIN, in UTF8 mode or not.
        plain = b64(b"\0" + md.login.encode() + b"\0\xff" + md.password.encode())
        self.assertEqual(c.cmd("AUTH PLAIN " + plain), b"-ERR malformed PLAIN message")
        c.cmd(f"USER {md.login}")
        self.assertTrue(c.cmd(f"PASS {md.password}").startswith(b"+OK"))
        c.cmd("QUIT")
        c.close()
        c = self.client()
        self.assertEqual(c.cmd("AUTH PLAIN " + plain), b"-ERR malformed PLAIN message")
        c.cmd("QUIT")
        c.close()
        self.assertEqual(user_errors(), 2 * len(bad_names))
        self.assertGreaterEqual(pass_errors(), 3)
        self.assertEqual(malformed(), 2)

    # ---- 10,000-octet arguments ------------------------------------------------------------

    def test_ten_thousand_octet_arguments(self):
        too_long = self.counting("popgate_limit_hits_total", limit="command_line_bytes")
        md = self.maildrops[2]
        arg = "9" * 10000
        c = self.client()
        before_login = ["USER " + "u" * 10000, "PASS " + "p" * 10000, "APOP " + "a" * 10000 + " " + "0" * 32,
                        "CAPA " + arg, "NOOP " + arg, arg]
        for line in before_login:
            self.assertEqual(c.cmd(line), b"-ERR line too long", line[:10])
        c.cmd("QUIT")
        c.close()
        # After login (a session of its own: ten bad commands would close it).
        c = self.logged_in(md)
        for line in ["RETR " + arg, "TOP 1 " + arg, "DELE " + arg, "LIST " + arg]:
            self.assertEqual(c.cmd(line), b"-ERR line too long", line[:10])
        # Within the line limit, a huge number is just a missing message.
        for verb in ("RETR", "DELE", "LIST", "UIDL"):
            reply = c.cmd(f"{verb} {'9' * 200}")
            self.assertTrue(reply.startswith(b"-ERR"), reply)
            self.assertNotIn(b"SYS/", reply)
        reply = c.cmd(f"TOP 1 {'9' * 200}")
        self.assertTrue(reply.startswith((b"+OK", b"-ERR")), reply)
        if reply.startswith(b"+OK"):
            c.multiline()
        self.assertTrue(c.cmd("QUIT").startswith(b"+OK"))  # no DELE got through
        c.close()
        self.assertEqual(too_long(), len(before_login) + 4)
        # SASL lines may be longer (up to 16 KiB): a 10,000-octet user name
        # or password arrives whole and is refused by its own limit.
        c = self.client()
        self.assertEqual(c.cmd("AUTH PLAIN " + b64("\0" + "u" * 7500 + "\0pw")), b"-ERR user name too long")
        self.assertEqual(c.cmd("AUTH PLAIN " + b64(f"\0{md.login}\0" + "p" * 7500)), b"-ERR password too long")
        self.assertEqual(c.cmd("AUTH LOGIN"), b"+ " + b64("Username:").encode())
        self.assertEqual(c.cmd(b64("u" * 7500)), b"-ERR invalid user name")
        c.cmd("QUIT")
        c.close()

    # ---- 1,000 wrong passwords from one address -------------------------------------------

    def proxied(self, client_address, port=40000):
        s = connect_from("127.0.0.1", self.gateway.port_of("lb"), timeout=60)
        s.sendall(proxy_v1(client_address, port))
        return LineClient(s)

    def test_thousand_wrong_passwords_from_one_address(self):
        attacker = "203.0.113.66"
        attempts_total = 1000
        cut_off = self.counting("popgate_limit_hits_total", limit="failures_per_address")
        bad_credentials = self.counting("popgate_auth_total", mechanism="USER", outcome="bad_credentials")
        lock = threading.Lock()
        results = []  # (reply, seconds)
        remaining = [attempts_total]

        def attack(worker):
            n = 0
            while True:
                n += 1
                port = 1024 + (worker * 1000 + n) % 60000
                c = self.proxied(attacker, port)
                try:
                    if not c.greeting.startswith(b"+OK"):
                        raise AssertionError(f"attacker greeting {c.greeting!r}")
                    while True:
                        with lock:
                            if remaining[0] == 0:
                                return
                            remaining[0] -= 1
                        c.cmd(f"USER {self.victim.login}")
                        start = time.monotonic()
                        reply = c.cmd(f"PASS wrong-{worker}-{port}")
                        with lock:
                            results.append((reply, time.monotonic() - start))
                        if reply.endswith(b"closing connection"):
                            self.assertEqual(c.replies_until_close(), [])
                            break
                finally:
                    c.close()

        others = []

        def bystander():
            # Another client behind the same proxy: logs in, undelayed.
            n = 0
            while any(t.is_alive() for t in workers):
                n += 1
                start = time.monotonic()
                c = self.proxied("198.51.100.20", 50000 + n)
                c.cmd(f"USER {self.victim.login}")
                reply = c.cmd(f"PASS {self.victim.password}")
                _, body = c.retr(1)
                c.cmd("QUIT")
                c.close()
                others.append((reply, body, time.monotonic() - start))
                time.sleep(0.2)

        # Answers wait for the shard's 250 ms timer tick: many connections at once.
        workers = [threading.Thread(target=attack, args=(w,)) for w in range(32)]
        for t in workers:
            t.start()
        watcher = threading.Thread(target=bystander)
        watcher.start()
        for t in workers:
            t.join(timeout=300)
        watcher.join(timeout=60)
        self.assertEqual(len(results), attempts_total)
        replies = [r for r, _ in results]
        odd = [r for r in replies if not r.startswith(b"-ERR [AUTH] invalid user name or password")]
        self.assertEqual(odd, [])
        # Failures 1..19 from the address are answered; from the 20th on,
        # every one cuts the connection: the throttle engaged.
        answered = [r for r in replies if not r.endswith(b"closing connection")]
        self.assertLessEqual(len(answered), FAILURES_PER_ADDRESS_MAX - 1)
        self.assertGreaterEqual(cut_off(), attempts_total - (FAILURES_PER_ADDRESS_MAX - 1))
        self.assertEqual(bad_credentials(), attempts_total)
        # And each answer waited: once the delay is at its ceiling, no
        # failure is answered sooner (a lower bound, never an upper one).
        later = sorted(t for _, t in results[FAILURES_PER_ADDRESS_MAX:])
        self.assertGreaterEqual(later[0], DELAY_MAX_MS / 1000 * 0.9, "a throttled failure answered early")
        # The bystander was never refused nor throttled.
        self.assertTrue(others, "the bystander never ran")
        for reply, body, took in others:
            self.assertTrue(reply.startswith(b"+OK"), reply)
            self.assertEqual(body, list(self.victim.delivered.values())[0])
            self.assertLess(took, NO_STALL_S)
        c = self.proxied("198.51.100.21")
        c.cmd(f"USER {self.victim.login}")
        self.assertEqual(c.cmd("PASS still-wrong"), b"-ERR [AUTH] invalid user name or password")
        c.cmd("QUIT")
        c.close()
        print(f"throttle: {attempts_total} failures, {len(answered)} answered before the cut-off, "
              f"cut-offs counted {cut_off():.0f}, bystander sessions {len(others)}, "
              f"slowest bystander {max(t for *_, t in others) * 1000:.0f} ms")

    def test_failed_logins_do_not_hold_the_users_session_slots(self):
        """A user's session slots (limits.sessions_per_user_max) are taken
        when the user is looked up; wrong passwords on more connections than
        that, all kept open, must not lock the owner out."""
        attackers = []
        try:
            for i in range(SESSIONS_PER_USER_MAX + 5):
                c = self.proxied(f"203.0.113.{100 + i}")
                c.cmd(f"USER {self.victim.login}")
                self.assertEqual(c.cmd("PASS wrong"), b"-ERR [AUTH] invalid user name or password")
                attackers.append(c)
            c = self.proxied("198.51.100.30")
            c.cmd(f"USER {self.victim.login}")
            self.assertTrue(c.cmd(f"PASS {self.victim.password}").startswith(b"+OK"))
            c.cmd("QUIT")
            c.close()
        finally:
            for c in attackers:
                c.close()

    def test_failed_logins_do_not_hold_the_tenants_session_slots(self):
        """The same for a tenant's slots (its --sessions-max policy)."""
        domain = new_tenant()
        admin("tenant", "set", domain, "--sessions-max", "3")
        password = secrets.token_urlsafe(12)
        salt = secrets.token_bytes(8)
        ssha = "{SSHA256}" + b64(hashlib.sha256(password.encode() + salt).digest() + salt)
        target = Maildrop(domain, [b"Subject: t\r\n\r\nt\r\n"], password=password, hash_=ssha)
        other = Maildrop(domain, [b"Subject: o\r\n\r\no\r\n"], password=password, hash_=ssha)
        attackers = []
        try:
            for i in range(6):
                c = self.proxied(f"203.0.113.{200 + i}")
                c.cmd(f"USER {target.login if i % 2 else other.login}")
                self.assertEqual(c.cmd("PASS wrong"), b"-ERR [AUTH] invalid user name or password")
                attackers.append(c)
            for md in (target, other):
                c = self.proxied("198.51.100.31")
                c.cmd(f"USER {md.login}")
                self.assertTrue(c.cmd(f"PASS {md.password}").startswith(b"+OK"), md.login)
                c.cmd("QUIT")
                c.close()
        finally:
            for c in attackers:
                c.close()

    # ---- malformed SASL ---------------------------------------------------------------------

    def test_malformed_sasl(self):
        md = self.maildrops[0]
        login = md.login
        plain = self.counting("popgate_auth_total", mechanism="PLAIN", outcome="malformed")
        login_m = self.counting("popgate_auth_total", mechanism="LOGIN", outcome="malformed")
        scram = self.counting("popgate_auth_total", mechanism="SCRAM-SHA-256", outcome="malformed")
        scram_bad = self.counting("popgate_auth_total", mechanism="SCRAM-SHA-256", outcome="bad_credentials")
        one_shot = [
            ("AUTH PLAIN !!!!", b"-ERR initial response is not valid base64"),
            ("AUTH PLAIN " + b64(f"{login}\0pw"), b"-ERR malformed PLAIN message"),
            ("AUTH PLAIN " + b64(f"a\0{login}\0pw\0more"), b"-ERR malformed PLAIN message"),
            ("AUTH PLAIN " + b64(f"\0\0{md.password}"), b"-ERR malformed PLAIN message"),
            ("AUTH PLAIN " + b64(f"\0{login}\0"), b"-ERR malformed PLAIN message"),
            ("AUTH PLAIN " + b64("no nul at all"), b"-ERR malformed PLAIN message"),
            ("AUTH PLAIN a=b=", b"-ERR initial response is not valid base64"),
            ("AUTH PLAIN x y", b"-ERR AUTH takes a mechanism and at most an initial response"),
            ("AUTH NOPE", b"-ERR unsupported authentication mechanism"),
        ]
        for line, want in one_shot:
            c = self.client()
            self.assertEqual(c.cmd(line), want, line)
            c.cmd("QUIT")
            c.close()
        two_step = [
            ("AUTH PLAIN", "%%%%", b"-ERR response is not valid base64"),
            ("AUTH PLAIN", "A" * 17000, b"-ERR malformed authentication response"),
            ("AUTH LOGIN", "###", b"-ERR response is not valid base64"),
            ("AUTH SCRAM-SHA-256", b64("garbage"), None),
            ("AUTH SCRAM-SHA-256", b64(f"n,,n={login}"), None),
            ("AUTH SCRAM-SHA-256", b64(f"p=tls-unique,,n={login},r=abcdef"), None),
            ("AUTH SCRAM-SHA-256", b64("y,,n=,r=abc"), None),
            ("AUTH SCRAM-SHA-256", "", None),
        ]
        for first, second, want in two_step:
            c = self.client()
            self.assertTrue(c.cmd(first).startswith(b"+ "), first)
            c.send(second + "\r\n")
            reply = c.read()
            if want is not None:
                self.assertEqual(reply, want, (first, second[:20]))
            else:
                self.assertTrue(reply.startswith(b"-ERR"), (second, reply))
                self.assertNotIn(b"SYS/", reply)
            c.cmd("QUIT")
            c.close()
        # SCRAM: a valid client-first, then a client-final that is garbage,
        # has the wrong nonce, or a proof of the wrong length.
        nonce = "rOprNGfwEbeRWgbNEkqO"
        for final in ("garbage", "c=biws,r=wrongnonce,p=AAAA", "c=biws,r={r},p=" + b64("short"),
                      "c=eSws,r={r},p=" + b64(b"\0" * 32)):
            c = self.client()
            challenge = c.cmd("AUTH SCRAM-SHA-256 " + b64(f"n,,n={login},r={nonce}"))
            self.assertTrue(challenge.startswith(b"+ "), challenge)
            server_first = base64.b64decode(challenge[2:]).decode()
            r = dict(kv.split("=", 1) for kv in server_first.split(","))["r"]
            reply = c.cmd(b64(final.replace("{r}", r)))
            self.assertTrue(reply.startswith(b"-ERR"), (final, reply))
            self.assertNotIn(b"SYS/", reply)
            c.cmd("QUIT")
            c.close()
        # Ten malformed exchanges in one session are abuse: closed.
        c = self.client()
        for i in range(9):
            self.assertEqual(c.cmd("AUTH PLAIN !!!!"), b"-ERR initial response is not valid base64")
        self.assertEqual(c.cmd("AUTH PLAIN !!!!"), b"-ERR too many bad commands; closing connection")
        self.assertEqual(c.replies_until_close(), [])
        c.close()
        self.assertEqual(plain(), 7 + 2 + 10)
        self.assertEqual(login_m(), 1)
        self.assertGreaterEqual(scram() + scram_bad(), 5 + 4)
        print(f"SASL: PLAIN malformed {plain():.0f}, LOGIN {login_m():.0f}, "
              f"SCRAM malformed {scram():.0f}, SCRAM bad credentials {scram_bad():.0f}")

    # ---- malformed PROXY headers ---------------------------------------------------------------

    def test_malformed_proxy_headers(self):
        v1 = [
            (b"PROXY TCP4 " + b"1" * 120 + b"\r\n", "v1_too_long"),
            (b"PROXY TCP4 1.2.3.4\x00 5.6.7.8 1 2\r\n", "v1_bad_byte"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n", "v1_bare_cr_or_lf"),
            (b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_protocol"),
            (b"PROXY TCP4  1.2.3.4 5.6.7.8 1 2\r\n", "v1_bad_spacing"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "v1_field_count"),
            (b"PROXY TCP4 999.1.1.1 5.6.7.8 1 2\r\n", "v1_bad_source_address"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.x 1 2\r\n", "v1_bad_destination_address"),
            (b"PROXY TCP6 1.2.3.4 5.6.7.8 1 2\r\n", "v1_family_mismatch"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 70000 2\r\n", "v1_bad_source_port"),
            (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 -2\r\n", "v1_bad_destination_port"),
            (b"USER someone\r\n", "not_proxy"),
        ]
        addresses = socket.inet_aton("192.0.2.10") + socket.inet_aton("192.0.2.1") + struct.pack("!HH", 4000, 110)
        v2 = [
            (proxy_v2(command=0x11), "v2_bad_version"),
            (proxy_v2(command=0x2F), "v2_bad_command"),
            (proxy_v2(family_protocol=0x99), "v2_bad_family"),
            (PROXY_SIG + b"\x21\x11" + struct.pack("!H", 5000) + b"\0" * 5000, "v2_too_long"),
            (proxy_v2(body=b"\x7f\0\0\x01"), "v2_short_address_block"),
            (v2_with_tlvs(b"\x04\x00"), "v2_tlv_truncated"),
            (v2_with_tlvs(b"\x04\x00\x64abc"), "v2_tlv_overrun"),
            (v2_with_tlvs(tlv(0x02, b"a.test") + tlv(0x02, b"b.test")), "v2_duplicate_tlv"),
            (v2_with_tlvs(tlv(0x05, b"u" * 200)), "v2_unique_id_too_long"),
            (v2_with_tlvs(tlv(0x20, b"\x01\x00")), "v2_ssl_too_short"),
            (v2_with_tlvs(tlv(0x20, b"\x01\0\0\0\0" + b"\x21\x00")), "v2_ssl_sub_tlv_truncated"),
            (v2_with_tlvs(tlv(0x20, b"\x01\0\0\0\0" + b"\x21\x00\x50TLS")), "v2_ssl_sub_tlv_overrun"),
            (v2_with_tlvs(tlv(0x03, b"\0\0\0")), "v2_bad_crc32c_length"),
            (v2_with_tlvs(tlv(0x03, b"\xde\xad\xbe\xef")), "v2_crc32c_mismatch"),
        ]
        del addresses
        for header, error in v1 + v2:
            with self.subTest(error):
                counted = self.counting("popgate_proxy_header_errors_total", error=error)
                s = connect_from("127.0.0.1", self.gateway.port_of("lb"), timeout=30)
                try:
                    s.sendall(header + b"USER x\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                got = b""
                try:
                    while True:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        got += chunk
                except ConnectionResetError:
                    pass
                s.close()
                self.assertEqual(got, b"", f"{error}: no greeting, nothing at all")
                wait_until(lambda: counted() == 1, f"popgate_proxy_header_errors_total{{error={error}}} + 1")
        # A good header still works afterwards, and the address it carries is used.
        c = self.proxied("192.0.2.77")
        self.assertTrue(c.greeting.startswith(b"+OK"))
        c.cmd(f"USER {self.victim.login}")
        self.assertTrue(c.cmd(f"PASS {self.victim.password}").startswith(b"+OK"))
        c.cmd("QUIT")
        c.close()


if __name__ == "__main__":
    unittest.main()
