#!/usr/bin/env python3
"""popgate soak driver (issue 6, item 8): N concurrent POP3 sessions with a
mixed workload against the real binary and a real PostgreSQL, for a bounded
time; then proves the server came back to where it started.

    python3 tests/soak/soak.py --build build --sessions 10000 --minutes 5
    python3 tests/soak/soak.py --build build --sessions 1000 --seconds 20   # the CI mode

Without --dsn/--dsn-file it starts a PostgreSQL cluster of its own
(tests/support/testpg.sh, removed afterwards). Binaries come from --build
(or POPGATE_BIN / POPGATE_ADMIN_BIN).

Set-up: one tenant; one user made by popgate-admin (argon2id hash and SCRAM
credential) and cloned in SQL to one user per session slot (same
credentials, so the set-up costs seconds, not an hour of KDF time); a few
template messages delivered by popgate-admin (dot lines, 8-bit, and one
larger than a body chunk, which only every 20th maildrop gets) copied to
every maildrop in SQL, each with a new UIDL.

The run: every slot keeps one connection open all the time, from one of
several 127.0.x.y source addresses (50 per address, under
limits.connections_per_address_max), and loops over a random workload:
  reader   login, STAT, UIDL, RETR of a random message (bytes checked against
           the template it was copied from), QUIT
  deleter  login, UIDL, DELE of a random message, QUIT (the UPDATE)
  idle     connect (half of them log in), stay 5-40 s with a NOOP every
           15 s, QUIT
  dropper  login, RETR, read part of it, then vanish (RST or FIN)
  greeter  read the greeting and close
  capa     CAPA, QUIT
and an LMTP task delivers a template message to 10 random users at a time
through popgate's LMTP listener. A warm-up (a fifth of the run time, 5 to 60
s, at full concurrency) comes first; then every connection is closed, and the baseline is taken once the server
is quiet (this puts the allocator's high-water mark and every pool in the
baseline, so "return to baseline" is about leaks, not about first use).

Bounds: every network step has a 60 s timeout (a step that takes longer is
an error); slots stop starting work at the deadline and are cancelled 60 s
later at the latest; quiescing waits at most 60 s.

Checks (exit status 1 if any fails):
  - no unexpected reply, wrong byte, timeout or refused connection
    ([IN-USE] right after one's own dropped session is expected, counted);
  - afterwards: open fds of popgate (/proc/PID/fd) equal the baseline
    (tolerance FD_TOLERANCE); RSS within RSS_TOLERANCE of the baseline
    (reported but not checked for an ASan or TSan build, whose allocators
    keep freed memory);
  - /metrics: connections accepted = closed, sessions opened = ended,
    connections active = 0;
  - no row in popgate.maildrop_locks for the tenant;
  - no mail lost: messages in the tenant = copied + delivered by LMTP -
    deleted by UPDATEs the driver saw committed, and that equals
    popgate_update_messages_deleted_total;
  - popgate exits 0 on SIGINT.
"""

import argparse
import asyncio
import hashlib
import json
import os
import platform
import poplib
import random
import resource
import secrets
import socket
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SUPPORT = os.path.join(HERE, "..", "support")

# Each network step (connect, a reply, a multi-line reply) must finish
# within this; a slower one is counted as an error. A no-stall bound.
STEP_TIMEOUT_S = 60
# After the deadline, slots finish what they are doing; this is the most
# they get before being cancelled (a cancelled slot is an error).
FINISH_GRACE_S = 60
# How long the server may take to close everything once clients are gone.
QUIESCE_BOUND_S = 60
# Connections per source address (limits.connections_per_address_max is 100).
PER_ADDRESS = 50
# After the run, popgate's open fds may exceed the baseline by this much
# (nothing is expected: PostgreSQL connections and listeners are fixed).
FD_TOLERANCE = 0
# After the run, RSS may exceed the baseline by 10% plus 16 MiB: allocator
# fragmentation after hundreds of thousands of sessions, never anything that
# grows with the work done (a leak of 1 KiB per session would be ~100 MiB).
RSS_TOLERANCE_RATIO = 0.10
RSS_TOLERANCE_KIB = 16 * 1024

