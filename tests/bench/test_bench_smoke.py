"""CI smoke test of the benchmark suite: popgate-bench runs every scenario
briefly against a real popgate and the test PostgreSQL, and every reply it
got verified. No timing is asserted: only that the generator ran its
scenarios (exit code 0, the JSON fields say so), and that a server whose
replies are wrong gets errors, a failing exit status and no clean report.

The dataset is the smallest one (bench/common/dataset.h, "smoke"), loaded
the way bench/compare.py does it: users with popgate-admin user add,
messages with popgate-admin import from Maildirs when it exists, else with
popgate-bench-data's SQL.
"""

import json
import os
import shutil
import socketserver
import subprocess
import tempfile
import threading
import unittest

from popgate_server import Gateway
from popgate_testlib import admin, admin_bin, dsn

BENCH_PASSWORD = "bench-Passw0rd"  # bench/common/dataset.h kBenchPassword
# Bounds: one scenario run, and the whole dataset load.
RUN_TIMEOUT_S = 60
LOAD_TIMEOUT_S = 120
# A scenario's measuring window: long enough for several sessions.
WINDOW_S = "1"


def binary(env):
    path = os.environ.get(env)
    if not path:
        raise unittest.SkipTest(f"{env} is not set (run through ctest)")
    return path


class BenchSmoke(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dsn = dsn()
        cls.bench = binary("POPGATE_BENCH_BIN")
        cls.data = binary("POPGATE_BENCH_DATA_BIN")
        cert_dir = binary("POPGATE_TEST_CERT_DIR")
        cls.tmp = tempfile.mkdtemp(prefix="popgate-bench-smoke-")
        cls.load_dataset()
        cert = os.path.join(cert_dir, "pop-ecdsa.crt")
        key = os.path.join(cert_dir, "pop-ecdsa.key")
        cls.gateway = Gateway(cls.dsn, listeners=[
            "name=pop3,address=127.0.0.1:0",
            "name=pop3s,address=127.0.0.1:0,tls=implicit",
        ], tls__certificates=f"{cert}:{key}", limits__connections_per_address_max=100000,
            limits__sessions_per_tenant_max=100000000, limits__logins_per_tenant_per_minute=100000000)

    @classmethod
    def tearDownClass(cls):
        gateway = getattr(cls, "gateway", None)
        try:
            if gateway is not None:
                rc = gateway.stop()
                if rc != 0:
                    raise AssertionError(f"popgate exited {rc}:\n{gateway.log_text()}")
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def load_dataset(cls):
        users = subprocess.run([cls.data, "users", "--dataset", "smoke"], check=True,
                               capture_output=True, text=True, timeout=LOAD_TIMEOUT_S).stdout.split()
        # The smoke dataset has a fixed domain: tolerate a database that has
        # it already (the load skips what is there).
        admin("tenant", "add", "bench.test", check=False)
        for login in users:
            admin("user", "add", login, "--password", BENCH_PASSWORD, check=False)
        maildirs = os.path.join(cls.tmp, "maildirs")
        subprocess.run([cls.data, "maildir", "--dataset", "smoke", "--out", maildirs], check=True,
                       capture_output=True, timeout=LOAD_TIMEOUT_S)
        help_text = subprocess.run([admin_bin(), "import", "--help"], capture_output=True, text=True,
                                   timeout=LOAD_TIMEOUT_S)
        if help_text.returncode == 0 and "--maildir" in help_text.stdout:
            for login in users:
                admin("import", login, "--maildir", os.path.join(maildirs, login, "Maildir"))
        else:
            # Cross-tenant, as popgate-admin is (schema v6 row-level security).
            env = dict(os.environ, PGOPTIONS="-c popgate.all_tenants=on")
            subprocess.run([cls.data, "load", "--dataset", "smoke", "--dsn", cls.dsn], check=True,
                           capture_output=True, timeout=LOAD_TIMEOUT_S, env=env)

    def run_bench(self, *args):
        cmd = [self.bench, "--dataset", "smoke", "--target", "popgate", "--quiet",
               "--port", str(self.gateway.port_of("pop3")),
               "--tls-port", str(self.gateway.port_of("pop3s")),
               "--server-pid", str(self.gateway.proc.pid), "--duration-s", WINDOW_S, *args]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertTrue(lines, f"no JSON line from {' '.join(cmd)}\n{r.stdout}\n{r.stderr}")
        report = json.loads(lines[-1])
        self.assertEqual(r.returncode, 0,
                         f"{' '.join(cmd)} failed: errors {report['errors']}\n{r.stderr}")
        self.assertTrue(report["ok"])
        self.assertEqual(report["errors"]["total"], 0)
        self.assertGreater(report["verified"]["replies"], 0)
        self.assertIn("server", report["cpu_s"])
        return report

    def test_login(self):
        report = self.run_bench("--scenario", "login", "--connections", "4")
        self.assertGreater(report["sessions"], 0)
        self.assertIn("p99", report["latency_us"]["session"])

    def test_login_tls_with_resumption(self):
        report = self.run_bench("--scenario", "login_tls", "--tls-resume", "--connections", "2")
        self.assertGreater(report["tls_stats"]["handshakes"], 0)

    def test_poll(self):
        report = self.run_bench("--scenario", "poll", "--connections", "4")
        self.assertGreater(report["verified"]["retr"], 0)

    def test_list(self):
        report = self.run_bench("--scenario", "list", "--connections", "1")
        self.assertGreater(report["verified"]["listings"], 0)

    def test_list_once_reports_memory(self):
        report = self.run_bench("--scenario", "list", "--group", "listhuge", "--once",
                                "--connections", "1")
        self.assertEqual(report["sessions_held"], 1)
        self.assertTrue(any(m["label"] == "held" for m in report["memory"]))

    def test_retr_small(self):
        report = self.run_bench("--scenario", "retr_small", "--connections", "2")
        self.assertGreater(report["verified"]["retr"], 0)
        self.assertGreater(report["message_bytes"], 0)

    def test_retr_big_with_a_stalled_reader(self):
        report = self.run_bench("--scenario", "retr_big", "--connections", "1", "--sample-memory",
                                "--stall-after-bytes", "65536", "--stall-ms", "200")
        self.assertGreater(report["verified"]["retr"], 0)

    def test_idle(self):
        report = self.run_bench("--scenario", "idle", "--idle-steps", "4,8")
        self.assertEqual(report["sessions_held"], 8)
        self.assertEqual(len([m for m in report["memory"] if m["label"] == "step"]), 2)


    def test_idle_generators_on_disjoint_users(self):
        """Several generator processes (one process's descriptors do not
        reach 50,000 sessions) hold their sessions at once on disjoint
        maildrops: had they shared a user, one would get [IN-USE]."""
        base = [self.bench, "--dataset", "smoke", "--target", "popgate", "--quiet",
                "--port", str(self.gateway.port_of("pop3")), "--tls-port", str(self.gateway.port_of("pop3s")),
                "--duration-s", WINDOW_S, "--scenario", "idle", "--idle-steps", "8", "--idle-hold-s", "1"]
        procs = [subprocess.Popen(base + ["--first-user", str(first)], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True) for first in (0, 8)]
        for p in procs:
            out, err = p.communicate(timeout=RUN_TIMEOUT_S)
            report = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
            self.assertEqual(p.returncode, 0, f"errors {report['errors']}\n{err}")
            self.assertEqual(report["sessions_held"], 8)
            self.assertEqual(report["errors"]["total"], 0)
        # Past the end of the group: refused before connecting.
        r = subprocess.run(base + ["--first-user", "12"], capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        self.assertEqual(r.returncode, 2)
        self.assertIn("need as many users", r.stderr)


class WrongPop3(socketserver.StreamRequestHandler):
    """Answers every command with a bare +OK: a fast but wrong server (its
    STAT says nothing about the maildrop)."""

    def handle(self):
        self.wfile.write(b"+OK wrong\r\n")
        for line in self.rfile:
            self.wfile.write(b"+OK\r\n")
            if line.upper().startswith(b"QUIT"):
                return


class WrongServerIsCaught(unittest.TestCase):
    def test_wrong_replies_are_errors(self):
        bench = binary("POPGATE_BENCH_BIN")
        server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), WrongPop3)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            port = server.server_address[1]
            r = subprocess.run([bench, "--dataset", "smoke", "--target", "wrong", "--quiet",
                                "--scenario", "login", "--connections", "2", "--port", str(port),
                                "--tls-port", str(port), "--duration-s", WINDOW_S],
                               capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
        finally:
            server.shutdown()
            server.server_close()
        lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
        self.assertTrue(lines, r.stdout + r.stderr)
        report = json.loads(lines[-1])
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertFalse(report["ok"])
        self.assertGreater(report["errors"]["verify"], 0)
        self.assertEqual(report["errors"]["total"], sum(
            v for k, v in report["errors"].items() if k not in ("total", "samples")))
        self.assertTrue(any("STAT" in sample for sample in report["errors"]["samples"]))


if __name__ == "__main__":
    unittest.main()
