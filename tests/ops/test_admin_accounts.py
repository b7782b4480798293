"""popgate-admin tenant del, tenant set --delete-mode, user quota|show|
enable|disable, maildrop stats and tenant stats, with every error path."""

import unittest

from popgate_testlib import (admin, deliver, new_tenant, new_user, psql, tenant_column,
                             user_column)


def fields(output):
    """KEY VALUE lines as a dict."""
    out = {}
    for line in output.splitlines():
        key, value = line.split(None, 1)
        out[key] = value.strip()
    return out


def table(output):
    """A table as a list of dicts keyed by its header."""
    lines = output.splitlines()
    header = lines[0].split()
    return [dict(zip(header, line.split())) for line in lines[1:]]


class TenantDelTest(unittest.TestCase):
    def test_empty_tenant(self):
        domain = new_tenant()
        r = admin("tenant", "del", domain.upper())
        self.assertEqual(r.stdout, f"deleted tenant {domain} (0 users, 0 messages, 0 bytes)\n")
        self.assertEqual(psql(f"SELECT count(*) FROM popgate.tenants WHERE domain = '{domain}'"),
                         "0")

    def test_refused_with_users_unless_forced(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        deliver(login, b"abc\r\n")
        psql("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
             " holder_session, lease_expires_at) SELECT tenant_id, user_id, 'x', 1,"
             f" now() + interval '1 minute' FROM popgate.users WHERE local_part ="
             f" '{login.split('@')[0]}'")
        r = admin("tenant", "del", domain, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f"tenant '{domain}' still has 1 user(s) and 1 message(s)", r.stderr)
        self.assertIn("--force", r.stderr)
        r = admin("tenant", "del", domain, "--force")
        self.assertIn(f"deleted tenant {domain} (1 users, 1 messages, 5 bytes)", r.stdout)
        self.assertIn("1 session(s) were online", r.stdout)
        tenant_rows = psql(f"SELECT count(*) FROM popgate.tenants WHERE domain = '{domain}'")
        self.assertEqual(tenant_rows, "0")
        self.assertEqual(psql("SELECT count(*) FROM popgate.users"
                              f" WHERE local_part = '{login.split('@')[0]}'"), "0")

    def test_errors(self):
        r = admin("tenant", "del", "nowhere.test", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant", r.stderr)
        self.assertEqual(admin("tenant", "del", "bad_domain", check=False).returncode, 1)
        self.assertEqual(admin("tenant", "del", check=False).returncode, 2)
        self.assertEqual(admin("tenant", "del", "a.test", "--forse", check=False).returncode, 2)


class DeleteModeTest(unittest.TestCase):
    def test_round_trip(self):
        domain = new_tenant()
        self.assertEqual(fields(admin("tenant", "show", domain).stdout)["delete-mode"], "delete")
        admin("tenant", "set", domain, "--delete-mode", "HIDE")
        self.assertEqual(tenant_column(domain, "delete_mode"), "hide")
        self.assertEqual(fields(admin("tenant", "show", domain).stdout)["delete-mode"], "hide")
        admin("tenant", "set", domain, "--login-delay", "5")  # other options keep it
        self.assertEqual(tenant_column(domain, "delete_mode"), "hide")
        admin("tenant", "set", domain, "--delete-mode", "delete")
        self.assertEqual(tenant_column(domain, "delete_mode"), "delete")
        r = admin("tenant", "set", domain, "--delete-mode", "purge", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--delete-mode 'purge' must be 'delete' or 'hide'", r.stderr)


class UserQuotaTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.login, _ = new_user(self.domain)

    def test_sizes_and_none(self):
        for text, stored in (("10M", "10485760"), ("1k", "1024"), ("2G", "2147483648"),
                             ("123", "123"), ("0", "0"), ("none", ""), ("NONE", "")):
            with self.subTest(quota=text):
                r = admin("user", "quota", self.login.upper(), text)
                self.assertEqual(user_column(self.login, "quota_bytes"), stored)
                if stored:
                    self.assertIn(f"set the quota of {self.login} to {stored} (", r.stdout)
                else:
                    self.assertEqual(r.stdout, f"removed the quota of {self.login}\n")

    def test_below_use_is_allowed_with_a_note(self):
        deliver(self.login, b"x" * 98 + b"\r\n")
        r = admin("user", "quota", self.login, "50")
        self.assertIn("already uses 100 (100 B), more than that", r.stdout)
        self.assertEqual(user_column(self.login, "quota_bytes"), "50")

    def test_errors(self):
        for bad in ("10X", "-1", "1.5M", "", "K", "99999999999T"):
            with self.subTest(quota=bad):
                r = admin("user", "quota", self.login, "--", bad, check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("must be a number of bytes", r.stderr)
        r = admin("user", "quota", f"ghost@{self.domain}", "1M", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user", r.stderr)
        self.assertEqual(admin("user", "quota", self.login, check=False).returncode, 2)


class UserShowTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.login, _ = new_user(self.domain)

    def test_fresh_user(self):
        shown = fields(admin("user", "show", self.login).stdout)
        self.assertEqual(shown, {
            "login": self.login, "enabled": "yes", "quota": "none", "used": "0 (0 B)",
            "messages": "0 (0 hidden)", "last-login": "never", "password": "{ARGON2ID}",
            "scram-sha-256": "yes", "apop": "no", "mechanisms": "USER PLAIN LOGIN SCRAM-SHA-256",
            "online": "no"})

    def test_quota_use_apop_imported_hash_and_tenant_mechanisms(self):
        admin("user", "quota", self.login, "1K")
        deliver(self.login, b"y" * 510 + b"\r\n")
        admin("user", "apop", self.login, "--secret", "apop-secret")
        admin("user", "passwd", self.login, "--hash", "{PLAIN}imported")
        psql("UPDATE popgate.users SET last_login_at = '2026-01-02 03:04:05+00'"
             f" WHERE local_part = '{self.login.split('@')[0]}'")
        shown = fields(admin("user", "show", self.login).stdout)
        self.assertEqual(shown["quota"], "1024 (1.0 KiB)")
        self.assertEqual(shown["used"], "512 (512 B)")
        self.assertEqual(shown["messages"], "1 (0 hidden)")
        self.assertEqual(shown["last-login"], "2026-01-02T03:04:05Z")
        self.assertEqual(shown["password"], "{PLAIN}")
        self.assertEqual(shown["scram-sha-256"], "no")
        self.assertEqual(shown["apop"], "yes")
        self.assertEqual(shown["mechanisms"], "USER PLAIN LOGIN APOP")
        admin("tenant", "set", self.domain, "--mechanisms", "APOP SCRAM-SHA-256")
        self.assertEqual(fields(admin("user", "show", self.login).stdout)["mechanisms"], "APOP")
        admin("tenant", "set", self.domain, "--mechanisms", "XOAUTH2")
        self.assertIn("none", fields(admin("user", "show", self.login).stdout)["mechanisms"])

    def test_errors(self):
        r = admin("user", "show", f"ghost@{self.domain}", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(admin("user", "show", check=False).returncode, 2)


class UserEnableTest(unittest.TestCase):
    def test_disable_enable(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        r = admin("user", "disable", login)
        self.assertEqual(r.stdout, f"disabled {login}\n")
        self.assertEqual(user_column(login, "enabled"), "false")
        self.assertEqual(fields(admin("user", "show", login).stdout)["enabled"], "no")
        admin("user", "disable", login)  # twice is fine
        r = admin("user", "enable", login)
        self.assertEqual(r.stdout, f"enabled {login}\n")
        self.assertEqual(user_column(login, "enabled"), "true")

    def test_disable_notes_an_open_session(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        psql("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
             " holder_session, lease_expires_at) SELECT tenant_id, user_id, 'x', 1,"
             f" now() + interval '1 minute' FROM popgate.users WHERE local_part ="
             f" '{login.split('@')[0]}'")
        r = admin("user", "disable", login)
        self.assertIn(f"note: a session is open; it goes on until it ends (popgate-admin kick "
                      f"{login})", r.stdout)
        self.assertEqual(psql("SELECT count(*) FROM popgate.maildrop_locks"
                              " WHERE kick_requested_at IS NOT NULL AND holder_instance = 'x'"
                              f" AND user_id = (SELECT user_id FROM popgate.users"
                              f" WHERE local_part = '{login.split('@')[0]}')"), "0")
        admin("user", "disable", login, "--kick")
        self.assertIn("(kick requested)", fields(admin("user", "show", login).stdout)["online"])

    def test_errors(self):
        for command in ("enable", "disable"):
            r = admin("user", command, "ghost@nowhere.test", check=False)
            self.assertEqual(r.returncode, 1)
            self.assertEqual(admin("user", command, check=False).returncode, 2)
        self.assertEqual(admin("user", "enable", "a@b.test", "--kick", check=False).returncode,
                         2)


class StatsTest(unittest.TestCase):
    def test_maildrop_stats(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        ids = [deliver(login, b"z" * (10 * i) + b"\r\n")["message_id"] for i in range(1, 5)]
        psql("UPDATE popgate.messages SET received_at = '2026-03-01 00:00:00+00'"
             f" WHERE message_id = {ids[0]}")
        psql("UPDATE popgate.messages SET received_at = '2026-03-09 00:00:00+00'"
             f" WHERE message_id = {ids[2]}")
        psql(f"UPDATE popgate.messages SET retrieved_at = now() WHERE message_id = {ids[1]}")
        psql("UPDATE popgate.messages SET hidden = true, received_at = '2020-01-01 00:00:00+00'"
             f" WHERE message_id = {ids[3]}")
        psql("UPDATE popgate.messages SET received_at = '2026-03-05 00:00:00+00'"
             f" WHERE message_id = {ids[1]}")
        admin("user", "quota", login, "1000")
        shown = fields(admin("maildrop", "stats", login).stdout)
        self.assertEqual(shown, {
            "login": login, "messages": "3", "bytes": "66 (66 B)", "quota": "1000 (1000 B)",
            "used": "108 (108 B, 10.8% of the quota)", "retrieved": "1", "unretrieved": "2",
            "hidden": "1 (42 B)", "oldest": "2026-03-01T00:00:00Z",
            "newest": "2026-03-09T00:00:00Z", "online": "no"})

    def test_empty_maildrop_and_errors(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        shown = fields(admin("maildrop", "stats", login).stdout)
        self.assertEqual((shown["messages"], shown["oldest"], shown["newest"]), ("0", "-", "-"))
        r = admin("maildrop", "stats", f"ghost@{domain}", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(admin("maildrop", "stats", check=False).returncode, 2)

    def test_tenant_stats(self):
        domain = new_tenant()
        a, _ = new_user(domain)
        b, _ = new_user(domain)
        admin("user", "disable", b)
        first = deliver(a, b"abc\r\n")["message_id"]
        deliver(b, b"defgh\r\n")
        psql("UPDATE popgate.messages SET hidden = true, retrieved_at = now()"
             f" WHERE message_id = {first}")
        psql("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
             " holder_session, lease_expires_at) SELECT tenant_id, user_id, 'x', 1,"
             f" now() + interval '1 minute' FROM popgate.users WHERE local_part ="
             f" '{b.split('@')[0]}'")
        rows = table(admin("tenant", "stats", domain).stdout)
        self.assertEqual(len(rows), 1)
        row = rows[0]
        self.assertEqual({k: v for k, v in row.items() if k != "OLDEST"}, {
            "DOMAIN": domain, "USERS": "2", "DISABLED": "1", "ONLINE": "1", "MESSAGES": "1",
            "BYTES": "7", "RETRIEVED": "0", "HIDDEN": "1", "HIDDEN_BYTES": "5"})
        self.assertRegex(row["OLDEST"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        empty = new_tenant()
        everyone = {r["DOMAIN"]: r for r in table(admin("tenant", "stats").stdout)}
        self.assertEqual(everyone[empty]["USERS"], "0")
        self.assertEqual(everyone[empty]["OLDEST"], "-")
        self.assertIn(domain, everyone)
        r = admin("tenant", "stats", "nowhere.test", check=False)
        self.assertEqual(r.returncode, 1)


if __name__ == "__main__":
    unittest.main()
