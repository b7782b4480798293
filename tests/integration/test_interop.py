"""Real POP3 clients against the real binary, each getting back exactly the
bytes that were delivered: curl (pop3 and pop3s), python3 poplib (plain and
STLS), fetchmail (keep + UIDL, plain and implicit TLS), mpop (keep and
delete modes, plain, STLS and implicit TLS) and getmail6 (keep then delete,
plain and SSL).

Every maildrop holds the same corpus (CORPUS below): lines starting with '.',
lone '.' lines (one of them the last line of a message), 8-bit UTF-8 in
headers and body, lines of exactly 998 octets (one of them starting with '.',
so 999 octets once stuffed), a message with an empty body, a 2 MB message, a
body line starting with "From ", trailing white space and several messages a
maildrop. The gateway reads bodies in chunks of a prime number of octets, so
chunk boundaries fall mid-line, mid-CRLF and inside UTF-8 sequences.

"Exactly the bytes" means: what the client hands its user is the delivered
message, byte for byte, after undoing only what that client documents it
does to a message. Each such normalisation is stated where it is undone:

  curl, poplib   none (poplib returns lines without their CRLF; joining them
                 with CRLF is the wire form of the message).
  fetchmail      none: `invisible` turns its Received header off, `no
                 rewrite` its address rewriting, `no stripcr` its CR
                 stripping (fetchmail(1)); the MDA gets the message as sent.
  mpop           its Received header is turned off (--received-header=off);
                 it writes maildir files with LF line ends (checked as
                 CRLF -> LF; the corpus has no lone CR or LF).
  getmail6       `delivered_to = false`, `received = false` turn its
                 Delivered-To and Received headers off; it always prepends
                 Return-Path (getmailcore.message.Message.flatten, "Write the
                 Return-Path: header") and writes with the platform's LF line
                 ends. The corpus keeps its headers in the canonical
                 "Name: value" form, under 78 columns, so the email package
                 that getmail parses and re-serialises with has nothing to
                 refold.

Clients run with HOME in a fresh directory (no user configuration is read),
stdin on /dev/null (no TTY, nothing to prompt on) and a timeout. A missing
client binary skips its tests, naming the Debian package to install, except
under CI=true, where it fails them: CI installs every client
(ops/packages.txt)."""

import os
import poplib
import pwd
import random
import shutil
import ssl
import subprocess
import tempfile
import unittest

from itest import Gateway, deliver, dsn, messages_of, new_tenant, new_user
from popgate_testlib import stored_messages

CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")
# Bound on one client run; the largest run moves about 2.5 MB over loopback.
CLIENT_TIMEOUT_S = 120
# A prime, so body chunks end at odd places (see the module docstring).
BODY_CHUNK_BYTES = 65521
# The name in the test certificates (tests/support/make_test_certs.sh).
CERT_NAME = "pop.example.test"


# ---- The corpus -----------------------------------------------------------------------------

def _crlf_lines(*lines):
    return b"".join((line.encode() if isinstance(line, str) else line) + b"\r\n" for line in lines)


def _headers(subject, tag):
    return _crlf_lines("From: Sender <sender@interop.test>", "To: Rcpt <rcpt@interop.test>",
                       f"Subject: {subject}", f"Message-ID: <{tag}@interop.test>")


def _big_body(size, seed=20240611):
    """About `size` octets of lines from a fixed seed: lengths from 0 to
    998, lowercase, digits, spaces and dots (so no line can start with
    "From "), with a leading-dot line every 37 lines and a lone '.' every
    101."""
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789 ."
    out, total, n = [], 0, 0
    while total < size:
        n += 1
        if n % 101 == 0:
            line = "."
        else:
            length = 998 if n % 53 == 0 else rng.randrange(0, 160)
            line = "".join(rng.choice(alphabet) for _ in range(length))
            if n % 37 == 0:
                line = "." + line[1:] if line else "."
        out.append(line.encode())
        total += len(line) + 2
    return _crlf_lines(*out)


