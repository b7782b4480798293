"""popgate-admin import of a Maildir made and served by a real Dovecot.

Each test runs Dovecot's POP3 server (Debian dovecot-pop3d) privately on
loopback (popgate_testlib.PrivateDovecot: its own config, base and state
directories, passwd-file and log, unprivileged, no TLS), delivers messages
into its Maildir, takes the UIDL listing and every message over POP3 with
poplib (which makes Dovecot write dovecot-uidlist and move the files to
cur/ with the Seen flag), stops it, imports the Maildir, and compares,
message for message and in order: the UIDLs and bodies popgate stores, and
those the real popgate gateway serves, must equal what Dovecot served.
Bodies are compared as they travel: CRLF line ends, ending with CRLF.

Skipped, saying why, only when Dovecot is not installed (ops/packages.txt
lists dovecot-pop3d, so CI has it).
"""

import os
import poplib
import unittest

from popgate_server import Gateway
from popgate_testlib import (PrivateDovecot, admin, dovecot_missing, dsn, new_tenant,
                             pop3_listing, stored_messages)

# Lone CRs and NULs are left out: Dovecot and popgate treat them
# differently on the wire, and neither is valid in a message (RFC 5322).
MESSAGES = [
    b"From: alice@example.org\nTo: tester@example.org\nSubject: plain LF\n\nHello there.\n",
    b"Subject: CRLF and dots\r\n\r\nline\r\n.starts with a dot\r\n..two dots\r\n.\r\nend\r\n",
    b"Subject: no final line end\n\nthe last line has no newline",
    b"Subject: 8bit\nContent-Type: text/plain; charset=utf-8\n\n\xc3\xa9t\xc3\xa9 \xe2\x82\xac\n",
    b"Subject: big\n\n" + b"".join(b"%06d " % i + b"y" * 990 + b"\n" for i in range(400)),
    b"Subject: mbox-ish\n\nFrom here on\n>From quoted\n\n",
]
SEEN_BEFORE = b"Subject: already in cur/ with flags\n\nold mail\n"
PASSWORD = "import-pw"


def serve_and_stop(dovecot):
    """Starts Dovecot, takes (uidl, body) of every message, stops it."""
    dovecot.start()
    try:
        client = dovecot.pop3()
        served = pop3_listing(client)
        client.quit()
    finally:
        dovecot.stop()
    return served


def gateway_listing(login):
    """(uidl, body) of every message as the real gateway serves them."""
    gateway = Gateway(dsn())
    try:
        client = poplib.POP3(gateway.host, gateway.port, timeout=30)
        client.user(login)
        client.pass_(PASSWORD)
        listing = pop3_listing(client)
        client.quit()
        return listing
    finally:
        gateway.stop()


def uidlist_text(dovecot):
    with open(os.path.join(dovecot.maildir, "dovecot-uidlist")) as f:
        return f.read()


class DovecotImportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        missing = dovecot_missing()
        if missing:
            raise unittest.SkipTest(missing)

    def setUp(self):
        self.domain = new_tenant()

    def fill(self, dovecot):
        dovecot.deliver(SEEN_BEFORE, subdir="cur", flags="S")
        for message in MESSAGES:
            dovecot.deliver(message)

    def import_maildir(self, login, dovecot, *extra):
        return admin("import", login, "--maildir", dovecot.maildir, "--create-user",
                     "--password", PASSWORD, *extra)

    def check_same(self, login, served, dovecot):
        stored = stored_messages(login)
        self.assertEqual([u for u, _ in stored], [u for u, _ in served],
                         f"dovecot-uidlist:\n{uidlist_text(dovecot)}")
        for (uidl, body), (_, served_body) in zip(stored, served):
            self.assertEqual(body, served_body, uidl)
        self.assertEqual(gateway_listing(login), served)

    def test_default_uidl_format(self):
        with PrivateDovecot() as dovecot:
            self.fill(dovecot)
            served = serve_and_stop(dovecot)
            self.assertEqual(len(served), len(MESSAGES) + 1, dovecot.log_text())
            for uidl, _ in served:  # %08Xu%08Xv
                self.assertRegex(uidl, r"^[0-9a-f]{16}$")
            login = f"tester@{self.domain}"
            r = self.import_maildir(login, dovecot)
            self.assertIn(f"imported {len(served)}, skipped 0 (already there), replaced-uidl 0",
                          r.stdout)
            self.check_same(login, served, dovecot)
            # Dovecot moved every file to cur/ with the Seen flag; the
            # uidlist has the names it knew. A second run finds them all.
            r = self.import_maildir(login, dovecot)
            self.assertIn(f"imported 0, skipped {len(served)} (already there), replaced-uidl 0",
                          r.stdout)
            self.assertEqual(len(stored_messages(login)), len(served))

    def test_saved_uidls_win_over_the_format(self):
        # pop3_save_uidl makes Dovecot record the UIDL it served in the
        # uidlist ('P'): the import must use it whatever the format says.
        settings = {"pop3_uidl_format": "%f", "pop3_save_uidl": "yes"}
        with PrivateDovecot(settings=settings) as dovecot:
            self.fill(dovecot)
            served = serve_and_stop(dovecot)
            self.assertIn(" P", uidlist_text(dovecot))
            self.assertNotRegex(served[0][0], r"^[0-9a-f]{16}$")
            login = f"tester@{self.domain}"
            self.import_maildir(login, dovecot)
            self.check_same(login, served, dovecot)

    def test_other_uidl_format(self):
        with PrivateDovecot(settings={"pop3_uidl_format": "%v.%u"}) as dovecot:
            self.fill(dovecot)
            served = serve_and_stop(dovecot)
            login = f"tester@{self.domain}"
            self.import_maildir(login, dovecot, "--uidl-format", "%v.%u")
            self.check_same(login, served, dovecot)
            # Without the old server's format, the UIDLs would all differ:
            # every client would download everything again.
            other = f"wrong@{self.domain}"
            self.import_maildir(other, dovecot)
            wrong = {u for u, _ in stored_messages(other)}
            self.assertFalse(wrong & {u for u, _ in served})


if __name__ == "__main__":
    unittest.main()
