"""Shared helpers for popgate's Python integration tests.

The ctest harness (popgate_pytest in tests/CMakeLists.txt) sets:
  POPGATE_TEST_DSN_FILE  file holding the libpq DSN of the test PostgreSQL
  POPGATE_ADMIN_BIN      path of popgate-admin
  POPGATE_BIN            path of the popgate gateway
and puts this directory on PYTHONPATH. Without a DSN, tests skip saying why.

Every test should work in its own tenant (new_tenant()) so that test scripts
can run in parallel against the one database.
"""

import os
import re
import secrets
import subprocess
import unittest

__all__ = ["AdminError", "admin", "admin_bin", "deliver", "dsn", "new_tenant",
           "new_user", "psql"]


class AdminError(AssertionError):
    """popgate-admin exited non-zero while check=True; carries its output."""

    def __init__(self, args, result):
        super().__init__(f"popgate-admin {' '.join(args)} exited {result.returncode}\n"
                         f"stdout: {result.stdout}\nstderr: {result.stderr}")
        self.result = result


def dsn():
    """The test database's DSN. Raises unittest.SkipTest when none is set."""
    path = os.environ.get("POPGATE_TEST_DSN_FILE")
    if not path:
        raise unittest.SkipTest("POPGATE_TEST_DSN_FILE is not set (run through ctest)")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise unittest.SkipTest(f"cannot read the test DSN from {path}: {e}") from e


def admin_bin():
    """Path of popgate-admin. Raises unittest.SkipTest when unset."""
    path = os.environ.get("POPGATE_ADMIN_BIN")
    if not path:
        raise unittest.SkipTest("POPGATE_ADMIN_BIN is not set (run through ctest)")
    return path


