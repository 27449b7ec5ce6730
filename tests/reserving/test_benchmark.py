"""How long each method takes: on RAA (10 × 10) and a 40 × 40 triangle; prints, never asserts.

Run with ``pytest -m benchmark --run-benchmarks -s tests/reserving/test_benchmark.py``.
The 40 × 40 triangle is chainladder's ``prism_oqdq`` paid (quarterly origins and
development). Times are the best of three, in milliseconds, on whatever machine runs
them (shared machines vary); the bootstrap is timed with 1,000 and 10,000 simulations.
"""

import time

import pytest

from workflows.reserving import (
    benktander,
    bootstrap_odp,
    bornhuetter_ferguson,
    cape_cod,
    chain_ladder_mack,
    reserve_result_csv,
)

from .conftest import sample

pytestmark = pytest.mark.benchmark


def best_of(function, repeat=3) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return min(times) * 1000, result


def test_benchmark_each_method_on_raa_and_a_40_by_40_triangle(raa):
    big = sample("prism_oqdq", "Paid")
    assert (big.origin_count, big.development_age_count) == (40, 40)
    lines = []
    for label, triangle in (("RAA 10 × 10", raa), ("prism_oqdq 40 × 40", big)):
        exposure = dict.fromkeys(triangle.origins, 1000000.0)
        methods = {
            "chain ladder + Mack": lambda t=triangle: chain_ladder_mack(t),
            "Bornhuetter-Ferguson": lambda t=triangle, e=exposure: bornhuetter_ferguson(
                t, exposure=e, apriori_loss_ratio=0.7
            ),
            "Benktander (2)": lambda t=triangle, e=exposure: benktander(
                t, exposure=e, apriori_loss_ratio=0.7
            ),
            "Cape Cod": lambda t=triangle, e=exposure: cape_cod(t, exposure=e, decay=0.9),
            "ODP bootstrap, 1,000 sims": lambda t=triangle: bootstrap_odp(
                t, random_seed=1, n_sims=1000
            ),
            "ODP bootstrap, 10,000 sims": lambda t=triangle: bootstrap_odp(
                t, random_seed=1, n_sims=10_000
            ),
        }
        for name, function in methods.items():
            milliseconds, result = best_of(function, repeat=1 if "10,000" in name else 3)
            assert reserve_result_csv(result)  # a full result, not a stub
            lines.append(f"{label:20s} {name:28s} {milliseconds:10.1f} ms")
    print("\nreserving engine, best of 3 (10,000 simulations: one run)\n" + "\n".join(lines))