# The large template (over one body chunk) goes to every 20th maildrop only,
# to keep the database small (10,000 x 350 KiB would be 3.5 GB).
BIG_MESSAGE_BYTES = 100_000
BIG_MESSAGE_EVERY = 20
# LMTP delivery tasks per worker process.
LMTP_TASKS = 2
# The server must have had at least this share of the sessions open at once
# (popgate_connections_active, sampled every 2 s after the ramp).
CONCURRENCY_MIN = 0.95
LMTP_SENDER = b"soak@example.org"
LMTP_RETURN_PATH = b"Return-Path: <" + LMTP_SENDER + b">\r\n"  # lmtp.return_path (default on)
WORKLOAD = [("reader", 30), ("deleter", 10), ("idle", 30), ("dropper", 15), ("greeter", 10), ("capa", 5)]


def template_messages():
    big = b"Subject: soak big\r\n\r\n" + b"".join(
        (b"." if i % 5 == 0 else b"") + b"%07d " % i + b"z" * 80 + b"\r\n" for i in range(4000))
    return [
        b"Subject: soak 1\r\n\r\n.a stuffed line\r\nhello\r\n",
        b"Subject: soak 2\r\n\r\n" + "8-bit: Grüße, 日本語\r\n".encode() * 20,
        b"Subject: soak 3\r\n\r\n" + b"line of text\r\n" * 300,
        big,
    ]


class Stats:
    def __init__(self):
        self.actions = {name: 0 for name, _ in WORKLOAD}
        self.commands = 0
        self.retr_verified = 0
        self.retr_bytes = 0
        self.deleted_committed = 0
        self.in_use = 0
        self.lmtp_delivered = 0
        self.errors = {}
        self.error_examples = []

    def error(self, kind, detail=""):
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if len(self.error_examples) < 20:
            self.error_examples.append(f"{kind}: {detail}"[:300])

    def add(self, other):
        """Adds another Stats' figures (from a worker process) to these."""
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(value, dict):
                for k, v in value.items():
                    mine[k] = mine.get(k, 0) + v
            elif isinstance(value, list):
                mine.extend(value[:max(0, 20 - len(mine))])
            else:
                setattr(self, name, mine + value)


class Pop3:
    """One asyncio POP3 connection."""

    def __init__(self, reader, writer, stats):
        self.r, self.w, self.stats = reader, writer, stats

    @classmethod
    async def open(cls, port, source, stats):
        # A socket of our own: open_connection(host, local_addr=...) would
        # resolve both addresses in a thread pool for every connection.
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            await asyncio.wait_for(asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port)),
                                   STEP_TIMEOUT_S)
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 22)
        except BaseException:
            sock.close()
            raise
        return cls(reader, writer, stats)

    async def line(self):
        line = await asyncio.wait_for(self.r.readline(), STEP_TIMEOUT_S)
        if not line.endswith(b"\r\n"):
            raise EOFError(f"connection closed; partial {line[:80]!r}")
        return line[:-2]

    async def cmd(self, text):
        self.stats.commands += 1
        self.w.write(text.encode() + b"\r\n")
        return await self.line()

    async def multiline(self):
        """The lines of a multi-line reply, un-stuffed. Read in one piece
        up to the terminating CRLF.CRLF (line-by-line reads would make the
        driver, not the server, the bottleneck)."""
        first = await asyncio.wait_for(self.r.readline(), STEP_TIMEOUT_S)
        if first == b".\r\n":
            return []
        if not first.endswith(b"\r\n"):
            raise EOFError(f"connection closed; partial {first[:80]!r}")
        buf = first
        while not buf.endswith(b"\r\n.\r\n"):  # a "." that ends a line is not the end
            buf += await asyncio.wait_for(self.r.readuntil(b".\r\n"), STEP_TIMEOUT_S)
        lines = buf[:-5].split(b"\r\n")
        return [line[1:] if line.startswith(b".") else line for line in lines]

    def abort(self):
        """Vanish: RST."""
        sock = self.w.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.w.transport.abort()

    async def close(self):
        self.w.close()
        try:
            await asyncio.wait_for(self.w.wait_closed(), STEP_TIMEOUT_S)
        except (OSError, asyncio.TimeoutError):
            pass


