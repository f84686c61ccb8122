"""Claims' intervals: Student's t on prompts, draws averaged first, and the ordering count."""
from __future__ import annotations

import math

import numpy as np

from massivelens.engine.analysis.clusters import ClusterRow, miou_by_block, ordering
from massivelens.engine.analysis.intervals import mean_interval, separated, unit_means


def test_mean_interval_is_the_textbook_t_interval():
    mean, low, high = mean_interval([1, 2, 3, 4, 5])
    # t(0.975, 4) = 2.776445; s = sqrt(2.5); n = 5
    half = 2.776445 * math.sqrt(2.5) / math.sqrt(5)
    assert mean == 3.0 and abs(low - (3 - half)) < 1e-5 and abs(high - (3 + half)) < 1e-5


def test_one_value_has_no_interval_and_missing_values_are_skipped():
    mean, low, high = mean_interval([0.5, None, float("nan")])
    assert mean == 0.5 and math.isnan(low) and math.isnan(high)
    assert math.isnan(mean_interval([])[0])


def test_draws_of_one_prompt_count_once():
    assert sorted(unit_means([("a", 0.0), ("a", 1.0), ("b", 1.0)])) == [0.5, 1.0]


def test_separated_needs_the_lower_bound_above_the_upper_bound():
    assert separated((0.8, 0.7, 0.9), (0.5, 0.4, 0.6))
    assert not separated((0.8, 0.55, 0.9), (0.5, 0.4, 0.6))
    assert not separated((0.8, float("nan"), float("nan")), (0.1, 0.0, 0.2))


def _rows(strategy: str, values: list[list[float]], block: str = "b0") -> list[ClusterRow]:
    """values[session][draw] -> rows."""
    return [ClusterRow(f"s{i}", block, 5, strategy, v, None, 4, d) for i, draws in enumerate(values) for d, v in enumerate(draws)]


def test_block_curve_averages_each_sessions_draws_before_the_interval():
    rows = _rows("random", [[0.0, 1.0], [0.5, 0.5], [0.2, 0.8]])
    (entry,) = miou_by_block(rows)
    assert entry["n"] == 3 and entry["draws"] == 2 and entry["miou"] == 0.5
    assert entry["ci"] == [0.5, 0.5]  # every session's draw mean is 0.5: no spread between prompts


def test_ordering_counts_blocks_whose_intervals_separate_top_random_bottom():
    rng = np.random.default_rng(0)
    rows = []
    for block, (top, random, bottom) in {"b0": (0.8, 0.5, 0.2), "b1": (0.5, 0.5, 0.5)}.items():
        for strategy, centre in (("top", top), ("random", random), ("bottom", bottom)):
            rows += _rows(strategy, (centre + 0.01 * rng.standard_normal((8, 1))).tolist(), block)
    (entry,) = ordering(miou_by_block(rows))
    assert entry == {"step": 5, "k": 4, "blocks": 2, "top_random_bottom": 1, "which": ["b0"], "top_above_both": 1}
