"""Storage faults against the real binary and a real PostgreSQL of this
module's own (private_pg.PrivateCluster; the shared test database is never
stopped, paused or filled): PostgreSQL stopped, or crashed, under live
sessions and started again, PostgreSQL paused with SIGSTOP for 20 s under
sessions on every shard, and PostgreSQL out of connection slots. In each,
what needs the database fails with -ERR [SYS/TEMP], what does not keeps
being answered, nothing crashes, nothing is deleted by a failed UPDATE,
and service comes back by itself, without a restart; every gateway exits 0
on SIGINT at the end, having lived through the fault.

Time bounds here are generous upper bounds that prove "no stall" (an
answer in under a second while the database is away for many seconds),
never performance figures."""

import poplib
import secrets
import socket
import time
import unittest

from itest import Gateway, wait_until
from private_pg import LineClient, Maildrop, PgRefused, PrivateCluster, hold_pg_connection, shard_of_peers

BODY = b"Subject: storage fault\r\n\r\n.dot-stuffed line\r\nbody\r\n"
# An answer that needs no database must come within this, even while the
# database is away for far longer (a "no stall" bound, not a speed figure).
NO_STALL_S = 1.0


def login_and_retr(gateway, maildrop):
    """True when a fresh session logs in and RETR 1 returns the delivered
    bytes; False on a -ERR (the database is still away)."""
    try:
        client = poplib.POP3(gateway.host, gateway.port, timeout=30)
    except OSError:
        return False
    try:
        client.user(maildrop.login)
        client.pass_(maildrop.password)
        body = b"".join(line + b"\r\n" for line in client.retr(1)[1])
        client.quit()
        return body == next(iter(maildrop.delivered.values()))
    except poplib.error_proto:
        client.close()
        return False


def timed(fn, *args):
    start = time.monotonic()
    result = fn(*args)
    return result, time.monotonic() - start


def logged_in(gateway, maildrop):
    conv = LineClient.to(gateway)
    conv.cmd(f"USER {maildrop.login}")
    reply = conv.cmd(f"PASS {maildrop.password}")
    if not reply.startswith(b"+OK"):
        raise AssertionError(f"login of {maildrop.login} failed: {reply!r}")
    return conv


# One private cluster for the module (making one costs ~10 s); each test
# gets it running, with its own tenant, and puts back what it changed.
cluster = None


def setUpModule():
    global cluster
    cluster = PrivateCluster()


def tearDownModule():
    if cluster is not None:
        cluster.close()


class PrivateClusterTest(unittest.TestCase):
    """The module's private cluster, a tenant of the test's own; gateways
    (2 shards) that must exit 0 at the end."""

    def setUp(self):
        self.cluster = cluster
        self.cluster.ensure_running()
        self.domain = f"f{secrets.token_hex(4)}.test"
        self.cluster.admin("tenant", "add", self.domain)

    def maildrop(self, *bodies):
        return Maildrop(self.domain, bodies or (BODY,), database=self.cluster.dsn)

    def start_gateway(self, **settings):
        gateway = Gateway(self.cluster.dsn, shards=2, **settings)

        def stop():
            rc = gateway.stop()
            self.assertEqual(rc, 0, f"popgate exited {rc}:\n{gateway.log_text()[-4000:]}")
        self.addCleanup(stop)
        return gateway

    def ready(self, gateway):
        return gateway.http("/healthz/ready")


