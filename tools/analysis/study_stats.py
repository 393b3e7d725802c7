"""Small statistics for study reports, in plain Python + numpy (no scipy: Debian's python3-numpy,
python3-h5py and python3-matplotlib are all the analysis scripts may assume).

Intervals are two-sided 95% Student-t intervals: mean +- t(0.975, n - 1) * sd / sqrt(n), with sd
the sample standard deviation (n - 1 in the denominator). One value has no interval (None).
"""
import math
from functools import lru_cache

Z975 = 1.959963984540054  # the normal 97.5% quantile


def _t_two_sided_prob(t, dof):
    """P(|T| <= t) for Student's t with an integer number of degrees of freedom: the finite
    series of Abramowitz & Stegun 26.7.3-4 in theta = atan(t / sqrt(dof)), exact for any dof."""
    theta = math.atan(t / math.sqrt(dof))
    s, c = math.sin(theta), math.cos(theta)
    c2 = c * c
    if dof % 2 == 1:
        series, term = 0.0, c  # c * (1 + 2/3 c^2 + 2*4/(3*5) c^4 + ...), (dof - 1) / 2 terms
        for k in range(1, (dof - 1) // 2 + 1):
            series += term
            term *= c2 * (2 * k) / (2 * k + 1)
        return 2.0 / math.pi * (theta + s * series)
    series, term = 0.0, 1.0  # 1 + 1/2 c^2 + 1*3/(2*4) c^4 + ..., dof / 2 terms
    for k in range(1, dof // 2 + 1):
        series += term
        term *= c2 * (2 * k - 1) / (2 * k)
    return s * series


def _t_cornish_fisher(dof):
    """The 97.5% quantile by the Cornish-Fisher expansion in 1/dof (A&S 26.7.5): within 1e-10 of
    the exact value for dof >= 300, where the exact series gets long."""
    z = Z975
    g = [(z**3 + z) / 4,
         (5 * z**5 + 16 * z**3 + 3 * z) / 96,
         (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384,
         (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160]
    return z + sum(gk / dof ** (k + 1) for k, gk in enumerate(g))


@lru_cache(maxsize=None)
def t975(dof):
    """The 97.5% quantile of Student's t with `dof` (an integer >= 1) degrees of freedom: the
    half-width factor of a two-sided 95% interval. t975(2) = 4.30265272974946, the closed form
    0.95 / sqrt(2 * 0.975 * 0.025) (scipy 1.10's t.ppf says 4.302652729911275, 1.6e-10 off)."""
    dof = int(dof)
    if dof < 1:
        raise ValueError(f"degrees of freedom must be >= 1, got {dof}")
    if dof >= 300:
        return _t_cornish_fisher(dof)
    lo, hi = 0.0, 1.0
    while _t_two_sided_prob(hi, dof) < 0.95:
        lo, hi = hi, hi * 2
    for _ in range(200):  # bisection to the last bit
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        if _t_two_sided_prob(mid, dof) < 0.95:
            lo = mid
        else:
            hi = mid
    return (lo + hi) / 2


def summarize(values):
    """{"mean", "sd", "half_width", "low", "high", "n"} of a list of numbers (the 95% t-interval;
    None where n is too small). An empty list gives n = 0 and None everywhere."""
    n = len(values)
    out = {"n": n, "mean": None, "sd": None, "half_width": None, "low": None, "high": None}
    if n == 0:
        return out
    mean = math.fsum(values) / n  # fsum: the same bits whatever the order of summation
    out["mean"] = mean
    if n >= 2:
        sd = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
        half = t975(n - 1) * sd / math.sqrt(n)
        out.update(sd=sd, half_width=half, low=mean - half, high=mean + half)
    return out


def paired(a_by_seed, b_by_seed):
    """Per-seed differences b - a over the seeds both have, summarized, with the differences."""
    seeds = sorted(set(a_by_seed) & set(b_by_seed), key=lambda s: (0, s, "") if isinstance(s, int) else (1, 0, str(s)))
    diffs = {s: b_by_seed[s] - a_by_seed[s] for s in seeds}
    out = summarize([diffs[s] for s in seeds])
    out["per_seed"] = {str(s): diffs[s] for s in seeds}
    return out
