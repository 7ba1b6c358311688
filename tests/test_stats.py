"""Student's t-test without SciPy (maskgan.stats), against closed forms and textbook critical values."""
import math

import pytest

from maskgan.stats import incomplete_beta, paired_t_test, student_t_sf, t_test


@pytest.mark.parametrize("t", [0.3, 1.0, 2.0, 4.303, 9.9])
def test_two_degrees_of_freedom_match_the_closed_form(t):
    # df = 2: P(|T| >= t) = 1 - t / sqrt(t^2 + 2)
    assert student_t_sf(t, 2) == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-10)


@pytest.mark.parametrize("t", [0.5, 1.0, 3.0, 12.706])
def test_one_degree_of_freedom_is_the_cauchy_tail(t):
    assert student_t_sf(t, 1) == pytest.approx(1 - 2 / math.pi * math.atan(t), rel=1e-10)


@pytest.mark.parametrize("df, critical", [(2, 4.302653), (4, 2.776445), (10, 2.228139), (30, 2.042272)])
def test_textbook_critical_values_give_five_percent(df, critical):
    assert student_t_sf(critical, df) == pytest.approx(0.05, abs=2e-6)


def test_two_standard_errors_at_three_runs_is_p_0_18():
    assert student_t_sf(2.0, 2) == pytest.approx(0.1835, abs=1e-4)


def test_the_incomplete_beta_is_symmetric_and_bounded():
    assert incomplete_beta(2.5, 1.5, 0.3) == pytest.approx(1 - incomplete_beta(1.5, 2.5, 0.7), rel=1e-12)
    assert incomplete_beta(1, 1, 0.42) == pytest.approx(0.42, rel=1e-12)  # the uniform distribution
    with pytest.raises(ValueError, match="0 <= x <= 1"):
        incomplete_beta(1, 1, 1.5)


def test_t_test_reports_mean_sample_sd_t_and_p():
    r = t_test([1.0, 2.0, 3.0])
    assert (r["n"], r["mean"], r["sd"], r["df"]) == (3, 2.0, 1.0, 2)
    assert r["t"] == pytest.approx(2 * math.sqrt(3))
    assert r["p"] == pytest.approx(student_t_sf(2 * math.sqrt(3), 2))


def test_one_value_has_no_test_and_nan_is_refused():
    assert t_test([1.0])["p"] is None
    with pytest.raises(ValueError, match="NaN"):
        t_test([1.0, float("nan")])


def test_paired_t_test_is_the_t_test_of_the_differences():
    a, b = [3.0, 5.0, 4.0, 6.0], [2.0, 3.5, 3.9, 4.0]
    assert paired_t_test(a, b) == t_test([x - y for x, y in zip(a, b)])
    with pytest.raises(ValueError, match="pairs"):
        paired_t_test([1.0], [1.0, 2.0])