class StoppedDatabaseTest(PrivateClusterTest):

    def test_stop_and_start_postgresql_under_live_sessions(self):
        """PostgreSQL stopped (pg_ctl stop -m fast) under live sessions:
        RETR, new logins and QUIT's UPDATE get -ERR [SYS/TEMP] and delete
        nothing; NOOP/STAT/LIST from the snapshot and new greetings are
        still answered; readiness turns 503; the process stays up. After
        pg_ctl start, popgate reconnects by itself: the same session's RETR,
        a new login and RETR work again, without a restart."""
        self.outage(lambda: self.cluster.stop_server("fast"))

    def test_postgresql_crash_and_recovery_under_live_sessions(self):
        """The same with PostgreSQL crashed instead (SIGKILL of the
        postmaster and every backend: no goodbye on any connection) and
        started again through crash recovery. synchronous_commit is on for
        this test, so the crash loses no committed row (testpg.sh turns it
        off for speed)."""
        self.cluster.superuser_psql("ALTER SYSTEM SET synchronous_commit = on")
        self.cluster.superuser_psql("SELECT pg_reload_conf()")
        self.addCleanup(self.cluster.superuser_psql, "SELECT pg_reload_conf()")
        self.addCleanup(self.cluster.superuser_psql, "ALTER SYSTEM RESET synchronous_commit")
        self.outage(self.cluster.crash)

    def outage(self, take_down):
        """The checks of test_stop_and_start_postgresql_under_live_sessions,
        with `take_down` making PostgreSQL go away."""
        reader, quitter, fresh = self.maildrop(), self.maildrop(BODY, BODY), self.maildrop()
        lease_ms = 3000
        gateway = self.start_gateway(database__query_timeout_ms=1500, database__connect_timeout_ms=1000,
                                     database__lock_lease_ms=lease_ms)
        self.assertTrue(login_and_retr(gateway, fresh))
        a = logged_in(gateway, reader)
        b = logged_in(gateway, quitter)
        self.assertEqual(b.cmd("DELE 1"), b"+OK message 1 deleted")
        errors_before = gateway.metric("popgate_pg_errors_total", **{"class": "temporary"}) + \
            gateway.metric("popgate_pg_errors_total", **{"class": "connect"})

        take_down()

        # From the snapshot: no database needed, answered at once.
        reply, took = timed(a.cmd, "NOOP")
        self.assertEqual(reply, b"+OK")
        self.assertLess(took, NO_STALL_S)
        self.assertEqual(a.cmd("STAT"), f"+OK 1 {len(BODY)}".encode())
        self.assertTrue(a.cmd("LIST").startswith(b"+OK 1 messages"))
        a.multiline()
        # What needs it fails cleanly.
        self.assertEqual(a.cmd("RETR 1"), b"-ERR [SYS/TEMP] cannot read message; try again later")
        # QUIT's UPDATE cannot run: it says so, and deletes nothing.
        self.assertEqual(b.cmd("QUIT"), b"-ERR [SYS/TEMP] could not remove deleted messages; none were removed")
        self.assertEqual(b.read(), b"")
        b.close()
        # New connections are greeted; their logins fail cleanly.
        for _ in range(3):
            conv, took = timed(LineClient.to, gateway)
            self.assertTrue(conv.greeting.startswith(b"+OK"), conv.greeting)
            self.assertLess(took, NO_STALL_S)
            self.assertEqual(conv.cmd(f"USER {fresh.login}"), b"+OK send PASS")
            self.assertEqual(conv.cmd(f"PASS {fresh.password}"),
                             b"-ERR [SYS/TEMP] authentication temporarily unavailable")
            self.assertEqual(conv.cmd("QUIT"), b"+OK popgate signing off")
            conv.close()
        wait_until(lambda: self.ready(gateway)[0] == 503, "readiness to report the lost database", bound=30)
        self.assertIn("no PostgreSQL connection", self.ready(gateway)[1])
        self.assertGreater(gateway.metric("popgate_pg_errors_total", **{"class": "temporary"}) +
                           gateway.metric("popgate_pg_errors_total", **{"class": "connect"}), errors_before)
        self.assertIsNone(gateway.proc.poll(), "popgate died")

        self.cluster.start_server()

        # Recovery without a restart: new sessions, and the old session too.
        wait_until(lambda: login_and_retr(gateway, fresh), "a new login and RETR after the restart", bound=60)

        def retr_again():
            first, body = a.retr(1)
            return first.startswith(b"+OK") and body == BODY
        wait_until(retr_again, "RETR on the session that lived through the outage", bound=30)
        self.assertTrue(a.cmd("QUIT").startswith(b"+OK popgate signing off"))
        a.close()
        wait_until(lambda: self.ready(gateway)[0] == 200, "readiness after the restart", bound=30)
        self.assertGreater(gateway.metric("popgate_pg_reconnects_total"), 0)
        # The failed QUIT deleted nothing; its lock lapses within the lease.
        quitter.assert_intact(self)
        wait_until(lambda: login_and_retr(gateway, quitter), "the failed QUIT's lock to lapse",
                   bound=lease_ms / 1000 + 30)
        quitter.assert_intact(self)
        reader.assert_intact(self)


