"""popgate-admin tenant and user commands, including every error path."""

import os
import shutil
import subprocess
import unittest

from popgate_testlib import admin, deliver, new_tenant, new_user, psql


def stored_hash(login):
    local, domain = login.split("@")
    return psql("SELECT password_hash FROM popgate.users u JOIN popgate.tenants t "
                f"USING (tenant_id) WHERE t.domain = '{domain}' AND u.local_part = '{local}'")


def dovecot_verifies(stored, password):
    """True/False from `doveadm pw -t`, or None when Dovecot is not installed."""
    if not shutil.which("doveadm"):
        return None
    r = subprocess.run(["doveadm", "pw", "-t", stored, "-p", password],
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0 and "(verified)" in r.stdout


def rows(table_output):
    """A list table's data rows as lists of fields (header dropped)."""
    return [line.split() for line in table_output.splitlines()[1:]]


class TenantTest(unittest.TestCase):
    def test_add_lowercases_and_lists(self):
        domain = new_tenant()
        upper = "X" + domain.upper()
        r = admin("tenant", "add", upper)
        self.assertEqual(r.stdout.strip(), f"added tenant {upper.lower()}")
        listed = {row[0]: row[1:] for row in rows(admin("tenant", "list").stdout)}
        self.assertEqual(listed[domain], ["0", "0", "0"])
        self.assertIn(upper.lower(), listed)

    def test_list_counts_users_messages_bytes(self):
        domain = new_tenant()
        a, _ = new_user(domain)
        new_user(domain)
        deliver(a, b"Subject: 1\r\n\r\nx\r\n")
        deliver(a, b"Subject: 2\r\n\r\nyy\r\n")
        listed = {row[0]: row[1:] for row in rows(admin("tenant", "list").stdout)}
        self.assertEqual(listed[domain], ["2", "2", str(17 + 18)])

    def test_duplicate(self):
        domain = new_tenant()
        r = admin("tenant", "add", domain.upper(), check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"tenant '{domain}' already exists", r.stderr)

    def test_invalid_domains(self):
        for bad in ("", "-a.test", "a-.test", "a..test", ".a.test", "a.test.", "a b.test",
                    "a_b.test", "bücher.test", "a@b.test", "x" * 64 + ".test",
                    ".".join(["abcdefghi"] * 26)):
            with self.subTest(domain=bad):
                r = admin("tenant", "add", "--", bad, check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("domain", r.stderr)


class UserAddTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()

    def test_generated_password_is_printed_and_hashed(self):
        login = f"Gen@{self.domain.upper()}"
        r = admin("user", "add", login)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], f"added user gen@{self.domain}")
        self.assertRegex(lines[1], r"^password: [A-Za-z0-9_-]{16}$")
        password = lines[1].split(": ")[1]
        stored = stored_hash(f"gen@{self.domain}")
        self.assertTrue(stored.startswith("{ARGON2ID}$argon2id$v=19$"), stored)
        self.assertNotIn(password, stored)
        self.assertIn(dovecot_verifies(stored, password), (True, None))

    def test_password_option_and_stdin(self):
        admin("user", "add", f"opt@{self.domain}", "--password", "from option")
        admin("user", "add", f"std@{self.domain}", "--password-stdin",
              input="  from stdin  \r\nsecond line ignored\n")
        self.assertIn(dovecot_verifies(stored_hash(f"opt@{self.domain}"), "from option"),
                      (True, None))
        self.assertIn(dovecot_verifies(stored_hash(f"std@{self.domain}"), "  from stdin  "),
                      (True, None))
        r = admin("user", "add", f"quiet@{self.domain}", "--password", "x")
        self.assertNotIn("password", r.stdout)

    def test_doveadm_sees_our_hashes(self):
        if not shutil.which("doveadm"):
            self.skipTest("doveadm not installed")
        login, password = new_user(self.domain)
        self.assertTrue(dovecot_verifies(stored_hash(login), password))
        self.assertFalse(dovecot_verifies(stored_hash(login), password + "x"))

    def test_quota(self):
        admin("user", "add", f"q@{self.domain}", "--password", "x", "--quota", "1048576")
        listed = {row[0]: row for row in rows(admin("user", "list", self.domain).stdout)}
        self.assertEqual(listed[f"q@{self.domain}"][2], "1048576")
        for bad in ("-1", "1k", "", "99999999999999999999"):
            with self.subTest(quota=bad):
                r = admin("user", "add", f"qq@{self.domain}", "--password", "x", "--quota", bad,
                          check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("--quota", r.stderr)

    def test_duplicate_user(self):
        login, _ = new_user(self.domain)
        r = admin("user", "add", login.upper(), "--password", "x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"user '{login}' already exists", r.stderr)

    def test_unknown_tenant(self):
        r = admin("user", "add", "a@no-such-tenant.test", "--password", "x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'no-such-tenant.test'", r.stderr)

    def test_bad_local_parts(self):
        for bad in ("", "a b", "a\tb", "tab\x7f", "x" * 65, "a@b", "a\u0085b", "no-at-sign",
                    "\u00e9" * 33):  # 66 octets of UTF-8
            address = bad if bad == "no-at-sign" else f"{bad}@{self.domain}"
            with self.subTest(address=address):
                r = admin("user", "add", address, "--password", "x", check=False)
                self.assertEqual(r.returncode, 1, r)
        admin("user", "add", "x" * 64 + f"@{self.domain}", "--password", "x")
        # RFC 6531 UTF-8 local parts are fine (stored as given, ASCII lowercased).
        admin("user", "add", f"Caf\u00e9@{self.domain}", "--password", "x")
        self.assertIn(f"caf\u00e9@{self.domain}", admin("user", "list", self.domain).stdout)

    def test_password_option_combinations(self):
        login = f"combo@{self.domain}"
        r = admin("user", "add", login, "--password", "x", "--password-stdin", input="y\n",
                  check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("excludes", r.stderr)
        r = admin("user", "add", login, "--password", "", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("empty password", r.stderr)
        r = admin("user", "add", login, "--password-stdin", input="", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing on standard input", r.stderr)
        r = admin("user", "add", login, "--password-stdin", input="\n", check=False)
        self.assertEqual(r.returncode, 1)
        r = admin("user", "passwd", login, "--password", "x", "--password-stdin", check=False)
        self.assertEqual(r.returncode, 2)
        self.assertEqual(psql("SELECT count(*) FROM popgate.users u JOIN popgate.tenants t "
                              f"USING (tenant_id) WHERE t.domain = '{self.domain}'"), "0")


class UserChangeTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.login, self.password = new_user(self.domain)

    def test_passwd(self):
        before = stored_hash(self.login)
        r = admin("user", "passwd", self.login.upper(), "--password-stdin", input="new pw\n")
        self.assertEqual(r.stdout.strip(), f"changed the password of {self.login}")
        after = stored_hash(self.login)
        self.assertNotEqual(before, after)
        self.assertIn(dovecot_verifies(after, "new pw"), (True, None))
        generated = admin("user", "passwd", self.login).stdout
        self.assertRegex(generated, r"password: [A-Za-z0-9_-]{16}\n")

    def test_passwd_unknown(self):
        r = admin("user", "passwd", f"ghost@{self.domain}", "--password", "x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"no user 'ghost@{self.domain}'", r.stderr)
        r = admin("user", "passwd", "ghost@nowhere.test", "--password", "x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'nowhere.test'", r.stderr)

    def test_del_cascades(self):
        deliver(self.login, b"a\r\n")
        deliver(self.login, b"bb\r\n")
        psql("INSERT INTO popgate.maildrop_locks (tenant_id, user_id, holder_instance,"
             " holder_session, lease_expires_at) SELECT tenant_id, user_id, 'test', 1, now()"
             f" FROM popgate.users WHERE local_part = '{self.login.split('@')[0]}'")
        r = admin("user", "del", self.login)
        self.assertEqual(r.stdout.strip(), f"deleted user {self.login} (2 messages, 7 bytes)")
        local = self.login.split("@")[0]
        self.assertEqual(psql(f"SELECT count(*) FROM popgate.users WHERE local_part = '{local}'"),
                         "0")
        tenant = psql(f"SELECT tenant_id FROM popgate.tenants WHERE domain = '{self.domain}'")
        self.assertEqual(psql(f"SELECT count(*) FROM popgate.messages WHERE tenant_id = {tenant}"),
                         "0")
        self.assertEqual(
            psql(f"SELECT count(*) FROM popgate.maildrop_locks WHERE tenant_id = {tenant}"), "0")
        r = admin("user", "del", self.login, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user", r.stderr)

    def test_list(self):
        other, _ = new_user(self.domain)
        deliver(other, b"hello\r\n")
        out = admin("user", "list", self.domain.upper()).stdout
        self.assertEqual(out.splitlines()[0].split(),
                         ["LOGIN", "ENABLED", "QUOTA", "MESSAGES", "BYTES"])
        listed = {row[0]: row[1:] for row in rows(out)}
        self.assertEqual(listed, {self.login: ["yes", "-", "0", "0"],
                                  other: ["yes", "-", "1", "7"]})
        everyone = {row[0] for row in rows(admin("user", "list").stdout)}
        self.assertTrue({self.login, other} <= everyone)

    def test_list_unknown_tenant(self):
        r = admin("user", "list", "nowhere.test", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'nowhere.test'", r.stderr)


if __name__ == "__main__":
    unittest.main()
