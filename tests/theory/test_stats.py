import numpy as np

from theory.stats import mean_se


def test_mean_se_is_sample_sd_over_root_n():
    v = np.array([1.0, 2.0, 4.0, 7.0])
    m, se = mean_se(v)
    assert m == 3.5 and np.isclose(se, np.std(v, ddof=1) / 2.0)


def test_one_value_has_no_standard_error_not_zero():
    m, se = mean_se([0.3])
    assert m == 0.3 and np.isnan(se)


def test_axis_and_missing_seeds():
    v = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, np.nan]])
    m, se = mean_se(v, axis=0)
    assert np.allclose(m, [3.0, 2.0]) and np.isclose(se[0], 2.0 / np.sqrt(3)) and np.isnan(se[1])
