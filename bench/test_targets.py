"""bench/run's table of issue 29's targets: each figure against its bound, in the
direction that matters."""

import importlib.machinery
import importlib.util
import unittest
from pathlib import Path

HERE = Path(__file__).resolve().parent
loader = importlib.machinery.SourceFileLoader("bench_run_targets", str(HERE / "run"))
spec = importlib.util.spec_from_loader("bench_run_targets", loader)
run = importlib.util.module_from_spec(spec)
loader.exec_module(run)


def results(**changes):
    r = {
        "pgbench": {"inserts_per_s": 10_000, "postgres_cpu_us_per_insert": 100.0},
        "pg_one_key": {"requests_per_s": 12_500},
        "pg_many_keys": {"requests_per_s": 11_000},
        "ratio_one_key_vs_pgbench": 1.25,
        "ratio_pg_vs_pgbench": 1.1,
        "cpu_us_per_create": {"gateway": 50.0, "redis": 10.0, "postgres": 40.0, "total": 100.0},
        "cpu_us_per_healthz": {"gateway": 20.0},
        "ratio_create_vs_healthz_cpu": 2.5,
        "pg_half_peak": {"p99_ms": 4.0},
        "pgbench_half_peak": {"p99_ms": 5.0},
        "tmpfs": {"half_peak": {"p99_ms": 5.6}},
        "pg_1024_connections": {"peak_rss_mb": 99.0},
        "import": {"peak_rss_mb": 120.0, "runs": [{"rows_per_s": 20_000}, {"rows_per_s": 31_000},
                                                  {"rows_per_s": 29_000}]},
        "pgbouncer": {"create": {"transaction_vs_direct": 0.95}, "list": {"transaction_vs_direct": 0.5}},
        "webhooks": {"delivery": {"events_per_s": 5_500}},
        "bulk": {"ratio_batch_vs_copy": 0.7},
        "read": {"ratio_first_page_vs_pgbench": 0.31},
    }
    r.update(changes)
    return r


class HalfPeakRounds(unittest.TestCase):
    def test_the_round_of_the_median_ratio_is_the_figure_of_record(self):
        def turn(gateway_p99, pgbench_p99):
            return {"gateway": {"p99_ms": gateway_p99}, "pgbench": {"p99_ms": pgbench_p99},
                    "ratio": gateway_p99 / pgbench_p99}
        rounds = [turn(18.0, 7.0), turn(4.0, 8.0), turn(6.0, 5.0)]
        r = run.median_half_peak(rounds)
        # Ratios 2.57, 0.5, 1.2: the median round is the third, both its figures.
        self.assertEqual((r["pg_half_peak"]["p99_ms"], r["pgbench_half_peak"]["p99_ms"]), (6.0, 5.0))
        self.assertEqual(r["half_peak_rounds"], rounds)


class Targets(unittest.TestCase):
    def verdicts(self, r):
        return {name: (round(value, 3), met) for name, value, _, met in run.targets(r)}

    def test_each_figure_is_judged_against_its_bound_in_its_direction(self):
        v = self.verdicts(results())
        self.assertEqual(v["create, one key / pgbench INSERT (median of alternating runs)"], (1.25, True))
        self.assertEqual(v["create, many keys / pgbench INSERT (median of alternating runs)"], (1.1, False))
        self.assertEqual(v["gateway CPU per create / per /healthz (median of alternating runs)"],
                         (2.5, False))
        self.assertEqual(v["all CPU per create / pgbench's PG per insert"], (1.0, False))
        self.assertEqual(
            v["p99 at half of peak / pgbench's p99 at that rate (median of alternating runs)"],
            (0.8, True))
        self.assertEqual(v["p99 at half of peak, store on tmpfs (ms)"], (5.6, False))
        self.assertEqual(v["peak RSS at 1024 connections (MB)"], (99.0, True))
        self.assertEqual(v["peak RSS after three 50 000-row imports (MB)"], (120.0, False))
        self.assertEqual(v["PgBouncer transaction / direct, creates"], (0.95, True))
        self.assertEqual(v["PgBouncer transaction / direct, lists"], (0.5, False))
        self.assertEqual(v["webhook deliveries per second, one instance"], (5500, True))
        self.assertEqual(v["batch / COPY"], (0.7, False))
        self.assertEqual(v["lists: first page / pgbench's same SELECT"], (0.31, False))
        # The slower of the two upsert runs; the create run does not count.
        self.assertEqual(v["CSV import upserts, rows/s (the slower of two runs)"], (29_000, False))

    def test_a_bound_met_exactly_is_met(self):
        v = self.verdicts(results(pg_1024_connections={"peak_rss_mb": 100.0},
                                  ratio_create_vs_healthz_cpu=2.0,
                                  tmpfs={"half_peak": {"p99_ms": 5.0}}))
        self.assertTrue(v["peak RSS at 1024 connections (MB)"][1])
        self.assertTrue(v["p99 at half of peak, store on tmpfs (ms)"][1])
        self.assertTrue(v["gateway CPU per create / per /healthz (median of alternating runs)"][1])