class Soak:
    """The slots of one worker process (slot i belongs to worker i % workers)."""

    def __init__(self, slots, sessions, port, lmtp_port, users, password, digests, rng):
        self.slots, self.sessions, self.port, self.lmtp_port = slots, sessions, port, lmtp_port
        self.users, self.password, self.digests, self.rng = users, password, digests, rng
        self.stats = Stats()
        self.stop_at = 0.0
        self.connections = set()
        self.messages = template_messages()

    def source_of(self, slot):
        n = slot // PER_ADDRESS
        return f"127.{100 + n // 250}.{1 + n % 250}.1"

    async def login(self, c, slot):
        await c.cmd(f"USER {self.users[slot]}")
        reply = await c.cmd(f"PASS {self.password}")
        if reply.startswith(b"+OK"):
            return True
        if reply.startswith(b"-ERR [IN-USE]"):
            self.stats.in_use += 1  # our own previous session's lock, being released
            return False
        raise AssertionError(f"login refused: {reply!r}")

    async def retr(self, c, msn):
        first = await c.cmd(f"RETR {msn}")
        if not first.startswith(b"+OK"):
            raise AssertionError(f"RETR {msn}: {first!r}")
        body = b"".join(line + b"\r\n" for line in await c.multiline())
        if hashlib.sha256(body).hexdigest() not in self.digests or first != b"+OK %d octets" % len(body):
            raise AssertionError(f"RETR {msn} returned {len(body)} octets matching no template")
        self.stats.retr_verified += 1
        self.stats.retr_bytes += len(body)

    async def action(self, slot, kind):
        port = self.port
        c = await Pop3.open(port, self.source_of(slot), self.stats)
        self.connections.add(c)
        try:
            greeting = await c.line()
            if not greeting.startswith(b"+OK"):
                raise AssertionError(f"greeting {greeting!r}")
            if kind == "greeter":
                await c.close()
                return
            if kind == "capa":
                if not (await c.cmd("CAPA")).startswith(b"+OK"):
                    raise AssertionError("CAPA")
                await c.multiline()
                await c.cmd("QUIT")
                await c.close()
                return
            if kind == "idle":
                # Before login, silence (under session.login_idle_timeout_ms,
                # 60 s); after login, a NOOP every 15 s.
                logged = self.rng.random() < 0.5 and await self.login(c, slot)
                until = min(time.monotonic() + self.rng.uniform(5, 40), self.stop_at)
                while time.monotonic() < until:
                    await asyncio.sleep(min(15, max(0.0, until - time.monotonic())))
                    if logged:
                        reply = await c.cmd("NOOP")
                        if not reply.startswith(b"+OK"):
                            raise AssertionError(f"NOOP {reply!r}")
                await c.cmd("QUIT")
                await c.close()
                return
            if not await self.login(c, slot):
                await c.cmd("QUIT")
                await c.close()
                return
            stat = await c.cmd("STAT")
            count = int(stat.split()[1])
            if kind == "reader":
                if not (await c.cmd("UIDL")).startswith(b"+OK"):
                    raise AssertionError("UIDL")
                await c.multiline()
                if count:
                    await self.retr(c, self.rng.randint(1, count))
                reply = await c.cmd("QUIT")
                if not reply.startswith(b"+OK"):
                    raise AssertionError(f"QUIT {reply!r}")
                await c.close()
            elif kind == "deleter":
                await c.cmd("UIDL")
                await c.multiline()
                marked = 0
                if count > 1:  # leave one: readers need something to read
                    reply = await c.cmd(f"DELE {self.rng.randint(1, count)}")
                    if not reply.startswith(b"+OK"):
                        raise AssertionError(f"DELE {reply!r}")
                    marked = 1
                reply = await c.cmd("QUIT")
                if not reply.startswith(b"+OK"):
                    raise AssertionError(f"QUIT after DELE {reply!r}")
                self.stats.deleted_committed += marked
                await c.close()
            elif kind == "dropper":
                if count:
                    if self.rng.random() < 0.5:
                        marked = await c.cmd(f"DELE {self.rng.randint(1, count)}")  # never committed
                        if not marked.startswith(b"+OK"):
                            raise AssertionError(f"DELE {marked!r}")
                    self.stats.commands += 1
                    c.w.write(f"RETR {self.rng.randint(1, count)}\r\n".encode())
                    if (await c.line()).startswith(b"+OK"):  # -ERR: the message it marked
                        for _ in range(self.rng.randint(0, 20)):
                            if await c.line() == b".":
                                break
                if self.rng.random() < 0.5:
                    c.abort()
                else:
                    await c.close()
        finally:
            self.connections.discard(c)

    async def slot_loop(self, slot, start_delay):
        await asyncio.sleep(start_delay)
        while time.monotonic() < self.stop_at:
            kind = self.rng.choices([k for k, _ in WORKLOAD], [w for _, w in WORKLOAD])[0]
            try:
                await self.action(slot, kind)
                self.stats.actions[kind] += 1
            except (AssertionError, EOFError, OSError, asyncio.TimeoutError, asyncio.LimitOverrunError, ValueError,
                    IndexError) as e:
                self.stats.error(f"{kind}:{type(e).__name__}", str(e))
                await asyncio.sleep(1)

    async def lmtp_loop(self):
        """Deliveries through popgate's LMTP listener while the run goes on."""
        while time.monotonic() < self.stop_at:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", self.lmtp_port), STEP_TIMEOUT_S)

                async def reply():
                    while True:
                        line = await asyncio.wait_for(r.readline(), STEP_TIMEOUT_S)
                        if line[3:4] != b"-":
                            return line

                async def cmd(text):
                    w.write(text + b"\r\n")
                    return await reply()
                await reply()
                await cmd(b"LHLO soak")
                await cmd(b"MAIL FROM:<" + LMTP_SENDER + b">")
                rcpts = self.rng.sample(range(len(self.users)), min(10, len(self.users)))
                accepted = 0
                for i in rcpts:
                    if (await cmd(f"RCPT TO:<{self.users[i]}>".encode())).startswith(b"250"):
                        accepted += 1
                await cmd(b"DATA")
                body = self.messages[self.rng.randrange(len(self.messages) - 1)]  # not the big one
                w.write(body.replace(b"\r\n.", b"\r\n..") + b".\r\n")
                for _ in range(accepted):
                    if (await reply()).startswith(b"250"):
                        self.stats.lmtp_delivered += 1
                    else:
                        self.stats.error("lmtp", "a recipient was refused after DATA")
                await cmd(b"QUIT")
                w.close()
            except (OSError, asyncio.TimeoutError) as e:
                self.stats.error("lmtp", repr(e))
            await asyncio.sleep(0.2)

    async def phase(self, start_wall, seconds, ramp_s):
        """Runs the slots from `start_wall` (time.time(), the same for every
        worker) for `seconds`, then lets them finish (FINISH_GRACE_S)."""
        await asyncio.sleep(max(0.0, start_wall - time.time()))
        self.stop_at = time.monotonic() + seconds
        slots = [asyncio.ensure_future(self.slot_loop(i, ramp_s * i / self.sessions)) for i in self.slots]
        lmtp = [asyncio.ensure_future(self.lmtp_loop()) for _ in range(LMTP_TASKS)]
        await asyncio.sleep(seconds)
        done, pending = await asyncio.wait(slots + lmtp, timeout=FINISH_GRACE_S)
        for task in pending:
            task.cancel()
            self.stats.error("cancelled_at_deadline")
        if pending:
            await asyncio.wait(pending, timeout=10)
        for c in list(self.connections):
            c.abort()


