"""PROXY protocol with a real HAProxy in front (send-proxy-v2, health checks
with check-send-proxy, TLS offloaded at HAProxy with the SSL TLV), and
hand-made headers: the original client address reaches the logs and the
per-address limits, untrusted peers and malformed headers are cut off."""

import os
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from itest import Gateway, deliver, dsn, new_tenant, new_user, wait_until

CERTS = os.environ.get("POPGATE_TEST_CERT_DIR", "")
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
BODY = b"Subject: proxied\r\n\r\nbody\r\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_from(source_ip, port, timeout=20):
    """A connection whose source address is `source_ip` (127.0.0.0/8)."""
    s = socket.socket()
    s.settimeout(timeout)
    s.bind((source_ip, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_line(sock):
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            return data
        data += chunk
    return data[:-2]


def closed_without_reply(sock):
    try:
        return sock.recv(100) == b""
    except ConnectionResetError:
        return True


class HaproxyTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        if not os.path.exists(HAPROXY):
            raise unittest.SkipTest("haproxy is not installed (ops/packages.txt lists it)")
        if not CERTS:
            raise unittest.SkipTest("POPGATE_TEST_CERT_DIR is not set (run through ctest)")
        cls.domain = new_tenant()
        cls.login, cls.password = new_user(cls.domain)
        deliver(cls.login, BODY)
        cls.gateway = Gateway(
            dsn(),
            listeners=["name=lb,address=127.0.0.1:0,proxy_protocol=true,trusted_proxies=127.0.0.1,"
                       "allow_cleartext_login=false"],
            limits__connections_per_address_max=2,
            log_level="debug")
        cls.work = tempfile.mkdtemp(prefix="popgate-haproxy-")
        pem = os.path.join(cls.work, "front.pem")
        with open(pem, "wb") as out:
            for name in ("pop-ecdsa.crt", "pop-ecdsa.key"):
                with open(os.path.join(CERTS, name), "rb") as f:
                    out.write(f.read())
        cls.front = free_port()
        cls.front_tls = free_port()
        backend = f"127.0.0.1:{cls.gateway.port_of('lb')}"
        cfg = os.path.join(cls.work, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 1000

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend pop3
    bind 127.0.0.1:{cls.front}
    default_backend popgate

frontend pop3s
    bind 127.0.0.1:{cls.front_tls} ssl crt {pem}
    default_backend popgate_from_tls

backend popgate
    option tcp-check
    tcp-check expect string +OK
    server p1 {backend} send-proxy-v2 check check-send-proxy inter 300ms

backend popgate_from_tls
    server p1 {backend} send-proxy-v2-ssl proxy-v2-options ssl,authority
""")
        cls.log = open(os.path.join(cls.work, "haproxy.log"), "w")
        cls.haproxy = subprocess.Popen([HAPROXY, "-db", "-f", cfg], stdout=cls.log, stderr=subprocess.STDOUT)

        def serving():
            try:
                with socket.create_connection(("127.0.0.1", cls.front), timeout=5) as s:
                    return read_line(s).startswith(b"+OK")
            except OSError:
                return False
        wait_until(serving, "HAProxy to forward to popgate")

    @classmethod
    def tearDownClass(cls):
        cls.haproxy.terminate()
        cls.haproxy.wait(timeout=30)
        cls.log.close()
        cls.gateway.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_logs_show_the_original_client_address(self):
        s = connect_from("127.0.0.2", self.front)
        self.assertTrue(read_line(s).startswith(b"+OK"))
        s.sendall(b"QUIT\r\n")
        read_line(s)
        s.close()

        def logged():
            return any(l.get("msg") == "session_end" and l.get("peer", "").startswith("127.0.0.2:")
                       for l in self.gateway.log_lines())
        wait_until(logged, "a session_end line with the client's own address")

    def test_per_address_limit_uses_the_original_address(self):
        held = [connect_from("127.0.0.4", self.front) for _ in range(2)]
        for s in held:
            self.assertTrue(read_line(s).startswith(b"+OK"))
        third = connect_from("127.0.0.4", self.front)
        self.assertEqual(read_line(third), b"-ERR [SYS/TEMP] too many connections from your address")
        third.close()
        # Another client behind the same balancer is not affected.
        other = connect_from("127.0.0.5", self.front)
        self.assertTrue(read_line(other).startswith(b"+OK"))
        for s in held + [other]:
            s.close()

    def test_tls_offloaded_at_haproxy_counts_as_tls(self):
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(CERTS, "ca.crt"))
        ctx.check_hostname = False
        # In clear through the plain frontend, USER is refused on this listener.
        s = connect_from("127.0.0.6", self.front)
        read_line(s)
        s.sendall(f"USER {self.login}\r\n".encode())
        self.assertTrue(read_line(s).startswith(b"-ERR [AUTH] cleartext login not allowed"))
        s.close()
        # Through the TLS frontend the SSL TLV says the client used TLS.
        with socket.create_connection(("127.0.0.1", self.front_tls), timeout=20) as raw:
            with ctx.wrap_socket(raw, server_hostname="pop.example.test") as tls:
                f = tls.makefile("rb")
                self.assertTrue(f.readline().startswith(b"+OK"))
                tls.sendall(f"USER {self.login}\r\nPASS {self.password}\r\nSTAT\r\nQUIT\r\n".encode())
                self.assertEqual(f.readline(), b"+OK send PASS\r\n")
                self.assertTrue(f.readline().startswith(b"+OK maildrop has 1"))
                self.assertEqual(f.readline(), f"+OK 1 {len(BODY)}\r\n".encode())
        # The authority TLV (the SNI the client gave HAProxy) reaches the log.
        wait_until(lambda: any(l.get("msg") == "session_end" and l.get("sni") == "pop.example.test"
                               for l in self.gateway.log_lines()),
                   "the PROXY authority in the session_end line")

    def test_health_checks_keep_the_server_up(self):
        # The balancer checks with LOCAL headers every 300 ms; traffic still flows.
        time.sleep(1.0)
        for _ in range(3):
            s = connect_from("127.0.0.7", self.front)
            self.assertTrue(read_line(s).startswith(b"+OK"))
            s.close()


class DirectHeaderTest(unittest.TestCase):
    """Headers written by hand, to a listener that trusts 127.0.0.1 only."""

    @classmethod
    def setUpClass(cls):
        cls.gateway = Gateway(dsn(), listeners=[
            "name=lb,address=127.0.0.1:0,proxy_protocol=true,trusted_proxies=127.0.0.1",
        ], limits__proxy_header_timeout_ms=3000)
        cls.port = cls.gateway.port_of("lb")

    @classmethod
    def tearDownClass(cls):
        cls.gateway.stop()

    def test_v1_header_sets_the_client_address(self):
        s = connect_from("127.0.0.1", self.port)
        s.sendall(b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 110\r\n")
        self.assertTrue(read_line(s).startswith(b"+OK"))
        s.sendall(b"QUIT\r\n")
        read_line(s)
        s.close()
        wait_until(lambda: any(l.get("peer") == "203.0.113.7:40000" for l in self.gateway.log_lines()),
                   "the PROXY source address in the logs")

    def test_v2_header_split_across_packets(self):
        import struct
        sig = b"\r\n\r\n\x00\r\nQUIT\n"
        addresses = socket.inet_aton("192.0.2.9") + socket.inet_aton("192.0.2.1") + struct.pack("!HH", 5555, 110)
        header = sig + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses
        s = connect_from("127.0.0.1", self.port)
        for i in range(len(header)):
            s.sendall(header[i:i + 1])
            time.sleep(0.002)
        self.assertTrue(read_line(s).startswith(b"+OK"))
        s.sendall(b"QUIT\r\n")
        read_line(s)
        s.close()
        wait_until(lambda: any(l.get("peer") == "192.0.2.9:5555" for l in self.gateway.log_lines()),
                   "the v2 source address in the logs")

    def test_untrusted_peer_is_cut_off(self):
        s = connect_from("127.0.0.8", self.port)
        s.sendall(b"PROXY TCP4 203.0.113.7 198.51.100.1 40000 110\r\n")
        self.assertTrue(closed_without_reply(s))
        wait_until(lambda: "proxy_untrusted" in self.gateway.log_text(), "the untrusted peer logged")

    def test_malformed_headers_are_cut_off(self):
        for junk in (b"PROXY TCP4 999.1.1.1 1.1.1.1 1 2\r\n", b"GET / HTTP/1.0\r\n\r\n",
                     b"\r\n\r\n\x00\r\nQUIT\n\x99\x11\x00\x0c" + b"\x00" * 12, b"PROXY TCP4 1.2.3.4\r\n"):
            s = connect_from("127.0.0.1", self.port)
            s.sendall(junk)
            self.assertTrue(closed_without_reply(s), junk)
            s.close()
        self.assertIn("proxy_header_invalid", self.gateway.log_text())

    def test_a_silent_peer_times_out(self):
        s = connect_from("127.0.0.1", self.port, timeout=30)
        start = time.monotonic()
        self.assertTrue(closed_without_reply(s))
        self.assertGreaterEqual(time.monotonic() - start, 2.5)  # waited for the header


if __name__ == "__main__":
    unittest.main()
