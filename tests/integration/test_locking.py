"""The maildrop lock across processes: [IN-USE] between two gateways on one
database, release on QUIT and disconnect, the lease that frees a killed
process's locks, SIGINT ending sessions without UPDATE, and a session whose
lock row vanished (a failover that lost a commit) ending without UPDATE
before another session could share its maildrop."""

import poplib
import signal
import time
import unittest

from itest import (Conversation, Gateway, crlf, deliver, dsn, lock_count, messages_of, new_tenant,
                   new_user, pop, psql, wait_until)

BODY = b"Subject: lock\r\n\r\nbody\r\n"
# Upper bound for a renewal to notice a vanished lock ("no stall", not speed).
WAIT_S = 20


class LockingTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dsn = dsn()
        cls.domain = new_tenant()

    def user(self, messages=2):
        login, password = new_user(self.domain)
        for _ in range(messages):
            deliver(login, BODY)
        return login, password

    def test_in_use_across_two_gateway_processes(self):
        one = Gateway(self.dsn)
        two = Gateway(self.dsn)
        try:
            login, password = self.user()
            first = pop(one, login, password)
            with self.assertRaises(poplib.error_proto) as refused:
                pop(two, login, password)
            self.assertEqual(refused.exception.args[0],
                             b"-ERR [IN-USE] maildrop is locked by another session")
            first.quit()
            # Released at QUIT: the other process gets it at once.
            second = pop(two, login, password)
            self.assertEqual(second.stat()[0], 2)
            second.quit()
        finally:
            one.stop()
            two.stop()

    def test_lock_freed_within_the_lease_after_sigkill(self):
        lease_ms = 3000
        victim = Gateway(self.dsn, database__lock_lease_ms=lease_ms)
        survivor = Gateway(self.dsn, database__lock_lease_ms=lease_ms)
        try:
            login, password = self.user()
            conv = Conversation(victim)
            conv.command(f"USER {login}")
            self.assertTrue(conv.command(f"PASS {password}").startswith(b"+OK"))
            self.assertEqual(conv.command("DELE 1"), b"+OK message 1 deleted")
            with self.assertRaises(poplib.error_proto):
                pop(survivor, login, password)
            killed_at = time.monotonic()
            victim.kill()  # SIGKILL: no QUIT, no release
            conv.close()

            def login_works():
                try:
                    pop(survivor, login, password).quit()
                    return True
                except poplib.error_proto:
                    return False
            wait_until(login_works, "the killed process's lock to lapse")
            freed_after = time.monotonic() - killed_at
            # Not a performance figure: the lease bound is the contract.
            self.assertLess(freed_after, lease_ms / 1000 + 5)
            self.assertEqual(len(messages_of(login)), 2, "the killed session deleted nothing")
        finally:
            victim.kill()
            survivor.stop()

    def test_a_vanished_lock_row_ends_the_session_without_update(self):
        lease_ms = 3000  # renewals every second
        gateway = Gateway(self.dsn, database__lock_lease_ms=lease_ms)
        try:
            login, password = self.user()
            conv = Conversation(gateway)
            conv.command(f"USER {login}")
            self.assertTrue(conv.command(f"PASS {password}").startswith(b"+OK"))
            self.assertEqual(conv.command("DELE 1"), b"+OK message 1 deleted")
            local, domain = login.split("@")
            psql("DELETE FROM popgate.maildrop_locks l USING popgate.users u, popgate.tenants t"
                 " WHERE l.tenant_id = u.tenant_id AND l.user_id = u.user_id"
                 f" AND u.tenant_id = t.tenant_id AND t.domain = '{domain}'"
                 f" AND u.local_part = '{local}'")
            # The next renewal (lease/3) notices; the bound is generous.
            conv.sock.settimeout(WAIT_S)
            self.assertEqual(conv.line(),
                             b"-ERR [SYS/TEMP] maildrop lock lost; nothing was deleted, log in again")
            self.assertTrue(conv.closed())
            self.assertEqual(len(messages_of(login)), 2)  # the DELE was not applied
            wait_until(lambda: gateway.metric("popgate_sessions_ended_total",
                                              reason="lock_lost") == 1, "lock_lost counted")
            self.assertIn('"msg":"maildrop_lock_lost"', gateway.log_text())
            # The maildrop is free for the next session at once.
            again = pop(gateway, login, password)
            self.assertEqual(again.stat()[0], 2)
            again.quit()
        finally:
            gateway.stop()

    def test_sigint_ends_sessions_without_update(self):
        gateway = Gateway(self.dsn)
        login, password = self.user()
        conv = Conversation(gateway)
        conv.command(f"USER {login}")
        conv.command(f"PASS {password}")
        self.assertEqual(conv.command("DELE 1"), b"+OK message 1 deleted")
        self.assertEqual(gateway.stop(signal.SIGINT), 0)
        self.assertEqual(conv.line(), b"-ERR [SYS/TEMP] server shutting down")
        self.assertTrue(conv.closed())
        self.assertEqual(len(messages_of(login)), 2)
        self.assertEqual(lock_count(login), 0, "a stopped instance leaves no lock behind")
        ends = [l for l in gateway.log_lines() if l.get("msg") == "session_end"]
        self.assertEqual([e["end"] for e in ends], ["shutdown"])
        self.assertEqual(ends[0]["user"], login)

    def test_sigterm_drains_a_running_session(self):
        gateway = Gateway(self.dsn, server__drain_timeout_ms=20000)
        login, password = self.user()
        client = pop(gateway, login, password)
        gateway.send_signal(signal.SIGTERM)
        # The running session goes on: it may finish its work and QUIT.
        time.sleep(0.5)
        self.assertEqual(client.stat()[0], 2)
        client.dele(1)
        self.assertIn(b"1 messages deleted", client.quit())
        self.assertEqual(gateway.wait(30), 0)
        self.assertEqual(len(messages_of(login)), 1)


if __name__ == "__main__":
    unittest.main()
