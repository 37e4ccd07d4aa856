"""bench/compare on two small results: each figure's verdict in the direction that matters."""

import importlib.machinery
import importlib.util
import json
import subprocess
import sys
import tempfile
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
loader = importlib.machinery.SourceFileLoader("bench_compare", str(HERE / "compare"))
spec = importlib.util.spec_from_loader("bench_compare", loader)
compare = importlib.util.module_from_spec(spec)
loader.exec_module(compare)

BEFORE = {
    "date": "2026-12-05", "machine": "2 cores",
    "pg_many_keys": {"requests_per_s": 10000, "p99_ms": 8.0, "errors": 0},
    "pg_peak_rss_mb": 120.0,
    "bad_key_flood": {"p99_ratio": 1.5, "rounds": 3},
    "outage": [{"clients": 8, "slowest_ms": 40}],
    "spool": {"spooled": 1000, "drained_per_s": 7000},
    "gone_later": 1,
}
AFTER = {
    "date": "2026-12-06", "machine": "2 cores",
    "pg_many_keys": {"requests_per_s": 12000, "p99_ms": 9.0, "errors": 0},
    "pg_peak_rss_mb": 90.0,
    "bad_key_flood": {"p99_ratio": 1.52, "rounds": 5},
    "outage": [{"clients": 8, "slowest_ms": 20}],
    "spool": {"spooled": 1500, "drained_per_s": 7100},
    "new_figure": 3,
}


class CompareTest(unittest.TestCase):
    def report(self, **kwargs):
        return "\n".join(compare.compare(BEFORE, AFTER, **kwargs))

    def line(self, report, path):
        found = [l for l in report.splitlines() if l.startswith(path + " ")]
        self.assertEqual(len(found), 1, f"{path} in\n{report}")
        return found[0]

    def test_directions(self):
        report = self.report()
        self.assertTrue(self.line(report, "pg_many_keys.requests_per_s").endswith("better"))
        self.assertIn("1.200", self.line(report, "pg_many_keys.requests_per_s"))
        self.assertTrue(self.line(report, "pg_many_keys.p99_ms").endswith("worse"))
        self.assertTrue(self.line(report, "pg_peak_rss_mb").endswith("better"))
        self.assertTrue(self.line(report, "outage.0.slowest_ms").endswith("better"))
        self.assertTrue(self.line(report, "spool.spooled").endswith("changed"))

    def test_small_moves_and_bookkeeping_are_left_out(self):
        report = self.report()
        for quiet in ("spool.drained_per_s", "bad_key_flood.p99_ratio", "pg_many_keys.errors",
                      "bad_key_flood.rounds", "outage.0.clients"):
            self.assertNotIn(quiet + " ", report)
        self.assertIn("5 of 8 figures moved by more than 5%", report)
        everything = self.report(show_all=True)
        self.line(everything, "spool.drained_per_s")
        self.assertNotIn("bad_key_flood.rounds", everything)

    def test_one_sided_figures_are_named(self):
        report = self.report()
        self.assertIn("only before: gone_later", report)
        self.assertIn("only after: new_figure", report)

    def test_the_command(self):
        with tempfile.TemporaryDirectory() as work:
            a, b = Path(work) / "a.json", Path(work) / "b.json"
            a.write_text(json.dumps(BEFORE))
            b.write_text(json.dumps(AFTER))
            run = subprocess.run([sys.executable, str(HERE / "compare"), str(a), str(b)],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertIn("pg_peak_rss_mb", run.stdout)
            broken = Path(work) / "broken.json"
            broken.write_text("{")
            run = subprocess.run([sys.executable, str(HERE / "compare"), str(a), str(broken)],
                                 capture_output=True, text=True)
            self.assertEqual(run.returncode, 2)
            self.assertIn("bench/compare:", run.stderr)


if __name__ == "__main__":
    unittest.main()
