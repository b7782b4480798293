"""popgate-admin import from mbox files, .eml directories and Maildirs made
by hand: UIDL sources and their precedence, validation, idempotence,
quotas, progress, received times, and every error path with its exit code.
The import of a Maildir made by a real Dovecot is test_admin_dovecot_import.py.
"""

import hashlib
import os
import re
import shutil
import tempfile
import unittest

from popgate_testlib import admin, deliver, new_tenant, new_user, psql, stored_messages


def crlf(data):
    """What popgate stores: every line end CRLF, ending with CRLF."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    return out if out.endswith(b"\r\n") else out + b"\r\n"


def summary(imported, skipped, replaced):
    return f"imported {imported}, skipped {skipped} (already there), replaced-uidl {replaced}"


def received_epochs(login):
    local, domain = login.split("@")
    rows = psql("SELECT extract(epoch FROM m.received_at)::bigint FROM popgate.messages m "
                "JOIN popgate.users u USING (tenant_id, user_id) JOIN popgate.tenants t "
                f"USING (tenant_id) WHERE t.domain = '{domain}' AND u.local_part = '{local}' "
                "ORDER BY m.message_id")
    return [int(r) for r in rows.splitlines()]


class ImportCase(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.login, _ = new_user(self.domain)
        self.dir = tempfile.mkdtemp(prefix="popgate-import-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def write(self, relative, data, mtime=None):
        path = self.path(relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        if mtime is not None:
            os.utime(path, (mtime, mtime))
        return path

    def run_import(self, *args, login=None, check=True, input=None):
        return admin("import", login or self.login, *args, check=check, input=input)


MBOX = (b"From alice@example.org Thu Nov 27 07:04:55 2025\n"
        b"X-UIDL: legacy-1\n"
        b"Subject: one\n"
        b"\n"
        b">From the start of a line\n"
        b">>From quoted twice\n"
        b"\n"
        b"From bob Fri Nov 28 08:00:00 2025\n"
        b"Subject: two, no X-UIDL\n"
        b"\n"
        b"body two\n"
        b"\n"
        b"From carol Sat Nov 29 09:00:00 2025\n"
        b"X-UIDL: has a space\n"
        b"Subject: three, invalid X-UIDL\n"
        b"\n"
        b"body three\n"
        b"\n"
        b"From dave Sun Nov 30 10:00:00 2025\n"
        b"X-UIDL: legacy-1\n"
        b"Subject: four, a UIDL already used above\n"
        b"\n"
        b"body four\n")


class MboxTest(ImportCase):
    def test_mboxrd(self):
        mbox = self.write("inbox.mbox", MBOX)
        r = self.run_import("--mbox", mbox)
        self.assertIn(summary(4, 0, 2), r.stdout)
        self.assertIn("message 3: UIDL 'has a space' may hold only printable ASCII", r.stderr)
        self.assertIn("message 4: UIDL 'legacy-1' is used by an earlier message", r.stderr)
        stored = stored_messages(self.login)
        self.assertEqual([u for u, _ in stored][0], "legacy-1")
        for uidl, _ in stored[1:]:
            self.assertRegex(uidl, r"^[0-9a-f]{24}$")
        self.assertEqual(stored[0][1], b"X-UIDL: legacy-1\r\nSubject: one\r\n\r\n"
                                       b"From the start of a line\r\n>From quoted twice\r\n")
        self.assertEqual(stored[1][1], b"Subject: two, no X-UIDL\r\n\r\nbody two\r\n")
        self.assertEqual(received_epochs(self.login),
                         [1764227095, 1764316800, 1764406800, 1764496800])
        # Idempotent: the made-up UIDLs come out the same the second time.
        r = self.run_import("--mbox", mbox)
        self.assertIn(summary(0, 4, 0), r.stdout)
        self.assertEqual(stored_messages(self.login), stored)

    def test_mboxo(self):
        mbox = self.write("inbox.mbox", MBOX)
        self.run_import("--mbox", mbox, "--mbox-variant", "mboxo")
        body = stored_messages(self.login)[0][1]
        self.assertIn(b"\r\nFrom the start of a line\r\n>>From quoted twice\r\n", body)

    def test_identical_messages_get_distinct_uidls(self):
        same = b"From x Thu Nov 27 07:04:55 2025\nSubject: same\n\nsame\n\n"
        mbox = self.write("dup.mbox", same * 3 + b"From y\n\n")
        r = self.run_import("--mbox", mbox)
        self.assertIn(summary(3, 0, 0) + ", empty 1 (not stored)", r.stdout)
        self.assertIn("message 4 is empty; not stored", r.stderr)
        uidls = [u for u, _ in stored_messages(self.login)]
        self.assertEqual(uidls[1:], [uidls[0] + "-2", uidls[0] + "-3"])
        self.assertIn(summary(0, 3, 0), self.run_import("--mbox", mbox).stdout)

    def test_not_an_mbox(self):
        r = self.run_import("--mbox", self.write("x.eml", b"Subject: x\n\nbody\n"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("not an mbox", r.stderr)
        r = self.run_import("--mbox", self.path("missing.mbox"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot open", r.stderr)
        r = self.run_import("--mbox", self.dir, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("is a directory", r.stderr)


class EmlDirTest(ImportCase):
    def test_sorted_by_name_with_x_uidl_and_mtimes(self):
        self.write("eml/10.eml", b"Subject: ten\n\n10\n", mtime=1700000010)
        self.write("eml/02.eml", b"X-UIDL: two\nSubject: two\n\n2\n", mtime=1700000002)
        self.write("eml/01.eml", b"Subject: one\r\n\r\n1", mtime=1700000001)
        self.write("eml/.hidden", b"Subject: hidden\n\nno\n")
        os.makedirs(self.path("eml", "subdir"))
        r = self.run_import("--eml-dir", self.path("eml"))
        self.assertIn(summary(3, 0, 0), r.stdout)
        stored = stored_messages(self.login)
        self.assertEqual([b for _, b in stored], [b"Subject: one\r\n\r\n1\r\n",
                                                  b"X-UIDL: two\r\nSubject: two\r\n\r\n2\r\n",
                                                  b"Subject: ten\r\n\r\n10\r\n"])
        self.assertEqual(stored[1][0], "two")
        self.assertEqual(received_epochs(self.login), [1700000001, 1700000002, 1700000010])
        self.assertIn(summary(0, 3, 0), self.run_import("--eml-dir", self.path("eml")).stdout)

    def test_resumes_after_an_interruption(self):
        for i in range(10):
            self.write(f"eml/{i:02d}.eml", b"X-UIDL: m%d\n\nbody %d\n" % (i, i))
        self.run_import("--eml-dir", self.path("eml"))
        # As if the first run had stopped after five messages.
        psql("DELETE FROM popgate.messages WHERE uidl IN ('m5','m6','m7','m8','m9')"
             f" AND tenant_id = (SELECT tenant_id FROM popgate.tenants"
             f" WHERE domain = '{self.domain}')")
        r = self.run_import("--eml-dir", self.path("eml"), "--batch", "2")
        self.assertIn(summary(5, 5, 0), r.stdout)
        self.assertEqual([u for u, _ in stored_messages(self.login)],
                         [f"m{i}" for i in range(10)])

    def test_uidl_map_wins(self):
        self.write("eml/a.eml", b"X-UIDL: from-header\n\na\n")
        self.write("eml/b.eml", b"Subject: b\n\nb\n")
        self.write("eml/c.eml", b"Subject: c\n\nc\n")
        self.write("eml/d.eml", b"Subject: d\n\nd\n")
        mapping = self.write("map.tsv", b"# file name or number\n"
                                        b"a.eml\tmapped-a\n3\tmapped-third\r\n"
                                        b"d.eml\tbad uidl\nnope.eml\tunused\n")
        r = self.run_import("--eml-dir", self.path("eml"), "--uidl-map", mapping)
        self.assertIn(summary(4, 0, 1), r.stdout)
        self.assertIn("d.eml: UIDL 'bad uidl' may hold only printable ASCII", r.stderr)
        self.assertIn("--uidl-map key 'nope.eml' matched no message", r.stderr)
        uidls = [u for u, _ in stored_messages(self.login)]
        self.assertEqual(uidls[0], "mapped-a")
        self.assertRegex(uidls[1], r"^[0-9a-f]{24}$")
        self.assertEqual(uidls[2], "mapped-third")
        self.assertRegex(uidls[3], r"^[0-9a-f]{24}$")

    def test_bad_uidl_maps(self):
        self.write("eml/a.eml", b"a\n")
        for text, problem in ((b"a.eml mapped\n", "line 1: expected KEY<TAB>UIDL"),
                              (b"a.eml\tx\na.eml\ty\n", "line 2: key 'a.eml' appears twice")):
            with self.subTest(problem=problem):
                mapping = self.write("map.tsv", text)
                r = self.run_import("--eml-dir", self.path("eml"), "--uidl-map", mapping,
                                    check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn(problem, r.stderr)
        r = self.run_import("--eml-dir", self.path("eml"), "--uidl-map", self.path("none"),
                            check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("cannot open", r.stderr)
        self.assertEqual(stored_messages(self.login), [])

    def test_too_long_legacy_uidl_replaced(self):
        self.write("eml/a.eml", b"X-UIDL: " + b"x" * 71 + b"\n\na\n")
        self.write("eml/b.eml", b"X-UIDL: " + b"y" * 70 + b"\n\nb\n")
        r = self.run_import("--eml-dir", self.path("eml"))
        self.assertIn(summary(2, 0, 1), r.stdout)
        self.assertIn("is longer than 70 octets", r.stderr)
        self.assertEqual(stored_messages(self.login)[1][0], "y" * 70)

    def test_existing_messages_stay_first(self):
        deliver(self.login, b"Subject: delivered before\n\nx\n", uidl="old-1")
        self.write("eml/a.eml", b"X-UIDL: old-1\n\nsame UIDL: already there\n")
        self.write("eml/b.eml", b"X-UIDL: new-1\n\nb\n")
        r = self.run_import("--eml-dir", self.path("eml"))
        self.assertIn(summary(1, 1, 0), r.stdout)
        self.assertEqual([u for u, _ in stored_messages(self.login)], ["old-1", "new-1"])


def uidlist(validity, next_uid, *lines):
    return (f"3 V{validity} N{next_uid} G0123456789abcdef0123456789abcdef\n" +
            "".join(line + "\n" for line in lines)).encode()


class MaildirTest(ImportCase):
    def test_uidlist_order_extensions_and_unlisted_files(self):
        md = "Maildir"
        self.write(f"{md}/cur/1000.A.host,S=10:2,S", b"Subject: uid 1\n\n1\n")
        self.write(f"{md}/cur/1001.B.host:2,RS", b"Subject: uid 2, P\n\n2\n")
        self.write(f"{md}/new/1002.C.host", b"Subject: uid 3, O1\n\n3\n")
        self.write(f"{md}/new/0999.Z.host", b"Subject: not listed\n\nz\n")
        self.write(f"{md}/cur/1003.D.host:2,", b"Subject: uid 5, empty P\n\n5\n")
        os.makedirs(self.path(md, "tmp"))
        self.write(f"{md}/dovecot-uidlist", uidlist(
            1700000000, 7,
            "1 W12 :1000.A.host,S=10",        # flags in the name changed since
            "2 P0legacy-two :1001.B.host",
            "3 O1 :1002.C.host",
            "4 :1004.expunged.host",          # no file any more
            "5 P :1003.D.host:2,S"))          # empty P: the base file name
        r = self.run_import("--maildir", self.path(md))
        self.assertIn(summary(5, 0, 0), r.stdout)
        self.assertIn("1 message file(s) are not in dovecot-uidlist", r.stderr)
        stored = stored_messages(self.login)
        self.assertEqual([u for u, _ in stored][:4],
                         ["000000036553f100", "000000016553f100", "0legacy-two", "1003.D.host"])
        self.assertRegex(stored[4][0], r"^[0-9a-f]{24}$")
        self.assertEqual(stored[4][1], b"Subject: not listed\r\n\r\nz\r\n")
        self.assertIn(summary(0, 5, 0), self.run_import("--maildir", self.path(md)).stdout)

    def test_md5_and_custom_formats(self):
        self.write("md/cur/1.host:2,S", b"Subject: a\n\na\n")
        self.write("md/dovecot-uidlist", uidlist(7, 2, "1 :1.host"))
        r = self.run_import("--maildir", self.path("md"), "--uidl-format", "%m-%Xv.%{uid}")
        self.assertIn(summary(1, 0, 0), r.stdout)
        md5 = hashlib.md5(b"Subject: a\n\na\n").hexdigest()
        self.assertEqual(stored_messages(self.login)[0][0], f"{md5}-7.1")

    def test_without_uidlist(self):
        self.write("md/new/b.host", b"b\n")
        self.write("md/cur/a.host:2,S", b"a\n")
        r = self.run_import("--maildir", self.path("md"))
        self.assertIn("dovecot-uidlist does not exist", r.stderr)
        self.assertEqual([b for _, b in stored_messages(self.login)], [b"a\r\n", b"b\r\n"])

    def test_bad_maildirs(self):
        r = self.run_import("--maildir", self.dir, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("is not a Maildir", r.stderr)
        self.write("md/cur/1.host", b"a\n")
        self.write("md/dovecot-uidlist", b"3 V1 N2\n1 no-colon\n")
        r = self.run_import("--maildir", self.path("md"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("dovecot-uidlist: line 2: expected ':<filename>'", r.stderr)
        r = self.run_import("--maildir", self.path("md"), "--uidl-format", "%q", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("--uidl-format: UIDL format '%q': unknown variable 'q'", r.stderr)


class QuotaProgressUserTest(ImportCase):
    def eml_dir(self, count, size):
        for i in range(count):
            self.write(f"eml/{i:03d}.eml", b"X-UIDL: q%d\n\n" % i + b"x" * (size - 12) + b"\n")
        return self.path("eml")

    def test_quota_stops_the_import_and_a_rerun_resumes(self):
        admin("user", "quota", self.login, "250")
        directory = self.eml_dir(5, 100)  # about 100 octets each after CRLF
        r = self.run_import("--eml-dir", directory, check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(summary(2, 0, 0), r.stdout)
        self.assertIn("over quota: 002.eml", r.stderr)
        self.assertIn("--ignore-quota", r.stderr)
        self.assertEqual(len(stored_messages(self.login)), 2)
        r = self.run_import("--eml-dir", directory, "--ignore-quota")
        self.assertIn(summary(3, 2, 0), r.stdout)
        admin("user", "quota", self.login, "none")

    def test_progress_lines(self):
        directory = self.eml_dir(25, 50)
        r = self.run_import("--eml-dir", directory, "--progress-every", "10", "--batch", "7")
        lines = [line for line in r.stderr.splitlines() if line.startswith("import: ")]
        self.assertEqual(len(lines), 2, r.stderr)
        self.assertRegex(lines[0], r"^import: 10 messages \(10 imported, 0 skipped\), "
                                   r"[0-9.]+ [KMG]?i?B in [0-9.]+ s, \d+ messages/s, "
                                   r"[0-9.]+ [KMG]?i?B/s$")
        self.assertIn(summary(25, 0, 0), r.stdout)

    def test_create_user(self):
        login = f"new@{self.domain}"
        self.write("eml/a.eml", b"a\n")
        r = admin("import", login, "--eml-dir", self.path("eml"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn(f"no user '{login}'", r.stderr)
        r = admin("import", login, "--eml-dir", self.path("eml"), "--create-user")
        self.assertIn(f"added user {login}", r.stdout)
        self.assertRegex(r.stdout, r"password: [A-Za-z0-9_-]{16}")
        r = admin("import", login, "--eml-dir", self.path("eml"), "--create-user",
                  "--password", "ignored: the user exists")
        self.assertNotIn("added user", r.stdout)
        self.assertIn(summary(0, 1, 0), r.stdout)
        hashed = f"other@{self.domain}"
        admin("import", hashed, "--eml-dir", self.path("eml"), "--create-user",
              "--hash", "{PLAIN}secret")
        self.assertIn("{PLAIN}", admin("user", "show", hashed).stdout)
        r = admin("import", "x@no-such-tenant.test", "--eml-dir", self.path("eml"),
                  "--create-user", check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("unknown tenant 'no-such-tenant.test'", r.stderr)


class UsageTest(ImportCase):
    def test_usage_errors(self):
        eml = self.path("eml")
        os.makedirs(eml)
        for args in (["--eml-dir", eml, "--mbox", eml],      # two sources
                     [],                                      # none
                     ["--mbox", eml, "--uidl-format", "%u"],  # format without --maildir
                     ["--eml-dir", eml, "--mbox-variant", "mboxo"],
                     ["--mbox", eml, "--mbox-variant", "mboxcl"],
                     ["--eml-dir", eml, "--password", "x"],   # without --create-user
                     ["--eml-dir", eml, "--password-stdin"],
                     ["--eml-dir", eml, "--batch", "0"],
                     ["--eml-dir", eml, "--progress-every", "-1"]):
            with self.subTest(args=args):
                r = self.run_import(*args, check=False, input="pw\n")
                self.assertEqual(r.returncode, 2, r)
        r = admin("import", check=False)
        self.assertEqual(r.returncode, 2)

    def test_user_errors(self):
        os.makedirs(self.path("eml"))
        r = admin("import", "not-an-address", "--eml-dir", self.path("eml"), check=False)
        self.assertEqual(r.returncode, 1, r)
        r = self.run_import("--eml-dir", self.path("missing"), check=False)
        self.assertEqual(r.returncode, 1, r)
        self.assertIn("is not a directory", r.stderr)

    def test_database_errors(self):
        os.makedirs(self.path("eml"))
        r = admin("import", self.login, "--eml-dir", self.path("eml"), check=False,
                  database="host=127.0.0.1 port=1 dbname=popgate user=popgate connect_timeout=5")
        self.assertEqual(r.returncode, 3, r)
        self.assertIn("cannot reach the database", r.stderr)


if __name__ == "__main__":
    unittest.main()
