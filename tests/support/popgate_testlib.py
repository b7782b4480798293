"""Shared helpers for popgate's Python integration tests.

The ctest harness (popgate_pytest in tests/CMakeLists.txt) sets:
  POPGATE_TEST_DSN_FILE  file holding the libpq DSN of the test PostgreSQL
  POPGATE_ADMIN_BIN      path of popgate-admin
  POPGATE_BIN            path of the popgate gateway
and puts this directory on PYTHONPATH. Without a DSN, tests skip saying why.

Every test should work in its own tenant (new_tenant()) so that test scripts
can run in parallel against the one database.
"""

import os
import re
import secrets
import subprocess
import unittest

__all__ = ["AdminError", "admin", "admin_bin", "deliver", "dsn", "new_tenant",
           "new_user", "psql"]


class AdminError(AssertionError):
    """popgate-admin exited non-zero while check=True; carries its output."""

    def __init__(self, args, result):
        super().__init__(f"popgate-admin {' '.join(args)} exited {result.returncode}\n"
                         f"stdout: {result.stdout}\nstderr: {result.stderr}")
        self.result = result


def dsn():
    """The test database's DSN. Raises unittest.SkipTest when none is set."""
    path = os.environ.get("POPGATE_TEST_DSN_FILE")
    if not path:
        raise unittest.SkipTest("POPGATE_TEST_DSN_FILE is not set (run through ctest)")
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError as e:
        raise unittest.SkipTest(f"cannot read the test DSN from {path}: {e}") from e


def admin_bin():
    """Path of popgate-admin. Raises unittest.SkipTest when unset."""
    path = os.environ.get("POPGATE_ADMIN_BIN")
    if not path:
        raise unittest.SkipTest("POPGATE_ADMIN_BIN is not set (run through ctest)")
    return path


def admin(*args, input=None, check=True, database=None):
    """Runs `popgate-admin --dsn DSN ARGS...`.

    input: bytes or str fed to stdin (stdin is empty otherwise).
    database: a DSN to use instead of the test database's.
    Returns a CompletedProcess whose stdout/stderr are str. With check=True a
    non-zero exit raises AdminError showing both streams.
    """
    if isinstance(input, str):
        input = input.encode()
    argv = [admin_bin(), "--dsn", database or dsn(), *args]
    raw = subprocess.run(argv, input=input if input is not None else b"",
                         capture_output=True, timeout=300, check=False)
    result = subprocess.CompletedProcess(
        raw.args, raw.returncode,
        raw.stdout.decode("utf-8", "replace"), raw.stderr.decode("utf-8", "replace"))
    if check and result.returncode != 0:
        raise AdminError(args, result)
    return result


def new_tenant():
    """Adds a tenant with a random, unique domain and returns the domain."""
    domain = f"t{secrets.token_hex(6)}.test"
    admin("tenant", "add", domain)
    return domain


def new_user(domain, password=None):
    """Adds a user in `domain`; returns (login, password). The password is
    random unless given."""
    login = f"u{secrets.token_hex(4)}@{domain}"
    password = password if password is not None else secrets.token_urlsafe(12)
    admin("user", "add", login, "--password-stdin", input=password + "\n")
    return login, password


_DELIVERED = re.compile(r"message_id=(\d+) size=(\d+) uidl=(\S+)")


def deliver(login, message, uidl=None):
    """Delivers `message` (bytes) to `login` through popgate-admin; returns
    {"message_id": int, "size": int, "uidl": str}."""
    args = ["deliver", login, "-"] + (["--uidl", uidl] if uidl is not None else [])
    out = admin(*args, input=message).stdout
    m = _DELIVERED.search(out)
    if not m:
        raise AssertionError(f"unexpected deliver output: {out!r}")
    return {"message_id": int(m[1]), "size": int(m[2]), "uidl": m[3]}


def psql(sql, database=None):
    """Runs SQL with the psql client; returns its unaligned, tuples-only
    output (fields separated by '|', rows by newlines), stripped."""
    result = subprocess.run(
        ["psql", database or dsn(), "-X", "-q", "-tA", "-v", "ON_ERROR_STOP=1", "-c", sql],
        capture_output=True, text=True, timeout=300, check=False)
    if result.returncode != 0:
        raise AssertionError(f"psql failed: {sql}\n{result.stderr}")
    return result.stdout.strip()


def user_column(login, column):
    """One column of a user's row (psql text form; '' for NULL)."""
    local, domain = login.split("@")
    return psql(f"SELECT coalesce({column}::text, '') FROM popgate.users u "
                f"JOIN popgate.tenants t USING (tenant_id) "
                f"WHERE t.domain = '{domain}' AND u.local_part = '{local}'")


def tenant_column(domain, column):
    """One column of a tenant's row (psql text form; '' for NULL)."""
    return psql(f"SELECT coalesce({column}::text, '') FROM popgate.tenants "
                f"WHERE domain = '{domain}'")
