"""Helpers shared by the fault-injection suites (tests/integration/test_faults_*.py).

PrivateCluster: a PostgreSQL cluster of the test's own, made by testpg.sh
in a fresh directory, that a test may stop, start, pause (SIGSTOP), resize
or fill with idle connections without disturbing the shared test database
other test files use in parallel.

Also: holding raw PostgreSQL connections (to fill max_connections), mapping
client connections to the shard that accepted them, and maildrops whose
delivered bytes are remembered so a test can prove them intact.
"""

import base64
import hashlib
import os
import poplib
import signal
import socket
import struct
import subprocess
import tempfile
import time

from popgate_testlib import admin, psql

__all__ = ["PrivateCluster", "PgRefused", "PgConnection", "hold_pg_connection", "Maildrop",
           "shard_of_peers", "connect_from", "LineClient", "fd_count", "sha256", "ssha256"]

TESTPG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testpg.sh")
PGBIN = os.environ.get("POPGATE_PGBIN", "/usr/lib/postgresql/15/bin")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def ssha256(password):
    """A Dovecot {SSHA256} hash of `password`: cheap to verify, for tests
    that log in many times through fresh gateways and are not about
    password hashing (popgate-admin's default, Argon2id, costs ~0.1 s a
    login, far more under sanitizers)."""
    salt = os.urandom(8)
    digest = hashlib.sha256(password.encode() + salt).digest()
    return "{SSHA256}" + base64.b64encode(digest + salt).decode()


def _as_postgres(argv):
    # testpg.sh runs the cluster as `postgres` when started by root.
    return ["runuser", "-u", "postgres", "--"] + argv if os.geteuid() == 0 else argv


class PgRefused(Exception):
    """PostgreSQL refused a connection: .sqlstate and .message from its
    ErrorResponse."""

    def __init__(self, sqlstate, message):
        super().__init__(f"{sqlstate}: {message}")
        self.sqlstate, self.message = sqlstate, message


def _pg_messages(sock, buf=b""):
    """Yields (kind, body) for each backend message on `sock`; `buf` holds
    bytes already read. Raises PgRefused when the server closes."""
    while True:
        while len(buf) < 5:
            chunk = sock.recv(65536)
            if not chunk:
                raise PgRefused("", "connection closed by the server")
            buf += chunk
        kind, length = buf[:1], struct.unpack("!I", buf[1:5])[0]
        while len(buf) < 1 + length:
            chunk = sock.recv(65536)
            if not chunk:
                raise PgRefused("", "connection closed by the server")
            buf += chunk
        body, buf = buf[5:1 + length], buf[1 + length:]
        yield kind, body


def _error_fields(body):
    return {f[:1]: f[1:].decode(errors="replace") for f in body.split(b"\0") if f}