def turn(one, many, store, create_cpu=30.0, healthz_cpu=12.0):
    """A create round as bench/run records it (rates, and the gateway's CPU per create and
    per /healthz)."""
    return {"pg_one_key": {"requests_per_s": one}, "pg_many_keys": {"requests_per_s": many},
            "cpu_us_per_create": {"gateway": create_cpu}, "pgbench": {"inserts_per_s": store},
            "healthz": {"requests_per_s": 90_000}, "cpu_us_per_healthz": {"gateway": healthz_cpu},
            "ratio_create_vs_healthz_cpu": create_cpu / healthz_cpu,
            "ratio_one_key_vs_pgbench": one / store, "ratio_pg_vs_pgbench": many / store}


class CreateRounds(unittest.TestCase):
    def test_each_ratio_is_the_median_of_the_rounds_own_ratios(self):
        # A slow minute for pgbench (round 2) gives the best ratio, a slow one for the
        # gateway (round 3) the worst; the median is round 1's, not a mix of rounds.
        rounds = [turn(12_000, 11_000, 10_000, 11.0), turn(9_000, 9_500, 6_000),
                  turn(6_000, 5_000, 10_000)]
        m = run.median_round(rounds)
        self.assertAlmostEqual(m["ratio_one_key_vs_pgbench"], 1.2)
        self.assertAlmostEqual(m["ratio_pg_vs_pgbench"], 1.1)
        self.assertEqual(m["pg_many_keys"]["requests_per_s"], 11_000)
        self.assertEqual(m["pgbench"]["inserts_per_s"], 10_000)
        self.assertEqual(m["cpu_us_per_create"]["gateway"], 11.0)
        self.assertEqual(m["create_rounds"], rounds)

    def test_create_cpu_is_held_to_the_healthz_cpu_of_its_own_round(self):
        # Round 1: a busy minute (both figures high); round 2: a quiet one; round 3: the
        # creates busy, /healthz quiet. Across rounds the ratio would be 40 / 9 = 4.4; each
        # round's own are 2.5, 2.0 and 4.0, and the median is round 1's.
        rounds = [turn(10_000, 10_000, 10_000, 40.0, 16.0), turn(10_000, 10_000, 10_000, 22.0, 11.0),
                  turn(10_000, 10_000, 10_000, 36.0, 9.0)]
        m = run.median_round(rounds)
        self.assertAlmostEqual(m["ratio_create_vs_healthz_cpu"], 2.5)
        self.assertEqual(m["cpu_us_per_healthz"]["gateway"], 16.0)
        self.assertEqual(m["healthz"], rounds[0]["healthz"])

    def test_one_key_and_many_keys_medians_may_come_from_different_rounds(self):
        rounds = [turn(13_000, 9_000, 10_000), turn(11_000, 12_000, 10_000), turn(12_000, 10_000, 10_000)]
        m = run.median_round(rounds)
        self.assertEqual(m["pg_one_key"]["requests_per_s"], 12_000)
        self.assertEqual(m["pg_many_keys"]["requests_per_s"], 10_000)


if __name__ == "__main__":
    unittest.main()
