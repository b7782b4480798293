"""Lifecycle on the real binary: SIGTERM drains (readiness false at once,
listeners closed, running sessions go on), a drain deadline that falls in
the middle of a long RETR finishes the message before the -ERR [SYS/TEMP],
nothing is lost and no lock is left; SIGHUP re-reads the configuration and
applies what can change while running."""

import os
import signal
import socket
import tempfile
import time
import unittest

from itest import (Conversation, Gateway, deliver, dsn, lock_count, messages_of, new_tenant, new_user,
                   pop, wait_until)


def big_message(megabytes):
    line = b"0123456789" * 7 + b"\r\n"  # 72 octets
    body = line * (megabytes * 1024 * 1024 // len(line))
    return b"Subject: drain\r\n\r\n" + body


class DrainTest(unittest.TestCase):

    def test_readiness_goes_false_and_listeners_close_at_sigterm(self):
        domain = new_tenant()
        login, password = new_user(domain)
        deliver(login, b"Subject: x\r\n\r\ny\r\n")
        gateway = Gateway(dsn(), server__drain_timeout_ms=30000)
        try:
            wait_until(lambda: gateway.http("/healthz/ready")[0] == 200, "readiness")
            client = pop(gateway, login, password)
            gateway.send_signal(signal.SIGTERM)
            wait_until(lambda: gateway.http("/healthz/ready") == (503, "not ready: draining\n"),
                       "readiness to go false")
            self.assertEqual(gateway.metric("popgate_draining"), 1)
            self.assertEqual(gateway.http("/healthz/live")[0], 200)

            def refused():
                try:
                    socket.create_connection((gateway.host, gateway.port), timeout=5).close()
                    return False
                except OSError:
                    return True
            wait_until(refused, "the listener to stop accepting")
            # The running session is not disturbed.
            self.assertEqual(client.stat()[0], 1)
            client.dele(1)
            self.assertIn(b"1 messages deleted", client.quit())
            self.assertEqual(gateway.wait(30), 0)
            self.assertEqual(len(messages_of(login)), 0)
        finally:
            gateway.kill()

    def test_drain_deadline_mid_retr_finishes_the_message(self):
        domain = new_tenant()
        login, password = new_user(domain)
        message = big_message(24)
        deliver(login, message)
        deliver(login, b"Subject: second\r\n\r\nkeep me\r\n")
        gateway = Gateway(dsn(), server__drain_timeout_ms=300)
        try:
            c = Conversation(gateway, timeout=60)
            # A small receive buffer keeps most of the message on our side
            # of the socket until we read it.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            c.command(f"USER {login}")
            self.assertTrue(c.command(f"PASS {password}").startswith(b"+OK"))
            self.assertEqual(c.command("DELE 2"), b"+OK message 2 deleted")
            c.send("RETR 1\r\n")
            self.assertEqual(c.line(), b"+OK %d octets" % len(message))
            first = c.reader.read(256 * 1024)  # the download is under way
            gateway.send_signal(signal.SIGTERM)
            time.sleep(1.5)  # the 300 ms drain deadline passes mid-message
            received = bytearray(first)
            while True:  # to the end of the connection
                chunk = c.reader.read1(1 << 20)
                if not chunk:
                    break
                received += chunk
            # The whole message and its terminator (no line starts with '.':
            # nothing is stuffed), then, and only then, the end of the session.
            ending = b"-ERR [SYS/TEMP] server shutting down\r\n"
            self.assertTrue(received.endswith(b"\r\n.\r\n" + ending),
                            f"the reply was cut: it ends {bytes(received[-80:])!r}")
            body = bytes(received[:-len(b".\r\n" + ending)])
            self.assertEqual(len(body), len(message))
            self.assertEqual(body, message)
            self.assertEqual(gateway.wait(60), 0)
            self.assertEqual(len(messages_of(login)), 2, "DELE without QUIT deletes nothing")
            self.assertEqual(lock_count(login), 0, "a stopped instance leaves no lock behind")
            ends = [l for l in gateway.log_lines() if l.get("msg") == "session_end"]
            self.assertEqual([(e["end"], e["retr"]) for e in ends], [("shutdown", 1)])
        finally:
            gateway.kill()


class ReloadTest(unittest.TestCase):

    def write_config(self, path, level, per_address, idle_ms):
        with open(path + ".tmp", "w") as f:
            f.write(f'[log]\nlevel = "{level}"\n[limits]\nconnections_per_address_max = {per_address}\n'
                    f'[session]\nidle_timeout_ms = {idle_ms}\n')
        os.rename(path + ".tmp", path)

    def test_sighup_applies_log_level_and_limits_and_names_the_rest(self):
        work = tempfile.mkdtemp(prefix="popgate-reload-")
        config = os.path.join(work, "popgate.toml")
        self.write_config(config, "info", 100, 600000)
        gateway = Gateway(dsn(), config_file=config, log_level=None)
        held = []
        try:
            self.assertEqual(gateway.http("/log/level"), (200, "info\n"))
            held = [Conversation(gateway) for _ in range(2)]
            self.write_config(config, "debug", 2, 900000)
            gateway.send_signal(signal.SIGHUP)
            wait_until(lambda: any(l.get("msg") == "reloaded" for l in gateway.log_lines()), "the reload")
            reloaded = [l for l in gateway.log_lines() if l.get("msg") == "reloaded"][-1]
            self.assertIn("log.level", reloaded["applied"])
            self.assertIn("limits.connections_per_address_max", reloaded["applied"])
            # Its own log line, written after "reloaded": wait for it too
            # (a slow build, e.g. under TSan, is read in between).
            wait_until(lambda: any(l.get("msg") == "restart_required" for l in gateway.log_lines()),
                       "the restart_required line")
            restart = [l for l in gateway.log_lines() if l.get("msg") == "restart_required"]
            self.assertEqual(restart[-1]["keys"], "session.idle_timeout_ms")
            self.assertEqual(gateway.http("/log/level"), (200, "debug\n"))
            # The new per-address limit holds for the next connection.
            extra = Conversation.__new__(Conversation)
            extra.sock = gateway.connect(10)
            extra.reader = extra.sock.makefile("rb")
            self.assertEqual(extra.line(), b"-ERR [SYS/TEMP] too many connections from your address")
            extra.close()
            # A broken file keeps everything as it is.
            with open(config, "w") as f:
                f.write("[log\n")
            gateway.send_signal(signal.SIGHUP)
            wait_until(lambda: any(l.get("msg") == "reload_failed" for l in gateway.log_lines()),
                       "the failed reload to be logged")
            self.assertEqual(gateway.http("/log/level"), (200, "debug\n"))
        finally:
            for c in held:
                c.close()
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
