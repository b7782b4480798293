"""The deployment of deploy/ on loopback: a real HAProxy running
deploy/haproxy/haproxy.cfg (TCP mode, send-proxy-v2, HTTP checks of
/healthz/ready) in front of two popgate processes running
deploy/compose/popgate.toml on one PostgreSQL, and a real Prometheus running
deploy/prometheus/prometheus.yml with the alert rules of
deploy/prometheus/alerts.yml. Only addresses, ports, paths, certificates and
a few durations differ from the files an operator deploys (see
`derive_*`). It proves, through HAProxy:

- logins land on both instances, and their session_end lines carry the
  original client address (from PROXY v2), not HAProxy's, also for POP3S
  passed through to popgate's TLS; the image's health check script
  (deploy/docker/popgate-healthcheck) passes; every query of the Grafana
  dashboard is valid PromQL and the fleet panels count both gateways;
- SIGKILL of one instance mid-session: its client is disconnected, the
  maildrop lock lapses within the lease and the survivor opens the maildrop,
  nothing is lost (the dead session's DELE never happened), HAProxy marks
  the dead instance DOWN and new sessions go to the survivor; Prometheus
  reports up == 0 for it and fires PopgateInstanceDown for it alone;
- SIGTERM of the survivor: HAProxy marks it DOWN (readiness 503), the
  image's health check script still says live but not ready, a RETR under
  way when the drain deadline passes is delivered whole before the -ERR, no
  lock is left, Prometheus saw the drain and then fires PopgateInstanceDown
  for both and PopgateNoInstanceReady.

The phases run in order (test_1 ... test_3) on one shared topology."""

import json
import os
import poplib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from itest import (Conversation, Gateway, crlf, deliver, dsn, lock_count, messages_of, new_tenant, new_user,
                   psql, sha256, unstuff, wait_until)
from popgate_testlib import free_port
from test_metrics import Prometheus

try:
    import yaml
except ImportError:  # python3-yaml (ops/packages.txt)
    yaml = None

REPO = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
PROMETHEUS = shutil.which("prometheus")

# Shortened for the test; the deployed values are in the deploy/ files.
LEASE_MS = 5000        # database.lock_lease_ms (deployed: 30000)
DRAIN_MS = 2000        # server.drain_timeout_ms (deployed: 30000)
ALERT_FOR = "2s"       # `for:` of the two alerts the test waits for (deployed: 1m)
# "No stall" bound on the lock of a killed instance lapsing: the lease plus
# generous slack for a loaded machine. Not a performance figure.
LAPSE_BOUND_S = LEASE_MS / 1000 + 30
GATEWAYS = ("popgate1", "popgate2")
# The image's HEALTHCHECK command (bash /dev/tcp, no curl in the image).
HEALTHCHECK = os.path.join(DEPLOY, "docker", "popgate-healthcheck")


def substitute(text, pattern, replacement, what):
    """re.sub that insists on matching: the deploy file changed shape otherwise."""
    out, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    if count == 0:
        raise AssertionError(f"deploy file no longer has {what} ({pattern!r})")
    return out


def derive_popgate_config(path):
    """deploy/compose/popgate.toml with loopback addresses, HAProxy on
    127.0.0.1 as the trusted proxy, the test certificates, and cleartext
    logins allowed (poplib logs in with USER/PASS over plain TCP)."""
    with open(os.path.join(DEPLOY, "compose", "popgate.toml")) as f:
        text = f.read()
    text = substitute(text, r'^address = "0\.0\.0\.0:\d+"', 'address = "127.0.0.1:0"', "listener addresses")
    text = substitute(text, r'^trusted_proxies = "[^"]*"', 'trusted_proxies = "127.0.0.1"', "trusted_proxies")
    text = substitute(text, r'^allow_cleartext_login = false', 'allow_cleartext_login = true', "cleartext logins")
    text = substitute(text, r'^certificates = "[^"]*"',
                      f'certificates = "{CERTS}/pop-ecdsa.crt:{CERTS}/pop-ecdsa.key"', "tls.certificates")
    with open(path, "w") as f:
        f.write(text)