class PausedDatabaseEveryShardTest(PrivateClusterTest):
    """Extends test_robustness.PausedDatabaseTest (one session, one shard)
    to every shard and to requests left waiting on the paused server."""

    PAUSE_S = 20

    def session_on_each_shard(self, gateway, maildrops):
        """{shard: logged-in LineClient}, one per shard, using maildrops in
        order; extra connections are closed."""
        found, spare = {}, list(maildrops)
        for _ in range(64):
            if len(found) == 2:
                break
            conv = LineClient.to(gateway)
            peer = "127.0.0.1:%d" % conv.sock.getsockname()[1]
            wait_until(lambda: peer in shard_of_peers(gateway), "the connection_accepted line", bound=10)
            shard = shard_of_peers(gateway)[peer]
            if shard in found:
                conv.close()
                continue
            m = spare.pop(0)
            conv.cmd(f"USER {m.login}")
            self.assertTrue(conv.cmd(f"PASS {m.password}").startswith(b"+OK"))
            found[shard] = (conv, m)
        self.assertEqual(sorted(found), [0, 1], "could not place a session on every shard")
        return found

    def test_pause_for_20s_no_shard_stalls(self):
        """PostgreSQL SIGSTOPped for 20 s, with a RETR and a PASS waiting on
        it on every shard (query timeout longer than the pause, so they
        really wait): on every shard, logged-in sessions still answer NOOP
        and STAT, and new connections get their greeting and CAPA, each
        within 1 s, all through the pause. After SIGCONT the waiting RETRs
        and logins complete correctly, and new logins work."""
        gateway = self.start_gateway(log_level="debug", database__query_timeout_ms=60000)
        maildrops = [self.maildrop() for _ in range(6)]
        idle = self.session_on_each_shard(gateway, maildrops[0:2])
        waiting = self.session_on_each_shard(gateway, maildrops[2:4])
        logins = {}
        for shard, (conv, m) in self.session_on_each_shard(gateway, maildrops[4:6]).items():
            conv.cmd("QUIT")
            conv.close()
            logins[shard] = m

        paused = self.cluster.pause()
        self.assertGreater(len(paused), 1)
        started = time.monotonic()
        for conv, _ in waiting.values():
            conv.send("RETR 1\r\n")
        # A new login per shard, left waiting on the user lookup.
        pending_logins = {}
        for shard in (0, 1):
            while shard not in pending_logins:
                conv = LineClient.to(gateway)
                peer = "127.0.0.1:%d" % conv.sock.getsockname()[1]
                wait_until(lambda: peer in shard_of_peers(gateway), "the connection_accepted line", bound=10)
                if shard_of_peers(gateway)[peer] != shard:
                    conv.close()
                    continue
                m = logins[shard]
                self.assertEqual(conv.cmd(f"USER {m.login}"), b"+OK send PASS")
                conv.send(f"PASS {m.password}\r\n")
                pending_logins[shard] = (conv, m)

        worst, fresh_peers, rounds = 0.0, [], 0
        while time.monotonic() - started < self.PAUSE_S:
            rounds += 1
            for shard, (conv, m) in idle.items():
                reply, took = timed(conv.cmd, "NOOP")
                self.assertEqual(reply, b"+OK")
                worst = max(worst, took)
                reply, took = timed(conv.cmd, "STAT")
                self.assertEqual(reply, f"+OK 1 {len(BODY)}".encode())
                worst = max(worst, took)
            for _ in range(4):
                conv, took = timed(LineClient.to, gateway)
                self.assertTrue(conv.greeting.startswith(b"+OK"))
                worst = max(worst, took)
                fresh_peers.append("127.0.0.1:%d" % conv.sock.getsockname()[1])
                conv.send("CAPA\r\n")
                reply, took = timed(conv.multiline)
                self.assertIn(b"UIDL", reply)
                worst = max(worst, took)
                conv.close()
            # The waiting requests are still waiting: the database is the
            # only thing stopped.
            for conv, _ in list(waiting.values()) + list(pending_logins.values()):
                conv.sock.setblocking(False)
                try:
                    self.assertEqual(conv.sock.recv(1, socket.MSG_PEEK), b"", "answered while paused?")
                except BlockingIOError:
                    pass
                finally:
                    conv.sock.setblocking(True)
                    conv.sock.settimeout(60)
            time.sleep(0.5)
        self.assertLess(worst, NO_STALL_S, f"slowest answer {worst:.3f}s while PostgreSQL was paused")
        shards = shard_of_peers(gateway)
        served = {shards[p] for p in fresh_peers if p in shards}
        self.assertEqual(served, {0, 1}, "new connections reached every shard during the pause")
        print(f"\npaused {self.PAUSE_S}s: {rounds} rounds, slowest answer {worst * 1000:.1f} ms")

        self.cluster.resume()
        for conv, m in waiting.values():
            first = conv.read()
            self.assertEqual(first, f"+OK {len(BODY)} octets".encode())
            body = b"".join((l[1:] if l.startswith(b".") else l) + b"\r\n" for l in conv.multiline())
            self.assertEqual(body, BODY)
            self.assertTrue(conv.cmd("QUIT").startswith(b"+OK popgate signing off"))
            conv.close()
        for conv, m in pending_logins.values():
            self.assertTrue(conv.read().startswith(b"+OK maildrop has 1 messages"))
            self.assertTrue(conv.cmd("QUIT").startswith(b"+OK popgate signing off"))
            conv.close()
        for conv, _ in idle.values():
            self.assertTrue(conv.cmd("QUIT").startswith(b"+OK popgate signing off"))
            conv.close()
        self.assertTrue(login_and_retr(gateway, maildrops[0]))
        for m in maildrops:
            m.assert_intact(self)


