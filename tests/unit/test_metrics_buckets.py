"""Timer lateness goes into the right (non-cumulative) bucket; exposition makes them cumulative."""

from __future__ import annotations

from engine.metrics import lateness_counts


def test_each_value_counts_in_the_smallest_bucket_that_holds_it():
    counts = lateness_counts([0.05, 0.1, 0.7, 1.5, 1.51, 4000.0, -0.2])
    assert counts == {"0.1": 3, "1.0": 1, "1.5": 1, "2.5": 1, "+Inf": 1, "sum": 0.05 + 0.1 + 0.7 + 1.5 + 1.51 + 4000.0}
    assert lateness_counts([]) == {}
