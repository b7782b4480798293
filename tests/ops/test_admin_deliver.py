"""popgate-admin deliver and maildrop list: CRLF normalisation byte for
byte, binary safety, large messages, UIDLs, and every error path."""

import base64
import hashlib
import os
import random
import re
import tempfile
import unittest

from popgate_testlib import admin, deliver, new_tenant, new_user, psql


def crlf(data):
    """What popgate stores: every line end CRLF, ending with CRLF."""
    out = re.sub(rb"\r\n|\r|\n", b"\r\n", data)
    return out if out.endswith(b"\r\n") else out + b"\r\n"


def stored_body(message_id):
    return base64.b64decode(psql(
        f"SELECT encode(body, 'base64') FROM popgate.messages WHERE message_id = {message_id}"))


def stored_row(message_id):
    size, octets, uidl = psql("SELECT size_bytes, octet_length(body), uidl FROM popgate.messages"
                              f" WHERE message_id = {message_id}").split("|")
    return int(size), int(octets), uidl


def maildrop(login):
    """(rows, total line) of `maildrop list`; rows as lists of fields."""
    lines = admin("maildrop", "list", login).stdout.splitlines()
    return [line.split() for line in lines[1:-1]], lines[-1]


class DeliverTest(unittest.TestCase):
    def setUp(self):
        self.domain = new_tenant()
        self.login, _ = new_user(self.domain)

    def check_stored(self, raw, expected=None):
        expected = crlf(raw) if expected is None else expected
        info = deliver(self.login, raw)
        self.assertEqual(info["size"], len(expected))
        self.assertEqual(stored_row(info["message_id"]),
                         (len(expected), len(expected), info["uidl"]))
        self.assertEqual(stored_body(info["message_id"]), expected)
        return info

    def test_line_endings_normalised_byte_exact(self):
        cases = {
            b"Subject: lf\n\nbody\n": b"Subject: lf\r\n\r\nbody\r\n",
            b"Subject: crlf\r\n\r\nbody\r\n": b"Subject: crlf\r\n\r\nbody\r\n",
            b"Subject: cr\r\rbody\r": b"Subject: cr\r\n\r\nbody\r\n",
            b"A\nB\r\nC\rD\r\r\nE": b"A\r\nB\r\nC\r\nD\r\n\r\nE\r\n",
            b"no newline at all": b"no newline at all\r\n",
            b"\n\r\n\r": b"\r\n\r\n\r\n",
            b"x\n\n\n": b"x\r\n\r\n\r\n",
            b".\n..\n.x\n": b".\r\n..\r\n.x\r\n",
        }
        for raw, expected in cases.items():
            with self.subTest(raw=raw):
                self.assertEqual(crlf(raw), expected)  # the oracle agrees
                self.check_stored(raw, expected)

    def test_nul_and_high_bytes_kept(self):
        raw = b"Subject: bin\r\n\r\n\x00\x01\xff\xfe\x00\n\x00" + bytes(range(256))
        self.check_stored(raw)

    def test_twenty_mib_message_intact(self):
        seed = int(os.environ.get("POPGATE_TEST_SEED", random.randrange(1 << 32)))
        print(f"test_twenty_mib_message_intact: POPGATE_TEST_SEED={seed}")
        rng = random.Random(seed)
        # Printable ASCII, NULs, and LF, CR and (by chance) CRLF line ends.
        table = bytes(10 if i < 2 else 13 if i == 2 else 0 if i == 3 else 32 + i % 95
                      for i in range(256))
        body = rng.randbytes(20 * 1024 * 1024).translate(table)
        raw = b"Subject: big\n\n" + body
        expected = crlf(raw)
        info = deliver(self.login, raw)
        self.assertEqual(info["size"], len(expected))
        self.assertEqual(psql("SELECT md5(body), octet_length(body) FROM popgate.messages"
                              f" WHERE message_id = {info['message_id']}"),
                         f"{hashlib.md5(expected).hexdigest()}|{len(expected)}")
        self.assertEqual(stored_body(info["message_id"]), expected)

    def test_sources_file_dash_and_stdin(self):
        with tempfile.NamedTemporaryFile(suffix=".eml") as f:
            f.write(b"Subject: file\n\nfrom a file\n")
            f.flush()
            r = admin("deliver", self.login, f.name)
        self.assertRegex(r.stdout, rf"^delivered to {re.escape(self.login)}: message_id=\d+ "
                                   r"size=30 uidl=[0-9a-f]{16}\n$")
        admin("deliver", self.login, "-", input=b"dash\n")
        admin("deliver", self.login, input=b"implicit stdin\n")
        rows, total = maildrop(self.login)
        self.assertEqual([r[2] for r in rows], ["30", "6", "16"])
        self.assertEqual(total, "total: 3 messages, 52 bytes")

    def test_uidl(self):
        info = deliver(self.login, b"a\n", uidl="custom-UIDL.1")
        self.assertEqual(info["uidl"], "custom-UIDL.1")
        self.assertEqual(stored_row(info["message_id"])[2], "custom-UIDL.1")
        longest = "~" * 70
        self.assertEqual(deliver(self.login, b"b\n", uidl=longest)["uidl"], longest)
        generated = {deliver(self.login, b"c\n")["uidl"] for _ in range(3)}
        self.assertEqual(len(generated), 3)
        for uidl in generated:
            self.assertRegex(uidl, r"^[0-9a-f]{16}$")

    def test_duplicate_uidl(self):
        deliver(self.login, b"a\n", uidl="same")
        r = admin("deliver", self.login, "--uidl", "same", input=b"b\n", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("UIDL 'same' is already used", r.stderr)
        other, _ = new_user(self.domain)
        deliver(other, b"a\n", uidl="same")  # UIDLs are per maildrop

    def test_bad_uidls(self):
        for bad in ("", "has space", "x" * 71, "tab\there", "caf\u00e9", "del\x7f"):
            with self.subTest(uidl=bad):
                r = admin("deliver", self.login, "--uidl", bad, input=b"a\n", check=False)
                self.assertEqual(r.returncode, 1, r)
                self.assertIn("UIDL", r.stderr)
        self.assertEqual(maildrop(self.login)[1], "total: 0 messages, 0 bytes")

    def test_empty_message(self):
        r = admin("deliver", self.login, input=b"", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("empty message from standard input", r.stderr)
        with tempfile.NamedTemporaryFile() as f:
            r = admin("deliver", self.login, f.name, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"empty message from '{f.name}'", r.stderr)

    def test_unreadable_files(self):
        with tempfile.TemporaryDirectory() as d:
            missing = os.path.join(d, "missing.eml")
            r = admin("deliver", self.login, missing, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"cannot open '{missing}'", r.stderr)
            r = admin("deliver", self.login, d, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn(f"cannot read '{d}'", r.stderr)

    def test_unknown_user_or_tenant(self):
        r = admin("deliver", f"ghost@{self.domain}", input=b"a\n", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn(f"no user 'ghost@{self.domain}'", r.stderr)
        r = admin("deliver", "a@nowhere.test", input=b"a\n", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("unknown tenant 'nowhere.test'", r.stderr)
        r = admin("deliver", "not-an-address", input=b"a\n", check=False)
        self.assertEqual(r.returncode, 1)


class MaildropListTest(unittest.TestCase):
    def test_lists_in_delivery_order_with_msn(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        infos = [deliver(login, body) for body in (b"one\n", b"two two\n", b"three\n")]
        rows, total = maildrop(login.upper())
        self.assertEqual([r[0] for r in rows], ["1", "2", "3"])
        self.assertEqual([int(r[1]) for r in rows], [i["message_id"] for i in infos])
        self.assertEqual([int(r[2]) for r in rows], [5, 9, 7])
        self.assertEqual([r[3] for r in rows], [i["uidl"] for i in infos])
        for r in rows:
            self.assertRegex(r[4], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
        self.assertEqual(total, "total: 3 messages, 21 bytes")

    def test_empty_and_unknown(self):
        domain = new_tenant()
        login, _ = new_user(domain)
        rows, total = maildrop(login)
        self.assertEqual((rows, total), ([], "total: 0 messages, 0 bytes"))
        r = admin("maildrop", "list", f"ghost@{domain}", check=False)
        self.assertEqual(r.returncode, 1)
        self.assertIn("no user", r.stderr)


if __name__ == "__main__":
    unittest.main()
