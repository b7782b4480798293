"""Crash atomicity of UPDATE: popgate is killed with SIGKILL at random
points around QUIT's UPDATE, many times over, and every maildrop involved
is then checked in the database and through another gateway.

Each round starts a victim gateway, logs in three users, marks a random
subset of each maildrop with DELE, sends the QUITs and SIGKILLs the
process a random gap after each (from tens of microseconds to
milliseconds; some sessions send no QUIT at all). The gaps are scaled to
how long an uninterrupted QUIT takes on this machine and build (measured
first, with the same users and sizes), so the kills fall before, during
and after the UPDATE whether or not the build is slowed by sanitizers. Afterwards, for every maildrop:
  - it lost either all of its marked messages or none of them, and never
    an unmarked one (UIDL and SHA-256 of every body, in the database and
    read back through a gateway);
  - a session whose QUIT was never sent lost nothing;
  - a QUIT answered "+OK ... (n messages deleted)" before the kill really
    deleted its n marked messages;
  - a lock left behind expires, by PostgreSQL's clock, within the
    configured lease (3 s) of the kill, and a new login then succeeds at
    the first attempt.
The test also requires that both outcomes occurred (some UPDATEs committed,
some QUITs sent and rolled back), or the kills proved nothing.

The seed is printed; POPGATE_FAULTS_SEED=N replays its choices (subsets,
message sizes, timeline); the kernel decides the rest.
POPGATE_FAULTS_ROUNDS sets the number of kills (default 40)."""

import math
import os
import random
import secrets
import shutil
import signal
import socket
import statistics
import time
import unittest
from concurrent.futures import ThreadPoolExecutor

from itest import Gateway, dsn, new_tenant, wait_until
from private_pg import LineClient, Maildrop, PgConnection, sha256, ssha256

ROUNDS = int(os.environ.get("POPGATE_FAULTS_ROUNDS", "40"))
USERS_PER_ROUND = 3
# A pool of users is reused every POOLS rounds, and checked just before
# (the rounds in between give a lock left behind time to lapse).
POOLS = 4
# The smallest lock_lease_ms popgate accepts.
LEASE_MS = 3000
# PostgreSQL-clock allowance on the lease bound: a renewal the victim had
# already sent may run a moment after the kill is recorded (not a timing
# figure: a lease renewed later than that would mean a live holder).
LEASE_SLACK_MS = 1000
MESSAGES_TOPUP = 7
# Uninterrupted QUITs measured before the kills (their median scales the
# timeline).
CALIBRATION_ROUNDS = 2
# The share of sessions that send no QUIT before the kill, and the
# shortest QUIT-to-kill gap drawn (seconds; a send alone takes about this).
NO_QUIT_SHARE = 0.15
GAP_MIN_S = 20e-6
# How the outcomes are reported, by measured QUIT-to-kill gap (seconds).
GAP_BUCKETS_S = (0.0001, 0.0003, 0.001, 0.003, 0.01, math.inf)


def random_body(rng, serial):
    """A message with dot-led lines and 8-bit octets, 100 B to 20 KiB."""
    lines = [f"Subject: crash {serial}".encode(), b""]
    size = rng.randint(100, 20 * 1024)
    total = 0
    while total < size:
        kind = rng.random()
        if kind < 0.1:
            line = b"." * rng.randint(1, 3) + b"stuffed"
        elif kind < 0.2:
            line = bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randint(1, 60)))
        else:
            line = b"x" * rng.randint(0, 200)
        lines.append(line)
        total += len(line) + 2
    return b"\r\n".join(lines) + b"\r\n"


def busy_wait_until(when):
    """time.sleep() is too coarse for sub-millisecond offsets."""
    while time.perf_counter() < when:
        pass