def admin(*args, input=None, check=True, database=None):
    """Runs `popgate-admin --dsn DSN ARGS...`.

    input: bytes or str fed to stdin (stdin is empty otherwise).
    database: a DSN to use instead of the test database's.
    Returns a CompletedProcess whose stdout/stderr are str. With check=True a
    non-zero exit raises AdminError showing both streams.
    """
    if isinstance(input, str):
        input = input.encode()
    argv = [admin_bin(), "--dsn", database or dsn(), *args]
    raw = subprocess.run(argv, input=input if input is not None else b"",
                         capture_output=True, timeout=300, check=False)
    result = subprocess.CompletedProcess(
        raw.args, raw.returncode,
        raw.stdout.decode("utf-8", "replace"), raw.stderr.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        raise AdminError(args, result)
    return result


def new_tenant():
    """Adds a tenant with a random, unique domain and returns the domain."""
    domain = f"t{secrets.token_hex(6)}.test"
    admin("tenant", "add", domain)
    return domain


def new_user(domain, password=None):
    """Adds a user in `domain`; returns (login, password). The password is
    random unless given."""
    login = f"u{secrets.token_hex(4)}@{domain}"
    password = password if password is not None else secrets.token_urlsafe(12)
    admin("user", "add", login, "--password-stdin", input=password + "\n")
    return login, password


_DELIVERED = re.compile(r"message_id=(\d+) size=(\d+) uidl=(\S+)")


def deliver(login, message, uidl=None):
    """Delivers `message` (bytes) to `login` through popgate-admin; returns
    {"message_id": int, "size": int, "uidl": str}."""
    args = ["deliver", login, "-"] + (["--uidl", uidl] if uidl is not None else [])
    out = admin(*args, input=message).stdout
    m = _DELIVERED.search(out)
    if not m:
        raise AssertionError(f"unexpected deliver output: {out!r}")
    return {"message_id": int(m[1]), "size": int(m[2]), "uidl": m[3]}


# What an operator's session says to see every tenant's rows under
# row-level security (schema v6); psql() sends it unless told otherwise.
ALL_TENANTS = "-c popgate.all_tenants=on"


def psql(sql, database=None, all_tenants=True, tenant_id=None):
    """Runs SQL with the psql client; returns its unaligned, tuples-only
    output (fields separated by '|', rows by newlines), stripped.
    all_tenants=False runs it as a session that declared no tenant, or
    only `tenant_id` when given."""
    env = dict(os.environ)
    env.pop("PGOPTIONS", None)
    if all_tenants:
        env["PGOPTIONS"] = ALL_TENANTS
    elif tenant_id is not None:
        env["PGOPTIONS"] = f"-c popgate.tenant_id={int(tenant_id)}"
    result = subprocess.run(
        ["psql", database or dsn(), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=300, check=False, env=env)
    if result.returncode != 0:
        raise AssertionError(f"psql failed: {sql}\n{result.stderr}")
    return result.stdout.strip()


def user_column(login, column):
    """One column of a user's row (psql text form; '' for NULL)."""
    local, domain = login.split("@")
    return psql(f"SELECT coalesce({column}::text, '') FROM popgate.users u "
                f"JOIN popgate.tenants t USING (tenant_id) "
                f"WHERE t.domain = '{domain}' AND u.local_part = '{local}'")


def tenant_column(domain, column):
    """One column of a tenant's row (psql text form; '' for NULL)."""
    return psql(f"SELECT coalesce({column}::text, '') FROM popgate.tenants "
                f"WHERE domain = '{domain}'")


# ---- Dovecot, run privately for migration tests (popgate-admin import) ----

import base64  # noqa: E402
import grp  # noqa: E402
import poplib  # noqa: E402
import pwd  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

DOVECOT_BIN = "/usr/sbin/dovecot"
DOVECOT_POP3_BIN = "/usr/lib/dovecot/pop3"  # Debian dovecot-pop3d


def dovecot_missing():
    """Why PrivateDovecot cannot run here, or '' when it can."""
    for path, package in ((DOVECOT_BIN, "dovecot-core"), (DOVECOT_POP3_BIN, "dovecot-pop3d")):
        if not os.path.exists(path):
            return f"{path} is missing (install the Debian package {package})"
    return ""


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateDovecot:
    """Dovecot 2.3's POP3 server for one test user, on 127.0.0.1, with a
    private configuration: base_dir, state_dir, log file, passwd-file and the
    Maildir all live in a fresh temporary directory; no system file is read
    or written.

    Dovecot runs unprivileged. Started as root, it runs as `nobody` (through
    runuser) with default_internal_user = default_login_user = nobody, no
    chroot, and the directory handed to nobody; started as anyone else, it
    runs as that user. Either way, no port below 1024 and no TLS (ssl = no,
    cleartext logins allowed with disable_plaintext_auth = no).

    settings: extra dovecot.conf lines as {key: value}, e.g.
    {"pop3_uidl_format": "%v.%u", "pop3_save_uidl": "yes"}.
    """

    def __init__(self, user="tester", password="secret", settings=None):
        self.user, self.password = user, password
        self.dir = tempfile.mkdtemp(prefix="popgate-dovecot-")
        os.chmod(self.dir, 0o755)
        self.maildir = os.path.join(self.dir, "home", "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(self.maildir, sub))
        self.log_path = os.path.join(self.dir, "dovecot.log")
        self.conf_path = os.path.join(self.dir, "dovecot.conf")
        self.as_root = os.geteuid() == 0
        account = pwd.getpwnam("nobody") if self.as_root else pwd.getpwuid(os.geteuid())
        self.run_user, self.uid, self.gid = account.pw_name, account.pw_uid, account.pw_gid
        self.settings = dict(settings or {})
        self.port = None
        self.master_pid = None
        self._serial = 0

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _write_config(self):
        group = grp.getgrgid(self.gid).gr_name
        d = self.dir
        lines = [
            "protocols = pop3",
            "listen = 127.0.0.1",
            f"base_dir = {d}/run",
            f"state_dir = {d}/state",
            f"instance_name = popgate-test-{os.getpid()}-{self.port}",
            f"log_path = {self.log_path}",
            f"info_log_path = {self.log_path}",
            "ssl = no",
            "disable_plaintext_auth = no",
            "auth_mechanisms = plain",
            f"default_internal_user = {self.run_user}",
            f"default_internal_group = {group}",
            f"default_login_user = {self.run_user}",
            f"first_valid_uid = {self.uid}",
            f"first_valid_gid = {self.gid}",
            f"mail_location = maildir:{self.maildir}",
        ]
        lines += [f"{key} = {value}" for key, value in self.settings.items()]
        lines += [
            f"passdb {{\n  driver = passwd-file\n  args = scheme=PLAIN {d}/passwd\n}}",
            f"userdb {{\n  driver = passwd-file\n  args = {d}/passwd\n}}",
            "service pop3-login {\n  chroot =\n"
            f"  inet_listener pop3 {{\n    address = 127.0.0.1\n    port = {self.port}\n  }}\n"
            "  inet_listener pop3s {\n    port = 0\n  }\n}",
            "service anvil {\n  chroot =\n}",
        ]
        with open(self.conf_path, "w") as f:
            f.write("\n".join(lines) + "\n")
        with open(os.path.join(d, "passwd"), "w") as f:
            f.write(f"{self.user}:{{PLAIN}}{self.password}:{self.uid}:{self.gid}::{d}/home::\n")

    def _hand_over(self):
        if self.as_root:
            for root, dirs, files in os.walk(self.dir):
                for name in [root] + [os.path.join(root, n) for n in dirs + files]:
                    os.lchown(name, self.uid, self.gid)

    def _as_run_user(self, argv):
        return ["runuser", "-u", self.run_user, "--"] + argv if self.as_root else argv

    def deliver(self, message, subdir="new", flags=None, name=None):
        """Writes `message` (bytes) into the Maildir as Dovecot's LDA would
        (tmp/, then a rename); returns the file name."""
        self._serial += 1
        base = name or f"{int(time.time())}.M{self._serial}P{os.getpid()}.popgate-test"
        file_name = base if flags is None else f"{base}:2,{flags}"
        tmp = os.path.join(self.maildir, "tmp", base)
        with open(tmp, "wb") as f:
            f.write(message)
        os.rename(tmp, os.path.join(self.maildir, subdir, file_name))
        return file_name

    def start(self, timeout=20):
        """Starts Dovecot and waits until it greets on self.port."""
        self.port = free_port()
        self._write_config()
        self._hand_over()
        # The master daemonizes; its children would hold a pipe open, so
        # its own output goes to a file.
        startup_log = os.path.join(self.dir, "startup.log")
        with open(startup_log, "wb") as out:
            r = subprocess.run(self._as_run_user([DOVECOT_BIN, "-c", self.conf_path]),
                               stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=60)
        if r.returncode != 0:
            with open(startup_log, errors="replace") as f:
                raise RuntimeError(f"dovecot did not start: {f.read()}\n{self.log_text()}")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    if s.recv(64).startswith(b"+OK"):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"dovecot did not answer on {self.port}:\n{self.log_text()}")
            time.sleep(0.1)
        with open(os.path.join(self.dir, "run", "master.pid")) as f:
            self.master_pid = int(f.read().strip())

    def pop3(self):
        """A logged-in poplib.POP3 session."""
        client = poplib.POP3("127.0.0.1", self.port, timeout=30)
        client.user(self.user)
        client.pass_(self.password)
        return client

    def stop(self, timeout=15):
        """Stops the master (SIGTERM; SIGKILL after `timeout`) and waits for it."""
        if self.master_pid is None:
            return
        pid, self.master_pid = self.master_pid, None
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while os.path.exists(f"/proc/{pid}"):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
            time.sleep(0.05)

    def log_text(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return "(no dovecot log)"

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def pop3_listing(client):
    """[(uidl, body)] of a logged-in poplib session, in message-number
    order; bodies rebuilt with CRLF line ends as they went over the wire
    (poplib strips CRLF and undoes dot-stuffing)."""
    uidls = {}
    for line in client.uidl()[1]:
        msn, uidl = line.decode().split(" ", 1)
        uidls[int(msn)] = uidl
    out = []
    for msn in sorted(uidls):
        lines = client.retr(msn)[1]
        out.append((uidls[msn], b"".join(line + b"\r\n" for line in lines)))
    return out


def stored_messages(login):
    """[(uidl, body)] popgate stores for `login`, hidden ones left out, in
    message_id order (the order the gateway lists them)."""
    local, domain = login.split("@")
    # One line a message: "UIDL BASE64" (a UIDL holds no space; encode()
    # wraps its output, so the line breaks are taken out).
    text = psql("SELECT string_agg(m.uidl || ' ' || translate(encode(m.body, 'base64'), "
                "E'\\n', ''), E'\\n' ORDER BY m.message_id) FROM popgate.messages m "
                "JOIN popgate.users u USING (tenant_id, user_id) "
                "JOIN popgate.tenants t USING (tenant_id) "
                f"WHERE t.domain = '{domain}' AND u.local_part = '{local}' AND NOT m.hidden")
    out = []
    for row in text.splitlines() if text else []:
        uidl, body = row.split(" ", 1)
        out.append((uidl, base64.b64decode(body)))
    return out
