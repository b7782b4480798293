"""Runs the real popgate binary for integration tests.

Gateway(dsn, **settings) starts `popgate` on 127.0.0.1:0 with a ready file,
waits until it serves, and exposes its port, its JSON log lines and ways to
stop it (SIGINT, SIGTERM, SIGKILL). Settings are passed as
`--set section.key=value`.
"""

import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

POPGATE_BIN = os.environ.get("POPGATE_BIN", "popgate")

# Bound on how long a started gateway may take to come up.
STARTUP_TIMEOUT_S = 30


class Gateway:
    def __init__(self, dsn, shards=2, listeners=None, config_file=None, **settings):
        """listeners: spec strings for --listener (the first is the one
        host/port point at); config_file: a TOML file for --config (flags
        and --set still win over it); settings: section__key=value for
        --set. log_level=None leaves the level to the file."""
        self.dsn = dsn
        self.dir = tempfile.mkdtemp(prefix="popgate-it-")
        self.ready_file = os.path.join(self.dir, "ready")
        self.log_path = os.path.join(self.dir, "popgate.log")
        args = [POPGATE_BIN, "--dsn", dsn, "--listen", "127.0.0.1:0",
                "--ready-file", self.ready_file, "--shards", str(shards)]
        log_level = settings.pop("log_level", "info")
        if log_level is not None:
            args += ["--log-level", log_level]
        if config_file is not None:
            args += ["--config", config_file]
        for spec in listeners or []:
            args += ["--listener", spec]
        # Short waits suit tests; every one can be overridden. A zero
        # initial failure delay turns the per-address table off.
        defaults = {"session.auth_failure_delay_ms": 0, "limits.failure_delay_initial_ms": 0,
                    "limits.failure_delay_max_ms": 0, "metrics.address": "127.0.0.1:0"}
        defaults.update({k.replace("__", "."): v for k, v in settings.items()})
        for key, value in defaults.items():
            if isinstance(value, bool):
                value = "true" if value else "false"
            args += ["--set", f"{key}={value}"]
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not os.path.exists(self.ready_file):
            if self.proc.poll() is not None:
                raise RuntimeError(f"popgate exited with {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"popgate did not start:\n{self.log_text()}")
            time.sleep(0.05)
        with open(self.ready_file) as f:
            lines = f.read().splitlines()
        host, port = lines[0].rsplit(":", 1)
        self.host, self.port = host, int(port)
        # name -> (host, port) for every listener
        self.listeners = {}
        for line in lines[1:]:
            name, address = line.split(" ", 1)
            h, p = address.rsplit(":", 1)
            self.listeners[name] = (h, int(p))
        # The HTTP status port ("metrics" line), when metrics.address is set.
        self.status_url = None
        if "metrics" in self.listeners:
            h, p = self.listeners.pop("metrics")
            self.status_url = f"http://{h}:{p}"

    def http(self, path, method="GET", body=None):
        """(status, text) of a request to the status port."""
        request = urllib.request.Request(self.status_url + path, method=method,
                                         data=body.encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metrics_text(self):
        status, text = self.http("/metrics")
        if status != 200:
            raise RuntimeError(f"/metrics answered {status}")
        return text

    def metrics(self):
        """{(name, ((label, value), ...)): value} from one scrape."""
        return parse_metrics(self.metrics_text())

    def metric(self, name, **labels):
        """The value of one series (0 when absent)."""
        want = tuple(sorted(labels.items()))
        return self.metrics().get((name, want), 0.0)

    def log_text(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def log_lines(self):
        lines = []
        for line in self.log_text().splitlines():
            try:
                lines.append(json.loads(line))
            except json.JSONDecodeError:
                pass
        return lines

    def connect(self, timeout=10, listener=None):
        address = self.listeners[listener] if listener else (self.host, self.port)
        return socket.create_connection(address, timeout=timeout)

    def port_of(self, listener):
        return self.listeners[listener][1]

    def send_signal(self, sig):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait(self, timeout=30):
        return self.proc.wait(timeout=timeout)

    def stop(self, sig=signal.SIGINT, timeout=30):
        self.send_signal(sig)
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0


_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_metrics(text):
    """Prometheus text format to {(name, sorted label pairs): value}."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        if not m:
            continue
        labels = tuple(sorted(_LABEL.findall(m.group(2) or "")))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


class Conversation:
    """A raw POP3 connection: send bytes, read replies line by line."""

    def __init__(self, gateway, timeout=20):
        self.sock = gateway.connect(timeout)
        self.reader = self.sock.makefile("rb")
        self.greeting = self.line()

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise EOFError(f"connection closed; partial line {line!r}")
        return line[:-2]

    def multiline(self):
        """The lines of a multi-line reply as sent (still byte-stuffed)."""
        lines = []
        while True:
            line = self.line()
            if line == b".":
                return lines
            lines.append(line)

    def command(self, text):
        self.send(text + "\r\n")
        return self.line()

    def closed(self):
        """True when the server has closed the connection (reads EOF)."""
        try:
            while self.reader.read1(65536):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False

    def close(self):
        self.reader.close()
        self.sock.close()
