"""popgate-admin migrate [--check], usage errors and database errors.

Schema states other than "current" are made in throwaway databases created
next to the shared test database, so the other test scripts are unaffected.
"""

import concurrent.futures
import re
import secrets
import subprocess
import unittest

from popgate_testlib import admin, admin_bin, dsn, psql


def superuser_dsn(dbname="postgres"):
    # The test cluster trusts loopback; later libpq keywords override earlier.
    return f"{dsn()} user=postgres dbname={dbname}"


class ScratchDatabase:
    """An empty database owned by the popgate role; dropped on exit."""

    def __enter__(self):
        self.name = f"popgate_t_{secrets.token_hex(4)}"
        psql(f"CREATE DATABASE {self.name} OWNER popgate", database=superuser_dsn())
        self.dsn = f"{dsn()} dbname={self.name}"
        return self

    def __exit__(self, *exc):
        psql(f"DROP DATABASE {self.name} WITH (FORCE)", database=superuser_dsn())


def versions(database):
    rows = psql("SELECT version, name FROM popgate.schema_migrations ORDER BY version",
                database=database)
    return [tuple(r.split("|")) for r in rows.splitlines()]


class MigrateTest(unittest.TestCase):
    def test_fresh_database_is_behind(self):
        with ScratchDatabase() as db:
            r = admin("migrate", "--check", database=db.dsn, check=False)
            self.assertEqual(r.returncode, 1, r)
            self.assertRegex(r.stdout, r"behind by \d+ migration")
            self.assertIn("popgate-admin migrate", r.stdout)
            self.assertIn("pending: 0001_init", r.stdout)
            # --check changes nothing.
            self.assertEqual(psql("SELECT to_regclass('popgate.schema_migrations') IS NULL",
                                  database=db.dsn), "t")

    def test_migrate_applies_then_is_idempotent(self):
        with ScratchDatabase() as db:
            first = admin("migrate", database=db.dsn)
            self.assertIn("applied 0001_init (version 1)", first.stdout)
            applied = versions(db.dsn)
            self.assertEqual(applied[0], ("1", "0001_init"))
            second = admin("migrate", database=db.dsn)
            self.assertRegex(second.stdout, r"^schema is up to date \(version \d+\)$")
            self.assertEqual(versions(db.dsn), applied)
            check = admin("migrate", "--check", database=db.dsn)
            self.assertIn("up to date", check.stdout)
            # The schema is really there.
            self.assertEqual(psql("SELECT length(popgate.new_uidl())", database=db.dsn), "16")

    def test_concurrent_migrators_serialise(self):
        with ScratchDatabase() as db:
            argv = [admin_bin(), "--dsn", db.dsn, "migrate"]
            with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
                runs = list(pool.map(
                    lambda _: subprocess.run(argv, capture_output=True, text=True, timeout=120),
                    range(6)))
            for r in runs:
                self.assertEqual(r.returncode, 0, r.stderr)
            applied_lines = [line for r in runs for line in r.stdout.splitlines()
                             if line.startswith("applied ")]
            rows = versions(db.dsn)
            self.assertEqual(len(applied_lines), len(rows))  # each applied exactly once
            self.assertEqual(len({v for v, _ in rows}), len(rows))

    def test_database_ahead_is_refused(self):
        with ScratchDatabase() as db:
            admin("migrate", database=db.dsn)
            psql("INSERT INTO popgate.schema_migrations (version, name) VALUES (9999, '9999_future')",
                 database=db.dsn)
            check = admin("migrate", "--check", database=db.dsn, check=False)
            self.assertEqual(check.returncode, 1)
            self.assertIn("ahead of this build", check.stderr)
            self.assertIn("9999", check.stderr)
            again = admin("migrate", database=db.dsn, check=False)
            self.assertEqual(again.returncode, 1)
            self.assertIn("ahead of this build", again.stderr)

    def test_renamed_migration_is_refused(self):
        with ScratchDatabase() as db:
            admin("migrate", database=db.dsn)
            psql("UPDATE popgate.schema_migrations SET name = 'someone_else' WHERE version = 1",
                 database=db.dsn)
            r = admin("migrate", database=db.dsn, check=False)
            self.assertEqual(r.returncode, 1)
            self.assertIn("'someone_else'", r.stderr)

    def test_shared_test_database_is_current(self):
        r = admin("migrate", "--check")
        self.assertEqual(r.returncode, 0)
        self.assertIn("up to date", r.stdout)


class ErrorsTest(unittest.TestCase):
    def run_admin(self, *argv, env=None):
        return subprocess.run([admin_bin(), *argv], capture_output=True, text=True,
                              timeout=60, env=env, input="")

    def test_unreachable_database_is_exit_3(self):
        r = admin("tenant", "list", database="host=127.0.0.1 port=1 dbname=x connect_timeout=5",
                  check=False)
        self.assertEqual(r.returncode, 3)
        self.assertIn("cannot reach the database", r.stderr)
        self.assertEqual(len(r.stderr.strip().splitlines()), 1)

    def test_missing_dsn_is_usage(self):
        r = self.run_admin("tenant", "list", env={"PATH": "/usr/bin:/bin"})
        self.assertEqual(r.returncode, 2)
        self.assertIn("POPGATE_DATABASE_DSN", r.stderr)

    def test_dsn_from_environment(self):
        r = self.run_admin("migrate", "--check",
                           env={"PATH": "/usr/bin:/bin", "POPGATE_DATABASE_DSN": dsn()})
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_usage_errors_are_exit_2(self):
        for argv in ([], ["bogus"], ["tenant"], ["tenant", "add"], ["user", "add"],
                     ["deliver"], ["migrate", "--nope"], ["maildrop", "list"]):
            with self.subTest(argv=argv):
                r = admin(*argv, check=False)
                self.assertEqual(r.returncode, 2, r)

    def test_help_is_exit_0(self):
        r = self.run_admin("--help")
        self.assertEqual(r.returncode, 0)
        self.assertIn("Exit codes", r.stdout)
        self.assertTrue(re.search(r"deliver", r.stdout))


if __name__ == "__main__":
    unittest.main()