def _pg_startup(port, user, database, application, timeout, options=""):
    """A socket past PostgreSQL's startup (trust authentication, as
    testpg.sh sets up), at ReadyForQuery. `options` as in libpq's (e.g.
    "-c name=value"). Raises PgRefused with the server's SQLSTATE when it
    refuses (e.g. 53300, too many connections)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        params = (f"user\0{user}\0database\0{database}\0"
                  f"application_name\0{application}\0"
                  + (f"options\0{options}\0" if options else "") + "\0").encode()
        s.sendall(struct.pack("!II", 8 + len(params), 196608) + params)  # protocol 3.0
        for kind, body in _pg_messages(s):
            if kind == b"E":
                fields = _error_fields(body)
                raise PgRefused(fields.get(b"C", ""), fields.get(b"M", ""))
            if kind == b"R" and struct.unpack("!I", body[:4])[0] != 0:
                raise PgRefused("", "the server asked for a password (not a testpg.sh cluster?)")
            if kind == b"Z":
                return s
    except BaseException:
        s.close()
        raise


def hold_pg_connection(port, user, database, timeout=10):
    """Opens one PostgreSQL connection and returns its socket once the
    server says ReadyForQuery: the connection holds a backend slot until the
    socket is closed. Raises PgRefused with the server's SQLSTATE when the
    server refuses (e.g. 53300, too many connections)."""
    return _pg_startup(port, user, database, "popgate-test-filler", timeout)


class PgConnection:
    """One PostgreSQL connection speaking the simple-query protocol, for
    tests that check the database often: a query costs a round trip instead
    of a psql process. Only for testpg.sh clusters (trust authentication)
    and only for test-made SQL (no parameters). Like popgate_testlib.psql()
    it declares itself cross-tenant (popgate.all_tenants, which row-level
    security asks for). Reconnects once when the server went away in
    between (a restarted cluster)."""

    def __init__(self, dsn_text, timeout=30):
        fields = dict(part.split("=", 1) for part in dsn_text.split())
        self.port, self.user, self.database = int(fields["port"]), fields["user"], fields["dbname"]
        self.timeout = timeout
        self.sock = None

    def query(self, sql):
        """Rows of the last statement as tuples of str (None for NULL);
        raises AssertionError on an SQL error."""
        for attempt in (1, 2):
            if self.sock is None:
                self.sock = _pg_startup(self.port, self.user, self.database, "popgate-test", self.timeout,
                                        options="-c popgate.all_tenants=on")
            try:
                return self._query(sql)
            except (OSError, PgRefused):
                self.close()
                if attempt == 2:
                    raise
        return None  # not reached

    def _query(self, sql):
        data = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!I", 4 + len(data)) + data)
        rows, error = [], None
        for kind, body in _pg_messages(self.sock):
            if kind == b"T":
                rows = []
            elif kind == b"D":
                count, at, row = struct.unpack("!H", body[:2])[0], 2, []
                for _ in range(count):
                    size = struct.unpack("!i", body[at:at + 4])[0]
                    at += 4
                    row.append(None if size < 0 else body[at:at + size].decode())
                    at += max(size, 0)
                rows.append(tuple(row))
            elif kind == b"E":
                error = _error_fields(body)
            elif kind == b"Z":
                if error is not None:
                    raise AssertionError(f"SQL failed ({error.get(b'C')}: {error.get(b'M')}): {sql}")
                return rows
        return rows  # not reached

    def value(self, sql):
        """The single value of a one-row, one-column query."""
        rows = self.query(sql)
        if len(rows) != 1 or len(rows[0]) != 1:
            raise AssertionError(f"expected one value, got {rows!r}: {sql}")
        return rows[0][0]

    def close(self):
        if self.sock is not None:
            try:
                self.sock.sendall(b"X\0\0\0\4")  # Terminate
            except OSError:
                pass
            self.sock.close()
            self.sock = None


class PrivateCluster:
    """A throwaway PostgreSQL 15 cluster (testpg.sh) with the popgate schema,
    for tests that stop, pause or limit the database.

    dsn is the popgate role's (what gateways and popgate-admin use);
    superuser_psql() runs SQL as `postgres`, which keeps a reserved slot
    when the cluster is full of ordinary connections.
    """

    def __init__(self):
        self.state = tempfile.mkdtemp(prefix="popgate-privpg-")
        admin_bin = os.environ.get("POPGATE_ADMIN_BIN", "")
        result = subprocess.run([TESTPG, "start", self.state, admin_bin], capture_output=True,
                                text=True, timeout=180, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"testpg.sh start failed:\n{result.stdout}\n{result.stderr}")
        with open(os.path.join(self.state, "dsn")) as f:
            self.dsn = f.read().strip()
        with open(os.path.join(self.state, "port")) as f:
            self.port = int(f.read().strip())
        with open(os.path.join(self.state, "datadir")) as f:
            self.datadir = os.path.join(f.read().strip(), "data")
        self.logfile = os.path.join(os.path.dirname(self.datadir), "server.log")
        self._paused = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- running SQL -------------------------------------------------------------

    def superuser_psql(self, sql):
        """Runs SQL as the superuser; returns psql's unaligned output."""
        result = subprocess.run(
            ["psql", f"host=127.0.0.1 port={self.port} dbname=popgate user=postgres", "-X", "-q",
             "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=60, check=False)
        if result.returncode != 0:
            raise AssertionError(f"psql failed: {sql}\n{result.stderr}")
        return result.stdout.strip()

    def admin(self, *args, **kwargs):
        """popgate-admin against this cluster."""
        return admin(*args, database=self.dsn, **kwargs)

    # ---- stopping and starting ---------------------------------------------------

    def pg_ctl(self, *args):
        result = subprocess.run(_as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.datadir, *args]),
                                capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"pg_ctl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")

    def stop_server(self, mode="fast"):
        """pg_ctl stop -m MODE, waiting until the server is down."""
        self.resume()
        self.pg_ctl("-m", mode, "-w", "-t", "60", "stop")

    def crash(self):
        """SIGKILL the postmaster and every process it has (a crash: no
        goodbye on any connection; the next start runs crash recovery),
        waiting until the server is down."""
        self.resume()
        postmaster = self.postmaster_pid()
        for pid in [postmaster] + self._children(postmaster):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 60
        while self.running():
            if time.monotonic() > deadline:
                raise RuntimeError("PostgreSQL still running 60 s after SIGKILL")
            time.sleep(0.05)

    def start_server(self):
        """pg_ctl start on the same port and data, waiting until it accepts."""
        self.pg_ctl("-l", self.logfile, "-w", "-t", "60", "start")

    def running(self):
        """True when the server is up (pg_ctl status)."""
        result = subprocess.run(_as_postgres([os.path.join(PGBIN, "pg_ctl"), "-D", self.datadir, "status"]),
                                capture_output=True, text=True, timeout=60, check=False)
        return result.returncode == 0

    def ensure_running(self):
        """Resumed and started, whatever an earlier test left behind."""
        self.resume()
        if not self.running():
            self.start_server()

    def restart_with(self, **settings):
        """ALTER SYSTEM SET each setting (e.g. max_connections=10; None
        RESETs it), then a fast restart so that settings needing one take
        effect."""
        for key, value in settings.items():
            self.superuser_psql(f"ALTER SYSTEM RESET {key}" if value is None else
                                f"ALTER SYSTEM SET {key} = '{value}'")
        self.stop_server()
        self.start_server()

    # ---- pausing -----------------------------------------------------------------

    def postmaster_pid(self):
        with open(os.path.join(self.datadir, "postmaster.pid")) as f:
            return int(f.readline().strip())

    def _children(self, pid):
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
        return [int(p) for p in out.split()]

    def pause(self):
        """SIGSTOP the postmaster first (so it forks nothing new), then every
        backend and helper process it has."""
        postmaster = self.postmaster_pid()
        os.kill(postmaster, signal.SIGSTOP)
        self._paused = [postmaster]
        for pid in self._children(postmaster):
            try:
                os.kill(pid, signal.SIGSTOP)
                self._paused.append(pid)
            except ProcessLookupError:
                pass
        return list(self._paused)

    def resume(self):
        """SIGCONT whatever pause() stopped (children first)."""
        for pid in reversed(self._paused):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self._paused = []

    def close(self):
        self.resume()
        subprocess.run([TESTPG, "stop", self.state], capture_output=True, timeout=120, check=False)


