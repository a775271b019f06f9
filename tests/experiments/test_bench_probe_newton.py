"""The probe_newton benchmark on the quick profile's world: it runs, and the new calls agree with the reference."""

from experiments.bench_probe_newton import ERROR_TOL, LOSS_TOL, benchmark


def test_benchmark_quick_agrees_within_tolerance():
    r = benchmark(profile="quick", repeats=1)
    assert r["pop_calls"] > 0 and r["curve_calls"] > 0
    assert r["d_loss"] <= LOSS_TOL and r["d_curve_loss"] <= LOSS_TOL and r["d_curve_err"] <= ERROR_TOL
    assert r["converged_differ"] == 0
    assert r["ratio"] == r["ref_s"] / r["new_s"]