def worker_phase(config, worker, start_wall, seconds, ramp_s):
    """One worker process's part of a phase; returns its Stats."""
    sessions = config["sessions"]
    soak = Soak(range(worker, sessions, config["workers"]), sessions, config["port"], config["lmtp_port"],
                config["users"], config["password"], config["digests"],
                random.Random(config["seed"] * 1000 + worker * 10 + config["phase"]))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(soak.phase(start_wall, seconds, ramp_s))
    finally:
        loop.close()
    return soak.stats


def run_phase(config, seconds, ramp_s, gateway, pid):
    """Runs a phase in config["workers"] processes; meanwhile samples the
    gateway's open connections (popgate_connections_active) and RSS.
    Returns (merged Stats, connection samples, peak RSS in KiB)."""
    import multiprocessing
    start_wall = time.time() + 2.0
    ctx = multiprocessing.get_context("fork")
    samples, peak = [], 0
    with ctx.Pool(config["workers"]) as pool:
        result = pool.starmap_async(worker_phase, [(config, w, start_wall, seconds, ramp_s)
                                                   for w in range(config["workers"])])
        while not result.ready():
            result.wait(2.0)
            peak = max(peak, rss_kib(pid))
            if start_wall + ramp_s < time.time() < start_wall + seconds:
                samples.append(totals(gateway)["connections_active"])
        stats = Stats()
        for part in result.get():
            stats.add(part)
    config["phase"] += 1
    return stats, samples, peak


