"""popgate-admin tenant set|show: a tenant's login policy (schema v2)."""

import unittest

from popgate_testlib import admin, new_tenant, psql, tenant_column

DEFAULTS = {
    "login-delay": "0",
    "expire-days": "never",
    "require-tls": "no",
    "sessions-max": "default",
    "logins-per-minute": "default",
    "mechanisms": "all",
    "delete-mode": "delete",
    "retention-days": "never",
}


def show(domain):
    """`tenant show` as a dict."""
    out = admin("tenant", "show", domain).stdout
    policy = {}
    for line in out.splitlines():
        key, value = line.split(None, 1)
        policy[key] = value.strip()
    return policy


class TenantPolicyTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()

    def test_defaults(self):
        self.assertEqual(show(self.domain), {"domain": self.domain, **DEFAULTS})

    def test_round_trip(self):
        r = admin("tenant", "set", self.domain.upper(), "--login-delay", "300", "--expire-days",
                  "30", "--require-tls", "YES", "--sessions-max", "50", "--logins-per-minute",
                  "120", "--mechanisms", "plain, scram-sha-256 oauthbearer PLAIN")
        self.assertEqual(r.stdout.strip(), f"changed the policy of tenant {self.domain}")
        self.assertEqual(show(self.domain), {
            "domain": self.domain, "login-delay": "300", "expire-days": "30",
            "require-tls": "yes", "sessions-max": "50", "logins-per-minute": "120",
            "mechanisms": "PLAIN SCRAM-SHA-256 OAUTHBEARER", "delete-mode": "delete",
            "retention-days": "never"})
        row = psql("SELECT login_delay_s, expire_days, require_tls, sessions_max, "
                   "logins_per_minute, mechanisms FROM popgate.tenants "
                   f"WHERE domain = '{self.domain}'")
        self.assertEqual(row, "300|30|t|50|120|{PLAIN,SCRAM-SHA-256,OAUTHBEARER}")

    def test_unset_options_are_kept(self):
        admin("tenant", "set", self.domain, "--login-delay", "60", "--mechanisms", "USER APOP")
        admin("tenant", "set", self.domain, "--require-tls", "yes")
        policy = show(self.domain)
        self.assertEqual(policy["login-delay"], "60")
        self.assertEqual(policy["mechanisms"], "USER APOP")
        self.assertEqual(policy["require-tls"], "yes")
        self.assertEqual(policy["expire-days"], "never")

    def test_keywords_reset_to_null(self):
        admin("tenant", "set", self.domain, "--expire-days", "0", "--sessions-max", "1",
              "--logins-per-minute", "2", "--mechanisms", "xoauth2", "--require-tls", "yes")
        self.assertEqual(tenant_column(self.domain, "expire_days"), "0")
        admin("tenant", "set", self.domain, "--expire-days", "never", "--sessions-max", "default",
              "--logins-per-minute", "DEFAULT", "--mechanisms", "all", "--require-tls", "no",
              "--login-delay", "0")
        self.assertEqual(show(self.domain), {"domain": self.domain, **DEFAULTS})
        nulls = psql("SELECT expire_days IS NULL, sessions_max IS NULL, "
                     "logins_per_minute IS NULL, mechanisms IS NULL FROM popgate.tenants "
                     f"WHERE domain = '{self.domain}'")
        self.assertEqual(nulls, "t|t|t|t")

    def test_retention_days_round_trip(self):
        admin("tenant", "set", self.domain, "--retention-days", "90")
        self.assertEqual(show(self.domain)["retention-days"], "90")
        self.assertEqual(tenant_column(self.domain, "retention_days"), "90")
        admin("tenant", "set", self.domain, "--retention-days", "NEVER")
        self.assertEqual(show(self.domain)["retention-days"], "never")
        self.assertEqual(psql("SELECT retention_days IS NULL FROM popgate.tenants "
                              f"WHERE domain = '{self.domain}'"), "t")

    def test_every_mechanism_name(self):
        names = "USER PLAIN LOGIN SCRAM-SHA-256 OAUTHBEARER XOAUTH2 APOP"
        admin("tenant", "set", self.domain, "--mechanisms", names.lower())
        self.assertEqual(show(self.domain)["mechanisms"], names)

    def test_invalid_values(self):
        cases = [
            ("--login-delay", "-1"), ("--login-delay", "x"), ("--login-delay", ""),
            ("--login-delay", "2147483648"), ("--login-delay", "1.5"),
            ("--expire-days", "-1"), ("--expire-days", "forever"),
            ("--require-tls", "maybe"), ("--require-tls", "true"),
            ("--sessions-max", "0"), ("--sessions-max", "-3"), ("--sessions-max", "none"),
            ("--logins-per-minute", "0"), ("--logins-per-minute", "99999999999"),
            ("--mechanisms", "CRAM-MD5"), ("--mechanisms", "PLAIN bogus"), ("--mechanisms", ""),
            ("--mechanisms", " , "), ("--mechanisms", "SCRAM-SHA-256-PLUS"),
            ("--retention-days", "0"), ("--retention-days", "-5"), ("--retention-days", "x"),
            ("--retention-days", "2147483648"),
        ]
        for option, value in cases:
            with self.subTest(option=option, value=value):
                r = admin("tenant", "set", self.domain, option, value, check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn(option, r.stderr)
        # Nothing was changed by any of them.
        self.assertEqual(show(self.domain), {"domain": self.domain, **DEFAULTS})

    def test_one_bad_option_changes_nothing(self):
        r = admin("tenant", "set", self.domain, "--login-delay", "10", "--sessions-max", "0",
                  check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(show(self.domain)["login-delay"], "0")

    def test_nothing_to_set(self):
        r = admin("tenant", "set", self.domain, check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("nothing to change", r.stderr)

    def test_unknown_and_invalid_tenants(self):
        for command in (["set", "nowhere.test", "--login-delay", "1"], ["show", "nowhere.test"]):
            with self.subTest(command=command):
                r = admin("tenant", *command, check=False)
                self.assertEqual(r.returncode, 1)
                self.assertIn("unknown tenant 'nowhere.test'", r.stderr)
        r = admin("tenant", "show", "bad_domain", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("domain", r.stderr)
        r = admin("tenant", "show", check=False)
        self.assertEqual(r.returncode, 2)

    def test_show_reads_what_psql_wrote(self):
        psql("UPDATE popgate.tenants SET login_delay_s = 7, expire_days = 3, require_tls = true, "
             "sessions_max = 9, logins_per_minute = 11, mechanisms = '{APOP,USER}' "
             f"WHERE domain = '{self.domain}'")
        self.assertEqual(show(self.domain), {
            "domain": self.domain, "login-delay": "7", "expire-days": "3", "require-tls": "yes",
            "sessions-max": "9", "logins-per-minute": "11", "mechanisms": "APOP USER",
            "delete-mode": "delete", "retention-days": "never"})


if __name__ == "__main__":
    unittest.main()