class ConnectionLimitTest(PrivateClusterTest):

    def test_postgresql_out_of_connection_slots(self):
        """PostgreSQL with every ordinary connection slot taken (max_connections
        = 10, the rest filled with idle connections) while popgate's own
        connections are gone: logins get a clear -ERR [SYS/TEMP] on every
        shard, /healthz/ready answers 503 naming a shard without a
        PostgreSQL connection, greetings and CAPA still work, and the
        connection failures are counted. Once the idle connections close,
        popgate reconnects by itself: login and RETR work, ready is 200."""
        self.cluster.restart_with(max_connections=10)  # 7 ordinary slots, 3 for superusers
        self.addCleanup(self.cluster.restart_with, max_connections=None)
        self.cluster.superuser_psql("DROP ROLE IF EXISTS filler")
        self.cluster.superuser_psql("CREATE ROLE filler LOGIN")
        m = self.maildrop()
        gateway = self.start_gateway(database__connections_per_shard=1, database__query_timeout_ms=1500,
                                     database__connect_timeout_ms=1000)
        wait_until(lambda: self.ready(gateway)[0] == 200, "ready at first", bound=30)
        self.assertTrue(login_and_retr(gateway, m))

        # Take popgate's connections away, and keep it out while every
        # ordinary slot is filled: NOLOGIN stops its reconnects for a moment.
        self.cluster.superuser_psql("ALTER ROLE popgate NOLOGIN")
        self.cluster.superuser_psql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'popgate'")
        wait_until(lambda: gateway.metric("popgate_pg_connections_up") == 0, "popgate's connections gone",
                   bound=30)
        fillers, refusal = [], None
        try:
            while refusal is None and len(fillers) < 50:
                try:
                    fillers.append(hold_pg_connection(self.cluster.port, "filler", "popgate"))
                except PgRefused as e:
                    refusal = e
            self.assertIsNotNone(refusal)
            self.assertEqual(refusal.sqlstate, "53300", refusal.message)  # too_many_connections
            self.cluster.superuser_psql("ALTER ROLE popgate LOGIN")
            connect_failures = gateway.metric("popgate_pg_errors_total", **{"class": "connect"})
            # popgate now meets a full server at every reconnect.
            wait_until(lambda: gateway.metric("popgate_pg_errors_total", **{"class": "connect"}) >
                       connect_failures + 1, "reconnects refused by the full server", bound=30)
            status, text = self.ready(gateway)
            self.assertEqual(status, 503)
            self.assertRegex(text, r"not ready: shard \d has no PostgreSQL connection")
            self.assertEqual(gateway.metric("popgate_ready"), 0)
            for _ in range(4):  # several connections: both shards, most likely
                conv = LineClient.to(gateway)
                self.assertTrue(conv.greeting.startswith(b"+OK"))
                conv.send("CAPA\r\n")
                self.assertIn(b"UIDL", conv.multiline())
                self.assertEqual(conv.cmd(f"USER {m.login}"), b"+OK send PASS")
                self.assertEqual(conv.cmd(f"PASS {m.password}"),
                                 b"-ERR [SYS/TEMP] authentication temporarily unavailable")
                self.assertEqual(conv.cmd("QUIT"), b"+OK popgate signing off")
                conv.close()
            self.assertIsNone(gateway.proc.poll(), "popgate died")
            # The reason reaches the operator's log.
            self.assertRegex(gateway.log_text(), r"too many clients|reserved for .*superuser")
        finally:
            for s in fillers:
                s.close()
            self.cluster.superuser_psql("ALTER ROLE popgate LOGIN")

        wait_until(lambda: login_and_retr(gateway, m), "login and RETR once slots are free", bound=60)
        wait_until(lambda: self.ready(gateway)[0] == 200, "ready once slots are free", bound=30)
        m.assert_intact(self)


if __name__ == "__main__":
    unittest.main()
