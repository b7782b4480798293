"""popgate-admin: SCRAM-SHA-256 credentials, --hash imports and APOP secrets."""

import base64
import hashlib
import hmac
import shutil
import subprocess
import unittest

from popgate_testlib import admin, admin_bin, new_tenant, new_user, psql, user_column

# doveadm pw -s SHA512-CRYPT -p 'sha512 crypt pw'  (Dovecot 2.3.19.1); used
# when doveadm is not installed, otherwise a fresh one is made.
SHA512_CRYPT = ("{SHA512-CRYPT}$6$FkpqdEXMChSgKUiE$D29FUha8Js.lkNhtuuhTRRgdhlhSqIqn6j27snXxihpTM"
                "qEHAqrUPXd4FUfiOBwfsm8N.5m04YIvlGLtozE3e/")
SHA512_CRYPT_PASSWORD = "sha512 crypt pw"
# doveadm pw -s SCRAM-SHA-256 -p 'scram256 pw'
SCRAM = ("{SCRAM-SHA-256}4096,3AyVXPHvJ61rt8BWA5gHjw==,XXpunCtaL3rLz62nZ7FpbxOmnqx27lSe7MEWOBqC0hg=,"
         "IXQIwHXThbg7nNgD4UFk5Q+1acU9JnA87h9vvod1KrU=")


def doveadm_hash(scheme, password):
    if not shutil.which("doveadm"):
        return None
    r = subprocess.run(["doveadm", "pw", "-s", scheme, "-p", password],
                       capture_output=True, text=True, timeout=60, check=True)
    return r.stdout.strip()


def dovecot_verifies(stored, password):
    """True/False from `doveadm pw -t`, or None when Dovecot is not installed."""
    if not shutil.which("doveadm"):
        return None
    r = subprocess.run(["doveadm", "pw", "-t", stored, "-p", password],
                       capture_output=True, text=True, timeout=60)
    return r.returncode == 0 and "(verified)" in r.stdout


def scram_matches(credential, password):
    """RFC 5802 key derivation in Python: does `credential` belong to `password`?"""
    prefix = "{SCRAM-SHA-256}"
    assert credential.startswith(prefix), credential
    iterations, salt, stored_key, server_key = credential[len(prefix):].split(",")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(salt),
                                 int(iterations))
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    return (base64.b64decode(stored_key) == hashlib.sha256(client_key).digest() and
            base64.b64decode(server_key) == hmac.new(salted, b"Server Key", "sha256").digest())


class ScramCredentialTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()

    def test_add_stores_scram(self):
        login, password = new_user(self.domain)
        scram = user_column(login, "scram_sha256")
        self.assertRegex(scram, r"^\{SCRAM-SHA-256\}4096,[A-Za-z0-9+/]{22}==,"
                                r"[A-Za-z0-9+/]{43}=,[A-Za-z0-9+/]{43}=$")
        self.assertTrue(scram_matches(scram, password))
        self.assertFalse(scram_matches(scram, password + "x"))
        self.assertIn(dovecot_verifies(scram, password), (True, None))

    def test_generated_password_gets_scram_too(self):
        login = f"gen@{self.domain}"
        out = admin("user", "add", login).stdout
        password = out.splitlines()[1].split(": ")[1]
        self.assertTrue(scram_matches(user_column(login, "scram_sha256"), password))

    def test_passwd_replaces_scram(self):
        login, password = new_user(self.domain)
        before = user_column(login, "scram_sha256")
        admin("user", "passwd", login, "--password-stdin", input="second pw\n")
        after = user_column(login, "scram_sha256")
        self.assertNotEqual(before, after)
        self.assertTrue(scram_matches(after, "second pw"))
        self.assertFalse(scram_matches(after, password))


class HashImportTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()

    def test_sha512_crypt_from_doveadm_is_stored_verbatim(self):
        stored = doveadm_hash("SHA512-CRYPT", SHA512_CRYPT_PASSWORD) or SHA512_CRYPT
        self.assertTrue(stored.startswith("{SHA512-CRYPT}$6$"), stored)
        login = f"imported@{self.domain}"
        r = admin("user", "add", login, "--hash", stored)
        lines = r.stdout.splitlines()
        self.assertEqual(lines[0], f"added user {login}")
        self.assertIn("imported a {SHA512-CRYPT} hash", lines[1])
        self.assertIn("SCRAM-SHA-256 logins fail", lines[1])
        self.assertNotIn("password:", r.stdout)
        self.assertEqual(user_column(login, "password_hash"), stored)
        self.assertEqual(user_column(login, "scram_sha256"), "")
        self.assertEqual(psql("SELECT scram_sha256 IS NULL FROM popgate.users u JOIN "
                              "popgate.tenants t USING (tenant_id) WHERE t.domain = "
                              f"'{self.domain}' AND u.local_part = 'imported'"), "t")

    def test_imported_scram_fills_both_columns(self):
        login = f"scram@{self.domain}"
        r = admin("user", "add", login, "--hash", SCRAM)
        self.assertIn("it also serves SCRAM-SHA-256", r.stdout)
        self.assertEqual(user_column(login, "password_hash"), SCRAM)
        self.assertEqual(user_column(login, "scram_sha256"), SCRAM)
        # Lowercase scheme names are Dovecot's too; the SCRAM column gets the
        # canonical spelling its CHECK constraint wants.
        lower = "{scram-sha-256}" + SCRAM[len("{SCRAM-SHA-256}"):]
        admin("user", "add", f"lower@{self.domain}", "--hash", lower)
        self.assertEqual(user_column(f"lower@{self.domain}", "password_hash"), lower)
        self.assertEqual(user_column(f"lower@{self.domain}", "scram_sha256"), SCRAM)

    def test_other_schemes_import(self):
        for scheme, password in (("SSHA512", "a"), ("PBKDF2", "b"), ("BLF-CRYPT", "c"),
                                 ("SHA256-CRYPT", "d"), ("PLAIN", "e")):
            stored = doveadm_hash(scheme, password)
            if stored is None:
                self.skipTest("doveadm not installed")
            with self.subTest(scheme=scheme):
                login = f"{scheme.lower()}@{self.domain}"
                admin("user", "add", login, "--hash", stored)
                self.assertEqual(user_column(login, "password_hash"), stored)

    def test_passwd_hash_then_password(self):
        login, _ = new_user(self.domain)
        self.assertNotEqual(user_column(login, "scram_sha256"), "")
        r = admin("user", "passwd", login, "--hash", SHA512_CRYPT)
        self.assertEqual(r.stdout.splitlines()[0], f"changed the password of {login}")
        self.assertEqual(user_column(login, "password_hash"), SHA512_CRYPT)
        self.assertEqual(user_column(login, "scram_sha256"), "")  # no stale credential
        admin("user", "passwd", login, "--password", "fresh")
        self.assertTrue(user_column(login, "password_hash").startswith("{ARGON2ID}"))
        self.assertTrue(scram_matches(user_column(login, "scram_sha256"), "fresh"))

    def test_refused_hashes(self):
        cases = {
            "{FOO}bar": "not a password scheme",
            "plaintext": "not a password scheme",
            "{CRAM-MD5}1234": "not a password scheme",
            "{CRYPT}$md5$abc$$kdHOzWryR1yllNTXdT6hs/": "not a password scheme",
            "{SHA}not base64!": "malformed",
            "{SHA512-CRYPT}$6$short": "malformed",
            "{BLF-CRYPT}$2y$20$pOue6E/BEGd0jI.xfUZAWe2mya2AQGzk0A5vyt/1WzZ6JAINQBiDS": "malformed",
            "{PBKDF2}$1$salt$5000000$57c052366b233e49613f1bb11f0372b2ab1485d1": "malformed",
            "": "not a password scheme",
        }
        for stored, message in cases.items():
            with self.subTest(hash=stored):
                r = admin("user", "add", f"bad@{self.domain}", "--hash", stored, check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("--hash", r.stderr)
                self.assertIn(message, r.stderr)
        login, _ = new_user(self.domain)
        before = user_column(login, "password_hash")
        r = admin("user", "passwd", login, "--hash", "{FOO}bar", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(user_column(login, "password_hash"), before)
        self.assertEqual(psql("SELECT count(*) FROM popgate.users u JOIN popgate.tenants t "
                              f"USING (tenant_id) WHERE t.domain = '{self.domain}' "
                              "AND u.local_part = 'bad'"), "0")

    def test_hash_excludes_passwords(self):
        for extra in (["--password", "x"], ["--password-stdin"]):
            with self.subTest(extra=extra):
                r = admin("user", "add", f"x@{self.domain}", "--hash", SCRAM, *extra,
                          input="y\n", check=False)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("excludes", r.stderr)

    def test_help_explains_scram(self):
        r = subprocess.run([admin_bin(), "user", "add", "--help"], capture_output=True,
                           text=True, timeout=60, check=False)
        self.assertEqual(r.returncode, 0)
        self.assertIn("--hash", r.stdout)
        self.assertIn("SCRAM-SHA-256", r.stdout)


class ApopSecretTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.login, _ = new_user(self.domain)

    def test_set_and_clear(self):
        self.assertEqual(user_column(self.login, "apop_secret"), "")
        r = admin("user", "apop", self.login.upper(), "--secret", "tanstaaf")
        self.assertEqual(r.stdout.strip(), f"set the APOP secret of {self.login}")
        self.assertEqual(user_column(self.login, "apop_secret"), "tanstaaf")
        admin("user", "apop", self.login, "--secret-stdin", input="from stdin\r\nignored\n")
        self.assertEqual(user_column(self.login, "apop_secret"), "from stdin")
        r = admin("user", "apop", self.login, "--clear")
        self.assertEqual(r.stdout.strip(), f"cleared the APOP secret of {self.login}")
        self.assertEqual(psql("SELECT count(*) FROM popgate.users u JOIN popgate.tenants t "
                              f"USING (tenant_id) WHERE t.domain = '{self.domain}' "
                              "AND u.apop_secret IS NULL"), "1")

    def test_passwords_do_not_touch_apop(self):
        admin("user", "apop", self.login, "--secret", "kept")
        admin("user", "passwd", self.login, "--password", "new")
        self.assertEqual(user_column(self.login, "apop_secret"), "kept")

    def test_errors(self):
        r = admin("user", "apop", self.login, check=False)
        self.assertEqual(r.returncode, 2)
        self.assertIn("--secret", r.stderr)
        for args in (["--secret", "x", "--clear"], ["--secret", "x", "--secret-stdin"],
                     ["--secret-stdin", "--clear"]):
            with self.subTest(args=args):
                r = admin("user", "apop", self.login, *args, check=False)
                self.assertEqual(r.returncode, 2, r)
                self.assertIn("excludes", r.stderr)
        r = admin("user", "apop", self.login, "--secret", "", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("empty APOP secret", r.stderr)
        r = admin("user", "apop", self.login, "--secret-stdin", input="", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("--secret-stdin: nothing on standard input", r.stderr)
        r = admin("user", "apop", f"ghost@{self.domain}", "--secret", "x", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"no user 'ghost@{self.domain}'", r.stderr)
        r = admin("user", "apop", "nobody@nowhere.test", "--clear", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'nowhere.test'", r.stderr)
        self.assertEqual(user_column(self.login, "apop_secret"), "")

    def test_help_warns(self):
        r = subprocess.run([admin_bin(), "user", "apop", "--help"], capture_output=True,
                           text=True, timeout=60, check=False)
        self.assertEqual(r.returncode, 0)
        self.assertIn("plain text", r.stdout)


if __name__ == "__main__":
    unittest.main()
