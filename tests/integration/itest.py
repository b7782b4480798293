"""Common pieces of the gateway integration tests."""

import hashlib
import os
import poplib
import sys
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "support"))

from popgate_server import Conversation, Gateway  # noqa: E402
from popgate_testlib import admin, deliver, dsn, new_tenant, new_user, psql  # noqa: E402

__all__ = ["Conversation", "Gateway", "admin", "deliver", "dsn", "new_tenant", "new_user",
           "psql", "crlf", "pop", "wait_until", "sha256", "unstuff", "unstuff_wire", "messages_of",
           "lock_count", "GatewayTest"]

# Bound for conditions the tests wait on (a lock released, a lease lapsed).
WAIT_BOUND_S = 60


def crlf(text):
    """What delivery stores: CRLF line ends, ending in CRLF."""
    if isinstance(text, str):
        text = text.encode()
    text = text.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\r\n")
    return text if text.endswith(b"\r\n") else text + b"\r\n"


def pop(gateway, login, password, timeout=30):
    client = poplib.POP3(gateway.host, gateway.port, timeout=timeout)
    client.user(login)
    client.pass_(password)
    return client


def wait_until(predicate, what, bound=WAIT_BOUND_S):
    deadline = time.monotonic() + bound
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting ({bound}s) for: {what}")


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def unstuff(lines):
    """poplib's retr() lines (already without CRLF) back to message bytes;
    poplib itself removes the stuffing dot."""
    return b"".join(line + b"\r\n" for line in lines)


def unstuff_wire(lines):
    """Lines of a multi-line reply as sent (Conversation.multiline()) back to
    message bytes: drop the stuffed dot."""
    return b"".join((line[1:] if line.startswith(b".") else line) + b"\r\n" for line in lines)


def messages_of(login):
    """(message_id, size, uidl) rows stored for a user, in id order."""
    local, domain = login.split("@")
    rows = psql(
        "SELECT m.message_id, m.size_bytes, m.uidl FROM popgate.messages m "
        "JOIN popgate.users u USING (tenant_id, user_id) JOIN popgate.tenants t USING (tenant_id) "
        f"WHERE t.domain = '{domain}' AND u.local_part = '{local}' ORDER BY m.message_id")
    return [tuple(r.split("|")) for r in rows.splitlines()] if rows else []


def lock_count(login):
    local, domain = login.split("@")
    return int(psql(
        "SELECT count(*) FROM popgate.maildrop_locks l "
        "JOIN popgate.users u USING (tenant_id, user_id) JOIN popgate.tenants t USING (tenant_id) "
        f"WHERE t.domain = '{domain}' AND u.local_part = '{local}'"))


class GatewayTest(unittest.TestCase):
    """One gateway for the whole class, one tenant per class."""

    gateway_settings = {}

    @classmethod
    def setUpClass(cls):
        cls.dsn = dsn()
        cls.domain = new_tenant()
        cls.gateway = Gateway(cls.dsn, **cls.gateway_settings)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gateway.stop()
        if rc != 0:
            raise AssertionError(f"popgate exited {rc} on SIGINT:\n{cls.gateway.log_text()}")

    def user_with(self, *bodies):
        login, password = new_user(self.domain)
        infos = [deliver(login, body) for body in bodies]
        return login, password, infos