# ---- clients ---------------------------------------------------------------------------


def connect_from(source_ip, port, timeout=20):
    """A TCP connection to 127.0.0.1:port whose source is `source_ip`
    (any address in 127.0.0.0/8 works on Linux without configuration)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


class LineClient:
    """A raw POP3 connection over a socket: send bytes, read CRLF lines.
    read() returns b"" once the server has closed."""

    def __init__(self, sock, greet=True):
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.greeting = self.read() if greet else None

    @classmethod
    def to(cls, gateway, source_ip="127.0.0.1", listener=None, timeout=20, greet=True):
        host, port = gateway.listeners[listener] if listener else (gateway.host, gateway.port)
        return cls(connect_from(source_ip, port, timeout), greet=greet)

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def read(self):
        line = self.reader.readline()
        return line[:-2] if line.endswith(b"\r\n") else line

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.read()

    def multiline(self):
        """A multi-line reply's lines, still byte-stuffed, without the '.'."""
        lines = []
        while True:
            line = self.reader.readline()
            if not line.endswith(b"\r\n"):
                raise EOFError(f"connection closed inside a multi-line reply; partial {line!r}")
            if line == b".\r\n":
                return lines
            lines.append(line[:-2])

    def retr(self, msn):
        """RETR msn: (first line, message bytes un-stuffed)."""
        first = self.cmd(f"RETR {msn}")
        if not first.startswith(b"+OK"):
            return first, None
        lines = self.multiline()
        return first, b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in lines)

    def replies_until_close(self):
        """Every line the server sends until it closes (or resets)."""
        out = []
        try:
            while True:
                line = self.reader.readline()
                if not line:
                    return out
                out.append(line[:-2] if line.endswith(b"\r\n") else line)
        except (ConnectionResetError, socket.timeout):
            return out

    def close(self):
        try:
            self.reader.close()
        finally:
            self.sock.close()