def derive_haproxy_config(path, gateways, ports, socket_path):
    """deploy/haproxy/haproxy.cfg with loopback binds, the two gateways'
    real ports and a stats socket in the work directory."""
    with open(os.path.join(DEPLOY, "haproxy", "haproxy.cfg")) as f:
        text = f.read()
    text = substitute(text, r"stats socket \S+", f"stats socket {socket_path}", "the stats socket")
    # Within this machine's RLIMIT_NOFILE (HAProxy needs about 2 per connection).
    text = substitute(text, r"^(\s*)maxconn \d+$", r"\1maxconn 4000", "global maxconn")
    for public, port in (("110", ports["pop3"]), ("995", ports["pop3s"]), ("8404", ports["stats"])):
        text = substitute(text, rf"^(\s*)bind :{public}$", rf"\1bind 127.0.0.1:{port}", f"bind :{public}")
    for name, gateway in gateways.items():
        status_port = gateway.status_url.rsplit(":", 1)[1]
        for backend_port, listener in (("2110", "pop3-lb"), ("2995", "pop3s-lb")):
            text = substitute(
                text, rf"^(\s*server {name}) {name}:{backend_port} (.*) port 9110$",
                rf"\1 127.0.0.1:{gateway.port_of(listener)} \2 port {status_port}",
                f"server {name} on {backend_port}")
    with open(path, "w") as f:
        f.write(text)


