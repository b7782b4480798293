"""Bad input and faults against the real binary: garbage, NUL bytes, long
lines and binary junk get -ERR or a disconnect and never hurt other
sessions; idle clients are logged out; a client that stops reading cannot
make the server buffer a message; a paused database leaves sessions that
do not need it answered."""

import fcntl
import os
import random
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import threading
import time
import unittest

from itest import (Conversation, Gateway, GatewayTest, pop, sha256, unstuff, unstuff_wire,
                   wait_until)

BODY = b"Subject: ok\r\n\r\n.still here\r\n"


class BadInputTest(GatewayTest):
    gateway_settings = {"session__login_idle_timeout_ms": 2000}

    def healthy_login(self, login, password):
        client = pop(self.gateway, login, password)
        self.assertEqual(unstuff(client.retr(1)[1]), BODY)
        client.quit()

    def test_garbage_of_every_kind(self):
        login, password, _ = self.user_with(BODY)
        cases = {
            "nul": b"US\x00ER x\r\n",
            "long line": b"USER " + b"x" * 5000 + b"\r\n",
            "binary": bytes(random.Random(1).randrange(256) for _ in range(8192)),
            "wrong state": b"RETR 1\r\nDELE 1\r\nSTAT\r\n",
            "unknown": b"HELO x\r\nEHLO y\r\nGET / HTTP/1.1\r\n",
            "bad numbers": b"USER a\r\nPASS b\r\n",
        }
        for name, payload in cases.items():
            with self.subTest(name):
                conv = Conversation(self.gateway)
                # QUIT ends it, unless a limit closed the session first.
                try:
                    conv.send(payload + b"\r\nQUIT\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass
                replies = []
                try:
                    while True:
                        replies.append(conv.line())
                except (EOFError, socket.timeout, ConnectionResetError):
                    pass
                self.assertTrue(replies, f"{name}: no reply at all")
                self.assertTrue(all(r.startswith((b"-ERR", b"+OK")) for r in replies), replies)
                self.assertTrue(conv.closed())
                self.assertTrue(any(r.startswith(b"-ERR") for r in replies), replies)
                conv.close()
                self.healthy_login(login, password)

    def test_megabyte_without_newline_is_cut_off(self):
        conv = Conversation(self.gateway)
        try:
            conv.send(b"A" * (1024 * 1024))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may close before we finish writing
        first = conv.line()
        self.assertEqual(first, b"-ERR line too long")
        self.assertEqual(conv.line(), b"-ERR line too long; closing connection")
        self.assertTrue(conv.closed())

    def test_ten_bad_commands_close(self):
        conv = Conversation(self.gateway)
        for _ in range(9):
            self.assertEqual(conv.command("XYZZY"), b"-ERR unknown command")
        self.assertEqual(conv.command("XYZZY"), b"-ERR too many bad commands; closing connection")
        self.assertTrue(conv.closed())

    def test_idle_client_is_logged_out_before_login(self):
        conv = Conversation(self.gateway)
        conv.sock.settimeout(30)
        self.assertEqual(conv.line(), b"-ERR autologout; idle for too long")
        self.assertTrue(conv.closed())

    def test_many_abusers_at_once_do_not_stop_service(self):
        login, password, _ = self.user_with(BODY)
        stop = threading.Event()

        def abuse(seed):
            rng = random.Random(seed)
            while not stop.is_set():
                try:
                    s = self.gateway.connect(5)
                    s.sendall(bytes(rng.randrange(256) for _ in range(rng.randint(1, 4096))))
                    s.close()
                except OSError:
                    pass
        threads = [threading.Thread(target=abuse, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        try:
            for _ in range(5):
                self.healthy_login(login, password)
        finally:
            stop.set()
            for t in threads:
                t.join()


class SlowReaderTest(GatewayTest):

    def test_client_that_stops_reading_cannot_balloon_memory(self):
        body = b"Subject: big\r\n\r\n" + (b"." + b"y" * 98 + b"\r\n") * (200 * 1024)  # ~20 MiB
        login, password, _ = self.user_with(body)
        conv = Conversation(self.gateway)
        # Kernel socket buffers (a few MiB on loopback) take part of the
        # message; they are not the server's RSS, and 20 MiB exceeds them,
        # so the server has to stop and hold the rest back.
        conv.command(f"USER {login}")
        conv.command(f"PASS {password}")
        before = self.gateway.rss_kib()
        conv.send("RETR 1\r\n")
        time.sleep(3)  # the server fills the socket, then must stop
        grown = self.gateway.rss_kib() - before
        waiting = struct.unpack("i", fcntl.ioctl(conv.sock, termios.FIONREAD, b"\0\0\0\0"))[0]
        self.assertLess(waiting, len(body), "the whole message fit in socket buffers: no backpressure shown")
        # One output block plus one fetched chunk per session; far below
        # the 20 MiB message (the bound is generous on purpose).
        self.assertLess(grown, 8 * 1024, f"RSS grew {grown} KiB while the client did not read")
        # Other sessions are served meanwhile.
        other, other_pw, _ = self.user_with(BODY)
        client = pop(self.gateway, other, other_pw)
        self.assertEqual(unstuff(client.retr(1)[1]), BODY)
        client.quit()
        # And the stalled client still gets the whole message once it reads.
        self.assertEqual(conv.line(), f"+OK {len(body)} octets".encode())
        self.assertEqual(sha256(unstuff_wire(conv.multiline())), sha256(body))
        conv.command("QUIT")


class PausedDatabaseTest(unittest.TestCase):
    """A private PostgreSQL cluster, paused with SIGSTOP under a live session."""

    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="popgate-pausedb-")
        here = os.path.dirname(__file__)
        self.testpg = os.path.join(here, "..", "support", "testpg.sh")
        subprocess.run([self.testpg, "start", self.state, os.environ["POPGATE_ADMIN_BIN"]],
                       check=True, capture_output=True, timeout=120)
        with open(os.path.join(self.state, "dsn")) as f:
            self.dsn = f.read().strip()
        from popgate_testlib import admin
        admin("tenant", "add", "paused.test", database=self.dsn)
        admin("user", "add", "p@paused.test", "--password", "pw", database=self.dsn)
        admin("deliver", "p@paused.test", "-", input=BODY, database=self.dsn)
        self.gateway = Gateway(self.dsn, database__query_timeout_ms=1500)
        self.pids = []

    def tearDown(self):
        self.resume()
        self.gateway.stop()
        subprocess.run([self.testpg, "stop", self.state], check=False, timeout=60)

    def postgres_pids(self):
        with open(os.path.join(self.state, "datadir")) as f:
            datadir = f.read().strip()
        out = subprocess.run(["pgrep", "-f", datadir], capture_output=True, text=True).stdout
        postmaster = [int(p) for p in out.split()]
        children = []
        for pid in postmaster:
            kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
            children += [int(p) for p in kids.split()]
        return postmaster + children

    def resume(self):
        for pid in self.pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.pids = []

    def test_sessions_that_do_not_need_the_database_are_answered(self):
        conv = Conversation(self.gateway)
        conv.command("USER p@paused.test")
        self.assertTrue(conv.command("PASS pw").startswith(b"+OK maildrop has 1 messages"))
        self.pids = self.postgres_pids()
        self.assertTrue(self.pids)
        for pid in self.pids:
            os.kill(pid, signal.SIGSTOP)
        # From the snapshot: no database needed.
        self.assertEqual(conv.command("NOOP"), b"+OK")
        self.assertTrue(conv.command("LIST").startswith(b"+OK 1 messages"))
        conv.multiline()
        self.assertTrue(conv.command("UIDL 1").startswith(b"+OK 1 "))
        self.assertEqual(conv.command("STAT"), f"+OK 1 {len(BODY)}".encode())
        # New connections still get their greeting.
        other = Conversation(self.gateway)
        self.assertTrue(other.greeting.startswith(b"+OK"))
        other.close()
        # What needs the database fails cleanly after the query timeout.
        self.assertEqual(conv.command("RETR 1"), b"-ERR [SYS/TEMP] cannot read message; try again later")
        self.resume()
        # And service recovers without a restart.

        def retr_works():
            conv.send("RETR 1\r\n")
            reply = conv.line()
            if reply.startswith(b"+OK"):
                self.assertEqual(unstuff_wire(conv.multiline()), BODY)
                return True
            return False
        wait_until(retr_works, "RETR to work again after the database resumed", bound=60)
        self.assertTrue(conv.command("QUIT").startswith(b"+OK"))


if __name__ == "__main__":
    unittest.main()
