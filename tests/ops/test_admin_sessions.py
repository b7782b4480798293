"""popgate-admin who and kick: lock rows made by SQL, and the real gateway
ending a kicked session at its next lease renewal."""

import poplib
import time
import unittest

from popgate_server import Gateway
from popgate_testlib import admin, deliver, dsn, new_tenant, new_user, psql, stored_messages


def rows(table_output):
    """A table's data rows as lists of fields (header and total dropped)."""
    return [line.split() for line in table_output.splitlines()[1:-1]]


def insert_lock(login, lease_s, instance="host-a/42/abc", session=7, client="192.0.2.1:5555",
                listener="pop3s"):
    local, domain = login.split("@")
    psql("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
         " holder_session, acquired_at, lease_expires_at, client_address, listener)"
         f" SELECT u.tenant_id, u.user_id, '{instance}', {session}, now() - interval '1 minute',"
         f" now() + {lease_s} * interval '1 second', '{client}', '{listener}'"
         " FROM popgate.users u JOIN popgate.tenants t USING (tenant_id)"
         f" WHERE t.domain = '{domain}' AND u.local_part = '{local}'")


def kick_requested(login):
    local, domain = login.split("@")
    return psql("SELECT l.kick_requested_at IS NOT NULL FROM popgate.maildrop_locks l"
                " JOIN popgate.users u USING (tenant_id, user_id)"
                f" JOIN popgate.tenants t USING (tenant_id) WHERE t.domain = '{domain}'"
                f" AND u.local_part = '{local}'")


class WhoKickTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.online, _ = new_user(self.domain)
        self.lapsed, _ = new_user(self.domain)
        self.offline, _ = new_user(self.domain)
        insert_lock(self.online, 60)
        insert_lock(self.lapsed, -5, instance="dead/1/x")

    def test_who_lists_live_leases_only(self):
        out = admin("who", self.domain.upper()).stdout
        self.assertEqual(out.splitlines()[0].split(),
                         ["LOGIN", "CLIENT", "LISTENER", "INSTANCE", "SINCE", "LEASE_LEFT", "KICK"])
        listed = rows(out)
        self.assertEqual(len(listed), 1, out)
        login, client, listener, instance, since, left, kick = listed[0]
        self.assertEqual((login, client, listener, instance, kick),
                         (self.online, "192.0.2.1:5555", "pop3s", "host-a/42/abc", "-"))
        self.assertRegex(since, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertTrue(55 <= int(left.rstrip("s")) <= 60, left)
        self.assertTrue(out.endswith("1 session(s) online\n"))
        everyone = admin("who").stdout
        self.assertIn(self.online, everyone)
        self.assertNotIn(self.lapsed, everyone)
        other = new_tenant()
        self.assertEqual(rows(admin("who", other).stdout), [])

    def test_who_errors(self):
        r = admin("who", "nowhere.test", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'nowhere.test'", r.stderr)
        r = admin("who", "bad_domain", check=False)
        self.assertEqual(r.returncode, 1)
        r = admin("who", "a.test", "b.test", check=False)
        self.assertEqual(r.returncode, 2)

    def test_kick_marks_the_live_lock(self):
        r = admin("kick", self.online)
        self.assertIn(f"asked instance host-a/42/abc to end the session of {self.online}"
                      " from 192.0.2.1:5555 on listener pop3s", r.stdout)
        self.assertEqual(kick_requested(self.online), "t")
        self.assertEqual(rows(admin("who", self.domain).stdout)[0][-1], "requested")
        # Nobody renews this row: --wait gives up, saying so.
        r = admin("kick", self.online, "--wait", "1", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("still online after 1 s", r.stdout)

    def test_kick_without_a_session(self):
        for login in (self.lapsed, self.offline):
            with self.subTest(login=login):
                r = admin("kick", login, "--wait", "5")
                self.assertEqual(r.stdout, f"no session of {login} is online\n")
        self.assertEqual(kick_requested(self.lapsed), "f")

    def test_kick_errors(self):
        r = admin("kick", f"ghost@{self.domain}", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"no user 'ghost@{self.domain}'", r.stderr)
        r = admin("kick", "no-at-sign", check=False)
        self.assertEqual(r.returncode, 1)
        for args in (["kick"], ["kick", self.online, "--wait", "-1"],
                     ["kick", self.online, "--wait", "x"]):
            with self.subTest(args=args):
                self.assertEqual(admin(*args, check=False).returncode, 2)


class GatewayKickTest(unittest.TestCase):
    """The gateway's side of kick: lease 3 s, so renewals every second."""

    def setUp(self):
        self.domain = new_tenant()
        self.login, self.password = new_user(self.domain)
        deliver(self.login, b"Subject: kept\r\n\r\nbody\r\n")
        self.gateway = Gateway(dsn(), database__lock_lease_ms=3000)
        self.addCleanup(self.gateway.stop)

    def open_session(self):
        client = poplib.POP3(self.gateway.host, self.gateway.port, timeout=20)
        self.addCleanup(client.close)
        client.user(self.login)
        client.pass_(self.password)
        return client

    def assert_ended(self, client):
        with self.assertRaises((poplib.error_proto, EOFError, OSError)) as caught:
            client.noop()
            client.noop()
        return str(caught.exception)

    def test_kick_ends_the_session_without_update(self):
        client = self.open_session()
        client.dele(1)
        listed = rows(admin("who", self.domain).stdout)
        self.assertEqual(len(listed), 1)
        self.assertEqual(listed[0][0], self.login)
        self.assertTrue(listed[0][1].startswith("127.0.0.1:"), listed)
        self.assertEqual(listed[0][2], "pop3")
        started = time.monotonic()
        r = admin("kick", self.login, "--wait", "15")
        self.assertIn(f"the session of {self.login} has ended", r.stdout)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn("administrator", self.assert_ended(client))
        self.assertEqual(rows(admin("who", self.domain).stdout), [])
        self.assertEqual(len(stored_messages(self.login)), 1)  # DELE was not applied
        # The next login works, and is not kicked by the old request.
        again = self.open_session()
        time.sleep(2)
        self.assertEqual(again.stat()[0], 1)
        again.quit()

    def test_disable_with_kick(self):
        client = self.open_session()
        r = admin("user", "disable", self.login, "--kick")
        self.assertIn("asked its open session to end", r.stdout)
        deadline = time.monotonic() + 10
        while rows(admin("who", self.domain).stdout) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(rows(admin("who", self.domain).stdout), [])
        self.assert_ended(client)
        with self.assertRaises(poplib.error_proto):
            self.open_session()
        admin("user", "enable", self.login)
        self.open_session().quit()


if __name__ == "__main__":
    unittest.main()