def sanitized(binary):
    """True when `binary` is built with ASan or TSan."""
    import shutil
    path = shutil.which(binary)
    if not path:
        return False
    with open(path, "rb") as f:
        data = f.read()
    return b"__asan_init" in data or b"__tsan_init" in data


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def totals(gateway):
    m = gateway.metrics()

    def total(name):
        return sum(v for (n, _), v in m.items() if n == name)
    return {k: total(f"popgate_{k}") for k in (
        "connections_accepted_total", "connections_closed_total", "connections_active",
        "sessions_opened_total", "sessions_ended_total", "update_messages_deleted_total",
        "connections_rejected_total", "lmtp_sessions_total", "commands_total")}


def quiesce(gateway, psql, tenant):
    """Waits until popgate has no connection open and the tenant no lock."""
    deadline = time.monotonic() + QUIESCE_BOUND_S
    while time.monotonic() < deadline:
        t = totals(gateway)
        locks = int(psql(f"SELECT count(*) FROM popgate.maildrop_locks l JOIN popgate.tenants t "
                         f"USING (tenant_id) WHERE t.domain = '{tenant}'"))
        if t["connections_active"] == 0 and t["connections_accepted_total"] == t["connections_closed_total"] \
                and t["sessions_opened_total"] == t["sessions_ended_total"] and locks == 0:
            time.sleep(1.0)  # let threads settle before measuring
            return t, locks
        time.sleep(0.5)
    return totals(gateway), locks


def setup_data(args, tenant, admin, psql):
    admin("tenant", "add", tenant)
    password = secrets.token_urlsafe(12)
    template = f"template@{tenant}"
    admin("user", "add", template, "--password-stdin", input=password + "\n")
    messages = template_messages()
    for body in messages:
        admin("deliver", template, "-", input=body)
    n = args.sessions
    psql(f"""
      INSERT INTO popgate.users (tenant_id, local_part, password_hash, scram_sha256)
      SELECT u.tenant_id, 's' || g, u.password_hash, u.scram_sha256
        FROM popgate.users u JOIN popgate.tenants t USING (tenant_id), generate_series(0, {n - 1}) g
       WHERE t.domain = '{tenant}' AND u.local_part = 'template';
      INSERT INTO popgate.messages (tenant_id, user_id, uidl, size_bytes, body)
      SELECT s.tenant_id, s.user_id, popgate.new_uidl(), m.size_bytes, m.body
        FROM popgate.users s JOIN popgate.tenants t USING (tenant_id)
        JOIN popgate.users tu ON tu.tenant_id = s.tenant_id AND tu.local_part = 'template'
        JOIN popgate.messages m ON m.tenant_id = tu.tenant_id AND m.user_id = tu.user_id
       WHERE t.domain = '{tenant}' AND s.local_part <> 'template'
         AND (m.size_bytes < {BIG_MESSAGE_BYTES} OR substr(s.local_part, 2)::int % {BIG_MESSAGE_EVERY} = 0)
       ORDER BY s.user_id, m.message_id;
    """)
    users = [f"s{i}@{tenant}" for i in range(n)]
    # As copied, and as LMTP stores them (a Return-Path line first).
    digests = {hashlib.sha256(crlf(b)).hexdigest() for b in messages}
    digests |= {hashlib.sha256(LMTP_RETURN_PATH + crlf(b)).hexdigest() for b in messages}
    copied = int(psql(f"SELECT count(*) FROM popgate.messages m JOIN popgate.tenants t USING (tenant_id) "
                      f"WHERE t.domain = '{tenant}'")) - len(messages)
    return users, password, digests, copied


