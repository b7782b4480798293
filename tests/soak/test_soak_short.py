"""The soak driver's short mode, so CI tests the driver itself: 1,000
concurrent sessions with the mixed workload for 20 s against the real
binary and the shared test PostgreSQL (a tenant of its own). Proves what
the long soak proves, at a smaller scale: no error, fds and RSS back to
the baseline, connections and sessions balance on /metrics, no lock left,
no mail lost, and a clean exit. The 10,000-session, 5-minute run is a
documented longer job (README, Reliability)."""

import argparse
import json
import os
import resource
import unittest

import soak


class SoakShortTest(unittest.TestCase):

    def test_thousand_sessions_for_twenty_seconds(self):
        path = os.environ.get("POPGATE_TEST_DSN_FILE")
        if not path:
            raise unittest.SkipTest("POPGATE_TEST_DSN_FILE is not set (run through ctest)")
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        if hard != resource.RLIM_INFINITY and hard < 2000:
            raise unittest.SkipTest(f"RLIMIT_NOFILE hard limit {hard} is below the 2,000 fds 1,000 sessions need")
        args = argparse.Namespace(sessions=1000, seconds=20.0, shards=2, workers=2, build=None, dsn=None,
                                  dsn_file=path, seed=None, json=None)
        report = soak.run(args)
        print(json.dumps(report, indent=2, sort_keys=True))
        failed = [name for name, ok in report["checks"].items() if not ok]
        self.assertEqual(failed, [], f"soak checks failed: {failed}")


if __name__ == "__main__":
    unittest.main()
