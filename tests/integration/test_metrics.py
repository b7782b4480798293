"""The operator's HTTP port on the real binary: a real Prometheus server
scrapes /metrics and a PromQL query sees exactly what a scripted session
did; promtool accepts a real scrape; /healthz/live and /healthz/ready; the
runtime log level; sessions by state; tenant labels stay within their cap
and never name a user."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

from itest import Conversation, Gateway, deliver, dsn, new_tenant, new_user, wait_until
from popgate_testlib import free_port

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MESSAGE = b"Subject: metrics\r\n\r\nline one\r\nline two\r\n"


class Prometheus:
    """A real Prometheus server on loopback, scraping `target` every second."""

    def __init__(self, target):
        self.dir = tempfile.mkdtemp(prefix="popgate-prom-")
        self.port = free_port()
        config = os.path.join(self.dir, "prometheus.yml")
        with open(config, "w") as f:
            f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                    "scrape_configs:\n  - job_name: popgate\n    static_configs:\n"
                    f"      - targets: ['{target}']\n")
        self.log = open(os.path.join(self.dir, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, "Prometheus to be ready")

    def _ready(self):
        if self.proc.poll() is not None:
            raise AssertionError("prometheus exited: " + open(self.log.name).read()[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/-/ready", timeout=2) as r:
                return r.status == 200
        except OSError:
            return False

    def query(self, promql):
        """The single value of an instant query, or None when it is empty."""
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.load(r)
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def status_address(gateway):
    return gateway.status_url[len("http://"):]


class PrometheusScrapeTest(unittest.TestCase):

    @unittest.skipIf(PROMETHEUS is None, "the prometheus server is not installed (apt-get install prometheus)")
    def test_promql_sees_what_a_scripted_session_did(self):
        domain = new_tenant()
        login, password = new_user(domain)
        deliver(login, MESSAGE)
        deliver(login, MESSAGE)
        gateway = Gateway(dsn())
        prometheus = Prometheus(status_address(gateway))
        try:
            # One failed login, then a session that lists, reads and quits.
            bad = Conversation(gateway)
            bad.command(f"USER {login}")
            self.assertTrue(bad.command("PASS wrong").startswith(b"-ERR [AUTH]"))
            bad.command("QUIT")
            bad.close()
            c = Conversation(gateway)
            c.command(f"USER {login}")
            self.assertTrue(c.command(f"PASS {password}").startswith(b"+OK"))
            self.assertTrue(c.command("LIST").startswith(b"+OK"))
            c.multiline()
            self.assertTrue(c.command("UIDL").startswith(b"+OK"))
            c.multiline()
            self.assertTrue(c.command("RETR 1").startswith(b"+OK"))
            c.multiline()
            self.assertTrue(c.command("TOP 2 0").startswith(b"+OK"))
            c.multiline()
            self.assertTrue(c.command("RETR 9").startswith(b"-ERR"))
            self.assertTrue(c.command("QUIT").startswith(b"+OK"))
            c.close()

            expected = {
                'sum(popgate_commands_total{command="RETR",result="ok"})': 1,
                'sum(popgate_commands_total{command="RETR",result="err"})': 1,
                'sum(popgate_commands_total{command="PASS",result="err"})': 1,
                'sum(popgate_auth_total{mechanism="USER",outcome="success"})': 1,
                'sum(popgate_auth_total{outcome="bad_credentials"})': 1,
                'popgate_command_duration_seconds_count{command="RETR"}': 1,
                'popgate_command_duration_seconds_count{command="UIDL"}': 1,
                'popgate_command_duration_seconds_count{command="LIST"}': 1,
                'popgate_command_duration_seconds_count{command="TOP"}': 1,
                'popgate_login_duration_seconds_count': 1,
                'popgate_maildrop_messages_sum': 2,
                'popgate_retr_bytes_total': len(MESSAGE),
                'popgate_update_commits_total': 1,
                f'popgate_tenant_logins_total{{tenant="{domain}",result="ok"}}': 1,
                f'popgate_tenant_logins_total{{tenant="{domain}",result="failed"}}': 1,
                'sum(popgate_connections_accepted_total{listener="pop3"})': 2,
                'sum(popgate_sessions_ended_total{reason="quit"})': 2,
                'count(popgate_pg_request_duration_seconds_count{kind="open_maildrop"} == 1)': 1,
                'popgate_maildrop_lock_wait_seconds_count': 1,
            }

            def all_seen():
                return all(prometheus.query(q) == v for q, v in expected.items())
            try:
                wait_until(all_seen, "Prometheus to scrape the session's counts")
            except AssertionError:
                seen = {q: prometheus.query(q) for q in expected}
                raise AssertionError(f"expected {expected}, Prometheus has {seen}") from None
            # The scrape target itself is healthy from Prometheus' side.
            self.assertEqual(prometheus.query('up{job="popgate"}'), 1)
        finally:
            prometheus.close()
            gateway.stop()


class StatusPortTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.domain = new_tenant()
        cls.login, cls.password = new_user(cls.domain)
        deliver(cls.login, MESSAGE)
        cls.gateway = Gateway(dsn(), log_level="info")

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()

    @unittest.skipIf(PROMTOOL is None, "promtool is not installed (apt-get install prometheus)")
    def test_promtool_accepts_a_real_scrape(self):
        c = Conversation(self.gateway)
        c.command(f"USER {self.login}")
        c.command(f"PASS {self.password}")
        c.command("QUIT")
        c.close()
        text = self.gateway.metrics_text()
        run = subprocess.run([PROMTOOL, "check", "metrics"], input=text.encode(), capture_output=True,
                             timeout=60)
        self.assertEqual(run.returncode, 0, run.stdout.decode() + run.stderr.decode())
        # The families the operator's dashboards are built on are there.
        for family in ("popgate_build_info", "popgate_connections_active", "popgate_connections",
                       "popgate_commands_total", "popgate_command_duration_seconds",
                       "popgate_bytes_sent_total", "popgate_auth_total", "popgate_tls_handshakes_total",
                       "popgate_proxy_header_errors_total", "popgate_maildrop_in_use_total",
                       "popgate_maildrop_lock_wait_seconds", "popgate_maildrop_snapshot_seconds",
                       "popgate_maildrop_bytes", "popgate_pg_request_duration_seconds",
                       "popgate_pg_connections_up", "popgate_pg_errors_total", "popgate_limit_hits_total",
                       "popgate_loop_completions_per_wakeup", "popgate_ring_submit_batch",
                       "popgate_tenant_logins_total"):
            self.assertIn(f"# TYPE {family} ", text)
        # Never a label per user.
        self.assertNotIn(self.login, text)

    def test_health_endpoints(self):
        self.assertEqual(self.gateway.http("/healthz/live"), (200, "live\n"))
        # Ready once every shard has a PostgreSQL connection (a moment
        # after the listeners are up).
        wait_until(lambda: self.gateway.http("/healthz/ready") == (200, "ready\n"), "readiness")
        self.assertEqual(self.gateway.metric("popgate_ready"), 1)
        self.assertEqual(self.gateway.http("/nope")[0], 404)

    def test_log_level_changes_at_runtime(self):
        self.assertEqual(self.gateway.http("/log/level"), (200, "info\n"))
        self.assertEqual(self.gateway.http("/log/level", "PUT", "loud")[0], 400)
        self.assertEqual(self.gateway.http("/log/level", "PUT", "debug\n"), (200, "debug\n"))
        try:
            self.assertEqual(self.gateway.http("/log/level"), (200, "debug\n"))
            c = Conversation(self.gateway)
            c.command("QUIT")
            c.close()
            wait_until(lambda: any(l.get("level") == "debug" for l in self.gateway.log_lines()),
                       "a debug line in the log")
            changed = [l for l in self.gateway.log_lines() if l.get("msg") == "log_level_changed"]
            self.assertEqual(changed[-1]["to"], "debug")
        finally:
            self.assertEqual(self.gateway.http("/log/level", "PUT", "info"), (200, "info\n"))

    def test_sessions_by_state(self):
        c = Conversation(self.gateway)
        c.command(f"USER {self.login}")
        c.command(f"PASS {self.password}")
        try:
            wait_until(lambda: self.gateway.metric("popgate_connections", state="transaction") == 1,
                       "the session to show as transaction")
            self.assertEqual(self.gateway.metric("popgate_tenant_sessions", tenant=self.domain), 1)
        finally:
            c.command("QUIT")
            c.close()
        wait_until(lambda: self.gateway.metric("popgate_connections", state="transaction") == 0,
                   "the session to be gone")
        wait_until(lambda: self.gateway.metric("popgate_tenant_sessions", tenant=self.domain) == 0,
                   "the tenant's session gauge to drop")


class TenantLabelCapTest(unittest.TestCase):

    def test_tenants_beyond_the_cap_are_other(self):
        gateway = Gateway(dsn(), metrics__tenant_labels_max=1)
        try:
            users = []
            for _ in range(3):
                domain = new_tenant()
                users.append((domain,) + new_user(domain))
            for _, login, password in users:
                c = Conversation(gateway)
                c.command(f"USER {login}")
                self.assertTrue(c.command(f"PASS {password}").startswith(b"+OK"))
                c.command("QUIT")
                c.close()
            series = {labels: v for (name, labels), v in gateway.metrics().items()
                      if name == "popgate_tenant_logins_total" and ("result", "ok") in labels}
            tenants = {dict(labels)["tenant"]: v for labels, v in series.items()}
            self.assertEqual(len(tenants), 2, tenants)  # one named tenant, and "other"
            self.assertIn("other", tenants)
            self.assertEqual(sum(tenants.values()), 3)
            named = [t for t in tenants if t != "other"]
            self.assertIn(named[0], [u[0] for u in users])
        finally:
            gateway.stop()


if __name__ == "__main__":
    unittest.main()