def crlf(data):
    data = data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    return data if data.endswith(b"\r\n") else data + b"\r\n"


def tenant_message_count(psql, tenant):
    return int(psql(f"SELECT count(*) FROM popgate.messages m JOIN popgate.tenants t USING (tenant_id) "
                    f"WHERE t.domain = '{tenant}' AND NOT m.hidden"))


def run(args):
    """Runs the soak; returns the report dict (report["ok"] says if every
    check passed)."""
    if args.build:
        os.environ.setdefault("POPGATE_BIN", os.path.join(args.build, "server", "popgate"))
        os.environ.setdefault("POPGATE_ADMIN_BIN", os.path.join(args.build, "ops", "admin", "popgate-admin"))
    sys.path.insert(0, SUPPORT)
    import popgate_server
    import popgate_testlib
    popgate_server.POPGATE_BIN = os.environ.get("POPGATE_BIN", popgate_server.POPGATE_BIN)

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # inherited by the gateway
    if hard != resource.RLIM_INFINITY and hard < args.sessions + 1000:
        raise SystemExit(f"RLIMIT_NOFILE hard limit {hard} is too low for {args.sessions} sessions "
                         f"(the driver and the gateway each need one fd per session, and a margin)")

    cluster = None
    dsn = args.dsn
    if args.dsn_file:
        with open(args.dsn_file) as f:
            dsn = f.read().strip()
    if not dsn:
        from private_pg import PrivateCluster
        cluster = PrivateCluster()
        dsn = cluster.dsn

    def admin(*a, **kw):
        return popgate_testlib.admin(*a, database=dsn, **kw)

    def psql(sql):
        return popgate_testlib.psql(sql, database=dsn)

    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    tenant = f"soak{secrets.token_hex(4)}.test"
    report = {"seed": seed, "sessions": args.sessions, "seconds": args.seconds, "shards": args.shards,
              "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
                         f"{platform.system()} {platform.release()}",
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    gateway = None
    try:
        t0 = time.monotonic()
        users, password, digests, copied = setup_data(args, tenant, admin, psql)
        report["setup_seconds"] = round(time.monotonic() - t0, 1)
        shards = args.shards
        per_shard = max(65536, args.sessions * 2)
        gateway = popgate_server.Gateway(
            dsn, shards=shards,
            listeners=["name=pop3,address=127.0.0.1:0", "name=lmtp,address=127.0.0.1:0,protocol=lmtp"],
            session__connections_per_shard_max=per_shard,
            log_level="warn")
        assert per_shard * shards >= args.sessions
        pid = gateway.proc.pid
        report["start"] = {"fds": fd_count(pid), "rss_kib": rss_kib(pid)}
        config = {"sessions": args.sessions, "workers": args.workers, "port": gateway.port,
                  "lmtp_port": gateway.port_of("lmtp"), "users": users, "password": password,
                  "digests": digests, "seed": seed, "phase": 0}
        # Every user shares one password hash: once a shard has checked it,
        # its verify cache answers (auth.verify_cache_ttl_ms). Sequential
        # logins first put it in every shard's cache (the kernel spreads
        # connections over shards), so thousands of first logins do not
        # all run argon2id at once.
        for _ in range(8 * shards):
            client = poplib.POP3("127.0.0.1", gateway.port, timeout=STEP_TIMEOUT_S)
            client.user(f"template@{tenant}")
            client.pass_(password)
            client.quit()

        warm = min(60.0, max(5.0, args.seconds * 0.2))
        main = args.seconds
        ramp = min(20.0, warm / 2)
        print(f"soak: seed {seed}, {args.sessions} sessions, warm-up {warm:.0f} s, main {main:.0f} s, "
              f"tenant {tenant}", flush=True)
        t1 = time.monotonic()
        warm_stats, _, _ = run_phase(config, warm, ramp, gateway, pid)
        t2 = time.monotonic()
        quiesce(gateway, psql, tenant)
        report["warmup_seconds"] = round(t2 - t1, 1)
        report["quiesce_seconds"] = round(time.monotonic() - t2, 1)
        baseline = {"fds": fd_count(pid), "rss_kib": rss_kib(pid)}
        report["baseline"] = baseline
        print(f"soak: warm-up done {json.dumps(warm_stats.actions)}, errors {warm_stats.errors}; "
              f"baseline {baseline}", flush=True)

        start = time.monotonic()
        s, samples, peak_rss = run_phase(config, main, ramp, gateway, pid)
        report["main_seconds"] = round(time.monotonic() - start, 1)
        t3 = time.monotonic()
        after_totals, locks = quiesce(gateway, psql, tenant)
        report["final_quiesce_seconds"] = round(time.monotonic() - t3, 1)
        after = {"fds": fd_count(pid), "rss_kib": rss_kib(pid)}
        s.add(warm_stats)  # every check covers both phases
        stored = tenant_message_count(psql, tenant)
        expected_stored = copied + len(template_messages()) + s.lmtp_delivered - s.deleted_committed
        report.update({
            "open_connections_sampled": {"min": min(samples) if samples else 0,
                                         "max": max(samples) if samples else 0,
                                         "mean": round(sum(samples) / len(samples)) if samples else 0},
            "actions": s.actions, "commands": s.commands, "retr_verified": s.retr_verified,
            "retr_bytes": s.retr_bytes, "deleted_committed": s.deleted_committed, "in_use": s.in_use,
            "lmtp_delivered": s.lmtp_delivered, "errors": s.errors, "error_examples": s.error_examples,
            "peak_rss_kib": peak_rss, "after": after, "counters": after_totals, "locks": locks,
            "messages_stored": stored, "messages_expected": expected_stored,
            "update_deleted_counter": after_totals["update_messages_deleted_total"],
        })
        rss_bound = baseline["rss_kib"] * (1 + RSS_TOLERANCE_RATIO) + RSS_TOLERANCE_KIB
        # ASan and TSan keep freed memory (quarantine, shadow): RSS says
        # nothing about popgate there, so it is reported but not checked.
        report["sanitized"] = sanitized(popgate_server.POPGATE_BIN)
        checks = {
            "no_errors": not s.errors,
            "fds_back_to_baseline": after["fds"] <= baseline["fds"] + FD_TOLERANCE,
            "rss_back_to_baseline": report["sanitized"] or after["rss_kib"] <= rss_bound,
            "connections_balance": after_totals["connections_accepted_total"] == after_totals["connections_closed_total"]
                                   and after_totals["connections_active"] == 0,
            "sessions_balance": after_totals["sessions_opened_total"] == after_totals["sessions_ended_total"],
            "no_locks": locks == 0,
            "no_mail_lost": stored == expected_stored
                            and after_totals["update_messages_deleted_total"] == s.deleted_committed,
            "concurrency_reached": bool(samples) and max(samples) >= CONCURRENCY_MIN * args.sessions,
        }
        t4 = time.monotonic()
        rc = gateway.stop()
        gateway = None
        report["stop_seconds"] = round(time.monotonic() - t4, 1)
        checks["clean_exit"] = rc == 0
        report["checks"] = checks
        report["ok"] = all(checks.values())
        return report
    finally:
        if gateway is not None:
            gateway.kill()
        if cluster is not None:
            cluster.close()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=10000, help="concurrent sessions (slots)")
    p.add_argument("--minutes", type=float, help="run time in minutes")
    p.add_argument("--seconds", type=float, help="run time in seconds (default 300), after the warm-up")
    p.add_argument("--shards", type=int, default=0, help="gateway shards (0: one per CPU)")
    p.add_argument("--build", help="build directory holding server/popgate and ops/admin/popgate-admin")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: a private cluster)")
    p.add_argument("--dsn-file", help="file holding the DSN")
    p.add_argument("--seed", type=int)
    p.add_argument("--workers", type=int, default=0, help="driver processes (0: one per CPU)")
    p.add_argument("--json", help="write the report here too")
    args = p.parse_args()
    args.seconds = args.minutes * 60 if args.minutes is not None else (args.seconds or 300)
    if args.shards == 0:
        args.shards = os.cpu_count() or 1
    if args.workers == 0:
        args.workers = os.cpu_count() or 1
    report = run(args)
    text = json.dumps(report, indent=2, sort_keys=True)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
