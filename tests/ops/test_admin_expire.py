"""popgate-admin expire: the retention job for EXPIRE. Retrieval times are
set by SQL; locks by SQL rows and by a real gateway session."""

import poplib
import subprocess
import time
import unittest

from popgate_server import Gateway
from popgate_testlib import admin, deliver, dsn, new_tenant, new_user, psql, user_column

EXPIRE_LOCK_CLASS = 0x65787069  # expire.cc kExpireLockClass


def age_message(message_id, retrieved_days_ago=None, hidden=False):
    retrieved = ("NULL" if retrieved_days_ago is None
                 else f"now() - interval '{retrieved_days_ago} days'")
    psql(f"UPDATE popgate.messages SET retrieved_at = {retrieved}, hidden = {hidden},"
         f" received_at = now() - interval '400 days' WHERE message_id = {message_id}")


def remaining(login):
    local, domain = login.split("@")
    return psql("SELECT coalesce(string_agg(m.message_id::text, ' ' ORDER BY m.message_id), '')"
                " FROM popgate.messages m JOIN popgate.users u USING (tenant_id, user_id)"
                " JOIN popgate.tenants t USING (tenant_id)"
                f" WHERE t.domain = '{domain}' AND u.local_part = '{local}'").split()


def lock(login, lease_s):
    local, domain = login.split("@")
    psql("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
         " holder_session, lease_expires_at)"
         f" SELECT tenant_id, user_id, 'test/1/x', 1, now() + {lease_s} * interval '1 second'"
         " FROM popgate.users u JOIN popgate.tenants t USING (tenant_id)"
         f" WHERE t.domain = '{domain}' AND u.local_part = '{local}'")


class ExpireTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        admin("tenant", "set", self.domain, "--expire-days", "3")
        self.login, _ = new_user(self.domain)
        self.m = [deliver(self.login, b"Subject: %d\r\n\r\n%s\r\n" % (i, b"x" * 100))["message_id"]
                  for i in range(6)]
        self.size = 100 + len("Subject: 0\r\n\r\n\r\n")
        age_message(self.m[0], retrieved_days_ago=5)                # expired
        age_message(self.m[1], retrieved_days_ago=1)                # retrieved, kept
        age_message(self.m[2])                                      # never retrieved, kept
        age_message(self.m[3], retrieved_days_ago=4, hidden=True)   # hidden, expired
        age_message(self.m[4], hidden=True)                         # hidden, never retrieved
        age_message(self.m[5], retrieved_days_ago=30)               # expired

    def kept(self):
        return [str(self.m[i]) for i in (1, 2, 4)]

    def test_dry_run_then_real(self):
        r = admin("expire", self.domain, "--dry-run")
        self.assertEqual(r.stdout, f"tenant {self.domain} (expire-days 3): would delete 3 "
                                   f"messages ({3 * self.size} B) from 1 maildrops\n")
        self.assertEqual(len(remaining(self.login)), 6)
        used_before = int(user_column(self.login, "used_bytes"))
        r = admin("expire", self.domain)
        self.assertEqual(r.stdout, f"tenant {self.domain} (expire-days 3): deleted 3 "
                                   f"messages ({3 * self.size} B) from 1 maildrops\n")
        self.assertEqual(remaining(self.login), self.kept())
        self.assertEqual(int(user_column(self.login, "used_bytes")), used_before - 3 * self.size)
        r = admin("expire", self.domain)
        self.assertIn("deleted 0 messages (0 B) from 0 maildrops", r.stdout)

    def test_expire_days_zero_means_retrieved_at_all(self):
        admin("tenant", "set", self.domain, "--expire-days", "0")
        admin("expire", self.domain)
        self.assertEqual(remaining(self.login), [str(self.m[2]), str(self.m[4])])

    def test_live_session_is_never_touched(self):
        lock(self.login, 60)
        for args in ([], ["--dry-run"]):
            with self.subTest(args=args):
                r = admin("expire", self.domain, *args)
                self.assertIn("from 0 maildrops; skipped 1 maildrops in use (3 expired messages "
                              "kept for now)", r.stdout)
                self.assertEqual(len(remaining(self.login)), 6)
        psql("UPDATE popgate.maildrop_locks SET lease_expires_at = now() - interval '1 second'"
             " WHERE holder_instance = 'test/1/x'")
        r = admin("expire", self.domain)  # a lapsed lease holds nothing
        self.assertIn("deleted 3 messages", r.stdout)
        self.assertEqual(remaining(self.login), self.kept())
        self.assertEqual(psql("SELECT count(*) FROM popgate.maildrop_locks"
                              " WHERE holder_instance = 'test/1/x'"), "0")

    def test_batches_and_progress(self):
        other, _ = new_user(self.domain)
        for _ in range(7):
            age_message(deliver(other, b"old\r\n")["message_id"], retrieved_days_ago=10)
        r = admin("expire", self.domain, "--batch", "2", "--progress-every", "4")
        self.assertIn("deleted 10 messages", r.stdout)
        self.assertIn("from 2 maildrops", r.stdout)
        self.assertRegex(r.stderr, r"expire: \d+ messages deleted in " + self.domain)
        self.assertEqual(remaining(other), [])

    def test_tenants_without_expire_and_all_tenants(self):
        keep = new_tenant()
        keeper, _ = new_user(keep)
        age_message(deliver(keeper, b"x\r\n")["message_id"], retrieved_days_ago=1000)
        r = admin("expire", keep)
        self.assertEqual(r.stdout, f"tenant {keep} keeps messages forever "
                                   "(expire-days never, retention-days never): nothing to do\n")
        r = admin("expire")  # every tenant with expire-days; ours among them
        self.assertIn(f"tenant {self.domain} (expire-days 3): deleted 3", r.stdout)
        self.assertNotIn(keep, r.stdout)
        self.assertEqual(len(remaining(keeper)), 1)

    def test_second_run_skips_a_tenant_being_expired(self):
        tenant_id = psql(f"SELECT tenant_id FROM popgate.tenants WHERE domain = '{self.domain}'")
        holder = subprocess.Popen(["psql", dsn(), "-X", "-q"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True)
        try:
            holder.stdin.write(f"SELECT pg_advisory_lock({EXPIRE_LOCK_CLASS}, {tenant_id});\n")
            holder.stdin.flush()
            deadline = time.monotonic() + 20
            while psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                       f" AND classid = {EXPIRE_LOCK_CLASS} AND objid = {tenant_id}"
                       " AND granted") != "1":
                self.assertLess(time.monotonic(), deadline)
                time.sleep(0.05)
            r = admin("expire", self.domain)
            self.assertEqual(r.stdout, f"tenant {self.domain}: skipped: another expire run is "
                                       "working on it\n")
            self.assertEqual(len(remaining(self.login)), 6)
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
        self.assertIn("deleted 3", admin("expire", self.domain).stdout)

    def test_errors(self):
        r = admin("expire", "nowhere.test", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant", r.stderr)
        r = admin("expire", "bad_domain", check=False)
        self.assertEqual(r.returncode, 1)
        for args in (["--batch", "0"], ["--batch", "x"], ["--progress-every", "0"],
                     [self.domain, "extra"]):
            with self.subTest(args=args):
                self.assertEqual(admin("expire", *args, check=False).returncode, 2)
        r = admin("expire", database="host=127.0.0.1 port=1 dbname=x connect_timeout=5",
                  check=False)
        self.assertEqual(r.returncode, 3)


def set_ages(message_id, received_days_ago, retrieved_days_ago=None, hidden=False):
    retrieved = ("NULL" if retrieved_days_ago is None
                 else f"now() - interval '{retrieved_days_ago} days'")
    psql(f"UPDATE popgate.messages SET retrieved_at = {retrieved}, hidden = {hidden},"
         f" received_at = now() - interval '{received_days_ago} days'"
         f" WHERE message_id = {message_id}")


class RetentionTest(unittest.TestCase):
    """Retention (tenant set --retention-days) deletes by delivery age,
    retrieved or not, hidden or not; EXPIRE and retention together are
    counted apart, and a message due by both counts once, as EXPIRE's."""

    def setUp(self):
        self.domain = new_tenant()
        self.login, _ = new_user(self.domain)
        self.body = b"Subject: r\r\n\r\nbody\r\n"
        self.m = [deliver(self.login, self.body)["message_id"] for _ in range(5)]
        set_ages(self.m[0], received_days_ago=40)                         # old, never retrieved
        set_ages(self.m[1], received_days_ago=40, retrieved_days_ago=39)  # old, retrieved
        set_ages(self.m[2], received_days_ago=45, hidden=True)            # old, hidden
        set_ages(self.m[3], received_days_ago=10)                         # young
        set_ages(self.m[4], received_days_ago=29, retrieved_days_ago=2)   # young, retrieved

    def test_retention_alone(self):
        admin("tenant", "set", self.domain, "--retention-days", "30")
        size = len(self.body)
        r = admin("expire", self.domain, "--dry-run")
        self.assertEqual(r.stdout, f"tenant {self.domain} (retention-days 30): would delete 3 "
                                   f"messages ({3 * size} B) from 1 maildrops\n")
        self.assertEqual(len(remaining(self.login)), 5)
        r = admin("expire", self.domain)
        self.assertEqual(r.stdout, f"tenant {self.domain} (retention-days 30): deleted 3 "
                                   f"messages ({3 * size} B) from 1 maildrops\n")
        self.assertEqual(remaining(self.login), [str(self.m[3]), str(self.m[4])])

    def test_retention_and_expire_counted_apart(self):
        admin("tenant", "set", self.domain, "--retention-days", "30", "--expire-days", "1")
        size = len(self.body)
        r = admin("expire", self.domain)
        # EXPIRE: m1 (also old) and m4 (retrieved 2 days ago); retention: m0, m2.
        self.assertEqual(r.stdout, f"tenant {self.domain} (expire-days 1, retention-days 30): "
                                   f"deleted 4 messages ({4 * size} B) from 1 maildrops "
                                   f"(expire: 2 messages, {2 * size} B; retention: 2 messages, "
                                   f"{2 * size} B)\n")
        self.assertEqual(remaining(self.login), [str(self.m[3])])


class ExpireUnderGatewayTest(unittest.TestCase):
    def test_a_real_session_keeps_its_maildrop(self):
        domain = new_tenant()
        admin("tenant", "set", domain, "--expire-days", "1", "--delete-mode", "hide")
        login, password = new_user(domain)
        for i in range(3):
            deliver(login, b"Subject: %d\r\n\r\nbody\r\n" % i)
        gateway = Gateway(dsn())
        try:
            client = poplib.POP3(gateway.host, gateway.port, timeout=20)
            client.user(login)
            client.pass_(password)
            client.retr(1)
            client.retr(2)
            client.dele(1)
            client.quit()  # hide mode: 1 hidden, 1 and 2 retrieved
            psql("UPDATE popgate.messages SET retrieved_at = retrieved_at - interval '2 days'"
                 " WHERE retrieved_at IS NOT NULL")
            client = poplib.POP3(gateway.host, gateway.port, timeout=20)
            try:
                client.user(login)
                client.pass_(password)
                self.assertEqual(client.stat()[0], 2)  # the hidden one is not listed
                r = admin("expire", domain)
                self.assertIn("skipped 1 maildrops in use (2 expired messages", r.stdout)
                self.assertEqual(len(client.retr(1)[1]), 3)  # still there under the session
                client.quit()
            finally:
                client.close()
            r = admin("expire", domain)
            self.assertIn("deleted 2 messages", r.stdout)
            client = poplib.POP3(gateway.host, gateway.port, timeout=20)
            client.user(login)
            client.pass_(password)
            self.assertEqual(client.stat()[0], 1)
            client.quit()
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
