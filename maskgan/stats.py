"""Small statistics for the kit's comparisons: Student's t-test, with no SciPy.

The kit compares methods over a few training seeds (the EBST study: n = 3) and over many edit pairs
(the blend comparison: n = 440). With n values of a difference ``d``, the one-sample t statistic
``t = mean(d) / (sd(d) / sqrt(n))`` has n - 1 degrees of freedom; its two-sided p-value is
``I_{df / (df + t^2)}(df / 2, 1 / 2)``, the regularized incomplete beta function, computed here by
its continued fraction (Lentz's method; see e.g. Press et al., Numerical Recipes, Sec. 6.4).
At n = 3 (2 degrees of freedom) a difference needs |t| > 4.30 for p < 0.05; the "two standard
errors" rule (|t| > 2) would mean p = 0.18 there.
"""
from __future__ import annotations

import math
from typing import Sequence

__all__ = ["t_test", "paired_t_test", "student_t_sf", "incomplete_beta"]


def _beta_fraction(a: float, b: float, x: float, iters: int = 300, eps: float = 1e-15) -> float:
    tiny = 1e-300
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, iters + 1):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function ``I_x(a, b)`` for ``a, b > 0`` and ``0 <= x <= 1``."""
    if not (a > 0 and b > 0):
        raise ValueError(f"incomplete_beta needs a > 0 and b > 0, got a={a!r}, b={b!r}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"incomplete_beta needs 0 <= x <= 1, got {x!r}")
    if x in (0.0, 1.0):
        return x
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, 1.0 - x) / b


def student_t_sf(t: float, df: float) -> float:
    """Two-sided tail probability ``P(|T| >= |t|)`` of Student's t with ``df`` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"degrees of freedom must be > 0, got {df!r}")
    if math.isinf(t):
        return 0.0
    return incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def t_test(values: Sequence[float]) -> dict:
    """One-sample two-sided t-test of ``mean(values) == 0``: ``{"n", "mean", "sd", "t", "df", "p"}``.

    ``sd`` is the sample standard deviation (n - 1). With n < 2 there is no test (``t`` and ``p``
    are None); with zero spread and a non-zero mean, ``t`` is infinite and ``p`` 0."""
    xs = [float(v) for v in values]
    n = len(xs)
    if any(math.isnan(v) for v in xs):
        raise ValueError("t_test got NaN values; drop or explain them first")
    mean = sum(xs) / n if n else math.nan
    if n < 2:
        return {"n": n, "mean": mean, "sd": None, "t": None, "df": None, "p": None}
    sd = math.sqrt(sum((v - mean) ** 2 for v in xs) / (n - 1))
    df = n - 1
    if sd == 0:
        t = 0.0 if mean == 0 else math.copysign(math.inf, mean)
    else:
        t = mean / (sd / math.sqrt(n))
    return {"n": n, "mean": mean, "sd": sd, "t": t, "df": df, "p": 1.0 if t == 0 else student_t_sf(t, df)}


def paired_t_test(a: Sequence[float], b: Sequence[float]) -> dict:
    """Two-sided paired t-test of ``mean(a - b) == 0`` (same keys as :func:`t_test`)."""
    if len(a) != len(b):
        raise ValueError(f"a paired t-test needs pairs: got {len(a)} and {len(b)} values")
    return t_test([x - y for x, y in zip(a, b)])