def derive_prometheus_config(directory, gateways, haproxy_stats_port, own_port):
    """deploy/prometheus/prometheus.yml scraping the loopback gateways and
    HAProxy every second, with alerts.yml whose instance-down alerts wait
    ALERT_FOR instead of a minute. Returns the config path."""
    with open(os.path.join(DEPLOY, "prometheus", "prometheus.yml")) as f:
        config = yaml.safe_load(f)
    with open(os.path.join(DEPLOY, "prometheus", "alerts.yml")) as f:
        rules = yaml.safe_load(f)
    config["global"].update({"scrape_interval": "1s", "evaluation_interval": "1s"})
    config["rule_files"] = ["alerts.yml"]
    targets = {"popgate": [g.status_url[len("http://"):] for g in gateways.values()],
               "haproxy": [f"127.0.0.1:{haproxy_stats_port}"],
               "prometheus": [f"127.0.0.1:{own_port}"]}
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets), f"scrape jobs changed: {sorted(jobs)}"
    for name, job in jobs.items():
        job["static_configs"] = [{"targets": targets[name]}]
    shortened = 0
    for group in rules["groups"]:
        for rule in group["rules"]:
            if rule.get("alert") in ("PopgateInstanceDown", "PopgateNoInstanceReady"):
                rule["for"] = ALERT_FOR
                shortened += 1
    assert shortened == 2, "the alerts PopgateInstanceDown and PopgateNoInstanceReady are gone"
    with open(os.path.join(directory, "alerts.yml"), "w") as f:
        yaml.safe_dump(rules, f, sort_keys=False)
    path = os.path.join(directory, "prometheus.yml")
    with open(path, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path


class DeployPrometheus(Prometheus):
    """test_metrics.Prometheus, started on a given config file and port."""

    def __init__(self, directory, port, config):  # noqa: super().__init__ writes its own config
        self.dir = directory
        self.port = port
        self.log = open(os.path.join(directory, "prometheus.log"), "w")
        self.proc = subprocess.Popen(
            [PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={directory}/data",
             f"--web.listen-address=127.0.0.1:{port}"],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_until(self._ready, "Prometheus to be ready")

    def api(self, path, **params):
        url = f"http://127.0.0.1:{self.port}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        with urllib.request.urlopen(url, timeout=10) as r:
            return json.load(r)["data"]

    def values(self, promql):
        """{instance: value} of an instant query."""
        return {s["metric"].get("instance", ""): float(s["value"][1])
                for s in self.api("/api/v1/query", query=promql)["result"]}

    def firing(self, alertname):
        """Instances (or "" for fleet-wide alerts) the alert fires for."""
        return {a["labels"].get("instance", "") for a in self.api("/api/v1/alerts")["alerts"]
                if a["labels"]["alertname"] == alertname and a["state"] == "firing"}


class SourcePOP3(poplib.POP3):
    """poplib from a chosen loopback source address, so the address the
    gateway logs can only have come through the PROXY header."""

    def __init__(self, host, port, source, timeout=30):
        self.source = source
        super().__init__(host, port, timeout=timeout)

    def _create_socket(self, timeout):
        return socket.create_connection((self.host, self.port), timeout, source_address=(self.source, 0))

    def client_address(self):
        host, port = self.sock.getsockname()[:2]
        return f"{host}:{port}"


@unittest.skipIf(yaml is None, "python3-yaml is not installed (ops/packages.txt lists it)")
@unittest.skipIf(PROMETHEUS is None, "the prometheus server is not installed (ops/packages.txt lists it)")
@unittest.skipIf(not os.path.exists(HAPROXY), "haproxy is not installed (ops/packages.txt lists it)")
@unittest.skipIf(not CERTS, "POPGATE_TEST_CERT_DIR is not set (run through ctest)")
class DeploymentTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="popgate-deploy-")
        cls.domain = new_tenant()
        cls.users = [new_user(cls.domain) for _ in range(6)]
        for login, _ in cls.users:
            deliver(login, b"Subject: spread\r\n\r\nhello\r\n")
        config = os.path.join(cls.work, "popgate.toml")
        derive_popgate_config(config)
        cls.gateways = {}
        cls.haproxy = cls.prometheus = None
        try:
            for name in GATEWAYS:
                cls.gateways[name] = Gateway(
                    dsn(), config_file=config, log_level=None, server__instance_name=name,
                    database__lock_lease_ms=LEASE_MS, server__drain_timeout_ms=DRAIN_MS)
            cls.ports = {"pop3": free_port(), "pop3s": free_port(), "stats": free_port()}
            cls.stats_socket = os.path.join(cls.work, "haproxy.sock")
            haproxy_cfg = os.path.join(cls.work, "haproxy.cfg")
            derive_haproxy_config(haproxy_cfg, cls.gateways, cls.ports, cls.stats_socket)
            cls.haproxy_log = open(os.path.join(cls.work, "haproxy.log"), "w")
            cls.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", haproxy_cfg], stdout=cls.haproxy_log,
                                           stderr=subprocess.STDOUT)
            prometheus_port = free_port()
            prometheus_dir = os.path.join(cls.work, "prometheus")
            os.mkdir(prometheus_dir)
            prometheus_cfg = derive_prometheus_config(prometheus_dir, cls.gateways, cls.ports["stats"],
                                                      prometheus_port)
            cls.prometheus = DeployPrometheus(prometheus_dir, prometheus_port, prometheus_cfg)
            try:
                wait_until(lambda: cls.checked_up("popgate_pop3") == set(GATEWAYS), "HAProxy to check both gateways UP")
            except AssertionError:
                raise AssertionError(f"HAProxy sees {cls.server_status('popgate_pop3')}; its log:\n"
                                     f"{cls.haproxy_log_text()}") from None
        except BaseException:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.prometheus is not None:
            cls.prometheus.close()
        if cls.haproxy is not None:
            cls.haproxy.terminate()
            cls.haproxy.wait(timeout=30)
            cls.haproxy_log.close()
        for gateway in cls.gateways.values():
            gateway.kill()
        shutil.rmtree(cls.work, ignore_errors=True)

    # -- helpers ---------------------------------------------------------

    @classmethod
    def server_status(cls, backend, with_check=False):
        """{server: status} of a backend, from `show stat` on the stats socket
        (with_check: {server: (status, check_status)})."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            try:
                s.connect(cls.stats_socket)
            except OSError:
                return {}
            s.sendall(b"show stat\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        lines = data.decode().splitlines()
        if not lines or not lines[0].startswith("# "):
            return {}
        header = lines[0][2:].split(",")
        rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line]
        return {r["svname"]: (r["status"].split()[0], r["check_status"]) if with_check else r["status"].split()[0]
                for r in rows if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")}

    @classmethod
    def checked_up(cls, backend):
        """Servers of a backend that are UP after a passing health check."""
        if cls.haproxy.poll() is not None:
            raise AssertionError(f"haproxy exited with {cls.haproxy.returncode}:\n{cls.haproxy_log_text()}")
        return {name for name, (status, check) in cls.server_status(backend, with_check=True).items()
                if status == "UP" and check == "L7OK"}

    @classmethod
    def haproxy_log_text(cls):
        cls.haproxy_log.flush()
        with open(cls.haproxy_log.name) as f:
            return f.read()[-3000:]

    def down_in_haproxy(self, name):
        return all(self.server_status(b).get(name) == "DOWN" for b in ("popgate_pop3", "popgate_pop3s"))

    def login(self, login, password, source="127.0.0.2"):
        client = SourcePOP3("127.0.0.1", self.ports["pop3"], source)
        client.user(login)
        client.pass_(password)
        return client

    def status_instance(self, name):
        return self.gateways[name].status_url[len("http://"):]

    def healthcheck(self, name, path):
        """Exit status of the image's health check script against a gateway."""
        env = dict(os.environ, POPGATE_HEALTHCHECK_ADDRESS=self.status_instance(name))
        return subprocess.run(["bash", HEALTHCHECK, path], env=env, timeout=30).returncode

    def ended_peers(self, name):
        return [l.get("peer") for l in self.gateways[name].log_lines() if l.get("msg") == "session_end"]

    def holder_of(self, login):
        local = login.split("@")[0]
        return psql("SELECT l.holder_instance FROM popgate.maildrop_locks l JOIN popgate.users u "
                    "USING (tenant_id, user_id) JOIN popgate.tenants t USING (tenant_id) "
                    f"WHERE t.domain = '{self.domain}' AND u.local_part = '{local}'")

    # -- the phases, in order ---------------------------------------------

    def test_1_logins_land_on_both_instances_with_the_client_address(self):
        clients = [self.login(login, password) for login, password in self.users]
        addresses = [c.client_address() for c in clients]

        def spread():
            return {n: g.metric("popgate_connections", state="transaction") for n, g in self.gateways.items()}
        wait_until(lambda: sum(spread().values()) == len(clients), "every session to show as logged in")
        self.assertTrue(all(v >= 1 for v in spread().values()), f"leastconn left an instance out: {spread()}")
        for c in clients:
            self.assertEqual(c.stat()[0], 1)
            c.quit()

        def logged():
            return all(any(a in self.ended_peers(n) for n in GATEWAYS) for a in addresses)
        wait_until(logged, "a session_end line with each client's own address")
        for name in GATEWAYS:
            peers = self.ended_peers(name)
            self.assertTrue(peers, f"no session ended on {name}")
            self.assertTrue(all(p.startswith("127.0.0.2:") for p in peers), peers)
        # Each session ended on exactly one instance.
        self.assertEqual(sorted(p for n in GATEWAYS for p in self.ended_peers(n)), sorted(addresses))
        wait_until(lambda: self.prometheus.values('up{job="popgate"}') == {self.status_instance(n): 1.0
                                                                          for n in GATEWAYS},
                   "Prometheus to scrape both gateways")
        wait_until(lambda: self.prometheus.values('up{job="haproxy"}') == {f"127.0.0.1:{self.ports['stats']}": 1.0},
                   "Prometheus to scrape HAProxy's exporter")
        # HAProxy's own view, as the deployed Prometheus records it.
        wait_until(lambda: self.prometheus.values('haproxy_backend_active_servers{proxy="popgate_pop3"}')
                   == {f"127.0.0.1:{self.ports['stats']}": 2.0}, "HAProxy's exporter to count both gateways")
        self.assertEqual(self.prometheus.firing("PopgateInstanceDown"), set())
        for name in GATEWAYS:
            self.assertEqual(self.healthcheck(name, "/healthz/live"), 0)
            self.assertEqual(self.healthcheck(name, "/healthz/ready"), 0)

        # POP3S through HAProxy's TLS passthrough: popgate ends TLS and
        # still learns the client's address from the PROXY header.
        context = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
        with socket.create_connection(("127.0.0.1", self.ports["pop3s"]), timeout=30,
                                      source_address=("127.0.0.5", 0)) as raw:
            address = "%s:%d" % raw.getsockname()[:2]
            with context.wrap_socket(raw, server_hostname="pop.example.test") as tls:
                reader = tls.makefile("rb")
                self.assertTrue(reader.readline().startswith(b"+OK"))
                login, password = self.users[0]
                for line in (f"USER {login}", f"PASS {password}", "QUIT"):
                    tls.sendall(line.encode() + b"\r\n")
                    self.assertTrue(reader.readline().startswith(b"+OK"), line.split()[0])
                reader.close()

        def tls_session_end():
            return [l for n in GATEWAYS for l in self.gateways[n].log_lines()
                    if l.get("msg") == "session_end" and l.get("peer") == address]
        wait_until(tls_session_end, "the POP3S session's session_end line")
        self.assertTrue(tls_session_end()[0]["tls"].startswith("TLSv1."), tls_session_end()[0])

        # Every query of the Grafana dashboard is valid PromQL for this
        # Prometheus, and the fleet panels show the two gateways.
        with open(os.path.join(DEPLOY, "grafana", "dashboards", "popgate.json")) as f:
            dashboard = json.load(f)
        titles = {}
        for panel in dashboard["panels"]:
            for target in panel.get("targets", []):
                expr = (target["expr"].replace("$__rate_interval", "1m")
                        .replace("$instance", ".*").replace("$listener", ".*").replace("$tenant", ".*"))
                try:
                    self.prometheus.api("/api/v1/query", query=expr)
                except urllib.error.HTTPError as e:
                    self.fail(f"dashboard panel {panel['title']!r}: {expr}: {e.read().decode()}")
                titles[panel["title"]] = expr
        wait_until(lambda: self.prometheus.values(titles["Instances up"]) == {"": 2.0}, "the dashboard's 2 up")
        wait_until(lambda: self.prometheus.values(titles["Instances ready"]) == {"": 2.0}, "the dashboard's 2 ready")

    def test_2_sigkill_mid_session_frees_the_lock_and_loses_nothing(self):
        login, password = new_user(self.domain)
        bodies = [crlf(f"Subject: kept {i}\n\nmessage {i}\n" * (i + 1)) for i in range(3)]
        for body in bodies:
            deliver(login, body)
        client = self.login(login, password, source="127.0.0.3")
        self.assertEqual(sha256(unstuff(client.retr(1)[1])), sha256(bodies[0]))
        client.dele(1)
        client.sock.sendall(b"RETR 2\r\n")  # killed while this is answered
        holder = self.holder_of(login)
        victim = holder.split("/")[0]
        self.assertIn(victim, GATEWAYS, holder)
        survivor = next(n for n in GATEWAYS if n != victim)
        before_kill = time.monotonic()
        self.gateways[victim].proc.kill()
        self.gateways[victim].proc.wait()

        # The client is cut off, not left hanging.
        with self.assertRaises((EOFError, poplib.error_proto, ConnectionError, OSError)):
            while True:
                if not client.file.readline():
                    raise EOFError("closed")
        client.close()
        # The dead instance's lock is still in the table until its lease lapses.
        self.assertEqual(self.holder_of(login), holder)

        # Logins of that user are [IN-USE] until the lease lapses, then work
        # on the survivor, with every message there: the DELE never happened.
        refusals = []

        def reopened():
            c = SourcePOP3("127.0.0.1", self.ports["pop3"], "127.0.0.3")
            try:
                c.user(login)
                c.pass_(password)
            except poplib.error_proto as e:
                refusals.append(str(e))
                c.close()
                return False
            reopened.client = c
            return True
        wait_until(reopened, "the killed instance's lock to lapse", bound=LAPSE_BOUND_S)
        lapsed_after_s = time.monotonic() - before_kill
        self.assertTrue(all("[IN-USE]" in r for r in refusals), refusals)
        c = reopened.client
        self.assertTrue(self.holder_of(login).startswith(survivor + "/"))
        self.assertEqual(c.stat()[0], 3)
        for i, body in enumerate(bodies, 1):
            self.assertEqual(sha256(unstuff(c.retr(i)[1])), sha256(body))
        c.quit()
        self.assertEqual(len(messages_of(login)), 3)
        self.assertEqual(lock_count(login), 0)
        print(f"\nlock of the killed instance lapsed {lapsed_after_s:.1f} s after SIGKILL "
              f"(lease {LEASE_MS} ms); {len(refusals)} [IN-USE] refusals before", flush=True)

        # HAProxy marks it down and new sessions go to the survivor.
        wait_until(lambda: self.down_in_haproxy(victim), f"HAProxy to mark {victim} DOWN")
        self.assertEqual(self.server_status("popgate_pop3")[survivor], "UP")
        ended = len(self.ended_peers(survivor))
        for user, pw in self.users[:4]:
            s = self.login(user, pw, source="127.0.0.4")
            self.assertEqual(s.stat()[0], 1)
            s.quit()
        wait_until(lambda: len(self.ended_peers(survivor)) == ended + 4, "the new sessions on the survivor")
        self.assertTrue(all(p.startswith("127.0.0.4:") for p in self.ended_peers(survivor)[ended:]))

        # Prometheus: the victim is down and alerted on, the survivor is not.
        dead, alive = self.status_instance(victim), self.status_instance(survivor)
        wait_until(lambda: self.prometheus.values('up{job="popgate"}') == {dead: 0.0, alive: 1.0},
                   "Prometheus to see the killed instance down")
        wait_until(lambda: self.prometheus.firing("PopgateInstanceDown") == {dead},
                   "PopgateInstanceDown to fire for the killed instance")
        self.assertEqual(self.prometheus.firing("PopgateNoInstanceReady"), set())
        wait_until(lambda: self.prometheus.values('haproxy_backend_active_servers{proxy="popgate_pop3"}')
                   == {f"127.0.0.1:{self.ports['stats']}": 1.0}, "HAProxy's exporter to count one gateway")
        type(self).survivor = survivor

    def test_3_sigterm_drains_without_cutting_a_retr(self):
        survivor = getattr(type(self), "survivor", None)
        if survivor is None:
            self.skipTest("needs the survivor of test_2")
        gateway = self.gateways[survivor]
        login, password = new_user(self.domain)
        line = b"0123456789" * 7 + b"\r\n"
        message = b"Subject: drain\r\n\r\n" + line * (24 * 1024 * 1024 // len(line))
        deliver(login, message)
        deliver(login, b"Subject: second\r\n\r\nkeep me\r\n")

        c = Conversation.__new__(Conversation)
        c.sock = socket.create_connection(("127.0.0.1", self.ports["pop3"]), timeout=60)
        # A small receive buffer keeps most of the message on popgate's side.
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        c.reader = c.sock.makefile("rb")
        self.assertTrue(c.line().startswith(b"+OK"))
        c.command(f"USER {login}")
        self.assertTrue(c.command(f"PASS {password}").startswith(b"+OK"))
        self.assertEqual(c.command("DELE 2"), b"+OK message 2 deleted")
        c.send("RETR 1\r\n")
        self.assertEqual(c.line(), b"+OK %d octets" % len(message))
        received = bytearray(c.reader.read(256 * 1024))  # the download is under way

        gateway.send_signal(signal.SIGTERM)
        # While the client does not read, the drain deadline passes and
        # HAProxy takes the draining instance out. (Reading must resume
        # before the drain deadline + 15 s, when the shard stops regardless.)
        wait_until(lambda: self.down_in_haproxy(survivor), f"HAProxy to mark the draining {survivor} DOWN")
        # The image's health check: alive (no restart), not ready.
        self.assertEqual(self.healthcheck(survivor, "/healthz/live"), 0)
        self.assertEqual(self.healthcheck(survivor, "/healthz/ready"), 1)
        # No instance takes new sessions now: HAProxy closes at once.
        with socket.create_connection(("127.0.0.1", self.ports["pop3"]), timeout=30) as s:
            self.assertEqual(s.recv(100), b"")

        while chunk := c.reader.read1(1 << 20):
            received += chunk
        c.close()
        ending = b"-ERR [SYS/TEMP] server shutting down\r\n"
        self.assertTrue(received.endswith(b"\r\n.\r\n" + ending),
                        f"the reply was cut: it ends {bytes(received[-80:])!r}")
        body = bytes(received[:-len(b".\r\n" + ending)])
        self.assertEqual(len(body), len(message))
        self.assertEqual(sha256(body), sha256(message))
        self.assertEqual(gateway.wait(60), 0)
        self.assertEqual(len(messages_of(login)), 2, "DELE without QUIT deletes nothing")
        self.assertEqual(lock_count(login), 0, "a drained instance leaves no lock behind")
        ends = [l for l in gateway.log_lines() if l.get("msg") == "session_end" and l.get("user") == login]
        self.assertEqual([(e["end"], e["retr"]) for e in ends], [("shutdown", 1)])

        # Prometheus scraped the drain (every second, for the seconds it lasted).
        instance = self.status_instance(survivor)
        wait_until(lambda: self.prometheus.values(f'max_over_time(popgate_draining{{instance="{instance}"}}[5m])')
                   == {instance: 1.0}, "Prometheus to have seen the drain")
        both = {self.status_instance(n) for n in GATEWAYS}
        wait_until(lambda: self.prometheus.values('up{job="popgate"}') == {i: 0.0 for i in both},
                   "Prometheus to see both instances down")
        wait_until(lambda: self.prometheus.firing("PopgateInstanceDown") == both,
                   "PopgateInstanceDown to fire for both")
        wait_until(lambda: self.prometheus.firing("PopgateNoInstanceReady") == {""},
                   "PopgateNoInstanceReady to fire")


if __name__ == "__main__":
    unittest.main()