def make_corpus():
    """[(label, message)], every message CRLF-terminated as delivery stores it."""
    dots = _headers("dot lines", "dots") + b"\r\n" + _crlf_lines(
        ".leading dot", "..two leading dots", ".", "...", " . space then dot",
        "From here on, a line mbox would quote", "trailing spaces   ", "tab\tinside\t",
        "", "", "blank lines above", ".")
    utf8 = _crlf_lines("From: J\u00fcrgen <juergen@interop.test>", "To: Rcpt <rcpt@interop.test>",
                       "Subject: Gr\u00fc\u00dfe aus K\u00f6ln \u2709",
                       "Message-ID: <utf8@interop.test>", "MIME-Version: 1.0",
                       "Content-Type: text/plain; charset=utf-8",
                       "Content-Transfer-Encoding: 8bit") + b"\r\n" + _crlf_lines(
        "Gr\u00f6\u00dfe: \u65e5\u672c\u8a9e\u306e\u30c6\u30ad\u30b9\u30c8",
        "Emoji: \U0001f4ec", ".\u00df leading dot then 8-bit", "\u00e9" * 40)
    long_lines = _headers("long lines", "long") + b"\r\n" + _crlf_lines(
        "x" * 998, "." + "y" * 997, "\u00e9" * 499, "short after long", "." * 998)
    empty_body = _headers("empty body", "empty") + b"\r\n"
    big = _headers("two megabytes", "big") + b"\r\n" + _big_body(2 * 1024 * 1024)
    plain = _headers("plain", "plain") + b"\r\n" + _crlf_lines("hello", "world")
    corpus = [("dots", dots), ("utf8", utf8), ("long", long_lines), ("empty-body", empty_body),
              ("big", big), ("plain", plain)]
    for label, message in corpus:
        assert message.endswith(b"\r\n") and b"\r\n\r\n" in message, label
        assert b"\r" not in message.replace(b"\r\n", b"") and b"\n" not in message.replace(b"\r\n", b""), label
        assert all(len(line) <= 998 for line in message.split(b"\r\n")), label
    return corpus


CORPUS = make_corpus()
LATE = _headers("late arrival", "late") + b"\r\n" + _crlf_lines(".late dot", "late body")


def to_lf(message):
    return message.replace(b"\r\n", b"\n")


def top_of(message, lines):
    """What TOP n `lines` must give back: the header, the blank line, then
    the first `lines` lines of the body."""
    split = message.index(b"\r\n\r\n") + 4
    body_lines = message[split:].split(b"\r\n")[:-1]
    return message[:split] + b"".join(line + b"\r\n" for line in body_lines[:lines])


# ---- Running clients --------------------------------------------------------------------------

def need(binary, package):
    path = shutil.which(binary)
    if not path:
        why = f"{binary} is not installed (Debian package {package}, listed in ops/packages.txt)"
        if os.environ.get("CI") == "true":
            raise AssertionError(why)
        raise unittest.SkipTest(why)
    return path


def run_raw(argv, work, env=None):
    """Runs a client with HOME, TMPDIR and the working directory in `work`,
    stdin on /dev/null; returns the CompletedProcess (stdout, stderr bytes)."""
    environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": work, "LC_ALL": "C.UTF-8",
                   "TMPDIR": work}
    environment.update(env or {})
    return subprocess.run(argv, env=environment, stdin=subprocess.DEVNULL, capture_output=True,
                          timeout=CLIENT_TIMEOUT_S, cwd=work)


def run(argv, work, env=None):
    """run_raw(); returns (rc, stdout + stderr as text)."""
    result = run_raw(argv, work, env)
    return result.returncode, (result.stdout + result.stderr).decode("utf-8", "replace")


def maildir(path):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(path, sub), exist_ok=True)
    return path