class Lmtp:
    """An LMTP client (RFC 2033) for one recipient per transaction."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=30)
        self.reader = self.sock.makefile("rb")
        self.expect("220")
        self.command("LHLO crash.test", "250")

    def expect(self, code):
        """Reads one reply (all its lines); it must carry `code`."""
        while True:
            line = self.reader.readline()
            if not line.startswith(code.encode()):
                raise AssertionError(f"LMTP: expected {code}, got {line!r}")
            if line[3:4] != b"-":
                return

    def command(self, text, code):
        self.sock.sendall(text.encode() + b"\r\n")
        self.expect(code)

    def deliver(self, rcpt, body):
        """`body` ends in CRLF; it goes out dot-stuffed."""
        self.command("MAIL FROM:<crash@sender.test>", "250")
        self.command(f"RCPT TO:<{rcpt}>", "250")
        self.command("DATA", "354")
        lines = body.split(b"\r\n")
        self.sock.sendall(b"\r\n".join(b"." + l if l.startswith(b".") else l for l in lines) + b".\r\n")
        self.expect("250")

    def close(self):
        try:
            self.command("QUIT", "221")
        finally:
            self.reader.close()
            self.sock.close()


class Attempt:
    """One session of a round: what it marked, and what became of its QUIT."""

    def __init__(self, maildrop, marked, conv):
        self.maildrop, self.marked, self.conv = maildrop, marked, conv
        self.quit_sent = False
        self.sent = None  # perf_counter() when the QUIT went out
        self.gap_s = None  # from the QUIT's send to the kill
        self.reply = None
        self.killed_at_db = None  # PostgreSQL's clock (epoch s) just after the kill


class CrashAtomicityTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.dsn = dsn()
        cls.domain = new_tenant()
        cls.pg = PgConnection(cls.dsn)
        # Also the LMTP server that delivers the test's messages.
        cls.checker = Gateway(cls.dsn, listeners=["name=pop3,address=127.0.0.1:0",
                                                  "name=lmtp,address=127.0.0.1:0,protocol=lmtp"],
                              lmtp__return_path=False, database__lock_lease_ms=LEASE_MS)

    @classmethod
    def tearDownClass(cls):
        cls.pg.close()
        rc = cls.checker.stop()
        if rc != 0:
            raise AssertionError(f"checker popgate exited {rc}:\n{cls.checker.log_text()[-4000:]}")

    # ---- the database's view ---------------------------------------------------------------

    def where_user(self, m):
        local, domain = m.login.split("@")
        return (f"FROM popgate.maildrop_locks l JOIN popgate.users u USING (tenant_id, user_id) "
                f"JOIN popgate.tenants t USING (tenant_id) "
                f"WHERE t.domain = '{domain}' AND u.local_part = '{local}'")

    def live_locks(self, maildrops):
        return sum(int(self.pg.value(f"SELECT count(*) {self.where_user(m)} AND l.lease_expires_at > now()"))
                   for m in maildrops)

    def db_now(self):
        return float(self.pg.value("SELECT extract(epoch FROM clock_timestamp())"))

    # ---- maildrops -----------------------------------------------------------------------------

    def new_maildrop(self):
        password = secrets.token_urlsafe(12)
        return Maildrop(self.domain, [], password=password, hash_=ssha256(password))

    def top_up(self, rng, maildrops):
        """Refills each maildrop to MESSAGES_TOPUP messages, delivered by
        LMTP through the checker gateway (one connection; in order, so
        delivery order is message order), and learns their UIDLs."""
        lmtp = Lmtp(self.checker.listeners["lmtp"])
        try:
            for m in maildrops:
                bodies = []
                while len(m.delivered) + len(bodies) < MESSAGES_TOPUP:
                    self.serial += 1
                    bodies.append(random_body(rng, self.serial))
                    lmtp.deliver(m.login, bodies[-1])
                if not bodies:
                    continue
                new = m.stored(self.pg)[-len(bodies):]
                self.assertEqual([sha256(b) for _, b in new], [sha256(b) for b in bodies],
                                 f"LMTP stored other bytes for {m.login}")
                for (uidl, _), body in zip(new, bodies):
                    m.delivered[uidl] = body
        finally:
            lmtp.close()

    # ---- one round -----------------------------------------------------------------------------

    def open_sessions(self, gateway, rng, maildrops):
        """A logged-in session per maildrop with a random non-empty subset
        marked by DELE."""
        attempts = []
        for m in maildrops:
            conv = LineClient.to(gateway)
            self.assertEqual(conv.cmd(f"USER {m.login}"), b"+OK send PASS")
            reply = conv.cmd(f"PASS {m.password}")
            self.assertTrue(reply.startswith(b"+OK"), f"login of {m.login}: {reply!r}")
            conv.send("UIDL\r\n")
            self.assertTrue(conv.read().startswith(b"+OK"))
            listing = [line.decode().split(" ") for line in conv.multiline()]
            self.assertEqual([u for _, u in listing], list(m.delivered))
            chosen = rng.sample(listing, rng.randint(1, len(listing)))
            for msn, _ in chosen:
                self.assertEqual(conv.cmd(f"DELE {msn}"), f"+OK message {msn} deleted".encode())
            attempts.append(Attempt(m, {u for _, u in chosen}, conv))
        return attempts

    def calibrate(self, rng, maildrops):
        """Seconds an uninterrupted QUIT with UPDATE takes here: the median
        over CALIBRATION_ROUNDS rounds, all QUITs sent at once. Each UPDATE
        must delete exactly what its session marked."""
        samples = []
        gateway = Gateway(self.dsn, database__lock_lease_ms=LEASE_MS, log_level="warn")
        try:
            for _ in range(CALIBRATION_ROUNDS):
                self.top_up(rng, maildrops)
                attempts = self.open_sessions(gateway, rng, maildrops)
                for attempt in attempts:
                    attempt.conv.send("QUIT\r\n")
                    attempt.sent = time.perf_counter()
                for attempt in attempts:
                    reply = attempt.conv.read()
                    samples.append(time.perf_counter() - attempt.sent)
                    self.assertEqual(
                        reply, f"+OK popgate signing off ({len(attempt.marked)} messages deleted)".encode())
                    attempt.conv.close()
                    attempt.maildrop.forget(attempt.marked)
                    attempt.maildrop.assert_intact(self, self.pg)
        finally:
            self.assertEqual(gateway.stop(), 0)
            shutil.rmtree(gateway.dir, ignore_errors=True)
        wait_until(lambda: self.live_locks(maildrops) == 0, "the calibration sessions' locks to go")
        return statistics.median(samples)

    def run_round(self, rng, maildrops, window_s):
        """One victim: sessions, then a timeline of QUITs and the kill.

        Each session either sends no QUIT (one in NO_QUIT_SHARE) or sends
        it a gap before the kill, the gap log-uniform between GAP_MIN_S and
        1.5 * window: as many kills land within tens of microseconds of a
        QUIT (before the UPDATE reaches PostgreSQL) as within milliseconds
        (while it runs, or after its reply)."""
        victim = Gateway(self.dsn, database__lock_lease_ms=LEASE_MS, log_level="warn")
        try:
            attempts = self.open_sessions(victim, rng, maildrops)
            gaps = [None if rng.random() < NO_QUIT_SHARE else
                    math.exp(rng.uniform(math.log(GAP_MIN_S), math.log(1.5 * window_s))) for _ in attempts]
            kill_at = max([g for g in gaps if g is not None], default=0.0)
            events = sorted(((kill_at - g, a) for g, a in zip(gaps, attempts) if g is not None),
                            key=lambda e: e[0])
            start = time.perf_counter()
            for offset, attempt in events:
                busy_wait_until(start + offset)
                attempt.conv.send("QUIT\r\n")
                attempt.quit_sent = True
                attempt.sent = time.perf_counter()
            busy_wait_until(start + kill_at)
            killing = time.perf_counter()
            os.kill(victim.proc.pid, signal.SIGKILL)
            killed_at_db = self.db_now()
            victim.kill()  # reaps it
            for attempt in attempts:
                attempt.killed_at_db = killed_at_db
                if attempt.quit_sent:
                    attempt.gap_s = killing - attempt.sent
                    attempt.conv.sock.settimeout(10)
                    try:
                        attempt.reply = attempt.conv.read() or None
                    except (ConnectionResetError, socket.timeout):
                        attempt.reply = None
                attempt.conv.close()
            return attempts
        finally:
            victim.kill()
            shutil.rmtree(victim.dir, ignore_errors=True)

    def verify(self, attempt):
        """The checks in the module docstring, for one killed session.
        Returns "committed", "rolled back" (QUIT sent, nothing deleted) or
        "no QUIT"."""
        m, seed = attempt.maildrop, self.seed
        # The lease: a lock left behind lapses within the lease of the kill.
        for (expires,) in self.pg.query(f"SELECT extract(epoch FROM l.lease_expires_at) {self.where_user(m)}"):
            self.assertLessEqual(float(expires), attempt.killed_at_db + (LEASE_MS + LEASE_SLACK_MS) / 1000,
                                 f"seed {seed}: the lock of {m.login} outlives the lease")
            wait = float(expires) - self.db_now()
            if wait > 0:  # the pool came round before the lease lapsed
                time.sleep(wait + 0.05)
        # All or nothing, and never an unmarked message.
        before = list(m.delivered)
        stored = [u for u, _ in m.stored(self.pg)]
        kept = [u for u in before if u not in attempt.marked]
        if stored == before:
            committed = False
        elif stored == kept:
            committed = True
        else:
            self.fail(f"seed {seed}: {m.login} lost a partial or unmarked set: "
                      f"before {before}, marked {sorted(attempt.marked)}, after {stored}")
        if not attempt.quit_sent:
            self.assertFalse(committed, f"seed {seed}: {m.login} lost mail without a QUIT")
        if attempt.reply is not None:
            self.assertTrue(attempt.reply.startswith(b"+OK"), f"seed {seed}: QUIT answered {attempt.reply!r}")
            self.assertTrue(committed, f"seed {seed}: QUIT answered {attempt.reply!r}, nothing deleted")
            self.assertEqual(attempt.reply,
                             f"+OK popgate signing off ({len(attempt.marked)} messages deleted)".encode())
        if committed:
            m.forget(attempt.marked)
        m.assert_intact(self, self.pg)
        # What a client sees: a new login succeeds at once (the lock is
        # free), and every message left is there, byte for byte.
        m.assert_served_intact(self, self.checker)
        if committed:
            return "committed"
        return "rolled back" if attempt.quit_sent else "no QUIT"

    def count(self, attempt, tally, by_gap):
        outcome = self.verify(attempt)
        tally[outcome] += 1
        if attempt.gap_s is not None:
            by_gap[next(b for b in GAP_BUCKETS_S if attempt.gap_s <= b)][outcome] += 1

    def test_sigkill_during_update_is_all_or_nothing(self):
        """See the module docstring: across ROUNDS kills, every killed
        session's UPDATE deleted all of its marked messages or none, never
        an unmarked one, nothing without a QUIT, and left no lock beyond
        the lease; an answered QUIT was really committed."""
        self.seed = int(os.environ.get("POPGATE_FAULTS_SEED", random.randrange(1 << 32)))
        print(f"\ncrash atomicity seed: {self.seed} (replay: POPGATE_FAULTS_SEED={self.seed})")
        rng = random.Random(self.seed)
        self.serial = 0
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=4) as pool:
            users = list(pool.map(lambda _: self.new_maildrop(), range(POOLS * USERS_PER_ROUND)))
        pools = [users[i * USERS_PER_ROUND:(i + 1) * USERS_PER_ROUND] for i in range(POOLS)]
        window_s = self.calibrate(rng, pools[0])
        print(f"an uninterrupted QUIT takes {window_s * 1000:.2f} ms (median): the timeline spans "
              f"{window_s * 1500:.2f} ms")
        outstanding = {}  # pool -> attempts not yet verified
        tally = {"committed": 0, "rolled back": 0, "no QUIT": 0, "answered +OK": 0}
        by_gap = {bound: {"committed": 0, "rolled back": 0} for bound in GAP_BUCKETS_S}
        for round_no in range(ROUNDS):
            p = round_no % POOLS
            for attempt in outstanding.pop(p, []):
                self.count(attempt, tally, by_gap)
            # The checker's sessions have ended: their locks go too.
            wait_until(lambda: self.live_locks(pools[p]) == 0, "the checker's locks to go")
            self.top_up(rng, pools[p])
            attempts = self.run_round(rng, pools[p], window_s)
            tally["answered +OK"] += sum(1 for a in attempts if a.reply is not None)
            outstanding[p] = attempts
        for p in sorted(outstanding):
            for attempt in outstanding.pop(p):
                self.count(attempt, tally, by_gap)
        print(f"{ROUNDS} kills, {ROUNDS * USERS_PER_ROUND} sessions, in {time.monotonic() - started:.1f} s: {tally}")
        print("QUIT-to-kill gap up to: " + ", ".join(
            f"{bound * 1000:g} ms {n['committed']}/{n['committed'] + n['rolled back']} committed"
            for bound, n in by_gap.items()))
        # Both outcomes happened, so the kills really fell on both sides of
        # the commit (otherwise this test would prove little).
        self.assertGreater(tally["committed"], 0, f"seed {self.seed}: no kill came after a commit")
        self.assertGreater(tally["rolled back"], 0, f"seed {self.seed}: no kill came between QUIT and commit")
        self.assertIsNone(self.checker.proc.poll(), "the checker gateway died")
        wait_until(lambda: self.live_locks(users) == 0, "every lock to go")


if __name__ == "__main__":
    unittest.main()