def shard_of_peers(gateway):
    """{"127.0.0.1:port": shard} from the gateway's connection_accepted
    lines (the gateway must log at debug)."""
    return {l["peer"]: l["shard"] for l in gateway.log_lines() if l.get("msg") == "connection_accepted"}


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


# ---- maildrops whose delivered bytes are known ----------------------------------------------


def _crlf(data):
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


class Maildrop:
    """A user with messages delivered by popgate-admin, remembering what was
    delivered (uidl -> CRLF bytes) so a test can prove the maildrop intact
    both in the database and through a gateway."""

    def __init__(self, domain, bodies, password=None, database=None, hash_=None):
        import secrets
        self.database = database
        self.login = f"u{secrets.token_hex(4)}@{domain}"
        self.password = password or secrets.token_urlsafe(12)
        if hash_ is not None:
            admin("user", "add", self.login, "--hash", hash_, database=database)
        else:
            admin("user", "add", self.login, "--password-stdin", input=self.password + "\n",
                  database=database)
        self.delivered = {}  # uidl -> bytes as stored, in delivery order
        for body in bodies:
            self.deliver(body)

    def deliver(self, body):
        out = admin("deliver", self.login, "-", input=body, database=self.database).stdout
        uidl = out.split("uidl=")[1].split()[0]
        self.delivered[uidl] = _crlf(body)
        return uidl

    def forget(self, uidls):
        for uidl in uidls:
            del self.delivered[uidl]

    def stored(self, pg=None):
        """[(uidl, bytes)] the database holds, in message order; through
        `pg` (a PgConnection) when given, else with psql."""
        return _stored_in(self, pg)

    def assert_intact(self, test, pg=None):
        """The database holds exactly what was delivered (and not deleted)."""
        got = [(u, sha256(b)) for u, b in self.stored(pg)]
        want = [(u, sha256(b)) for u, b in self.delivered.items()]
        test.assertEqual(got, want, f"maildrop of {self.login} changed")

    def assert_served_intact(self, test, gateway, timeout=30):
        """A login through `gateway` lists and returns exactly what was
        delivered, byte for byte (UIDL and RETR of every message)."""
        client = poplib.POP3(gateway.host, gateway.port, timeout=timeout)
        try:
            client.user(self.login)
            client.pass_(self.password)
            uidls = [line.decode().split(" ", 1)[1] for line in client.uidl()[1]]
            test.assertEqual(uidls, list(self.delivered), f"UIDLs of {self.login}")
            for msn, uidl in enumerate(uidls, 1):
                body = b"".join(line + b"\r\n" for line in client.retr(msn)[1])
                test.assertEqual(sha256(body), sha256(self.delivered[uidl]), f"{self.login} message {msn}")
        finally:
            client.quit()


def _stored_in(maildrop, pg=None):
    # Like popgate_testlib.stored_messages(), in whichever database holds
    # the maildrop.
    local, domain = maildrop.login.split("@")
    if pg is not None:
        rows = pg.query("SELECT m.uidl, encode(m.body, 'hex') FROM popgate.messages m "
                        "JOIN popgate.users u USING (tenant_id, user_id) "
                        "JOIN popgate.tenants t USING (tenant_id) "
                        f"WHERE t.domain = '{domain}' AND u.local_part = '{local}' AND NOT m.hidden "
                        "ORDER BY m.message_id")
        return [(uidl, bytes.fromhex(body)) for uidl, body in rows]
    text = psql("SELECT string_agg(m.uidl || ' ' || translate(encode(m.body, 'base64'), "
                "E'\\n', ''), E'\\n' ORDER BY m.message_id) FROM popgate.messages m "
                "JOIN popgate.users u USING (tenant_id, user_id) "
                "JOIN popgate.tenants t USING (tenant_id) "
                f"WHERE t.domain = '{domain}' AND u.local_part = '{local}' AND NOT m.hidden",
                database=maildrop.database)
    out = []
    for row in text.splitlines() if text else []:
        uidl, body = row.split(" ", 1)
        out.append((uidl, base64.b64decode(body)))
    return out