def maildir_messages(path):
    """{Message-ID value: file bytes} of every message in a maildir."""
    out = {}
    for sub in ("new", "cur"):
        directory = os.path.join(path, sub)
        for name in sorted(os.listdir(directory)):
            with open(os.path.join(directory, name), "rb") as f:
                data = f.read()
            out.setdefault(message_id(data), []).append(data)
    return out


def message_id(data):
    """The Message-ID header value of a message (CRLF or LF form)."""
    for line in data.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].split(b"\n"):
        if line.lower().startswith(b"message-id:"):
            return line.split(b":", 1)[1].strip().decode()
    raise AssertionError(f"no Message-ID in {data[:200]!r}")


def by_message_id(messages):
    return {message_id(m): m for m in messages}


class InteropTest(unittest.TestCase):
    """One gateway: `pop3` (cleartext logins and STLS) and `pop3s` (implicit TLS)."""

    @classmethod
    def setUpClass(cls):
        if not CERTS or not os.path.exists(os.path.join(CERTS, "ca.crt")):
            raise unittest.SkipTest("POPGATE_TEST_CERT_DIR with the test PKI is not set (run through ctest)")
        cls.ca = os.path.join(CERTS, "ca.crt")
        cls.dsn = dsn()
        cls.domain = new_tenant()
        cls.gateway = Gateway(cls.dsn, listeners=[
            "name=pop3,address=127.0.0.1:0",
            "name=pop3s,address=127.0.0.1:0,tls=implicit",
        ], tls__certificates=f"{CERTS}/pop-ecdsa.crt:{CERTS}/pop-ecdsa.key",
            session__body_chunk_bytes=BODY_CHUNK_BYTES)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gateway.stop()
        if rc != 0:
            raise AssertionError(f"popgate exited {rc}:\n{cls.gateway.log_text()}")

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="popgate-interop-")
        os.chmod(self.work, 0o755)  # getmail delivers as nobody when run as root
        self.addCleanup(shutil.rmtree, self.work, ignore_errors=True)

    def port(self, listener):
        return self.gateway.port_of(listener)

    def maildrop(self):
        """A new user holding CORPUS; checks the store holds exactly it.
        Returns (login, password)."""
        login, password = new_user(self.domain)
        for _, message in CORPUS:
            deliver(login, message)
        self.assertEqual([body for _, body in stored_messages(login)], [m for _, m in CORPUS])
        return login, password

    def assertSameMessages(self, got, expected, what):
        """got, expected: {Message-ID: bytes}; compares message by message,
        naming the first differing offset instead of dumping 2 MB."""
        self.assertEqual(sorted(got), sorted(expected), f"{what}: which messages")
        for key in sorted(expected):
            a, b = got[key], expected[key]
            if a != b:
                at = next((i for i in range(min(len(a), len(b))) if a[i] != b[i]), min(len(a), len(b)))
                self.fail(f"{what}: {key} differs at octet {at} (got {len(a)} octets, want {len(b)}):\n"
                          f"got  {a[max(0, at - 60):at + 60]!r}\nwant {b[max(0, at - 60):at + 60]!r}")

    def assertUidlsKept(self, path, login):
        """The client's UIDL file names every UIDL the gateway stores for
        `login` (as a whitespace-separated word; the file formats differ)."""
        with open(path, "rb") as f:
            words = set(f.read().decode("utf-8", "replace").split())
        uidls = [uidl for _, _, uidl in messages_of(login)]
        self.assertTrue(uidls)
        self.assertEqual([u for u in uidls if u not in words], [], f"UIDLs missing from {path}")

    # ---- curl ----------------------------------------------------------------------------------

    def curl_bytes(self, login, password, url, *args):
        """What curl writes to stdout for one URL; -q: no .curlrc is read."""
        need("curl", "curl")
        result = run_raw(["curl", "-q", "-sS", "--max-time", str(CLIENT_TIMEOUT_S), "--cacert", self.ca,
                          "--user", f"{login}:{password}", *args, url], self.work)
        self.assertEqual(result.returncode, 0, result.stderr.decode("utf-8", "replace"))
        return result.stdout

    def check_curl(self, scheme, listener):
        login, password = self.maildrop()
        base = f"{scheme}://127.0.0.1:{self.port(listener)}"
        sizes = "".join(f"{n} {len(m)}\r\n" for n, (_, m) in enumerate(CORPUS, 1)).encode()
        self.assertEqual(self.curl_bytes(login, password, base + "/"), sizes)
        for n, (label, message) in enumerate(CORPUS, 1):
            self.assertEqual(self.curl_bytes(login, password, f"{base}/{n}"), message, label)
        uidls = "".join(f"{n} {uidl}\r\n" for n, (_, _, uidl) in enumerate(messages_of(login), 1)).encode()
        self.assertEqual(self.curl_bytes(login, password, base + "/", "-X", "UIDL"), uidls)
        self.assertEqual(self.curl_bytes(login, password, base + "/", "-X", "TOP 1 2"), top_of(CORPUS[0][1], 2))
        # DELE answers with one line: -I (no body) tells curl not to wait for a multi-line reply.
        # curl ends with QUIT, so the deletion must be committed.
        self.curl_bytes(login, password, f"{base}/3", "-X", "DELE", "-I")
        self.assertEqual([m[1] for m in messages_of(login)], [str(len(m)) for i, (_, m) in enumerate(CORPUS) if i != 2])
        kept = [m for i, (_, m) in enumerate(CORPUS) if i != 2]
        sizes = "".join(f"{n} {len(m)}\r\n" for n, m in enumerate(kept, 1)).encode()
        self.assertEqual(self.curl_bytes(login, password, base + "/"), sizes)
        self.assertEqual(self.curl_bytes(login, password, f"{base}/3"), kept[2])

    def test_curl_pop3(self):
        """curl over cleartext POP3: LIST gives every size, RETR each message
        byte for byte (curl undoes the stuffing), UIDL and TOP through -X,
        and `-X DELE` deletes a message for good once curl QUITs."""
        self.check_curl("pop3", "pop3")

    def test_curl_pop3s(self):
        """The same over implicit TLS (pop3s://), curl trusting only the test CA."""
        self.check_curl("pop3s", "pop3s")

    # ---- python3 poplib ------------------------------------------------------------------------

    def check_poplib(self, client, login, password):
        client.user(login)
        client.pass_(password)
        self.assertEqual(client.stat(), (len(CORPUS), sum(len(m) for _, m in CORPUS)))
        self.assertEqual(client.list()[1], [f"{n} {len(m)}".encode() for n, (_, m) in enumerate(CORPUS, 1)])
        stored = messages_of(login)
        self.assertEqual(client.uidl()[1], [f"{n} {uidl}".encode() for n, (_, _, uidl) in enumerate(stored, 1)])
        for n, (label, message) in enumerate(CORPUS, 1):
            self.assertEqual(client.uidl(n), f"+OK {n} {stored[n - 1][2]}".encode(), label)
            # retr() drops each line's CRLF and the stuffing dot: CRLF-joined, that is the message.
            self.assertEqual(b"".join(line + b"\r\n" for line in client.retr(n)[1]), message, label)
            for lines in (0, 1, 3, 100000):
                self.assertEqual(b"".join(line + b"\r\n" for line in client.top(n, lines)[1]),
                                 top_of(message, lines), f"{label} TOP {lines}")
        client.dele(1)
        client.dele(len(CORPUS))
        self.assertTrue(client.quit().startswith(b"+OK"))
        self.assertEqual([m[2] for m in messages_of(login)], [m[2] for m in stored[1:-1]])

    def test_poplib_plain(self):
        """poplib over cleartext: STAT, LIST, UIDL (all and one), RETR and
        TOP (0, 1, 3 and more lines than the body has) of every message
        give exactly the delivered bytes; DELE then QUIT removes exactly the
        deleted messages."""
        login, password = self.maildrop()
        self.check_poplib(poplib.POP3("127.0.0.1", self.port("pop3"), timeout=CLIENT_TIMEOUT_S), login, password)

    def test_poplib_stls(self):
        """The same after STLS, poplib trusting only the test CA and checking
        the certificate's name."""
        login, password = self.maildrop()
        context = ssl.create_default_context(cafile=self.ca)
        client = poplib.POP3("127.0.0.1", self.port("pop3"), timeout=CLIENT_TIMEOUT_S)
        # The certificate names IP 127.0.0.1 too, so the default name check applies.
        client.stls(context=context)
        self.check_poplib(client, login, password)

    # ---- fetchmail -----------------------------------------------------------------------------

    def fetchmail_setup(self, login, password, tls):
        need("fetchmail", "fetchmail")
        home = os.path.join(self.work, "fetchmail")
        os.makedirs(home, mode=0o700)
        inbox = os.path.join(home, "inbox")
        os.makedirs(inbox)
        # The MDA writes each message to its own numbered file, unchanged.
        mda = os.path.join(home, "mda.sh")
        with open(mda, "w") as f:
            f.write(f'#!/bin/sh\nn=$(ls "{inbox}" | wc -l)\nexec cat > "{inbox}/$(printf %06d "$n")"\n')
        os.chmod(mda, 0o755)
        if tls:
            transport = (f'service {self.port("pop3s")}', f'ssl sslcertck sslcertfile "{self.ca}" '
                         f'sslcommonname "{CERT_NAME}"')
        else:
            # fetchmail >= 6.4 tries STLS whenever it is offered; sslproto '' keeps it cleartext.
            transport = (f'service {self.port("pop3")}', "sslproto ''")
        rc = os.path.join(home, "fetchmailrc")
        with open(rc, "w") as f:
            f.write(f"""set no syslog
set no bouncemail
set invisible
set pidfile "{home}/fetchmail.pid"
set idfile "{home}/fetchids"
poll 127.0.0.1 protocol pop3 {transport[0]} uidl timeout 60 auth password
  user "{login}" there with password "{password}" is "{pwd.getpwuid(os.geteuid()).pw_name}" here
  keep no rewrite no stripcr no forcecr no mimedecode no dropstatus no dropdelivered
  {transport[1]}
  mda "{mda}"
""")
        os.chmod(rc, 0o600)  # fetchmail refuses a run control file others can read
        # Run as root, fetchmail runs the MDA as FETCHMAILUSER: make that us.
        env = {"FETCHMAILHOME": home, "FETCHMAILUSER": pwd.getpwuid(os.geteuid()).pw_name}

        def fetch():
            before = set(os.listdir(inbox))
            code, out = run(["fetchmail", "--nodetach", "--nosyslog", "-f", rc], self.work, env=env)
            # 0: mail was fetched; 1: there was no new mail (fetchmail(1), EXIT CODES).
            self.assertIn(code, (0, 1), out)
            new = []
            for name in sorted(set(os.listdir(inbox)) - before):
                with open(os.path.join(inbox, name), "rb") as f:
                    new.append(f.read())
            return code, new, out
        return fetch

    def check_fetchmail(self, tls):
        login, password = self.maildrop()
        fetch = self.fetchmail_setup(login, password, tls)
        code, first, out = fetch()
        self.assertEqual(code, 0, out)
        self.assertEqual(len(first), len(CORPUS), out)
        self.assertSameMessages(by_message_id(first), by_message_id(m for _, m in CORPUS), "fetchmail, first run")
        # What makes the second run empty is the UIDLs fetchmail kept, each
        # the one the gateway lists.
        self.assertUidlsKept(os.path.join(self.work, "fetchmail", "fetchids"), login)
        code, second, out = fetch()
        self.assertEqual((code, second), (1, []), out)
        deliver(login, LATE)
        code, third, out = fetch()
        self.assertEqual(code, 0, out)
        self.assertEqual(third, [LATE], out)
        self.assertEqual(len(messages_of(login)), len(CORPUS) + 1)  # keep: nothing deleted

    def test_fetchmail_keep_uidl(self):
        """fetchmail in keep mode with client-side UIDLs, over cleartext:
        the first run delivers every message exactly as delivered, a second
        run fetches nothing, and after one new delivery a third run fetches
        just that one; nothing is deleted."""
        self.check_fetchmail(tls=False)

    def test_fetchmail_keep_uidl_tls(self):
        """The same over implicit TLS, fetchmail checking the certificate
        against the test CA (sslcertck, sslcertfile)."""
        self.check_fetchmail(tls=True)

    # ---- mpop ----------------------------------------------------------------------------------

    def mpop(self, login, password, mode, keep, directory, uidls):
        need("mpop", "mpop")
        pwfile = os.path.join(self.work, "mpop-password")
        with open(pwfile, "w") as f:
            f.write(password)
        os.chmod(pwfile, 0o600)
        tls = {"plain": ["--port=%d" % self.port("pop3"), "--tls=off", "--auth=user"],
               "stls": ["--port=%d" % self.port("pop3"), "--tls=on", "--tls-starttls=on"],
               "pop3s": ["--port=%d" % self.port("pop3s"), "--tls=on", "--tls-starttls=off"]}[mode]
        before = maildir_messages(directory)
        code, out = run(["mpop", "--host=127.0.0.1", *tls, f"--tls-trust-file={self.ca}",
                         f"--user={login}", f"--passwordeval=cat {pwfile}", f"--keep={'on' if keep else 'off'}",
                         f"--uidls-file={uidls}", f"--delivery=maildir,{directory}",
                         "--received-header=off", "--only-new=on"], self.work)
        self.assertEqual(code, 0, out)
        after = maildir_messages(directory)
        return {k: v for k, v in after.items() if len(v) > len(before.get(k, []))}, out

    def expected_lf(self, messages):
        # mpop stores maildir files with LF line ends (see the module docstring).
        return {message_id(m): [to_lf(m)] for m in messages}

    def check_mpop_keep(self, mode):
        login, password = self.maildrop()
        inbox = maildir(os.path.join(self.work, "Maildir"))
        uidls = os.path.join(self.work, "mpop-uidls")
        first, out = self.mpop(login, password, mode, True, inbox, uidls)
        self.assertSameMessages({k: v[0] for k, v in first.items()},
                                {k: v[0] for k, v in self.expected_lf(m for _, m in CORPUS).items()}, "mpop keep")
        self.assertTrue(all(len(v) == 1 for v in first.values()), out)
        self.assertUidlsKept(uidls, login)
        second, out = self.mpop(login, password, mode, True, inbox, uidls)
        self.assertEqual(second, {}, out)
        deliver(login, LATE)
        third, out = self.mpop(login, password, mode, True, inbox, uidls)
        self.assertEqual(third, self.expected_lf([LATE]), out)
        self.assertEqual(len(messages_of(login)), len(CORPUS) + 1)

    def test_mpop_keep(self):
        """mpop with --keep=on over cleartext (USER/PASS), into a maildir:
        every message arrives as delivered (LF line ends), a re-run fetches
        nothing new, a later delivery alone is fetched next, nothing is
        deleted."""
        self.check_mpop_keep("plain")

    def test_mpop_keep_pop3s(self):
        """The same over implicit TLS, mpop trusting the test CA and
        choosing its own authentication method."""
        self.check_mpop_keep("pop3s")

    def test_mpop_delete(self):
        """mpop with --keep=off over STLS: every message arrives as
        delivered, and afterwards the maildrop is empty, in the database
        and as POP3 shows it."""
        login, password = self.maildrop()
        inbox = maildir(os.path.join(self.work, "Maildir"))
        got, out = self.mpop(login, password, "stls", False, inbox, os.path.join(self.work, "mpop-uidls"))
        self.assertSameMessages({k: v[0] for k, v in got.items()},
                                {k: v[0] for k, v in self.expected_lf(m for _, m in CORPUS).items()}, "mpop delete")
        self.assertEqual(messages_of(login), [])
        client = poplib.POP3("127.0.0.1", self.port("pop3"), timeout=CLIENT_TIMEOUT_S)
        client.user(login)
        client.pass_(password)
        self.assertEqual(client.stat(), (0, 0))
        client.quit()

    # ---- getmail6 ------------------------------------------------------------------------------

    def getmail_setup(self, login, password, tls):
        need("getmail", "getmail6")
        home = os.path.join(self.work, "getmail")
        os.makedirs(home, mode=0o700)
        inbox = maildir(os.path.join(self.work, "Maildir"))
        destination = ""
        if os.geteuid() == 0:
            # getmail refuses to deliver as root; its Maildir destination
            # takes a user to deliver as.
            nobody = pwd.getpwnam("nobody")
            for root, dirs, _ in os.walk(inbox):
                for name in [root] + [os.path.join(root, d) for d in dirs]:
                    os.chown(name, nobody.pw_uid, nobody.pw_gid)
            destination = "user = nobody\n"
        if tls:
            retriever = (f"type = SimplePOP3SSLRetriever\nport = {self.port('pop3s')}\n"
                         f"ca_certs = {self.ca}\nssl_cert_hostname = {CERT_NAME}\n")
        else:
            retriever = f"type = SimplePOP3Retriever\nport = {self.port('pop3')}\n"
        rc = os.path.join(home, "getmailrc")

        def fetch(delete):
            with open(rc, "w") as f:
                f.write(f"""[retriever]
{retriever}server = 127.0.0.1
username = {login}
password = {password}
timeout = 60

[destination]
type = Maildir
path = {inbox}/
{destination}
[options]
verbose = 1
read_all = false
delete = {'true' if delete else 'false'}
delivered_to = false
received = false
""")
            os.chmod(rc, 0o600)
            before = maildir_messages(inbox)
            code, out = run(["getmail", f"--getmaildir={home}", f"--rcfile={rc}"], self.work)
            self.assertEqual(code, 0, out)
            after = maildir_messages(inbox)
            new = {k: v for k, v in after.items() if len(v) > len(before.get(k, []))}
            self.assertTrue(all(len(v) == len(before.get(k, [])) + 1 for k, v in new.items()), out)
            return {k: v[-1] for k, v in new.items()}, out
        return fetch

    def expected_getmail(self, messages):
        # getmail prepends Return-Path (the envelope sender it read from the
        # message, "unknown" when it has none) and writes LF line ends; see
        # the module docstring.
        return {message_id(m): b"Return-Path: <unknown>\n" + to_lf(m) for m in messages}

    def check_getmail(self, tls):
        login, password = self.maildrop()
        fetch = self.getmail_setup(login, password, tls)
        first, out = fetch(delete=False)
        self.assertSameMessages(first, self.expected_getmail(m for _, m in CORPUS), "getmail first run")
        second, out = fetch(delete=False)
        self.assertEqual(second, {}, out)
        deliver(login, LATE)
        third, out = fetch(delete=False)
        self.assertSameMessages(third, self.expected_getmail([LATE]), "getmail after a delivery")
        self.assertEqual(len(messages_of(login)), len(CORPUS) + 1)
        # delete = true: getmail deletes what it has already retrieved
        # without fetching it again.
        fourth, out = fetch(delete=True)
        self.assertEqual(fourth, {}, out)
        self.assertEqual(messages_of(login), [])

    def test_getmail_keep_then_delete(self):
        """getmail6 over cleartext into a Maildir, read_all = false: with
        delete = false the first run brings every message as delivered, the
        second nothing, the third just a later delivery; then delete = true
        empties the maildrop without fetching anything again."""
        self.check_getmail(tls=False)

    def test_getmail_ssl(self):
        """The same with SimplePOP3SSLRetriever over implicit TLS, checking
        the certificate against the test CA (ca_certs)."""
        self.check_getmail(tls=True)


if __name__ == "__main__":
    unittest.main()
